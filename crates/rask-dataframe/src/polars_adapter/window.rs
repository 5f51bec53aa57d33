//! Windows over neighbouring rows as Polars queries: rolling aggregates (by row count and by
//! time), `shift`, `diff` and `pct_change`, computed on a partition with the rows it borrows
//! from its neighbours, and the rows a partition lends to the next one.

use polars::prelude::{
    col, lit, ClosedWindow, DataType, Duration, Expr, IntoLazy, RollingFnParams,
    RollingOptionsDynamicWindow, RollingOptionsFixedWindow, RollingVarParams, TimeUnit,
};

use polars::series::ops::NullBehavior;

use super::{concat, frame_schema, PlFrame};
use crate::error::{Error, Result};
use crate::window::{Borrow, RollKind, WindowOp, WindowSpec};

fn fixed(
    size: usize,
    min_periods: usize,
    fn_params: Option<RollingFnParams>,
) -> RollingOptionsFixedWindow {
    RollingOptionsFixedWindow {
        window_size: size,
        min_periods,
        weights: None,
        center: false,
        fn_params,
    }
}

fn dynamic(
    span: &str,
    min_periods: usize,
    fn_params: Option<RollingFnParams>,
) -> RollingOptionsDynamicWindow {
    RollingOptionsDynamicWindow {
        window_size: Duration::parse(span),
        min_periods,
        // pandas' time windows: (t − w, t].
        closed_window: ClosedWindow::Right,
        fn_params,
    }
}

/// The expression that computes `column`'s windowed values over the rows of a frame.
fn window_expr(column: &str, spec: &WindowSpec) -> Expr {
    let c = col(column);
    let variance = |ddof: u8| Some(RollingFnParams::Var(RollingVarParams { ddof }));
    let expr = match &spec.op {
        WindowOp::Shift(n) => c.shift(lit(*n)),
        WindowOp::Diff(n) => c.diff(lit(*n), NullBehavior::Ignore),
        WindowOp::PctChange(n) => c.pct_change(lit(*n)),
        WindowOp::Rolling { kind, rows: Some(size), min_periods, .. } => {
            let o = |params| fixed(*size, *min_periods, params);
            match kind {
                RollKind::Mean => c.rolling_mean(o(None)),
                RollKind::Sum => c.rolling_sum(o(None)),
                RollKind::Min => c.rolling_min(o(None)),
                RollKind::Max => c.rolling_max(o(None)),
                RollKind::Std(ddof) => c.rolling_std(o(variance(*ddof))),
                RollKind::Var(ddof) => c.rolling_var(o(variance(*ddof))),
                RollKind::Count => c.is_not_null().cast(DataType::UInt32).rolling_sum(o(None)),
            }
        }
        WindowOp::Rolling { kind, time: Some(span), min_periods, .. } => {
            let by = || col(spec.index.as_deref().unwrap_or_default());
            let o = |params| dynamic(span, *min_periods, params);
            match kind {
                RollKind::Mean => c.rolling_mean_by(by(), o(None)),
                RollKind::Sum => c.rolling_sum_by(by(), o(None)),
                RollKind::Min => c.rolling_min_by(by(), o(None)),
                RollKind::Max => c.rolling_max_by(by(), o(None)),
                RollKind::Std(ddof) => c.rolling_std_by(by(), o(variance(*ddof))),
                RollKind::Var(ddof) => c.rolling_var_by(by(), o(variance(*ddof))),
                RollKind::Count => {
                    c.is_not_null().cast(DataType::UInt32).rolling_sum_by(by(), o(None))
                }
            }
        }
        WindowOp::Rolling { .. } => unreachable!("a rolling window is by rows or by time"),
    };
    expr.alias(column)
}

/// The columns a window reads: the index (for time windows) and the windowed columns.
fn needed(spec: &WindowSpec) -> Vec<Expr> {
    spec.index.iter().chain(&spec.columns).map(|c| col(c.as_str())).collect()
}

fn run(lazy: polars::prelude::LazyFrame, what: &str) -> Result<PlFrame> {
    lazy.collect().map_err(|e| Error::polars(what, e))
}

