//! `smrnet load`: load generators that drive a daemon (or any echo server
//! on loopback or in the lab) with kernel sockets and report what both
//! sides saw.
//!
//! - [`churn`]: connect, echo, verify, close, as fast as allowed.
//! - [`hold`]: open many connections and keep them open.
//! - [`compare`]: the same churn against the kernel's TCP, for a baseline.
//! - [`syn`]: a spoofed SYN flood from a raw socket, with a legit churn probe.
//!
//! Every generator checks its target and source addresses against
//! [`safety`] first and is bounded in time (its duration plus a drain
//! timeout). Each runs in the calling thread's network namespace;
//! `--netns NAME` runs it in another one ([`netns`]) while the daemon's
//! metrics are read from the daemon's own namespace ([`scrape`]).

pub mod churn;
mod cli;
pub mod compare;
pub mod hold;
pub mod latency;
pub mod netns;
pub mod safety;
pub mod scrape;
mod sockopt;
pub mod source;
pub mod syn;

pub(crate) use cli::stop_on_signal;
pub use cli::{ChurnArgs, CommonArgs, HoldArgs, LoadCommand, parse_duration};
