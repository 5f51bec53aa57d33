//! Windows over neighbouring rows: [`DataFrame::rolling`] (a window of `n` rows, or of a length
//! of time on a datetime index: `rolling("2s")`) with `mean/sum/count/min/max/std/var` or a
//! function of your own, and [`DataFrame::shift`], [`DataFrame::diff`] and
//! [`DataFrame::pct_change`].
//!
//! A partition's first rows need rows of the partitions before it. Dask's `map_overlap` takes
//! them from the previous partition only (and fails when that one is too short); rask passes
//! them along a [`CarryChain`]: each partition *lends* the rows the next one's windows can
//! reach — the last `n − 1` rows of everything so far, or the rows within the window of the
//! last time — so an empty or short partition passes on what it borrowed, and the result
//! equals the whole frame's at every boundary, whatever the partitioning. A negative shift
//! borrows from the partitions after, along the chain run backwards.
//!
//! The windowed columns are replaced in place; the other columns (the index among them) and
//! the row count stay, and so do the divisions.

use std::sync::Arc;

use rask_core::partitioned::{carries, CarryChain, ChainLink};
use rask_core::{Arg, Graph, Key, Layer, Name, TaskError, TaskFn, TaskResult, Tokenizer, Value};
use serde::{Deserialize, Serialize};

use crate::duration::Span;
use crate::error::{Error, Result};
use crate::frame::DataFrame;
use crate::polars_adapter::{self as pl, window as plw, DataType};
use crate::tasks::{self, arg, frame_of, partition_value};

/// How far a rolling window reaches: `rolling(10)` (rows) or `rolling("2s")` (time).
#[derive(Clone, Debug, PartialEq)]
pub enum Window {
    /// The row and the `n − 1` rows before it.
    Rows(i64),
    /// The rows whose index lies within this length of time before the row's, the row's own
    /// included: `(t − w, t]`, as pandas' time windows.
    Time(String),
}

impl From<usize> for Window {
    fn from(n: usize) -> Self {
        Window::Rows(i64::try_from(n).unwrap_or(i64::MAX))
    }
}
impl From<i32> for Window {
    fn from(n: i32) -> Self {
        Window::Rows(i64::from(n))
    }
}
impl From<u32> for Window {
    fn from(n: u32) -> Self {
        Window::Rows(i64::from(n))
    }
}
impl From<&str> for Window {
    fn from(text: &str) -> Self {
        Window::Time(text.to_string())
    }
}

/// What a rolling window computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RollKind {
    /// Mean of the non-null values.
    Mean,
    /// Sum.
    Sum,
    /// Number of non-null values.
    Count,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Standard deviation with this many delta degrees of freedom.
    Std(u8),
    /// Variance with this many delta degrees of freedom.
    Var(u8),
}

/// One windowed operation, as its tasks see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WindowOp {
    /// A rolling aggregate over `rows` rows or a `time` span (Polars' duration text).
    Rolling {
        /// What is computed.
        kind: RollKind,
        /// Window length in rows.
        rows: Option<usize>,
        /// Window length in time.
        time: Option<String>,
        /// Non-null values a window needs for a value (fewer: null).
        min_periods: usize,
    },
    /// The value `n` rows earlier (later, for a negative `n`).
    Shift(i64),
    /// The difference from the value `n` rows earlier.
    Diff(i64),
    /// The relative change from the value `n` rows earlier.
    PctChange(i64),
}

/// Which rows a partition borrows from its neighbours.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Borrow {
    /// The last `n` rows of the partitions before it.
    Before(usize),
    /// The first `n` rows of the partitions after it.
    After(usize),
    /// The rows before it within this many nanoseconds of its first time (at least the
    /// window: a window of months lends 31 days per month).
    Time(i64),
}

/// Everything the tasks of a windowed operation need.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowSpec {
    /// What is computed.
    pub op: WindowOp,
    /// The windowed columns.
    pub columns: Vec<String>,
    /// The datetime index (for time windows).
    pub index: Option<String>,
    /// What each partition borrows.
    pub borrow: Borrow,
}
rask_core::register_type!(WindowSpec);

/// A rolling window over a frame: [`DataFrame::rolling`].
#[derive(Clone)]
pub struct Rolling {
    frame: DataFrame,
    window: Window,
    min_periods: Option<usize>,
}

