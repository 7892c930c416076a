//! `smrnet bench e2e`: the reclamation comparison through the whole daemon.
//!
//! Every configuration of `smrnetd` that differs only in how its connection
//! table is synchronised (`--pcb-backend smr` under each `--smr-mode`, and
//! the `dashmap`, `rwlock` and `papaya` baselines) gets its own lab and the
//! same closed-loop churn from kernel sockets inside the lab's namespace
//! (`load::churn`, against the echo service). Each run reports connections/s
//! and the daemon's CPU time per connection (user + system, from
//! `/proc/<pid>/stat`, so the TUN reads and writes the workers make count
//! too). Runs are interleaved (run 1 of every configuration, then run 2, ...)
//! so background load hits all of them alike; the median run is reported,
//! with each configuration's ratio to `smr` in its default mode.
//!
//! What it does not isolate: the client runs on the same two CPUs as the
//! daemon, so conns/s is the whole system's; CPU per connection is the
//! daemon's alone and is the steadier figure.

use super::cpu::process_cpu;
use super::harness::Summary;
use crate::lab::{DAEMON_V4, ECHO_PORT, Lab, LabConfig, LabError};
use crate::load::churn::{self, ChurnOpts};
use crate::load::scrape::Samples;
use serde::Serialize;
use smrnetd::metrics::names as metric;
use std::ffi::OsString;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The configurations compared, by the names the report uses.
const CONFIGS: [(&str, &str, &str); 6] = [
    ("smr", "smr", "default"),
    ("smr-lazy", "smr", "lazy"),
    ("smr-deferred", "smr", "deferred"),
    ("dashmap", "dashmap", "default"),
    ("rwlock", "rwlock", "default"),
    ("papaya", "papaya", "default"),
];

/// Run shape for `bench e2e`.
#[derive(Debug, clap::Args)]
pub struct E2eArgs {
    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,

    /// Configurations to compare, comma-separated, from: smr, smr-lazy,
    /// smr-deferred, dashmap, rwlock, papaya.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "smr,smr-lazy,smr-deferred,dashmap,rwlock,papaya"
    )]
    configs: Vec<String>,

    /// Length of one churn run, in seconds.
    #[arg(long, value_name = "S", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,

    /// Runs of every configuration, interleaved; the median is reported.
    #[arg(long, value_name = "K", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,

    /// Concurrent connections of the churn client.
    #[arg(long, value_name = "C", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    concurrency: u64,

    /// Packet workers (TUN queues) of each daemon [default: the daemon's,
    /// one per CPU].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,

    /// The smrnetd binary [default: next to this smrnet, else from PATH].
    #[arg(long, value_name = "PATH")]
    daemon: Option<PathBuf>,
}

/// One configuration's median run.
#[derive(Debug, Clone, Serialize)]
struct Row {
    config: &'static str,
    pcb_backend: &'static str,
    smr_mode: &'static str,
    runs: usize,
    conns_per_sec: f64,
    /// Daemon CPU (user + system) per verified connection, in µs.
    daemon_cpu_us_per_conn: f64,
    /// Median run's transaction latency percentiles, in µs.
    p50_us: u64,
    p99_us: u64,
    /// Summed over every run.
    ok: u64,
    errors: u64,
    /// Connections the daemon counted (passive opens), summed over runs.
    daemon_passive_opens: u64,
    /// The largest pending-pool reading at the end of a run.
    peak_pending_objects: u64,
    /// Ratios to `smr` (default mode) in the same invocation.
    conns_per_sec_vs_smr: Option<f64>,
    cpu_per_conn_vs_smr: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    seconds_per_run: u64,
    runs: u32,
    concurrency: u64,
    workers: Option<usize>,
    rows: Vec<Row>,
}

/// One run of one configuration.
struct Sample {
    conns_per_sec: f64,
    cpu_us_per_conn: f64,
    p50_us: u64,
    p99_us: u64,
    ok: u64,
    errors: u64,
    passive_opens: u64,
    peak_pending: u64,
}

