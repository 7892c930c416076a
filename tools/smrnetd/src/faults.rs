//! What happened around the daemon, as counters: device events, reloads,
//! a capture that stopped, a metrics listener that could not be bound.
//! Each has one writer (the device thread, or the control plane, or the
//! worker that holds the pcap lock); the metrics task only reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use metrics::{counter, gauge};

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

/// The names of what [`Faults::refresh`] writes.
pub mod names {
    smr::metric_table! {
        /// What [`Faults::refresh`](super::Faults::refresh) writes.
        pub(crate) const DESCRIBED;
        device_events: Counter Count DEVICE_EVENTS = "smrnet_device_events_total",
            "Events on the TUN device by kind: link_down, link_up, address_removed, address_restored, mtu_changed, mtu_restored, restore_failed, resync.";
        device_link_up: Gauge Count DEVICE_LINK_UP = "smrnet_device_link_up",
            "1 while the TUN device is administratively up.";
        reloads: Counter Count RELOADS = "smrnet_reloads_total",
            "SIGHUP reloads by result: applied, refused.";
        pcap_stopped: Gauge Count PCAP_STOPPED = "smrnet_pcap_stopped",
            "1 once the pcap capture has stopped on a write error.";
        metrics_bind_failures: Counter Count METRICS_BIND_FAILURES = "smrnet_metrics_bind_failures_total",
            "Failed attempts to bind the metrics listener (it is retried).";
        metrics_accept_failures: Counter Count METRICS_ACCEPT_FAILURES = "smrnet_metrics_accept_failures_total",
            "Failed accepts on the metrics listener (backed off, retried).";
    }
}

pub(crate) use names::DESCRIBED;

/// Relaxed: statistics only.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Faults {
    /// Writes the current values (inside the recorder's scope).
    pub fn refresh(&self) {
        for kind in Kind::ALL {
            counter!(names::DEVICE_EVENTS, "kind" => kind.name())
                .absolute(self.device.events(kind));
        }
        gauge!(names::DEVICE_LINK_UP).set(f64::from(u8::from(self.device.link_up())));
        // Relaxed: statistics only.
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter!(names::RELOADS, "result" => "applied").absolute(read(&self.reloads_applied));
        counter!(names::RELOADS, "result" => "refused").absolute(read(&self.reloads_refused));
        gauge!(names::PCAP_STOPPED).set(f64::from(u8::from(
            self.pcap_stopped.load(Ordering::Relaxed),
        )));
        counter!(names::METRICS_BIND_FAILURES).absolute(read(&self.metrics_bind_failures));
        counter!(names::METRICS_ACCEPT_FAILURES).absolute(read(&self.metrics_accept_failures));
    }
}
