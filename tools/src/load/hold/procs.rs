//! A hold spread over several processes, for when one process may not
//! open enough descriptors (RLIMIT_NOFILE's hard limit is fixed without
//! CAP_SYS_RESOURCE, even for root in a container).
//!
//! The parent starts `smrnet load hold --worker` children, each holding a
//! share of the connections. A child prints one JSON line per phase on
//! stdout: `ready` (set up), `held` (hold over), `closed` (after the parent
//! wrote `close` on its stdin, or closed it). The parent measures the daemon
//! once every child is ready, tells them all to close once every one has
//! held, and merges their statistics.
//!
//! Bounds: each phase is awaited with a deadline; a child that misses one,
//! or dies, fails the hold, and every child still running is killed when the
//! [`Children`] guard drops.

use super::{HoldOpts, HoldStats};
use crate::load::cli::HoldArgs;
use crate::load::latency::{Latencies, LatencySummary};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// At most this many holding processes.
pub const MAX_PROCS: usize = 256;

#[derive(Debug, Serialize, Deserialize)]
struct Line {
    phase: String,
    stats: HoldStats,
    /// `stats.connect_histogram` as `(µs, count)` pairs.
    #[serde(default)]
    connect_latency_us: Vec<(u64, u64)>,
}

impl Line {
    fn new(phase: &str, stats: &HoldStats) -> Line {
        Line {
            phase: phase.to_string(),
            stats: stats.clone(),
            connect_latency_us: stats.connect_histogram.counts(),
        }
    }

    /// The statistics with their histogram restored.
    fn into_stats(self) -> HoldStats {
        let mut stats = self.stats;
        stats.connect_histogram = Latencies::from_counts(&self.connect_latency_us);
        stats
    }
}

/// Print one phase line (a child's side of the protocol).
pub(super) fn emit(phase: &str, stats: &HoldStats) -> io::Result<()> {
    let line = Line::new(phase, stats);
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "{}",
        serde_json::to_string(&line).map_err(io::Error::other)?
    )?;
    out.flush()
}

/// Block until the parent says close (a line, or end of input).
pub(super) fn wait_for_close() {
    let mut line = String::new();
    let _ = io::stdin().read_line(&mut line);
}

