//! The demo's hold phase. A process can hold only as many kernel sockets as
//! its open-file limit allows, and a container may forbid raising the hard
//! limit even to root; so when the connections do not fit one process, the
//! hold is split over child `smrnet load hold` processes (same namespace,
//! each within the limit), and the daemon is measured while all of them hold.
//!
//! Bounds: children are waited for at most their setup bound plus their hold
//! plus a margin, then killed (by their own pid); the peak poll ends when the
//! table is full, every child has exited, or that deadline passes.

use super::Plan;
use crate::lab::Lab;
use crate::load::hold::{self, HoldOpts, Holder};
use crate::load::netns;
use crate::load::syn::Scrape;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Descriptors a process keeps for everything but the held sockets.
const SPARE_FDS: u64 = 1024;
/// How long each child holds after its setup: long enough for the others
/// to finish theirs and for the demo to measure.
const CHILD_HOLD: Duration = Duration::from_secs(6);
/// Bound on the wait for the daemon to finish closing after the hold.
const DRAIN_BOUND: Duration = Duration::from_secs(30);
/// Bound on each child's setup.
const SETUP_BOUND: Duration = Duration::from_secs(120);

/// What the hold did, from the client side and the daemon's.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HoldPhase {
    pub requested: usize,
    pub established: u64,
    /// Client processes the hold was split over.
    pub processes: usize,
    pub setup_secs: f64,
    pub setup_per_sec: f64,
    /// Worst connect-latency p99 of the processes.
    pub connect_p99_us: u64,
    pub rss_before_bytes: u64,
    pub rss_held_bytes: u64,
    /// (RSS held - RSS before) / connections in the daemon's table then.
    pub rss_per_conn_bytes: Option<f64>,
    pub table_entries_held: Option<f64>,
    pub pool_live_bytes_held: Option<f64>,
    /// Whether the table and the pending pool emptied after the close, and
    /// how long the demo waited for that.
    pub drained: bool,
    pub drain_secs: f64,
}

/// How many connections one process can hold: raise the soft limit as far
/// as the hard limit allows.
fn per_process_capacity(want: usize) -> u64 {
    if hold::raise_nofile(want).is_ok() {
        return want as u64;
    }
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let hard = lim.maximum.unwrap_or(u64::MAX);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        },
    );
    hard.saturating_sub(SPARE_FDS).max(1)
}

