//! The one error type of `rask-core`, shared by the schedulers that run its graphs.
//!
//! Errors say what went wrong *and* what to do about it: a cycle names keys on the cycle, a
//! missing dependency names the task that wants it, a task failure carries the task's key, the
//! function's name and the whole chain of causes.

use std::fmt;
use std::sync::Arc;

use crate::key::Key;

/// The result type of `rask-core` and of the local scheduler.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building, lowering or running a task graph.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The graph is not a DAG.
    #[error(
        "the task graph has a cycle: {} (a task may not depend on itself, directly or through \
         other tasks; break the cycle by giving one of these tasks a different input)",
        KeyList(.keys)
    )]
    Cycle {
        /// Keys on the cycle, each depending on the next; the last depends on the first.
        keys: Vec<Key>,
    },
    /// A task refers to a key that no task of the graph produces.
    #[error(
        "task {task} depends on {missing}, which is not in the graph: add a task that produces \
         {missing} or fix the reference"
    )]
    MissingDependency {
        /// The task whose argument names the missing key.
        task: Key,
        /// The key nobody produces.
        missing: Key,
    },
    /// A requested output is not in the graph.
    #[error(
        "{key} was requested but no task of the graph produces it (the graph has {tasks} tasks)"
    )]
    MissingOutput {
        /// The requested key.
        key: Key,
        /// How many tasks the graph has, to tell an empty graph from a typo.
        tasks: usize,
    },
    /// Two different tasks were given the same key.
    #[error("two different tasks have the key {key}: keys must be unique within a graph")]
    DuplicateKey {
        /// The key defined twice.
        key: Key,
    },
    /// A value was asked for as a type it is not.
    #[error("expected a value of type `{expected}` but {context} holds a `{actual}`")]
    TypeMismatch {
        /// The type the caller asked for.
        expected: &'static str,
        /// The type the value really has.
        actual: &'static str,
        /// Where the value came from (a key, an argument position).
        context: String,
    },
    /// A task returned an error or panicked.
    #[error(transparent)]
    TaskFailed(Arc<TaskFailure>),
    /// The computation was cancelled through its cancel token.
    #[error("the computation was cancelled before it finished")]
    Cancelled,
    /// A function name is not in the registry of this process.
    #[error(
        "no function named `{name}` is registered in this process: mark it with \
         #[rask::delayed] (or register it with rask::register_function!) and run workers from \
         the binary that defines it"
    )]
    UnknownFunction {
        /// The name looked up.
        name: String,
    },
    /// A task calls a closure, which cannot run in another process.
    #[error(
        "task {key} calls the closure `{function}`, which can only run in the process that made \
         it: to run it on a cluster, write it as a function marked #[rask::delayed] (or register \
         it with rask::register_function!), or compute it with the local scheduler"
    )]
    ClosureNotSendable {
        /// The task.
        key: Key,
        /// The closure's label.
        function: String,
    },
    /// A value cannot be turned into bytes to cross a process boundary.
    #[error("a value of type `{type_name}` cannot be serialized: {reason}")]
    NotSerializable {
        /// The value's type.
        type_name: &'static str,
        /// Why: no codec, or the codec's own error.
        reason: String,
    },
    /// Bytes could not be turned back into a value.
    #[error("could not decode a `{type_name}`: {reason}")]
    Decode {
        /// The type that was expected.
        type_name: &'static str,
        /// The codec's error.
        reason: String,
    },
    /// An argument list does not fit the function it is passed to.
    #[error("{function} takes {expected} arguments but was given {given}")]
    Arity {
        /// The function's name.
        function: String,
        /// How many it takes.
        expected: usize,
        /// How many it got.
        given: usize,
    },
    /// The distributed runtime failed (a lost connection, a fetch that failed).
    #[error("the cluster failed: {0}")]
    Cluster(String),
    /// The scheduler could not start its threads.
    #[error("could not start scheduler threads: {0}")]
    Threads(String),
    /// A collection could not turn its computed parts into its result (for example, the
    /// partitions of a data frame do not concatenate).
    #[error("could not assemble the result of the {collection}: {reason}")]
    Finalize {
        /// What kind of collection.
        collection: &'static str,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// The task failure behind this error, if it is one.
    pub fn task_failure(&self) -> Option<&TaskFailure> {
        match self {
            Error::TaskFailed(failure) => Some(failure),
            _ => None,
        }
    }
}

/// Formats keys as a readable list, cut short when there are many.
struct KeyList<'a>(&'a [Key]);

impl fmt::Display for KeyList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        for (i, key) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(" -> ")?;
            }
            write!(f, "{key}")?;
        }
        if self.0.len() > SHOWN {
            write!(f, " -> ... ({} keys in all)", self.0.len())?;
        } else if let Some(first) = self.0.first() {
            write!(f, " -> {first}")?;
        }
        Ok(())
    }
}

/// What a task body reports instead of a value: a chain of messages, outermost first.
///
/// Task functions return `Result<Value, TaskError>`; any `std::error::Error` converts into it
/// with `?`, keeping its chain of causes. `TaskError` deliberately does not implement
/// `std::error::Error` itself, so that this blanket conversion can exist (as with `anyhow`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskError {
    /// The messages of the error and its causes, outermost first.
    pub chain: Vec<String>,
    /// Whether the task panicked rather than returned an error.
    pub panicked: bool,
}

impl TaskError {
    /// An error with one message.
    pub fn msg(message: impl fmt::Display) -> Self {
        TaskError { chain: vec![message.to_string()], panicked: false }
    }

    /// An error from any error value, walking its chain of `source()`s.
    pub fn from_dyn(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = vec![error.to_string()];
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push(cause.to_string());
            source = cause.source();
        }
        TaskError { chain, panicked: false }
    }

    /// The error of a caught panic, from its payload.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "a panic with a payload that is not a string".to_string()
        };
        TaskError { chain: vec![message], panicked: true }
    }
}

impl<E: std::error::Error + 'static> From<E> for TaskError {
    fn from(error: E) -> Self {
        Self::from_dyn(&error)
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, message) in self.chain.iter().enumerate() {
            if i > 0 {
                f.write_str("\n  caused by: ")?;
            }
            f.write_str(message)?;
        }
        Ok(())
    }
}

/// A task that failed: which task, which function, how often it was tried, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskFailure {
    /// The failing task's key.
    pub key: Key,
    /// The name of the function that failed (for a fused task, the function of the fused
    /// step that failed).
    pub function: String,
    /// How many times the task ran (1 + retries used).
    pub attempts: u32,
    /// The error the function reported.
    pub error: TaskError,
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.error.panicked { "panicked" } else { "failed" };
        write!(f, "task {} (function `{}`) {what}", self.key, self.function)?;
        if self.attempts > 1 {
            write!(f, " after {} attempts", self.attempts)?;
        }
        write!(f, ": {}", self.error)
    }
}

impl std::error::Error for TaskFailure {}

impl From<TaskFailure> for Error {
    fn from(failure: TaskFailure) -> Self {
        Error::TaskFailed(Arc::new(failure))
    }
}
