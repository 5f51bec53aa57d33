//! Sorting and the sorted index: [`DataFrame::sort_values`], [`DataFrame::set_index`],
//! [`DataFrame::reset_index`].
//!
//! Polars frames have no index, so rask's is a designated column with known [`Divisions`]:
//! each partition's `(min, max)` of it, the partitions in order. `set_index(col)` first reads
//! one small summary per partition (rows, nulls, bounds, whether it is sorted within, its size,
//! and a sketch of its values). If the partitions follow one another, the summaries *are* the
//! divisions and nothing moves (Dask 0.14.1's sorted-data shortcut): each partition is only
//! sorted within, when it is not already.
//! Otherwise the sketches give boundaries at equal quantiles, a range [shuffle] sends every row
//! to the partition its value falls in — equal values always to the same one, so duplicates at
//! a boundary stay whole — and each output is sorted. The output count follows the data's size
//! (128 MiB a partition by default), so many small partitions become fewer.
//!
//! `sort_values` is the same range shuffle on the first sort column, with every output sorted
//! by all of them: partition `j`'s rows all come before partition `j + 1`'s.
//!
//! `nlargest`/`nsmallest` need no shuffle: each partition keeps its first `n` rows in that
//! order (one query with the read), and a tree reduction keeps the first `n` of those.
//!
//! [shuffle]: crate::shuffle

use std::sync::Arc;

use rask_core::{
    Arg, Graph, Key, Layer, Name, TaskError, TaskResult, TaskSpec, Tokenizer, TreeReduction, Value,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::{DataFrame, Divisions};
use crate::ops::compute_keys;
use crate::plan::Step;
use crate::polars_adapter as pl;
use crate::polars_adapter::shuffle::{self as pls, IndexStats, RangeSplit};
use crate::shuffle::Partitioning;
use crate::sketch::Sketch;
use crate::tasks::{self, frame_of, frames_of, partition_value};

/// The size a partition of a sorted frame aims at, in memory.
pub const DEFAULT_PARTITION_SIZE: u64 = 128 << 20;

/// Options of [`DataFrame::set_index_with`].
#[derive(Clone, Copy, Debug)]
pub struct SetIndexOptions {
    sorted: bool,
    npartitions: Option<u32>,
    partition_size: u64,
}

impl Default for SetIndexOptions {
    fn default() -> Self {
        SetIndexOptions { sorted: false, npartitions: None, partition_size: DEFAULT_PARTITION_SIZE }
    }
}

impl SetIndexOptions {
    /// The data is already sorted by the column (Dask's `sorted=True`): the divisions come from
    /// one pass over the partitions and nothing moves; data that is not sorted is an error
    /// naming the partitions.
    pub fn sorted(mut self, sorted: bool) -> Self {
        self.sorted = sorted;
        self
    }

    /// How many partitions the sorted frame has (by default, from the data's size).
    pub fn npartitions(mut self, npartitions: u32) -> Self {
        self.npartitions = Some(npartitions.max(1));
        self
    }

    /// The in-memory size each partition aims at when the count follows the data (128 MiB).
    pub fn partition_size(mut self, bytes: u64) -> Self {
        self.partition_size = bytes.max(1);
        self
    }
}

/// Options of [`DataFrame::sort_values_with`].
#[derive(Clone, Debug, Default)]
pub struct SortOptions {
    descending: Vec<bool>,
    nulls_last: bool,
    npartitions: Option<u32>,
}

impl SortOptions {
    /// Largest first: one flag for every column, or one per sort column.
    pub fn descending(mut self, descending: impl IntoIterator<Item = bool>) -> Self {
        self.descending = descending.into_iter().collect();
        self
    }

    /// Nulls after the values (by default they come first, as in Polars).
    pub fn nulls_last(mut self, nulls_last: bool) -> Self {
        self.nulls_last = nulls_last;
        self
    }

    /// How many partitions the result has (by default, as many as the input).
    pub fn npartitions(mut self, npartitions: u32) -> Self {
        self.npartitions = Some(npartitions.max(1));
        self
    }
}

/// One partition's summary of a column, and a sketch of its values.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PartitionStats {
    stats: IndexStats,
    sketch: Sketch,
}
rask_core::register_type!(PartitionStats);

fn column_stats(args: &[Value]) -> TaskResult {
    let frame = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?;
    let column = args
        .get(1)
        .ok_or_else(|| TaskError::msg("missing the column"))?
        .get::<String>(&"the column")?;
    let (stats, values) = pls::index_stats(frame, column)?;
    Ok(Value::serde(PartitionStats { stats, sketch: Sketch::of(values) }))
}
rask_core::register_function!("rask_dataframe::column_stats", column_stats);

