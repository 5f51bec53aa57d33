//! The array benchmark: the steps of the image-stack walkthrough and a few array kernels on
//! rask's local scheduler and on a local cluster of worker processes.
//!
//! ```text
//! rask-bench array [--images 400] [--size 1000] [--workers W] [--engines rask,rask-cluster] [--steps S,...] --json
//! ```
//!
//! Each step prints `{"bench":"array","engine":E,"scenario":S,"seconds":T,"runs":R,"result":X}`
//! (`result`: a number to check the engines against each other; `--steps` picks some of the
//! steps, by these names). Steps that persist run once on a cluster (a repeat would find the first run's results still held) and the FFT step runs
//! once everywhere; the others, the local stack step included, `--repeat` times. The stack (`images` × `size`
//! × `size` uint8, one chunk per image) is rechunked to 20 images per chunk and persisted
//! before the stack steps; the other steps make their uniform random input inside the step, as
//! the Dask script does. `memory_bandwidth` sums an in-memory buffer on all cores
//! (`gb_per_s`) and rask's `sum` over the same bytes as an array (`sum_gb_per_s`);
//! `linalg_peak` the floating-point rate of a one-chunk matrix product and of a one-chunk LU
//! solve (`matmul_gflop_per_s`, `lu_gflop_per_s`), the ceiling of the `solve` step.
//! `build_elementwise_100x1000` and `lower_elementwise_100x1000` time graph building and
//! lowering of 100 elementwise steps over 1,000 chunks (`result`: the task count).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use ndarray::ArrayD;
use rask::array::prelude::*;
use rask::array::Axes;
use rask::{ComputeExt, LocalCluster};
use serde_json::json;

use crate::timing::{last_runs, set_repeat, timed, timed_once};

/// Arguments of `rask-bench array`.
#[derive(Args)]
pub struct ArrayArgs {
    /// Images in the stack.
    #[arg(long, default_value_t = 400)]
    images: usize,
    /// Pixels per side of an image.
    #[arg(long, default_value_t = 1000)]
    size: usize,
    /// Worker processes of the `rask-cluster` engine (one thread each).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Engines to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "rask,rask-cluster")]
    engines: Vec<String>,
    /// Scale of the kernel steps (1.0: the issue's sizes).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Steps to run (all when empty; the stack is made and persisted for any stack step).
    #[arg(long, value_delimiter = ',')]
    steps: Vec<String>,
    /// Print JSON lines (the default output too; kept for the scripts' symmetry).
    #[arg(long)]
    json: bool,
    /// Runs of each step; the median time is reported.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Instead of the steps: the all-to-all rechunk of an array twice the memory of a 2-worker
    /// cluster whose workers have this limit in MiB (`rechunk_spill`).
    #[arg(long)]
    spill_limit_mib: Option<u64>,
}

fn emit(engine: &str, scenario: &str, seconds: f64, result: &serde_json::Value) {
    println!(
        "{}",
        json!({"bench": "array", "engine": engine, "scenario": scenario, "seconds": seconds,
               "runs": last_runs(), "result": result})
    );
}

/// Rolls every image of a chunk by (3, −2), as `np.roll(b, (3, -2), axis=(1, 2))`.
fn recenter(chunk: &ArrayD<u8>) -> ArrayD<u8> {
    rask::array::chunk_ops::roll(chunk, &[3, -2], &[1, 2])
}
rask::array::register_block_fn!("rask_bench::recenter", recenter, u8, u8);

fn first_f64(x: &ArrayD<f64>) -> f64 {
    x.iter().next().copied().unwrap_or(f64::NAN)
}

fn scaled(n: usize, scale: f64) -> usize {
    ((n as f64 * scale).round() as usize).max(1)
}

const STACK_STEPS: [&str; 5] =
    ["stack_rechunk_persist", "mean_axis0", "mean_axis12", "recenter_mean", "rechunk_fft_power"];

/// The other steps `--steps` can name.
const OTHER_STEPS: [&str; 8] = [
    "random_std",
    "gram_xtx",
    "tsqr_svd",
    "solve",
    "memory_bandwidth",
    "linalg_peak",
    "build_elementwise_100x1000",
    "lower_elementwise_100x1000",
];

impl ArrayArgs {
    /// Whether `--steps` asks for one of these steps (every step when it names none).
    fn wants_any(&self, steps: &[&str]) -> bool {
        self.steps.is_empty() || self.steps.iter().any(|s| steps.contains(&s.as_str()))
    }

    /// Whether `--steps` asks for this step.
    fn wants(&self, step: &str) -> bool {
        self.wants_any(&[step])
    }

