//! Which aggregations a column's type allows, checked when the plan is built.
//!
//! Reductions compute on partial columns (a mean is a sum and a count of floats), so a text
//! column given to `mean` would be cast to floats — every value that is not a number silently
//! becoming null — while its count counts every value: a plausible wrong number. Polars and
//! pandas refuse such aggregations; so does rask, before anything runs, naming the column, its
//! type, and the fix that fits what the CSV sample showed of it (`null_values` for a marker of
//! missing values, `dtypes` for numbers read as text).

use crate::error::{Error, Result};
use crate::plan::{looks_like_null_marker, TextSample};
use crate::polars_adapter::{value_kind, DataType, Schema, ValueKind};
use crate::reduction::{AggKind, GroupSpec};

/// What an operation needs of its column's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Needs {
    /// Numbers or booleans (sums, means, variances, medians, correlations).
    Numbers,
    /// Numbers only (quantiles).
    NumbersOnly,
    /// Values that have an order (min, max).
    Ordered,
    /// Anything (counts, distinct values, first, last).
    Anything,
}

impl Needs {
    fn of(kind: AggKind) -> Needs {
        match kind {
            AggKind::Sum | AggKind::Mean | AggKind::Std(_) | AggKind::Var(_) | AggKind::Median => {
                Needs::Numbers
            }
            AggKind::Min | AggKind::Max => Needs::Ordered,
            AggKind::Count | AggKind::Size | AggKind::NUnique | AggKind::First | AggKind::Last => {
                Needs::Anything
            }
        }
    }

    fn allows(self, kind: ValueKind) -> bool {
        match self {
            Needs::Numbers => matches!(kind, ValueKind::Number | ValueKind::Boolean),
            Needs::NumbersOnly => kind == ValueKind::Number,
            Needs::Ordered => matches!(
                kind,
                ValueKind::Number
                    | ValueKind::Boolean
                    | ValueKind::Text
                    | ValueKind::Temporal
                    | ValueKind::Duration
            ),
            Needs::Anything => true,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Needs::Numbers => "numbers (or booleans)",
            Needs::NumbersOnly => "numbers",
            Needs::Ordered => "numbers, text, dates or durations",
            Needs::Anything => "any values",
        }
    }
}

/// The name of an aggregation, as the user wrote it.
pub(crate) fn agg_name(kind: AggKind) -> &'static str {
    match kind {
        AggKind::Sum => "sum",
        AggKind::Mean => "mean",
        AggKind::Min => "min",
        AggKind::Max => "max",
        AggKind::Count => "count",
        AggKind::Size => "size",
        AggKind::Std(_) => "std",
        AggKind::Var(_) => "var",
        AggKind::Median => "median",
        AggKind::NUnique => "n_unique",
        AggKind::First => "first",
        AggKind::Last => "last",
    }
}

/// Checks a reduction's aggregations against the input schema, and that no two outputs share
/// a name (Polars would fail at `compute`; the user wants to hear it now).
pub(crate) fn check_group_spec(
    schema: &Schema,
    spec: &GroupSpec,
    samples: Option<&[TextSample]>,
) -> Result<()> {
    for agg in &spec.aggs {
        if agg.kind == AggKind::Size {
            continue;
        }
        if let Some(dtype) = schema.get(agg.column.as_str()) {
            check_column(agg_name(agg.kind), &agg.column, dtype, Needs::of(agg.kind), samples)?;
        }
    }
    let mut seen: Vec<(&str, String)> =
        spec.keys.iter().map(|k| (k.as_str(), format!("the group key `{k}`"))).collect();
    for agg in &spec.aggs {
        let what = if agg.kind == AggKind::Size {
            "size()".to_string()
        } else {
            format!("{}(\"{}\")", agg_name(agg.kind), agg.column)
        };
        if let Some((_, earlier)) = seen.iter().find(|(name, _)| *name == agg.alias) {
            return Err(Error::Invalid(format!(
                "two outputs of the aggregation are named `{}`: {earlier} and agg::{what}; name them apart with .alias, e.g. agg::{what}.alias(\"{}_{}\")",
                agg.alias,
                agg.alias,
                agg_name(agg.kind)
            )));
        }
        seen.push((agg.alias.as_str(), format!("agg::{what}")));
    }
    Ok(())
}

/// Checks that `column` of type `dtype` can be given to `operation`, which needs `needs`.
pub(crate) fn check_column(
    operation: &str,
    column: &str,
    dtype: &DataType,
    needs: Needs,
    samples: Option<&[TextSample]>,
) -> Result<()> {
    let kind = value_kind(dtype);
    if needs.allows(kind) {
        return Ok(());
    }
    let sample = samples.and_then(|s| s.iter().find(|s| s.column == column));
    Err(Error::AggregationType {
        operation: operation.to_string(),
        column: column.to_string(),
        // As a Rust user writes it (`String`, `Date`), not as Polars prints it (`str`).
        dtype: format!("{dtype:?}"),
        needs: needs.describe(),
        fix: fix_for(column, kind, needs, sample),
    })
}

/// The fix that fits: what the sample showed decides between `null_values` and `dtypes`.
fn fix_for(column: &str, kind: ValueKind, needs: Needs, sample: Option<&TextSample>) -> String {
    let typed = format!("CsvOptions::default().dtypes([(\"{column}\", DataType::Float64)])");
    let cast = format!("cast it first: .cast([(\"{column}\", DataType::Float64)])");
    match (kind, sample) {
        (ValueKind::Text, Some(sample)) => {
            let markers: Vec<&String> =
                sample.others.iter().filter(|v| looks_like_null_marker(v)).collect();
            let quoted = |values: &[&String]| {
                values.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ")
            };
            if sample.numbers == 0 && sample.others.is_empty() {
                format!("the CSV sample held no values of it (all missing), so its type could not be inferred: set it with {typed}")
            } else if !markers.is_empty() && markers.len() == sample.others.len() {
                let list = quoted(&markers);
                format!("in the CSV sample it holds numbers and {list}, which mark missing values: read them as null with CsvOptions::default().null_values([{list}])")
            } else if sample.numbers > 0 {
                let others: Vec<&String> = sample.others.iter().collect();
                format!("in the CSV sample it holds numbers and text such as {}: if it is a number column, set its type with {typed} (a value that does not parse then fails the read, naming it) or read such values as null with .ignore_errors(true)", quoted(&others))
            } else {
                let others: Vec<&String> = sample.others.iter().take(3).collect();
                format!("it holds text (for example {}); count, n_unique, min, max, first and last take text", quoted(&others))
            }
        }
        (ValueKind::Text, None) => {
            format!("if it holds numbers as text, {cast}; count, n_unique, min, max, first and last take text")
        }
        (ValueKind::Temporal | ValueKind::Duration, _) if needs != Needs::Ordered => format!(
            "take min, max, first or last of it, or cast it to a number for its physical value: .cast([(\"{column}\", DataType::Int64)])"
        ),
        (ValueKind::Categorical, _) => {
            format!("cast it to text first: .cast([(\"{column}\", DataType::String)])")
        }
        _ => cast,
    }
}
