//! `smrnet bench forward`: smrnetd's `forward` service against haproxy
//! (`mode tcp`, kernel TCP) as a TCP front end for the same HTTP upstream,
//! driven by the same `wrk`, in one invocation.
//!
//! Layout. A lab (smrnetd on a TUN device in its own namespace) listens on
//! 198.18.0.2:[`FORWARD_PORT`] with `forward:127.0.0.1:`[`UPSTREAM_PORT`];
//! wrk runs inside the lab namespace. Beside it, the veth pair of
//! `load churn --compare-kernel` ([`KernelPair::link`]): haproxy in the
//! server namespace listens on 198.19.0.2:[`FORWARD_PORT`] and forwards to
//! 127.0.0.1:[`UPSTREAM_PORT`] there; wrk runs in the client namespace. The
//! upstream ([`upstream`]) is one server in this process with a listener
//! on the loopback of each namespace. haproxy gets as many threads as the
//! daemon has packet workers.
//!
//! Each run is wrk for `--seconds`, keep-alive and `Connection: close`, on
//! each arm; runs are interleaved (every mode and arm once, then again) so
//! background load hits both alike, and the median run of each is
//! reported, with the smrnetd/haproxy ratios per mode. `--flood` then adds
//! the SYN-flood arm ([`flood`]).
//!
//! What it does not isolate: wrk, the upstream, the proxy and (for
//! smrnetd) the TUN device all share the machine's CPUs; the two arms
//! share them alike.
//!
//! Invariant: everything the bench starts is owned by a guard (the lab,
//! the namespaces, haproxy and its temp dir, the upstream), dropped on
//! every path, a failure included.

mod flood;
mod haproxy;
mod process;
mod upstream;
mod wrk;

use super::harness::Summary;
use super::report::Machine;
use crate::lab::{DAEMON_V4, Lab, LabConfig, LabError};
use crate::load::compare::{KernelPair, SERVER_V4};
use serde::Serialize;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use wrk::{WrkOpts, WrkRun};

/// The forward listener's port, on both arms.
pub const FORWARD_PORT: u16 = 8000;
/// The upstream's port on each namespace's loopback.
pub const UPSTREAM_PORT: u16 = 18080;
const IMPLS: [&str; 2] = ["smrnetd-forward", "haproxy"];
const MODES: [&str; 2] = ["keepalive", "close"];

/// Run shape for `bench forward`.
#[derive(Debug, clap::Args)]
pub struct ForwardArgs {
    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,

    /// Length of one wrk run, in seconds.
    #[arg(long, value_name = "S", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    seconds: u64,

    /// Runs of every arm and mode, interleaved; the median is reported.
    #[arg(long, value_name = "K", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=50))]
    runs: u32,

    /// wrk's open connections.
    #[arg(long, value_name = "C", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    connections: u64,

    /// wrk's threads.
    #[arg(long, value_name = "T", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(1..=64))]
    wrk_threads: u64,

    /// The daemon's packet workers, and haproxy's `nbthread` [default: one
    /// per CPU].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=256))]
    workers: Option<u64>,

    /// Response body size of the upstream, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 128,
          value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    body_bytes: u64,

    /// Also run the flood arm: a SYN flood at unlimited rate (one sender)
    /// at smrnetd's forward port, with legitimate requests through it.
    #[arg(long)]
    flood: bool,

    /// Length of the flood arm, in seconds.
    #[arg(long, value_name = "S", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=120))]
    flood_seconds: u64,

    /// The smrnetd binary [default: next to this smrnet, else from PATH].
    #[arg(long, value_name = "PATH")]
    daemon: Option<PathBuf>,
}

/// One arm and mode, over its runs.
#[derive(Debug, Serialize)]
struct Row {
    #[serde(rename = "impl")]
    imp: &'static str,
    mode: &'static str,
    runs: usize,
    /// Medians over the runs.
    req_per_s: f64,
    p99_ms: f64,
    /// Summed over the runs.
    requests: u64,
    errors: u64,
}

/// smrnetd's figure over haproxy's, for one mode.
#[derive(Debug, Serialize)]
struct Ratio {
    req_per_s: Option<f64>,
    p99_ms: Option<f64>,
}

#[derive(Serialize)]
struct Report {
    bench: &'static str,
    seconds_per_run: u64,
    runs: u32,
    connections: u64,
    wrk_threads: u64,
    workers: u64,
    body_bytes: u64,
    upstream: &'static str,
    machine: Machine,
    results: Vec<Row>,
    /// Per mode: smrnetd-forward / haproxy.
    ratios: BTreeMap<&'static str, Ratio>,
    flood: Option<flood::FloodResult>,
}

pub fn run(args: &ForwardArgs) -> io::Result<()> {
    crate::lab::preflight().map_err(lab_err)?;
    process::ensure_installed("wrk", "wrk")?;
    process::ensure_installed("haproxy", "haproxy")?;
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()) as u64);
    let daemon = args
        .daemon
        .clone()
        .unwrap_or_else(crate::lab::default_daemon);
    let mut cfg = LabConfig::new(daemon);
    cfg.workers = Some(workers as usize);
    cfg.extra_args = vec![
        OsString::from("--listen"),
        OsString::from(format!(
            "0.0.0.0:{FORWARD_PORT}=forward:127.0.0.1:{UPSTREAM_PORT}"
        )),
    ];
    let lab = Lab::up(&cfg).map_err(lab_err)?;
    let result = measure(args, workers, &lab);
    // Remove the lab on every path; a run's error wins over a teardown's.
    let down = lab.down().map_err(lab_err);
    let report = result?;
    down?;
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)
    } else {
        print_table(&mut out, &report)
    }
}

