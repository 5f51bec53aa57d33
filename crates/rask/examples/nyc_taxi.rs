//! The NYC-taxi walkthrough of Dask's "Distributed Pandas on a Cluster" (2017), on rask.
//!
//! A year of yellow-cab trips as twelve monthly CSV files (synthetic, with the 2015 schema;
//! generated on the first run) is read in parallel and analysed: row count, mean distance by
//! passenger count, tip fraction by day of week and by hour, a join with the payment-type
//! names, the correlation between "no tip" and "paid cash", passenger-count value counts, then
//! a conversion to Parquet and a column sum from the Parquet copy; then the second half: the
//! index set to the pickup time (a shuffle) and persisted, the first and last rides, one day
//! by `loc`, the mean passengers per day (`resample`) and a rolling mean over ten rides. Each
//! result is printed with its time.
//!
//! ```text
//! cargo run --release -p rask --example nyc_taxi -- [--data DIR] [--rows-per-file N]
//!     [--cluster WORKERS] [--dashboard 127.0.0.1:8787] [--hold SECONDS]
//! ```
//!
//! `--cluster N` runs everything on a local cluster of N worker processes (this program
//! started as `nyc_taxi worker ...`), the way `Client(LocalCluster())` does in Dask.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rask::dataframe::prelude::*;
use rask::dataframe::{JoinHow, WriteOptions};
use rask::datasets::{write_taxi_csvs, PAYMENT_NAMES};
use rask::{ComputeExt, LocalCluster};

type Error = Box<dyn std::error::Error>;

fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A frame with an index, shown by its partition count and index.
struct IndexedFrame(DataFrame);

impl std::fmt::Display for IndexedFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let frame = &self.0;
        write!(f, "{} partitions, index `{}`", frame.npartitions(), frame.index().unwrap_or("none"))
    }
}

/// Times one step and prints its result.
fn step<T: std::fmt::Display>(
    label: &str,
    run: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    let started = Instant::now();
    let result = run()?;
    println!("\n== {label} ({:.2?})\n{result}", started.elapsed());
    Ok(result)
}

