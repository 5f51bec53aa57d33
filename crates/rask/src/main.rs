//! The `rask` command line: `rask scheduler`, `rask worker` (see `rask::cli`), and
//! `rask functions`.
//!
//! ```text
//! rask scheduler [--host 127.0.0.1] [--port 8786] [--scheduler-file F] [--allowed-failures 3]
//!                [--dashboard-address 127.0.0.1:8787|none] [--task-stream-length 100000]
//! rask worker ADDR | --scheduler-file F [--nthreads N] [--name NAME] [--resources GPU=2]
//! ```
//!
//! Both log through `tracing` (set `RUST_LOG`, default `info`) and stop cleanly on SIGINT or
//! SIGTERM.

use clap::{Parser, Subcommand};

/// Workers hold chunks of megabytes: an allocator that keeps freed memory for the next one
/// (glibc's hands large blocks back to the kernel and faults them in again — most of a
/// reduction's time went to the kernel, docs/benchmarks.md, "Arrays"). The memory a worker
/// counts is its results plus a decaying estimate of the rest, so memory the allocator keeps
/// for reuse does not keep a worker paused (`rask_worker::state`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// rask: parallel and distributed computing for Rust, in the spirit of Dask.
#[derive(Parser)]
#[command(name = "rask", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Cluster(rask::cli::ClusterCommand),
    /// List the functions registered in this binary (what its workers can run by name).
    Functions,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Functions) => {
            for name in rask::registry::names() {
                println!("{name}");
            }
            std::process::ExitCode::SUCCESS
        }
        Some(Command::Cluster(command)) => match rask::cli::run(command) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                std::process::ExitCode::FAILURE
            }
        },
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            std::process::ExitCode::SUCCESS
        }
    }
}
