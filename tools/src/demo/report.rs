//! The demo's report: one struct, written as JSON and as the Markdown the
//! command prints.

use super::{HoldPhase, Plan};
use crate::load::churn::ChurnReport;
use crate::load::syn::{Scrape, SynReport, success_ratio};
use smrnetd::metrics::names as metric;
use std::fmt::Write as _;
use std::time::Duration;

#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoReport {
    pub lab: String,
    pub plan: Plan,
    pub churn: Option<ChurnPhase>,
    pub hold: Option<HoldPhase>,
    pub syn: Option<SynReport>,
    /// Most connection blocks ever waiting for readers at once, and their bytes.
    pub peak_pending_objects: Option<f64>,
    pub peak_pending_bytes: Option<f64>,
    /// Blocks freed per SMR advance, at the end.
    pub frees_per_advance: Option<f64>,
    pub smr_advances: Option<f64>,
    pub seconds: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ChurnPhase {
    pub report: ChurnReport,
    pub passive_opens: Option<f64>,
    pub frees_per_advance: Option<f64>,
}

impl DemoReport {
    pub(super) fn new(plan: Plan, lab: &str) -> DemoReport {
        DemoReport {
            lab: lab.to_string(),
            plan,
            churn: None,
            hold: None,
            syn: None,
            peak_pending_objects: None,
            peak_pending_bytes: None,
            frees_per_advance: None,
            smr_advances: None,
            seconds: 0.0,
        }
    }

    pub(super) fn churn(&mut self, report: ChurnReport, before: &Scrape, after: &Scrape) {
        let delta = |n: &str| Some(after.get(n)? - before.get(n).unwrap_or(0.0));
        self.churn = Some(ChurnPhase {
            report,
            passive_opens: delta(metric::TCP_PASSIVE_OPENS),
            frees_per_advance: after.get(metric::POOL_FREES_PER_ADVANCE),
        });
    }

    pub(super) fn hold(&mut self, phase: HoldPhase) {
        self.hold = Some(phase);
    }

    pub(super) fn syn(&mut self, report: SynReport) {
        self.syn = Some(report);
    }

