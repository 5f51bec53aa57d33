//! Task fusion: fewer, larger tasks for a scheduler that is overhead-bound.
//!
//! * [`fuse_linear`] merges chains `a -> b -> c`, where each task is the only reader of the one
//!   before it and each reader has no other input, into one task. The fused task keeps the key
//!   of the chain's last task (the only one anybody reads) and gets a readable label such as
//!   `"load-clean-process"`.
//! * [`fuse_fan_in`] ("aggressive fusion") also merges small fan-ins: a task absorbs up to
//!   `max_width` dependencies that nobody else reads, up to `max_height` levels deep. It trades
//!   parallelism for less per-task overhead, so it is off unless asked for.
//!
//! Requested outputs are never fused away. Both passes expect an acyclic graph.

use std::sync::Arc;

use smallvec::SmallVec;

use crate::error::Result;
use crate::lower::fused_label;
use crate::task_graph::{Body, OpArg, Origin, OriginKey, Program, Task, TaskGraph, TaskIndex};
use crate::value::Value;

/// Settings of [`fuse_fan_in`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FanInFusion {
    /// The most dependencies one task absorbs at one level.
    pub max_width: usize,
    /// How many levels of absorbed tasks one fused task may contain.
    pub max_height: u32,
}

impl Default for FanInFusion {
    fn default() -> Self {
        FanInFusion { max_width: 4, max_height: 2 }
    }
}

/// Builds one fused program from member tasks, each added after the tasks it reads.
struct FusedProgram {
    program: Program,
    deps: Vec<TaskIndex>,
    part: u32,
    retries: u32,
}

impl FusedProgram {
    fn new(part: u32) -> Self {
        FusedProgram {
            program: Program { ops: SmallVec::new(), label: None, origins: Vec::new() },
            deps: Vec::new(),
            part,
            retries: 0,
        }
    }

    /// Appends `task`'s ops. Its `n`-th dependency is read through `dep(n)`: either the result
    /// of ops already appended (`Some(op index)`) or an outside task (`None`).
    fn append(
        &mut self,
        task: &Task,
        deps: &[TaskIndex],
        inside: impl Fn(usize) -> Option<u32>,
    ) -> u32 {
        let offset = self.program.ops.len() as u32;
        let mut dep_args = Vec::with_capacity(deps.len());
        for (n, &dep) in deps.iter().enumerate() {
            dep_args.push(match inside(n) {
                Some(op) => OpArg::Prev(op),
                None => {
                    let position = match self.deps.iter().position(|&d| d == dep) {
                        Some(position) => position,
                        None => {
                            self.deps.push(dep);
                            self.deps.len() - 1
                        }
                    };
                    OpArg::Dep(position as u32)
                }
            });
        }
        // A fused task of another block (an array slice reads chunk 3 into chunk 0) keeps its
        // own block number as a literal, one that can travel to a worker.
        let part = (task.part != self.part).then(|| Value::serde(task.part));
        for (i, op) in task.ops().iter().enumerate() {
            let mut op = op.clone();
            op.args.iter_mut().for_each(|arg| rebase(arg, offset, &dep_args, part.as_ref()));
            self.program.ops.push(op);
            // Keep naming the task each op was written in (its own origins, if already fused).
            let source = OriginKey::Task(task.origin_of(i));
            match self.program.origins.last_mut() {
                Some(last) if matches!((&last.source, &source), (OriginKey::Task(a), OriginKey::Task(b)) if a == b) =>
                {
                    last.last_op += 1;
                }
                _ => self.program.origins.push(Origin { last_op: offset + i as u32, source }),
            }
        }
        self.retries = self.retries.max(task.retries);
        self.program.ops.len() as u32 - 1
    }

    fn finish(mut self, key_task: &Task) -> (Task, Vec<TaskIndex>) {
        self.program.label = Some(fused_label(self.program.ops.iter().map(|op| op.func.name())));
        self.program.mark_last_uses();
        let task = Task {
            key: key_task.key.clone(),
            body: Body::Program(Arc::new(self.program)),
            part: self.part,
            retries: self.retries,
        };
        (task, self.deps)
    }
}

fn rebase(arg: &mut OpArg, offset: u32, dep_args: &[OpArg], part: Option<&Value>) {
    match arg {
        OpArg::Dep(n) => *arg = dep_args[*n as usize].clone(),
        OpArg::Prev(i) | OpArg::TakePrev(i) => *i += offset,
        OpArg::Part => {
            if let Some(part) = part {
                *arg = OpArg::Value(part.clone());
            }
        }
        OpArg::List(items) => {
            items.iter_mut().for_each(|item| rebase(item, offset, dep_args, part))
        }
        OpArg::Value(_) => {}
    }
}

