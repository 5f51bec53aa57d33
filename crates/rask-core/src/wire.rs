//! Tasks on the wire: the form in which a lowered task travels to another process.
//!
//! A client lowers and orders its graph itself (so the optimizations of `rask-core` apply on a
//! cluster exactly as locally), then sends each task as a [`WireTask`]: its key, its
//! dependencies by key, its priority, and its program with functions named as in the registry
//! and literals as [`WireValue`]s. A worker turns it back into a runnable [`Task`]. Closures
//! cannot travel; encoding a graph that has one is an error that says what to do instead.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::codec::WireValue;
use crate::error::{Error, Result};
use crate::key::{Key, Name};
use crate::registry;
use crate::task_graph::{Body, Op, OpArg, Origin, Program, Task, TaskGraph};

/// One task as it travels.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireTask {
    /// The key of its result.
    pub key: Key,
    /// Its dependencies, in the order its `Dep` arguments number them.
    pub deps: Vec<Key>,
    /// Its rank in the client's ordering (lower runs first).
    pub priority: u32,
    /// The partition index.
    pub part: u32,
    /// Retries after a failure.
    pub retries: u32,
    /// The calls.
    pub ops: Vec<WireOp>,
    /// The label of a fused task.
    pub label: Option<String>,
    /// Where the ops of a fused task came from.
    pub origins: Vec<Origin>,
}

/// One call, with the function named as in the registry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireOp {
    /// The registered name.
    pub func: String,
    /// The arguments.
    pub args: Vec<WireArg>,
}

/// An argument of a [`WireOp`]; see [`OpArg`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WireArg {
    /// A literal.
    Value(WireValue),
    /// The task's `n`-th dependency.
    Dep(u32),
    /// An earlier op's result.
    Prev(u32),
    /// An earlier op's result, last use.
    TakePrev(u32),
    /// The partition index.
    Part,
    /// A list.
    List(Vec<WireArg>),
}

/// Encodes every task of an ordered graph. Fails on closures and unserializable literals.
/// External results (futures) are not sent: the scheduler has them.
pub fn encode_graph(graph: &TaskGraph) -> Result<Vec<WireTask>> {
    (0..graph.len() as u32)
        .filter(|&index| !graph.task(index).is_external())
        .map(|index| encode_task(graph, index))
        .collect()
}

fn encode_task(graph: &TaskGraph, index: u32) -> Result<WireTask> {
    let task = graph.task(index);
    let ops = task
        .ops()
        .iter()
        .map(|op| {
            if !op.func.is_registered() {
                return Err(Error::ClosureNotSendable {
                    key: task.key.clone(),
                    function: op.func.name().to_string(),
                });
            }
            Ok(WireOp {
                func: op.func.name().to_string(),
                args: op.args.iter().map(encode_arg).collect::<Result<_>>()?,
            })
        })
        .collect::<Result<_>>()?;
    let (label, origins) = match &task.body {
        Body::Call(_) | Body::External => (None, Vec::new()),
        Body::Program(program) => {
            (program.label.as_ref().map(|l| l.to_string()), program.origins.clone())
        }
    };
    Ok(WireTask {
        key: task.key.clone(),
        deps: graph.deps(index).iter().map(|&d| graph.task(d).key.clone()).collect(),
        priority: index,
        part: task.part,
        retries: task.retries,
        ops,
        label,
        origins,
    })
}

fn encode_arg(arg: &OpArg) -> Result<WireArg> {
    Ok(match arg {
        OpArg::Value(value) => WireArg::Value(WireValue::encode(value)?),
        OpArg::Dep(n) => WireArg::Dep(*n),
        OpArg::Prev(n) => WireArg::Prev(*n),
        OpArg::TakePrev(n) => WireArg::TakePrev(*n),
        OpArg::Part => WireArg::Part,
        OpArg::List(items) => WireArg::List(items.iter().map(encode_arg).collect::<Result<_>>()?),
    })
}

impl WireTask {
    /// The runnable task: functions looked up in this process's registry, literals decoded.
    pub fn decode(&self) -> Result<Task> {
        let mut ops = self
            .ops
            .iter()
            .map(|op| {
                Ok(Op {
                    func: registry::lookup(&op.func)?,
                    args: op.args.iter().map(decode_arg).collect::<Result<_>>()?,
                })
            })
            .collect::<Result<smallvec::SmallVec<[Op; 1]>>>()?;
        let body = if ops.len() == 1 && self.label.is_none() {
            Body::Call(ops.remove(0))
        } else {
            Body::Program(Arc::new(Program {
                ops,
                label: self.label.as_deref().map(Name::new),
                origins: self.origins.clone(),
            }))
        };
        Ok(Task { key: self.key.clone(), body, part: self.part, retries: self.retries })
    }
}

fn decode_arg(arg: &WireArg) -> Result<OpArg> {
    Ok(match arg {
        WireArg::Value(value) => OpArg::Value(value.decode()?),
        WireArg::Dep(n) => OpArg::Dep(*n),
        WireArg::Prev(n) => OpArg::Prev(*n),
        WireArg::TakePrev(n) => OpArg::TakePrev(*n),
        WireArg::Part => OpArg::Part,
        WireArg::List(items) => OpArg::List(items.iter().map(decode_arg).collect::<Result<_>>()?),
    })
}
