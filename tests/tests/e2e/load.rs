//! `smrnet load` against a lab: churn counts agree with the daemon's, a
//! hold of thousands of connections drains after close (and grows a table
//! started small, which shrinks back), and the kernel comparison cleans up
//! its namespaces.

use crate::names as metric;
use crate::names::{PASSIVE_OPENS, POOL_PENDING, TABLE_BUCKETS, TABLE_GROWS, TABLE_SHRINKS};
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;
use tests::{DAEMON_V4, ECHO_PORT, Lab, Outcome, lab, scrape, smrnet_binary};
use tools::lab::client_addrs_v4;
use tools::load::churn::{self, ChurnOpts};

fn echo() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(DAEMON_V4), ECHO_PORT)
}

/// `smrnet load ARGS` aimed at `lab` (its namespace, metrics and pid);
/// returns stdout parsed as JSON and stderr.
fn smrnet_load(lab: &Lab, args: &[&str]) -> (Value, String) {
    let url = lab.metrics_url();
    let pid = lab.pid().to_string();
    let mut cmd = Command::new(smrnet_binary());
    cmd.arg("load")
        .args(args)
        .args(["--netns", lab.netns().name(), "--metrics", &url])
        .args(["--daemon-pid", &pid, "--json"]);
    let out = cmd.output().expect("run smrnet");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "smrnet load {args:?} failed ({}):\n{stderr}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {out:?}"));
    (json, stderr)
}

/// Every verified transaction was an established connection the daemon
/// counted before it echoed; with no failed or abandoned transaction, no
/// connect the daemon saw went unverified. Nothing else connects to a
/// test's private lab. So the passive-open delta must equal `ok` exactly.
pub fn churn_3s_has_no_errors_and_the_daemon_counts_every_connection() -> Outcome {
    let lab = lab();
    let before = scrape(&lab).sum(PASSIVE_OPENS);
    let mut opts = ChurnOpts::new(echo());
    opts.duration = Duration::from_secs(3);
    opts.concurrency = 32;
    opts.threads = 2;
    opts.source_addrs = client_addrs_v4();
    let r = lab
        .in_netns(|| churn::run(&opts))
        .expect("enter the lab")
        .expect("churn runs");
    let delta = scrape(&lab).sum(PASSIVE_OPENS) - before;
    assert_eq!(r.errors.total(), 0, "{r}");
    assert_eq!(r.ok, r.attempted, "{r}");
    assert!(r.ok >= 300, "fewer than 100 connections a second: {r}");
    assert_eq!(
        delta as u64, r.ok,
        "daemon's passive opens vs client's ok\n{r}"
    );
    Outcome::Passed
}

pub fn hold_3000_over_17_sources_and_2_processes_drains_after_close() -> Outcome {
    let lab = lab();
    let (r, _) = smrnet_load(
        &lab,
        &[
            "hold",
            "--connections",
            "3000",
            "--duration",
            "1s",
            "--keepalive-interval",
            "400ms",
            "--drain-timeout",
            "20s",
            "--processes",
            "2",
        ],
    );
    assert_eq!(r["established"], 3000, "{r:#}");
    assert_eq!(r["source_addrs"], 17, "{r:#}");
    assert_eq!(r["processes"], 2, "{r:#}");
    assert!(r["keepalive_rounds"].as_u64().unwrap() >= 1, "{r:#}");
    assert_eq!(r["keepalive_failures"], 0, "{r:#}");
    assert_eq!(r["open_at_end"], 3000, "{r:#}");
    let d = &r["daemon"];
    assert!(
        d["table_entries_held"].as_u64().unwrap() >= 3000,
        "the daemon's table did not hold the connections: {r:#}"
    );
    assert!(d["rss_per_conn_bytes"].is_number(), "{r:#}");
    assert_eq!(d["drained"], true, "{r:#}");
    assert_eq!(d["pool_pending_after"], 0, "{r:#}");
    // The daemon reports its own memory too.
    let rss = scrape(&lab).sum(metric::PROCESS_RESIDENT_MEMORY_BYTES);
    assert!(rss > 1e6, "resident memory gauge {rss}");
    Outcome::Passed
}