/// What a tree of `nlargest`/`nsmallest` keeps: the first `n` rows by `by`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TopRows {
    by: Vec<(String, bool)>,
    n: u32,
    schema: crate::polars_adapter::Schema,
}
rask_core::register_type!(TopRows);

fn top_rows(args: &[Value]) -> TaskResult {
    let frames = frames_of(args.first().ok_or_else(|| TaskError::msg("missing the rows"))?)?;
    let spec = args
        .get(1)
        .ok_or_else(|| TaskError::msg("missing what to keep"))?
        .get::<TopRows>(&"what to keep")?;
    let all = pl::concat(frames.into_iter().cloned().collect(), &spec.schema)?;
    let (by, descending): (Vec<String>, Vec<bool>) = spec.by.iter().cloned().unzip();
    let sorted = pls::sort(&all, &by, &descending, true)?;
    Ok(partition_value(pl::slice(&sorted, 0, spec.n as usize)))
}
rask_core::register_function!("rask_dataframe::top_rows", top_rows);

/// An empty partition's bounds: an interval no value is in.
const NO_BOUNDS: (f64, f64) = (f64::INFINITY, f64::NEG_INFINITY);

impl DataFrame {
    /// The index column: the column the frame's [`Divisions`] describe, if any.
    pub fn index(&self) -> Option<&str> {
        self.divisions.as_deref().map(|d| d.column.as_str())
    }

    /// The same rows with no index (the column stays: Polars frames have no index to move
    /// it out of).
    pub fn reset_index(&self) -> DataFrame {
        DataFrame { divisions: None, ..self.clone() }
    }

    /// Sorts by `column` and makes it the index: the partitions are in order and their bounds
    /// known, so `loc`, `head` and `tail` read only the partitions they need. Already-sorted
    /// data is detected and not moved (see the [module](crate::sort)).
    pub fn set_index(&self, column: &str) -> Result<DataFrame> {
        self.set_index_with(column, SetIndexOptions::default())
    }

    /// [`set_index`](Self::set_index) with options.
    pub fn set_index_with(&self, column: &str, options: SetIndexOptions) -> Result<DataFrame> {
        self.check_sortable(column, "set_index")?;
        if let Some(divisions) = &self.divisions {
            if divisions.column == column && divisions.sorted() && !options.sorted {
                // The divisions are known (Parquet statistics) and in order: only the rows
                // within each partition may need sorting.
                return self.with_step(
                    crate::plan::Step::Sort {
                        by: vec![(column.to_string(), false)],
                        nulls_last: false,
                    },
                    "set_index",
                );
            }
        }
        let stats = self.column_stats(column)?;
        if let Some(bounds) = in_order(&stats) {
            // The partitions follow one another: at most each one's rows need sorting.
            let mut frame = if stats.iter().all(|s| s.stats.sorted || s.stats.rows == 0) {
                self.clone()
            } else {
                self.with_step(
                    Step::Sort { by: vec![(column.to_string(), false)], nulls_last: false },
                    "set_index",
                )?
            };
            frame.divisions = Some(Arc::new(Divisions { column: column.to_string(), bounds }));
            return Ok(frame);
        }
        if options.sorted {
            return Err(Error::Invalid(not_sorted(column, &stats)));
        }
        let bytes: u64 = stats.iter().map(|s| s.stats.bytes).sum();
        let wanted = options.npartitions.unwrap_or_else(|| {
            bytes.div_ceil(options.partition_size).clamp(1, u64::from(u32::MAX)) as u32
        });
        let range = range_split(column, &stats, wanted, false, false);
        let bounds = output_bounds(&range, &stats);
        let outputs = range.outputs();
        let mut sorted = self.shuffled(
            Partitioning::Range(range),
            outputs,
            vec![(column.to_string(), false)],
            false,
        )?;
        sorted.divisions = Some(Arc::new(Divisions { column: column.to_string(), bounds }));
        Ok(sorted)
    }

    /// Sorts the whole frame by `by` (ascending; see [`sort_values_with`](Self::sort_values_with)
    /// for directions), stably: partition `j`'s rows all come before partition `j + 1`'s.
    pub fn sort_values(&self, by: &[&str]) -> Result<DataFrame> {
        self.sort_values_with(by, SortOptions::default())
    }