pub fn run(args: &E2eArgs) -> io::Result<()> {
    let configs = selected(&args.configs)?;
    crate::lab::preflight().map_err(lab_err)?;
    let daemon = args
        .daemon
        .clone()
        .unwrap_or_else(crate::lab::default_daemon);
    let mut samples: Vec<Vec<Sample>> = configs.iter().map(|_| Vec::new()).collect();
    for run in 0..args.runs {
        for (i, &(name, backend, mode)) in configs.iter().enumerate() {
            if !args.json {
                eprintln!("run {}/{}: {name}", run + 1, args.runs);
            }
            samples[i].push(measure(args, &daemon, backend, mode)?);
        }
    }
    let mut rows: Vec<Row> = configs
        .iter()
        .zip(&samples)
        .map(|(&(config, pcb_backend, smr_mode), s)| row(config, pcb_backend, smr_mode, s))
        .collect();
    let base = rows
        .iter()
        .find(|r| r.config == "smr")
        .map(|r| (r.conns_per_sec, r.daemon_cpu_us_per_conn));
    for r in &mut rows {
        if let Some((rate, cpu)) = base {
            r.conns_per_sec_vs_smr = (rate > 0.0).then(|| r.conns_per_sec / rate);
            r.cpu_per_conn_vs_smr = (cpu > 0.0).then(|| r.daemon_cpu_us_per_conn / cpu);
        }
    }
    let report = Report {
        bench: "e2e",
        seconds_per_run: args.seconds,
        runs: args.runs,
        concurrency: args.concurrency,
        workers: args.workers,
        rows,
    };
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)
    } else {
        print_table(&mut out, &report)
    }
}

fn selected(names: &[String]) -> io::Result<Vec<(&'static str, &'static str, &'static str)>> {
    let mut out = Vec::new();
    for n in names {
        let c = CONFIGS.iter().find(|c| c.0 == n).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "--configs: unknown configuration {n:?}: use smr, smr-lazy, smr-deferred, \
                     dashmap, rwlock or papaya"
                ),
            )
        })?;
        if !out.contains(c) {
            out.push(*c);
        }
    }
    Ok(out)
}

/// A fresh lab with this configuration, one churn run, the lab removed.
fn measure(args: &E2eArgs, daemon: &PathBuf, backend: &str, mode: &str) -> io::Result<Sample> {
    let mut cfg = LabConfig::new(daemon);
    cfg.workers = args.workers;
    cfg.extra_args = ["--pcb-backend", backend, "--smr-mode", mode]
        .into_iter()
        .map(OsString::from)
        .collect();
    let lab = Lab::up(&cfg).map_err(lab_err)?;
    let result = churn_once(args, &lab);
    // Remove the lab on every path; a run's error wins over a teardown's.
    let down = lab.down().map_err(lab_err);
    let sample = result?;
    down?;
    Ok(sample)
}

fn churn_once(args: &E2eArgs, lab: &Lab) -> io::Result<Sample> {
    let target = SocketAddr::new(IpAddr::V4(DAEMON_V4), ECHO_PORT);
    let mut opts = ChurnOpts::new(target);
    opts.concurrency = usize::try_from(args.concurrency).unwrap_or(usize::MAX);
    opts.duration = Duration::from_secs(args.seconds);
    // As `smrnet load churn` does against a lab: spread over the lab's
    // client addresses, so one address's ports and TIME-WAITs do not set
    // the pace.
    opts.source_addrs = crate::lab::client_addrs_v4();
    // A short warm-up: the first connections pay for the daemon's first
    // chunks and the kernel's first sockets.
    let mut warm = opts.clone();
    warm.duration = Duration::from_millis(300);
    lab.in_netns(|| churn::run(&warm)).map_err(lab_err)??;

    let before = Samples::parse(&lab.scrape().map_err(lab_err)?);
    let cpu0 = process_cpu(lab.pid())?;
    let report = lab.in_netns(|| churn::run(&opts)).map_err(lab_err)??;
    let cpu1 = process_cpu(lab.pid())?;
    let after = Samples::parse(&lab.scrape().map_err(lab_err)?);

    let delta = |name: &str| after.sum(name).unwrap_or(0.0) - before.sum(name).unwrap_or(0.0);
    let ok = report.ok;
    let cpu_us = (cpu1 - cpu0).as_secs_f64() * 1e6;
    Ok(Sample {
        conns_per_sec: report.conns_per_sec,
        cpu_us_per_conn: if ok > 0 { cpu_us / ok as f64 } else { 0.0 },
        p50_us: report.transaction_latency.p50_us,
        p99_us: report.transaction_latency.p99_us,
        ok,
        errors: report.errors.total(),
        passive_opens: delta(metric::TCP_PASSIVE_OPENS).max(0.0) as u64,
        peak_pending: after.sum(metric::POOL_PEAK_PENDING_OBJECTS).unwrap_or(0.0) as u64,
    })
}

