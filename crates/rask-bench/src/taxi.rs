//! The NYC-taxi benchmark: the steps of the `nyc_taxi` example on rask's local scheduler, on a
//! local cluster of worker processes, and on plain single-process Polars, in one invocation.
//!
//! ```text
//! rask-bench taxi --data DIR --rows-per-file N [--workers W] [--engines rask,rask-cluster,polars] --json
//! ```
//!
//! Each step prints `{"bench":"taxi","engine":E,"scenario":STEP,"seconds":S,"result":...}`;
//! `result` is the step's answer, so the engines can be checked against each other.
//!
//! The second half of the walkthrough follows: `set_index` (the index set to the pickup time,
//! persisted; Polars: the frame sorted by it), `loc_day` (the rows of 2015-05-05),
//! `head_sorted` (the first five rides), `resample_day_mean` (mean passengers per day),
//! `rolling_10_mean` (the sum of a rolling mean of passengers over 10 rides), `join_large` (the trips joined on (VendorID, day,
//! hour) with a frame of one row per such triple made from them, as each engine joins by
//! default) and, for rask, `join_large_shuffle` (the same with both sides shuffled).
//!
//! Two more steps take `to_parquet` apart: the rask engines' `csv_read_all_columns` parses
//! every column (what `to_parquet` reads before it writes), and the `polars` engine's
//! `parquet_write_only` is Polars' Parquet writer alone writing the twelve monthly frames,
//! already parsed and in memory, one file each, on all cores: the floor of any `to_parquet`
//! that writes through Polars (as rask does).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use polars::prelude::*;
use rask::dataframe::{
    agg, read_csv, read_parquet, CsvOptions, JoinHow, JoinStrategy, WriteOptions,
};
use rask::datasets::{write_taxi_csvs, PAYMENT_NAMES};
use rask::ComputeExt;
use serde_json::{json, Value as Json};

/// Arguments of `rask-bench taxi`.
#[derive(Args)]
pub struct TaxiArgs {
    /// Where the monthly CSV files are (made when missing) and the Parquet copies go.
    #[arg(long, default_value = "target/nyc-taxi")]
    data: PathBuf,
    /// Trips per monthly file.
    #[arg(long, default_value_t = 400_000)]
    rows_per_file: usize,
    /// Worker processes of the `rask-cluster` engine (one thread each).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Engines to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "polars,rask,rask-cluster")]
    engines: Vec<String>,
    /// Print JSON lines (the default output too; kept for the scripts' symmetry).
    #[arg(long)]
    json: bool,
    /// Only the CSV group-by step, reporting this process's peak memory (for the memory
    /// benchmark, which runs it inside a memory-limited cgroup).
    #[arg(long)]
    memory_probe: bool,
    /// CSV block size in MiB.
    #[arg(long, default_value_t = 64)]
    blocksize_mib: u64,
    /// Runs of each step; the median time is reported (this machine is shared and noisy).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
}

/// This process's peak resident memory in MiB (VmHWM).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The group-by of the CSV files with a given block size, and the peak memory it took.
fn memory_probe(engine: &str, csv_glob: &str, blocksize_mib: u64) -> Result<()> {
    let (s, r) = timed(|| {
        if engine == "polars" {
            let scan =
                LazyCsvReader::new(PlRefPath::from(csv_glob)).with_has_header(true).finish()?;
            return Ok(scan
                .group_by([col("passenger_count")])
                .agg([col("trip_distance").mean()])
                .collect()?);
        }
        let df = read_csv(csv_glob, CsvOptions::default().blocksize(Some(blocksize_mib << 20)))?;
        Ok(df.group_by(["passenger_count"]).agg([agg::mean("trip_distance")])?.compute()?)
    })?;
    let data_mib: u64 = glob_size(csv_glob) >> 20;
    println!(
        "{}",
        json!({"bench": "taxi", "engine": engine, "scenario": "groupby_peak_memory", "seconds": s,
               "peak_rss_mib": peak_rss_mib(), "csv_mib": data_mib, "blocksize_mib": blocksize_mib,
               "result": to_json(&r, "passenger_count", "trip_distance")})
    );
    Ok(())
}

