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
}

#[test]
fn bad_arguments_are_a_usage_error() {
    for bad in [
        ["--entries", "0"],
        ["--runs", "x"],
        ["--millis-per-run", "0"],
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
