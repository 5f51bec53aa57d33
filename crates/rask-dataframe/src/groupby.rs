//! Group-bys and reductions by tree reduction.
//!
//! `df.group_by(["passenger_count"]).agg([agg::mean("trip_distance")])` becomes: one *partial*
//! task per partition (its groups' partial aggregates, a few rows), then *combine* tasks that
//! merge `split_every` partials at a time, then one *finish* task that computes the final
//! values — like Dask's `apply-concat-apply`. With `split_out(k)` the partials are shuffled
//! (rask-core's verified `Shuffle`) by a hash of the keys into `k` outputs and each is finished
//! on its own, giving `k` output partitions for results with many groups; on a cluster each
//! finish task fetches only its own groups' partials. A reduction of a whole frame (`df.sum()`) is the
//! same tree with no keys.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::frame::DataFrame;
use crate::plan::Step;
use crate::polars_adapter::{self as pl, aggregate};
pub use crate::reduction::{Agg, AggKind, CumKind, CumSpec, GroupSpec};
use crate::tasks::{self, frame_of, frames_of, partition_value};
use rask_core::partitioned::CarryChain;
use rask_core::{
    Arg, Graph, Key, Layer, Name, TaskError, TaskResult, TaskSpec, Tokenizer, TreeReduction, Value,
};

/// Aggregations for [`GroupBy::agg`] and [`DataFrame::agg`]: `agg::mean("fare_amount")`.
pub mod agg {
    use super::{Agg, AggKind};

    /// Sum.
    pub fn sum(column: &str) -> Agg {
        Agg::new(AggKind::Sum, column)
    }
    /// Mean.
    pub fn mean(column: &str) -> Agg {
        Agg::new(AggKind::Mean, column)
    }
    /// Minimum.
    pub fn min(column: &str) -> Agg {
        Agg::new(AggKind::Min, column)
    }
    /// Maximum.
    pub fn max(column: &str) -> Agg {
        Agg::new(AggKind::Max, column)
    }
    /// Non-null count.
    pub fn count(column: &str) -> Agg {
        Agg::new(AggKind::Count, column)
    }
    /// Rows per group (output named `size` unless aliased).
    pub fn size() -> Agg {
        Agg { kind: AggKind::Size, column: String::new(), alias: "size".into() }
    }
    /// Sample standard deviation (ddof = 1).
    pub fn std(column: &str) -> Agg {
        Agg::new(AggKind::Std(1), column)
    }
    /// Sample variance (ddof = 1).
    pub fn var(column: &str) -> Agg {
        Agg::new(AggKind::Var(1), column)
    }
    /// Exact median. Its partials are the group's values, so the finishing task holds every
    /// value of a group at once: fine for the usual group sizes, heavy for one group of a
    /// whole large column (use `DataFrame::quantiles` there, an approximate sketch).
    pub fn median(column: &str) -> Agg {
        Agg::new(AggKind::Median, column)
    }
    /// Distinct values.
    pub fn n_unique(column: &str) -> Agg {
        Agg::new(AggKind::NUnique, column)
    }
    /// First value.
    pub fn first(column: &str) -> Agg {
        Agg::new(AggKind::First, column)
    }
    /// Last value.
    pub fn last(column: &str) -> Agg {
        Agg::new(AggKind::Last, column)
    }
}

/// A pending group-by: `df.group_by(keys)`, then options, then `.agg([...])`.
#[derive(Clone)]
pub struct GroupBy {
    pub(crate) frame: DataFrame,
    pub(crate) keys: Vec<String>,
    split_every: usize,
    split_out: u32,
    dropna: bool,
}

impl DataFrame {
    /// Groups by the key columns.
    pub fn group_by<S: AsRef<str>>(&self, keys: impl IntoIterator<Item = S>) -> GroupBy {
        GroupBy {
            frame: self.clone(),
            keys: keys.into_iter().map(|k| k.as_ref().to_string()).collect(),
            split_every: 8,
            split_out: 1,
            dropna: false,
        }
    }

    /// Aggregates the whole frame to one row: `df.agg([agg::sum("x"), agg::mean("y")])`.
    pub fn agg(&self, aggs: impl IntoIterator<Item = Agg>) -> Result<DataFrame> {
        let aggs: Vec<Agg> = aggs.into_iter().collect();
        let columns: Vec<String> =
            aggs.iter().filter(|a| a.kind != AggKind::Size).map(|a| a.column.clone()).collect();
        self.check_columns(&columns, "agg")?;
        let spec = GroupSpec { keys: Vec::new(), aggs, dropna: false, sort: Vec::new() };
        tree_reduce(self, spec, 8, 1)
    }

