//! Frames side by side: [`concat_columns`] (pandas' `concat([a, b], axis=1)`) and
//! [`DataFrame::assign`] (a column computed from another frame of the same partitioning).
//!
//! Partition `i` of the result is partition `i` of every input, its columns next to each
//! other. That is only right when the inputs have the same partitioning — frames made from the
//! same frame by per-partition steps (the walkthrough's `zero_tip` and `cash`) — so the
//! partition counts are checked when the plan is built, and each task checks that its inputs
//! hold the same number of rows and fails naming the partition otherwise: rows are never
//! paired with the wrong rows.

use std::sync::Arc;

use rask_core::{Arg, Graph, Key, Layer, TaskError, TaskResult, TaskSpec, Value};

use crate::error::{Error, Result};
use crate::frame::DataFrame;
use crate::polars_adapter::{self as pl, Expr};
use crate::tasks::{self, frames_of, partition_value};

/// The columns of `frames` side by side, partition by partition. The frames must have the
/// same partition count (and the same rows per partition, checked as it runs) and no column
/// name twice; the first frame's index is kept.
pub fn concat_columns(frames: &[DataFrame]) -> Result<DataFrame> {
    let first = frames
        .first()
        .ok_or_else(|| Error::Invalid("concat_columns needs at least one frame".into()))?;
    let mut schema = pl::Schema::default();
    for (n, frame) in frames.iter().enumerate() {
        if frame.npartitions() != first.npartitions() {
            return Err(Error::Invalid(format!(
                "concat_columns needs frames with the same partitioning: frame 0 has {} partitions and frame {n} has {}; put columns side by side from frames made from the same frame, or join them on a key",
                first.npartitions(),
                frame.npartitions()
            )));
        }
        for (column, dtype) in frame.dtypes() {
            if schema.contains(&column) {
                return Err(Error::Invalid(format!(
                    "concat_columns: the column `{column}` is in two of the frames; rename one first"
                )));
            }
            schema.with_column(column.into(), dtype);
        }
    }
    let inputs: Vec<(Graph, rask_core::Name)> = frames.iter().map(DataFrame::partitions).collect();
    let mut tokenizer = rask_core::Tokenizer::new();
    for (_, name) in &inputs {
        tokenizer.str(name.as_str());
    }
    let name = rask_core::Name::tokenized("concat-columns", tokenizer.finish());
    let func = tasks::function("rask_dataframe::concat_columns");
    let tasks = (0..first.npartitions())
        .map(|i| {
            let parts = inputs.iter().map(|(_, n)| Arg::Key(Key::part(n.clone(), i))).collect();
            let args = vec![Arg::List(parts), Arg::Value(Value::serde(i))];
            (Key::part(name.clone(), i), TaskSpec::new(func.clone(), args))
        })
        .collect();
    let graphs: Vec<&Graph> = inputs.iter().map(|(g, _)| g).collect();
    let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &graphs));
    let mut out = DataFrame::from_partitions(graph, name, first.npartitions(), Arc::new(schema));
    out.divisions = first.divisions.clone();
    out.known_rows = first.known_rows.clone();
    Ok(out)
}

impl DataFrame {
    /// Adds (or replaces) the column `name`, computed by `value` from another frame with the
    /// same partitioning: `trips.assign("fare_z", &fares.select([z_score])?)`. `other` must
    /// have one column.
    pub fn assign(&self, name: &str, other: &DataFrame) -> Result<DataFrame> {
        let columns = other.columns();
        let [column] = columns.as_slice() else {
            return Err(Error::Invalid(format!(
                "assign(\"{name}\", ...) takes a frame of one column, and this one has {}: select the column first",
                columns.len()
            )));
        };
        let renamed = other.select([pl::column(column).alias(name)])?;
        let kept: Vec<Expr> =
            self.columns().iter().filter(|c| *c != name).map(|c| pl::column(c)).collect();
        let mut out = concat_columns(&[self.select(kept)?, renamed])?;
        out.divisions = self.divisions.clone();
        if self.columns().iter().any(|c| c == name) {
            // A replaced column keeps its place.
            out = out.select(self.columns().iter().map(|c| pl::column(c)))?;
        }
        Ok(out)
    }
}

/// `concat_columns([partition of each frame], i)`: the partitions side by side.
fn concat_columns_task(args: &[Value]) -> TaskResult {
    let parts = frames_of(args.first().ok_or_else(|| TaskError::msg("missing the partitions"))?)?;
    let index: &u32 = tasks::arg(args, 1, "the partition index")?;
    let rows: Vec<usize> = parts.iter().map(|p| p.height()).collect();
    if rows.windows(2).any(|w| w[0] != w[1]) {
        return Err(TaskError::msg(format!(
            "concat_columns: partition {index} holds {rows:?} rows in the frames put side by side; they must be equal — the frames do not have the same partitioning (a filter on one of them changes it): join them on a key instead"
        )));
    }
    let mut out = parts.first().map(|p| (*p).clone()).unwrap_or_default();
    for part in &parts[1..] {
        out = pl::with_columns_of(&out, part)?;
    }
    Ok(partition_value(out))
}
rask_core::register_function!("rask_dataframe::concat_columns", concat_columns_task);
