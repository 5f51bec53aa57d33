//! The three stages of a tree reduction, as Polars queries.
//!
//! Every aggregation is split into *partial* columns that can be combined associatively: a
//! mean is a sum and a count, a variance a count, a sum and a sum of squares, `n_unique` the
//! list of distinct values. Each partition is reduced to its partials (one row per group), the
//! partials of `split_every` partitions are combined into one, and the last combination
//! computes the final values. With no keys the same stages reduce a whole frame to one row.

use polars::prelude::{
    col, len, lit, when, DataType, ExplodeOptions, Expr, IntoLazy, LazyFrame, Null, Schema,
    SortMultipleOptions, IDX_DTYPE,
};

use super::{concat, PlFrame};
use crate::error::{Error, Result};
use crate::reduction::{Agg, AggKind, CumKind, CumSpec, GroupSpec};

fn partial_name(index: usize, part: &str) -> String {
    format!("__rask_{index}_{part}")
}

fn p(index: usize, part: &str) -> Expr {
    col(partial_name(index, part))
}

/// Values as floats for sums of squares and means. The cast is strict: the plan only lets
/// numbers and booleans get here, so a partition whose column turns out to hold text (a
/// `map_partitions` that returns another type than it declared) fails naming the column and
/// the values, instead of reading them as null.
fn float(expr: Expr) -> Expr {
    expr.strict_cast(DataType::Float64)
}

const EXPLODE: ExplodeOptions = ExplodeOptions { empty_as_null: false, keep_nulls: true };

/// The partial columns of one aggregation over raw rows.
fn partial_exprs(index: usize, agg: &Agg, grouped: bool) -> Vec<Expr> {
    let c = || col(agg.column.as_str());
    let name = |part| partial_name(index, part);
    match agg.kind {
        AggKind::Sum => vec![c().sum().alias(name("s"))],
        AggKind::Mean => vec![float(c()).sum().alias(name("s")), c().count().alias(name("c"))],
        AggKind::Min => vec![c().min().alias(name("m"))],
        AggKind::Max => vec![c().max().alias(name("m"))],
        AggKind::Count => vec![c().count().alias(name("c"))],
        AggKind::Size => vec![len().alias(name("c"))],
        AggKind::Std(_) | AggKind::Var(_) => vec![
            c().count().alias(name("c")),
            float(c()).sum().alias(name("s")),
            (float(c()) * float(c())).sum().alias(name("q")),
        ],
        AggKind::NUnique => {
            let unique = c().unique();
            vec![if grouped { unique } else { unique.implode(false) }.alias(name("u"))]
        }
        // The values themselves (a list per group): an exact median needs all of them.
        AggKind::Median => {
            let values = float(c()).drop_nulls();
            vec![if grouped { values } else { values.implode(false) }.alias(name("v"))]
        }
        AggKind::First => vec![c().first().alias(name("f"))],
        AggKind::Last => vec![c().last().alias(name("f"))],
    }
}

/// Combines partial columns into partial columns.
fn combine_exprs(index: usize, agg: &Agg, grouped: bool) -> Vec<Expr> {
    let keep = |part: &str, f: fn(Expr) -> Expr| f(p(index, part)).alias(partial_name(index, part));
    match agg.kind {
        AggKind::Sum => vec![keep("s", |e| e.sum())],
        AggKind::Mean => vec![keep("s", |e| e.sum()), keep("c", |e| e.sum())],
        AggKind::Min => vec![keep("m", |e| e.min())],
        AggKind::Max => vec![keep("m", |e| e.max())],
        AggKind::Count | AggKind::Size => vec![keep("c", |e| e.sum())],
        AggKind::Std(_) | AggKind::Var(_) => {
            vec![keep("c", |e| e.sum()), keep("s", |e| e.sum()), keep("q", |e| e.sum())]
        }
        AggKind::NUnique => {
            let unique = p(index, "u").explode(EXPLODE).unique();
            vec![if grouped { unique } else { unique.implode(false) }
                .alias(partial_name(index, "u"))]
        }
        AggKind::Median => {
            let values = p(index, "v").explode(EXPLODE).drop_nulls();
            vec![if grouped { values } else { values.implode(false) }
                .alias(partial_name(index, "v"))]
        }
        AggKind::First => vec![keep("f", |e| e.first())],
        AggKind::Last => vec![keep("f", |e| e.last())],
    }
}

