//! Custom ETL with plain loops: the graph of Dask's "Custom Parallel Algorithms on a Cluster"
//! walkthrough (2017), written as ordinary Rust.
//!
//! Load 100 files, load a reference table, process each file against it, take a rolling window
//! over every three processed results, compare 200 random pairs and reduce to the best score.
//! The functions sleep to stand in for I/O and work, so more threads than cores help (as on a
//! cluster). The same loops run once eagerly (sequentially) and once lazily through rask, and
//! the example prints both times, the speed-up and checks that the answers agree.
//!
//! ```text
//! cargo run --release -p rask --example custom_etl -- [--files 100] [--pairs 200] [--threads 8] [--sleep-ms 8]
//!     [--cluster WORKERS [--dashboard 127.0.0.1:8787] [--hold SECONDS]]
//! ```
//!
//! With `--cluster N` the same graph runs on an in-process cluster of N workers (each with
//! `--threads` threads), optionally with the scheduler's live dashboard.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rask::prelude::*;
use rask::LocalCluster;

/// Upper bound of each simulated step's sleep, in microseconds (set from --sleep-ms).
static SLEEP_SCALE_US: AtomicU64 = AtomicU64::new(8_000);

/// Sleeps a deterministic fraction of the scale, so results and timings repeat run to run.
fn simulate_work(seed: u64, fraction: f64) {
    let jitter = (splitmix(seed) % 1000) as f64 / 1000.0;
    let micros = SLEEP_SCALE_US.load(Ordering::Relaxed) as f64 * fraction * jitter;
    std::thread::sleep(Duration::from_micros(micros as u64));
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn name_seed(name: &str) -> u64 {
    name.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3))
}

/// Reads one input file (here: makes 1,000 numbers from its name).
#[rask::delayed]
fn load(filename: &str) -> Vec<f64> {
    let seed = name_seed(filename);
    simulate_work(seed, 1.0);
    (0..1000).map(|i| (splitmix(seed ^ i) % 10_000) as f64 / 100.0).collect()
}

/// Reads the reference table (here: 1,000 weights).
#[rask::delayed]
fn load_from_sql(table: &str) -> Vec<f64> {
    let seed = name_seed(table);
    simulate_work(seed, 1.0);
    (0..1000).map(|i| 0.5 + (splitmix(seed ^ i) % 100) as f64 / 100.0).collect()
}

/// Weighs one file's data by the reference table.
#[rask::delayed]
fn process(data: &[f64], reference: &[f64]) -> Vec<f64> {
    simulate_work(data[0].to_bits(), 1.0);
    data.iter().zip(reference).map(|(x, w)| x * w).collect()
}

/// A rolling window over three processed results.
#[rask::delayed]
fn roll(a: &[f64], b: &[f64], c: &[f64]) -> Vec<f64> {
    simulate_work(a[1].to_bits() ^ c[2].to_bits(), 0.4);
    a.iter().zip(b).zip(c).map(|((a, b), c)| (a + b + c) / 3.0).collect()
}

/// Scores how alike two rolled results are.
#[rask::delayed]
fn compare(a: &[f64], b: &[f64]) -> f64 {
    simulate_work(a[3].to_bits() ^ b[4].to_bits(), 0.2);
    a.iter().zip(b).map(|(a, b)| (a - b).abs()).sum::<f64>() / a.len() as f64
}

/// The best score.
#[rask::delayed]
fn reduction(scores: Vec<f64>) -> f64 {
    simulate_work(scores.len() as u64, 0.4);
    scores.into_iter().fold(f64::NEG_INFINITY, f64::max)
}

/// The random pairs of rolled results to compare: the same for both runs.
fn pairs(count: usize, rolled: usize) -> Vec<(usize, usize)> {
    (0..count as u64)
        .map(|i| {
            (
                (splitmix(2 * i) % rolled as u64) as usize,
                (splitmix(2 * i + 1) % rolled as u64) as usize,
            )
        })
        .collect()
}

fn sequential(files: usize, pairs: &[(usize, usize)]) -> f64 {
    let data: Vec<_> = (0..files).map(|i| load(&format!("mydata-{i}.dat"))).collect();
    let reference = load_from_sql("sql://mytable");
    let processed: Vec<_> = data.iter().map(|d| process(d, &reference)).collect();
    let rolled: Vec<_> = processed.windows(3).map(|w| roll(&w[0], &w[1], &w[2])).collect();
    let compared: Vec<_> = pairs.iter().map(|&(a, b)| compare(&rolled[a], &rolled[b])).collect();
    reduction(compared)
}

