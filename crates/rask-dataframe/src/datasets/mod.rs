//! Example datasets: `timeseries` (like `dask.datasets.timeseries`) and the synthetic NYC
//! yellow-cab files of the taxi example.

pub mod taxi;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::DataFrame;
use crate::plan::Source;
use crate::polars_adapter::{self as pl, PlFrame, Schema};

pub use taxi::{taxi_month_csv, write_taxi_csvs, PAYMENT_NAMES, TAXI_HEADER};

/// What `timeseries` generates: one row every `freq_seconds` from `start` to `end` (seconds
/// since the Unix epoch), one partition per `partition_seconds`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeseriesSpec {
    /// First timestamp.
    pub start: i64,
    /// End (exclusive).
    pub end: i64,
    /// Seconds between rows.
    pub freq_seconds: i64,
    /// Seconds per partition.
    pub partition_seconds: i64,
    /// Random seed.
    pub seed: u64,
}

impl TimeseriesSpec {
    /// How many partitions.
    pub fn npartitions(&self) -> u32 {
        ((self.end - self.start).max(0) as u64).div_ceil(self.partition_seconds as u64) as u32
    }
}

const NAMES: [&str; 26] = [
    "Alice", "Bob", "Charlie", "Dan", "Edith", "Frank", "George", "Hannah", "Ingrid", "Jerry",
    "Kevin", "Laura", "Michael", "Norbert", "Oliver", "Patricia", "Quinn", "Ray", "Sarah", "Tim",
    "Ursula", "Victor", "Wendy", "Xavier", "Yvonne", "Zelda",
];

/// A random time series like `dask.datasets.timeseries()`: columns `timestamp`, `id` (integers
/// around 1000), `name` (one of 26 first names), `x` and `y` (uniform in -1..1). The default
/// Dask call is `timeseries(2000-01-01, 2000-01-31, 1 s, 1 day)`: use
/// `timeseries(946_684_800, 949_276_800, 1, 86_400, 0)`.
pub fn timeseries(
    start: i64,
    end: i64,
    freq_seconds: i64,
    partition_seconds: i64,
    seed: u64,
) -> Result<DataFrame> {
    if freq_seconds <= 0 || partition_seconds <= 0 || end <= start {
        return Err(Error::Invalid(format!(
            "timeseries needs start < end and positive frequencies, got start={start} end={end} freq={freq_seconds} partition={partition_seconds}"
        )));
    }
    let spec = TimeseriesSpec { start, end, freq_seconds, partition_seconds, seed };
    let rows = (0..spec.npartitions()).map(|i| partition_rows(&spec, i) as u64).collect();
    DataFrame::from_source(Source::Timeseries(spec), Some(rows))
}

fn partition_bounds(spec: &TimeseriesSpec, part: u32) -> (i64, i64) {
    let lo = spec.start + i64::from(part) * spec.partition_seconds;
    let hi = (lo + spec.partition_seconds).min(spec.end);
    (lo, hi)
}

fn partition_rows(spec: &TimeseriesSpec, part: u32) -> usize {
    let (lo, hi) = partition_bounds(spec, part);
    ((hi - lo) as u64).div_ceil(spec.freq_seconds as u64) as usize
}

/// The schema of `timeseries` frames.
pub fn timeseries_schema(_spec: &TimeseriesSpec) -> Schema {
    pl::timeseries_schema()
}

/// Generates partition `part`.
pub fn timeseries_partition(spec: &TimeseriesSpec, part: u32) -> Result<PlFrame> {
    let (lo, _) = partition_bounds(spec, part);
    let rows = partition_rows(spec, part);
    let mut state = spec.seed ^ (u64::from(part) + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut timestamps = Vec::with_capacity(rows);
    let mut ids = Vec::with_capacity(rows);
    let mut names = Vec::with_capacity(rows);
    let mut xs = Vec::with_capacity(rows);
    let mut ys = Vec::with_capacity(rows);
    let unit = |v: u64| ((v >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0;
    for r in 0..rows {
        timestamps.push((lo + r as i64 * spec.freq_seconds) * 1_000_000);
        // Roughly Poisson(1000): a sum of uniforms is close enough for examples.
        ids.push(1000 + (next() % 61) as i64 - 30);
        names.push(NAMES[(next() % NAMES.len() as u64) as usize]);
        xs.push(unit(next()));
        ys.push(unit(next()));
    }
    pl::timeseries_frame(timestamps, ids, names, xs, ys)
}
