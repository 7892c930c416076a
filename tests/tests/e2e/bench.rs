//! `smrnet bench e2e` (the reclamation study's end-to-end variant) runs each
//! configuration in its own lab and reports all of them: every row present,
//! every transaction verified, and the daemon counted exactly the
//! connections the client completed (so each row measured its own daemon).

use std::process::Command;
use std::time::{Duration, Instant};
use tests::{Outcome, daemon_binary, smrnet_binary};

const CONFIGS: [&str; 6] = [
    "smr",
    "smr-lazy",
    "smr-deferred",
    "dashmap",
    "rwlock",
    "papaya",
];
/// Six labs of ~3 s each; far beyond a healthy run.
const BUDGET: Duration = Duration::from_secs(120);

pub fn bench_e2e_reports_every_backend_and_mode_with_matching_daemon_counts() -> Outcome {
    let start = Instant::now();
    let out = Command::new(smrnet_binary())
        .args(["bench", "e2e", "--seconds", "1", "--runs", "1"])
        .args(["--concurrency", "16", "--json", "--daemon"])
        .arg(daemon_binary())
        .output()
        .expect("run smrnet bench e2e");
    assert!(
        out.status.success(),
        "bench e2e failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("bench e2e --json prints one JSON object");
    let rows = report["rows"].as_array().expect("rows");
    let names: Vec<&str> = rows.iter().filter_map(|r| r["config"].as_str()).collect();
    assert_eq!(names, CONFIGS, "every configuration, in order");
    for r in rows {
        let name = &r["config"];
        let ok = r["ok"].as_u64().expect("ok");
        assert!(ok > 0, "{name}: no connection completed");
        assert_eq!(r["errors"].as_u64(), Some(0), "{name}: {r}");
        // Every verified echo needs the daemon to have completed the
        // handshake first, and nothing else connects to this lab during
        // the measured run.
        assert_eq!(
            r["daemon_passive_opens"].as_u64(),
            Some(ok),
            "{name}: the daemon's passive opens differ from the client's count: {r}"
        );
        assert!(
            r["daemon_cpu_us_per_conn"]
                .as_f64()
                .is_some_and(|c| c > 0.0),
            "{name}: no daemon CPU measured: {r}"
        );
    }
    assert_eq!(rows[0]["conns_per_sec_vs_smr"].as_f64(), Some(1.0));
    assert!(start.elapsed() < BUDGET, "took {:?}", start.elapsed());
    Outcome::Passed
}

/// A tiny `bench path`: every row on both sides with a nonzero figure,
/// valid JSON, and every namespace it announced gone afterwards.
pub fn bench_path_tiny_run_reports_every_row_on_both_sides_and_removes_its_namespaces() -> Outcome {
    let start = Instant::now();
    let out = Command::new(smrnet_binary())
        .args(["bench", "path", "--json", "--runs", "1"])
        .args([
            "--bytes",
            "64MiB",
            "--echo-bytes",
            "32MiB",
            "--stream-timeout",
            "30",
        ])
        .args([
            "--syn-rates",
            "2000,unlimited",
            "--syn-seconds",
            "1",
            "--seed",
            "15",
        ])
        .args(["--churn-seconds", "1", "--churn-concurrency", "8"])
        .args(["--wrk-seconds", "1", "--daemon"])
        .arg(daemon_binary())
        .output()
        .expect("run smrnet bench path");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "bench path failed: {}\n{stderr}",
        out.status
    );
    let r: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("bench path --json prints one JSON object");
    let rows = r["rows"].as_array().expect("rows");
    let names: Vec<&str> = rows.iter().filter_map(|x| x["row"].as_str()).collect();
    let wrk_skipped = r["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .any(|s| s["row"] == "wrk");
    let mut want = vec![
        "stream-discard",
        "stream-echo",
        "syn-2000",
        "syn-unlimited",
        "churn",
    ];
    if !wrk_skipped {
        want.push("wrk");
    }
    assert_eq!(names, want, "every row, in order: {r:#}");
    for row in rows {
        let name = &row["row"];
        for side in ["kernel", "smrnetd"] {
            assert!(
                row[side].as_f64().is_some_and(|v| v > 0.0),
                "{name} {side}: no figure: {row:#}"
            );
        }
        assert!(row["ratio"].as_f64().is_some_and(|v| v > 0.0), "{row:#}");
    }
    let figure = |row: usize, side: &str, name: &str| {
        rows[row][format!("{side}_figures")][name]
            .as_f64()
            .unwrap_or_else(|| panic!("{side} {name} missing: {:#}", rows[row]))
    };
    for i in 0..2 {
        assert!(figure(i, "smrnetd", "daemon_cpu_s_per_gb") > 0.0);
        assert!(figure(i, "kernel", "machine_cpu_s_per_gb") > 0.0);
    }
    for i in 2..4 {
        for side in ["kernel", "smrnetd"] {
            assert!(figure(i, side, "flood_syn_per_sec") > 0.0);
            assert!(figure(i, side, "success_pct") > 0.0);
        }
        assert!(figure(i, "smrnetd", "syn_acks_sent") > 0.0);
    }
    assert_eq!(figure(4, "kernel", "errors"), 0.0);
    assert_eq!(figure(4, "smrnetd", "errors"), 0.0);
    // Every namespace the bench announced (labs and kernel pairs) is gone.
    let announced: Vec<&str> = stderr
        .split_whitespace()
        .filter(|w| w.starts_with("smrnet-kc-") || w.starts_with("smrnet-lab-"))
        .map(|w| w.trim_end_matches([')', ',', ':']))
        .collect();
    assert!(
        announced.iter().any(|n| n.starts_with("smrnet-lab-"))
            && announced.iter().any(|n| n.starts_with("smrnet-kc-")),
        "no namespaces named on stderr:\n{stderr}"
    );
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for ns in announced {
        assert!(!list.contains(ns), "{ns} left behind:\n{list}");
    }
    assert!(start.elapsed() < PATH_BUDGET, "took {:?}", start.elapsed());
    Outcome::Passed
}

/// About 20 s of measurement and 12 lab or pair start-ups.
const PATH_BUDGET: Duration = Duration::from_secs(180);
/// wrk and haproxy, which `bench forward` drives (CI installs both).
fn forward_tools_missing() -> Option<String> {
    let on_path = |p: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
    };
    let missing: Vec<&str> = ["wrk", "haproxy"]
        .into_iter()
        .filter(|p| !on_path(p))
        .collect();
    (!missing.is_empty()).then(|| format!("not installed: {}", missing.join(", ")))
}

