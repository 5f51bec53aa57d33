//! rask's benchmarks. Each prints one JSON object per line; `docs/benchmarks.md` records the
//! figures beside Dask's, run in the same session (see `scripts/bench-local.sh`).
//!
//! ```text
//! cargo run --release -p rask-bench -- local --json [--scenarios tree_100k,map_sum_100k] [--repeat 3]
//! cargo run --release -p rask-bench -- distributed --json [--workers 2] [--threads 1]
//! cargo run --release -p rask-bench -- taxi --data DIR --rows-per-file N [--workers W] --json
//! ```

mod array;
mod distributed;
mod graphs;
mod local;
mod taxi;
mod timing;

use clap::{Parser, Subcommand};

/// glibc's allocator hands every large freed block back to the kernel, and the next one of the
/// same size faults its pages in again: with array chunks of megabytes, most of a reduction's
/// time went to the kernel (docs/benchmarks.md, "Arrays").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// rask benchmarks: figures, not tests.
#[derive(Parser)]
#[command(name = "rask-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The local scheduler and the graph core: tasks per second, graph building and lowering.
    Local(local::LocalArgs),
    /// The distributed runtime on loopback: round trips, tasks per second, scheduler CPU.
    Distributed(distributed::DistributedArgs),
    /// The NYC-taxi analysis on rask (local and cluster) and on plain Polars.
    Taxi(taxi::TaxiArgs),
    /// The image-stack walkthrough and array kernels on rask (local and cluster).
    Array(array::ArrayArgs),
}

fn main() -> anyhow::Result<()> {
    // `rask-bench scheduler` / `rask-bench worker`: the distributed benchmark starts its
    // cluster from this same binary, so the workers know its functions.
    if let Some(exit) = rask::cli::cluster_main() {
        std::process::exit(exit);
    }
    match Cli::parse().command {
        Command::Local(args) => local::run(&args),
        Command::Distributed(args) => distributed::run(&args),
        Command::Taxi(args) => taxi::run(&args),
        Command::Array(args) => array::run(&args),
    }
}
