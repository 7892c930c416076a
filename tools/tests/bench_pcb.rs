//! `smrnet bench pcb --json` as a script would use it: one JSON object with
//! every implementation in every configuration, and the memory figures.

use serde_json::Value;
use std::process::Command;

#[test]
fn json_report_has_every_impl_in_every_configuration() {
    let out = Command::new(env!("CARGO_BIN_EXE_smrnet"))
        .args(["bench", "pcb", "--json", "--runs", "1"])
        .args(["--millis-per-run", "10", "--entries", "2000"])
        .output()
        .expect("smrnet runs");
    assert!(out.status.success(), "smrnet failed: {out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(report["bench"], "pcb");
    let results = report["results"].as_array().expect("results is an array");
    let row = |imp: &str, readers: u64, churners: u64| {
        results
            .iter()
            .find(|r| r["impl"] == imp && r["readers"] == readers && r["churners"] == churners)
            .unwrap_or_else(|| panic!("no result for {imp} r{readers} c{churners}"))
    };
    for imp in ["smr", "dashmap", "rwlock", "papaya", "hashmap-unsync"] {
        for readers in [1, 2] {
            let r = row(imp, readers, 0);
            assert_eq!(r["entries"], 2000);
            let l = r["lookups_per_s"].as_f64().expect("lookups_per_s");
            assert!(l.is_finite() && l > 0.0, "{imp}: {l}");
        }
    }
    for imp in ["smr", "dashmap", "rwlock", "papaya"] {
        let r = row(imp, 1, 1);
        assert!(
            r["churn_ops_per_s"].as_f64().expect("churn_ops_per_s") > 0.0,
            "{imp}"
        );
    }
    assert!(
        results
            .iter()
            .all(|r| r["impl"] != "hashmap-unsync" || r["churners"] == 0)
    );
    let per_entry = report["memory"]["smr_table_bytes_per_entry"]
        .as_f64()
        .unwrap();
    assert!(per_entry > 8.0 && per_entry < 64.0, "{per_entry}");
    assert!(
        report["ratios"]["churn_lookups_smr_over_dashmap"]
            .as_f64()
            .is_some()
    );
    // The like-for-like baseline, the plain layout and the absent rows are
    // there; every row answered every lookup rightly and sampled latency.
    for (imp, readers, churners) in [
        ("hashmap-unsync-pcb", 2, 0),
        ("smr-plain", 1, 1),
        ("smr-resizing", 1, 1),
        ("smr-absent", 1, 0),
        ("smr-plain-absent", 1, 0),
        ("hashmap-unsync-pcb-absent", 1, 0),
    ] {
        row(imp, readers, churners);
    }
    for r in results {
        assert_eq!(r["lookup_misses"], 0, "{r}");
        assert!(r["lookups"].as_u64().expect("lookups") > 0, "{r}");
        let (p50, p99) = (r["lookup_p50_ns"].as_f64(), r["lookup_p99_ns"].as_f64());
        assert!(
            p50.expect("p50") > 0.0 && p99.expect("p99") >= p50.unwrap(),
            "{r}"
        );
    }
    assert_eq!(report["ratios"]["lookup_misses"], 0);
    assert!(
        report["ratios"]["resizing_p99_over_steady"]
            .as_f64()
            .is_some()
    );
}

#[test]
fn only_runs_the_named_implementation_and_leaves_other_ratios_null() {
    let out = Command::new(env!("CARGO_BIN_EXE_smrnet"))
        .args([
            "bench",
            "pcb",
            "--json",
            "--runs",
            "1",
            "--only",
            "smr-absent",
        ])
        .args([
            "--millis-per-run",
            "10",
            "--entries",
            "2000",
            "--one-reader",
        ])
        .output()
        .expect("smrnet runs");
    assert!(out.status.success(), "smrnet failed: {out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    let results = report["results"].as_array().expect("results is an array");
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["impl"], "smr-absent");
    assert!(report["ratios"]["read_smr_over_unsync_1"].is_null());
}

#[test]
fn bad_arguments_are_a_usage_error() {
    for bad in [
        ["--entries", "0"],
        ["--runs", "x"],
        ["--millis-per-run", "0"],
        ["--only", "nosuchtable"],
    ] {
        let status = Command::new(env!("CARGO_BIN_EXE_smrnet"))
            .args(["bench", "pcb"])
            .args(bad)
            .output()
            .expect("smrnet runs")
            .status;
        assert_eq!(status.code(), Some(2), "{bad:?}");
    }
}
