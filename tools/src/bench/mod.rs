//! Micro-benchmarks. Each one measures a mechanism side by side with its
//! alternatives in one process and one invocation, so every ratio it prints
//! is a command anyone can rerun, not an anecdote.

mod harness;
mod read;

pub use read::ReadArgs;

use std::io;

/// The `smrnet bench` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    Read(ReadArgs),
}

impl BenchCommand {
    /// Run the benchmark and print its report on stdout. Fails only when
    /// stdout does.
    pub fn run(&self) -> io::Result<()> {
        match self {
            BenchCommand::Read(args) => read::run(args),
        }
    }
}