/// The final value of one aggregation from (combined) partial columns, in an aggregation
/// context (group-by or whole-frame select).
fn final_expr(index: usize, agg: &Agg) -> Expr {
    let n = || float(p(index, "c").sum());
    let s = || p(index, "s").sum();
    let variance = |ddof: u8| {
        let q = p(index, "q").sum();
        let n_minus = n() - lit(f64::from(ddof));
        when(n_minus.clone().gt(lit(0.0)))
            .then((q - s() * s() / n()) / n_minus)
            .otherwise(lit(Null {}).cast(DataType::Float64))
    };
    let expr = match agg.kind {
        AggKind::Sum => s(),
        AggKind::Mean => {
            when(n().gt(lit(0.0))).then(s() / n()).otherwise(lit(Null {}).cast(DataType::Float64))
        }
        AggKind::Min => p(index, "m").min(),
        AggKind::Max => p(index, "m").max(),
        AggKind::Count | AggKind::Size => p(index, "c").sum().cast(IDX_DTYPE),
        AggKind::Var(ddof) => variance(ddof),
        // Rounding error can make a tiny variance negative.
        AggKind::Std(ddof) => variance(ddof).clip_min(lit(0.0)).sqrt(),
        AggKind::NUnique => p(index, "u").explode(EXPLODE).n_unique(),
        AggKind::Median => p(index, "v").explode(EXPLODE).median(),
        AggKind::First => p(index, "f").first(),
        AggKind::Last => p(index, "f").last(),
    };
    expr.alias(agg.alias.as_str())
}

fn keys(spec: &GroupSpec) -> Vec<Expr> {
    spec.keys.iter().map(|k| col(k.as_str())).collect()
}

fn aggregate(lazy: LazyFrame, spec: &GroupSpec, exprs: Vec<Expr>) -> LazyFrame {
    if spec.keys.is_empty() {
        lazy.select(exprs)
    } else {
        lazy.group_by(keys(spec)).agg(exprs)
    }
}

fn run(lazy: LazyFrame, what: &str) -> Result<PlFrame> {
    lazy.collect().map_err(|e| Error::polars(what, e))
}

/// Reduces one partition to its partial columns.
pub fn partial(frame: &PlFrame, spec: &GroupSpec) -> Result<PlFrame> {
    run(partial_lazy(frame.clone().lazy(), spec), "aggregating a partition")
}

/// The partial aggregation as a lazy query over a partition.
pub fn partial_lazy(mut lazy: LazyFrame, spec: &GroupSpec) -> LazyFrame {
    let grouped = !spec.keys.is_empty();
    if spec.dropna && grouped {
        for key in &spec.keys {
            lazy = lazy.filter(col(key.as_str()).is_not_null());
        }
    }
    let exprs =
        spec.aggs.iter().enumerate().flat_map(|(i, a)| partial_exprs(i, a, grouped)).collect();
    aggregate(lazy, spec, exprs)
}

/// Combines partials into one partial frame.
pub fn combine(frames: Vec<PlFrame>, spec: &GroupSpec) -> Result<PlFrame> {
    let grouped = !spec.keys.is_empty();
    let schema = frames.first().map(super::frame_schema).unwrap_or_default();
    let lazy = concat(frames, &schema)?.lazy();
    let exprs =
        spec.aggs.iter().enumerate().flat_map(|(i, a)| combine_exprs(i, a, grouped)).collect();
    run(aggregate(lazy, spec, exprs), "combining partial aggregates")
}

/// Computes the final values from partials, sorted as the spec asks.
pub fn finish(frames: Vec<PlFrame>, spec: &GroupSpec) -> Result<PlFrame> {
    let schema = frames.first().map(super::frame_schema).unwrap_or_default();
    let lazy = concat(frames, &schema)?.lazy();
    let exprs = spec.aggs.iter().enumerate().map(|(i, a)| final_expr(i, a)).collect();
    let mut lazy = aggregate(lazy, spec, exprs);
    if !spec.sort.is_empty() {
        let by: Vec<&str> = spec.sort.iter().map(|(c, _)| c.as_str()).collect();
        let descending: Vec<bool> = spec.sort.iter().map(|(_, d)| *d).collect();
        lazy = lazy.sort(
            by,
            SortMultipleOptions::new()
                .with_order_descending_multi(descending)
                .with_maintain_order(true),
        );
    }
    run(lazy, "finishing an aggregation")
}

