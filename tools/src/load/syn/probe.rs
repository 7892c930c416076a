//! The legitimate client measured against the flood: the churn generator
//! ([`crate::load::churn`]) in the flooded namespace, closed loop with a few
//! slots, each transaction connect + echo + verify + close. Its success
//! ratio, rate and connect latency without and then with the flood are what
//! the flood report is about.

use crate::load::churn::{self, ChurnOpts, ChurnReport, Close};
use crate::load::netns;
use crate::load::safety::Cidr;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// A connect slower than this is a failure. Linux retransmits a SYN after
/// 1 s and again after 3 s, so this allows one retransmission.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct ProbeOpts {
    pub target: SocketAddr,
    pub duration: Duration,
    /// Connections in flight at once (closed loop).
    pub concurrency: usize,
    pub netns: Option<String>,
    pub allowed: Vec<Cidr>,
}

impl ProbeOpts {
    fn churn(&self) -> ChurnOpts {
        let mut c = ChurnOpts::new(self.target);
        c.concurrency = self.concurrency;
        c.duration = self.duration;
        c.request_bytes = 16;
        c.connect_timeout = CONNECT_TIMEOUT;
        c.io_timeout = CONNECT_TIMEOUT;
        c.drain_timeout = CONNECT_TIMEOUT;
        // RST on close: thousands of connections a second would otherwise
        // fill the client's TIME-WAIT and exhaust its ports in one phase.
        c.close = Close::Rst;
        // One runtime thread: the probe must not take the CPU the daemon
        // and the flood need on a small machine.
        c.threads = 1;
        c.allowed_networks = self.allowed.clone();
        c
    }
}

/// Run one probe phase to its end (or `stop`) in `opts.netns`; blocks.
pub fn run(opts: &ProbeOpts, stop: &AtomicBool) -> io::Result<ChurnReport> {
    let churn = opts.churn();
    netns::run_in(opts.netns.as_deref(), || churn::run_until(&churn, stop))?
}

/// Transactions that succeeded, of those started (0 when none started).
pub fn success_ratio(r: &ChurnReport) -> f64 {
    if r.attempted == 0 {
        0.0
    } else {
        r.ok as f64 / r.attempted as f64
    }
}
