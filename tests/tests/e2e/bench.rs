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
