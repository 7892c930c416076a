//! The flood's report: what was sent, what the legitimate client saw
//! without and with the flood, and what the daemon counted.

use super::{FloodReport, OptionsMode, SynArgs, success_ratio};
use crate::load::churn::ChurnReport;
use smrnetd::metrics::names as metric;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, serde::Serialize)]
pub struct SynReport {
    pub target: String,
    pub spoof_prefix: String,
    pub options: OptionsMode,
    pub rate_limit: Option<u64>,
    pub seed: u64,
    pub flood: FloodReport,
    /// The probe alone, before the flood.
    pub baseline: Option<ChurnReport>,
    /// The probe during the flood.
    pub under_flood: Option<ChurnReport>,
    /// Legit connections per second under flood / without.
    pub legit_rate_ratio: Option<f64>,
    /// (`smrnet_listen_syns_total` growth over the flood - legit attempts)
    /// / SYNs sent: the share of the flood that reached the listener.
    pub listen_syns_per_sent: Option<f64>,
    /// The daemon's counters, after minus before the flood.
    pub daemon: BTreeMap<String, f64>,
}

impl SynReport {
    pub(super) fn new(
        args: &SynArgs,
        seed: u64,
        flood: FloodReport,
        baseline: Option<ChurnReport>,
        under_flood: Option<ChurnReport>,
        daemon: BTreeMap<String, f64>,
    ) -> SynReport {
        let legit_rate_ratio = match (&baseline, &under_flood) {
            (Some(b), Some(u)) if b.conns_per_sec > 0.0 => Some(u.conns_per_sec / b.conns_per_sec),
            _ => None,
        };
        // Each legit transaction sent one SYN too (retransmissions aside).
        let legit = under_flood.as_ref().map_or(0, |u| u.attempted) as f64;
        let listen_syns_per_sent = daemon
            .get(metric::LISTEN_SYNS)
            .filter(|_| flood.sent > 0)
            .map(|d| (d - legit).max(0.0) / flood.sent as f64);
        SynReport {
            target: args.target.to_string(),
            spoof_prefix: args.spoof().to_string(),
            options: args.options,
            rate_limit: args.rate,
            seed,
            flood,
            baseline,
            under_flood,
            legit_rate_ratio,
            listen_syns_per_sent,
            daemon,
        }
    }
}

fn probe_line(f: &mut fmt::Formatter<'_>, label: &str, p: &ChurnReport) -> fmt::Result {
    writeln!(
        f,
        "  {label:<12} {:>8} ok / {:>6} tried ({:>7.3} %), {:>8.0} conn/s, connect p50 {:.2} ms  \
         p99 {:.2} ms  max {:.2} ms",
        p.ok,
        p.attempted,
        success_ratio(p) * 100.0,
        p.conns_per_sec,
        p.connect_latency.p50_us as f64 / 1e3,
        p.connect_latency.p99_us as f64 / 1e3,
        p.connect_latency.max_us as f64 / 1e3,
    )
}

impl fmt::Display for SynReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = self
            .rate_limit
            .map_or("unlimited".to_string(), |r| format!("{r} SYN/s"));
        writeln!(
            f,
            "SYN flood to {} from {} (options {:?}, rate {rate}, seed {})",
            self.target, self.spoof_prefix, self.options, self.seed
        )?;
        writeln!(
            f,
            "  sent         {} SYNs in {:.2} s on {} thread(s): {:.0} SYN/s ({} ENOBUFS back-offs)",
            self.flood.sent,
            self.flood.seconds,
            self.flood.threads,
            self.flood.pps,
            self.flood.send_errors
        )?;
        if let Some(r) = self.listen_syns_per_sent {
            writeln!(
                f,
                "  reached      {:.1} % of them were counted by the listener (legit SYNs excluded)",
                r * 100.0
            )?;
        }
        if let Some(b) = &self.baseline {
            writeln!(f, "legitimate churn probe (connect, echo 16 bytes, close):")?;
            probe_line(f, "no flood", b)?;
        }
        if let Some(u) = &self.under_flood {
            probe_line(f, "under flood", u)?;
        }
        if let Some(r) = self.legit_rate_ratio {
            writeln!(
                f,
                "  legit rate under flood: {:.1} % of no-flood",
                r * 100.0
            )?;
        }
        writeln!(f, "daemon counters over the flood:")?;
        for (name, delta) in &self.daemon {
            writeln!(f, "  {name:<42} {delta:>12.0}")?;
        }
        Ok(())
    }
}
