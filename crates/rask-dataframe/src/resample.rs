//! Resampling on a datetime index: [`DataFrame::resample`]`("1d")` then `mean()`, `sum()`,
//! `count()`, `min()`, `max()`, `first()`, `last()`, `std()` or any [`agg`](crate::agg).
//!
//! Each partition is reduced to the partial aggregates of its bins (inside its read, like a
//! group-by's first stage). A bin can straddle partitions — a day that begins in one and ends
//! in the next, or spans several — so the bins are finished along a [`CarryChain`]: the
//! bin still *open* at the end of the partitions so far is carried to the next partition,
//! merged with that partition's bins, and finished by the first partition that holds a later
//! bin (or by the last partition). Every bin is finished exactly once, from all its rows,
//! and output `i` holds the bins from the one open before partition `i` up to the one open
//! after it — with the empty bins in between filled in: null, except counts and sums, which
//! are 0 as in pandas.
//!
//! Rules: a count and a unit (`"1h"`, `"15m"`, `"1d"`, `"1w"` — weeks start on Monday —,
//! `"1mo"`, `"1q"`, `"1y"`), and pandas' month-end rule `"ME"` (calendar months labelled by
//! their last day). Bins are closed on the left and labelled by their start unless
//! [`Resampler::closed`] / [`Resampler::label`] say otherwise.

use std::sync::Arc;

use rask_core::partitioned::{CarryChain, ChainLink};
use rask_core::{Arg, Graph, Key, Layer, Name, TaskError, TaskResult, Tokenizer, Value};
use serde::{Deserialize, Serialize};

use crate::calendar::add_months;
use crate::duration::Span;
use crate::error::{Error, Result};
use crate::frame::DataFrame;
use crate::plan::Step;
use crate::polars_adapter::resample::{self as plr, BIN};
use crate::polars_adapter::{self as pl, aggregate, DataType, PlFrame, TimeUnit};
use crate::reduction::{Agg, AggKind, GroupSpec};
use crate::tasks::{self, arg, frame_of, partition_value};

/// A side of a bin: which end is closed, or labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// The start.
    Left,
    /// The end.
    Right,
}

/// How bins advance, in the index's physical unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Every {
    /// A fixed length.
    Fixed(i64),
    /// Calendar months (`per_day`: the physical length of a day).
    Months { months: i64, per_day: i64 },
}

impl Every {
    /// The start of the bin after the one starting at `start`.
    fn next(self, start: i64) -> i64 {
        match self {
            Every::Fixed(length) => start + length,
            Every::Months { months, per_day } => {
                add_months(start.div_euclid(per_day), months) * per_day
            }
        }
    }
}

/// How a bin is labelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum LabelAt {
    Start,
    End,
    /// The bin's last day (pandas' `"ME"`).
    LastDay {
        per_day: i64,
    },
}

/// Everything the tasks of one resample need.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ResampleSpec {
    index: String,
    dtype: DataType,
    group: GroupSpec,
    every: Every,
    label: LabelAt,
    /// The outputs that are 0, not null, for an empty bin.
    zero: Vec<String>,
}
rask_core::register_type!(ResampleSpec);

/// A resampling of a frame: [`DataFrame::resample`].
#[derive(Clone)]
pub struct Resampler {
    frame: DataFrame,
    rule: String,
    closed: Side,
    label: Option<Side>,
}

impl DataFrame {
    /// Groups the rows into bins of the datetime index (`"1h"`, `"1d"`, `"1w"`, `"1mo"`,
    /// `"ME"`; see the [module](crate::resample)) — then `.mean()` and the like aggregate
    /// every bin, empty ones included. Needs a datetime (or date) index: `set_index` first.
    pub fn resample(&self, rule: &str) -> Resampler {
        Resampler { frame: self.clone(), rule: rule.to_string(), closed: Side::Left, label: None }
    }
}

impl Resampler {
    /// Which end of a bin is in it: `Left` (the default: `[start, end)`) or `Right`
    /// (`(start, end]`).
    pub fn closed(mut self, side: Side) -> Self {
        self.closed = side;
        self
    }

    /// Which end labels a bin (the start unless set; `"ME"` labels by the month's last day).
    pub fn label(mut self, side: Side) -> Self {
        self.label = Some(side);
        self
    }

    /// The mean of every column but the index, per bin.
    pub fn mean(&self) -> Result<DataFrame> {
        self.each(AggKind::Mean)
    }
    /// The sum per bin (0 for an empty bin).
    pub fn sum(&self) -> Result<DataFrame> {
        self.each(AggKind::Sum)
    }
    /// The non-null values per bin (0 for an empty bin).
    pub fn count(&self) -> Result<DataFrame> {
        self.each(AggKind::Count)
    }
    /// The smallest value per bin.
    pub fn min(&self) -> Result<DataFrame> {
        self.each(AggKind::Min)
    }
    /// The largest value per bin.
    pub fn max(&self) -> Result<DataFrame> {
        self.each(AggKind::Max)
    }
    /// The first value per bin.
    pub fn first(&self) -> Result<DataFrame> {
        self.each(AggKind::First)
    }
    /// The last value per bin.
    pub fn last(&self) -> Result<DataFrame> {
        self.each(AggKind::Last)
    }
    /// The sample standard deviation per bin.
    pub fn std(&self) -> Result<DataFrame> {
        self.each(AggKind::Std(1))
    }

