//! Reading and writing: where bytes live ([`store`]), how CSV files are cut ([`blocks`]),
//! and the readers and writers of CSV and Parquet.

pub mod blocks;
pub mod csv;
pub mod csv_scan;
pub mod parquet;
pub mod store;