impl Rolling {
    /// How many non-null values a window needs for a result (fewer give null). pandas'
    /// defaults: the window's length for a window of rows, 1 for a window of time.
    pub fn min_periods(mut self, n: usize) -> Self {
        self.min_periods = Some(n);
        self
    }

    /// The mean over each window.
    pub fn mean(&self) -> Result<DataFrame> {
        self.aggregate(RollKind::Mean, "mean")
    }
    /// The sum over each window.
    pub fn sum(&self) -> Result<DataFrame> {
        self.aggregate(RollKind::Sum, "sum")
    }
    /// The number of non-null values in each window.
    pub fn count(&self) -> Result<DataFrame> {
        self.aggregate(RollKind::Count, "count")
    }
    /// The smallest value in each window.
    pub fn min(&self) -> Result<DataFrame> {
        self.aggregate(RollKind::Min, "min")
    }
    /// The largest value in each window.
    pub fn max(&self) -> Result<DataFrame> {
        self.aggregate(RollKind::Max, "max")
    }
    /// The sample standard deviation (`ddof = 1`) over each window.
    pub fn std(&self) -> Result<DataFrame> {
        self.aggregate(RollKind::Std(1), "std")
    }
    /// The sample variance (`ddof = 1`) over each window.
    pub fn var(&self) -> Result<DataFrame> {
        self.aggregate(RollKind::Var(1), "var")
    }

    /// `f` of the non-null values of each window (as floats, oldest first), or null when a
    /// window has fewer than `min_periods`. A closure runs on the local scheduler only.
    pub fn apply(
        &self,
        name: &str,
        f: impl Fn(&[f64]) -> f64 + Send + Sync + 'static,
    ) -> Result<DataFrame> {
        let (spec, reach) = self.spec(RollKind::Mean, "apply")?;
        if matches!(reach, Reach::Time(None)) {
            return Err(Error::Invalid(format!(
                "rolling({:?}).apply: a function needs a window of fixed length in whole units of the index (not calendar months, not less than a day on a date index); use one such as \"30d\"",
                self.window
            )));
        }
        let f = Arc::new(f);
        let func = TaskFn::closure(format!("rolling-apply:{name}"), move |args: &[Value]| {
            let inputs = ApplyInputs::of(args)?;
            let (part, borrowed, ties, spec) =
                (inputs.part, inputs.borrowed, inputs.ties, inputs.spec);
            Ok(partition_value(apply_function(part, borrowed, ties, spec, &reach, f.as_ref())?))
        });
        let label: String = name.chars().filter(|c| c.is_alphanumeric() || *c == '_').collect();
        self.frame.windowed(
            &spec,
            &format!("rolling-{label}"),
            func,
            Some(Tokenizer::new().str(name).finish()),
        )
    }

    fn aggregate(&self, kind: RollKind, what: &str) -> Result<DataFrame> {
        let (spec, _) = self.spec(kind, what)?;
        self.frame.windowed(
            &spec,
            &format!("rolling-{what}"),
            tasks::function("rask_dataframe::window_apply"),
            None,
        )
    }

    /// The spec, and the window's reach in the index's physical unit (time windows).
    fn spec(&self, kind: RollKind, what: &str) -> Result<(WindowSpec, Reach)> {
        let frame = &self.frame;
        let operation = format!("rolling {what}");
        if let Window::Time(text) = &self.window {
            frame.time_index(&format!("{operation} over {text:?}"))?;
        }
        let columns = frame.window_columns(&operation, true)?;
        match &self.window {
            Window::Rows(n) => {
                let rows = usize::try_from(*n).ok().filter(|n| *n > 0).ok_or_else(|| {
                    Error::Invalid(format!(
                        "a rolling window of {n} rows: a window holds at least one row"
                    ))
                })?;
                let min_periods = self.min_periods.unwrap_or(rows);
                let op = WindowOp::Rolling { kind, rows: Some(rows), time: None, min_periods };
                let spec =
                    WindowSpec { op, columns, index: None, borrow: Borrow::Before(rows - 1) };
                Ok((spec, Reach::Rows(rows)))
            }
            Window::Time(text) => {
                let (index, dtype) = frame.time_index(&format!("{operation} over {text:?}"))?;
                let span = Span::parse(text, "the window of rolling")?;
                let reach = Reach::time(span, &dtype);
                let op = WindowOp::Rolling {
                    kind,
                    rows: None,
                    time: Some(span.polars()),
                    min_periods: self.min_periods.unwrap_or(1),
                };
                let borrow = Borrow::Time(
                    span.nanos.max(span.months.saturating_mul(31 * 86_400_000_000_000)),
                );
                Ok((WindowSpec { op, columns, index: Some(index), borrow }, reach))
            }
        }
    }
}

