//! `smrnet bench reclaim --quick --json --plots DIR` as CI runs it: the
//! report is complete and sane. Not its speed: only that every scheme is
//! there, every figure is a finite number, no reader ever found its node
//! reused under it, and the pooled schemes never held more than their cap.

mod common;

use common::{exit_code, run_json};
use serde_json::Value;

const SCHEMES: [&str; 8] = [
    "smr",
    "smr-lazy",
    "smr-deferred",
    "pserialize",
    "pserialize-coalesced",
    "epoch",
    "rwlock",
    "dashmap",
];
const POOLED: [&str; 5] = [
    "smr",
    "smr-lazy",
    "smr-deferred",
    "pserialize",
    "pserialize-coalesced",
];

fn rows<'a>(report: &'a Value, section: &str) -> &'a Vec<Value> {
    report[section]
        .as_array()
        .unwrap_or_else(|| panic!("{section} is not an array"))
}

fn number(row: &Value, field: &str) -> f64 {
    let v = row[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {row}"));
    assert!(v.is_finite() && v >= 0.0, "{field} = {v} in {row}");
    v
}

#[test]
fn quick_report_is_complete_and_sane() {
    let dir = std::env::temp_dir().join(format!("smrnet-reclaim-{}", std::process::id()));
    let report = run_json(&[
        "bench",
        "reclaim",
        "--quick",
        "--json",
        "--threads",
        "1,2",
        "--plots",
        dir.to_str().expect("utf-8 temp dir"),
    ]);
    assert_eq!(report["bench"], "reclaim");
    let cap = number(&report["plan"], "pool_cap");
    let entries = number(&report["plan"], "entries");
    assert!(cap > entries);
    let rates = report["plan"]["churn_rates"].as_array().unwrap().len();
    assert!(rates >= 2, "a sweep has at least a low rate and flat out");

    // The section alone: every scheme that has one, at both thread counts.
    for s in ["smr", "smr-lazy", "pserialize", "epoch", "rwlock", "none"] {
        for t in [1, 2] {
            let r = rows(&report, "section_cost")
                .iter()
                .find(|r| r["scheme"] == s && r["threads"] == t)
                .unwrap_or_else(|| panic!("no section cost for {s} at {t}"));
            assert!(number(r, "ns_per_section") > 0.0);
        }
    }

    // Read-only lookups, and the unprotected floor they are compared with.
    // Own tables over all entries; every scheme with a section around the
    // shared table, over all entries and over the hot set.
    let read = |s: &str, table: &str, set: f64, readers: u64| {
        rows(&report, "read_only")
            .iter()
            .find(|r| {
                r["scheme"] == s
                    && r["table"] == table
                    && r["readers"] == readers
                    && r["working_set"].as_f64() == Some(set)
            })
            .unwrap_or_else(|| panic!("no read-only row for {s}:{table}@{set} at {readers}"))
    };
    for readers in [1, 2] {
        for s in SCHEMES.iter().chain(&["none"]) {
            let r = read(s, "own", entries, readers);
            assert!(number(r, "lookups_per_s") > 0.0);
            assert!(number(r, "vs_unprotected") > 0.0);
            if *s != "dashmap" {
                for set in [entries, 1024.0] {
                    assert!(number(read(s, "shared", set, readers), "lookups_per_s") > 0.0);
                }
            }
        }
    }

    // The churn sweep: every scheme at every reader count and rate.
    let churn = rows(&report, "churn");
    assert_eq!(churn.len(), SCHEMES.len() * 2 * rates, "{churn:?}");
    for r in churn {
        let s = r["scheme"].as_str().expect("scheme");
        assert!(SCHEMES.contains(&s), "unknown scheme {s}");
        assert!(number(r, "lookups_per_s") > 0.0, "{r}");
        assert!(number(r, "churn_ops_per_s") > 0.0, "{r}");
        assert!(number(r, "frees") > 0.0, "{r}");
        assert!(number(r, "write_cpu_ns_per_free") > 0.0, "{r}");
        assert_eq!(
            r["reuse_violations"], 0,
            "a reader saw its node reused: {r}"
        );
        // At most one grace period per free; at least one per batch of 64
        // frees for the pools that pay one per batch.
        let gp = &r["grace_periods_per_1000_frees"];
        if let Some(g) = gp.as_f64() {
            assert!((0.0..=1000.0).contains(&g), "{r}");
        }
        if POOLED.contains(&s) {
            assert!(
                number(r, "peak_pending") <= cap,
                "pending above the cap: {r}"
            );
            let a = number(r, "advances_per_1000_frees");
            assert!(a > 0.0 && a <= 1000.0, "{r}");
            let lat = &r["reuse_latency_ns"];
            if lat["samples"].as_u64().unwrap_or(0) > 0 {
                let (p50, p99, max) = (number(lat, "p50"), number(lat, "p99"), number(lat, "max"));
                assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{r}");
            }
        }
        if s.starts_with("pserialize") {
            assert!(gp.as_f64().is_some_and(|g| g > 0.0), "{r}");
        }
        if s == "rwlock" || s == "dashmap" {
            assert_eq!(r["peak_pending"], 0, "locks free at once: {r}");
            assert!(r["reuse_latency_ns"]["p50"].is_null(), "{r}");
        }
        // Every run starts settled: barrier() then reclaim().
        assert_eq!(r["start_pending_max"], 0, "{r}");
        number(r, "start_cached_max");
    }

    // The long-running reader and spread-free arms: every scheme and
    // epoch-spread, without and with the long reader.
    let arms = rows(&report, "long_reader");
    let long_ms = number(&report["plan"], "long_reader_ms");
    for s in SCHEMES.iter().chain(&["epoch-spread"]) {
        for long in [false, true] {
            let r = arms
                .iter()
                .find(|r| r["scheme"] == *s && r["long_reader_ms"].is_null() != long)
                .unwrap_or_else(|| panic!("no long_reader row for {s} (long reader: {long})"));
            assert!(number(r, "lookups_per_s") > 0.0, "{r}");
            number(r, "churn_ops_per_s");
            let (peak, avg) = (number(r, "peak_pending"), number(r, "avg_pending"));
            assert!(avg <= peak, "{r}");
            assert!(number(r, "peak_pending_bytes") >= peak, "{r}");
            number(r, "avg_pending_bytes");
            assert_eq!(r["start_pending_max"], 0, "{r}");
            assert_eq!(r["reuse_violations"], 0, "{r}");
            for lat in ["churn_step_ns", "lookup_ns"] {
                let l = &r[lat];
                let q = ["p50", "p99", "p999", "max"].map(|f| number(l, f));
                assert!(number(l, "samples") > 0.0, "{lat}: {r}");
                assert!(q.windows(2).all(|w| w[0] <= w[1]), "{lat}: {r}");
            }
            if long {
                assert_eq!(r["long_reader_ms"].as_f64(), Some(long_ms), "{r}");
                assert!(number(r, "long_sections") >= 1.0, "{r}");
            } else {
                assert_eq!(r["long_sections"], 0, "{r}");
            }
            if POOLED.contains(s) {
                assert!(peak <= cap, "{r}");
            }
            if *s == "rwlock" || *s == "dashmap" {
                assert_eq!(peak, 0.0, "locks free at once: {r}");
            }
        }
    }

    // The stalled reader: every scheme; the reader's node was never reused
    // under it; the pools stayed under their cap.
    let stall = rows(&report, "stall");
    for s in SCHEMES {
        let r = stall
            .iter()
            .find(|r| r["scheme"] == s)
            .unwrap_or_else(|| panic!("no stall row for {s}"));
        assert_eq!(r["held_node_intact"], true, "{r}");
        assert_eq!(r["reuse_violations"], 0, "{r}");
        let [a, b] = [0, 1].map(|i| r["stall_window_ms"][i].as_f64().expect("window"));
        assert!(
            a > 0.0 && b - a >= number(&report["plan"], "stall_ms") * 0.9,
            "{r}"
        );
        assert!(rows(r, "series").len() > 10, "{s}: too few samples");
        assert_eq!(r["start_pending"], 0, "{r}");
        if POOLED.contains(&s) {
            assert_eq!(r["pool_cap"].as_f64(), Some(cap));
            assert!(number(r, "peak_pending") <= cap, "{r}");
        } else {
            assert!(r["pool_cap"].is_null());
        }
    }
    assert_eq!(report["targets"]["smr_stall_bounded_by_cap"], true);

    for chart in [
        "reclaim-read-cost",
        "reclaim-read-cost-shared",
        "reclaim-read-cost-hot",
        "reclaim-section-cost",
        "reclaim-lookups-vs-churn",
        "reclaim-reuse-latency",
        "reclaim-pending-stall",
        "reclaim-grace-periods",
        "reclaim-spread-churn-latency",
        "reclaim-spread-lookup-latency",
    ] {
        for ext in ["svg", "png"] {
            let p = dir.join(format!("{chart}.{ext}"));
            let len = std::fs::metadata(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .len();
            assert!(len > 1000, "{} is nearly empty", p.display());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_are_a_usage_error() {
    for bad in [
        &["--threads", "0"][..],
        &["--entries", "10"],
        &["--runs", "0"],
        &["--stall-ms", "x"],
        &["--long-reader-ms", "0"],
    ] {
        let mut args = vec!["bench", "reclaim"];
        args.extend_from_slice(bad);
        assert_eq!(exit_code(&args), Some(2), "{bad:?}");
    }
}
