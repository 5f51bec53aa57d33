//! Carry chains: each partition's result depends on the partitions before it through a small
//! *carry* passed along the sequence (Dask's `cumreduction` and the neighbour rows of
//! `map_overlap`).
//!
//! ```text
//! part 0 ──carry──▶ c0 ──┐            part 1 ──carry(…, c0)──▶ c1 ──┐
//!   └──apply──▶ out 0    └─▶ part 1 ──apply(…, c0)──▶ out 1           └─▶ part 2 ──apply(…, c1)──▶ out 2
//! ```
//!
//! A *carry* task reads one partition and the carry into it and returns the carry into the
//! next one: the running totals of a cumulative sum, the last `n − 1` rows of the frame so far
//! for a rolling window of `n` rows, the bin still open at the end of a resample. An *apply*
//! task reads the same partition and the carry into it and returns the output partition. The
//! large work (the apply tasks) stays parallel; only the small carries are sequential. Running
//! the chain over the partitions in reverse gives carries from the partitions *after* each one
//! (a negative shift).
//!
//! Because a carry is computed from data, not from sizes known in advance, the result is exact
//! whatever the partitioning: empty partitions pass their carry on, and a window longer than a
//! partition borrows from as many partitions back as it needs.

use serde::{Deserialize, Serialize};

use crate::key::{Key, Name, Tokenizer};
use crate::task::{Arg, TaskFn, TaskSpec};
use crate::value::Value;

/// Where an apply task's partition lies in its chain (its second argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLink {
    /// Position along the chain (0 is the first partition, which has no carry).
    pub position: u32,
    /// How many partitions the chain has.
    pub len: u32,
}
crate::register_type!(ChainLink);

impl ChainLink {
    /// Whether this is the first partition of the chain (no carry comes in).
    pub fn first(self) -> bool {
        self.position == 0
    }

    /// Whether this is the last partition of the chain (nothing comes after it).
    pub fn last(self) -> bool {
        self.position + 1 == self.len
    }
}

/// How a collection carries state along its partitions.
///
/// * `carry(part_i, args..., [carry into i])` returns the carry into partition `i + 1`;
/// * `apply(part_i, link: ChainLink, [side_i], args..., [carry into i])` returns output `i`.
///
/// The carry argument is left out for the first partition of the chain; `side_i` is there
/// when the chain is built with [`CarryChain::tasks_with_sides`] and it has one for `i` (what
/// another chain, run the other way, carried into the partition: see
/// [`carries`]).
#[derive(Clone)]
pub struct CarryChain {
    /// The readable prefix of the carry tasks' names (`"rolling-carry"`).
    pub prefix: String,
    /// Makes the carry into the next partition.
    pub carry: TaskFn,
    /// Makes one output partition.
    pub apply: TaskFn,
    /// Arguments of both after the partition (and the link).
    pub args: Vec<Arg>,
}

impl CarryChain {
    /// The tasks that make `outputs[i]` from `inputs[i]` and the carry from `inputs[..i]`,
    /// in that order (pass both reversed to carry from the partitions after). The carry tasks
    /// are named after `outputs[0]`, so the chains of different outputs never share keys.
    ///
    /// # Panics
    /// If `inputs` and `outputs` differ in length (a caller's bug).
    pub fn tasks(&self, inputs: &[Key], outputs: &[Key]) -> Vec<(Key, TaskSpec)> {
        self.tasks_with_sides(inputs, None, outputs)
    }

    /// [`tasks`](Self::tasks), with one more input for apply task `i` when `sides[i]` is
    /// there.
    ///
    /// # Panics
    /// If the lists differ in length (a caller's bug).
    pub fn tasks_with_sides(
        &self,
        inputs: &[Key],
        sides: Option<&[Option<Key>]>,
        outputs: &[Key],
    ) -> Vec<(Key, TaskSpec)> {
        assert_eq!(inputs.len(), outputs.len(), "a carry chain maps each input to one output");
        if let Some(sides) = sides {
            assert_eq!(sides.len(), inputs.len(), "one side input per partition");
        }
        let Some(first_output) = outputs.first() else { return Vec::new() };
        let name = Name::tokenized(&self.prefix, Tokenizer::new().key(first_output).finish());
        let (mut tasks, into) = carries(&self.carry, &self.args, inputs, &name);
        let len = inputs.len() as u32;
        for (position, (input, output)) in inputs.iter().zip(outputs).enumerate() {
            let mut args = vec![
                Arg::Key(input.clone()),
                Arg::Value(Value::serde(ChainLink { position: position as u32, len })),
            ];
            if let Some(Some(side)) = sides.map(|sides| &sides[position]) {
                args.push(Arg::Key(side.clone()));
            }
            args.extend(self.args.iter().cloned());
            args.extend(into[position].clone().map(Arg::Key));
            tasks.push((output.clone(), TaskSpec::new(self.apply.clone(), args)));
        }
        tasks
    }
}