/// How far back a user function's window reaches.
#[derive(Clone, Copy, Debug)]
enum Reach {
    Rows(usize),
    /// A fixed span in the index's physical unit, or calendar months (not fixed).
    Time(Option<i64>),
}

impl Reach {
    fn time(span: Span, dtype: &DataType) -> Reach {
        let per_unit = match dtype {
            DataType::Datetime(unit, _) => match unit {
                pl::TimeUnit::Nanoseconds => 1,
                pl::TimeUnit::Microseconds => 1_000,
                pl::TimeUnit::Milliseconds => 1_000_000,
            },
            _ => 86_400_000_000_000,
        };
        Reach::Time((span.months == 0 && span.nanos % per_unit == 0).then(|| span.nanos / per_unit))
    }
}

/// A user function over every window of each windowed column.
fn apply_function(
    part: &pl::PlFrame,
    borrowed: Option<&pl::PlFrame>,
    ties: Option<&pl::PlFrame>,
    spec: &WindowSpec,
    reach: &Reach,
    f: &(dyn Fn(&[f64]) -> f64 + Send + Sync),
) -> std::result::Result<pl::PlFrame, TaskError> {
    let (rows, offset) = plw::joined(part, borrowed, ties, spec)?;
    let WindowOp::Rolling { min_periods, .. } = spec.op else {
        return Err(TaskError::msg("a rolling function with a spec that is not a rolling window"));
    };
    // Where each row's window starts and ends (a time window holds every row at its time,
    // later ones included, as Polars' do).
    let (starts, ends): (Vec<usize>, Vec<usize>) = match reach {
        Reach::Rows(n) => (0..rows.height()).map(|i| ((i + 1).saturating_sub(*n), i)).unzip(),
        Reach::Time(None) => {
            return Err(TaskError::msg(
                "a rolling function over a window of no fixed length (refused when planned)",
            ))
        }
        Reach::Time(Some(width)) => {
            let index = spec.index.as_deref().unwrap_or_default();
            let times = plw::time_values(&rows, index)?;
            if times.iter().any(Option::is_none) || times.windows(2).any(|w| w[0] > w[1]) {
                return Err(TaskError::msg(format!(
                    "a rolling function over time needs the rows sorted by `{index}` without nulls; set_index(\"{index}\") sorts them"
                )));
            }
            let times: Vec<i64> = times.into_iter().flatten().collect();
            let (mut start, mut end) = (0, 0);
            times
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    while times[start] <= t - width {
                        start += 1;
                    }
                    end = end.max(i);
                    while end + 1 < times.len() && times[end + 1] == t {
                        end += 1;
                    }
                    (start, end)
                })
                .unzip()
        }
    };
    let mut out = part.clone();
    for column in &spec.columns {
        let values = plw::float_values(&rows, column)?;
        let mut window = Vec::new();
        let results: Vec<Option<f64>> = (offset..offset + part.height())
            .map(|i| {
                window.clear();
                window.extend(values[starts[i]..=ends[i]].iter().flatten());
                (window.len() >= min_periods.max(1)).then(|| f(&window))
            })
            .collect();
        out = plw::with_floats(&out, column, results)?;
    }
    Ok(out)
}

impl DataFrame {
    /// A rolling window: `df.rolling(10).mean()` (the row and the 9 before it) or, on a
    /// datetime index, `df.rolling("2s").sum()` (the rows of the last two seconds). Every
    /// column but the index is rolled (select the ones you want first); they must hold
    /// numbers. The windows reach across partitions: the result equals the whole frame's.
    pub fn rolling(&self, window: impl Into<Window>) -> Rolling {
        Rolling { frame: self.clone(), window: window.into(), min_periods: None }
    }

    /// Every column but the index, moved down `periods` rows (up, if negative), across
    /// partitions; the rows at the start (end) become null.
    pub fn shift(&self, periods: i64) -> Result<DataFrame> {
        let columns = self.window_columns("shift", false)?;
        self.row_window(WindowOp::Shift(periods), columns, periods, "shift")
    }

