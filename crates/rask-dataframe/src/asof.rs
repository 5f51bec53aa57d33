//! [`DataFrame::merge_asof`]: each left row joined with the nearest right row by the sorted
//! index — the last one at or before it (`Backward`, pandas' default), the first at or after
//! it (`Forward`), or the closer of the two (`Nearest`) — optionally within groups (`by`) and
//! within a tolerance.
//!
//! Both frames are sorted by their index, so left partition `i` (index within `[lo, hi]` by
//! its divisions) needs only the right partitions whose divisions overlap `[lo, hi]`, plus the
//! last right row of every group *before* them and the first one *after* them. Those two come
//! from carry chains over the right partitions (rask-core's [`carries`]), forwards and
//! backwards, so the right side is never gathered in one place and a group whose last row is
//! many partitions back is still found.

use std::sync::Arc;

use rask_core::partitioned::carries;
use rask_core::{Arg, Graph, Key, Layer, Name, TaskError, TaskResult, TaskSpec, Tokenizer, Value};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::DataFrame;
use crate::polars_adapter::{self as pl, asof as pla};
use crate::tasks::{self, arg, frame_of, frames_of, partition_value};

/// Which right row an as-of join takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// The last right row whose index is at or before the left row's (pandas' default).
    #[default]
    Backward,
    /// The first right row whose index is at or after the left row's.
    Forward,
    /// The right row whose index is nearest.
    Nearest,
}

/// Options of [`DataFrame::merge_asof`].
#[derive(Clone, Debug, Default)]
pub struct AsofOptions {
    by: Vec<String>,
    direction: Direction,
    tolerance: Option<String>,
}

impl AsofOptions {
    /// Match only rows with equal values of these columns (on both sides).
    pub fn by<S: AsRef<str>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.by = columns.into_iter().map(|c| c.as_ref().to_string()).collect();
        self
    }
    /// Which right row (default `Backward`).
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }
    /// Match only a right row within this length of time (`"2s"`, `"1h"`) of the left row's
    /// index: a datetime index.
    pub fn tolerance(mut self, span: &str) -> Self {
        self.tolerance = Some(span.to_string());
        self
    }
}

/// What the tasks of an as-of join need.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AsofSpec {
    /// The left index.
    pub left_on: String,
    /// The right index.
    pub right_on: String,
    /// Group columns on both sides.
    pub by: Vec<String>,
    /// Which right row.
    pub direction: Direction,
    /// Polars' duration text of the tolerance.
    pub tolerance: Option<String>,
}
rask_core::register_type!(AsofSpec);

/// A chain's carry as its tasks see it: the last (`true`) or first rows per group.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Edge {
    spec: AsofSpec,
    last: bool,
}
rask_core::register_type!(Edge);

