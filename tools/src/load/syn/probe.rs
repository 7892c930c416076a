//! The legitimate client measured against the flood: a few threads that each
//! connect to the echo service, exchange one byte, close, and go again,
//! from the namespace's real address, for a fixed time. Its success rate and
//! connect latency, without and then with a flood, are what the flood report
//! is about.

use super::flood::enter_netns;
use hdrhistogram::Histogram;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A connect slower than this is a failure. Linux retransmits a SYN after
/// 1 s and again after 3 s, so this allows one retransmission.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on the echo of one byte.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct ProbeOpts {
    pub target: SocketAddr,
    pub duration: Duration,
    pub threads: usize,
    pub netns: Option<String>,
}

/// Connect latency in microseconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Latency {
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProbeReport {
    pub attempts: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Successful connections per second.
    pub rate: f64,
    pub success_ratio: f64,
    pub connect: Latency,
    pub seconds: f64,
}

/// Run the probe to its end; blocks.
pub fn run(opts: &ProbeOpts, stop: &AtomicBool) -> io::Result<ProbeReport> {
    let start = Instant::now();
    let deadline = start + opts.duration;
    let per_thread: Vec<io::Result<(u64, u64, Histogram<u64>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..opts.threads.max(1))
            .map(|_| s.spawn(|| client(opts, deadline, stop)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let mut hist = new_histogram();
    let (mut ok, mut failed) = (0, 0);
    for r in per_thread {
        let (o, f, h) = r?;
        ok += o;
        failed += f;
        hist.add(&h).map_err(io::Error::other)?;
    }
    let attempts = ok + failed;
    Ok(ProbeReport {
        attempts,
        succeeded: ok,
        failed,
        rate: ok as f64 / seconds.max(1e-9),
        success_ratio: if attempts == 0 {
            0.0
        } else {
            ok as f64 / attempts as f64
        },
        connect: Latency {
            p50_us: hist.value_at_quantile(0.5),
            p99_us: hist.value_at_quantile(0.99),
            max_us: hist.max(),
        },
        seconds,
    })
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds are valid")
}

/// One client thread: (succeeded, failed, connect latencies).
fn client(
    opts: &ProbeOpts,
    deadline: Instant,
    stop: &AtomicBool,
) -> io::Result<(u64, u64, Histogram<u64>)> {
    if let Some(ns) = &opts.netns {
        enter_netns(ns)?;
    }
    let mut hist = new_histogram();
    let (mut ok, mut failed) = (0u64, 0u64);
    // Relaxed: a stop request only needs to be seen eventually.
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        match TcpStream::connect_timeout(&opts.target, CONNECT_TIMEOUT) {
            Ok(mut s) => {
                let us = t0.elapsed().as_micros().clamp(1, 60_000_000) as u64;
                if echo_one_byte(&mut s).is_ok() {
                    ok += 1;
                    let _ = hist.record(us);
                } else {
                    failed += 1;
                }
            }
            Err(_) => failed += 1,
        }
    }
    Ok((ok, failed, hist))
}

fn echo_one_byte(s: &mut TcpStream) -> io::Result<()> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    s.write_all(b"s")?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)?;
    if b != *b"s" {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "echo mismatch"));
    }
    // Close with RST: a closed loop of thousands of connections a second
    // would otherwise fill the client's TIME-WAIT and exhaust its ports.
    rustix::net::sockopt::set_socket_linger(&*s, Some(Duration::ZERO))?;
    Ok(())
}