    /// The difference of every column but the index from its value `periods` rows earlier.
    pub fn diff(&self, periods: i64) -> Result<DataFrame> {
        let columns = self.window_columns("diff", true)?;
        self.row_window(WindowOp::Diff(periods), columns, periods, "diff")
    }

    /// The relative change of every column but the index from its value `periods` rows
    /// earlier (`x / x.shift(periods) − 1`; nulls are not filled, as in pandas 3).
    pub fn pct_change(&self, periods: i64) -> Result<DataFrame> {
        let columns = self.window_columns("pct_change", true)?;
        self.row_window(WindowOp::PctChange(periods), columns, periods, "pct-change")
    }

    fn row_window(
        &self,
        op: WindowOp,
        columns: Vec<String>,
        periods: i64,
        label: &str,
    ) -> Result<DataFrame> {
        let reach = usize::try_from(periods.unsigned_abs()).map_err(|_| {
            Error::Invalid(format!(
                "{label} by {periods} rows: that is more rows than fit in memory"
            ))
        })?;
        let borrow = if periods < 0 { Borrow::After(reach) } else { Borrow::Before(reach) };
        let spec = WindowSpec { op, columns, index: None, borrow };
        self.windowed(&spec, label, tasks::function("rask_dataframe::window_apply"), None)
    }

    /// The columns a windowed operation changes: all but the index, numeric if `numbers`.
    fn window_columns(&self, operation: &str, numbers: bool) -> Result<Vec<String>> {
        let index = self.index();
        let mut columns = Vec::new();
        for (name, dtype) in self.dtypes() {
            if Some(name.as_str()) == index {
                continue;
            }
            if numbers && !pl::is_numeric(&dtype) {
                return Err(Error::Invalid(format!(
                    "{operation} needs numbers, and `{name}` is a {dtype:?} column: select the columns to compute it over first, e.g. df.select([col(\"{}\")])",
                    self.columns().iter().find(|c| Some(c.as_str()) != index && *c != &name).map_or("x", String::as_str)
                )));
            }
            columns.push(name);
        }
        if columns.is_empty() {
            return Err(Error::Invalid(format!(
                "{operation} has no column to compute: the frame holds only its index"
            )));
        }
        Ok(columns)
    }

    /// The frame's index, when it is a date or datetime column whose partitions are in order
    /// (what time windows and resampling need); `operation` names the caller in errors.
    pub(crate) fn time_index(&self, operation: &str) -> Result<(String, DataType)> {
        let divisions = self.divisions().ok_or_else(|| {
            Error::Invalid(format!(
                "{operation} needs a datetime index, and this frame has none: set one with set_index(\"column\")"
            ))
        })?;
        let column = divisions.column.clone();
        let dtype = self.schema().get(&column).cloned().unwrap_or(DataType::Null);
        if !matches!(dtype, DataType::Datetime(..) | DataType::Date) {
            return Err(Error::Invalid(format!(
                "{operation} needs a datetime index, and the index `{column}` holds {dtype:?}: cast it to a datetime (or set another index) first"
            )));
        }
        if !divisions.sorted() {
            return Err(Error::Invalid(format!(
                "{operation} needs the partitions in order of the index `{column}`, and they overlap: set_index(\"{column}\") sorts them"
            )));
        }
        Ok((column, dtype))
    }

