//! Labels of a sorted index as Polars conditions: what `loc` filters a partition with, and the
//! index values (in the `f64` order of [`super::shuffle::index_values`]) it prunes partitions
//! with.

use polars::prelude::{col, lit, DataType, Expr, TimeUnit};

use super::shuffle::text_key;
use crate::error::{Error, Result};

/// A label of an index, as `loc` takes it.
#[derive(Clone, Debug, PartialEq)]
pub enum Label {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text: a text index's value, or a (partial) date on a date or datetime index.
    Text(String),
}

impl From<i64> for Label {
    fn from(v: i64) -> Self {
        Label::Int(v)
    }
}
impl From<i32> for Label {
    fn from(v: i32) -> Self {
        Label::Int(i64::from(v))
    }
}
impl From<f64> for Label {
    fn from(v: f64) -> Self {
        Label::Float(v)
    }
}
impl From<&str> for Label {
    fn from(v: &str) -> Self {
        Label::Text(v.to_string())
    }
}
impl From<String> for Label {
    fn from(v: String) -> Self {
        Label::Text(v)
    }
}

/// The rows a label stands for: index values from `low` (inclusive) to `high` (inclusive, or
/// exclusive for a period such as a day), as literals of the index's type, and the same
/// bounds as index keys for pruning partitions (never narrower than the literals).
#[derive(Clone, Debug)]
pub struct Span {
    low: Expr,
    high: Expr,
    high_inclusive: bool,
    /// The smallest and largest index key the span can hold.
    pub keys: (f64, f64),
}

const NANOS: [(TimeUnit, i64); 3] = [
    (TimeUnit::Nanoseconds, 1),
    (TimeUnit::Microseconds, 1_000),
    (TimeUnit::Milliseconds, 1_000_000),
];

/// The span of `label` on an index of type `dtype` (`column` names it in errors).
pub fn span(column: &str, dtype: &DataType, label: &Label) -> Result<Span> {
    let wrong = |expects: &str| {
        Error::Invalid(format!(
            "loc on the index `{column}` of type {dtype} with the label {label:?}: this index takes {expects}"
        ))
    };
    let exact = |value: Expr, key: f64| Span {
        low: value.clone(),
        high: value,
        high_inclusive: true,
        keys: (key, key),
    };
    match (dtype, label) {
        (DataType::Datetime(unit, zone), Label::Text(text)) => {
            if zone.is_some() {
                return Err(Error::Invalid(format!(
                    "loc with the date label {text:?} on `{column}`, which has the time zone {}: date labels are read as naive times; convert the column with `dt().replace_time_zone(None)` first, or filter with a comparison",
                    zone.as_ref().map_or("", |z| z.as_str())
                )));
            }
            let (start, end) = crate::calendar::period(text).ok_or_else(|| wrong("dates such as \"2015-05-05\", \"2015-05\" or \"2015-05-05 13:30\""))?;
            let per = NANOS.iter().find(|(u, _)| u == unit).map_or(1, |(_, n)| *n);
            let (start, end) = (start.div_euclid(per), end.div_euclid(per));
            let as_time = |v: i64| lit(v).cast(dtype.clone());
            Ok(Span { low: as_time(start), high: as_time(end), high_inclusive: false, keys: (start as f64, end as f64) })
        }
        (DataType::Date, Label::Text(text)) => {
            let (start, end) = crate::calendar::period(text).ok_or_else(|| wrong("dates such as \"2015-05-05\" or \"2015-05\""))?;
            const DAY: i64 = 86_400_000_000_000;
            if start % DAY != 0 || end % DAY != 0 {
                return Err(wrong("whole days (\"2015-05-05\"), months or years"));
            }
            let (start, end) = (start / DAY, end / DAY);
            let as_date = |v: i64| lit(v as i32).cast(DataType::Date);
            Ok(Span { low: as_date(start), high: as_date(end), high_inclusive: false, keys: (start as f64, end as f64) })
        }
        (DataType::String, Label::Text(text)) => Ok(exact(lit(text.clone()), text_key(text))),
        (d, Label::Int(v)) if d.is_primitive_numeric() => Ok(exact(lit(*v), *v as f64)),
        (d, Label::Float(v)) if d.is_primitive_numeric() => Ok(exact(lit(*v), *v)),
        (DataType::Datetime(..) | DataType::Date, _) => Err(wrong("date strings such as \"2015-05-05\"")),
        (DataType::String, _) => Err(wrong("text labels")),
        (d, _) if d.is_primitive_numeric() => Err(wrong("numbers")),
        _ => Err(Error::Invalid(format!("loc on the index `{column}` of type {dtype}: labels of this type are not supported; filter with a comparison instead"))),
    }
}

/// The condition of the rows from `from`'s span through `to`'s (either open).
pub fn between(column: &str, from: Option<&Span>, to: Option<&Span>) -> Expr {
    let mut condition = lit(true);
    if let Some(from) = from {
        condition = condition.and(col(column).gt_eq(from.low.clone()));
    }
    if let Some(to) = to {
        let high = if to.high_inclusive {
            col(column).lt_eq(to.high.clone())
        } else {
            col(column).lt(to.high.clone())
        };
        condition = condition.and(high);
    }
    condition
}
