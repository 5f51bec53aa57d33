//! Joins of a partitioned frame with a broadcast right side: an in-memory Polars frame
//! (`join_frame`) or a rask frame (`join`, concatenated into one partition first).
//!
//! Each left partition is joined with the whole right side inside its own query (a
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

    /// Joins with a rask frame. A frame with one partition is broadcast as it is; a larger one
    /// is first concatenated into one partition (keep it small: every partition of `self`
    /// reads all of it).
    pub fn join(
        &self,
        right: &DataFrame,
        left_on: &[&str],
        right_on: &[&str],
        how: JoinHow,
    ) -> Result<Self> {
        let right = right.repartition(1)?;
        let (graph, name) = right.partitions();
        let extra = Extra::Key(graph, Key::part(name, 0), Arc::new(right.schema().clone()));
        self.join_extra(extra, left_on, right_on, how)
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