/// The same loops, lazily: each call adds a task instead of running.
fn lazy(files: usize, pairs: &[(usize, usize)]) -> Delayed<f64> {
    let data: Vec<_> = (0..files).map(|i| load::lazy(format!("mydata-{i}.dat"))).collect();
    let reference = load_from_sql::lazy("sql://mytable");
    let processed: Vec<_> = data.iter().map(|d| process::lazy(d, &reference)).collect();
    let rolled: Vec<_> = processed.windows(3).map(|w| roll::lazy(&w[0], &w[1], &w[2])).collect();
    let compared: Vec<_> =
        pairs.iter().map(|&(a, b)| compare::lazy(&rolled[a], &rolled[b])).collect();
    reduction::lazy(compared)
}

fn flag(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .map(|i| {
            let value = args.get(i + 1).unwrap_or_else(|| panic!("{name} needs a value"));
            value.parse().unwrap_or_else(|_| panic!("{name} takes a whole number, not {value:?}"))
        })
        .unwrap_or(default)
}

/// Computes `best` with rask — on this process's threads, or on an in-process cluster of
/// `workers` workers that is then kept up for `hold` — and returns the answer and how long
/// rask took. The hold is not rask's time: it is measured before the hold (the speed-up once
/// counted a 40 s hold and printed 0.3x for a run that was 4x faster).
fn run(
    best: &Delayed<f64>,
    workers: usize,
    threads: usize,
    dashboard: Option<&str>,
    hold: Duration,
) -> rask::Result<(f64, Duration)> {
    let started = Instant::now();
    if workers == 0 {
        let best = best.compute_with(&LocalScheduler::new().threads(threads))?;
        let took = started.elapsed();
        println!("rask, {threads} threads: best score {best:.4} in {took:.2?}");
        return Ok((best, took));
    }
    // The same graph on a cluster in this process: `workers` workers of `threads` threads,
    // with the scheduler's dashboard when --dashboard HOST:PORT is given.
    let cluster_error = |e: rask::ClientError| rask::Error::Cluster(e.to_string());
    let cluster = match dashboard {
        Some(address) => LocalCluster::with_dashboard(workers, threads, address),
        None => LocalCluster::new(workers, threads),
    }
    .map_err(cluster_error)?;
    if let Some(address) = cluster.dashboard_address() {
        println!("dashboard at http://{address}/");
    }
    let client = cluster.client().map_err(cluster_error)?;
    let best = best.compute_with(&client)?;
    let took = started.elapsed();
    println!("rask, {workers} workers x {threads} threads: best score {best:.4} in {took:.2?}");
    if !hold.is_zero() {
        println!("keeping the cluster (and its dashboard) up for {hold:?} (not counted)");
        std::thread::sleep(hold);
    }
    Ok((best, took))
}

fn main() -> rask::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let files = flag(&args, "--files", 100).max(3);
    let npairs = flag(&args, "--pairs", 200);
    let threads = flag(&args, "--threads", 8);
    SLEEP_SCALE_US.store(flag(&args, "--sleep-ms", 8) as u64 * 1000, Ordering::Relaxed);
    let pairs = pairs(npairs, files - 2);

    let started = Instant::now();
    let best = lazy(files, &pairs);
    let tasks = best.graph().num_tasks();
    let build = started.elapsed();
    println!("built a graph of {tasks} tasks in {build:.2?} (files={files}, pairs={npairs})");

    let workers = flag(&args, "--cluster", 0);
    let dashboard = args.iter().position(|a| a == "--dashboard").and_then(|i| args.get(i + 1));
    let hold = Duration::from_secs(flag(&args, "--hold", 0) as u64);
    let (parallel_best, parallel) =
        run(&best, workers, threads, dashboard.map(String::as_str), hold)?;

    let started = Instant::now();
    let sequential_best = sequential(files, &pairs);
    let serial = started.elapsed();
    println!("sequential loops:      best score {sequential_best:.4} in {serial:.2?}");

    assert_eq!(parallel_best, sequential_best, "rask and the sequential loops disagree");
    println!("speed-up: {:.1}x", serial.as_secs_f64() / parallel.as_secs_f64());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hold_is_not_counted_in_rask_time() {
        SLEEP_SCALE_US.store(1_000, Ordering::Relaxed);
        let pairs = pairs(6, 3);
        let best = lazy(5, &pairs);
        let hold = Duration::from_millis(1_500);
        let started = Instant::now();
        let (answer, rask_time) = run(&best, 2, 2, None, hold).expect("runs on a local cluster");
        let total = started.elapsed();
        assert_eq!(answer, sequential(5, &pairs));
        assert!(total >= hold, "the cluster was held for {hold:?}, the call took {total:?}");
        assert!(
            rask_time + hold <= total,
            "rask's time {rask_time:?} includes some of the {hold:?} hold (the call took {total:?})"
        );
    }
}