    fn numeric_aggs(&self, kind: AggKind) -> Vec<Agg> {
        self.dtypes()
            .into_iter()
            .filter(|(_, t)| pl::is_numeric(t))
            .map(|(name, _)| Agg::new(kind, &name))
            .collect()
    }

    /// Sum of every numeric column (one row).
    pub fn sum(&self) -> Result<DataFrame> {
        self.agg(self.numeric_aggs(AggKind::Sum))
    }
    /// Mean of every numeric column.
    pub fn mean(&self) -> Result<DataFrame> {
        self.agg(self.numeric_aggs(AggKind::Mean))
    }
    /// Minimum of every numeric column.
    pub fn min(&self) -> Result<DataFrame> {
        self.agg(self.numeric_aggs(AggKind::Min))
    }
    /// Maximum of every numeric column.
    pub fn max(&self) -> Result<DataFrame> {
        self.agg(self.numeric_aggs(AggKind::Max))
    }
    /// Non-null count of every column.
    pub fn count(&self) -> Result<DataFrame> {
        self.agg(self.columns().iter().map(|c| Agg::new(AggKind::Count, c)))
    }
    /// Exact median of every numeric column (see [`agg::median`]).
    pub fn median(&self) -> Result<DataFrame> {
        self.agg(self.numeric_aggs(AggKind::Median))
    }
    /// Sample standard deviation of every numeric column.
    pub fn std(&self) -> Result<DataFrame> {
        self.agg(self.numeric_aggs(AggKind::Std(1)))
    }
    /// Sample variance of every numeric column.
    pub fn var(&self) -> Result<DataFrame> {
        self.agg(self.numeric_aggs(AggKind::Var(1)))
    }
    /// Distinct values of every column.
    pub fn n_unique(&self) -> Result<DataFrame> {
        self.agg(self.columns().iter().map(|c| Agg::new(AggKind::NUnique, c)))
    }

    /// How often each value of `column` occurs, most frequent first: columns `column` and
    /// `count`.
    pub fn value_counts(&self, column: &str) -> Result<DataFrame> {
        self.check_columns(&[column.to_string()], "value_counts")?;
        let spec = GroupSpec {
            keys: vec![column.to_string()],
            aggs: vec![agg::size().alias("count")],
            dropna: false,
            sort: vec![("count".into(), true), (column.to_string(), false)],
        };
        tree_reduce(self, spec, 8, 1)
    }

    /// The distinct rows of the given columns, sorted.
    pub fn unique<S: AsRef<str>>(&self, columns: impl IntoIterator<Item = S>) -> Result<DataFrame> {
        let keys: Vec<String> = columns.into_iter().map(|c| c.as_ref().to_string()).collect();
        self.check_columns(&keys, "unique")?;
        let sort = keys.iter().map(|k| (k.clone(), false)).collect();
        tree_reduce(self, GroupSpec { keys, aggs: Vec::new(), dropna: false, sort }, 8, 1)
    }
}

impl GroupBy {
    /// How many partial results one combine task merges (default 8).
    pub fn split_every(mut self, n: usize) -> Self {
        self.split_every = n.max(2);
        self
    }

    /// How many output partitions (default 1): use more when there are very many groups.
    pub fn split_out(mut self, n: u32) -> Self {
        self.split_out = n.max(1);
        self
    }

    /// Whether rows with a null key are dropped (default: kept, null is a group).
    pub fn dropna(mut self, dropna: bool) -> Self {
        self.dropna = dropna;
        self
    }

    /// Computes the aggregations per group; the result is sorted by the keys.
    pub fn agg(self, aggs: impl IntoIterator<Item = Agg>) -> Result<DataFrame> {
        self.frame.check_columns(&self.keys, "group_by")?;
        let aggs: Vec<Agg> = aggs.into_iter().collect();
        let columns: Vec<String> =
            aggs.iter().filter(|a| a.kind != AggKind::Size).map(|a| a.column.clone()).collect();
        self.frame.check_columns(&columns, "agg")?;
        let sort = self.keys.iter().map(|k| (k.clone(), false)).collect();
        let spec = GroupSpec { keys: self.keys, aggs, dropna: self.dropna, sort };
        tree_reduce(&self.frame, spec, self.split_every, self.split_out)
    }
}

