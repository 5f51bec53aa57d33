//! Task specifications: a function plus arguments.
//!
//! A [`TaskSpec`] is what one node of a graph does: call a [`TaskFn`] with [`Arg`]s, each a
//! literal [`Value`], a reference to another task's [`Key`], or a list of such arguments
//! (a task that sums 100 results takes one list argument of 100 keys). A `TaskFn` is either a
//! *registered* function, which any process of the same binary can look up by name, or a
//! closure, which can only run in the process that made it.

use std::fmt;
use std::sync::Arc;

use crate::error::TaskError;
use crate::key::{Key, Name};
use crate::value::Value;

/// What a task function returns.
pub type TaskResult = Result<Value, TaskError>;

/// The signature of a registered function: values in, a value out.
pub type NativeFn = fn(&[Value]) -> TaskResult;

/// The signature of a closure task function.
pub type ClosureFn = dyn Fn(&[Value]) -> TaskResult + Send + Sync;

/// A callable task function with a name.
#[derive(Clone)]
pub struct TaskFn(Arc<FnInner>);

struct FnInner {
    name: Name,
    body: FnBody,
}

enum FnBody {
    Registered(NativeFn),
    Closure(Box<ClosureFn>),
}

impl TaskFn {
    /// A registered function (see [`crate::registry`]); use [`crate::registry::lookup`] to get
    /// one by name.
    pub(crate) fn registered(name: &'static str, call: NativeFn) -> Self {
        TaskFn(Arc::new(FnInner { name: Name::new(name), body: FnBody::Registered(call) }))
    }

    /// A closure. It runs only in this process; a distributed scheduler refuses to send it to
    /// another one.
    pub fn closure(
        name: impl Into<Name>,
        call: impl Fn(&[Value]) -> TaskResult + Send + Sync + 'static,
    ) -> Self {
        TaskFn(Arc::new(FnInner { name: name.into(), body: FnBody::Closure(Box::new(call)) }))
    }

    /// The function's name: the registry name of a registered function.
    pub fn name(&self) -> &str {
        self.0.name.as_str()
    }

    /// Whether another process of the same binary can run this function by name.
    pub fn is_registered(&self) -> bool {
        matches!(self.0.body, FnBody::Registered(_))
    }

    /// Calls the function.
    #[inline]
    pub fn call(&self, args: &[Value]) -> TaskResult {
        match &self.0.body {
            FnBody::Registered(call) => call(args),
            FnBody::Closure(call) => call(args),
        }
    }
}

impl fmt::Debug for TaskFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_registered() { "registered" } else { "closure" };
        write!(f, "TaskFn({} {kind})", self.name())
    }
}

/// One argument of a task.
#[derive(Clone, Debug)]
pub enum Arg {
    /// A literal value.
    Value(Value),
    /// The result of another task.
    Key(Key),
    /// A list of arguments, passed to the function as one [`crate::ValueList`] value.
    List(Vec<Arg>),
}

impl Arg {
    /// A literal argument.
    pub fn value<T: Send + Sync + 'static>(data: T) -> Self {
        Arg::Value(Value::new(data))
    }

    /// Calls `visit` on every key this argument refers to, in order.
    pub fn for_each_key(&self, visit: &mut impl FnMut(&Key)) {
        match self {
            Arg::Value(_) => {}
            Arg::Key(key) => visit(key),
            Arg::List(items) => items.iter().for_each(|item| item.for_each_key(visit)),
        }
    }
}

impl From<Key> for Arg {
    fn from(key: Key) -> Self {
        Arg::Key(key)
    }
}

impl From<&Key> for Arg {
    fn from(key: &Key) -> Self {
        Arg::Key(key.clone())
    }
}

/// One task: a function, its arguments, and how often to retry it when it fails.
#[derive(Clone, Debug)]
pub struct TaskSpec {
    /// The function to call.
    pub func: TaskFn,
    /// Its arguments.
    pub args: Vec<Arg>,
    /// How many more times to run the task after a failure before giving up.
    pub retries: u32,
}

impl TaskSpec {
    /// A task that calls `func` with `args`.
    pub fn new(func: TaskFn, args: Vec<Arg>) -> Self {
        TaskSpec { func, args, retries: 0 }
    }

    /// The same task, retried up to `retries` times when it fails.
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Calls `visit` on every key the task depends on (a key named twice is visited twice).
    pub fn for_each_dependency(&self, mut visit: impl FnMut(&Key)) {
        self.args.iter().for_each(|arg| arg.for_each_key(&mut visit));
    }
}
