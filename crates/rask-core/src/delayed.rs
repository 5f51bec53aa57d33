//! Typed lazy values: `Delayed<T>`.
//!
//! A [`Delayed<T>`] stands for a `T` that a task will compute. Functions marked
//! `#[rask::delayed]` get a lazy form (`name::lazy(...)`) that takes plain values or other
//! delayeds and returns a `Delayed` instead of running, so ordinary for-loop code builds a
//! graph. Each call adds one task whose layer points at its inputs' layers: building costs the
//! new task only.
//!
//! Calls of registered functions are *pure* by default: the key is a token of the function's
//! name and its arguments, so calling the same function twice with equal arguments gives the
//! same key, and the graph computes it once. Closures ([`Delayed::map`]) get unique keys.
//!
//! Computing (`compute`, `persist`) needs a scheduler, so those methods come from the local
//! scheduler crate's `ComputeExt` trait (in `rask::prelude`).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;

use crate::collection::Collection;
use crate::error::{Error, Result, TaskError};
use crate::graph::{Graph, Layer, LayerKind};
use crate::key::{Key, Name, Token, Tokenizer};
use crate::registry;
use crate::task::{Arg, TaskFn, TaskSpec};
use crate::value::{encode_serde, Value};

/// A lazily computed `T`.
pub struct Delayed<T> {
    graph: Graph,
    key: Key,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Delayed<T> {
    fn clone(&self) -> Self {
        Delayed { graph: self.graph.clone(), key: self.key.clone(), _type: PhantomData }
    }
}

impl<T> fmt::Debug for Delayed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Delayed<{}>({})", std::any::type_name::<T>(), self.key)
    }
}

/// A literal as a delayed value (like `dask.delayed(x)`); its key is a token of its content.
pub fn delayed<T: Serialize + Send + Sync + 'static>(value: T) -> Delayed<T> {
    let arg = value.into_arg();
    let key = Key::tokenized("value", arg.token);
    let Arg::Value(value) = arg.arg else { unreachable!("a literal is a value argument") };
    Delayed::literal(key, value)
}

impl<T: Send + Sync + 'static> Delayed<T> {
    /// A value that stays in this process (it need not be serializable); its key is unique.
    pub fn local(value: T) -> Self {
        Delayed::literal(Key::tokenized("value", Token::unique()), Value::new(value))
    }

    /// A delayed whose task returns `value` under `key`: what `persist` returns.
    pub fn literal(key: Key, value: Value) -> Self {
        let identity =
            registry::lookup(IDENTITY).expect("rask-core registers its identity function");
        let spec = TaskSpec::new(identity, vec![Arg::Value(value)]);
        Delayed::from_task(key, spec, Vec::new())
    }

    /// The delayed result of one task over the given input layers. The key must say what the
    /// task computes: equal keys are taken to be equal results.
    pub fn from_task(key: Key, spec: TaskSpec, inputs: Vec<Arc<Layer>>) -> Self {
        let layer =
            Layer::new(key.name().clone(), LayerKind::Tasks(vec![(key.clone(), spec)]), inputs);
        Delayed { graph: Graph::from_layer(layer), key, _type: PhantomData }
    }

    /// A delayed for the result `key` of an existing graph (like Dask's `Delayed(key, graph)`).
    /// The type is the caller's claim: computing checks it and names both types if it is wrong.
    pub fn from_graph(graph: Graph, key: Key) -> Self {
        Delayed { graph, key, _type: PhantomData }
    }

    /// The key of the result.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The graph that computes this value.
    pub fn graph(&self) -> Graph {
        self.graph.clone()
    }

    /// The same task, retried up to `retries` times when it fails or panics. (A delayed made
    /// with [`Delayed::from_graph`] is returned unchanged: its tasks are the graph's.)
    pub fn retries(self, retries: u32) -> Self {
        let [layer] = self.graph.heads() else { return self };
        let LayerKind::Tasks(tasks) = layer.kind() else { return self };
        let tasks = tasks
            .iter()
            .map(|(key, spec)| (key.clone(), spec.clone().with_retries(retries)))
            .collect();
        let layer = Layer::new(
            layer.name().clone(),
            LayerKind::Tasks(tasks),
            layer.dependencies().to_vec(),
        );
        Delayed { graph: Graph::from_layer(layer), key: self.key, _type: PhantomData }
    }

    /// Applies a closure to the value, lazily. Closures run only in this process.
    pub fn map<U: Send + Sync + 'static>(
        &self,
        label: &str,
        f: impl Fn(&T) -> U + Send + Sync + 'static,
    ) -> Delayed<U> {
        let context = self.key.clone();
        let func = TaskFn::closure(label, move |args: &[Value]| {
            Ok(Value::new(f(args[0].get::<T>(&context)?)))
        });
        closure_call(label, func, vec![self.into_arg()])
    }

    /// Combines this value with another through a closure, lazily.
    pub fn zip_with<U: Send + Sync + 'static, V: Send + Sync + 'static>(
        &self,
        other: &Delayed<U>,
        label: &str,
        f: impl Fn(&T, &U) -> V + Send + Sync + 'static,
    ) -> Delayed<V> {
        let (left, right) = (self.key.clone(), other.key.clone());
        let func = TaskFn::closure(label, move |args: &[Value]| {
            Ok(Value::new(f(args[0].get::<T>(&left)?, args[1].get::<U>(&right)?)))
        });
        closure_call(label, func, vec![self.into_arg(), other.into_arg()])
    }
}

