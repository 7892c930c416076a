//! `smrnet demo`: what smrnet is for, in about a minute, as root. It starts
//! a lab, drives the daemon with connection churn, floods it with spoofed
//! SYNs while a legitimate client keeps connecting, holds many connections,
//! and leaves a folder with the report (Markdown and JSON), the last metrics
//! scrape and the daemon's log.
//!
//! Invariant: the lab is owned by a guard from the moment it exists, so an
//! error, a panic or Ctrl-C (which raises a flag every phase polls; each
//! phase then ends early and the guard removes the lab) never leaves a
//! namespace or a daemon behind.

mod hold;
mod report;

pub use hold::HoldPhase;
pub use report::DemoReport;

use crate::lab::{self, Lab, LabConfig};
use crate::load::churn::{self, ChurnOpts};
use crate::load::scrape::Scraper;
use crate::load::syn::{self, Scrape, SynArgs};
use crate::load::{netns, stop_on_signal};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// `smrnet demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Where to leave report.md, report.json, metrics.prom and daemon.log
    /// [default: ./smrnet-demo-<UTC timestamp>/]. Created; must not exist
    /// or be empty.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Shrink every phase for CI: 2 s phases, a hold of 5,000 connections.
    #[arg(long)]
    pub quick: bool,
    /// Seconds of churn, and of each half (no flood, flood) of the SYN
    /// flood phase [default: 10, or 2 with --quick].
    #[arg(long, value_name = "SECS")]
    pub phase: Option<u64>,
    /// Connections to hold [default: 100,000, or 5,000 with --quick].
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
    /// SYN flood rate in SYN/s [default: as fast as one sender thread goes].
    #[arg(long, value_name = "PPS")]
    pub syn_rate: Option<u64>,
    /// The smrnetd binary [default: next to this smrnet, else from PATH].
    #[arg(long, value_name = "PATH")]
    pub daemon: Option<PathBuf>,
    /// Packet worker threads for the daemon [default: the daemon's, one per CPU].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
}

/// The sizes of each phase, from the flags.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Plan {
    pub phase_secs: u64,
    pub hold_connections: usize,
    pub hold_secs: u64,
    pub syn_rate: Option<u64>,
}

impl DemoArgs {
    fn plan(&self) -> io::Result<Plan> {
        let phase_secs = self.phase.unwrap_or(if self.quick { 2 } else { 10 });
        if phase_secs == 0 || phase_secs > 300 {
            return Err(invalid(format!(
                "--phase {phase_secs}: must be 1..=300 seconds"
            )));
        }
        let hold_connections = self
            .connections
            .unwrap_or(if self.quick { 5_000 } else { 100_000 });
        if hold_connections == 0 || hold_connections > 1_000_000 {
            return Err(invalid(format!(
                "--connections {hold_connections}: must be 1..=1000000"
            )));
        }
        Ok(Plan {
            phase_secs,
            hold_connections,
            hold_secs: if self.quick { 1 } else { 3 },
            syn_rate: self.syn_rate,
        })
    }

    /// Run the demo; prints the report and where the folder is.
    pub fn run(&self) -> io::Result<()> {
        let plan = self.plan()?;
        let out = self.out.clone().unwrap_or_else(default_out);
        prepare_out(&out)?;
        let stop = stop_on_signal()?;
        let daemon = self.daemon.clone().unwrap_or_else(default_daemon);
        let mut cfg = LabConfig::new(daemon);
        cfg.workers = self.workers;
        cfg.log_dir = out.clone();
        eprintln!("demo: starting a lab (needs root)...");
        let lab = Lab::up(&cfg).map_err(|e| io::Error::other(format!("lab up: {e}")))?;
        let result = run_phases(&lab, &plan, stop);
        // Stop the daemon first so its log is complete, keep the log, then
        // remove the namespace; on every path (the guard does it on `?`).
        let log = lab.log().to_path_buf();
        let mut lab = lab;
        let _ = lab.daemon_mut().stop(lab::STOP_GRACE);
        let _ = std::fs::copy(&log, out.join("daemon.log"));
        lab.down()
            .map_err(|e| io::Error::other(format!("lab down: {e}")))?;
        let (report, metrics) = result?;
        std::fs::write(out.join("metrics.prom"), metrics)?;
        std::fs::write(out.join("report.md"), report.markdown())?;
        std::fs::write(
            out.join("report.json"),
            serde_json::to_string_pretty(&report)?,
        )?;
        print!("{}", report.markdown());
        println!("\nreport, metrics and daemon log in {}", out.display());
        Ok(())
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn default_daemon() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("smrnetd")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("smrnetd"))
}

/// `./smrnet-demo-YYYYmmddTHHMMSSZ`.
fn default_out() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from(format!("smrnet-demo-{}", utc_stamp(secs)))
}

/// Seconds since the epoch as `YYYYmmddTHHMMSSZ` (civil-from-days, proleptic
/// Gregorian calendar).
pub fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn prepare_out(out: &Path) -> io::Result<()> {
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        return Err(invalid(format!(
            "--out {}: exists and is not empty; name a new folder",
            out.display()
        )));
    }
    std::fs::create_dir_all(out)
        .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", out.display())))
}

fn interrupted(stop: &AtomicBool) -> io::Result<()> {
    // Relaxed: a flag polled by the phases' loops.
    if stop.load(Ordering::Relaxed) {
        Err(io::Error::new(
            io::ErrorKind::Interrupted,
            "interrupted; the lab was removed",
        ))
    } else {
        Ok(())
    }
}

fn scrape(lab: &Lab) -> io::Result<Scrape> {
    Scrape::fetch(&Scraper::new(&lab.metrics_url(), &[], None)?)
}

/// The three phases; returns the report and the last metrics text.
fn run_phases(lab: &Lab, plan: &Plan, stop: &AtomicBool) -> io::Result<(DemoReport, String)> {
    let started = Instant::now();
    let echo = SocketAddr::new(IpAddr::V4(lab::DAEMON_V4), lab::ECHO_PORT);
    let ns = lab.netns().name().to_string();
    let mut report = DemoReport::new(*plan, lab.id());

    eprintln!("demo: churn for {} s...", plan.phase_secs);
    let before = scrape(lab)?;
    let mut c = ChurnOpts::new(echo);
    c.duration = Duration::from_secs(plan.phase_secs);
    c.source_addrs = lab::client_addrs_v4();
    c.threads = 1;
    let churned = netns::run_in(Some(&ns), || churn::run_until(&c, stop))??;
    interrupted(stop)?;
    let after = scrape(lab)?;
    report.churn(churned, &before, &after);

    eprintln!(
        "demo: legit churn for {} s, then the same with a SYN flood...",
        plan.phase_secs
    );
    let flood = SynArgs {
        rate: plan.syn_rate,
        duration: plan.phase_secs as f64,
        ..SynArgs::for_lab(
            lab,
            SocketAddr::new(IpAddr::V4(lab::DAEMON_V4), lab::ECHO_PORT),
        )
    };
    let flooded = syn::run(&flood, stop)?;
    interrupted(stop)?;
    report.syn(flooded);

    // The hold comes last: if its mass close ever leaves connections behind
    // in the daemon (the hold reports that as "NOT drained"; it happened
    // before the lab's TUN queue was lengthened), they cannot skew the
    // flood's numbers.
    eprintln!("demo: holding {} connections...", plan.hold_connections);
    let held = hold::run(lab, plan, stop)?;
    interrupted(stop)?;
    report.hold(held);

    let last = scrape(lab)?;
    report.finish(&last, started.elapsed());
    Ok((report, last.text))
}
