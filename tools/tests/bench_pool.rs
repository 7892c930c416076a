//! `smrnet bench pool --json`: every implementation at every thread count,
//! pool rows with their batching figures, and no pool ever at its cap.

mod common;
use common::{exit_code, positive, row, run_json};

const POOLS: [&str; 4] = [
    "pool-smr",
    "pool-smr-lazy",
    "pool-smr-deferred",
    "pool-pserialize",
];
const OTHERS: [&str; 3] = ["box-malloc", "crossbeam-epoch", "seize"];

#[test]
fn json_report_has_every_impl_and_the_pools_batch() {
    let report = run_json(&[
        "bench",
        "pool",
        "--json",
        "--runs",
        "1",
        "--millis-per-run",
        "20",
        "--threads",
        "1,2",
    ]);
    assert_eq!(report["bench"], "pool");
    assert_eq!(report["object_bytes"], 256);
    let cap = report["cap"].as_u64().expect("cap");
    for threads in [1, 2] {
        for imp in POOLS {
            let r = row(&report, imp, threads);
            positive(r, "ns_per_pair");
            // One grace period per magazine: far more than one free each.
            assert!(positive(r, "frees_per_advance") >= 32.0, "{imp}: {r}");
            assert!(
                r["peak_pending"].as_u64().expect("peak_pending") <= cap,
                "{imp}: {r}"
            );
            assert_eq!(r["exhausted"], 0, "{imp}: {r}");
        }
        for imp in OTHERS {
            positive(row(&report, imp, threads), "ns_per_pair");
        }
        let key = format!("pool-smr/box-malloc@{threads}");
        assert!(
            report["ratios"][&key].as_f64().is_some(),
            "missing ratio {key}"
        );
    }
}

#[test]
fn bad_arguments_are_a_usage_error() {
    assert_eq!(exit_code(&["bench", "pool", "--threads", "0"]), Some(2));
}