/// Everything but the lab: the veth pair, the upstream, haproxy, the runs.
fn measure(args: &ForwardArgs, workers: u64, lab: &Lab) -> io::Result<Report> {
    let pair = KernelPair::link()?;
    let lifetime = Duration::from_secs(
        (args.seconds + 30) * 4 * u64::from(args.runs) + args.flood_seconds + 60,
    );
    let upstream = upstream::Upstream::start(
        &[lab.netns().name(), pair.server_netns()],
        UPSTREAM_PORT,
        1,
        args.body_bytes as usize,
        lifetime,
    )?;
    let listen = SocketAddr::new(IpAddr::V4(SERVER_V4), FORWARD_PORT);
    let up = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), UPSTREAM_PORT);
    let haproxy = haproxy::Haproxy::start(pair.server_netns(), listen, up, workers as usize)?;
    let targets = [
        (
            lab.netns().name(),
            format!("http://{DAEMON_V4}:{FORWARD_PORT}/"),
        ),
        (
            pair.client_netns(),
            format!("http://{SERVER_V4}:{FORWARD_PORT}/"),
        ),
    ];
    // samples[mode][impl]
    let mut samples: Vec<Vec<Vec<WrkRun>>> = vec![vec![Vec::new(); IMPLS.len()]; MODES.len()];
    for run in 0..args.runs {
        for (m, mode) in MODES.iter().enumerate() {
            for (i, imp) in IMPLS.iter().enumerate() {
                if !args.json {
                    eprintln!("run {}/{}: {imp} {mode}", run + 1, args.runs);
                }
                let opts = WrkOpts {
                    threads: args.wrk_threads as usize,
                    connections: args.connections as usize,
                    seconds: args.seconds,
                    close: *mode == "close",
                };
                let (ns, url) = &targets[i];
                samples[m][i].push(wrk::run(ns, url, opts)?);
            }
        }
    }
    drop(haproxy);
    let flood = if args.flood {
        if !args.json {
            eprintln!("flood arm: {} s", args.flood_seconds);
        }
        Some(flood::run(
            lab,
            FORWARD_PORT,
            &upstream,
            0,
            args.flood_seconds as f64,
        )?)
    } else {
        None
    };
    drop(upstream);
    drop(pair);

    let mut results = Vec::new();
    let mut ratios = BTreeMap::new();
    for (m, &mode) in MODES.iter().enumerate() {
        let rows: Vec<Row> = IMPLS
            .iter()
            .zip(&samples[m])
            .map(|(&imp, s)| row(imp, mode, s))
            .collect();
        let ratio = |f: fn(&Row) -> f64| {
            let (a, b) = (f(&rows[0]), f(&rows[1]));
            (b > 0.0).then(|| a / b)
        };
        ratios.insert(
            mode,
            Ratio {
                req_per_s: ratio(|r| r.req_per_s),
                p99_ms: ratio(|r| r.p99_ms),
            },
        );
        results.extend(rows);
    }
    Ok(Report {
        bench: "forward",
        seconds_per_run: args.seconds,
        runs: args.runs,
        connections: args.connections,
        wrk_threads: args.wrk_threads,
        workers,
        body_bytes: args.body_bytes,
        upstream: "smrnet's kernel-socket HTTP server on each namespace's loopback",
        machine: Machine::this(),
        results,
        ratios,
        flood,
    })
}

fn row(imp: &'static str, mode: &'static str, s: &[WrkRun]) -> Row {
    let of = |f: fn(&WrkRun) -> f64| Summary::of(&s.iter().map(f).collect::<Vec<_>>()).median;
    Row {
        imp,
        mode,
        runs: s.len(),
        req_per_s: of(|r| r.req_per_s),
        p99_ms: of(|r| r.p99_ms),
        requests: s.iter().map(|r| r.requests).sum(),
        errors: s.iter().map(|r| r.errors).sum(),
    }
}

fn print_table(out: &mut impl Write, r: &Report) -> io::Result<()> {
    writeln!(
        out,
        "bench forward: wrk, {} connections, {} s per run, median of {} runs, {} workers / nbthread",
        r.connections, r.seconds_per_run, r.runs, r.workers
    )?;
    writeln!(
        out,
        "{:<16} {:<10} {:>11} {:>9} {:>10} {:>8}",
        "impl", "mode", "req/s", "p99 ms", "requests", "errors"
    )?;
    for row in &r.results {
        writeln!(
            out,
            "{:<16} {:<10} {:>11.0} {:>9.2} {:>10} {:>8}",
            row.imp, row.mode, row.req_per_s, row.p99_ms, row.requests, row.errors
        )?;
    }
    let f = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.2}×"));
    for (mode, ratio) in &r.ratios {
        writeln!(
            out,
            "smrnetd/haproxy {mode}: req/s {}, p99 {}",
            f(ratio.req_per_s),
            f(ratio.p99_ms)
        )?;
    }
    if let Some(fl) = &r.flood {
        writeln!(
            out,
            "flood ({} s, {} SYNs): legit {}/{} ok ({:.1} %), {} connected, upstream accepts {} ({})",
            fl.seconds,
            fl.flood_syns_sent,
            fl.legit_ok,
            fl.legit_attempts,
            fl.legit_success_pct,
            fl.legit_connected,
            fl.upstream_accepts,
            if fl.upstream_saw_only_legit {
                "only the legitimate connections"
            } else {
                "NOT equal to the legitimate connections"
            }
        )?;
    }
    Ok(())
}

fn lab_err(e: LabError) -> io::Error {
    io::Error::other(e.to_string())
}
