//! Joins: of a partitioned frame with a broadcast right side (an in-memory Polars frame with
//! `join_frame`, or a small rask frame), and of two large frames — partition by partition
//! when both are indexed on the key with the same divisions, by a hash [shuffle] of both
//! sides on the keys otherwise. [`DataFrame::join`] chooses from what is known of the sizes
//! ([`JoinStrategy::Auto`]); [`DataFrame::join_with`] takes a strategy.
//!
//! After a shuffle, equal keys of both sides are in the same partition number, so every join
//! type is one Polars join per pair of partitions, unmatched rows included.
//!
//! For a broadcast, each left partition is joined with the whole right side inside its own query (a
//! [`Step::Join`]), which is all that inner, left, semi and anti joins need. Right and outer
//! joins also keep the right rows that match *no* left row — which no single partition can
//! know. Each partition keeps only the rows it takes part in, and one more partition holds the
//! right rows whose keys are not among the distinct keys of the whole left side (a tree
//! reduction, like `unique`): every right row appears once, as in Polars' own join.

use std::sync::Arc;

use rask_core::{Arg, Graph, Key, Layer, Name, TaskError, TaskResult, TaskSpec, Token, Tokenizer};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::{DataFrame, Extra};
use crate::plan::{JoinHow, Step};
use crate::polars_adapter::{self as pl, PlFrame, Schema};
use crate::tasks::{self, frame_of, partition_value};

/// What the task that finds the unmatched right rows needs to know.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct UnmatchedSpec {
    /// The left side's columns (the unmatched rows have nulls there).
    left_schema: Schema,
    left_on: Vec<String>,
    right_on: Vec<String>,
    how: JoinHow,
    suffix: String,
}
rask_core::register_type!(UnmatchedSpec);

const SUFFIX: &str = "_right";

/// A right side of at most this many known rows is broadcast to every left partition.
pub const BROADCAST_ROWS: u64 = 100_000;

/// How two rask frames are joined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JoinStrategy {
    /// Broadcast the right side when it is one partition or known to be small (at most
    /// [`BROADCAST_ROWS`] rows); join partition by partition when both sides are indexed on the
    /// key with the same divisions; shuffle both sides by a hash of the keys otherwise.
    #[default]
    Auto,
    /// Every left partition joins the whole right side (concatenated into one partition).
    Broadcast,
    /// Both sides shuffled by a hash of their keys into as many partitions as the larger has.
    Shuffle,
}

/// A join of one pair of partitions.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PairSpec {
    left_on: Vec<String>,
    right_on: Vec<String>,
    how: JoinHow,
    suffix: String,
}
rask_core::register_type!(PairSpec);

impl DataFrame {
    /// Joins every partition with an in-memory Polars frame (sent once to each worker that
    /// needs it): the broadcast join Dask does when one side is small. Every [`JoinHow`] is
    /// supported; right and outer joins read the left keys once more to find the right rows
    /// without a match.
    pub fn join_frame(
        &self,
        right: &PlFrame,
        left_on: &[&str],
        right_on: &[&str],
        how: JoinHow,
    ) -> Result<Self> {
        let mut tokenizer = Tokenizer::new();
        tokenizer.token(Token::unique());
        let extra = Extra::Frame(tasks::partition_value(right.clone()), tokenizer.finish());
        self.join_extra(extra, left_on, right_on, how)
    }

    /// Joins with a rask frame, choosing how from what is known of the two
    /// ([`JoinStrategy::Auto`]): broadcast when the right side is small, partition by partition
    /// when both are indexed alike on the key, a hash shuffle of both sides otherwise. Rows come
    /// out grouped by partition, not in the left side's order.
    pub fn join(
        &self,
        right: &DataFrame,
        left_on: &[&str],
        right_on: &[&str],
        how: JoinHow,
    ) -> Result<Self> {
        self.join_with(right, left_on, right_on, how, JoinStrategy::Auto)
    }