/// Reduces many delayed values with a closure over all of them, lazily.
pub fn reduce_with<T: Send + Sync + 'static, U: Send + Sync + 'static>(
    items: &[Delayed<T>],
    label: &str,
    f: impl Fn(&[&T]) -> U + Send + Sync + 'static,
) -> Delayed<U> {
    let keys: Vec<Key> = items.iter().map(|d| d.key.clone()).collect();
    let func = TaskFn::closure(label, move |args: &[Value]| {
        let list = args[0].as_list().ok_or_else(|| TaskError::msg("expected a list argument"))?;
        let refs =
            list.iter().zip(&keys).map(|(v, key)| v.get::<T>(key)).collect::<Result<Vec<&T>>>()?;
        Ok(Value::new(f(&refs)))
    });
    closure_call(label, func, vec![items.into_arg()])
}

fn closure_call<U: Send + Sync + 'static>(
    label: &str,
    func: TaskFn,
    args: Vec<DelayedArg>,
) -> Delayed<U> {
    let key = Key::tokenized(label, Token::unique());
    let (args, inputs) = split_args(args);
    Delayed::from_task(key, TaskSpec::new(func, args), inputs)
}

fn split_args(args: Vec<DelayedArg>) -> (Vec<Arg>, Vec<Arc<Layer>>) {
    let mut inputs = Vec::new();
    let args = args
        .into_iter()
        .map(|arg| {
            inputs.extend(arg.layers);
            arg.arg
        })
        .collect();
    (args, inputs)
}

impl<T: Clone + Send + Sync + 'static> Collection for Delayed<T> {
    type Output = T;

    fn graph(&self) -> Graph {
        Delayed::graph(self)
    }

    fn output_keys(&self) -> Vec<Key> {
        vec![self.key.clone()]
    }

    fn finalize(&self, values: Vec<Value>) -> Result<T> {
        let value = values
            .into_iter()
            .next()
            .ok_or_else(|| Error::MissingOutput { key: self.key.clone(), tasks: 0 })?;
        value.into_inner(&self.key)
    }
}

/// An argument of a lazy call: the graph argument, a token of its content, and the layers that
/// compute it.
pub struct DelayedArg {
    arg: Arg,
    token: Token,
    layers: Vec<Arc<Layer>>,
}

impl DelayedArg {
    /// An argument that reads a result held on a cluster under `key` (a client's future).
    pub fn external(key: &Key) -> Self {
        let layer =
            Layer::new(key.name().clone(), LayerKind::External(vec![key.clone()]), Vec::new());
        DelayedArg {
            arg: Arg::Key(key.clone()),
            token: Tokenizer::new().key(key).finish(),
            layers: vec![Arc::new(layer)],
        }
    }

    /// A list argument of results held on a cluster (a client's futures).
    pub fn external_list(keys: &[Key]) -> Self {
        let mut tokenizer = Tokenizer::new();
        tokenizer.u64(keys.len() as u64);
        keys.iter().for_each(|key| {
            tokenizer.key(key);
        });
        let layers = keys
            .iter()
            .map(|key| {
                Arc::new(Layer::new(
                    key.name().clone(),
                    LayerKind::External(vec![key.clone()]),
                    Vec::new(),
                ))
            })
            .collect();
        DelayedArg {
            arg: Arg::List(keys.iter().cloned().map(Arg::Key).collect()),
            token: tokenizer.finish(),
            layers,
        }
    }

    /// For a literal argument: the key a value of this content gets, and the value.
    pub fn into_literal(self) -> Option<(Key, Value)> {
        match self.arg {
            Arg::Value(value) => Some((Key::tokenized("value", self.token), value)),
            _ => None,
        }
    }
}