    /// Refuses a `--steps` name that is no step, naming the steps there are.
    fn check_steps(&self) -> Result<()> {
        let known: Vec<&str> = STACK_STEPS.iter().chain(&OTHER_STEPS).copied().collect();
        match self.steps.iter().find(|s| !known.contains(&s.as_str())) {
            Some(unknown) => {
                anyhow::bail!("--steps: no step {unknown}; the steps are {}", known.join(", "))
            }
            None => Ok(()),
        }
    }
}

fn run_engine(engine: &str, args: &ArrayArgs) -> Result<()> {
    if args.wants_any(&STACK_STEPS) {
        stack_steps(engine, args)?;
    }
    kernel_steps(engine, args)
}

/// The walkthrough's steps on the persisted stack.
fn stack_steps(engine: &str, args: &ArrayArgs) -> Result<()> {
    let (images, size) = (args.images, args.size);
    let stack =
        rask::array::random::integers::<u8>(0, 256, &[images, size, size], [1, size, size], 2017)?;
    // Locally the median of the repeats, as for the other steps: the first run of a fresh
    // process is sometimes several times slower here (fresh memory from the virtual machine),
    // in Dask's process as in ours. On a cluster once: a repeat would find the persisted chunks
    // still held.
    let persist_stack = || {
        let persisted = stack.rechunk([20.min(images), size, size])?.persist()?;
        persisted.wait()?;
        Ok(persisted)
    };
    let (seconds, stack) =
        if engine == "rask" { timed(persist_stack)? } else { timed_once(persist_stack)? };
    emit(engine, "stack_rechunk_persist", seconds, &json!(stack.nbytes()));

    if args.wants("mean_axis0") {
        let (seconds, mean) = timed(|| Ok(stack.mean(0)?.compute()?))?;
        emit(engine, "mean_axis0", seconds, &json!(mean.mean().unwrap_or(f64::NAN)));
    }
    if args.wants("mean_axis12") {
        let (seconds, brightness) = timed(|| Ok(stack.mean([1, 2])?.compute()?))?;
        emit(engine, "mean_axis12", seconds, &json!(first_f64(&brightness)));
    }
    if args.wants("recenter_mean") {
        let (seconds, recentered) = timed(|| {
            let rolled: Array<u8> = stack.map_blocks_registered("rask_bench::recenter", None)?;
            Ok(rolled.mean(0)?.compute()?)
        })?;
        emit(engine, "recenter_mean", seconds, &json!(recentered[[3, 0]]));
    }
    if !args.wants("rechunk_fft_power") {
        return Ok(());
    }
    let (seconds, corner) = timed_once(|| {
        let power = stack
            .rechunk([images, 10.min(size), 10.min(size)])?
            .fft(0)?
            .abs_squared()
            .astype::<f32>()
            .persist()?;
        power.wait()?;
        Ok(power.slice(&[Index::Full, Index::At(0), Index::At(0)])?.compute()?)
    })?;
    emit(
        engine,
        "rechunk_fft_power",
        seconds,
        &json!(corner.iter().map(|&v| f64::from(v)).sum::<f64>()),
    );
    Ok(())
}

/// The kernel steps, each making its uniform random input inside the step.
fn kernel_steps(engine: &str, args: &ArrayArgs) -> Result<()> {
    if args.wants("random_std") {
        let n = scaled(8000, args.scale.sqrt());
        let c = scaled(1000, args.scale.sqrt());
        let (seconds, std) = timed(|| {
            Ok(rask::array::random::random(&[n, n], [c, c], 1)?.std(Axes::all(), 0)?.compute()?)
        })?;
        emit(engine, "random_std", seconds, &json!(first_f64(&std)));
    }
    if args.wants("gram_xtx") {
        let rows = scaled(1_000_000, args.scale);
        let chunk = scaled(100_000, args.scale);
        let (seconds, gram) = timed(|| {
            let x = rask::array::random::random(&[rows, 20], [chunk, 20], 2)?;
            Ok(x.t().matmul(&x)?.compute()?)
        })?;
        emit(engine, "gram_xtx", seconds, &json!(gram[[0, 0]]));
    }
    if args.wants("tsqr_svd") {
        let tall = scaled(200_000, args.scale).max(50);
        let tall_chunk = scaled(20_000, args.scale).max(50);
        let (seconds, s) = timed(|| {
            let x = rask::array::random::random(&[tall, 50], [tall_chunk, 50], 3)?;
            let (u, s, vt) = x.svd()?;
            Ok((&u, &s, &vt).compute()?.1)
        })?;
        emit(engine, "tsqr_svd", seconds, &json!(first_f64(&s)));
    }
    if args.wants("solve") {
        // Four blocks per side, as the Dask script (its LU wants square blocks).
        let block = scaled(1000, args.scale.sqrt());
        let m = 4 * block;
        let (seconds, x) = timed(|| {
            let a = rask::array::random::random(&[m, m], [block, block], 4)?;
            let eye = rask::array::eye::<f64>(m, None, 0, [block, block])?;
            let a = a.try_add(&(eye * m as f64))?;
            let b = rask::array::random::random(&[m, 1], [block, 1], 5)?;
            Ok(a.solve(&b)?.compute()?)
        })?;
        emit(engine, "solve", seconds, &json!(x.iter().next().copied().unwrap_or(f64::NAN)));
    }
    Ok(())
}

