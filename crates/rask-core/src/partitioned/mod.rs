//! What every partitioned collection builds its graphs from: tree reductions, aliases and
//! shuffles.
//!
//! DataFrames, Arrays and Bags are grids of chunks (keys with a [`BlockIndex`]) made by
//! [`Blockwise`] layers; what combines chunks is shared here instead of written per collection:
//!
//! * [`TreeReduction`]: `split_every` inputs at a time are merged by a *combine* task, level by
//!   level, until at most `split_every` are left for the *finish* task — Dask's
//!   `apply-concat-apply` trees. A DataFrame group-by reduces its per-partition partials this
//!   way, an Array reduction the per-chunk partials along the reduced axes.
//! * [`alias_layer`]: new keys that stand for existing ones (concatenation of collections,
//!   re-indexing of chunks), one identity task each, which linear fusion removes.
//! * [`carry::CarryChain`]: each partition's result from the partitions before it, through a
//!   small carry passed along (cumulative sums, rolling windows, shifts, resampled bins that
//!   straddle partitions).
//! * [`shuffle::Shuffle`]: `N` partitions into `M` by each row's key (hash or range), every
//!   output verified against what the inputs sent — the joins, sorts and group-applies of
//!   DataFrames, the group-bys of Bags.
//!
//! [`BlockIndex`]: crate::BlockIndex
//! [`Blockwise`]: crate::Blockwise

pub mod carry;
pub mod shuffle;

pub use carry::{carries, CarryChain, ChainLink};
pub use shuffle::{Shuffle, Tally};

use crate::graph::{Graph, Layer};
use crate::key::{Key, Name, Tokenizer};
use crate::task::{Arg, TaskFn, TaskSpec};

/// A reduction tree: `combine(list, args...)` over `split_every` inputs at a time, then
/// `finish(list, args...)` over the last level.
#[derive(Clone)]
pub struct TreeReduction {
    /// The readable prefix of the combine tasks' names (`"agg-combine"`).
    pub combine_prefix: String,
    /// Merges a list of partial results into one partial result.
    pub combine: TaskFn,
    /// Turns a list of partial results into the result.
    pub finish: TaskFn,
    /// Arguments passed to both after the list (the reduction's spec).
    pub args: Vec<Arg>,
    /// The most inputs one task reads (at least 2).
    pub split_every: usize,
}

impl TreeReduction {
    /// The tasks that reduce `inputs` into `output`: combine levels, then the finish task with
    /// the key `output`. Combine tasks are named after `output`, so the trees of different
    /// outputs (group-by shards, array blocks) never share keys.
    pub fn tasks(&self, inputs: Vec<Key>, output: Key) -> Vec<(Key, TaskSpec)> {
        let split_every = self.split_every.max(2);
        let mut tasks = Vec::new();
        let mut level = inputs;
        let mut depth = 0u64;
        while level.len() > split_every {
            depth += 1;
            let name = Name::tokenized(
                &self.combine_prefix,
                Tokenizer::new().key(&output).u64(depth).finish(),
            );
            let start = tasks.len();
            for (i, group) in level.chunks(split_every).enumerate() {
                tasks.push((Key::part(name.clone(), i as u32), self.call(&self.combine, group)));
            }
            level = tasks[start..].iter().map(|(key, _)| key.clone()).collect();
        }
        tasks.push((output, self.call(&self.finish, &level)));
        tasks
    }

    fn call(&self, func: &TaskFn, inputs: &[Key]) -> TaskSpec {
        let mut args = Vec::with_capacity(self.args.len() + 1);
        args.push(Arg::List(inputs.iter().cloned().map(Arg::Key).collect()));
        args.extend(self.args.iter().cloned());
        TaskSpec::new(func.clone(), args)
    }
}

/// A layer named `name` whose keys stand for existing keys of `inputs`: `(new, old)` pairs.
pub fn alias_layer(name: Name, aliases: Vec<(Key, Key)>, inputs: &[&Graph]) -> Graph {
    let identity = crate::registry::lookup(crate::delayed::IDENTITY)
        .expect("rask::identity is registered by rask-core itself");
    let tasks = aliases
        .into_iter()
        .map(|(new, old)| (new, TaskSpec::new(identity.clone(), vec![Arg::Key(old)])))
        .collect();
    Graph::from_layer(Layer::tasks(name, tasks, inputs))
}

/// Runs the tasks of a graph one by one in this thread (the tests of the builders here).
#[cfg(test)]
pub(crate) fn run_in_order(
    graph: &Graph,
    outputs: &[Key],
) -> Result<Vec<crate::value::Value>, String> {
    use crate::optimize::{prepare, Optimizations};
    let prepared = prepare(graph, outputs, &Optimizations::none()).map_err(|e| e.to_string())?;
    let mut results: Vec<Option<crate::value::Value>> = vec![None; prepared.len()];
    for t in 0..prepared.len() as u32 {
        let deps: Vec<crate::value::Value> = prepared
            .deps(t)
            .iter()
            .map(|&d| results[d as usize].clone().expect("dependencies run first"))
            .collect();
        results[t as usize] = Some(prepared.task(t).run(&deps).map_err(|(_, e)| e.to_string())?);
    }
    Ok(prepared
        .outputs()
        .iter()
        .map(|&o| results[o as usize].clone().expect("every task ran"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn sum(args: &[Value]) -> crate::TaskResult {
        let mut total = 0_i64;
        for value in args[0].as_list().expect("a list") {
            total += value.get::<i64>(&"a partial")?;
        }
        Ok(Value::new(total + args[1].get::<i64>(&"offset")?))
    }
    crate::register_function!("rask_core::partitioned::tests::sum", sum);

    #[test]
    fn a_tree_reads_at_most_split_every_inputs_per_task_and_finishes_once() {
        let sum = crate::registry::lookup("rask_core::partitioned::tests::sum").unwrap();
        let leaves: Vec<(Key, TaskSpec)> = (0..50)
            .map(|i| {
                let identity = crate::registry::lookup("rask::identity").unwrap();
                (Key::part("leaf", i), TaskSpec::new(identity, vec![Arg::value(i64::from(i))]))
            })
            .collect();
        let leaf_keys: Vec<Key> = leaves.iter().map(|(k, _)| k.clone()).collect();
        let leaves = Graph::from_tasks(leaves);
        // 50 leaves at 4 per task: 13 combines, then 4, then a finish over 4.
        let tree = TreeReduction {
            combine_prefix: "sum-combine".into(),
            combine: sum.clone(),
            finish: sum,
            args: vec![Arg::value(0_i64)],
            split_every: 4,
        };
        let tasks = tree.tasks(leaf_keys, Key::new("total"));
        assert_eq!(tasks.len(), 13 + 4 + 1);
        for (_, spec) in &tasks {
            let mut reads = 0;
            spec.for_each_dependency(|_| reads += 1);
            assert!(reads <= 4, "a task reads {reads} inputs");
        }
        let graph = Graph::from_layer(Layer::tasks("total", tasks, &[&leaves]));
        let total = &run_in_order(&graph, &[Key::new("total")]).unwrap()[0];
        assert_eq!(total.get::<i64>(&"total").unwrap(), &(0..50).sum::<i64>());
    }
}
