//! rask's benchmarks. Each prints one JSON object per line; `docs/benchmarks.md` records the
//! figures beside Dask's, run in the same session (see `scripts/bench-local.sh`).
//!
//! ```text
//! cargo run --release -p rask-bench -- local --json [--scenarios tree_100k,map_sum_100k] [--repeat 3]
//! ```

mod local;

use clap::{Parser, Subcommand};

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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Local(args) => local::run(&args),
    }
}
