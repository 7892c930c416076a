//! `smrnet bench read --json` as a script would use it: one JSON object,
//! every implementation at every requested thread count.

use serde_json::Value;
use std::process::Command;

const IMPLS: [&str; 8] = [
    "smr-default",
    "smr-lazy",
    "smr-deferred",
    "pserialize",
    "crossbeam-epoch",
    "seize",
    "rwlock-std",
    "none",
];

fn ns_per_op(results: &[Value], imp: &str, threads: u64) -> f64 {
    let row = results
        .iter()
        .find(|r| r["impl"] == imp && r["threads"] == threads)
        .unwrap_or_else(|| panic!("no result for {imp} at {threads} threads"));
    let ns = row["ns_per_op"]
        .as_f64()
        .unwrap_or_else(|| panic!("{imp}@{threads}: ns_per_op is not a number"));
    assert!(
        ns.is_finite() && ns > 0.0,
        "{imp}@{threads}: ns_per_op {ns}"
    );
    ns
}

#[test]
fn json_report_has_every_impl_at_every_thread_count() {
    let out = Command::new(env!("CARGO_BIN_EXE_smrnet"))
        .args(["bench", "read", "--json", "--runs", "1"])
        .args(["--millis-per-run", "20", "--threads", "1,2"])
        .output()
        .expect("smrnet runs");
    assert!(out.status.success(), "smrnet failed: {out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(report["bench"], "read");
    let results = report["results"].as_array().expect("results is an array");
    assert_eq!(results.len(), IMPLS.len() * 2);
    for threads in [1, 2] {
        let cost: Vec<f64> = IMPLS
            .iter()
            .map(|imp| ns_per_op(results, imp, threads))
            .collect();
        let cheapest_real = cost[..IMPLS.len() - 1]
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let none = cost[IMPLS.len() - 1];
        // One 20 ms run on a shared machine is noisy: "near" the cheapest.
        assert!(
            none <= 1.5 * cheapest_real + 0.5,
            "the empty loop ({none} ns) should cost no more than any read section \
             (cheapest {cheapest_real} ns) at {threads} threads"
        );
        let key = format!("smr-default/crossbeam-epoch@{threads}");
        assert!(
            report["ratios"][&key].as_f64().is_some(),
            "missing ratio {key}"
        );
    }
}

#[test]
fn bad_arguments_are_a_usage_error() {
    for bad in [
        ["--threads", "0"],
        ["--runs", "x"],
        ["--millis-per-run", "0"],
    ] {
        let status = Command::new(env!("CARGO_BIN_EXE_smrnet"))
            .args(["bench", "read"])
            .args(bad)
            .output()
            .expect("smrnet runs")
            .status;
        assert_eq!(status.code(), Some(2), "{bad:?}");
    }
}
