//! The readers and writers users call: [`read_csv`](csv::read_csv) and
//! [`read_parquet`](parquet::read_parquet) make DataFrames, `DataFrame::to_parquet` and
//! `DataFrame::to_csv` ([`write`]) write them.
//! They plan which bytes each partition reads; the bytes themselves — stores, CSV blocks cut at
//! line boundaries, the CSV scanner — are [`crate::io`]'s, which knows nothing of DataFrames.

pub mod csv;
pub mod json;
pub mod parquet;
pub mod write;
