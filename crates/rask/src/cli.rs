//! The cluster commands, for the `rask` binary and for any binary of yours.
//!
//! A worker can only run functions registered in its own binary. To run your
//! `#[rask::delayed]` functions on a cluster, start the workers from *your* binary: make
//! [`cluster_main`] the first line of its `main`, and `your-binary worker HOST:PORT` becomes a
//! worker that knows your functions (and `your-binary scheduler` a scheduler):
//!
//! ```no_run
//! #[rask::delayed]
//! fn double(x: i64) -> i64 {
//!     x * 2
//! }
//!
//! fn main() {
//!     if let Some(exit) = rask::cli::cluster_main() {
//!         std::process::exit(exit);
//!     }
//!     // ... the program itself, which may send `double::lazy(..)` to the cluster ...
//! }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};

/// The cluster commands.
#[derive(Parser)]
#[command(version, about = "rask cluster commands", long_about = None)]
struct ClusterCli {
    #[command(subcommand)]
    command: ClusterCommand,
}

/// `scheduler` and `worker`.
#[derive(Subcommand, Clone, Debug)]
pub enum ClusterCommand {
    /// Run a scheduler: clients submit work to it, workers register with it.
    Scheduler {
        /// The interface to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// The port to listen on (0: any free port).
        #[arg(long, default_value_t = 8786)]
        port: u16,
        /// Write the scheduler's address to this file (workers and clients can read it).
        #[arg(long)]
        scheduler_file: Option<PathBuf>,
        /// How many worker deaths a task may be part of before it fails as the likely cause.
        #[arg(long, default_value_t = 3)]
        allowed_failures: u32,
        /// Where to serve the live dashboard (`host:port`), or `none`.
        #[arg(long, default_value = "127.0.0.1:8787")]
        dashboard_address: String,
        /// How many of the latest tasks the dashboard's task stream keeps (0: none).
        #[arg(long, default_value_t = 100_000)]
        task_stream_length: usize,
    },
    /// Run a worker for the scheduler at ADDR (or the one named in --scheduler-file).
    Worker {
        /// The scheduler's address, `host:port`.
        address: Option<String>,
        /// Read the scheduler's address from this file.
        #[arg(long)]
        scheduler_file: Option<PathBuf>,
        /// Execution threads (default: one per core).
        #[arg(long)]
        nthreads: Option<usize>,
        /// A name for logs and restrictions.
        #[arg(long)]
        name: Option<String>,
        /// Abstract resources, such as GPU=2 (comma-separated).
        #[arg(long, value_delimiter = ',')]
        resources: Vec<String>,
        /// The interface the worker's data server listens on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// A directory for the worker's files, such as results spilled to disk (it must exist;
        /// default: the system's temporary directory).
        #[arg(long)]
        local_directory: Option<PathBuf>,
        /// The memory the worker keeps within: a size such as 4GiB or 500MB, `auto` (the
        /// machine's memory times this worker's share of the cores) or `none`. Results beyond
        /// 60% of it go to disk; above 80% the worker runs one task at a time.
        #[arg(long, default_value = "auto")]
        memory_limit: String,
    },
}

/// If this process was started as `PROGRAM scheduler ...` or `PROGRAM worker ...`, runs that
/// until it ends and returns the exit code; otherwise returns `None` at once.
pub fn cluster_main() -> Option<i32> {
    let args: Vec<String> = std::env::args().collect();
    if !matches!(args.get(1).map(String::as_str), Some("scheduler" | "worker")) {
        return None;
    }
    let cli = ClusterCli::parse_from(args);
    Some(match run(cli.command) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("error: {error}");
            1
        }
    })
}

/// Runs a cluster command until it ends (SIGINT or SIGTERM, or the scheduler going away).
pub fn run(command: ClusterCommand) -> Result<(), String> {
    init_logging();
    // One async thread: the scheduler's state machine is single-threaded anyway, and a worker
    // runs tasks on its own threads; a single async thread saves the cross-thread wake-ups that
    // otherwise dominate the cost of tiny tasks. (A worker's one thread belongs to a
    // multi-thread runtime so that tasks it runs inline may block: `rask_worker::runtime`.)
    if let ClusterCommand::Worker { nthreads, .. } = &command {
        // Before any thread starts: it sets an environment variable Polars reads once.
        let threads = nthreads.unwrap_or_else(rask_worker::default_nthreads).max(1);
        let polars_threads = crate::dataframe::polars_adapter::size_thread_pool_for_worker(threads);
        tracing::info!(%polars_threads, "Polars' thread pool sized for this worker");
    }
    let runtime = match command {
        ClusterCommand::Scheduler { .. } => {
            tokio::runtime::Builder::new_current_thread().enable_all().build()
        }
        ClusterCommand::Worker { .. } => rask_worker::runtime(),
    }
    .map_err(|e| format!("starting the async runtime: {e}"))?;
    match command {
        ClusterCommand::Scheduler {
            host,
            port,
            scheduler_file,
            allowed_failures,
            dashboard_address,
            task_stream_length,
        } => {
            let mut config = rask_scheduler::ServerConfig {
                address: format!("{host}:{port}"),
                ..Default::default()
            };
            config.scheduler.allowed_failures = allowed_failures;
            config.scheduler.task_stream_length = task_stream_length;
            config.dashboard_address = (dashboard_address != "none").then_some(dashboard_address);
            runtime.block_on(scheduler(config, scheduler_file))
        }
        ClusterCommand::Worker {
            address,
            scheduler_file,
            nthreads,
            name,
            resources,
            host,
            local_directory,
            memory_limit,
        } => {
            if let Some(dir) = &local_directory {
                if !dir.is_dir() {
                    return Err(format!(
                        "--local-directory {} is not a directory: create it first",
                        dir.display()
                    ));
                }
            }
            let address =
                match (address, scheduler_file) {
                    (Some(address), _) => address,
                    (None, Some(file)) => read_scheduler_file(&file, Duration::from_secs(30))?,
                    (None, None) => return Err(
                        "give the scheduler's address (worker HOST:PORT) or --scheduler-file FILE"
                            .into(),
                    ),
                };
            let resources =
                resources.iter().map(|r| parse_resource(r)).collect::<Result<Vec<_>, _>>()?;
            let mut config = rask_worker::WorkerConfig::new(address);
            if let Some(n) = nthreads {
                config.nthreads = n.max(1);
            }
            if let Some(name) = name {
                config.name = name;
            }
            config.host = host;
            config.resources = resources;
            config.memory_limit = parse_memory_limit(&memory_limit, config.nthreads)?;
            config.local_directory = local_directory;
            runtime.block_on(worker(config))
        }
    }
}

fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Colours only on a terminal: logs that go to a file or a pipe stay plain text.
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// `--memory-limit`: a size, `auto` (the machine's memory times this worker's share of the
/// cores, as Dask's default) or `none`.
fn parse_memory_limit(text: &str, nthreads: usize) -> Result<Option<u64>, String> {
    match text.trim() {
        "none" | "0" => Ok(None),
        "auto" => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let share = (nthreads as f64 / cores as f64).min(1.0);
            Ok(rask_worker::total_memory().map(|total| (total as f64 * share) as u64))
        }
        size => match size.parse::<bytesize::ByteSize>() {
            Ok(bytes) if bytes.as_u64() > 0 => Ok(Some(bytes.as_u64())),
            _ => Err(format!(
                "--memory-limit {size:?} is not a size: give bytes with a unit such as 4GiB or \
                 500MB, `auto` or `none`"
            )),
        },
    }
}

fn parse_resource(text: &str) -> Result<(String, f64), String> {
    let Some((name, amount)) = text.split_once('=') else {
        return Err(format!("--resources takes NAME=AMOUNT pairs such as GPU=2, not {text:?}"));
    };
    let amount: f64 =
        amount.parse().map_err(|_| format!("--resources {text}: {amount:?} is not a number"))?;
    Ok((name.to_string(), amount))
}

/// Reads a scheduler file written by `scheduler --scheduler-file`, waiting up to `wait` for it
/// to appear.
pub fn read_scheduler_file(file: &Path, wait: Duration) -> Result<String, String> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match std::fs::read_to_string(file) {
            Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
            _ if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Ok(_) => return Err(format!("the scheduler file {} is empty", file.display())),
            Err(e) => {
                return Err(format!("could not read the scheduler file {}: {e}", file.display()))
            }
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

async fn scheduler(
    config: rask_scheduler::ServerConfig,
    scheduler_file: Option<PathBuf>,
) -> Result<(), String> {
    let listen = config.address.clone();
    let handle =
        rask_scheduler::serve(config).await.map_err(|e| format!("listening on {listen}: {e}"))?;
    let address = handle.address.clone();
    if let Some(file) = &scheduler_file {
        // Write then rename, so a reader never sees half an address.
        let partial = file.with_extension("partial");
        std::fs::write(&partial, &address)
            .map_err(|e| format!("writing {}: {e}", partial.display()))?;
        std::fs::rename(&partial, file).map_err(|e| format!("writing {}: {e}", file.display()))?;
    }
    println!("rask scheduler at {address}");
    if let Some(dashboard) = &handle.dashboard_address {
        println!("dashboard at http://{dashboard}/");
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    handle.shutdown().await;
    if let Some(file) = scheduler_file {
        let _ = std::fs::remove_file(file);
    }
    Ok(())
}

async fn worker(config: rask_worker::WorkerConfig) -> Result<(), String> {
    let handle = rask_worker::start(config).await.map_err(|e| e.to_string())?;
    println!("rask worker {} serving data at {}", handle.id, handle.address);
    handle.run_until(shutdown_signal()).await.map_err(|e| e.to_string())?;
    tracing::info!("worker stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limits_are_sizes_auto_or_none_and_anything_else_says_what_to_write() {
        assert_eq!(parse_memory_limit("4GiB", 1), Ok(Some(4 << 30)));
        assert_eq!(parse_memory_limit("500MB", 1), Ok(Some(500_000_000)));
        assert_eq!(parse_memory_limit("none", 1), Ok(None));
        let total = rask_worker::total_memory().expect("Linux has /proc/meminfo");
        let one = parse_memory_limit("auto", 1).unwrap().unwrap();
        let all = parse_memory_limit("auto", 1_000).unwrap().unwrap();
        assert!(one <= all && all == total, "a share of the machine, at most all of it");
        let error = parse_memory_limit("lots", 1).unwrap_err();
        assert!(error.contains("\"lots\"") && error.contains("4GiB"), "{error}");
    }
}