/// Only the carry tasks of a chain, `carry(part_i, args..., [carry into i])`, named after
/// `name`, and the key of the carry *into* every position (`None` for the first): for
/// operations that read carries beside other inputs. No carry is made past the last input.
pub fn carries(
    carry: &TaskFn,
    args: &[Arg],
    inputs: &[Key],
    name: &Name,
) -> (Vec<(Key, TaskSpec)>, Vec<Option<Key>>) {
    let mut tasks = Vec::with_capacity(inputs.len() * 2);
    let mut into = Vec::with_capacity(inputs.len());
    let mut carry_in: Option<Key> = None;
    for (position, input) in inputs.iter().enumerate() {
        into.push(carry_in.clone());
        if position + 1 < inputs.len() {
            let mut carry_args = vec![Arg::Key(input.clone())];
            carry_args.extend(args.iter().cloned());
            carry_args.extend(carry_in.map(Arg::Key));
            let key = Key::part(name.clone(), position as u32);
            tasks.push((key.clone(), TaskSpec::new(carry.clone(), carry_args)));
            carry_in = Some(key);
        }
    }
    (tasks, into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Graph;
    use crate::value::Value;

    // A running sum: the carry is the total so far, the output the partition's values plus it.
    fn total(args: &[Value]) -> crate::TaskResult {
        let part: &Vec<i64> = args[0].get(&"a partition")?;
        let before = match args.get(1) {
            Some(carry) => *carry.get::<i64>(&"the carry")?,
            None => 0,
        };
        Ok(Value::new(before + part.iter().sum::<i64>()))
    }
    fn running(args: &[Value]) -> crate::TaskResult {
        let part: &Vec<i64> = args[0].get(&"a partition")?;
        let link: &ChainLink = args[1].get(&"the link")?;
        assert_eq!(link.first(), args.len() == 2, "the first partition gets no carry");
        let mut sum = match args.get(2) {
            Some(carry) => *carry.get::<i64>(&"the carry")?,
            None => 0,
        };
        let out: Vec<i64> = part
            .iter()
            .map(|v| {
                sum += v;
                sum
            })
            .collect();
        Ok(Value::new(out))
    }
    crate::register_function!("rask_core::partitioned::carry::tests::total", total);
    crate::register_function!("rask_core::partitioned::carry::tests::running", running);

    #[test]
    fn a_chain_carries_totals_across_empty_and_uneven_partitions() {
        let lookup = |n: &str| crate::registry::lookup(n).unwrap();
        let parts: Vec<Vec<i64>> = vec![vec![1, 2], vec![], vec![3], vec![4, 5, 6], vec![]];
        let identity = lookup("rask::identity");
        let inputs: Vec<(Key, TaskSpec)> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    Key::part("part", i as u32),
                    TaskSpec::new(identity.clone(), vec![Arg::value(p.clone())]),
                )
            })
            .collect();
        let input_keys: Vec<Key> = inputs.iter().map(|(k, _)| k.clone()).collect();
        let output_keys: Vec<Key> = (0..parts.len() as u32).map(|i| Key::part("out", i)).collect();
        let chain = CarryChain {
            prefix: "sum-carry".into(),
            carry: lookup("rask_core::partitioned::carry::tests::total"),
            apply: lookup("rask_core::partitioned::carry::tests::running"),
            args: Vec::new(),
        };
        let tasks = chain.tasks(&input_keys, &output_keys);
        // One apply per partition, one carry per partition but the last.
        assert_eq!(tasks.len(), 2 * parts.len() - 1);
        assert!(tasks.iter().all(|(_, spec)| spec
            .args
            .iter()
            .all(|a| !matches!(a, Arg::Value(v) if v.encode().is_err()))));
        let mut all = inputs.clone();
        all.extend(tasks);
        let graph = Graph::from_tasks(all);
        let values = super::super::run_in_order(&graph, &output_keys).unwrap();
        let got: Vec<Vec<i64>> =
            values.iter().map(|v| v.get::<Vec<i64>>(&"an output").unwrap().clone()).collect();
        let flat: Vec<i64> = parts.concat();
        let mut sum = 0;
        let expected: Vec<i64> = flat
            .iter()
            .map(|v| {
                sum += v;
                sum
            })
            .collect();
        assert_eq!(got.concat(), expected);
        assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 0, 1, 3, 0]);
        // The carries alone: the total of the partitions before each one.
        let (carry_tasks, into) = carries(&chain.carry, &[], &input_keys, &Name::from("totals"));
        assert_eq!(carry_tasks.len(), parts.len() - 1);
        assert!(into[0].is_none());
        let mut all = inputs;
        all.extend(carry_tasks);
        let wanted: Vec<Key> = into.iter().flatten().cloned().collect();
        let totals = super::super::run_in_order(&Graph::from_tasks(all), &wanted).unwrap();
        let totals: Vec<i64> = totals.iter().map(|v| *v.get::<i64>(&"a total").unwrap()).collect();
        assert_eq!(totals, vec![3, 3, 6, 21]);
    }
}
