//! The `rask` command line: `rask scheduler`, `rask worker`, and `rask functions`.
//!
//! ```text
//! rask scheduler [--host 127.0.0.1] [--port 8786] [--scheduler-file F]
//! rask worker ADDR | --scheduler-file F [--nthreads N] [--name NAME] [--resources GPU=2]
//! ```
//!
//! Both log through `tracing` (set `RUST_LOG`, default `info`) and stop cleanly on SIGINT or
//! SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

/// rask: parallel and distributed computing for Rust, in the spirit of Dask.
#[derive(Parser)]
#[command(name = "rask", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
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
        /// A directory for the worker's files (spill comes later; it must exist).
        #[arg(long)]
        local_directory: Option<PathBuf>,
    },
    /// List the functions registered in this binary (what its workers can run by name).
    Functions,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Functions) => {
            for name in rask::registry::names() {
                println!("{name}");
            }
            Ok(())
        }
        Some(Command::Scheduler { host, port, scheduler_file, allowed_failures }) => {
            init_logging();
            runtime()?.block_on(scheduler(host, port, scheduler_file, allowed_failures))
        }
        Some(Command::Worker {
            address,
            scheduler_file,
            nthreads,
            name,
            resources,
            host,
            local_directory,
        }) => {
            init_logging();
            if let Some(dir) = &local_directory {
                if !dir.is_dir() {
                    bail!(
                        "--local-directory {} is not a directory: create it first",
                        dir.display()
                    );
                }
            }
            let address = match (address, scheduler_file) {
                (Some(address), _) => address,
                (None, Some(file)) => read_scheduler_file(&file)?,
                (None, None) => bail!(
                    "give the scheduler's address (rask worker HOST:PORT) or --scheduler-file FILE"
                ),
            };
            let resources =
                resources.iter().map(|r| parse_resource(r)).collect::<anyhow::Result<Vec<_>>>()?;
            let mut config = rask_worker::WorkerConfig::new(address);
            if let Some(n) = nthreads {
                config.nthreads = n.max(1);
            }
            if let Some(name) = name {
                config.name = name;
            }
            config.host = host;
            config.resources = resources;
            runtime()?.block_on(worker(config))
        }
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            Ok(())
        }
    }
}

fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn parse_resource(text: &str) -> anyhow::Result<(String, f64)> {
    let Some((name, amount)) = text.split_once('=') else {
        bail!("--resources takes NAME=AMOUNT pairs such as GPU=2, not {text:?}");
    };
    let amount: f64 = amount
        .parse()
        .with_context(|| format!("--resources {text}: {amount:?} is not a number"))?;
    Ok((name.to_string(), amount))
}

fn read_scheduler_file(file: &PathBuf) -> anyhow::Result<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match std::fs::read_to_string(file) {
            Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
            _ if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Ok(_) => bail!("the scheduler file {} is empty", file.display()),
            Err(e) => bail!("could not read the scheduler file {}: {e}", file.display()),
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

async fn scheduler(
    host: String,
    port: u16,
    scheduler_file: Option<PathBuf>,
    allowed_failures: u32,
) -> anyhow::Result<()> {
    let mut config =
        rask_scheduler::ServerConfig { address: format!("{host}:{port}"), ..Default::default() };
    config.scheduler.allowed_failures = allowed_failures;
    let handle = rask_scheduler::serve(config)
        .await
        .with_context(|| format!("listening on {host}:{port}"))?;
    let address = handle.address.to_string();
    if let Some(file) = &scheduler_file {
        // Write then rename, so a reader never sees half an address.
        let partial = file.with_extension("partial");
        std::fs::write(&partial, &address)
            .with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, file).with_context(|| format!("writing {}", file.display()))?;
    }
    println!("rask scheduler at {address}");
    shutdown_signal().await;
    tracing::info!("shutting down");
    handle.shutdown().await;
    if let Some(file) = scheduler_file {
        let _ = std::fs::remove_file(file);
    }
    Ok(())
}

async fn worker(config: rask_worker::WorkerConfig) -> anyhow::Result<()> {
    let handle = rask_worker::start(config).await?;
    println!("rask worker {} serving data at {}", handle.id, handle.address);
    handle.run_until(shutdown_signal()).await?;
    tracing::info!("worker stopped");
    Ok(())
}