/// The children, killed and reaped on drop if still running.
struct Children {
    procs: Vec<Child>,
    stdins: Vec<Option<ChildStdin>>,
}

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.procs {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// The flags a child needs: the parent's hold, with `share` connections.
pub(crate) fn child_args(
    args: &HoldArgs,
    opts: &HoldOpts,
    share: usize,
    first: u64,
    procs: usize,
) -> Vec<String> {
    let ms = |d: Duration| format!("{}ms", d.as_millis().max(1));
    let mut a: Vec<String> = vec![
        "load".into(),
        "hold".into(),
        "--worker".into(),
        "--no-metrics".into(),
        "--target".into(),
        opts.target.to_string(),
        "--connections".into(),
        share.to_string(),
        "--setup-concurrency".into(),
        (opts.setup_concurrency / procs).max(1).to_string(),
        "--duration".into(),
        ms(opts.duration),
        "--connect-timeout".into(),
        ms(opts.connect_timeout),
        // The whole hold's bound, not one share's: every child paces
        // against the same machine-wide orphan count.
        "--close-timeout".into(),
        ms(opts.close_timeout),
        "--first-index".into(),
        first.to_string(),
        // All children may look at the orphan count at once: each closes
        // its share of the limit at a time.
        "--close-batch".into(),
        super::close::batch_for(procs).to_string(),
    ];
    if let Some(k) = opts.keepalive_interval {
        a.extend(["--keepalive-interval".into(), ms(k)]);
    }
    if !opts.source_addrs.is_empty() {
        let list: Vec<String> = opts.source_addrs.iter().map(|s| s.to_string()).collect();
        a.extend(["--source-addrs".into(), list.join(",")]);
    }
    if let Some(ns) = &args.common.netns {
        a.extend(["--netns".into(), ns.clone()]);
    }
    for net in &args.common.allow_network {
        a.extend(["--allow-network".into(), net.to_string()]);
    }
    a
}

/// Split `total` into `procs` shares differing by at most one.
pub(super) fn shares(total: usize, procs: usize) -> Vec<usize> {
    (0..procs)
        .map(|i| total / procs + usize::from(i < total % procs))
        .collect()
}

/// Run the hold in `procs` children; `on_ready` runs once all are set up
/// (and before any closes). Returns the merged statistics.
pub(super) fn run(
    args: &HoldArgs,
    opts: &HoldOpts,
    procs: usize,
    on_ready: impl FnOnce(),
) -> io::Result<HoldStats> {
    let exe = std::env::current_exe()?;
    let (tx, rx) = mpsc::channel::<(usize, io::Result<Line>)>();
    let mut children = Children {
        procs: Vec::new(),
        stdins: Vec::new(),
    };
    let mut first = opts.first_index;
    for (i, share) in shares(opts.connections, procs).into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .args(child_args(args, opts, share, first, procs))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("start holding process {i}: {e}")))?;
        let stdout = child.stdout.take().expect("piped stdout");
        children.stdins.push(child.stdin.take());
        children.procs.push(child);
        first += share as u64;
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let parsed = line.and_then(|l| {
                    serde_json::from_str::<Line>(&l).map_err(|e| {
                        io::Error::new(io::ErrorKind::InvalidData, format!("{e}: {l}"))
                    })
                });
                if tx.send((i, parsed)).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let mut inbox = Inbox {
        rx,
        pending: (0..procs).map(|_| VecDeque::new()).collect(),
    };
    let setup_bound = opts.setup_timeout + opts.connect_timeout + Duration::from_secs(10);
    let ready = inbox.collect("ready", setup_bound)?;
    on_ready();
    let hold_bound = opts.duration + opts.io_timeout * 2 + Duration::from_secs(10);
    let held = inbox.collect("held", hold_bound)?;
    for stdin in &mut children.stdins {
        if let Some(mut s) = stdin.take() {
            let _ = s.write_all(b"close\n");
        }
    }
    let closed = inbox.collect("closed", opts.close_timeout + Duration::from_secs(30))?;
    for (i, c) in children.procs.iter_mut().enumerate() {
        let status = c.wait()?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "holding process {i} exited with {status}"
            )));
        }
    }
    let mut merged = merge(&ready);
    let held_merged = merge(&held);
    merged.held_secs = held_merged.held_secs;
    merged.keepalive_rounds = held_merged.keepalive_rounds;
    merged.keepalive_failures = held_merged.keepalive_failures;
    merged.open_at_end = held_merged.open_at_end;
    for c in &closed {
        merged.close_secs = merged.close_secs.max(c.close_secs);
        merged.close_waits += c.close_waits;
        merged.close_unpaced += c.close_unpaced;
    }
    Ok(merged)
}

/// Lines from the children, kept per child until their phase is awaited:
/// a fast child may report `held` before a slow one is `ready`.
struct Inbox {
    rx: mpsc::Receiver<(usize, io::Result<Line>)>,
    pending: Vec<VecDeque<Line>>,
}

impl Inbox {
    /// One `phase` line from each child, within `bound`.
    fn collect(&mut self, phase: &str, bound: Duration) -> io::Result<Vec<HoldStats>> {
        let deadline = Instant::now() + bound;
        let mut got: Vec<Option<HoldStats>> = vec![None; self.pending.len()];
        loop {
            for (i, queue) in self.pending.iter_mut().enumerate() {
                if got[i].is_some() {
                    continue;
                }
                if let Some(line) = queue.pop_front() {
                    if line.phase != phase {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "holding process {i} said `{}` when `{phase}` was due",
                                line.phase
                            ),
                        ));
                    }
                    got[i] = Some(line.into_stats());
                }
            }
            if got.iter().all(Option::is_some) {
                return Ok(got.into_iter().flatten().collect());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let (i, line) = self.rx.recv_timeout(left).map_err(|_| {
                let missing = got.iter().filter(|g| g.is_none()).count();
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{missing} holding process(es) did not report `{phase}` within {bound:?}"
                    ),
                )
            })?;
            self.pending[i].push_back(line?);
        }
    }
}

