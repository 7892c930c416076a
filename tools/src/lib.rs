//! The `smrnet` command: benchmarks now; load generators, the network lab and
//! the demo as they arrive. The binary only parses arguments and hands each
//! subcommand to the module that owns it.

mod bench;
pub mod demo;
pub mod lab;
pub mod load;

pub use bench::{BenchCommand, PcbArgs, PoolArgs, ReadArgs, RunArgs};
pub use load::LoadCommand;
/// Command-line errors as a person reads them; shared with `smrnetd`, which
/// owns it because the daemon must not depend on this crate.
pub use smrnetd::usage;