    /// [`join`](Self::join) with a chosen strategy.
    pub fn join_with(
        &self,
        right: &DataFrame,
        left_on: &[&str],
        right_on: &[&str],
        how: JoinHow,
        strategy: JoinStrategy,
    ) -> Result<Self> {
        let left_keys: Vec<String> = left_on.iter().map(|s| s.to_string()).collect();
        let right_keys: Vec<String> = right_on.iter().map(|s| s.to_string()).collect();
        check_keys(self, right, &left_keys, &right_keys)?;
        let small = right.npartitions() == 1
            || right.known_rows.as_ref().is_some_and(|r| r.iter().sum::<u64>() <= BROADCAST_ROWS);
        let strategy = match strategy {
            JoinStrategy::Auto if small => JoinStrategy::Broadcast,
            other => other,
        };
        if strategy == JoinStrategy::Broadcast {
            let right = right.repartition(1)?;
            let (graph, name) = right.partitions();
            let extra = Extra::Key(graph, Key::part(name, 0), Arc::new(right.schema().clone()));
            return self.join_extra(extra, left_on, right_on, how);
        }
        let spec = PairSpec {
            left_on: left_keys.clone(),
            right_on: right_keys.clone(),
            how,
            suffix: SUFFIX.into(),
        };
        if strategy == JoinStrategy::Auto && aligned(self, right, &left_keys, &right_keys) {
            return join_pairs(self, right, spec, "join-aligned");
        }
        let outputs = self.npartitions().max(right.npartitions());
        let left = self.shuffle(left_on, Some(outputs))?;
        let right = right.shuffle(right_on, Some(outputs))?;
        join_pairs(&left, &right, spec, "join-shuffled")
    }

    fn join_extra(
        &self,
        extra: Extra,
        left_on: &[&str],
        right_on: &[&str],
        how: JoinHow,
    ) -> Result<Self> {
        if left_on.len() != right_on.len() || left_on.is_empty() {
            return Err(Error::Invalid(format!(
                "join needs as many left keys as right keys, at least one: got {left_on:?} and {right_on:?}"
            )));
        }
        let left_keys: Vec<String> = left_on.iter().map(|s| s.to_string()).collect();
        let right_keys: Vec<String> = right_on.iter().map(|s| s.to_string()).collect();
        self.check_columns(&left_keys, "join (left keys)")?;
        let mut frame = self.clone();
        frame.extras.push(extra.clone());
        let step = Step::Join {
            right: frame.extras.len() - 1,
            left_on: left_on.iter().map(|c| pl::column(c)).collect(),
            right_on: right_on.iter().map(|c| pl::column(c)).collect(),
            how,
            suffix: SUFFIX.into(),
        };
        let matched = frame.with_step(step, "join")?;
        if !how.keeps_unmatched_right() {
            return Ok(matched);
        }
        let spec = UnmatchedSpec {
            left_schema: self.schema().clone(),
            left_on: left_keys.clone(),
            right_on: right_keys,
            how,
            suffix: SUFFIX.into(),
        };
        let unmatched = self.unmatched_right(extra, spec, matched.schema().clone())?;
        crate::ops::concat(&[matched, unmatched])
    }

    /// One partition: the right rows whose keys no left row has.
    fn unmatched_right(&self, extra: Extra, spec: UnmatchedSpec, schema: Schema) -> Result<Self> {
        let left_keys = self.unique(&spec.left_on)?;
        let (keys_graph, keys_name) = left_keys.partitions();
        let mut graphs = vec![keys_graph];
        let mut tokenizer = Tokenizer::new();
        tokenizer.str(keys_name.as_str());
        let right_arg = match extra {
            Extra::Frame(value, token) => {
                tokenizer.token(token);
                Arg::Value(value)
            }
            Extra::Key(graph, key, _) => {
                tokenizer.key(&key);
                graphs.push(graph);
                Arg::Key(key)
            }
        };
        let spec_bytes = rmp_serde::to_vec(&spec)
            .map_err(|e| Error::Invalid(format!("the join cannot be serialized: {e}")))?;
        tokenizer.bytes(&spec_bytes);
        let name = Name::tokenized("join-unmatched", tokenizer.finish());
        let task = TaskSpec::new(
            tasks::function("rask_dataframe::join_unmatched"),
            vec![
                Arg::Key(Key::part(keys_name, 0)),
                right_arg,
                Arg::Value(rask_core::Value::serde(spec)),
            ],
        );
        let graph = Graph::from_layer(Layer::tasks(
            name.clone(),
            vec![(Key::part(name.clone(), 0), task)],
            &graphs.iter().collect::<Vec<_>>(),
        ));
        Ok(DataFrame::from_partitions(graph, name, 1, Arc::new(schema)))
    }
}