impl DataFrame {
    /// Joins each row with the nearest row of `right` by the index (see the
    /// [module](crate::asof)): both frames must be indexed (`set_index`) on columns of the same
    /// type. The result has the left rows in order, with the right side's other columns (null
    /// where nothing matches).
    // Options are built inline and taken by value, like the readers'.
    #[allow(clippy::needless_pass_by_value)]
    pub fn merge_asof(&self, right: &DataFrame, options: AsofOptions) -> Result<DataFrame> {
        let indexed = |frame: &DataFrame, side: &str| {
            frame.divisions().cloned().ok_or_else(|| {
                Error::Invalid(format!(
                    "merge_asof needs both frames indexed, and the {side} one has no index: set one with set_index(\"column\")"
                ))
            })
        };
        let (left_div, right_div) = (indexed(self, "left")?, indexed(right, "right")?);
        for (frame, side, divisions) in [(self, "left", &left_div), (right, "right", &right_div)] {
            if !divisions.sorted() {
                return Err(Error::Invalid(format!(
                    "merge_asof needs the {side} frame's partitions in order of its index `{}`; set_index sorts them",
                    divisions.column
                )));
            }
            frame.check_columns(&options.by, "merge_asof by")?;
        }
        let dtype = |frame: &DataFrame, column: &str| frame.schema().get(column).cloned();
        let (left_type, right_type) =
            (dtype(self, &left_div.column), dtype(right, &right_div.column));
        if left_type != right_type {
            return Err(Error::Invalid(format!(
                "merge_asof joins on the indexes `{}` ({left_type:?}) and `{}` ({right_type:?}), which need the same type: cast one first",
                left_div.column, right_div.column
            )));
        }
        for column in &options.by {
            if dtype(self, column) != dtype(right, column) {
                return Err(Error::Invalid(format!(
                    "merge_asof by `{column}`: it is {:?} on the left and {:?} on the right; cast one first",
                    dtype(self, column),
                    dtype(right, column)
                )));
            }
        }
        let tolerance = match &options.tolerance {
            Some(text) => {
                if !matches!(left_type, Some(pl::DataType::Datetime(..) | pl::DataType::Date)) {
                    return Err(Error::Invalid(format!(
                        "merge_asof with a tolerance of {text:?} needs a datetime index, and `{}` holds {left_type:?}",
                        left_div.column
                    )));
                }
                Some(crate::duration::Span::parse(text, "the tolerance of merge_asof")?.polars())
            }
            None => None,
        };
        let spec = AsofSpec {
            left_on: left_div.column.clone(),
            right_on: right_div.column.clone(),
            by: options.by.clone(),
            direction: options.direction,
            tolerance,
        };
        let schema = pl::frame_schema(&pla::merge(
            &pl::empty(self.schema()),
            vec![pl::empty(right.schema())],
            &spec,
        )?);

        let (left_graph, left_name) = self.partitions();
        let (right_graph, right_name) = right.partitions();
        let right_keys: Vec<Key> =
            (0..right.npartitions()).map(|j| Key::part(right_name.clone(), j)).collect();
        let mut tokenizer = Tokenizer::new();
        tokenizer
            .str(left_name.as_str())
            .str(right_name.as_str())
            .bytes(&rmp_serde::to_vec(&spec).unwrap_or_default());
        let token = tokenizer.finish();
        let edge = tasks::function("rask_dataframe::asof_edge");
        let edge_arg = |last: bool| Arg::Value(Value::serde(Edge { spec: spec.clone(), last }));
        // Before each right partition: the last row per group of those before it; after
        // each: the first row per group of those after it.
        let (mut all, before) =
            carries(&edge, &[edge_arg(true)], &right_keys, &Name::tokenized("asof-before", token));
        let reversed: Vec<Key> = right_keys.iter().rev().cloned().collect();
        let (after_tasks, mut after) =
            carries(&edge, &[edge_arg(false)], &reversed, &Name::tokenized("asof-after", token));
        all.extend(after_tasks);
        after.reverse();

        let name = Name::tokenized("merge-asof", token);
        let merge = tasks::function("rask_dataframe::merge_asof");
        let spec_value = Value::serde(spec);
        let last = right_div.bounds.len().saturating_sub(1);
        for (i, &(lo, hi)) in left_div.bounds.iter().enumerate() {
            // The right partitions that can hold rows within [lo, hi] (at least one).
            let first = right_div.bounds.iter().position(|&(_, max)| max >= lo).unwrap_or(last);
            let end = right_div.bounds.iter().rposition(|&(min, _)| min <= hi).unwrap_or(0);
            let (first, end) =
                if first > end { (first.min(last), first.min(last)) } else { (first, end) };
            let mut inputs: Vec<Arg> = Vec::new();
            inputs.extend(before[first].clone().map(Arg::Key));
            inputs.extend((first..=end).map(|j| Arg::Key(right_keys[j].clone())));
            inputs.extend(after[end].clone().map(Arg::Key));
            let args = vec![
                Arg::Key(Key::part(left_name.clone(), i as u32)),
                Arg::List(inputs),
                Arg::Value(spec_value.clone()),
            ];
            all.push((Key::part(name.clone(), i as u32), TaskSpec::new(merge.clone(), args)));
        }
        let graph =
            Graph::from_layer(Layer::tasks(name.clone(), all, &[&left_graph, &right_graph]));
        let mut out = DataFrame::from_partitions(graph, name, self.npartitions(), Arc::new(schema));
        out.divisions = self.divisions.clone();
        out.known_rows = self.known_rows.clone();
        Ok(out)
    }
}

/// `asof_edge(partition, edge, [carry])`: the last (or first) right row of every group in the
/// partitions so far along the chain.
fn asof_edge(args: &[Value]) -> TaskResult {
    let part = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?;
    let edge: &Edge = arg(args, 1, "the as-of edge")?;
    let carried = args.get(2).map(frame_of).transpose()?;
    Ok(partition_value(pla::edge_rows(part, carried, &edge.spec, edge.last)?))
}

/// `merge_asof(left partition, [right rows in index order], spec)`.
fn merge_asof(args: &[Value]) -> TaskResult {
    let left = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?;
    let right = frames_of(args.get(1).ok_or_else(|| TaskError::msg("missing the right rows"))?)?;
    let spec: &AsofSpec = arg(args, 2, "the as-of join")?;
    let right = right.into_iter().cloned().collect();
    Ok(partition_value(pla::merge(left, right, spec)?))
}

rask_core::register_function!("rask_dataframe::asof_edge", asof_edge);
rask_core::register_function!("rask_dataframe::merge_asof", merge_asof);