/// The bytes of the CSV files `pattern` (`DIR/*.csv`) names.
fn glob_size(pattern: &str) -> u64 {
    csv_files(pattern)
        .map(|files| files.iter().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// Two columns of a small result as a JSON object `{key: value}`.
fn to_json(frame: &DataFrame, key: &str, value: &str) -> Json {
    let keys = frame.column(key).unwrap().cast(&DataType::String).unwrap();
    let values = frame.column(value).unwrap().cast(&DataType::Float64).unwrap();
    let mut map = serde_json::Map::new();
    for (k, v) in keys.str().unwrap().iter().zip(values.f64().unwrap().iter()) {
        let v = v.map(|v| (v * 1e6).round() / 1e6);
        map.insert(k.unwrap_or("null").to_string(), json!(v));
    }
    Json::Object(map)
}

fn scalar(frame: &DataFrame, column: &str) -> Json {
    json!(frame.column(column).unwrap().get(0).unwrap().extract::<f64>())
}

fn emit(engine: &str, scenario: &str, seconds: f64, result: &Json) {
    println!(
        "{}",
        json!({"bench": "taxi", "engine": engine, "scenario": scenario, "seconds": seconds,
               "runs": crate::timing::last_runs(), "result": result})
    );
}

/// Runs a step `--repeat` times (more if it is short); its median time and its last answer.
fn timed<T>(run: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
    crate::timing::timed(run)
}

/// The rows of the tip step: a tip and a fare above zero.
fn tipped_rows() -> Expr {
    col("tip_amount").gt(lit(0)).and(col("fare_amount").gt(lit(0)))
}

/// The columns of the tip step: the tip fraction, the day of week and the hour.
fn tip_columns() -> [Expr; 3] {
    [
        (col("tip_amount") / col("fare_amount")).alias("tip_fraction"),
        col("tpep_pickup_datetime").dt().weekday().alias("day_of_week"),
        col("tpep_pickup_datetime").dt().hour().alias("hour"),
    ]
}

/// Prints the tip step's line.
fn emit_tips(engine: &str, seconds: f64, dow: &DataFrame, hour: &DataFrame) {
    let result = json!({"dow": to_json(dow, "day_of_week", "tip_fraction"), "hour": to_json(hour, "hour", "tip_fraction")});
    emit(engine, "tip_fraction_by_dow_hour", seconds, &result);
}

fn payment_names() -> DataFrame {
    df!(
        "payment_type" => PAYMENT_NAMES.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        "payment_name" => PAYMENT_NAMES.iter().map(|(_, n)| *n).collect::<Vec<_>>()
    )
    .unwrap()
}

fn run_rask(engine: &str, csv_glob: &str, parquet_dir: &Path) -> Result<()> {
    let df = read_csv(
        csv_glob,
        CsvOptions::default().parse_dates(["tpep_pickup_datetime", "tpep_dropoff_datetime"]),
    )?;
    let (s, n) = timed(|| Ok(df.len()?.compute()?))?;
    emit(engine, "len", s, &json!(n));
    let (s, r) = timed(|| {
        Ok(df.group_by(["passenger_count"]).agg([agg::mean("trip_distance")])?.compute()?)
    })?;
    emit(engine, "groupby_passenger_mean", s, &to_json(&r, "passenger_count", "trip_distance"));
    let (s, (dow, hour)) = timed(|| {
        let tipped = df.filter(tipped_rows())?.with_columns(tip_columns())?;
        let by_dow = tipped.group_by(["day_of_week"]).agg([agg::mean("tip_fraction")])?;
        let by_hour = tipped.group_by(["hour"]).agg([agg::mean("tip_fraction")])?;
        Ok((&by_dow, &by_hour).compute()?)
    })?;
    emit_tips(engine, s, &dow, &hour);
    let (s, r) = timed(|| {
        let named =
            df.join_frame(&payment_names(), &["payment_type"], &["payment_type"], JoinHow::Left)?;
        Ok(named.group_by(["payment_name"]).agg([agg::mean("tip_amount")])?.compute()?)
    })?;
    emit(engine, "merge_groupby", s, &to_json(&r, "payment_name", "tip_amount"));
    let (s, r) = timed(|| Ok(df.value_counts("passenger_count")?.compute()?))?;
    emit(engine, "value_counts", s, &to_json(&r, "passenger_count", "count"));
    let target = parquet_dir.join(engine);
    let (s, rows) = timed(|| {
        Ok(df.to_parquet(target.to_str().unwrap(), WriteOptions::default().overwrite(true))?)
    })?;
    emit(engine, "to_parquet", s, &json!(rows));
    let (s, r) = timed(|| {
        let trips = read_parquet(target.to_str().unwrap(), Default::default())?;
        Ok(trips.agg([agg::sum("passenger_count")])?.compute()?)
    })?;
    emit(engine, "parquet_column_sum", s, &scalar(&r, "passenger_count"));
    // What `to_parquet` reads before it writes: every column parsed (the non-null count of each).
    let (s, r) = timed(|| Ok(df.count()?.compute()?))?;
    emit(engine, "csv_read_all_columns", s, &scalar(&r, "total_amount"));
    run_rask_shuffles(engine, &df)
}

/// The pickup day and hour of every trip: the keys of the large join.
fn join_keys() -> [Expr; 2] {
    [
        col("tpep_pickup_datetime").dt().date().alias("day"),
        col("tpep_pickup_datetime").dt().hour().alias("hour"),
    ]
}

const JOIN_ON: [&str; 3] = ["VendorID", "day", "hour"];

/// The walkthrough's second half: the index set to the pickup time (a full shuffle), one day
/// by `loc`, the first rides, and joins of two large frames.
fn run_rask_shuffles(engine: &str, df: &rask::dataframe::DataFrame) -> Result<()> {
    let (s, (indexed, rows)) = timed(|| {
        let indexed = df.set_index("tpep_pickup_datetime")?.persist()?;
        let rows = indexed.len()?.compute()?;
        Ok((indexed, rows))
    })?;
    emit(engine, "set_index", s, &json!(rows));
    let (s, day) = timed(|| Ok(indexed.loc("2015-05-05")?.compute()?))?;
    emit(engine, "loc_day", s, &json!(day.height()));
    let (s, head) = timed(|| Ok(indexed.head(5)?))?;
    emit(engine, "head_sorted", s, &first_pickups(&head));
    let passengers = indexed.select([col("tpep_pickup_datetime"), col("passenger_count")])?;
    let (s, r) = timed(|| Ok(passengers.resample("1d").mean()?.compute()?))?;
    emit(engine, "resample_day_mean", s, &day_map(&r));
    let (s, r) = timed(|| {
        Ok(passengers.rolling(10).mean()?.agg([agg::sum("passenger_count")])?.compute()?)
    })?;
    emit(engine, "rolling_10_mean", s, &scalar(&r, "passenger_count"));
    let keyed = df.with_columns(join_keys())?;
    let (s, rows) = timed(|| {
        let per_hour =
            keyed.group_by(JOIN_ON).agg([agg::mean("fare_amount").alias("mean_fare")])?;
        Ok(keyed.join(&per_hour, &JOIN_ON, &JOIN_ON, JoinHow::Inner)?.len()?.compute()?)
    })?;
    emit(engine, "join_large", s, &json!(rows));
    // Both sides shuffled: the second frame in as many partitions as the trips.
    let (s, rows) = timed(|| {
        let per_hour = keyed
            .group_by(JOIN_ON)
            .split_out(df.npartitions())
            .agg([agg::mean("fare_amount").alias("mean_fare")])?;
        let joined = keyed.join_with(
            &per_hour,
            &JOIN_ON,
            &JOIN_ON,
            JoinHow::Inner,
            JoinStrategy::Shuffle,
        )?;
        Ok(joined.len()?.compute()?)
    })?;
    emit(engine, "join_large_shuffle", s, &json!(rows));
    Ok(())
}

/// Mean passengers per day as `{"YYYY-MM-DD": mean}` (the answer of `resample_day_mean`).
fn day_map(frame: &DataFrame) -> Json {
    let days = frame
        .clone()
        .lazy()
        .with_columns([col("tpep_pickup_datetime").dt().strftime("%Y-%m-%d")])
        .collect()
        .unwrap();
    to_json(&days, "tpep_pickup_datetime", "passenger_count")
}

/// The pickup times of the first rows, as text (the answer of `head_sorted`).
fn first_pickups(head: &DataFrame) -> Json {
    let times = head.column("tpep_pickup_datetime").unwrap().cast(&DataType::String).unwrap();
    // To the second, as the other engines print them.
    json!(times
        .str()
        .unwrap()
        .iter()
        .map(|t| t.map(|t| t[..19.min(t.len())].to_string()))
        .collect::<Vec<_>>())
}

fn run_polars_shuffles(scan: impl Fn() -> Result<LazyFrame>) -> Result<()> {
    let engine = "polars";
    let (s, sorted) = timed(|| {
        Ok(scan()?
            .sort(
                ["tpep_pickup_datetime"],
                SortMultipleOptions::default().with_maintain_order(true),
            )
            .collect()?)
    })?;
    emit(engine, "set_index", s, &json!(sorted.height()));
    let at = |text: &str| {
        lit(text).str().to_datetime(
            Some(TimeUnit::Microseconds),
            None,
            StrptimeOptions::default(),
            lit("raise"),
        )
    };
    let (s, day) = timed(|| {
        let pickup = || col("tpep_pickup_datetime");
        Ok(sorted
            .clone()
            .lazy()
            .filter(
                pickup()
                    .gt_eq(at("2015-05-05 00:00:00"))
                    .and(pickup().lt(at("2015-05-06 00:00:00"))),
            )
            .collect()?)
    })?;
    emit(engine, "loc_day", s, &json!(day.height()));
    let (s, head) = timed(|| Ok(sorted.head(Some(5))))?;
    emit(engine, "head_sorted", s, &first_pickups(&head));
    let (s, r) = timed(|| {
        Ok(sorted
            .clone()
            .lazy()
            .group_by([col("tpep_pickup_datetime").dt().truncate(lit("1d"))])
            .agg([col("passenger_count").mean()])
            .sort(["tpep_pickup_datetime"], Default::default())
            .collect()?)
    })?;
    emit(engine, "resample_day_mean", s, &day_map(&r));
    let (s, r) = timed(|| {
        let ten =
            RollingOptionsFixedWindow { window_size: 10, min_periods: 10, ..Default::default() };
        Ok(sorted
            .clone()
            .lazy()
            .select([col("passenger_count").rolling_mean(ten).sum()])
            .collect()?)
    })?;
    emit(engine, "rolling_10_mean", s, &scalar(&r, "passenger_count"));
    let on = || JOIN_ON.map(col);
    let (s, joined) = timed(|| {
        let keyed = scan()?.with_columns(join_keys());
        let per_hour =
            keyed.clone().group_by(on()).agg([col("fare_amount").mean().alias("mean_fare")]);
        Ok(keyed
            .join(per_hour, on(), on(), JoinArgs::new(JoinType::Inner))
            .select([len()])
            .collect()?)
    })?;
    emit(engine, "join_large", s, &scalar(&joined, "len"));
    Ok(())
}

fn run_polars(csv_glob: &str, parquet_dir: &Path) -> Result<()> {
    let engine = "polars";
    let scan = || -> Result<LazyFrame> {
        Ok(LazyCsvReader::new(PlRefPath::from(csv_glob))
            .with_has_header(true)
            .with_try_parse_dates(true)
            .finish()?)
    };
    let (s, r) = timed(|| Ok(scan()?.select([len()]).collect()?))?;
    emit(engine, "len", s, &scalar(&r, "len"));
    let (s, r) = timed(|| {
        Ok(scan()?
            .group_by([col("passenger_count")])
            .agg([col("trip_distance").mean()])
            .sort(["passenger_count"], Default::default())
            .collect()?)
    })?;
    emit(engine, "groupby_passenger_mean", s, &to_json(&r, "passenger_count", "trip_distance"));
    let (s, (dow, hour)) = timed(|| {
        let tipped = scan()?.filter(tipped_rows()).with_columns(tip_columns());
        let dow = tipped
            .clone()
            .group_by([col("day_of_week")])
            .agg([col("tip_fraction").mean()])
            .sort(["day_of_week"], Default::default());
        let hour = tipped
            .group_by([col("hour")])
            .agg([col("tip_fraction").mean()])
            .sort(["hour"], Default::default());
        let both = collect_all([dow, hour])?;
        Ok((both[0].clone(), both[1].clone()))
    })?;
    emit_tips(engine, s, &dow, &hour);
    let (s, r) = timed(|| {
        Ok(scan()?
            .join(
                payment_names().lazy(),
                [col("payment_type")],
                [col("payment_type")],
                JoinArgs::new(JoinType::Left),
            )
            .group_by([col("payment_name")])
            .agg([col("tip_amount").mean()])
            .collect()?)
    })?;
    emit(engine, "merge_groupby", s, &to_json(&r, "payment_name", "tip_amount"));
    let (s, r) = timed(|| {
        Ok(scan()?.group_by([col("passenger_count")]).agg([len().alias("count")]).collect()?)
    })?;
    emit(engine, "value_counts", s, &to_json(&r, "passenger_count", "count"));
    let target = parquet_dir.join(engine);
    std::fs::create_dir_all(&target)?;
    let file = target.join("all.parquet");
    let (s, rows) = timed(|| {
        let mut frame = scan()?.collect()?;
        let mut out = std::fs::File::create(&file)?;
        ParquetWriter::new(&mut out)
            .with_compression(ParquetCompression::Snappy)
            .finish(&mut frame)?;
        Ok(frame.height())
    })?;
    emit(engine, "to_parquet", s, &json!(rows));
    let (s, r) = timed(|| {
        Ok(LazyFrame::scan_parquet(PlRefPath::from(file.to_str().unwrap()), Default::default())?
            .select([col("passenger_count").sum()])
            .collect()?)
    })?;
    emit(engine, "parquet_column_sum", s, &scalar(&r, "passenger_count"));
    let frames: Vec<DataFrame> = csv_files(csv_glob)?
        .iter()
        .map(|path| {
            Ok(LazyCsvReader::new(PlRefPath::from(path.to_str().expect("a UTF-8 path")))
                .with_has_header(true)
                .with_try_parse_dates(true)
                .finish()?
                .collect()?)
        })
        .collect::<Result<_>>()?;
    let target = parquet_dir.join("polars-write-only");
    std::fs::create_dir_all(&target)?;
    let (s, rows) = timed(|| write_in_parallel(&frames, &target))?;
    emit(engine, "parquet_write_only", s, &json!(rows));
    run_polars_shuffles(scan)
}

/// The CSV files `csv_glob` (`DIR/*.csv`) names, in order.
fn csv_files(csv_glob: &str) -> Result<Vec<PathBuf>> {
    let dir = Path::new(csv_glob).parent().expect("a directory");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    Ok(files)
}

/// Writes each frame to its own Snappy Parquet file in `dir`, a thread per core taking the
/// next frame; the rows written.
fn write_in_parallel(frames: &[DataFrame], dir: &Path) -> Result<usize> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<usize> {
                    let mut rows = 0;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(frame) = frames.get(i) else { return Ok(rows) };
                        let file = std::fs::File::create(dir.join(format!("part-{i}.parquet")))?;
                        ParquetWriter::new(std::io::BufWriter::new(file))
                            .with_compression(ParquetCompression::Snappy)
                            .finish(&mut frame.clone())?;
                        rows += frame.height();
                    }
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().expect("a writer thread panicked")).sum()
    })
}

