//! Micro-benchmarks. Each one measures a mechanism side by side with its
//! alternatives in one process and one invocation, so every ratio it prints
//! is a command anyone can rerun, not an anecdote.

mod churn;
mod cpu;
mod e2e;
mod forward;
mod harness;
mod path;
mod pcb;
mod pool;
mod read;
mod reclaim;
mod report;
mod stack;
mod syn;

pub use e2e::E2eArgs;
pub use forward::ForwardArgs;
pub use path::PathArgs;
pub use pcb::PcbArgs;
pub use pool::PoolArgs;
pub use read::ReadArgs;
pub use reclaim::ReclaimArgs;
pub use report::RunArgs;
pub use stack::StackArgs;
pub use syn::SynBenchArgs;

use std::io;

/// The `smrnet bench` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// The cost of entering and leaving an empty read section.
    Read(ReadArgs),
    /// Connection-table lookups, read-only and under churn, SMR vs baselines.
    Pcb(PcbArgs),
    /// The cost of an alloc+retire pair from the SMR pool cache.
    Pool(PoolArgs),
    /// Reclamation schemes side by side on one connection-table workload:
    /// read cost, churn, retire-to-reuse time, pending memory, grace periods,
    /// a stalled reader.
    Reclaim(ReclaimArgs),
    /// Complete TCP connections per second through a whole stack in memory.
    Stack(StackArgs),
    /// SYN-ACKs per second through a Stack with a full SYN cache (every
    /// SYN answered with a cookie), in memory, and the cookie's own cost.
    Syn(SynBenchArgs),
    /// The same kernel-socket churn through smrnetd on a TUN device, once per
    /// connection-table backend and SMR mode, each in its own lab (root).
    E2e(E2eArgs),
    /// The daemon's data path against the kernel's TCP over a veth, same
    /// client, same run: one stream to discard and echo, SYN floods with a
    /// legitimate probe, churn, wrk keep-alive (root).
    Path(PathArgs),
    /// smrnetd's `forward` service against haproxy (kernel TCP) in front of
    /// the same HTTP upstream, under wrk, keep-alive and close; `--flood`
    /// adds a SYN flood (root; installs wrk and haproxy when missing).
    Forward(ForwardArgs),
}

impl BenchCommand {
    /// Run the benchmark and print its report on stdout. Fails only when
    /// stdout does.
    pub fn run(&self) -> io::Result<()> {
        match self {
            BenchCommand::Read(args) => read::run(args),
            BenchCommand::Pcb(args) => pcb::run(args),
            BenchCommand::Pool(args) => pool::run(args),
            BenchCommand::Reclaim(args) => reclaim::run(args),
            BenchCommand::Stack(args) => stack::run(args),
            BenchCommand::Syn(args) => syn::run(args),
            BenchCommand::E2e(args) => e2e::run(args),
            BenchCommand::Path(args) => path::run(args),
            BenchCommand::Forward(args) => forward::run(args),
        }
    }
}