    /// [`sort_values`](Self::sort_values) with directions, null placement and a partition
    /// count.
    pub fn sort_values_with(&self, by: &[&str], options: SortOptions) -> Result<DataFrame> {
        let first = *by.first().ok_or_else(|| {
            Error::Invalid("sort_values needs at least one column to sort by".into())
        })?;
        let columns: Vec<String> = by.iter().map(|c| c.to_string()).collect();
        self.check_columns(&columns, "sort_values")?;
        self.check_sortable(first, "sort_values")?;
        let SortOptions { descending, nulls_last, npartitions } = options;
        let descending = match descending.len() {
            0 => vec![false; by.len()],
            1 => vec![descending[0]; by.len()],
            n if n == by.len() => descending,
            n => {
                return Err(Error::Invalid(format!(
                "sort_values by {} columns got {n} directions: give one for all, or one per column",
                by.len()
            )))
            }
        };
        let stats = self.column_stats(first)?;
        let wanted = npartitions.unwrap_or(self.npartitions);
        let range = range_split(first, &stats, wanted, descending[0], nulls_last);
        let ascending_index = by.len() == 1 && !descending[0] && !nulls_last;
        let bounds = ascending_index.then(|| output_bounds(&range, &stats));
        let outputs = range.outputs();
        let sort_by = columns.into_iter().zip(descending).collect();
        let mut sorted = self.shuffled(Partitioning::Range(range), outputs, sort_by, nulls_last)?;
        // Sorted ascending by one column, the frame has that column's divisions.
        sorted.divisions =
            bounds.map(|bounds| Arc::new(Divisions { column: first.to_string(), bounds }));
        Ok(sorted)
    }

    /// The `n` rows with the largest values of `by` (compared column by column; ties in input
    /// order, nulls last), in that order, as one partition — like pandas' `nlargest`.
    pub fn nlargest(&self, n: usize, by: &[&str]) -> Result<DataFrame> {
        self.top_rows(n, by, true)
    }

    /// The `n` rows with the smallest values of `by`, in that order (see
    /// [`nlargest`](Self::nlargest)).
    pub fn nsmallest(&self, n: usize, by: &[&str]) -> Result<DataFrame> {
        self.top_rows(n, by, false)
    }

    fn top_rows(&self, n: usize, by: &[&str], largest: bool) -> Result<DataFrame> {
        let operation = if largest { "nlargest" } else { "nsmallest" };
        if by.is_empty() {
            return Err(Error::Invalid(format!("{operation} needs at least one column")));
        }
        for column in by {
            self.check_sortable(column, operation)?;
        }
        let n = u32::try_from(n).map_err(|_| {
            Error::Invalid(format!("{operation} of {n} rows: at most {} rows", u32::MAX))
        })?;
        let sort_by: Vec<(String, bool)> = by.iter().map(|c| (c.to_string(), largest)).collect();
        let partial = self
            .with_step(Step::Sort { by: sort_by.clone(), nulls_last: true }, operation)?
            .with_step(Step::Limit(n), operation)?;
        let (graph, input) = partial.partitions();
        let spec = TopRows { by: sort_by, n, schema: self.schema().clone() };
        let bytes = rmp_serde::to_vec(&spec)
            .map_err(|e| Error::Invalid(format!("{operation} cannot be serialized: {e}")))?;
        let name =
            Name::tokenized(operation, Tokenizer::new().str(input.as_str()).bytes(&bytes).finish());
        let top = tasks::function("rask_dataframe::top_rows");
        let tree = TreeReduction {
            combine_prefix: format!("{operation}-combine"),
            combine: top.clone(),
            finish: top,
            args: vec![Arg::Value(Value::serde(spec))],
            split_every: 8,
        };
        let leaves = (0..self.npartitions).map(|i| Key::part(input.clone(), i)).collect();
        let tasks = tree.tasks(leaves, Key::part(name.clone(), 0));
        let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[&graph]));
        Ok(DataFrame::from_partitions(graph, name, 1, Arc::new(self.schema().clone())))
    }

    fn check_sortable(&self, column: &str, operation: &str) -> Result<()> {
        self.check_columns(&[column.to_string()], operation)?;
        let dtype =
            self.schema().get(column).cloned().unwrap_or(crate::polars_adapter::DataType::Null);
        if pls::sortable(&dtype) {
            return Ok(());
        }
        Err(Error::Invalid(format!(
            "{operation} by `{column}` of type {dtype}: only numbers, booleans, text, dates, times and durations can be sorted by; cast the column first (`cast([(\"{column}\", DataType::…)])`)"
        )))
    }

    /// One summary per partition of `column`, computed now. The column alone is selected
    /// first, so the read parses only it (the projection reaches the CSV scanner).
    fn column_stats(&self, column: &str) -> Result<Vec<PartitionStats>> {
        let (graph, input) = self.select([crate::polars_adapter::column(column)])?.partitions();
        let name = Name::tokenized(
            "column-stats",
            Tokenizer::new().str(input.as_str()).str(column).finish(),
        );
        let func = tasks::function("rask_dataframe::column_stats");
        let column = Value::serde(column.to_string());
        let tasks: Vec<(Key, TaskSpec)> = (0..self.npartitions)
            .map(|i| {
                let args = vec![Arg::Key(Key::part(input.clone(), i)), Arg::Value(column.clone())];
                (Key::part(name.clone(), i), TaskSpec::new(func.clone(), args))
            })
            .collect();
        let keys: Vec<Key> = tasks.iter().map(|(k, _)| k.clone()).collect();
        let graph = Graph::from_layer(Layer::tasks(name, tasks, &[&graph]));
        compute_keys(&graph, &keys)?
            .iter()
            .map(|v| Ok(v.get::<PartitionStats>(&"a partition's summary")?.clone()))
            .collect()
    }
}

