//! Bytes: where they live ([`store`]: local files and object stores), how CSV files are cut
//! into blocks ([`blocks`]) and scanned without Polars ([`csv_scan`]). Nothing here knows
//! DataFrames; the user-facing readers built on this are in [`crate::readers`].

pub mod blocks;
pub mod csv_scan;
pub mod store;
