//! `smrnetd`: the Stack as a daemon on a multi-queue TUN device.
//!
//! Packet workers are plain threads, one per TUN queue, each the only driver
//! of its `netstack::Worker`; tokio runs only the control plane (signals and
//! the metrics listener). See `run` for the lifecycle.

pub mod config;
pub mod pcap;

/// Runs the daemon until SIGINT/SIGTERM (Ok) or a fatal error.
pub fn run(cfg: config::Config) -> Result<(), String> {
    let _ = cfg;
    Err("not built yet".to_owned())
}