/// Graph building and lowering with the array API, as the issue asks: `ones(10⁶)` in 1,000
/// chunks, then 100 times `x + 1` — built (symbolic, nothing materialized), then lowered
/// (culled, fused into one task per chunk, ordered) for every chunk. The lowered graph is run
/// and checked.
fn graph_steps() -> Result<()> {
    fn build() -> Result<Array<f64>> {
        let mut x = rask::array::ones::<f64>(&[1_000_000], [1000])?;
        for _ in 0..100 {
            x = &x + 1.0;
        }
        Ok(x)
    }
    let (seconds, x) = timed(build)?;
    emit("rask", "build_elementwise_100x1000", seconds, &json!(x.graph_ref().num_tasks()));
    let keys = x.block_keys();
    let (seconds, lowered) = timed(|| {
        Ok(rask::optimize::prepare(x.graph_ref(), &keys, &rask::Optimizations::default())?)
    })?;
    let total = x.sum(Axes::all())?.compute()?[[]];
    anyhow::ensure!(total == 101.0 * 1e6, "lower_elementwise_100x1000: sum {total}");
    emit("rask", "lower_elementwise_100x1000", seconds, &json!(lowered.len()));
    Ok(())
}

/// A sum over a buffer with all cores, eight accumulators per thread: the memory bandwidth a
/// reduction can reach here.
fn bandwidth_sum(data: &[f64]) -> f64 {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = data.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = data
            .chunks(per.max(1))
            .map(|part| {
                scope.spawn(move || {
                    let mut lanes = [0.0f64; 8];
                    let mut blocks = part.chunks_exact(8);
                    for block in &mut blocks {
                        for (lane, &v) in lanes.iter_mut().zip(block) {
                            *lane += v;
                        }
                    }
                    lanes.iter().sum::<f64>() + blocks.remainder().iter().sum::<f64>()
                })
            })
            .collect();
        parts.into_iter().map(|p| p.join().expect("a summing thread")).sum()
    })
}

fn memory_bandwidth(args: &ArrayArgs) -> Result<()> {
    let elements = scaled(64 << 20, args.scale); // 512 MiB of f64 at scale 1
    let data: Vec<f64> = (0..elements).map(|i| (i % 1000) as f64).collect();
    let bytes = (elements * 8) as f64;
    let (seconds, total) = timed(|| Ok(bandwidth_sum(&data)))?;
    let array = from_ndarray(&ndarray::ArrayView1::from(data.as_slice()), [elements.div_ceil(16)])?;
    let (sum_seconds, sum) = timed(|| Ok(array.sum(Axes::all())?.compute()?))?;
    println!(
        "{}",
        json!({"bench": "array", "engine": "rask", "scenario": "memory_bandwidth", "seconds": sum_seconds,
               "runs": last_runs(), "gb_per_s": bytes / seconds / 1e9, "sum_gb_per_s": bytes / sum_seconds / 1e9,
               "result": first_f64(&sum), "expected": total})
    );
    Ok(())
}

/// `linalg_peak`: the floating-point rate of the kernels under `solve`, on data already in
/// memory: a product of two one-chunk `n × n` matrices (`2n³` flops; the best rate any
/// factorization can reach here) and `solve` of a one-chunk matrix (LU, `⅔n³` flops). They
/// bound what the `solve` step can take: its factorization alone needs `⅔n³` flops at no
/// more than the product's rate.
fn linalg_peak(args: &ArrayArgs) -> Result<()> {
    let n = 4 * scaled(1000, args.scale.sqrt());
    let a = rask::array::random::random(&[n, n], [n, n], 4)?;
    let a = a.try_add(&(rask::array::eye::<f64>(n, None, 0, [n, n])? * n as f64))?.persist()?;
    let b = rask::array::random::random(&[n, 1], [n, 1], 5)?.persist()?;
    a.wait()?;
    b.wait()?;
    let cube = (n as f64).powi(3);
    let (matmul_seconds, product) = timed(|| Ok(a.matmul(&a)?.compute()?))?;
    let (lu_seconds, x) = timed(|| Ok(a.solve(&b)?.compute()?))?;
    println!(
        "{}",
        json!({"bench": "array", "engine": "rask", "scenario": "linalg_peak", "seconds": lu_seconds,
               "runs": last_runs(), "n": n, "matmul_seconds": matmul_seconds,
               "matmul_gflop_per_s": 2.0 * cube / matmul_seconds / 1e9,
               "lu_gflop_per_s": 2.0 / 3.0 * cube / lu_seconds / 1e9,
               "result": first_f64(&x), "matmul_result": product[[0, 0]]})
    );
    Ok(())
}