/// Something that can stand as an argument of type `T` in a lazy call: a `T` itself, a
/// `Delayed<T>`, or (for `Vec<T>` arguments) a list of `Delayed<T>`.
pub trait IntoArg<T> {
    /// Converts to a lazy-call argument.
    fn into_arg(self) -> DelayedArg;
}

impl<T: Serialize + Send + Sync + 'static> IntoArg<T> for T {
    fn into_arg(self) -> DelayedArg {
        // The token hashes the serialized value, so equal literals give equal keys. A value
        // serde cannot encode still works in this process, under a unique token.
        let token = match encode_serde(&self) {
            Ok(bytes) => Tokenizer::new().bytes(&bytes).finish(),
            Err(_) => Token::unique(),
        };
        DelayedArg { arg: Arg::Value(Value::serde(self)), token, layers: Vec::new() }
    }
}

impl IntoArg<String> for &str {
    fn into_arg(self) -> DelayedArg {
        self.to_string().into_arg()
    }
}

impl<T> IntoArg<T> for &Delayed<T> {
    fn into_arg(self) -> DelayedArg {
        DelayedArg {
            arg: Arg::Key(self.key.clone()),
            token: Tokenizer::new().key(&self.key).finish(),
            layers: self.graph.heads().to_vec(),
        }
    }
}

impl<T> IntoArg<T> for Delayed<T> {
    fn into_arg(self) -> DelayedArg {
        (&self).into_arg()
    }
}

impl<T> IntoArg<Vec<T>> for &[Delayed<T>] {
    fn into_arg(self) -> DelayedArg {
        let mut tokenizer = Tokenizer::new();
        tokenizer.u64(self.len() as u64);
        let keys = self
            .iter()
            .map(|d| {
                tokenizer.key(&d.key);
                Arg::Key(d.key.clone())
            })
            .collect();
        DelayedArg {
            arg: Arg::List(keys),
            token: tokenizer.finish(),
            layers: self.iter().flat_map(|d| d.graph.heads().iter().cloned()).collect(),
        }
    }
}

impl<T> IntoArg<Vec<T>> for &Vec<Delayed<T>> {
    fn into_arg(self) -> DelayedArg {
        self.as_slice().into_arg()
    }
}

impl<T> IntoArg<Vec<T>> for Vec<Delayed<T>> {
    fn into_arg(self) -> DelayedArg {
        self.as_slice().into_arg()
    }
}

/// A result that already exists on a cluster (a client's future): a list of them can be the
/// argument of a lazy call that takes a `Vec<T>` or `&[T]`.
pub trait RemoteResult {
    /// The type of the result.
    type Output;
    /// Its key on the cluster.
    fn remote_key(&self) -> &Key;
}

impl<T, R: RemoteResult<Output = T>> IntoArg<Vec<T>> for &[R] {
    fn into_arg(self) -> DelayedArg {
        let keys: Vec<Key> = self.iter().map(|r| r.remote_key().clone()).collect();
        DelayedArg::external_list(&keys)
    }
}

impl<T, R: RemoteResult<Output = T>> IntoArg<Vec<T>> for &Vec<R> {
    fn into_arg(self) -> DelayedArg {
        self.as_slice().into_arg()
    }
}

/// The name of rask-core's identity function.
pub const IDENTITY: &str = "rask::identity";

fn identity(args: &[Value]) -> crate::TaskResult {
    args.first().cloned().ok_or_else(|| TaskError::msg("identity takes one argument"))
}
crate::register_function!(IDENTITY, identity);

/// A call of a registered function with lazy arguments: what `name::lazy(...)` does.
/// `short_name` is the readable prefix of the key. A pure call's key is a token of the name
/// and the arguments; an impure call's key is unique.
pub fn call_registered<R>(
    name: &'static str,
    short_name: &str,
    args: Vec<DelayedArg>,
    pure: bool,
) -> Delayed<R>
where
    R: Send + Sync + 'static,
{
    let token = if pure {
        let mut tokenizer = Tokenizer::new();
        tokenizer.str(name);
        args.iter().for_each(|arg| {
            tokenizer.token(arg.token);
        });
        tokenizer.finish()
    } else {
        Token::unique()
    };
    let func = registry::lookup(name).unwrap_or_else(|e| panic!("{e}"));
    let (args, inputs) = split_args(args);
    Delayed::from_task(
        Key::new(Name::tokenized(short_name, token)),
        TaskSpec::new(func, args),
        inputs,
    )
}