fn main() -> Result<(), Error> {
    // Worker processes of `--cluster` run this same binary.
    if let Some(code) = rask::cli::cluster_main() {
        std::process::exit(code);
    }
    let args: Vec<String> = std::env::args().collect();
    let data: PathBuf = flag(&args, "--data", PathBuf::from("target/nyc-taxi"));
    let rows_per_file: usize = flag(&args, "--rows-per-file", 100_000);
    let workers: usize = flag(&args, "--cluster", 0);

    let started = Instant::now();
    let csv_dir = data.join(format!("csv-{rows_per_file}"));
    write_taxi_csvs(&csv_dir, rows_per_file)?;
    println!(
        "12 monthly CSV files of {rows_per_file} trips in {} (ready in {:.2?})",
        csv_dir.display(),
        started.elapsed()
    );

    let _cluster = if workers > 0 {
        let dashboard: Option<String> =
            args.iter().position(|a| a == "--dashboard").and_then(|i| args.get(i + 1)).cloned();
        let program = std::env::current_exe()?;
        let scheduler_args: Vec<&str> = match &dashboard {
            Some(address) => vec!["--dashboard-address", address.as_str()],
            None => vec!["--dashboard-address", "none"],
        };
        let cluster = LocalCluster::processes_with(&program, workers, 1, &scheduler_args)?;
        if let Some(address) = &dashboard {
            println!("dashboard at http://{address}/");
        }
        let client = cluster.client()?;
        rask::set_default_scheduler(Some(Arc::new(client)));
        println!("running on a local cluster of {workers} worker processes");
        Some(cluster)
    } else {
        None
    };

    let pattern = format!("{}/*.csv", csv_dir.display());
    let df = read_csv(
        &pattern,
        CsvOptions::default().parse_dates(["tpep_pickup_datetime", "tpep_dropoff_datetime"]),
    )?;
    println!("\n{df}");

    step("number of rows", || Ok(df.len()?.compute()?))?;

    step("mean trip distance by passenger count", || {
        Ok(df.group_by(["passenger_count"]).agg([agg::mean("trip_distance")])?.compute()?)
    })?;

    // Tip fraction, for rides where both tip and fare are positive.
    let tipped = df
        .filter(col("tip_amount").gt(lit(0)).and(col("fare_amount").gt(lit(0))))?
        .with_columns([
            (col("tip_amount") / col("fare_amount")).alias("tip_fraction"),
            col("tpep_pickup_datetime").dt().weekday().alias("day_of_week"),
            col("tpep_pickup_datetime").dt().hour().alias("hour"),
        ])?;
    step("mean tip fraction by day of week (1 = Monday)", || {
        Ok(tipped.group_by(["day_of_week"]).agg([agg::mean("tip_fraction")])?.compute()?)
    })?;
    step("mean tip fraction by hour", || {
        Ok(tipped.group_by(["hour"]).agg([agg::mean("tip_fraction")])?.compute()?)
    })?;

    // Join with the payment-type names (a small in-memory Polars frame, broadcast).
    let payment_names = rask::dataframe::polars_adapter::payment_names_frame(&PAYMENT_NAMES)?;
    let named =
        df.join_frame(&payment_names, &["payment_type"], &["payment_type"], JoinHow::Left)?;
    step("mean tip by payment type", || {
        Ok(named.group_by(["payment_name"]).agg([agg::mean("tip_amount")])?.compute()?)
    })?;

    step("correlation of \"no tip\" and \"paid cash\"", || {
        let flags = named.with_columns([
            col("tip_amount").eq(lit(0)).cast(DataType::Float64).alias("no_tip"),
            col("payment_name").eq(lit("Cash")).cast(DataType::Float64).alias("paid_cash"),
        ])?;
        Ok(flags.corr(&["no_tip", "paid_cash"])?.compute()?)
    })?;

    step("value counts of passenger count", || {
        Ok(df.value_counts("passenger_count")?.compute()?)
    })?;

    let parquet_dir = data.join(format!("parquet-{rows_per_file}"));
    let parquet_path = parquet_dir.display().to_string();
    step("convert to Parquet (rows written)", || {
        Ok(df.to_parquet(&parquet_path, WriteOptions::default().overwrite(true))?)
    })?;
    step("sum of passenger_count from Parquet", || {
        let trips = read_parquet(&parquet_path, Default::default())?;
        Ok(trips.agg([agg::sum("passenger_count")])?.compute()?)
    })?;

    // The walkthrough's second half: the index set to the pickup time — a full shuffle — and
    // kept in memory; then reads that need only the partitions the index points to.
    let by_time = step("set the index to the pickup time and persist", || {
        let by_time = df.set_index("tpep_pickup_datetime")?.persist()?;
        Ok(IndexedFrame(by_time))
    })?
    .0;
    step("the first rides of the year", || Ok(by_time.head(5)?))?;
    step("the last rides of the year", || Ok(by_time.tail(5)?))?;
    step("rides on 2015-05-05 (loc, one day)", || {
        Ok(by_time.loc("2015-05-05")?.len()?.compute()?)
    })?;
    let passengers = by_time.select([col("tpep_pickup_datetime"), col("passenger_count")])?;
    step("mean passengers per day (resample, first days)", || {
        Ok(passengers.resample("1d").mean()?.compute()?.head(Some(7)))
    })?;
    step("rolling mean of passengers over 10 rides (first rows)", || {
        Ok(passengers.rolling(10).mean()?.head(12)?)
    })?;

    println!("\nall steps in {:.2?}", started.elapsed());
    let hold: u64 = flag(&args, "--hold", 0);
    if hold > 0 && workers > 0 {
        println!("keeping the cluster (and its dashboard) up for {hold} s");
        std::thread::sleep(Duration::from_secs(hold));
    }
    rask::set_default_scheduler(None);
    Ok(())
}
