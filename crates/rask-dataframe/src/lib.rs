//! # rask-dataframe: lazy partitioned DataFrames on Polars
//!
//! A [`DataFrame`] is a lazy collection of Polars frames (its partitions) with a known schema.
//! Operations record a plan — per-partition [`plan::Step`]s written with Polars expressions
//! (`col("fare") * lit(2)`), and tree reductions for aggregates and group-bys — and nothing
//! runs until `compute()` (from `rask::ComputeExt`), `persist()`, or an operation that needs
//! data now (`head`, `to_parquet`). Consecutive per-partition steps become one task per
//! partition, run as one Polars query over the partition's source, so Polars pushes column
//! projections and filters into the CSV or Parquet reader.
//!
//! ```no_run
//! use rask_dataframe::prelude::*;
//! use rask_local::ComputeExt;
//!
//! let trips = read_csv("data/*.csv", CsvOptions::default())?;
//! let by_passengers = trips
//!     .filter(col("trip_distance").gt(lit(0)))?
//!     .group_by(["passenger_count"])
//!     .agg([agg::mean("trip_distance")])?
//!     .compute()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! * Time series on a sorted datetime index: [`DataFrame::resample`], [`DataFrame::rolling`],
//!   `shift`, `diff` and `pct_change`, exact across partition boundaries.
//! * IO: [`read_csv`] (byte-range blocks cut at line boundaries), [`read_parquet`] (per file
//!   or row group, row counts from metadata), [`DataFrame::to_parquet`] (atomic, append,
//!   overwrite); local files and object stores (S3, GCS, Azure, HTTP).
//! * The same graphs run on the local scheduler and on a cluster: every task is a function
//!   registered by name, and partitions travel as Arrow IPC.
//! * Polars is pinned to one exact version and called only from [`polars_adapter`].

pub mod arrays;
pub mod asof;
mod calendar;
pub mod columns;
pub mod datasets;
mod duration;
pub mod error;
pub mod frame;
pub mod groupby;
pub mod groups;
pub mod io;
pub mod join;
pub mod loc;
pub mod ops;
pub mod optimize;
pub mod plan;
pub mod polars_adapter;
pub mod readers;
pub mod reduction;
pub mod resample;
pub mod shuffle;
mod sketch;
pub mod sort;
pub mod tasks;
mod typecheck;
pub mod window;

pub use arrays::from_array;
pub use asof::{AsofOptions, Direction};
pub use columns::concat_columns;
pub use error::{ColumnMismatch, Error, Result};
pub use frame::{DataFrame, Divisions};
pub use groupby::{agg, Agg, AggKind, CumKind, GroupBy};
pub use join::JoinStrategy;
pub use ops::{concat, from_polars};
pub use plan::{JoinHow, Keep};
pub use polars_adapter::index::Label;
pub use polars_adapter::parquet::Compression;
pub use polars_adapter::PlFrame;
pub use readers::csv::{read_csv, CsvOptions};
pub use readers::json::{read_json, JsonOptions};
pub use readers::parquet::{read_parquet, ParquetOptions};
pub use readers::write::{WriteMode, WriteOptions};
pub use resample::{Resampler, Side};
pub use sort::{SetIndexOptions, SortOptions};
pub use tasks::partition_value;
pub use window::{Rolling, Window};

/// What DataFrame programs need: `use rask_dataframe::prelude::*;`.
pub mod prelude {
    pub use crate::groupby::agg;
    pub use crate::polars_adapter::{col, lit, when, DataType, Expr, PlFrame, TimeUnit};
    pub use crate::{
        concat, concat_columns, from_polars, read_csv, read_json, read_parquet, AsofOptions,
        CsvOptions, DataFrame, JoinHow, JoinStrategy, JsonOptions, Keep, ParquetOptions,
        SetIndexOptions, Side, SortOptions, WriteOptions,
    };
}