fn join_unmatched(args: &[rask_core::Value]) -> TaskResult {
    let keys = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the left keys"))?)?;
    let right = frame_of(args.get(1).ok_or_else(|| TaskError::msg("missing the right side"))?)?;
    let spec: &UnmatchedSpec =
        args.get(2).ok_or_else(|| TaskError::msg("missing the join"))?.get(&"the join")?;
    Ok(partition_value(pl::join_unmatched_right(
        &spec.left_schema,
        keys,
        right,
        &spec.left_on,
        &spec.right_on,
        spec.how,
        &spec.suffix,
    )?))
}

rask_core::register_function!("rask_dataframe::join_unmatched", join_unmatched);

/// Refuses keys that are missing (naming the columns there are) or of different types.
fn check_keys(
    left: &DataFrame,
    right: &DataFrame,
    left_on: &[String],
    right_on: &[String],
) -> Result<()> {
    if left_on.len() != right_on.len() || left_on.is_empty() {
        return Err(Error::Invalid(format!(
            "join needs as many left keys as right keys, at least one: got {left_on:?} and {right_on:?}"
        )));
    }
    left.check_columns(left_on, "join (left keys)")?;
    right.check_columns(right_on, "join (right keys)")?;
    for (l, r) in left_on.iter().zip(right_on) {
        let (lt, rt) = (left.schema().get(l), right.schema().get(r));
        if lt != rt {
            return Err(Error::Invalid(format!(
                "join keys of incompatible types: left `{l}` is {}, right `{r}` is {}; cast one side to the other's type first (`cast([(\"{r}\", …)])`)",
                lt.map_or("missing".to_string(), ToString::to_string),
                rt.map_or("missing".to_string(), ToString::to_string),
            )));
        }
    }
    Ok(())
}

/// Whether both sides are indexed on their (single) key with the same divisions, the
/// partitions strictly apart: then equal keys are in the same partition number on both sides.
fn aligned(left: &DataFrame, right: &DataFrame, left_on: &[String], right_on: &[String]) -> bool {
    let (Some(l), Some(r)) = (left.divisions(), right.divisions()) else {
        return false;
    };
    let apart = l.bounds.windows(2).all(|w| w[0].1 < w[1].0);
    left_on.len() == 1
        && l.column == left_on[0]
        && r.column == right_on[0]
        && l.bounds == r.bounds
        && apart
}

/// Partition `j` of the result: partition `j` of `left` joined with partition `j` of `right`.
fn join_pairs(
    left: &DataFrame,
    right: &DataFrame,
    spec: PairSpec,
    prefix: &str,
) -> Result<DataFrame> {
    let schema = pl::frame_schema(&pl::join_frames(
        &pl::empty(left.schema()),
        &pl::empty(right.schema()),
        &spec.left_on,
        &spec.right_on,
        spec.how,
        &spec.suffix,
    )?);
    let (left_graph, left_name) = left.partitions();
    let (right_graph, right_name) = right.partitions();
    let mut tokenizer = Tokenizer::new();
    tokenizer.str(left_name.as_str()).str(right_name.as_str());
    let bytes = rmp_serde::to_vec(&spec)
        .map_err(|e| Error::Invalid(format!("the join cannot be serialized: {e}")))?;
    tokenizer.bytes(&bytes);
    let name = Name::tokenized(prefix, tokenizer.finish());
    let func = tasks::function("rask_dataframe::join_pair");
    let spec = rask_core::Value::serde(spec);
    let tasks = (0..left.npartitions())
        .map(|j| {
            let args = vec![
                Arg::Key(Key::part(left_name.clone(), j)),
                Arg::Key(Key::part(right_name.clone(), j)),
                Arg::Value(spec.clone()),
            ];
            (Key::part(name.clone(), j), TaskSpec::new(func.clone(), args))
        })
        .collect();
    let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[&left_graph, &right_graph]));
    Ok(DataFrame::from_partitions(graph, name, left.npartitions(), Arc::new(schema)))
}

fn join_pair(args: &[rask_core::Value]) -> TaskResult {
    let left = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the left partition"))?)?;
    let right =
        frame_of(args.get(1).ok_or_else(|| TaskError::msg("missing the right partition"))?)?;
    let spec: &PairSpec =
        args.get(2).ok_or_else(|| TaskError::msg("missing the join"))?.get(&"the join")?;
    Ok(partition_value(pl::join_frames(
        left,
        right,
        &spec.left_on,
        &spec.right_on,
        spec.how,
        &spec.suffix,
    )?))
}

rask_core::register_function!("rask_dataframe::join_pair", join_pair);
