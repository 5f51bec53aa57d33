//! Resampling as Polars queries: the bin of each row, bins in order, and the finished bins
//! with the empty ones filled in and labelled.

use polars::prelude::{
    col, lit, Column, DataType, Expr, IntoLazy, JoinArgs, JoinType, MaintainOrderJoin,
    SortMultipleOptions,
};

use super::{window::time_values, PlFrame};
use crate::error::{Error, Result};

/// The column that holds each row's bin while resampling.
pub const BIN: &str = "__rask_bin";

/// The start of each row's bin: `index` truncated to `every` (Polars' duration text), or for
/// bins closed on the right (`(start, end]`), the time just before it truncated.
pub fn bin_expr(index: &str, dtype: &DataType, every: &str, closed_right: bool) -> Expr {
    let time = if closed_right {
        (col(index).to_physical().cast(DataType::Int64) - lit(1i64)).cast(dtype.clone())
    } else {
        col(index)
    };
    time.dt().truncate(lit(every)).alias(BIN)
}

/// The rows sorted by their bin.
pub fn sort_bins(frame: PlFrame) -> Result<PlFrame> {
    frame
        .lazy()
        .sort([BIN], SortMultipleOptions::default().with_maintain_order(true))
        .collect()
        .map_err(|e| Error::polars("sorting resampled bins", e))
}

/// The bin starts of a frame, as physical values of the index's type.
pub fn bins(frame: &PlFrame) -> Result<Vec<i64>> {
    Ok(time_values(frame, BIN)?.into_iter().flatten().collect())
}

/// The finished bins `finished` (sorted, with `BIN`) spread over every bin of `starts`, the
/// missing ones as nulls — zero in the `zero` columns (counts and sums) — with `BIN` replaced
/// by `labels` and named `index`.
pub fn fill_bins(
    finished: &PlFrame,
    starts: Vec<i64>,
    labels: Vec<i64>,
    index: &str,
    dtype: &DataType,
    zero: &[String],
) -> Result<PlFrame> {
    let fail = |e| Error::polars("filling empty resampled bins", e);
    let physical = |values: Vec<i64>| Column::new(BIN.into(), values).cast(dtype).map_err(fail);
    let all = PlFrame::new_infer_height(vec![physical(starts)?]).map_err(fail)?;
    let mut args = JoinArgs::new(JoinType::Left);
    args.maintain_order = MaintainOrderJoin::Left;
    let zeros: Vec<Expr> = zero
        .iter()
        .map(|c| {
            col(c.as_str()).fill_null(
                lit(0).cast(finished.schema().get(c.as_str()).cloned().unwrap_or(DataType::Int64)),
            )
        })
        .collect();
    let mut out = all
        .lazy()
        .join(finished.clone().lazy(), [col(BIN)], [col(BIN)], args)
        .with_columns(zeros)
        .collect()
        .map_err(fail)?;
    out.with_column(physical(labels)?).map_err(fail)?;
    out.rename(BIN, index.into()).map_err(fail)?;
    Ok(out)
}