    fn each(&self, kind: AggKind) -> Result<DataFrame> {
        let index = self.frame.index().unwrap_or_default().to_string();
        let aggs: Vec<Agg> = self
            .frame
            .columns()
            .iter()
            .filter(|c| **c != index)
            .map(|c| Agg::new(kind, c))
            .collect();
        self.agg(aggs)
    }

    /// The aggregations per bin: `.agg([agg::mean("passenger_count"), agg::size()])`.
    pub fn agg(&self, aggs: impl IntoIterator<Item = Agg>) -> Result<DataFrame> {
        let frame = &self.frame;
        let operation = format!("resample({:?})", self.rule);
        let (index, dtype) = frame.time_index(&operation)?;
        let aggs: Vec<Agg> = aggs.into_iter().collect();
        if aggs.is_empty() {
            return Err(Error::Invalid(format!(
                "{operation} has nothing to aggregate: the frame holds only its index"
            )));
        }
        let columns: Vec<String> =
            aggs.iter().filter(|a| a.kind != AggKind::Size).map(|a| a.column.clone()).collect();
        frame.check_columns(&columns, "resample")?;
        let (span, month_end) = parse_rule(&self.rule)?;
        let per_day = physical_per_day(&dtype);
        let every = if span.months != 0 {
            Every::Months { months: span.months, per_day }
        } else {
            let per_unit = 86_400_000_000_000 / per_day;
            if span.nanos % per_unit != 0 {
                return Err(Error::Invalid(format!(
                    "{operation}: the index `{index}` holds {dtype:?}, which cannot be binned finer than {}; use a rule of whole units of it",
                    if dtype == DataType::Date { "a day" } else { "its unit" }
                )));
            }
            Every::Fixed(span.nanos / per_unit)
        };
        let label = match (self.label, month_end) {
            (Some(Side::Left), _) => LabelAt::Start,
            (Some(Side::Right), _) => LabelAt::End,
            (None, true) => LabelAt::LastDay { per_day },
            (None, false) => LabelAt::Start,
        };
        let zero = aggs
            .iter()
            .filter(|a| matches!(a.kind, AggKind::Count | AggKind::Size | AggKind::Sum))
            .map(|a| a.alias.clone())
            .collect();
        let group = GroupSpec {
            keys: vec![BIN.to_string()],
            aggs,
            dropna: true,
            sort: vec![(BIN.to_string(), false)],
        };
        crate::typecheck::check_group_spec(
            frame.schema(),
            &group,
            frame.text_samples.as_deref().map(Vec::as_slice),
        )?;
        let spec =
            ResampleSpec { index: index.clone(), dtype: dtype.clone(), group, every, label, zero };
        let bin = plr::bin_expr(&index, &dtype, &span.polars(), self.closed == Side::Right);
        let partials = frame
            .with_step(Step::WithColumns(vec![bin]), "resample")?
            .with_step(Step::PartialAgg(spec.group.clone()), "resample")?;
        let schema = {
            let empty = pl::empty(partials.schema());
            pl::frame_schema(&finish_bins(&empty, ChainLink { position: 0, len: 1 }, &spec, None)?)
        };
        let (graph, input) = partials.partitions();
        let spec_bytes = rmp_serde::to_vec(&spec)
            .map_err(|e| Error::Invalid(format!("the resample spec cannot be serialized: {e}")))?;
        let name = Name::tokenized(
            "resample",
            Tokenizer::new().str(input.as_str()).bytes(&spec_bytes).finish(),
        );
        let chain = CarryChain {
            prefix: "resample-open".into(),
            carry: tasks::function("rask_dataframe::resample_open"),
            apply: tasks::function("rask_dataframe::resample_finish"),
            args: vec![Arg::Value(Value::serde(spec))],
        };
        let n = frame.npartitions();
        let inputs: Vec<Key> = (0..n).map(|i| Key::part(input.clone(), i)).collect();
        let outputs: Vec<Key> = (0..n).map(|i| Key::part(name.clone(), i)).collect();
        let graph = Graph::from_layer(Layer::tasks(
            name.clone(),
            chain.tasks(&inputs, &outputs),
            &[&graph],
        ));
        Ok(DataFrame::from_partitions(graph, name, n, Arc::new(schema)))
    }
}