/// The scaled-down form of issue 16's million-connection hold: a daemon
/// whose table starts at its smallest (`--table-size 64`, rounded up to the
/// 256 lock stripes) holds 5000 verified connections, so the table grows
/// online several times; after the close it shrinks back to 256 buckets and
/// the pool drains (idle workers finish the last resize).
pub fn hold_5000_grows_a_table_sized_for_64_and_shrinks_it_back() -> Outcome {
    let lab = tests::lab_with(2, &["--table-size", "64"]);
    let start = scrape(&lab);
    assert_eq!(
        start.sum(TABLE_BUCKETS),
        256.0,
        "the table did not start small"
    );
    assert_eq!(start.sum(TABLE_GROWS), 0.0);
    let (r, _) = smrnet_load(
        &lab,
        &[
            "hold",
            "--connections",
            "5000",
            "--duration",
            "1s",
            "--keepalive-interval",
            "400ms",
            "--drain-timeout",
            "30s",
            "--processes",
            "2",
        ],
    );
    assert_eq!(r["established"], 5000, "{r:#}");
    assert_eq!(r["keepalive_failures"], 0, "{r:#}");
    assert_eq!(r["open_at_end"], 5000, "{r:#}");
    let d = &r["daemon"];
    assert!(
        d["table_entries_held"].as_u64().unwrap() >= 5000,
        "the daemon's table did not hold the connections: {r:#}"
    );
    assert_eq!(d["drained"], true, "{r:#}");
    // The shrink back finishes on idle workers' steps: give them a bounded
    // while (polled every 100 ms, at most 10 s).
    let t0 = std::time::Instant::now();
    let m = loop {
        let m = scrape(&lab);
        if m.sum(TABLE_BUCKETS) == 256.0 && m.sum(POOL_PENDING) == 0.0 {
            break m;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the table did not shrink back to 256 buckets or the pool did not drain: \
             buckets {} pending {} grows {} shrinks {}",
            m.sum(TABLE_BUCKETS),
            m.sum(POOL_PENDING),
            m.sum(TABLE_GROWS),
            m.sum(TABLE_SHRINKS)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // 256 → 8192 for 5000 connections is five doublings (or fewer, larger
    // steps); at least two grows and one shrink whatever the timing.
    assert!(m.sum(TABLE_GROWS) >= 2.0, "grows {}", m.sum(TABLE_GROWS));
    assert!(
        m.sum(TABLE_SHRINKS) >= 1.0,
        "shrinks {}",
        m.sum(TABLE_SHRINKS)
    );
    Outcome::Passed
}

pub fn compare_kernel_prints_both_rates_and_removes_its_namespaces() -> Outcome {
    let lab = lab();
    let (r, stderr) = smrnet_load(
        &lab,
        &[
            "churn",
            "--compare-kernel",
            "--duration",
            "1s",
            "--concurrency",
            "16",
        ],
    );
    for side in ["kernel", "smrnetd"] {
        assert!(r[side]["ok"].as_u64().unwrap() > 0, "{side}: {r:#}");
        assert_eq!(r[side]["errors"]["mismatch"], 0, "{side}: {r:#}");
    }
    assert_eq!(r["kernel"]["target"], "198.19.0.2:7");
    assert!(r["ratio"].as_f64().unwrap() > 0.0, "{r:#}");
    assert_eq!(r["smrnetd"]["daemon"]["agrees"], true, "{r:#}");
    // The client namespace's name is announced on stderr; both it and its
    // server twin must be gone.
    let client = stderr
        .split_whitespace()
        .find(|w| w.starts_with("smrnet-kc-"))
        .map(|w| w.trim_end_matches(')'))
        .unwrap_or_else(|| panic!("no namespace named on stderr:\n{stderr}"));
    let server = client.replace("-client", "-server");
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        !list.contains(client) && !list.contains(&server),
        "{client} or {server} left behind:\n{list}"
    );
    Outcome::Passed
}

pub fn syn_compare_kernel_floods_both_with_one_seed_and_removes_its_namespaces() -> Outcome {
    let lab = lab();
    let out = Command::new(smrnet_binary())
        .args(["load", "syn", "--compare-kernel", "--duration", "1"])
        .args(["--rate", "5000", "--seed", "15", "--json"])
        .args([
            "--netns",
            lab.netns().name(),
            "--metrics",
            &lab.metrics_url(),
        ])
        .output()
        .expect("run smrnet");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "smrnet load syn failed:\n{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out:?}"));
    assert_eq!(r["kernel"]["target"], "198.19.0.2:7");
    assert_eq!(r["smrnetd"]["target"], "198.18.0.2:7");
    for side in ["kernel", "smrnetd"] {
        assert_eq!(r[side]["seed"], 15, "{side}: {r:#}");
        assert!(
            r[side]["flood"]["sent"].as_u64().unwrap() > 0,
            "{side}: {r:#}"
        );
        let u = &r[side]["under_flood"];
        assert!(u["ok"].as_u64().unwrap() > 0, "{side}: {r:#}");
    }
    assert!(
        r["smrnetd"]["daemon"][metric::LISTEN_SYNS]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(
        r["legit_under_flood_ratio"].as_f64().unwrap() > 0.0,
        "{r:#}"
    );
    let client = stderr
        .split_whitespace()
        .find(|w| w.starts_with("smrnet-kc-"))
        .map(|w| w.trim_end_matches(')'))
        .unwrap_or_else(|| panic!("no namespace named on stderr:\n{stderr}"));
    let server = client.replace("-client", "-server");
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        !list.contains(client) && !list.contains(&server),
        "{client} or {server} left behind:\n{list}"
    );
    Outcome::Passed
}
