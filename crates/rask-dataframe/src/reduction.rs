//! What a reduction computes, as plain serializable data: the aggregation kinds, one
//! aggregation of a column, and the specs the tasks of a tree reduction or a cumulative
//! group-by carry. The plan's steps, the Polars adapter (which turns them into queries) and the
//! type checks read these; `groupby` builds the graphs.

use serde::{Deserialize, Serialize};

/// What an aggregation computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggKind {
    /// Sum of the values.
    Sum,
    /// Mean of the non-null values.
    Mean,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Number of non-null values.
    Count,
    /// Number of rows (nulls included).
    Size,
    /// Standard deviation with the given delta degrees of freedom.
    Std(u8),
    /// Variance with the given delta degrees of freedom.
    Var(u8),
    /// The exact median of the non-null values (as a float).
    Median,
    /// Number of distinct values (null counts as one).
    NUnique,
    /// First value in partition order.
    First,
    /// Last value in partition order.
    Last,
}

/// One aggregation of one column, named `alias` in the result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agg {
    /// What to compute.
    pub kind: AggKind,
    /// The input column.
    pub column: String,
    /// The output column (the input's name unless renamed).
    pub alias: String,
}

impl Agg {
    pub(crate) fn new(kind: AggKind, column: &str) -> Self {
        Agg { kind, column: column.to_string(), alias: column.to_string() }
    }

    /// Names the output column.
    pub fn alias(mut self, name: &str) -> Self {
        self.alias = name.to_string();
        self
    }
}

/// Everything the tasks of one tree reduction need to know.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupSpec {
    /// Group keys (none: reduce the whole frame to one row).
    pub keys: Vec<String>,
    /// The aggregations.
    pub aggs: Vec<Agg>,
    /// Drop rows whose keys are null (otherwise null is a group of its own).
    pub dropna: bool,
    /// How to sort the result: columns with `descending`.
    pub sort: Vec<(String, bool)>,
}
rask_core::register_type!(GroupSpec);

/// A cumulative operation within groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CumKind {
    /// Running sum.
    Sum,
    /// Running row count, from 0 (Dask's `cumcount`).
    Count,
    /// Running minimum.
    Min,
    /// Running maximum.
    Max,
}

/// Everything the tasks of a cumulative group-by need to know.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CumSpec {
    /// Group keys.
    pub keys: Vec<String>,
    /// The input column (unused for counts).
    pub column: String,
    /// What accumulates.
    pub kind: CumKind,
    /// The output column.
    pub alias: String,
}
rask_core::register_type!(CumSpec);