/// A rule as a span, and whether it is pandas' month end (`"ME"`, `"3ME"`, or the older
/// `"M"`).
fn parse_rule(rule: &str) -> Result<(Span, bool)> {
    let text = rule.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let count = if digits == 0 { "1" } else { &text[..digits] };
    match &text[digits..] {
        "ME" | "M" => Ok((Span::parse(&format!("{count}mo"), "the resample rule")?, true)),
        "MS" => Ok((Span::parse(&format!("{count}mo"), "the resample rule")?, false)),
        unit @ ("D" | "W" | "h" | "H" | "min" | "s" | "S") => {
            let unit = match unit {
                "D" => "d",
                "W" => "w",
                "H" | "h" => "h",
                "min" => "m",
                _ => "s",
            };
            Ok((Span::parse(&format!("{count}{unit}"), "the resample rule")?, false))
        }
        _ => Ok((Span::parse(text, "the resample rule")?, false)),
    }
}

/// The physical length of a day in a date or datetime type.
fn physical_per_day(dtype: &DataType) -> i64 {
    match dtype {
        DataType::Datetime(TimeUnit::Nanoseconds, _) => 86_400_000_000_000,
        DataType::Datetime(TimeUnit::Microseconds, _) => 86_400_000_000,
        DataType::Datetime(TimeUnit::Milliseconds, _) => 86_400_000,
        _ => 1,
    }
}

/// A partition's bin partials merged with the bin open before it, in bin order.
fn merged(partials: &PlFrame, spec: &ResampleSpec, open: Option<&PlFrame>) -> Result<PlFrame> {
    let mut frames: Vec<PlFrame> = open.into_iter().cloned().collect();
    frames.push(partials.clone());
    plr::sort_bins(aggregate::combine(frames, &spec.group)?)
}

/// Output `link.position`: the bins closed by this partition, finished, with the empty bins
/// up to the one still open filled in.
fn finish_bins(
    partials: &PlFrame,
    link: ChainLink,
    spec: &ResampleSpec,
    open: Option<&PlFrame>,
) -> Result<PlFrame> {
    let merged = merged(partials, spec, open)?;
    let starts = plr::bins(&merged)?;
    let (closed, end) = match (starts.first(), starts.last()) {
        (Some(_), Some(&last)) if link.last() => (merged, spec.every.next(last)),
        (Some(_), Some(&last)) => (pl::slice(&merged, 0, starts.len() - 1), last),
        _ => (merged, i64::MIN),
    };
    let finished = aggregate::finish(vec![closed], &spec.group)?;
    let mut all = Vec::new();
    if let Some(&first) = starts.first() {
        let mut start = first;
        while start < end {
            all.push(start);
            start = spec.every.next(start);
        }
    }
    let labels = all
        .iter()
        .map(|&start| match spec.label {
            LabelAt::Start => start,
            LabelAt::End => spec.every.next(start),
            LabelAt::LastDay { per_day } => spec.every.next(start) - per_day,
        })
        .collect();
    plr::fill_bins(&finished, all, labels, &spec.index, &spec.dtype, &spec.zero)
}

fn spec_of(args: &[Value], index: usize) -> std::result::Result<&ResampleSpec, TaskError> {
    arg(args, index, "the resample spec")
}

/// `resample_open(partials, spec, [open])`: the bin open after this partition.
fn resample_open(args: &[Value]) -> TaskResult {
    let partials = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partials"))?)?;
    let open = args.get(2).map(frame_of).transpose()?;
    let merged = merged(partials, spec_of(args, 1)?, open)?;
    Ok(partition_value(merged.tail(Some(1))))
}

/// `resample_finish(partials, link, spec, [open])`: one output partition of bins.
fn resample_finish(args: &[Value]) -> TaskResult {
    let partials = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partials"))?)?;
    let link: &ChainLink = arg(args, 1, "the chain link")?;
    let open = args.get(3).map(frame_of).transpose()?;
    Ok(partition_value(finish_bins(partials, *link, spec_of(args, 2)?, open)?))
}

rask_core::register_function!("rask_dataframe::resample_open", resample_open);
rask_core::register_function!("rask_dataframe::resample_finish", resample_finish);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::days_from_civil;

    #[test]
    fn rules_parse_as_spans_with_pandas_aliases() {
        let day = 86_400_000_000_000;
        assert_eq!(parse_rule("1d").unwrap(), (Span { months: 0, nanos: day }, false));
        assert_eq!(parse_rule("D").unwrap(), (Span { months: 0, nanos: day }, false));
        assert_eq!(parse_rule("ME").unwrap(), (Span { months: 1, nanos: 0 }, true));
        assert_eq!(parse_rule("3MS").unwrap(), (Span { months: 3, nanos: 0 }, false));
        assert_eq!(parse_rule("15min").unwrap().0.nanos, 15 * 60_000_000_000);
        assert!(parse_rule("1 fortnight").is_err());
    }

    #[test]
    fn month_bins_step_through_the_calendar() {
        let per_day = 86_400_000_000; // microseconds
        let every = Every::Months { months: 1, per_day };
        let jan = days_from_civil(2016, 1, 1) * per_day;
        let feb = every.next(jan);
        assert_eq!(feb, days_from_civil(2016, 2, 1) * per_day);
        assert_eq!(every.next(feb) - feb, 29 * per_day);
    }
}