/// Whether each task is an output.
fn outputs_mask(graph: &TaskGraph) -> Vec<bool> {
    let mut mask = vec![false; graph.len()];
    graph.outputs().iter().for_each(|&o| mask[o as usize] = true);
    mask
}

/// Rebuilds a graph from the kept tasks (each with its new dependency list, in old indices).
fn rebuild(graph: &TaskGraph, kept: Vec<(TaskIndex, Task, Vec<TaskIndex>)>) -> TaskGraph {
    let mut new_index = vec![TaskIndex::MAX; graph.len()];
    for (new, (old, _, _)) in kept.iter().enumerate() {
        new_index[*old as usize] = new as TaskIndex;
    }
    let mut fused = TaskGraph::with_capacity(kept.len());
    for (_, task, deps) in kept {
        fused.push(task, deps.iter().map(|&d| new_index[d as usize]));
    }
    fused.set_outputs(graph.outputs().iter().map(|&o| new_index[o as usize]).collect());
    fused
}

/// Merges linear chains into single tasks. Returns the graph unchanged (`false`) when it has
/// no chain to merge.
pub fn fuse_linear(graph: TaskGraph) -> (TaskGraph, bool) {
    let dependents = graph.dependents();
    let is_output = outputs_mask(&graph);
    // `d` can be merged into its only reader, which reads nothing else.
    let merges_forward = |d: TaskIndex| -> bool {
        let readers = dependents.of(d);
        readers.len() == 1
            && !is_output[d as usize]
            && !graph.task(d).is_external()
            && graph.deps(readers[0]).len() == 1
    };
    if !(0..graph.len() as TaskIndex).any(merges_forward) {
        return (graph, false);
    }
    let mut kept = Vec::with_capacity(graph.len());
    let mut chain = Vec::new();
    for end in 0..graph.len() as TaskIndex {
        if merges_forward(end) {
            continue;
        }
        chain.clear();
        chain.push(end);
        let mut current = end;
        while let [only] = graph.deps(current) {
            if !merges_forward(*only) {
                break;
            }
            current = *only;
            chain.push(current);
        }
        let end_task = graph.task(end);
        if chain.len() == 1 {
            kept.push((end, end_task.clone(), graph.deps(end).to_vec()));
            continue;
        }
        let mut fused = FusedProgram::new(end_task.part);
        let mut last_op = None;
        for &member in chain.iter().rev() {
            let previous = last_op;
            last_op = Some(fused.append(graph.task(member), graph.deps(member), |_| previous));
        }
        let (task, deps) = fused.finish(end_task);
        kept.push((end, task, deps));
    }
    (rebuild(&graph, kept), true)
}

/// Lets tasks absorb small dependencies that nobody else reads (see [`FanInFusion`]).
pub fn fuse_fan_in(graph: &TaskGraph, settings: FanInFusion) -> Result<TaskGraph> {
    let order = crate::order::order(graph)?;
    let dependents = graph.dependents();
    let is_output = outputs_mask(graph);
    let n = graph.len();
    // The current (possibly fused) form of each task, and how many levels it has absorbed.
    let mut current: Vec<Option<(Task, Vec<TaskIndex>)>> = vec![None; n];
    let mut height = vec![0u32; n];
    let mut absorbed = vec![false; n];
    for &task in &order {
        let deps = graph.deps(task);
        let candidates: Vec<usize> = (0..deps.len())
            .filter(|&n| {
                let d = deps[n];
                dependents.of(d).len() == 1
                    && !is_output[d as usize]
                    && height[d as usize] < settings.max_height
            })
            .collect();
        if candidates.is_empty() || candidates.len() > settings.max_width {
            continue;
        }
        let this = graph.task(task);
        let mut fused = FusedProgram::new(this.part);
        let mut result_of = vec![None; deps.len()];
        for &n in &candidates {
            let d = deps[n] as usize;
            let (dep_task, dep_deps) = current[d].take().unwrap_or_else(|| {
                (graph.task(d as TaskIndex).clone(), graph.deps(d as TaskIndex).to_vec())
            });
            result_of[n] = Some(fused.append(&dep_task, &dep_deps, |_| None));
            absorbed[d] = true;
            height[task as usize] = height[task as usize].max(height[d] + 1);
        }
        fused.append(this, deps, |n| result_of[n]);
        current[task as usize] = Some(fused.finish(this));
    }
    let kept = order
        .iter()
        .filter(|&&t| !absorbed[t as usize])
        .map(|&t| {
            let (task, deps) = current[t as usize]
                .take()
                .unwrap_or_else(|| (graph.task(t).clone(), graph.deps(t).to_vec()));
            (t, task, deps)
        })
        .collect();
    Ok(rebuild(graph, kept))
}
