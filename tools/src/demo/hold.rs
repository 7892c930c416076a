//! The demo's hold phase: `smrnet load hold` as a child process, which sets
//! up the connections (spread over several processes when the open-file
//! limit is fixed, as in containers where even root cannot raise it),
//! measures the daemon's RSS while they are all held, closes them, and waits
//! (bounded) for the daemon's table and pending pool to drain. The demo
//! reads its JSON report.
//!
//! Bound: the child is given its own setup, hold and drain bounds and is
//! killed (by its pid) if it outlives their sum plus a margin, or on any
//! early return.

use super::Plan;
use crate::lab::Lab;
use std::io::{self, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the child may wait for the daemon to drain after the close.
const DRAIN_BOUND: Duration = Duration::from_secs(30);
/// Bound on the setup (the child's default `setup_timeout`) plus margin.
const SETUP_BOUND: Duration = Duration::from_secs(330);

/// What the hold did, from the client side and the daemon's.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HoldPhase {
    pub requested: u64,
    pub established: u64,
    pub setup_secs: f64,
    pub setup_per_sec: f64,
    pub connect_p99_us: u64,
    pub rss_before_bytes: Option<u64>,
    pub rss_held_bytes: Option<u64>,
    /// (RSS held - RSS before) / established.
    pub rss_per_conn_bytes: Option<f64>,
    pub table_entries_held: Option<u64>,
    /// Whether the table and the pending pool emptied after the close, and
    /// how long the hold waited for that.
    pub drained: Option<bool>,
    pub drain_secs: Option<f64>,
    pub table_entries_after: Option<u64>,
}

/// The child, killed by its own pid if still running when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub(super) fn run(lab: &Lab, plan: &Plan, stop: &AtomicBool) -> io::Result<HoldPhase> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(&exe);
    cmd.args(["load", "hold", "--json", "--netns", lab.netns().name()])
        .args(["-n", &plan.hold_connections.to_string()])
        .args(["--duration", &format!("{}s", plan.hold_secs)])
        .args(["--drain-timeout", &format!("{}s", DRAIN_BOUND.as_secs())])
        .args(["--metrics", &lab.metrics_url()])
        .args(["--daemon-pid", &lab.pid().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("spawn {}: {e}", exe.display())))?;
    let mut child = ChildGuard(child);
    // Read the pipes on threads so a chatty child never blocks on them.
    let mut stdout = child.0.stdout.take().expect("piped");
    let mut stderr = child.0.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + SETUP_BOUND + Duration::from_secs(plan.hold_secs) + DRAIN_BOUND;
    let status = loop {
        if let Some(status) = child.0.try_wait()? {
            break status;
        }
        // Relaxed: a stop flag polled in a loop.
        if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
            drop(child);
            return Err(io::Error::other(
                "smrnet load hold did not finish in time or was interrupted; it was killed",
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    // A hold that did not drain exits 1 after printing its report: that is a
    // finding for the demo's report, not a failure of the demo.
    let Some(json) = out.lines().rev().find(|l| l.starts_with('{')) else {
        return Err(io::Error::other(format!(
            "smrnet load hold exited with {status} and printed no report: {}",
            err.trim()
        )));
    };
    let v: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| io::Error::other(format!("smrnet load hold's JSON: {e}")))?;
    Ok(parse(&v))
}

/// The fields the demo shows, from `smrnet load hold --json`.
fn parse(v: &serde_json::Value) -> HoldPhase {
    let u = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_u64());
    let f = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_f64());
    let d = v.get("daemon").cloned().unwrap_or_default();
    HoldPhase {
        requested: u(v, "requested").unwrap_or(0),
        established: u(v, "established").unwrap_or(0),
        setup_secs: f(v, "setup_secs").unwrap_or(0.0),
        setup_per_sec: f(v, "setup_per_sec").unwrap_or(0.0),
        connect_p99_us: v
            .get("connect_latency")
            .and_then(|l| u(l, "p99_us"))
            .unwrap_or(0),
        rss_before_bytes: u(&d, "rss_before_bytes"),
        rss_held_bytes: u(&d, "rss_held_bytes"),
        rss_per_conn_bytes: f(&d, "rss_per_conn_bytes"),
        table_entries_held: u(&d, "table_entries_held"),
        drained: d.get("drained").and_then(|x| x.as_bool()),
        drain_secs: f(&d, "drain_secs"),
        table_entries_after: u(&d, "table_entries_after"),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn reads_the_hold_report_fields_it_shows() {
        let v = serde_json::json!({
            "target": "198.18.0.2:7", "requested": 100, "established": 99,
            "setup_secs": 0.5, "setup_per_sec": 198.0,
            "connect_latency": {"p50_us": 10, "p99_us": 900},
            "daemon": {"rss_before_bytes": 1000, "rss_held_bytes": 101000,
                       "rss_per_conn_bytes": 1010.1, "table_entries_held": 99,
                       "drained": false, "drain_secs": 30.0, "table_entries_after": 7}
        });
        let h = parse(&v);
        assert_eq!(
            (h.requested, h.established, h.connect_p99_us),
            (100, 99, 900)
        );
        assert_eq!(h.rss_per_conn_bytes, Some(1010.1));
        assert_eq!((h.drained, h.table_entries_after), (Some(false), Some(7)));
    }
}
