//! `rask-bench distributed`: the distributed runtime end to end on loopback.
//!
//! Starts a scheduler and `--workers` worker processes (this binary re-executed in worker mode,
//! `--threads` threads each), connects a client, and measures:
//! * `roundtrip`: 1,000 sequential `submit` + `result` of one tiny task (`ms_per_call`);
//! * `map_sum_100k`, `tree_100k`: the local benchmark's graphs, submitted in one message
//!   (`tasks_per_s`, from submitting to having the answer);
//! * the scheduler process's CPU time per task (`scheduler_us_per_task`, from /proc).

use std::time::Instant;

use crate::graphs::{map_sum, tree, Functions, Workload};
use anyhow::{ensure, Context};
use clap::Args;
use rask::testing::{add, inc, total};
use rask::{Client, ComputeExt, Delayed, LocalCluster, Value};
use serde_json::json;

/// Whether this run keeps a dashboard reader going (reported in every line).
static DASHBOARD_OPEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Options of `rask-bench distributed`.
#[derive(Args)]
pub struct DistributedArgs {
    /// Print JSON lines (the only output format; kept for a stable command line).
    #[arg(long)]
    json: bool,
    /// Worker processes.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Threads per worker.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Comma-separated scenarios (default: all).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Round trips in `roundtrip`.
    #[arg(long, default_value_t = 1000)]
    calls: usize,
    /// Tasks (leaves) in `map_sum` and `tree` (the scenario names say 100k for the default).
    #[arg(long, default_value_t = 100_000)]
    size: u32,
    /// Serve the scheduler's dashboard and keep a reader polling every JSON endpoint five times
    /// a second (twice the page's own rate) while the benchmark runs: the dashboard's cost.
    #[arg(long)]
    dashboard_open: bool,
}

fn func(name: &str) -> anyhow::Result<rask::TaskFn> {
    Ok(rask::registry::lookup(name)?)
}

fn functions() -> anyhow::Result<Functions> {
    Ok(Functions {
        inc: func(inc::NAME)?,
        add: func(add::NAME)?,
        sum: func(total::NAME)?,
        literal: Value::serde,
    })
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc/PID/stat")?;
    let after_name = &stat[stat.rfind(')').context("a /proc stat line")? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// Polls the dashboard's endpoints five times a second until dropped, like an open page.
struct DashboardReader {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl DashboardReader {
    fn start(address: String) -> Self {
        use std::io::{Read, Write};
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut requests = 0;
            let mut since = 0u64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                for path in [
                    "/api/status",
                    "/api/workers",
                    "/api/progress",
                    &format!("/api/task-stream?since={since}"),
                ] {
                    let Ok(mut stream) = std::net::TcpStream::connect(&address) else { continue };
                    let _ = write!(
                        stream,
                        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                    );
                    let mut body = String::new();
                    let _ = stream.read_to_string(&mut body);
                    if let Some(next) = body
                        .rsplit("\"next\":")
                        .next()
                        .and_then(|t| t.trim_end_matches('}').trim().parse().ok())
                    {
                        since = next;
                    }
                    requests += 1;
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            requests
        });
        DashboardReader { stop, thread: Some(thread) }
    }
}

impl Drop for DashboardReader {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let requests = thread.join().unwrap_or(0);
            eprintln!("the dashboard reader made {requests} requests");
        }
    }
}

fn emit(scenario: &str, extra: serde_json::Value) {
    let mut line = json!({"bench": "distributed", "engine": "rask", "scenario": scenario});
    if DASHBOARD_OPEN.load(std::sync::atomic::Ordering::Relaxed) {
        line["dashboard_open"] = json!(true);
    }
    if let (Some(line), serde_json::Value::Object(extra)) = (line.as_object_mut(), extra) {
        line.extend(extra);
    }
    println!("{line}");
}

fn run_graph(
    client: &Client,
    cluster: &LocalCluster,
    scenario: &str,
    workload: &Workload,
) -> anyhow::Result<()> {
    let (expected, tasks) = (workload.expected, workload.tasks);
    let pid = cluster.scheduler_pid().context("a scheduler process")?;
    let cpu_before = cpu_seconds(pid)?;
    let started = Instant::now();
    let result: Delayed<i64> =
        Delayed::from_graph(workload.graph.clone(), workload.outputs[0].clone());
    let got = result.compute_with(client)?;
    let seconds = started.elapsed().as_secs_f64();
    let scheduler_cpu = cpu_seconds(pid)? - cpu_before;
    ensure!(got == expected, "{scenario}: got {got}, expected {expected}");
    emit(
        scenario,
        json!({
            "tasks": tasks,
            "seconds": seconds,
            "tasks_per_s": (tasks as f64 / seconds).round(),
            "scheduler_cpu_seconds": scheduler_cpu,
            "scheduler_us_per_task": scheduler_cpu * 1e6 / tasks as f64,
        }),
    );
    Ok(())
}

/// Runs the distributed benchmarks.
pub fn run(args: &DistributedArgs) -> anyhow::Result<()> {
    let program = std::env::current_exe()?;
    let (cluster, reader) = if args.dashboard_open {
        // A free port: bind one, let go, hand it to the scheduler.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let address = format!("127.0.0.1:{port}");
        let cluster = LocalCluster::processes_with(
            &program,
            args.workers,
            args.threads,
            &["--dashboard-address", &address],
        )?;
        (cluster, Some(DashboardReader::start(address)))
    } else {
        (LocalCluster::processes(&program, args.workers, args.threads)?, None)
    };
    DASHBOARD_OPEN.store(reader.is_some(), std::sync::atomic::Ordering::Relaxed);
    let client = cluster.client()?;
    let all = ["roundtrip", "map_sum_100k", "tree_100k"];
    let _reader = reader;
    let scenarios: Vec<String> = if args.scenarios.is_empty() {
        all.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenarios.clone()
    };
    for scenario in &scenarios {
        match scenario.as_str() {
            "roundtrip" => {
                // Warm up connections and the registry.
                client.result(&client.submit(inc::lazy(-1))?)?;
                let started = Instant::now();
                for i in 0..args.calls {
                    let future = client.submit(inc::lazy(i as i64))?;
                    ensure!(client.result(&future)? == i as i64 + 1, "roundtrip: wrong answer");
                }
                let seconds = started.elapsed().as_secs_f64();
                emit(
                    scenario,
                    json!({"calls": args.calls, "seconds": seconds, "ms_per_call": seconds * 1e3 / args.calls as f64}),
                );
            }
            "map_sum_100k" => {
                run_graph(&client, &cluster, scenario, &map_sum(args.size, &functions()?))?;
            }
            "tree_100k" => {
                run_graph(&client, &cluster, scenario, &tree(args.size, &functions()?))?;
            }
            other => anyhow::bail!("unknown scenario {other:?}; known: {}", all.join(", ")),
        }
    }
    Ok(())
}