fn row(
    config: &'static str,
    pcb_backend: &'static str,
    smr_mode: &'static str,
    s: &[Sample],
) -> Row {
    let rates: Vec<f64> = s.iter().map(|x| x.conns_per_sec).collect();
    let rate = Summary::of(&rates).median;
    // The median run by rate supplies the latencies.
    let mid = s
        .iter()
        .min_by(|a, b| {
            (a.conns_per_sec - rate)
                .abs()
                .total_cmp(&(b.conns_per_sec - rate).abs())
        })
        .expect("at least one run");
    let cpus: Vec<f64> = s.iter().map(|x| x.cpu_us_per_conn).collect();
    Row {
        config,
        pcb_backend,
        smr_mode,
        runs: s.len(),
        conns_per_sec: rate,
        daemon_cpu_us_per_conn: Summary::of(&cpus).median,
        p50_us: mid.p50_us,
        p99_us: mid.p99_us,
        ok: s.iter().map(|x| x.ok).sum(),
        errors: s.iter().map(|x| x.errors).sum(),
        daemon_passive_opens: s.iter().map(|x| x.passive_opens).sum(),
        peak_pending_objects: s.iter().map(|x| x.peak_pending).max().unwrap_or(0),
        conns_per_sec_vs_smr: None,
        cpu_per_conn_vs_smr: None,
    }
}

fn print_table(out: &mut impl Write, r: &Report) -> io::Result<()> {
    writeln!(
        out,
        "bench e2e: closed-loop churn through smrnetd, {} slots, {} s per run, median of {} runs",
        r.concurrency, r.seconds_per_run, r.runs
    )?;
    writeln!(
        out,
        "{:<13} {:>10} {:>8} {:>14} {:>8} {:>9} {:>9} {:>8} {:>12}",
        "config",
        "conns/s",
        "vs smr",
        "daemon µs/conn",
        "vs smr",
        "p50 µs",
        "p99 µs",
        "errors",
        "peak pending"
    )?;
    for row in &r.rows {
        let ratio = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.2}×"));
        writeln!(
            out,
            "{:<13} {:>10.0} {:>8} {:>14.1} {:>8} {:>9} {:>9} {:>8} {:>12}",
            row.config,
            row.conns_per_sec,
            ratio(row.conns_per_sec_vs_smr),
            row.daemon_cpu_us_per_conn,
            ratio(row.cpu_per_conn_vs_smr),
            row.p50_us,
            row.p99_us,
            row.errors,
            row.peak_pending_objects
        )?;
    }
    Ok(())
}

fn lab_err(e: LabError) -> io::Error {
    io::Error::other(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_configurations_are_refused_by_name_and_repeats_dropped() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let e = selected(&names(&["smr", "btree"])).unwrap_err();
        assert!(e.to_string().contains("\"btree\""), "{e}");
        let ok = selected(&names(&["rwlock", "smr", "rwlock"])).unwrap();
        assert_eq!(
            ok.iter().map(|c| c.0).collect::<Vec<_>>(),
            ["rwlock", "smr"]
        );
    }
}
