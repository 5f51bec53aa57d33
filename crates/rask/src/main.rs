//! The `rask` command line: for now its version, help and the registered functions; the
//! cluster commands (`rask scheduler`, `rask worker`) come with the distributed runtime.

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
    /// List the functions registered in this binary (what its workers could run by name).
    Functions,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Functions) => {
            for name in rask::registry::names() {
                println!("{name}");
            }
        }
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
        }
    }
    Ok(())
}
