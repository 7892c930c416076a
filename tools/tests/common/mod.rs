//! Helpers shared by the benchmark and load tests: run `smrnet` and read its
//! JSON; a loopback listener on a runtime of its own.
#![allow(dead_code)]

use serde_json::Value;
use std::process::Command;

/// Run `smrnet ARGS` and parse its stdout as one JSON object.
pub fn run_json(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_smrnet"))
        .args(args)
        .output()
        .expect("smrnet runs");
    assert!(out.status.success(), "smrnet {args:?} failed: {out:?}");
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

/// The exit status of `smrnet ARGS`.
pub fn exit_code(args: &[&str]) -> Option<i32> {
    Command::new(env!("CARGO_BIN_EXE_smrnet"))
        .args(args)
        .output()
        .expect("smrnet runs")
        .status
        .code()
}

/// The row for `imp` at `threads` in `report["results"]`.
pub fn row<'r>(report: &'r Value, imp: &str, threads: u64) -> &'r Value {
    report["results"]
        .as_array()
        .expect("results is an array")
        .iter()
        .find(|r| r["impl"] == imp && r["threads"] == threads)
        .unwrap_or_else(|| panic!("no result for {imp} at {threads} threads"))
}

/// A finite, positive number in `row[field]`.
pub fn positive(row: &Value, field: &str) -> f64 {
    let v = row[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {row}"));
    assert!(v.is_finite() && v > 0.0, "{field} = {v} in {row}");
    v
}

/// A one-thread tokio runtime and a listener on a free loopback port; what
/// the runtime runs stops when it is dropped.
pub fn loopback_listener() -> (
    tokio::runtime::Runtime,
    tokio::net::TcpListener,
    std::net::SocketAddr,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind((
            std::net::Ipv4Addr::LOCALHOST,
            0,
        )))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    (rt, listener, addr)
}
