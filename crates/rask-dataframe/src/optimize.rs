//! Shared reads: one parse of a partition for several aggregations computed together.
//!
//! The first stage of every aggregation runs inside its partition's read query
//! (`Step::PartialAgg`), so that the reader parses only the columns the aggregation uses. When
//! two aggregations of the same frame are computed together — `(by_day, by_hour).compute()` —
//! that would parse every partition twice. This pass, which DataFrames add to the lowering
//! pipeline, finds read tasks that differ only in their final partial aggregation and gives
//! them one shared read: the common steps, then a projection to the columns any of the
//! aggregations needs (their keys and inputs). Each aggregation becomes a small task over that
//! result.

use std::collections::HashMap;

use rask_core::task_graph::{Body, Op, OpArg, Task, TaskGraph, TaskIndex};
use rask_core::{Key, Name, Tokenizer, Value};

use crate::plan::{Source, Step, Steps};
use crate::polars_adapter as pl;
use crate::tasks;

/// A read task whose last step is a partial aggregation, and what it would share.
struct Candidate {
    /// Identifies the source, the partition and the steps before the aggregation.
    group: u128,
    source: Value,
    part: u32,
    prefix: Vec<Step>,
    last: Step,
    columns: Vec<String>,
}

/// The token of a source value. The reads of one frame share one source value, so each
/// distinct source is serialized once per pass, not once per task.
fn source_token(source: &Value, seen: &mut Vec<(Value, u128)>) -> Option<u128> {
    if let Some((_, token)) = seen.iter().find(|(value, _)| value.ptr_eq(source)) {
        return Some(*token);
    }
    let mut tokenizer = Tokenizer::new();
    tokenizer.bytes(&rmp_serde::to_vec(source.downcast_ref::<Source>()?).ok()?);
    let token = tokenizer.finish().0;
    seen.push((source.clone(), token));
    Some(token)
}

/// The read task `task`, if it can share its read: a single call of `rask_dataframe::read`
/// with literal arguments only, ending in a partial aggregation.
fn candidate(task: &Task, sources: &mut Vec<(Value, u128)>) -> Option<Candidate> {
    let Body::Call(op) = &task.body else { return None };
    if op.func.name() != "rask_dataframe::read" {
        return None;
    }
    let [OpArg::Value(source), OpArg::Value(part), OpArg::Value(steps), OpArg::List(extras)] =
        &op.args[..]
    else {
        return None;
    };
    if !extras.is_empty() {
        return None;
    }
    let steps = steps.downcast_ref::<Steps>()?;
    let (last, prefix) = steps.0.split_last()?;
    let Step::PartialAgg(spec) = last else { return None };
    let part = *part.downcast_ref::<u32>()?;
    let mut tokenizer = Tokenizer::new();
    tokenizer.token(rask_core::Token(source_token(source, sources)?));
    tokenizer.bytes(&rmp_serde::to_vec(&Steps(prefix.to_vec())).ok()?);
    tokenizer.u64(u64::from(part));
    let mut columns = spec.keys.clone();
    columns.extend(spec.aggs.iter().filter(|a| !a.column.is_empty()).map(|a| a.column.clone()));
    Some(Candidate {
        group: tokenizer.finish().0,
        source: source.clone(),
        part,
        prefix: prefix.to_vec(),
        last: last.clone(),
        columns,
    })
}

/// The pass: rewrites groups of two or more reads of the same partition into one shared read
/// and one aggregation task each. Graphs without such groups come back unchanged.
pub fn share_reads(graph: TaskGraph) -> rask_core::Result<TaskGraph> {
    let mut sources = Vec::new();
    let candidates: Vec<Option<Candidate>> =
        graph.tasks().iter().map(|task| candidate(task, &mut sources)).collect();
    let mut groups: HashMap<u128, Vec<TaskIndex>> = HashMap::new();
    for (index, c) in candidates.iter().enumerate() {
        if let Some(c) = c {
            groups.entry(c.group).or_default().push(index as TaskIndex);
        }
    }
    groups.retain(|_, members| members.len() > 1);
    if groups.is_empty() {
        return Ok(graph);
    }
    // Task indices are not in dependency order (lowering numbers tasks as it discovers them
    // from the outputs), so number everything first, then push with the dependencies mapped.
    let grouped =
        |index: usize| candidates[index].as_ref().filter(|c| groups.contains_key(&c.group));
    let mut new_index: Vec<TaskIndex> = Vec::with_capacity(graph.len());
    let mut shared: HashMap<u128, TaskIndex> = HashMap::new();
    let mut next: TaskIndex = 0;
    for index in 0..graph.len() {
        if let Some(c) = grouped(index) {
            shared.entry(c.group).or_insert_with(|| {
                next += 1;
                next - 1
            });
        }
        new_index.push(next);
        next += 1;
    }
    let mut out = TaskGraph::with_capacity(next as usize);
    let mut pushed_shared: std::collections::HashSet<u128> = std::collections::HashSet::new();
    for (index, task) in graph.tasks().iter().enumerate() {
        let Some(c) = grouped(index) else {
            let deps: Vec<TaskIndex> =
                graph.deps(index as TaskIndex).iter().map(|d| new_index[*d as usize]).collect();
            out.push(task.clone(), deps);
            continue;
        };
        if pushed_shared.insert(c.group) {
            // The union of the columns every aggregation of the group needs, in a stable order.
            let mut columns: Vec<String> = Vec::new();
            for member in &groups[&c.group] {
                for column in &candidates[*member as usize].as_ref().expect("a member").columns {
                    if !columns.contains(column) {
                        columns.push(column.clone());
                    }
                }
            }
            let mut steps = c.prefix.clone();
            steps.push(Step::Select(columns.iter().map(|name| pl::column(name)).collect()));
            let key = Key::part(Name::tokenized("read-shared", rask_core::Token(c.group)), c.part);
            let op = Op {
                func: tasks::read_function(),
                args: vec![
                    OpArg::Value(c.source.clone()),
                    OpArg::Value(Value::serde(c.part)),
                    OpArg::Value(Value::serde(Steps(steps))),
                    OpArg::List(Box::new([])),
                ]
                .into_boxed_slice(),
            };
            let read = Task { key, body: Body::Call(op), part: c.part, retries: task.retries };
            let at = out.push(read, []);
            debug_assert_eq!(at, shared[&c.group]);
        }
        let op = Op {
            func: tasks::apply_function(),
            args: vec![
                OpArg::Dep(0),
                OpArg::Value(Value::serde(c.part)),
                OpArg::Value(Value::serde(Steps(vec![c.last.clone()]))),
                OpArg::List(Box::new([])),
            ]
            .into_boxed_slice(),
        };
        let rewritten = Task {
            key: task.key.clone(),
            body: Body::Call(op),
            part: task.part,
            retries: task.retries,
        };
        out.push(rewritten, [shared[&c.group]]);
    }
    out.set_outputs(graph.outputs().iter().map(|o| new_index[*o as usize]).collect());
    Ok(out)
}