/// The divisions of partitions that follow one another — every value of a partition at most
/// the next one's smallest; empty ones anywhere — and hold no nulls or NaN, or `None`.
fn in_order(stats: &[PartitionStats]) -> Option<Vec<(f64, f64)>> {
    let mut last_max = f64::NEG_INFINITY;
    let mut bounds = Vec::with_capacity(stats.len());
    for s in stats {
        if s.stats.rows == 0 {
            bounds.push(NO_BOUNDS);
            continue;
        }
        let (lo, hi) = s.stats.bounds?;
        if s.stats.nulls > 0 || s.stats.numbers < s.stats.rows || lo < last_max {
            return None;
        }
        last_max = hi;
        bounds.push((lo, hi));
    }
    Some(bounds)
}

/// Why `sorted(true)` does not hold: the first partitions out of order, by name.
fn not_sorted(column: &str, stats: &[PartitionStats]) -> String {
    let mut problems = Vec::new();
    let mut previous: Option<(usize, f64)> = None;
    for (i, s) in stats.iter().enumerate() {
        if s.stats.nulls > 0 {
            problems.push(format!("partition {i} holds {} nulls", s.stats.nulls));
        } else if !s.stats.sorted && s.stats.rows > 0 {
            problems.push(format!("partition {i} is not sorted within"));
        }
        if let Some((lo, hi)) = s.stats.bounds {
            if let Some((p, max)) = previous {
                if lo < max {
                    problems.push(format!(
                        "partition {i} starts at {lo} before partition {p} ends at {max}"
                    ));
                }
            }
            previous = Some((i, hi));
        }
    }
    problems.truncate(5);
    format!(
        "set_index(`{column}`) with sorted(true), but the data is not sorted by `{column}`: {}; leave sorted(false) to sort it (a shuffle)",
        problems.join("; ")
    )
}

/// Boundaries at equal quantiles of the merged sketches: up to `wanted` outputs, fewer when
/// many rows share values (boundaries are strictly increasing).
fn range_split(
    column: &str,
    stats: &[PartitionStats],
    wanted: u32,
    descending: bool,
    nulls_last: bool,
) -> RangeSplit {
    let sketch = Sketch::merge(stats.iter().map(|s| &s.sketch));
    let min = global_bounds(stats).map_or(f64::INFINITY, |(lo, _)| lo);
    let mut boundaries: Vec<f64> = Vec::new();
    for k in 1..wanted.max(1) {
        let b = sketch.quantile(f64::from(k) / f64::from(wanted));
        if b.is_finite() && b > min && boundaries.last().is_none_or(|last| b > *last) {
            boundaries.push(b);
        }
    }
    RangeSplit { column: column.to_string(), boundaries, descending, nulls_last }
}

fn global_bounds(stats: &[PartitionStats]) -> Option<(f64, f64)> {
    stats.iter().filter_map(|s| s.stats.bounds).reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
}

/// The bounds of an ascending range shuffle's outputs: output `j` holds
/// `boundaries[j-1]..boundaries[j]`, the first from the smallest value, the last to the
/// largest.
fn output_bounds(range: &RangeSplit, stats: &[PartitionStats]) -> Vec<(f64, f64)> {
    let Some((min, max)) = global_bounds(stats) else {
        return vec![NO_BOUNDS; range.outputs() as usize];
    };
    let b = &range.boundaries;
    (0..=b.len())
        .map(|j| {
            let lo = if j == 0 { min } else { b[j - 1] };
            let hi = if j == b.len() { max } else { b[j].next_down() };
            (lo, hi)
        })
        .collect()
}
