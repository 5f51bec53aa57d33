//! `rask-bench distributed`: the distributed runtime end to end on loopback.
//!
//! Starts a scheduler and `--workers` worker processes (this binary re-executed in worker mode,
//! `--threads` threads each), connects a client, and measures:
//! * `roundtrip`: 1,000 sequential `submit` + `result` of one tiny task (`ms_per_call`);
//! * `map_sum_100k`, `tree_100k`: the local benchmark's graphs, submitted in one message
//!   (`tasks_per_s`, from submitting to having the answer);
//! * the scheduler process's CPU time per task (`scheduler_us_per_task`, from /proc).

use std::time::Instant;

use anyhow::{ensure, Context};
use clap::Args;
use rask::testing::{add, inc, total};
use rask::{Arg, Client, ComputeExt, Delayed, Graph, Key, LocalCluster, Name, TaskSpec, Value};
use serde_json::json;

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
}

fn func(name: &str) -> anyhow::Result<rask::TaskFn> {
    Ok(rask::registry::lookup(name)?)
}

fn map_sum(n: u32) -> anyhow::Result<(Graph, Key, i64, usize)> {
    let (inc, total) = (func(inc::NAME)?, func(total::NAME)?);
    let mut tasks: Vec<(Key, TaskSpec)> = (0..n)
        .map(|i| {
            (
                Key::part("inc", i),
                TaskSpec::new(inc.clone(), vec![Arg::Value(Value::serde(i64::from(i)))]),
            )
        })
        .collect();
    let list = Arg::List((0..n).map(|i| Arg::Key(Key::part("inc", i))).collect());
    tasks.push((Key::new("sum"), TaskSpec::new(total, vec![list])));
    Ok((Graph::from_tasks(tasks), Key::new("sum"), (1..=i64::from(n)).sum(), n as usize + 1))
}

fn tree(leaves: u32) -> anyhow::Result<(Graph, Key, i64, usize)> {
    let (inc, add) = (func(inc::NAME)?, func(add::NAME)?);
    let mut tasks = Vec::with_capacity(2 * leaves as usize);
    let mut level: Vec<Key> = (0..leaves).map(|i| Key::part("leaf", i)).collect();
    for (i, key) in level.iter().enumerate() {
        tasks.push((
            key.clone(),
            TaskSpec::new(inc.clone(), vec![Arg::Value(Value::serde(i as i64))]),
        ));
    }
    let mut depth = 0;
    while level.len() > 1 {
        depth += 1;
        let name = Name::from(format!("add-level-{depth}"));
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for (i, pair) in level.chunks(2).enumerate() {
            match pair {
                [a, b] => {
                    let key = Key::part(name.clone(), i as u32);
                    tasks.push((key.clone(), TaskSpec::new(add.clone(), vec![a.into(), b.into()])));
                    next.push(key);
                }
                [odd] => next.push(odd.clone()),
                _ => unreachable!(),
            }
        }
        level = next;
    }
    let n = tasks.len();
    Ok((Graph::from_tasks(tasks), level.remove(0), (1..=i64::from(leaves)).sum(), n))
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

fn emit(scenario: &str, extra: serde_json::Value) {
    let mut line = json!({"bench": "distributed", "engine": "rask", "scenario": scenario});
    if let (Some(line), serde_json::Value::Object(extra)) = (line.as_object_mut(), extra) {
        line.extend(extra);
    }
    println!("{line}");
}

fn run_graph(
    client: &Client,
    cluster: &LocalCluster,
    scenario: &str,
    graph: &Graph,
    key: &Key,
    expected: i64,
    tasks: usize,
) -> anyhow::Result<()> {
    let pid = cluster.scheduler_pid().context("a scheduler process")?;
    let cpu_before = cpu_seconds(pid)?;
    let started = Instant::now();
    let result: Delayed<i64> = Delayed::from_graph(graph.clone(), key.clone());
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
    let cluster = LocalCluster::processes_of_this_binary(args.workers, args.threads)?;
    let client = cluster.client()?;
    let all = ["roundtrip", "map_sum_100k", "tree_100k"];
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
                let (graph, key, expected, tasks) = map_sum(args.size)?;
                run_graph(&client, &cluster, scenario, &graph, &key, expected, tasks)?;
            }
            "tree_100k" => {
                let (graph, key, expected, tasks) = tree(args.size)?;
                run_graph(&client, &cluster, scenario, &graph, &key, expected, tasks)?;
            }
            other => anyhow::bail!("unknown scenario {other:?}; known: {}", all.join(", ")),
        }
    }
    Ok(())
}