pub(super) fn run(
    lab: &Lab,
    plan: &Plan,
    echo: SocketAddr,
    stop: &AtomicBool,
) -> io::Result<HoldPhase> {
    let n = plan.hold_connections;
    let cap = per_process_capacity(n);
    let rss_before = hold::rss_bytes(lab.pid())?;
    let mut phase = HoldPhase {
        requested: n,
        rss_before_bytes: rss_before,
        ..HoldPhase::default()
    };
    let table_before = Scrape::fetch(&lab.metrics_url())?
        .get("smrnet_table_entries")
        .unwrap_or(0.0);
    let held = if n as u64 <= cap {
        in_process(lab, plan, echo, stop, &mut phase)?
    } else {
        children(lab, n, cap, stop, &mut phase)?
    };
    phase.table_entries_held = held.get("smrnet_table_entries");
    phase.pool_live_bytes_held = held.get("smrnet_pool_live_bytes");
    let conns = phase.table_entries_held.map(|t| t - table_before);
    if let Some(c) = conns.filter(|c| *c > 0.0) {
        phase.rss_per_conn_bytes = Some((phase.rss_held_bytes as f64 - rss_before as f64) / c);
    }
    // The next phase measures a baseline: let the daemon finish closing
    // first (bounded), and say how long that took.
    let t0 = Instant::now();
    loop {
        let m = Scrape::fetch(&lab.metrics_url())?;
        let table = m.get("smrnet_table_entries").unwrap_or(f64::MAX);
        let pending = m.get("smrnet_pool_pending_objects").unwrap_or(f64::MAX);
        // Relaxed: a stop flag polled in a loop.
        if (table <= table_before && pending == 0.0)
            || t0.elapsed() >= DRAIN_BOUND
            || stop.load(Ordering::Relaxed)
        {
            phase.drained = table <= table_before && pending == 0.0;
            phase.drain_secs = t0.elapsed().as_secs_f64();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(phase)
}

/// Hold in this process; returns the scrape taken while holding.
fn in_process(
    lab: &Lab,
    plan: &Plan,
    echo: SocketAddr,
    stop: &AtomicBool,
    phase: &mut HoldPhase,
) -> io::Result<Scrape> {
    let mut h = HoldOpts::new(echo);
    h.connections = plan.hold_connections;
    h.duration = Duration::from_secs(plan.hold_secs);
    h.source_addrs = crate::lab::client_addrs_v4();
    h.threads = 1;
    h.setup_timeout = SETUP_BOUND;
    let ns = lab.netns().name().to_string();
    let mut holder = netns::run_in(Some(&ns), || Holder::open(&h, stop))??;
    phase.rss_held_bytes = hold::rss_bytes(lab.pid())?;
    let held = Scrape::fetch(&lab.metrics_url())?;
    holder.hold(stop);
    let stats = holder.close();
    phase.processes = 1;
    phase.established = stats.established;
    phase.setup_secs = stats.setup_secs;
    phase.setup_per_sec = stats.setup_per_sec;
    phase.connect_p99_us = stats.connect_latency.p99_us;
    Ok(held)
}

/// The child processes, killed (each by its own pid) if still running when
/// dropped, so no path leaves one behind.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Hold over `ceil(n / cap)` child processes; returns the scrape taken at
/// the daemon's peak.
fn children(
    lab: &Lab,
    n: usize,
    cap: u64,
    stop: &AtomicBool,
    phase: &mut HoldPhase,
) -> io::Result<Scrape> {
    let k = n.div_ceil(cap as usize);
    let exe = std::env::current_exe()?;
    let mut kids = Children(Vec::with_capacity(k));
    let t0 = Instant::now();
    for i in 0..k {
        let share = n / k + usize::from(i < n % k);
        let child = Command::new(&exe)
            .args(["load", "hold", "--no-metrics", "--json", "--netns"])
            .arg(lab.netns().name())
            .args(["-n", &share.to_string()])
            .args(["--duration", &format!("{}s", CHILD_HOLD.as_secs())])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("spawn {}: {e}", exe.display())))?;
        kids.0.push(child);
    }
    let deadline = t0 + SETUP_BOUND + CHILD_HOLD + Duration::from_secs(10);
    // Poll the daemon until its table holds them all (or the children end).
    let mut best: Option<(f64, u64, Scrape)> = None;
    loop {
        // Relaxed: a stop flag polled in a loop.
        if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
            break;
        }
        let m = Scrape::fetch(&lab.metrics_url())?;
        let estab = m.get("smrnet_tcp_curr_estab").unwrap_or(0.0);
        if best.as_ref().is_none_or(|(b, _, _)| estab > *b) {
            let rss = hold::rss_bytes(lab.pid())?;
            best = Some((estab, rss, m));
        }
        let all_exited = kids
            .0
            .iter_mut()
            .all(|c| matches!(c.try_wait(), Ok(Some(_))));
        if estab >= n as f64 || all_exited {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, rss, held) = best.ok_or_else(|| io::Error::other("no scrape while holding"))?;
    phase.rss_held_bytes = rss;
    phase.processes = k;
    for child in &mut kids.0 {
        let report = wait_json(child, deadline)?;
        let num = |k: &str| report.get(k).and_then(|v| v.as_f64()).unwrap_or(0.0);
        phase.established += num("established") as u64;
        phase.setup_secs = phase.setup_secs.max(num("setup_secs"));
        let p99 = report
            .get("connect_latency")
            .and_then(|l| l.get("p99_us"))
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        phase.connect_p99_us = phase.connect_p99_us.max(p99);
    }
    if phase.setup_secs > 0.0 {
        phase.setup_per_sec = phase.established as f64 / phase.setup_secs;
    }
    Ok(held)
}

/// Wait (bounded) for a child and parse the JSON report it printed.
fn wait_json(child: &mut Child, deadline: Instant) -> io::Result<serde_json::Value> {
    loop {
        if let Some(status) = child.try_wait()? {
            let mut out = String::new();
            let mut err = String::new();
            if let Some(mut s) = child.stdout.take() {
                s.read_to_string(&mut out)?;
            }
            if let Some(mut s) = child.stderr.take() {
                s.read_to_string(&mut err)?;
            }
            if !status.success() {
                return Err(io::Error::other(format!(
                    "smrnet load hold exited with {status}: {}",
                    err.trim()
                )));
            }
            return serde_json::from_str(out.trim())
                .map_err(|e| io::Error::other(format!("smrnet load hold printed no JSON: {e}")));
        }
        if Instant::now() >= deadline {
            return Err(io::Error::other("smrnet load hold did not finish in time"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