pub fn bench_forward_reports_both_proxies_in_both_modes_and_the_flood_reaches_only_legit() -> Outcome
{
    if let Some(why) = forward_tools_missing() {
        // CI installs them (.ci/run): there a missing tool is a failure.
        assert!(!tests::prerequisites_required(), "bench forward: {why}");
        return Outcome::Skipped(why);
    }
    let start = Instant::now();
    let out = Command::new(smrnet_binary())
        .args(["bench", "forward", "--seconds", "1", "--runs", "1"])
        .args(["--connections", "8", "--workers", "2", "--flood"])
        .args(["--flood-seconds", "2", "--json", "--daemon"])
        .arg(daemon_binary())
        .output()
        .expect("run smrnet bench forward");
    assert!(
        out.status.success(),
        "bench forward failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("bench forward --json prints one JSON object");
    assert_eq!(report["bench"], "forward");
    let rows = report["results"].as_array().expect("results");
    let arms: Vec<(&str, &str)> = rows
        .iter()
        .filter_map(|r| Some((r["impl"].as_str()?, r["mode"].as_str()?)))
        .collect();
    assert_eq!(
        arms,
        [
            ("smrnetd-forward", "keepalive"),
            ("haproxy", "keepalive"),
            ("smrnetd-forward", "close"),
            ("haproxy", "close"),
        ]
    );
    for r in rows {
        for field in ["req_per_s", "p99_ms"] {
            assert!(
                r[field].as_f64().is_some_and(|v| v > 0.0),
                "{field} not positive: {r}"
            );
        }
        assert!(r["requests"].as_u64().is_some_and(|n| n > 0), "{r}");
        assert!(r["errors"].as_u64().is_some(), "{r}");
    }
    for mode in ["keepalive", "close"] {
        let ratio = &report["ratios"][mode];
        assert!(
            ratio["req_per_s"].as_f64().is_some_and(|v| v > 0.0),
            "{mode}: {ratio}"
        );
    }
    let flood = &report["flood"];
    assert!(
        flood["flood_syns_sent"].as_u64().is_some_and(|n| n > 1000),
        "{flood}"
    );
    let connected = flood["legit_connected"].as_u64().expect("legit_connected");
    assert!(connected > 0, "{flood}");
    // Only the legitimate connections reached the upstream.
    assert_eq!(
        flood["upstream_accepts"].as_u64(),
        Some(connected),
        "{flood}"
    );
    assert_eq!(flood["upstream_saw_only_legit"], true, "{flood}");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "took {:?}",
        start.elapsed()
    );
    Outcome::Passed
}