fn collect_all(frames: [LazyFrame; 2]) -> Result<Vec<DataFrame>> {
    // Polars evaluates the two queries one after the other here, each on all cores.
    frames.into_iter().map(|f| Ok(f.collect()?)).collect()
}

/// Runs the benchmark.
pub fn run(args: &TaxiArgs) -> Result<()> {
    crate::timing::set_repeat(args.repeat);
    let csv_dir = args.data.join(format!("csv-{}", args.rows_per_file));
    let started = Instant::now();
    write_taxi_csvs(&csv_dir, args.rows_per_file)?;
    eprintln!("data ready in {:.1?} ({})", started.elapsed(), csv_dir.display());
    let csv_glob = format!("{}/*.csv", csv_dir.display());
    let parquet_dir = args.data.join(format!("parquet-bench-{}", args.rows_per_file));
    if args.memory_probe {
        for engine in &args.engines {
            memory_probe(engine, &csv_glob, args.blocksize_mib)?;
        }
        return Ok(());
    }
    for engine in &args.engines {
        match engine.as_str() {
            "polars" => run_polars(&csv_glob, &parquet_dir)?,
            "rask" => run_rask("rask", &csv_glob, &parquet_dir)?,
            "rask-cluster" => {
                let program = std::env::current_exe()?;
                let cluster = rask::LocalCluster::processes(&program, args.workers, 1)?;
                rask::set_default_scheduler(Some(Arc::new(cluster.client()?)));
                let result = run_rask("rask-cluster", &csv_glob, &parquet_dir);
                rask::set_default_scheduler(None);
                drop(cluster);
                result?;
            }
            other => anyhow::bail!("unknown engine `{other}`: use polars, rask or rask-cluster"),
        }
    }
    Ok(())
}