fn tokenized(prefix: &str, base: &Name, spec_bytes: &[u8], extra: u64) -> Name {
    let mut tokenizer = Tokenizer::new();
    tokenizer.str(base.as_str()).bytes(spec_bytes).u64(extra);
    Name::tokenized(prefix, tokenizer.finish())
}

/// Builds the partial → combine → finish tree over the frame's partitions (the tree itself is
/// rask-core's [`TreeReduction`]), or with `split_out`, partial → shuffle → finish.
pub(crate) fn tree_reduce(
    frame: &DataFrame,
    spec: GroupSpec,
    split_every: usize,
    split_out: u32,
) -> Result<DataFrame> {
    crate::typecheck::check_group_spec(
        frame.schema(),
        &spec,
        frame.text_samples.as_deref().map(Vec::as_slice),
    )?;
    let schema = aggregate::result_schema(frame.schema(), &spec)?;
    // The first stage runs inside each partition's query (see `Step::PartialAgg`).
    let partials = frame.with_step(Step::PartialAgg(spec.clone()), "agg")?;
    let (graph, partial_name) = partials.partitions();
    let partial_keys: Vec<Key> =
        (0..frame.npartitions()).map(|i| Key::part(partial_name.clone(), i)).collect();
    let input = partial_name.clone();
    let spec_bytes = rmp_serde::to_vec(&spec)
        .map_err(|e| Error::Invalid(format!("the aggregation spec cannot be serialized: {e}")))?;
    let keys = spec.keys.clone();
    let spec_value = Value::serde(spec);
    let tree = TreeReduction {
        combine_prefix: "agg-combine".into(),
        combine: tasks::function("rask_dataframe::agg_combine"),
        finish: tasks::function("rask_dataframe::agg_finish"),
        args: vec![Arg::Value(spec_value.clone())],
        split_every,
    };
    let finish_name = tokenized("agg-finish", &input, &spec_bytes, u64::from(split_out));
    if split_out > 1 && !keys.is_empty() {
        // Every group's partials to one output, then each output finished on its own.
        let shuffled = partials.shuffled(
            crate::shuffle::Partitioning::Hash(keys),
            split_out,
            Vec::new(),
            false,
        )?;
        let (graph, shards) = shuffled.partitions();
        let finish = tasks::function("rask_dataframe::agg_finish");
        let finish_tasks = (0..split_out)
            .map(|j| {
                let args = vec![
                    Arg::List(vec![Arg::Key(Key::part(shards.clone(), j))]),
                    Arg::Value(spec_value.clone()),
                ];
                (Key::part(finish_name.clone(), j), TaskSpec::new(finish.clone(), args))
            })
            .collect();
        let graph = Graph::from_layer(Layer::tasks(finish_name.clone(), finish_tasks, &[&graph]));
        return Ok(DataFrame::from_partitions(graph, finish_name, split_out, Arc::new(schema)));
    }
    let reduce_tasks = tree.tasks(partial_keys, Key::part(finish_name.clone(), 0));
    let graph = Graph::from_layer(Layer::tasks(finish_name.clone(), reduce_tasks, &[&graph]));
    Ok(DataFrame::from_partitions(graph, finish_name, 1, Arc::new(schema)))
}

fn spec_arg(args: &[Value], index: usize) -> std::result::Result<&GroupSpec, TaskError> {
    let value = args.get(index).ok_or_else(|| TaskError::msg("missing the group-by spec"))?;
    Ok(value.get::<GroupSpec>(&"the group-by spec")?)
}

fn agg_combine(args: &[Value]) -> TaskResult {
    let frames = frames_of(args.first().ok_or_else(|| TaskError::msg("missing the partials"))?)?;
    let frames = frames.into_iter().cloned().collect();
    Ok(partition_value(aggregate::combine(frames, spec_arg(args, 1)?)?))
}

fn agg_finish(args: &[Value]) -> TaskResult {
    let frames = frames_of(args.first().ok_or_else(|| TaskError::msg("missing the partials"))?)?;
    let frames = frames.into_iter().cloned().collect();
    Ok(partition_value(aggregate::finish(frames, spec_arg(args, 1)?)?))
}

rask_core::register_function!("rask_dataframe::agg_combine", agg_combine);
rask_core::register_function!("rask_dataframe::agg_finish", agg_finish);