/// The peak resident memory of a process (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/{pid}/status"))?;
    let kib: u64 = line.split_whitespace().nth(1).unwrap_or("0").parse()?;
    Ok(kib * 1024)
}

/// `rechunk_spill`: images (one chunk each) of twice the two workers' memory, rechunked into
/// per-pixel series with tasks of at most a sixteenth of a worker's limit, persisted (so the
/// result must spill), summed and one pixel's series read; both checked against the local
/// scheduler. Reports the workers' peak resident memory against their limit.
fn rechunk_spill(limit_mib: u64) -> Result<()> {
    let limit = limit_mib << 20;
    let directory = tempfile::tempdir()?;
    let program = std::env::current_exe()?;
    let cluster = LocalCluster::processes_with_args(
        &program,
        2,
        1,
        &["--dashboard-address", "none"],
        &[
            "--memory-limit",
            &format!("{limit_mib}MiB"),
            "--local-directory",
            directory.path().to_str().unwrap_or("."),
        ],
    )?;
    let client = cluster.client()?;
    let images = (4 * limit / 1_000_000) as usize;
    let stack =
        rask::array::random::integers::<u8>(0, 256, &[images, 1000, 1000], [1, 1000, 1000], 11)?;
    let series = stack.rechunk_bounded([images, 10, 10], (limit / 16) as usize)?;
    let pixel = [Index::Full, Index::At(123), Index::At(457)];
    let local = rask::LocalScheduler::new();
    let expected =
        (stack.sum(Axes::all())?.compute_with(&local)?, stack.slice(&pixel)?.compute_with(&local)?);
    rask::set_default_scheduler(Some(Arc::new(client)));
    let started = Instant::now();
    let persisted = series.persist()?;
    persisted.wait()?;
    let total = persisted.sum(Axes::all())?.compute()?;
    let seconds = started.elapsed().as_secs_f64();
    let column = persisted.slice(&pixel)?.compute()?;
    rask::set_default_scheduler(None);
    let exact = total == expected.0 && column == expected.1;
    let spill_files = walk_files(directory.path());
    let peaks = cluster.worker_pids().into_iter().map(peak_rss).collect::<Result<Vec<u64>>>()?;
    println!(
        "{}",
        json!({"bench": "array", "engine": "rask-cluster", "scenario": "rechunk_spill", "seconds": seconds,
               "array_bytes": stack.nbytes(), "memory_limit": limit, "peak_rss": peaks,
               "under_limit": peaks.iter().all(|&p| p <= limit), "spill_files": spill_files,
               "tasks": series.graph_ref().num_tasks(), "exact": exact})
    );
    anyhow::ensure!(exact, "rechunk_spill: the result differs from the local scheduler's");
    Ok(())
}

/// Files under a directory, recursively.
fn walk_files(path: &std::path::Path) -> usize {
    std::fs::read_dir(path).map_or(0, |entries| {
        entries.flatten().map(|e| if e.path().is_dir() { walk_files(&e.path()) } else { 1 }).sum()
    })
}

/// Runs the engines asked for.
pub fn run(args: &ArrayArgs) -> Result<()> {
    set_repeat(args.repeat);
    args.check_steps()?;
    if let Some(limit) = args.spill_limit_mib {
        return rechunk_spill(limit);
    }
    let started = Instant::now();
    for engine in &args.engines {
        match engine.as_str() {
            "rask" => {
                rask::set_default_scheduler(None);
                run_engine("rask", args)?;
                if args.wants("memory_bandwidth") {
                    memory_bandwidth(args)?;
                }
                if args.wants("linalg_peak") {
                    linalg_peak(args)?;
                }
                if args.wants_any(&OTHER_STEPS[6..]) {
                    graph_steps()?;
                }
            }
            "rask-cluster" => {
                let program = std::env::current_exe()?;
                let cluster = LocalCluster::processes_with(
                    &program,
                    args.workers,
                    1,
                    &["--dashboard-address", "none"],
                )?;
                rask::set_default_scheduler(Some(Arc::new(cluster.client()?)));
                run_engine("rask-cluster", args)?;
                rask::set_default_scheduler(None);
            }
            other => anyhow::bail!("unknown engine {other}: use rask or rask-cluster"),
        }
    }
    eprintln!("array benchmark done in {:.1?}", started.elapsed());
    Ok(())
}
