use clap::{Parser, Subcommand};
use std::io;
use std::process::ExitCode;
use tools::BenchCommand;
use tools::demo::DemoArgs;
use tools::lab::LabCommand;
use tools::load::LoadCommand;

/// Benchmarks and tools for smrnet, a userspace TCP/IP stack whose
/// connection table is read lock-free under SMR.
#[derive(Debug, Parser)]
#[command(name = "smrnet", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Micro-benchmarks, every alternative measured side by side in one run.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// A network namespace with smrnetd on a TUN device inside it (needs root).
    #[command(subcommand)]
    Lab(LabCommand),
    /// Load generators with kernel sockets: churn, hold, SYN flood.
    #[command(subcommand)]
    Load(LoadCommand),
    /// One command, as root, that shows what smrnet is for in about a
    /// minute: a lab, churn, a hold, a SYN flood, and a report folder.
    Demo(DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::try_parse().unwrap_or_else(|e| tools::usage::exit("smrnet", e));
    let result = match cli.command {
        Command::Bench(bench) => bench.run(),
        Command::Lab(lab) => lab.run(),
        Command::Load(load) => load.run(),
        Command::Demo(demo) => demo.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `smrnet ... | head` is not a failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        // A value the parser accepted but the command refused: a usage error.
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            eprintln!("smrnet: {e}");
            ExitCode::from(tools::usage::EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("smrnet: {e}");
            ExitCode::FAILURE
        }
    }
}