impl GroupBy {
    /// Adds `{column}_cum_sum`: the running sum of `column` within each group, in row order
    /// across partitions (like Dask's `groupby(k).x.cumsum()`).
    pub fn cum_sum(self, column: &str) -> Result<DataFrame> {
        self.cumulative(CumKind::Sum, column, &format!("{column}_cum_sum"))
    }
    /// Adds `cum_count`: each row's index within its group, from 0.
    pub fn cum_count(self) -> Result<DataFrame> {
        self.cumulative(CumKind::Count, "", "cum_count")
    }
    /// Adds `{column}_cum_min`: the running minimum within each group.
    pub fn cum_min(self, column: &str) -> Result<DataFrame> {
        self.cumulative(CumKind::Min, column, &format!("{column}_cum_min"))
    }
    /// Adds `{column}_cum_max`: the running maximum within each group.
    pub fn cum_max(self, column: &str) -> Result<DataFrame> {
        self.cumulative(CumKind::Max, column, &format!("{column}_cum_max"))
    }

    /// Partition `i`'s result is its own running values plus the totals of partitions
    /// `0..i`, which a chain of small merge tasks carries forward.
    fn cumulative(self, kind: CumKind, column: &str, alias: &str) -> Result<DataFrame> {
        self.frame.check_columns(&self.keys, "group_by")?;
        if kind != CumKind::Count {
            self.frame.check_columns(&[column.to_string()], "cumulative")?;
        }
        let spec =
            CumSpec { keys: self.keys, column: column.to_string(), kind, alias: alias.to_string() };
        let frame = &self.frame;
        let schema = {
            let empty = pl::empty(frame.schema());
            let local = aggregate::cum_local(&empty, &spec)?;
            let offsets = aggregate::cum_totals(&empty, &spec)?;
            pl::frame_schema(&aggregate::cum_apply(&local, &offsets, &spec)?)
        };
        let (graph, input) = frame.partitions();
        let spec_bytes = rmp_serde::to_vec(&spec).map_err(|e| {
            Error::Invalid(format!("the aggregation spec cannot be serialized: {e}"))
        })?;
        let out_name = tokenized("cumulative", &input, &spec_bytes, 0);
        let n = frame.npartitions();
        let chain = CarryChain {
            prefix: "cum-offsets".into(),
            carry: tasks::function("rask_dataframe::cum_carry"),
            apply: tasks::function("rask_dataframe::cum_apply"),
            args: vec![Arg::Value(Value::serde(spec))],
        };
        let inputs: Vec<Key> = (0..n).map(|i| Key::part(input.clone(), i)).collect();
        let outputs: Vec<Key> = (0..n).map(|i| Key::part(out_name.clone(), i)).collect();
        let all = chain.tasks(&inputs, &outputs);
        let graph = Graph::from_layer(Layer::tasks(out_name.clone(), all, &[&graph]));
        Ok(DataFrame::from_partitions(graph, out_name, n, Arc::new(schema)))
    }
}

fn cum_spec(args: &[Value], index: usize) -> std::result::Result<&CumSpec, TaskError> {
    let value = args.get(index).ok_or_else(|| TaskError::msg("missing the cumulative spec"))?;
    Ok(value.get::<CumSpec>(&"the cumulative spec")?)
}

fn first_frame(args: &[Value]) -> std::result::Result<&crate::PlFrame, TaskError> {
    Ok(frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?)
}

/// `cum_carry(partition, spec, [offsets])`: the group totals of this partition and all before
/// it, the offsets of the next partition.
fn cum_carry(args: &[Value]) -> TaskResult {
    let spec = cum_spec(args, 1)?;
    let mut totals = vec![aggregate::cum_totals(first_frame(args)?, spec)?];
    if let Some(offsets) = args.get(2) {
        totals.push(frame_of(offsets)?.clone());
    }
    Ok(partition_value(aggregate::cum_merge(totals, spec)?))
}

/// `cum_apply(partition, link, spec, [offsets])`: the running values of a partition, plus the
/// totals of the partitions before it.
fn cum_apply(args: &[Value]) -> TaskResult {
    let spec = cum_spec(args, 2)?;
    let part = first_frame(args)?;
    let local = aggregate::cum_local(part, spec)?;
    // The first partition adds no offsets, through the same query, so every partition's
    // result has the same types.
    let offsets = match args.get(3) {
        Some(offsets) => frame_of(offsets)?.clone(),
        None => aggregate::cum_totals(&pl::slice(part, 0, 0), spec)?,
    };
    Ok(partition_value(aggregate::cum_apply(&local, &offsets, spec)?))
}

rask_core::register_function!("rask_dataframe::cum_carry", cum_carry);
rask_core::register_function!("rask_dataframe::cum_apply", cum_apply);
