//! `smrnet bench stack --json`: every server at every size, with the ratios,
//! and a client that checked every echoed byte (a run that stalls or gets a
//! wrong answer fails instead of printing).

mod common;

use common::{exit_code, positive, run_json};

#[test]
fn json_report_has_both_servers_at_every_size() {
    let report = run_json(&[
        "bench",
        "stack",
        "--json",
        "--runs",
        "1",
        "--millis-per-run",
        "20",
        "--open",
        "0,50",
        "--threads",
        "1,2",
    ]);
    assert_eq!(report["bench"], "stack");
    let results = report["results"].as_array().expect("results is an array");
    for open in [0, 50] {
        for (imp, threads) in [("smrnet", 1), ("smrnet", 2), ("smoltcp", 1)] {
            let r = results
                .iter()
                .find(|r| r["impl"] == imp && r["threads"] == threads && r["open_conns"] == open)
                .unwrap_or_else(|| panic!("no row for {imp}@{threads} with {open} open"));
            let rate = positive(r, "conns_per_s");
            let ns = positive(r, "ns_per_conn");
            assert!((rate * ns / 1e9 - 1.0).abs() < 0.01, "{r}");
        }
        for t in [1, 2] {
            let key = format!("smrnet@{t}t/smoltcp@{open}");
            assert!(report["ratios"][&key].as_f64().is_some(), "missing {key}");
        }
    }
}

#[test]
fn pcb_backends_get_rows_of_their_own() {
    let report = run_json(&[
        "bench",
        "stack",
        "--json",
        "--runs",
        "1",
        "--millis-per-run",
        "20",
        "--open",
        "10",
        "--threads",
        "1",
        "--pcb-backend",
        "smr,dashmap,rwlock,papaya",
    ]);
    let results = report["results"].as_array().expect("results is an array");
    for imp in [
        "smrnet",
        "smrnet-dashmap",
        "smrnet-rwlock",
        "smrnet-papaya",
        "smoltcp",
    ] {
        let r = results
            .iter()
            .find(|r| r["impl"] == imp)
            .unwrap_or_else(|| panic!("no row for {imp}"));
        positive(r, "conns_per_s");
    }
}

#[test]
fn bad_arguments_are_a_usage_error() {
    for bad in [
        ["--open", "x"],
        ["--runs", "0"],
        ["--threads", "0"],
        ["--pcb-backend", "btree"],
    ] {
        let mut args = vec!["bench", "stack"];
        args.extend(bad);
        assert_eq!(exit_code(&args), Some(2), "{bad:?}");
    }
}