/// The rows of a partition a window reads, with the rows borrowed from its neighbours on the
/// side the window looks to (before it, or after it for a negative shift), and where the
/// partition's own rows start in them.
pub fn joined(
    part: &PlFrame,
    borrowed: Option<&PlFrame>,
    ties: Option<&PlFrame>,
    spec: &WindowSpec,
) -> Result<(PlFrame, usize)> {
    let own = own_rows(part, spec)?;
    let schema = frame_schema(&own);
    // Later rows at the partition's last time are in its last rows' windows (Polars' time
    // windows hold every row at a time, not only those before).
    let ties = match ties {
        Some(ties) if own.height() > 0 => {
            let index = col(spec.index.as_deref().unwrap_or_default());
            let last = lit(own
                .column(spec.index.as_deref().unwrap_or_default())
                .and_then(|c| c.max_reduce())
                .map_err(|e| Error::polars("the last time of a partition", e))?);
            Some(run(
                ties.clone().lazy().filter(index.eq(last)),
                "rows tied with a partition's last time",
            )?)
        }
        _ => None,
    };
    let Some(borrowed) = borrowed else {
        return Ok((concat(std::iter::once(own).chain(ties).collect(), &schema)?, 0));
    };
    Ok(match spec.borrow {
        Borrow::After(_) => (concat(vec![own, borrowed.clone()], &schema)?, 0),
        _ => {
            let frames = [borrowed.clone(), own].into_iter().chain(ties).collect();
            (concat(frames, &schema)?, borrowed.height())
        }
    })
}

/// The columns of a partition a window reads.
fn own_rows(part: &PlFrame, spec: &WindowSpec) -> Result<PlFrame> {
    run(part.clone().lazy().select(needed(spec)), "selecting a window's columns")
}

/// The rows at the first time of this partition and those after it (`ahead`): what the
/// partition before this one needs of them.
pub fn ties_ahead(part: &PlFrame, ahead: Option<&PlFrame>, spec: &WindowSpec) -> Result<PlFrame> {
    let own = own_rows(part, spec)?;
    let schema = frame_schema(&own);
    let rows = concat(std::iter::once(own).chain(ahead.cloned()).collect(), &schema)?;
    let index = col(spec.index.as_deref().unwrap_or_default());
    run(rows.lazy().filter(index.clone().eq(index.min())), "rows at a partition's first time")
}

/// The rows this partition and those before it lend to the next partition in the chain.
pub fn lend(part: &PlFrame, borrowed: Option<&PlFrame>, spec: &WindowSpec) -> Result<PlFrame> {
    let (rows, _) = joined(part, borrowed, None, spec)?;
    Ok(match &spec.borrow {
        Borrow::Before(n) => rows.tail(Some(*n)),
        Borrow::After(n) => rows.head(Some(*n)),
        Borrow::Time(nanos) => {
            // Rows within the window of the last (largest) time: every later row's window
            // starts after that.
            let index = spec.index.as_deref().unwrap_or_default();
            let per_unit = match rows.schema().get(index) {
                Some(DataType::Datetime(TimeUnit::Microseconds, _)) => 1_000,
                Some(DataType::Datetime(TimeUnit::Milliseconds, _)) => 1_000_000,
                Some(DataType::Date) => 86_400_000_000_000,
                _ => 1,
            };
            let width = (nanos + per_unit - 1) / per_unit;
            let physical = col(index).to_physical().cast(DataType::Int64);
            let start = physical.clone().max() - lit(width);
            run(rows.lazy().filter(physical.gt_eq(start)), "the rows a time window lends")?
        }
    })
}

/// A partition with its windowed columns replaced by their values over the whole frame.
pub fn apply(
    part: &PlFrame,
    borrowed: Option<&PlFrame>,
    ties: Option<&PlFrame>,
    spec: &WindowSpec,
) -> Result<PlFrame> {
    let (rows, offset) = joined(part, borrowed, ties, spec)?;
    let exprs: Vec<Expr> = spec.columns.iter().map(|c| window_expr(c, spec)).collect();
    let values = run(rows.lazy().select(exprs), "a rolling window")?;
    let values = values.slice(offset as i64, part.height());
    let mut out = part.clone();
    for column in values.columns() {
        out.with_column(column.clone()).map_err(|e| Error::polars("a rolling window", e))?;
    }
    Ok(out)
}

/// Values of a numeric column as floats (nulls as `None`).
pub fn float_values(frame: &PlFrame, column: &str) -> Result<Vec<Option<f64>>> {
    let values = frame
        .column(column)
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(|e| Error::polars("reading a column as floats", e))?;
    let values = values.f64().map_err(|e| Error::polars("reading a column as floats", e))?;
    Ok(values.iter().collect())
}

/// The physical values of a datetime or date column (in its own unit).
pub fn time_values(frame: &PlFrame, column: &str) -> Result<Vec<Option<i64>>> {
    let values = frame
        .column(column)
        .and_then(|c| c.to_physical_repr().cast(&DataType::Int64))
        .map_err(|e| Error::polars("reading a time column", e))?;
    let values = values.i64().map_err(|e| Error::polars("reading a time column", e))?;
    Ok(values.iter().collect())
}

/// A partition with `column` replaced by float values.
pub fn with_floats(part: &PlFrame, column: &str, values: Vec<Option<f64>>) -> Result<PlFrame> {
    let series = polars::prelude::Column::new(column.into(), values);
    let mut out = part.clone();
    out.with_column(series).map_err(|e| Error::polars("a rolling window", e))?;
    Ok(out)
}
