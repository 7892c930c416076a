//! One measurement of one row on one side: a fresh kernel pair or a fresh
//! lab per measurement, so no row inherits another's connections, SYN
//! cache or TIME-WAITs; both are removed before the next starts, on every
//! path (their guards, [`KernelPair`] and [`Lab`], remove them on drop).

use super::stream::{self, Mode};
use super::wrk;
use crate::bench::cpu::{machine_busy, process_cpu};
use crate::lab::{self, DAEMON_V4, ECHO_PORT, Lab, LabConfig, LabError};
use crate::load::churn::{self, ChurnOpts};
use crate::load::compare::{self, KernelPair};
use crate::load::netns::NetnsFd;
use crate::load::syn::{self, SynArgs};
use serde::Serialize;
use smrnetd::metrics::names as metric;
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One side's result: the row's figure, and what else was measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Side {
    pub value: f64,
    pub figures: BTreeMap<String, f64>,
}

impl Side {
    fn new(value: f64) -> Side {
        Side {
            value,
            figures: BTreeMap::new(),
        }
    }

    fn with(mut self, name: &str, v: f64) -> Side {
        self.figures.insert(name.to_string(), v);
        self
    }
}

/// Both sides of one run of one row.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    pub kernel: Side,
    pub smrnetd: Side,
}

/// The machine's busy CPU over `f`, and `f`'s result.
fn machine<R>(f: impl FnOnce() -> io::Result<R>) -> io::Result<(R, f64)> {
    let m0 = machine_busy()?;
    let r = f()?;
    let m1 = machine_busy()?;
    Ok((r, m1.saturating_sub(m0).as_secs_f64()))
}

fn lab_err(e: LabError) -> io::Error {
    io::Error::other(e.to_string())
}

fn interrupted(stop: &AtomicBool) -> io::Result<()> {
    // Relaxed: a flag polled between measurements.
    if stop.load(Ordering::Relaxed) {
        return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
    }
    Ok(())
}

/// A fresh lab for `f`, removed afterwards; `f`'s error wins over the
/// teardown's.
fn with_lab<R>(cfg: &LabConfig, f: impl FnOnce(&Lab) -> io::Result<R>) -> io::Result<R> {
    let lab = Lab::up(cfg).map_err(lab_err)?;
    eprintln!("smrnet bench path: smrnetd in {}", lab.netns().name());
    let result = f(&lab);
    let down = lab.down().map_err(lab_err);
    let r = result?;
    down?;
    Ok(r)
}

/// A fresh kernel pair for `f`, removed afterwards.
fn with_pair<R>(f: impl FnOnce(&KernelPair) -> io::Result<R>) -> io::Result<R> {
    let pair = KernelPair::up(2)?;
    eprintln!(
        "smrnet bench path: kernel TCP from {} to {}",
        pair.client_netns(),
        pair.server_netns()
    );
    f(&pair)
}

const GB: f64 = 1e9;

/// One stream to discard or echo, kernel then smrnetd.
pub fn stream(
    cfg: &LabConfig,
    mode: Mode,
    bytes: u64,
    timeout: Duration,
    stop: &AtomicBool,
) -> io::Result<Pair> {
    let gb = bytes as f64 / GB;
    let kernel = with_pair(|pair| {
        let addr = match mode {
            Mode::Discard => compare::discard_addr(),
            Mode::Echo => compare::server_addr(),
        };
        let ns = NetnsFd::open(pair.client_netns())?;
        let (r, busy) = machine(|| ns.run(|| stream::run(addr, mode, bytes, timeout))?)?;
        Ok(Side::new(r.bytes_per_sec)
            .with("gbit_per_sec", r.bytes_per_sec * 8.0 / GB)
            .with("seconds", r.seconds)
            .with("machine_cpu_s_per_gb", busy / gb))
    })?;
    interrupted(stop)?;
    let smrnetd = with_lab(cfg, |lab| {
        let port = match mode {
            Mode::Discard => lab::DISCARD_PORT,
            Mode::Echo => lab::ECHO_PORT,
        };
        let addr = SocketAddr::new(IpAddr::V4(DAEMON_V4), port);
        let d0 = process_cpu(lab.pid())?;
        let (r, busy) = machine(|| {
            lab.in_netns(|| stream::run(addr, mode, bytes, timeout))
                .map_err(lab_err)?
        })?;
        let daemon = process_cpu(lab.pid())?.saturating_sub(d0).as_secs_f64();
        Ok(Side::new(r.bytes_per_sec)
            .with("gbit_per_sec", r.bytes_per_sec * 8.0 / GB)
            .with("seconds", r.seconds)
            .with("machine_cpu_s_per_gb", busy / gb)
            .with("daemon_cpu_s_per_gb", daemon / gb))
    })?;
    Ok(Pair { kernel, smrnetd })
}

