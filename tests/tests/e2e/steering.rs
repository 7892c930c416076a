//! TUN queue steering: with the eBPF program every segment reaches its
//! connection's home worker and connections spread over the workers; with
//! `--steering off` the daemon runs on the kernel's default and says so.

use crate::names::{
    FOREIGN_SEGMENTS, PASSIVE_OPENS, STEERING_LOADED, STEERING_REFUSED, WORKER_PACKETS_IN,
};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tests::{DAEMON_V4, ECHO_PORT, Lab, Outcome, lab_with, scrape};
use tools::lab::client_addrs_v4;
use tools::load::churn::{self, ChurnOpts};

/// Two seconds of echo churn from `sources`; returns the connections.
fn churn_from(lab: &Lab, sources: Vec<IpAddr>) -> u64 {
    let mut opts = ChurnOpts::new(SocketAddr::new(IpAddr::V4(DAEMON_V4), ECHO_PORT));
    opts.duration = Duration::from_secs(2);
    opts.concurrency = 16;
    opts.threads = 2;
    opts.source_addrs = sources;
    let r = lab
        .in_netns(|| churn::run(&opts))
        .expect("enter the lab")
        .expect("churn runs");
    assert_eq!(r.errors.total(), 0, "{r}");
    assert!(r.ok >= 200, "{r}");
    r.ok
}

/// Two seconds of echo churn from the lab's many client addresses.
fn churn(lab: &Lab) -> u64 {
    churn_from(lab, client_addrs_v4())
}

pub fn ebpf_steering_keeps_every_segment_on_its_home_worker() -> Outcome {
    let lab = lab_with(2, &["--steering", "ebpf"]);
    let before = scrape(&lab);
    assert_eq!(
        before.sum(STEERING_LOADED),
        1.0,
        "the program should load as root"
    );
    assert_eq!(before.sum(STEERING_REFUSED), 0.0);
    // One client address: only the ports tell its connections apart, and
    // Linux hands one client ports of one parity while it can (a hash whose
    // queue followed the port's parity put every connection on one worker).
    let ok = churn_from(&lab, client_addrs_v4()[..1].to_vec());
    let after = scrape(&lab);
    assert_eq!(
        (after.sum(PASSIVE_OPENS) - before.sum(PASSIVE_OPENS)) as u64,
        ok
    );
    assert_eq!(
        after.sum(FOREIGN_SEGMENTS) - before.sum(FOREIGN_SEGMENTS),
        0.0,
        "every segment of a connection should reach its home worker"
    );
    // The tuples spread over both workers (the hash is keyed; with some
    // thousand connections either side far exceeds a quarter).
    let frames = |w: &str| {
        after.sum_where(WORKER_PACKETS_IN, &format!("worker=\"{w}\""))
            - before.sum_where(WORKER_PACKETS_IN, &format!("worker=\"{w}\""))
    };
    let (w0, w1) = (frames("0"), frames("1"));
    assert!(
        w0 > (w0 + w1) / 4.0 && w1 > (w0 + w1) / 4.0,
        "frames per worker {w0} and {w1}"
    );
    Outcome::Passed
}

pub fn steering_off_runs_on_the_kernels_default_and_says_so() -> Outcome {
    let lab = lab_with(2, &["--steering", "off"]);
    let m = scrape(&lab);
    assert_eq!(m.sum(STEERING_LOADED), 0.0);
    assert_eq!(m.sum(STEERING_REFUSED), 0.0, "off is not a refusal");
    churn(&lab);
    let after = scrape(&lab);
    eprintln!(
        "steering off: {} foreign segments",
        after.sum(FOREIGN_SEGMENTS)
    );
    let log = std::fs::read_to_string(lab.log()).expect("daemon log");
    assert!(log.contains("--steering off"), "{log}");
    Outcome::Passed
}

pub fn steering_refused_falls_back_logs_why_and_serves() -> Outcome {
    let lab = lab_with(2, &["--steering", "force-fallback"]);
    let m = scrape(&lab);
    assert_eq!(m.sum(STEERING_LOADED), 0.0);
    assert_eq!(m.sum(STEERING_REFUSED), 1.0, "a refusal is counted");
    churn(&lab);
    let log = std::fs::read_to_string(lab.log()).expect("daemon log");
    assert!(
        log.contains("refused") && log.contains("force-fallback"),
        "the log names the refusal and its reason: {log}"
    );
    Outcome::Passed
}