    /// The graph of a windowed operation: a carry chain of lent rows, forwards (or backwards
    /// for a negative shift), and one `func(partition, link, [ties], spec, [borrowed])` per
    /// partition; a time window first runs a chain backwards for the ties.
    fn windowed(
        &self,
        spec: &WindowSpec,
        label: &str,
        func: TaskFn,
        token: Option<rask_core::Token>,
    ) -> Result<DataFrame> {
        let empty = pl::empty(self.schema());
        let schema = pl::frame_schema(&plw::apply(&empty, None, None, spec)?);
        let (graph, input) = self.partitions();
        let spec_bytes = rmp_serde::to_vec(spec)
            .map_err(|e| Error::Invalid(format!("the window spec cannot be serialized: {e}")))?;
        let mut tokenizer = Tokenizer::new();
        tokenizer.str(input.as_str()).bytes(&spec_bytes);
        if let Some(token) = token {
            tokenizer.token(token);
        }
        let name = Name::tokenized(label, tokenizer.finish());
        let spec_arg = Arg::Value(Value::serde(spec.clone()));
        let chain = CarryChain {
            prefix: format!("{label}-lend"),
            carry: tasks::function("rask_dataframe::window_lend"),
            apply: func,
            args: vec![spec_arg.clone()],
        };
        let n = self.npartitions();
        let mut inputs: Vec<Key> = (0..n).map(|i| Key::part(input.clone(), i)).collect();
        let mut outputs: Vec<Key> = (0..n).map(|i| Key::part(name.clone(), i)).collect();
        let mut tasks = Vec::new();
        let mut ties = None;
        match spec.borrow {
            Borrow::After(_) => {
                inputs.reverse();
                outputs.reverse();
            }
            Borrow::Time(_) => {
                // The rows each partition needs from the partitions after it (those at its
                // last time): the carries of a chain run backwards.
                let ties_name = Name::tokenized(&format!("{label}-ties"), tokenizer.finish());
                let reversed: Vec<Key> = inputs.iter().rev().cloned().collect();
                let ahead = tasks::function("rask_dataframe::window_ties_ahead");
                let (carry_tasks, mut into) = carries(&ahead, &[spec_arg], &reversed, &ties_name);
                tasks.extend(carry_tasks);
                into.reverse();
                ties = Some(into);
            }
            Borrow::Before(_) => {}
        }
        tasks.extend(chain.tasks_with_sides(&inputs, ties.as_deref(), &outputs));
        let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[&graph]));
        let mut out = DataFrame::from_partitions(graph, name, n, Arc::new(schema));
        out.known_rows = self.known_rows.clone();
        out.divisions = self.divisions.clone();
        Ok(out)
    }
}

/// `window_lend(partition, spec, [borrowed])`: the rows the next partition borrows.
fn window_lend(args: &[Value]) -> TaskResult {
    let part = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?;
    let spec: &WindowSpec = arg(args, 1, "the window")?;
    let borrowed = args.get(2).map(frame_of).transpose()?;
    Ok(partition_value(plw::lend(part, borrowed, spec)?))
}

/// The inputs of an apply task: `(partition, link, [ties ahead], spec, [borrowed])`, the ties
/// there for time windows.
struct ApplyInputs<'a> {
    part: &'a pl::PlFrame,
    ties: Option<&'a pl::PlFrame>,
    spec: &'a WindowSpec,
    borrowed: Option<&'a pl::PlFrame>,
}

impl<'a> ApplyInputs<'a> {
    fn of(args: &'a [Value]) -> std::result::Result<Self, TaskError> {
        let part = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?;
        let _: &ChainLink = arg(args, 1, "the chain link")?;
        // A time window's spec comes after the ties (none for the last partition); the
        // others' right after the link.
        let (ties, at) = match args.get(2).map(|v| v.get::<WindowSpec>(&"the window")) {
            Some(Ok(_)) => (None, 2),
            _ => {
                (Some(frame_of(args.get(2).ok_or_else(|| TaskError::msg("missing the ties"))?)?), 3)
            }
        };
        let spec: &WindowSpec = arg(args, at, "the window")?;
        let borrowed = args.get(at + 1).map(frame_of).transpose()?;
        Ok(ApplyInputs { part, ties, spec, borrowed })
    }
}

/// `window_apply(partition, link, [ties], spec, [borrowed])`: the partition with its windowed
/// columns.
fn window_apply(args: &[Value]) -> TaskResult {
    let inputs = ApplyInputs::of(args)?;
    Ok(partition_value(plw::apply(inputs.part, inputs.borrowed, inputs.ties, inputs.spec)?))
}

/// `window_ties_ahead(partition, spec, [ahead])`: the rows at the first time of this partition
/// and those after it.
fn window_ties_ahead(args: &[Value]) -> TaskResult {
    let part = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?;
    let spec: &WindowSpec = arg(args, 1, "the window")?;
    let ahead = args.get(2).map(frame_of).transpose()?;
    Ok(partition_value(plw::ties_ahead(part, ahead, spec)?))
}

rask_core::register_function!("rask_dataframe::window_lend", window_lend);
rask_core::register_function!("rask_dataframe::window_apply", window_apply);
rask_core::register_function!("rask_dataframe::window_ties_ahead", window_ties_ahead);
