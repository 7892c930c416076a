//! `smrnet bench read --json` as a script would use it: one JSON object,
//! every implementation at every requested thread count.

mod common;
use common::{exit_code, positive, row, run_json};

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

#[test]
fn json_report_has_every_impl_at_every_thread_count() {
    let report = run_json(&[
        "bench",
        "read",
        "--json",
        "--runs",
        "1",
        "--millis-per-run",
        "20",
        "--threads",
        "1,2",
    ]);
    assert_eq!(report["bench"], "read");
    assert_eq!(report["results"].as_array().unwrap().len(), IMPLS.len() * 2);
    for threads in [1, 2] {
        let cost: Vec<f64> = IMPLS
            .iter()
            .map(|imp| positive(row(&report, imp, threads), "ns_per_op"))
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
        let args = [&["bench", "read"][..], &bad[..]].concat();
        assert_eq!(exit_code(&args), Some(2), "{bad:?}");
    }
}
