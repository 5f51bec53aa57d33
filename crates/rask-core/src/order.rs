//! Static ordering: which ready task to run first.
//!
//! Like `dask.order`, rask gives every task a priority before running the graph, so that the
//! scheduler works towards finishing outputs and few intermediate results are held at once.
//! The order is a depth-first post-order from the outputs (in the order they were requested):
//! a task comes right after the last of its dependencies. Among a task's dependencies, the
//! tallest subtree goes first (the Sethi–Ullman rule for evaluating expression trees with the
//! fewest registers): its result is then held while the shorter ones run, not the other way
//! round. A binary reduction over `n` leaves then holds about `log2(n)` results at a time
//! instead of `n/2`.
//!
//! Both passes are iterative, so a 100,000-task chain orders without deep recursion, and the
//! first pass reports a cycle with the keys on it.

use crate::error::{Error, Result};
use crate::task_graph::{TaskGraph, TaskIndex};

const NEW: u8 = 0;
const ACTIVE: u8 = 1;
const DONE: u8 = 2;

/// The order to run `graph`'s tasks in: `order[k]` is the task with priority `k` (lower first).
/// Every task appears once, after all of its dependencies.
pub fn order(graph: &TaskGraph) -> Result<Vec<TaskIndex>> {
    Ok(order_by_heights(graph, &heights(graph)?))
}

/// [`order`], given the graph's [`heights`] (which also proved it acyclic).
pub fn order_by_heights(graph: &TaskGraph, heights: &[u32]) -> Vec<TaskIndex> {
    let n = graph.len();
    // Each task's dependencies, tallest first; ties keep their argument order.
    let mut sorted: Vec<TaskIndex> = Vec::with_capacity(n);
    let mut offsets: Vec<u32> = Vec::with_capacity(n + 1);
    offsets.push(0);
    for task in 0..n as TaskIndex {
        let start = sorted.len();
        sorted.extend_from_slice(graph.deps(task));
        sorted[start..].sort_by_key(|&d| std::cmp::Reverse(heights[d as usize]));
        offsets.push(sorted.len() as u32);
    }
    let children =
        |t: TaskIndex| &sorted[offsets[t as usize] as usize..offsets[t as usize + 1] as usize];

    let mut state = vec![NEW; n];
    let mut order = Vec::with_capacity(n);
    let mut stack: Vec<(TaskIndex, u32)> = Vec::new();
    for root in roots(graph) {
        if state[root as usize] != NEW {
            continue;
        }
        state[root as usize] = ACTIVE;
        stack.push((root, 0));
        while let Some((task, next)) = stack.last_mut() {
            let task = *task;
            match children(task).get(*next as usize) {
                Some(&dep) => {
                    *next += 1;
                    if state[dep as usize] == NEW {
                        state[dep as usize] = ACTIVE;
                        stack.push((dep, 0));
                    }
                }
                None => {
                    state[task as usize] = DONE;
                    order.push(task);
                    stack.pop();
                }
            }
        }
    }
    order
}

/// The outputs first, then every other task (only present when culling is off).
fn roots(graph: &TaskGraph) -> impl Iterator<Item = TaskIndex> + '_ {
    graph.outputs().iter().copied().chain(0..graph.len() as TaskIndex)
}

/// The longest path from each task down to a task without dependencies; an error on a cycle.
pub fn heights(graph: &TaskGraph) -> Result<Vec<u32>> {
    let n = graph.len();
    let mut state = vec![NEW; n];
    let mut height = vec![0u32; n];
    let mut stack: Vec<(TaskIndex, u32)> = Vec::new();
    for root in roots(graph) {
        if state[root as usize] != NEW {
            continue;
        }
        state[root as usize] = ACTIVE;
        stack.push((root, 0));
        while let Some((task, next)) = stack.last_mut() {
            let task = *task;
            match graph.deps(task).get(*next as usize) {
                Some(&dep) => {
                    *next += 1;
                    match state[dep as usize] {
                        NEW => {
                            state[dep as usize] = ACTIVE;
                            stack.push((dep, 0));
                        }
                        ACTIVE => return Err(cycle_error(graph, &stack, dep)),
                        _ => {}
                    }
                }
                None => {
                    height[task as usize] =
                        graph.deps(task).iter().map(|&d| height[d as usize] + 1).max().unwrap_or(0);
                    state[task as usize] = DONE;
                    stack.pop();
                }
            }
        }
    }
    Ok(height)
}

/// The cycle that the DFS stack closes by reaching `dep` again.
fn cycle_error(graph: &TaskGraph, stack: &[(TaskIndex, u32)], dep: TaskIndex) -> Error {
    let start = stack.iter().position(|&(t, _)| t == dep).unwrap_or(0);
    // The stack goes from a task to its dependency; a cycle reads better in that direction.
    let keys = stack[start..].iter().map(|&(t, _)| graph.task(t).key.clone()).collect();
    Error::Cycle { keys }
}

/// How many results are held at most when the tasks run one at a time in `order`: a result is
/// held from when its task runs until its last dependent has run (outputs until the end).
pub fn peak_results_held(graph: &TaskGraph, order: &[TaskIndex]) -> usize {
    let dependents = graph.dependents();
    let mut is_output = vec![false; graph.len()];
    graph.outputs().iter().for_each(|&o| is_output[o as usize] = true);
    let mut remaining: Vec<usize> =
        (0..graph.len() as TaskIndex).map(|t| dependents.of(t).len()).collect();
    let (mut held, mut peak) = (0usize, 0usize);
    for &task in order {
        held += 1;
        peak = peak.max(held);
        for &dep in graph.deps(task) {
            remaining[dep as usize] -= 1;
            if remaining[dep as usize] == 0 && !is_output[dep as usize] {
                held -= 1;
            }
        }
        if remaining[task as usize] == 0 && !is_output[task as usize] {
            held -= 1;
        }
    }
    peak
}
