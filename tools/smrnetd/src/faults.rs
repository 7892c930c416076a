//! What happened around the daemon, as counters: device events, reloads,
//! a capture that stopped, a metrics listener that could not be bound.
//! Each has one writer (the device thread, or the control plane, or the
//! worker that holds the pcap lock); the metrics task only reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use metrics::{Unit, counter, describe_counter, describe_gauge, gauge};

use super::device::{DeviceStats, Kind};

/// The fault counters the daemon exports.
#[derive(Debug, Default)]
pub struct Faults {
    pub device: Arc<DeviceStats>,
    /// SIGHUP reloads applied / refused (the file was bad or asked for a
    /// change that needs a restart).
    pub reloads_applied: AtomicU64,
    pub reloads_refused: AtomicU64,
    /// The pcap capture stopped on a write error (disk full).
    pub pcap_stopped: AtomicBool,
    /// Attempts to bind the metrics listener that failed.
    pub metrics_bind_failures: AtomicU64,
    /// Accepts on the metrics listener that failed.
    pub metrics_accept_failures: AtomicU64,
}

/// `(name, unit, help, is_counter)` of what [`Faults::refresh`] writes.
const DESCRIBED: &[(&str, Unit, &str, bool)] = &[
    (
        "smrnet_device_events_total",
        Unit::Count,
        "Events on the TUN device by kind: link_down, link_up, address_removed, address_restored, mtu_changed, mtu_restored, restore_failed, resync.",
        true,
    ),
    (
        "smrnet_device_link_up",
        Unit::Count,
        "1 while the TUN device is administratively up.",
        false,
    ),
    (
        "smrnet_reloads_total",
        Unit::Count,
        "SIGHUP reloads by result: applied, refused.",
        true,
    ),
    (
        "smrnet_pcap_stopped",
        Unit::Count,
        "1 once the pcap capture has stopped on a write error.",
        false,
    ),
    (
        "smrnet_metrics_bind_failures_total",
        Unit::Count,
        "Failed attempts to bind the metrics listener (it is retried).",
        true,
    ),
    (
        "smrnet_metrics_accept_failures_total",
        Unit::Count,
        "Failed accepts on the metrics listener (backed off, retried).",
        true,
    ),
];

/// Relaxed: statistics only.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Faults {
    /// Describes the metrics (inside the recorder's scope).
    pub fn describe() {
        for (name, unit, help, is_counter) in DESCRIBED {
            if *is_counter {
                describe_counter!(*name, *unit, *help);
            } else {
                describe_gauge!(*name, *unit, *help);
            }
        }
    }

    /// Writes the current values (inside the recorder's scope).
    pub fn refresh(&self) {
        for kind in Kind::ALL {
            counter!("smrnet_device_events_total", "kind" => kind.name())
                .absolute(self.device.events(kind));
        }
        gauge!("smrnet_device_link_up").set(f64::from(u8::from(self.device.link_up())));
        // Relaxed: statistics only.
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter!("smrnet_reloads_total", "result" => "applied")
            .absolute(read(&self.reloads_applied));
        counter!("smrnet_reloads_total", "result" => "refused")
            .absolute(read(&self.reloads_refused));
        gauge!("smrnet_pcap_stopped").set(f64::from(u8::from(
            self.pcap_stopped.load(Ordering::Relaxed),
        )));
        counter!("smrnet_metrics_bind_failures_total").absolute(read(&self.metrics_bind_failures));
        counter!("smrnet_metrics_accept_failures_total")
            .absolute(read(&self.metrics_accept_failures));
    }
}