/// The schema of a group-by result, without data (aggregating an empty frame).
pub fn result_schema(input: &Schema, spec: &GroupSpec) -> Result<Schema> {
    let empty = super::empty(input);
    let partial = partial(&empty, spec)?;
    Ok(super::frame_schema(&finish(vec![partial], spec)?))
}

fn cum_value(spec: &CumSpec) -> Expr {
    match spec.kind {
        CumKind::Count => lit(1i64).alias("__rask_one"),
        _ => col(spec.column.as_str()),
    }
}

fn over_keys(expr: Expr, spec: &CumSpec) -> Result<Expr> {
    let keys: Vec<Expr> = spec.keys.iter().map(|k| col(k.as_str())).collect();
    expr.over(keys).map_err(|e| Error::polars("a cumulative group-by", e))
}

/// The cumulative value of each row within its group, counting this partition only.
pub fn cum_local(frame: &PlFrame, spec: &CumSpec) -> Result<PlFrame> {
    let value = col("__rask_value");
    let local = match spec.kind {
        CumKind::Sum => value.cum_sum(false),
        // Dask's cumcount is 0-based.
        CumKind::Count => value.cum_sum(false) - lit(1i64),
        CumKind::Min => value.cum_min(false),
        CumKind::Max => value.cum_max(false),
    };
    let lazy = frame
        .clone()
        .lazy()
        .with_columns([cum_value(spec).alias("__rask_value")])
        .with_columns([over_keys(local, spec)?.alias(spec.alias.as_str())])
        .drop(polars::prelude::cols(["__rask_value"]));
    run(lazy, "a cumulative group-by")
}

/// Each group's total (sum, count, min or max) in one partition.
pub fn cum_totals(frame: &PlFrame, spec: &CumSpec) -> Result<PlFrame> {
    let value = cum_value(spec);
    let total = match spec.kind {
        CumKind::Sum => value.sum(),
        // A literal is not broadcast in an aggregation: count the group's rows.
        CumKind::Count => len().cast(DataType::Int64),
        CumKind::Min => value.min(),
        CumKind::Max => value.max(),
    };
    let keys: Vec<Expr> = spec.keys.iter().map(|k| col(k.as_str())).collect();
    run(
        frame.clone().lazy().group_by(keys).agg([total.alias("__rask_offset")]),
        "a cumulative group-by",
    )
}

/// Merges group totals (of all earlier partitions) into one offset per group.
pub fn cum_merge(frames: Vec<PlFrame>, spec: &CumSpec) -> Result<PlFrame> {
    let schema = frames.first().map(super::frame_schema).unwrap_or_default();
    let offset = col("__rask_offset");
    let merged = match spec.kind {
        CumKind::Sum | CumKind::Count => offset.sum(),
        CumKind::Min => offset.min(),
        CumKind::Max => offset.max(),
    };
    let keys: Vec<Expr> = spec.keys.iter().map(|k| col(k.as_str())).collect();
    let lazy = concat(frames, &schema)?.lazy().group_by(keys).agg([merged.alias("__rask_offset")]);
    run(lazy, "a cumulative group-by")
}

/// Adds the offsets of earlier partitions to a partition's local cumulative values.
pub fn cum_apply(local: &PlFrame, offsets: &PlFrame, spec: &CumSpec) -> Result<PlFrame> {
    let keys: Vec<Expr> = spec.keys.iter().map(|k| col(k.as_str())).collect();
    let mut args = polars::prelude::JoinArgs::new(polars::prelude::JoinType::Left);
    // Null keys are a group too, and rows keep their order.
    args.nulls_equal = true;
    args.maintain_order = polars::prelude::MaintainOrderJoin::Left;
    let local_value = col(spec.alias.as_str());
    let offset = col("__rask_offset");
    let combined = match spec.kind {
        CumKind::Sum | CumKind::Count => local_value.clone() + offset.clone().fill_null(lit(0)),
        CumKind::Min => {
            when(offset.clone().is_not_null().and(offset.clone().lt(local_value.clone())))
                .then(offset.clone())
                .otherwise(local_value.clone())
        }
        CumKind::Max => {
            when(offset.clone().is_not_null().and(offset.clone().gt(local_value.clone())))
                .then(offset.clone())
                .otherwise(local_value.clone())
        }
    };
    let lazy = local
        .clone()
        .lazy()
        .join(offsets.clone().lazy(), keys.clone(), keys, args)
        .with_columns([combined.alias(spec.alias.as_str())])
        .drop(polars::prelude::cols(["__rask_offset"]));
    run(lazy, "a cumulative group-by")
}