/// The SYN flood at `rate` (`None`: one sender thread as fast as it goes)
/// with the legitimate probe, through `load syn --compare-kernel`'s code.
pub fn syn_flood(
    cfg: &LabConfig,
    rate: Option<u64>,
    seconds: f64,
    seed: u64,
    stop: &AtomicBool,
) -> io::Result<Pair> {
    with_lab(cfg, |lab| {
        let args = SynArgs {
            rate,
            duration: seconds,
            threads: 1,
            seed: Some(seed),
            json: true,
            compare_kernel: true,
            ..SynArgs::for_lab(lab, SocketAddrV4::new(DAEMON_V4, ECHO_PORT))
        };
        let d0 = process_cpu(lab.pid())?;
        let cmp = syn::compare_kernel(&args, stop)?;
        let daemon_cpu = process_cpu(lab.pid())?.saturating_sub(d0).as_secs_f64();
        let side = |r: &syn::SynReport| {
            let (rate, ok, p99) = r.under_flood.as_ref().map_or((0.0, 0.0, 0.0), |u| {
                (
                    u.conns_per_sec,
                    syn::success_ratio(u) * 100.0,
                    u.connect_latency.p99_us as f64 / 1e3,
                )
            });
            Side::new(rate)
                .with("success_pct", ok)
                .with("connect_p99_ms", p99)
                .with("flood_syn_per_sec", r.flood.pps)
                .with(
                    "no_flood_conns_per_sec",
                    r.baseline.as_ref().map_or(0.0, |b| b.conns_per_sec),
                )
        };
        let d = &cmp.smrnetd.daemon;
        let syn_acks = d.get(metric::SYNCACHE_ADDED).copied().unwrap_or(0.0)
            + d.get(metric::SYNCOOKIES_SENT).copied().unwrap_or(0.0);
        Ok(Pair {
            kernel: side(&cmp.kernel),
            smrnetd: side(&cmp.smrnetd)
                .with("syn_acks_sent", syn_acks)
                .with("daemon_cpu_s", daemon_cpu)
                .with(
                    "syn_acks_per_daemon_cpu_s",
                    if daemon_cpu > 0.0 {
                        syn_acks / daemon_cpu
                    } else {
                        0.0
                    },
                ),
        })
    })
}

/// `load churn -c CONCURRENCY` for `seconds` against each side's echo.
pub fn churn(
    cfg: &LabConfig,
    concurrency: usize,
    seconds: u64,
    stop: &AtomicBool,
) -> io::Result<Pair> {
    let mut opts = ChurnOpts::new(SocketAddr::new(IpAddr::V4(DAEMON_V4), ECHO_PORT));
    opts.concurrency = concurrency;
    opts.duration = Duration::from_secs(seconds);
    let side = |r: &churn::ChurnReport, busy: f64| {
        let ok = r.ok.max(1) as f64;
        Side::new(r.conns_per_sec)
            .with("ok", r.ok as f64)
            .with("errors", r.errors.total() as f64)
            .with("machine_cpu_us_per_conn", busy * 1e6 / ok)
    };
    let kernel = with_pair(|pair| {
        let (r, busy) = machine(|| pair.churn(&opts, stop))?;
        Ok(side(&r, busy))
    })?;
    interrupted(stop)?;
    let smrnetd = with_lab(cfg, |lab| {
        let mut o = opts.clone();
        o.source_addrs = lab::client_addrs_v4();
        let d0 = process_cpu(lab.pid())?;
        let (r, busy) = machine(|| {
            lab.in_netns(|| churn::run_until(&o, stop))
                .map_err(lab_err)?
        })?;
        let daemon = process_cpu(lab.pid())?.saturating_sub(d0).as_secs_f64();
        Ok(side(&r, busy).with("daemon_cpu_us_per_conn", daemon * 1e6 / r.ok.max(1) as f64))
    })?;
    Ok(Pair { kernel, smrnetd })
}

/// `wrk -c 64 -t 2` keep-alive against each side's http service.
pub fn wrk(cfg: &LabConfig, wrk: &Path, seconds: u64, stop: &AtomicBool) -> io::Result<Pair> {
    let side = |r: wrk::WrkResult, busy: f64| {
        Side::new(r.requests_per_sec)
            .with("socket_errors", r.socket_errors as f64)
            .with("non_2xx", r.non_2xx as f64)
            .with(
                "machine_cpu_us_per_request",
                busy * 1e6 / (r.requests_per_sec * seconds as f64).max(1.0),
            )
    };
    let kernel = with_pair(|pair| {
        let url = format!("http://{}/", compare::http_addr());
        let (r, busy) = machine(|| wrk::run(wrk, pair.client_netns(), &url, seconds))?;
        Ok(side(r, busy))
    })?;
    interrupted(stop)?;
    let smrnetd = with_lab(cfg, |lab| {
        let url = format!(
            "http://{}/",
            SocketAddr::new(IpAddr::V4(DAEMON_V4), lab::HTTP_PORT)
        );
        let (r, busy) = machine(|| wrk::run(wrk, lab.netns().name(), &url, seconds))?;
        Ok(side(r, busy))
    })?;
    Ok(Pair { kernel, smrnetd })
}
