//! The function registry: functions any process of the same binary can call by name.
//!
//! `#[rask::delayed]` registers every function it marks; [`register_function!`] registers a
//! function over raw [`Value`]s (the built-in operations of collections use it). Registration
//! happens at link time through [`inventory`], so a worker process started from the same binary
//! knows every function without running any user code first. Each entry also knows how to
//! decode its arguments from bytes, which is what lets the distributed runtime send it work.
//!
//! [`register_function!`]: crate::register_function

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::error::{Error, Result, TaskError};
use crate::task::{NativeFn, TaskFn};
use crate::value::Value;

/// Decodes argument number `index` of a registered function from bytes.
pub type ArgDecoder = fn(index: usize, bytes: &[u8]) -> Result<Value>;

/// One registered function.
pub struct RegisteredFunction {
    /// The stable name: for `#[rask::delayed]` functions, `module::path::function`.
    pub name: &'static str,
    /// Calls the function on values.
    pub call: NativeFn,
    /// How many arguments it takes, when fixed.
    pub arity: Option<usize>,
    /// Decodes an argument sent from another process.
    pub decode_arg: ArgDecoder,
}

impl RegisteredFunction {
    /// An entry for a function over raw values whose arguments cannot be decoded from bytes
    /// (its callers pass in-process values, or the collection supplies a codec elsewhere).
    pub const fn untyped(name: &'static str, call: NativeFn) -> Self {
        RegisteredFunction { name, call, arity: None, decode_arg: no_decoder }
    }
}

fn no_decoder(index: usize, _bytes: &[u8]) -> Result<Value> {
    Err(Error::Decode {
        type_name: "argument of an untyped registered function",
        reason: format!("argument {index}: this function registered no decoder"),
    })
}

inventory::collect!(RegisteredFunction);

struct Registry {
    by_name: HashMap<&'static str, (TaskFn, &'static RegisteredFunction)>,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut by_name = HashMap::new();
        for entry in inventory::iter::<RegisteredFunction> {
            by_name
                .entry(entry.name)
                .or_insert_with(|| (TaskFn::registered(entry.name, entry.call), entry));
        }
        Registry { by_name }
    })
}

/// The registered function called `name`.
pub fn lookup(name: &str) -> Result<TaskFn> {
    registry()
        .by_name
        .get(name)
        .map(|(func, _)| func.clone())
        .ok_or_else(|| Error::UnknownFunction { name: name.to_string() })
}

/// The names of all registered functions, sorted.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<_> = registry().by_name.keys().copied().collect();
    names.sort_unstable();
    names
}

/// Calls a registered function on serialized arguments and serializes its result: what a
/// worker in another process does with a task it is sent.
pub fn call_encoded(name: &str, args: &[&[u8]]) -> std::result::Result<Vec<u8>, TaskError> {
    let (_, entry) =
        registry().by_name.get(name).ok_or_else(|| Error::UnknownFunction { name: name.into() })?;
    if let Some(arity) = entry.arity {
        if arity != args.len() {
            return Err(
                Error::Arity { function: name.into(), expected: arity, given: args.len() }.into()
            );
        }
    }
    let values = args
        .iter()
        .enumerate()
        .map(|(index, bytes)| (entry.decode_arg)(index, bytes))
        .collect::<Result<Vec<_>>>()?;
    let result = (entry.call)(&values)?;
    Ok(result.encode()?)
}

/// Registers a function over raw values under a name: `register_function!("my.op", my_op)`
/// where `fn my_op(args: &[Value]) -> TaskResult`.
#[macro_export]
macro_rules! register_function {
    ($name:expr, $function:path) => {
        $crate::__private::inventory::submit! {
            $crate::registry::RegisteredFunction::untyped($name, $function)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(args: &[Value]) -> crate::TaskResult {
        let x: &i64 = args[0].get(&"argument 0")?;
        Ok(Value::serde(x * 2))
    }
    crate::register_function!("rask_core::tests::double", double);

    #[test]
    fn registered_functions_are_found_by_name_and_unknown_names_say_what_to_do() {
        let double = lookup("rask_core::tests::double").unwrap();
        assert!(double.is_registered());
        let out = double.call(&[Value::new(21_i64)]).unwrap();
        assert_eq!(out.downcast_ref::<i64>(), Some(&42));
        assert!(names().contains(&"rask_core::tests::double"));
        let err = lookup("no::such::function").unwrap_err().to_string();
        assert!(err.contains("no::such::function") && err.contains("register"), "{err}");
    }
}