/// Sum the children's counts; times are the slowest child's, rates the
/// total over that time, and latency percentiles those of the children's
/// histograms added together. A part without its histogram (its count
/// disagrees with its summary's) makes them the worst child's instead, a
/// bound rather than the distribution.
pub(super) fn merge(parts: &[HoldStats]) -> HoldStats {
    let mut m = HoldStats::default();
    let mut lat = LatencySummary::default();
    let mut weighted_mean = 0.0;
    let mut histogram = Latencies::new();
    let mut complete = true;
    for p in parts {
        histogram.add(&p.connect_histogram);
        complete &= p.connect_histogram.count() == p.connect_latency.count;
        m.requested += p.requested;
        m.established += p.established;
        m.setup_errors += p.setup_errors;
        m.setup_secs = m.setup_secs.max(p.setup_secs);
        m.held_secs = m.held_secs.max(p.held_secs);
        m.keepalive_rounds = m.keepalive_rounds.max(p.keepalive_rounds);
        m.keepalive_failures += p.keepalive_failures;
        m.open_at_end += p.open_at_end;
        m.port_fallbacks += p.port_fallbacks;
        let c = &p.connect_latency;
        lat.count += c.count;
        weighted_mean += c.mean_us * c.count as f64;
        lat.p50_us = lat.p50_us.max(c.p50_us);
        lat.p90_us = lat.p90_us.max(c.p90_us);
        lat.p99_us = lat.p99_us.max(c.p99_us);
        lat.p999_us = lat.p999_us.max(c.p999_us);
        lat.max_us = lat.max_us.max(c.max_us);
    }
    if lat.count > 0 {
        lat.mean_us = weighted_mean / lat.count as f64;
    }
    m.connect_latency = if complete { histogram.summary() } else { lat };
    m.connect_histogram = histogram;
    m.setup_per_sec = m.established as f64 / m.setup_secs.max(1e-9);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        assert_eq!(
            shares(100_000, 6),
            vec![16_667, 16_667, 16_667, 16_667, 16_666, 16_666]
        );
        assert_eq!(shares(5, 5), vec![1; 5]);
        for (n, p) in [(1, 1), (7, 3), (100_001, 7)] {
            let s = shares(n, p);
            assert_eq!(s.iter().sum::<usize>(), n);
            assert!(s.iter().max().unwrap() - s.iter().min().unwrap() <= 1);
        }
    }

    fn part(latencies_us: &[(u64, u64)]) -> HoldStats {
        let connect_histogram = Latencies::from_counts(latencies_us);
        HoldStats {
            connect_latency: connect_histogram.summary(),
            connect_histogram,
            ..HoldStats::default()
        }
    }

    /// One fast child and one slow one: the merged median is the fast
    /// majority's, not the slow child's (which taking the worst child's
    /// percentiles would report), and p99 is the slow tail's.
    #[test]
    fn merge_adds_the_children_s_histograms() {
        let fast = part(&[(100, 90)]);
        let slow = part(&[(10_000, 10)]);
        assert_eq!(slow.connect_latency.p50_us, 10_007);
        let m = merge(&[fast, slow]);
        assert_eq!(m.connect_latency.count, 100);
        assert_eq!(m.connect_latency.p50_us, 100);
        assert_eq!(m.connect_latency.p90_us, 100);
        assert!(
            m.connect_latency.p99_us >= 10_000,
            "{:?}",
            m.connect_latency
        );
        assert_eq!(m.connect_histogram.count(), 100);
    }

    /// The histogram crosses the pipe: a child's phase line parses back to
    /// the same distribution.
    #[test]
    fn a_phase_line_carries_the_histogram() {
        let stats = part(&[(3, 1), (150, 40), (2_000_000, 2)]);
        let json = serde_json::to_string(&Line::new("ready", &stats)).unwrap();
        let back = serde_json::from_str::<Line>(&json).unwrap().into_stats();
        assert_eq!(back.connect_histogram.summary(), stats.connect_latency);
        assert_eq!(back.connect_latency, stats.connect_latency);
    }

    #[test]
    fn merge_sums_counts_and_takes_the_slowest_time_and_worst_latency() {
        let mut a = HoldStats {
            requested: 10,
            established: 9,
            setup_secs: 1.0,
            open_at_end: 9,
            ..HoldStats::default()
        };
        a.setup_errors.timed_out = 1;
        a.connect_latency = LatencySummary {
            count: 9,
            mean_us: 100.0,
            p50_us: 100,
            p90_us: 200,
            p99_us: 300,
            p999_us: 300,
            max_us: 300,
        };
        let mut b = a.clone();
        b.setup_secs = 2.0;
        b.connect_latency.p99_us = 900;
        b.connect_latency.mean_us = 300.0;
        let m = merge(&[a, b]);
        assert_eq!((m.requested, m.established, m.open_at_end), (20, 18, 18));
        assert_eq!(m.setup_errors.timed_out, 2);
        assert_eq!(m.setup_secs, 2.0);
        assert_eq!(m.setup_per_sec, 9.0);
        assert_eq!(m.connect_latency.p99_us, 900);
        assert_eq!(m.connect_latency.count, 18);
        assert_eq!(m.connect_latency.mean_us, 200.0);
    }
}