    pub(super) fn finish(&mut self, last: &Scrape, took: Duration) {
        self.peak_pending_objects = last.get(metric::POOL_PEAK_PENDING_OBJECTS);
        self.peak_pending_bytes = last.get(metric::POOL_PEAK_PENDING_BYTES);
        self.frees_per_advance = last.get(metric::POOL_FREES_PER_ADVANCE);
        self.smr_advances = last.get(metric::SMR_ADVANCES);
        self.seconds = took.as_secs_f64();
    }

    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let ms = |us: u64| us as f64 / 1e3;
        let opt =
            |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |v| format!("{v:.0}{unit}"));
        let _ = writeln!(s, "# smrnet demo (lab {})\n", self.lab);
        let _ = writeln!(
            s,
            "Phases of {} s; hold of {} connections; {:.0} s in all.\n",
            self.plan.phase_secs, self.plan.hold_connections, self.seconds
        );
        if let Some(c) = &self.churn {
            let r = &c.report;
            let _ = writeln!(
                s,
                "## Connection churn (connect, echo 64 bytes, verify, close)\n"
            );
            let _ = writeln!(
                s,
                "- {:.0} connections/s: {} ok of {} attempted, {} errors, {} concurrent",
                r.conns_per_sec,
                r.ok,
                r.attempted,
                r.errors.total(),
                r.concurrency
            );
            let _ = writeln!(
                s,
                "- connect latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; whole transaction p50 {:.3} ms, p99 {:.3} ms",
                ms(r.connect_latency.p50_us),
                ms(r.connect_latency.p99_us),
                ms(r.connect_latency.max_us),
                ms(r.transaction_latency.p50_us),
                ms(r.transaction_latency.p99_us)
            );
            let _ = writeln!(
                s,
                "- the daemon counted {} passive opens; {} blocks freed per SMR advance\n",
                opt(c.passive_opens, ""),
                c.frees_per_advance
                    .map_or("n/a".into(), |v| format!("{v:.1}"))
            );
        }
        if let Some(f) = &self.syn {
            let _ = writeln!(s, "## SYN flood with a legitimate client\n");
            let _ = writeln!(
                s,
                "- {} spoofed SYNs from {} in {:.1} s: {:.0} SYN/s ({})",
                f.flood.sent,
                f.spoof_prefix,
                f.flood.seconds,
                f.flood.pps,
                f.rate_limit
                    .map_or("unlimited, one sender thread".into(), |r| format!(
                        "limit {r}/s"
                    ))
            );
            for (label, p) in [("no flood", &f.baseline), ("under flood", &f.under_flood)] {
                if let Some(p) = p {
                    let _ = writeln!(
                        s,
                        "- legit {label}: {:.3} % success ({} of {}), {:.0} conn/s, connect p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                        success_ratio(p) * 100.0,
                        p.ok,
                        p.attempted,
                        p.conns_per_sec,
                        ms(p.connect_latency.p50_us),
                        ms(p.connect_latency.p99_us),
                        ms(p.connect_latency.max_us)
                    );
                }
            }
            if let Some(r) = f.legit_rate_ratio {
                let _ = writeln!(
                    s,
                    "- legit rate under flood: {:.1} % of no-flood",
                    r * 100.0
                );
            }
            let d = |n: &str| f.daemon.get(n).copied();
            let _ = writeln!(
                s,
                "- SYN cache: {} added, {} overflowed to cookies; cookies: {} sent, {} validated; {} SYNs reached the listener, {} lost in the full TUN queue\n",
                opt(d(metric::SYNCACHE_ADDED), ""),
                opt(d(metric::SYNCACHE_OVERFLOWS), ""),
                opt(d(metric::SYNCOOKIES_SENT), ""),
                opt(d(metric::SYNCOOKIES_VALIDATED), ""),
                opt(d(metric::LISTEN_SYNS), ""),
                opt(d(crate::load::syn::TUN_DROPPED), "")
            );
        }
        if let Some(h) = &self.hold {
            let mib = |b: Option<u64>| {
                b.map_or("n/a".to_string(), |b| {
                    format!("{:.1} MiB", b as f64 / 1048576.0)
                })
            };
            let _ = writeln!(s, "## Hold\n");
            let _ = writeln!(
                s,
                "- {} of {} connections established in {:.2} s ({:.0}/s), connect p99 {:.3} ms",
                h.established,
                h.requested,
                h.setup_secs,
                h.setup_per_sec,
                ms(h.connect_p99_us),
            );
            let _ = writeln!(
                s,
                "- daemon RSS {} -> {} while holding: {} bytes per connection ({} table entries)",
                mib(h.rss_before_bytes),
                mib(h.rss_held_bytes),
                opt(h.rss_per_conn_bytes, ""),
                h.table_entries_held.map_or("n/a".into(), |t| t.to_string()),
            );
            let _ = writeln!(
                s,
                "- after closing them all at once: {}\n",
                match (h.drained, h.drain_secs) {
                    (Some(true), Some(t)) =>
                        format!("the table and pending pool drained in {t:.2} s"),
                    (Some(false), Some(t)) => format!(
                        "NOT drained after {t:.0} s ({} entries left in the table)",
                        h.table_entries_after.map_or("?".into(), |t| t.to_string())
                    ),
                    _ => "drain not checked".to_string(),
                }
            );
        }
        let _ = writeln!(s, "## Safe memory reclamation\n");
        let _ = writeln!(
            s,
            "- peak blocks waiting for readers: {} ({} bytes); {} blocks freed per SMR advance; {} SMR advances",
            opt(self.peak_pending_objects, ""),
            opt(self.peak_pending_bytes, ""),
            self.frees_per_advance
                .map_or("n/a".into(), |v| format!("{v:.1}")),
            opt(self.smr_advances, "")
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::super::utc_stamp;

    #[test]
    fn utc_stamps_name_the_right_day_and_time() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        // 2000-02-29 12:34:56 UTC (a leap day in a century year).
        assert_eq!(utc_stamp(951_827_696), "20000229T123456Z");
        // 2026-11-23 13:22:59 UTC.
        assert_eq!(utc_stamp(1_795_440_179), "20261123T132259Z");
    }
}
