//! Per-worker packet counters, summed on demand.
//!
//! Each worker owns one [`WorkerCounters`] block and is its only writer; a scraper
//! on another thread reads it. So every counter is an `AtomicU64` updated with a
//! Relaxed load and store (statistics only: no read-modify-write, no ordering with
//! anything else), and the block is aligned to 128 bytes so two workers' blocks
//! never share a cache line (or an adjacent-line prefetch pair). Invariant: for
//! every frame recorded, exactly one of `delivered` or one drop counter grows, so
//! `in_receives == delivered + sum(drops)`.
//!
//! Names follow the Linux MIBs (`/proc/net/snmp`, `nstat`) where one exists:
//!
//! | here | Linux | counts |
//! |---|---|---|
//! | `in_receives` | `Ip: InReceives` | every frame handed to the parser |
//! | `in_segs` | `Tcp: InSegs` | frames that reached TCP, errors included |
//! | `in_errs` | `Tcp: InErrs` | TCP segments dropped as malformed |
//! | `in_csum_errors` | `Tcp/Ip/Icmp: InCsumErrors` (summed) | any checksum failure |
//! | `in_hdr_errors` | `Ip: InHdrErrors` | IP-level damage (version, length, checksum, ext header) |
//! | `in_addr_errors` | `Ip: InAddrErrors` | `martian_address` |
//! | `in_unknown_protos` | `Ip: InUnknownProtos` | `unsupported_protocol` |
//! | `icmp_in_echos` | `Icmp: InEchos` / `Icmp6: InEchos` | echo requests delivered |
//! | `drop_<reason>` | (none: finer than the kernel) | one per [`Drop`] |

use core::sync::atomic::{AtomicU64, Ordering};

use crate::wire::{Datagram, Drop, Transport};

smr::counter_block! {
    /// One worker's wire counters (the kernel-style totals; the drops by
    /// reason sit beside them in [`WorkerCounters`]).
    pub struct WireCounters(AtomicU64);
    /// Plain values of [`WireCounters`].
    pub struct WireCountersSnapshot;
    /// The Prometheus names of the wire counters the daemon exports.
    pub mod wire_names;
    /// Frames handed to the parser (`Ip: InReceives`).
    in_receives
        => Counter Count IP_IN_RECEIVES = "smrnet_ip_in_receives_total",
        "Frames read from the TUN device and parsed (Ip: InReceives).";
    /// Frames parsed into a datagram.
    delivered
        => Counter Count IP_IN_DELIVERS = "smrnet_ip_in_delivers_total",
        "Frames parsed into a datagram.";
    /// `Tcp: InSegs`.
    in_segs
        => Counter Count TCP_IN_SEGS = "smrnet_tcp_in_segs_total",
        "TCP segments received, errors included (Tcp: InSegs).";
    /// `Tcp: InErrs`.
    in_errs
        => Counter Count TCP_IN_ERRS = "smrnet_tcp_in_errs_total",
        "TCP segments dropped as malformed (Tcp: InErrs).";
    /// `InCsumErrors`, all protocols.
    in_csum_errors
        => Counter Count IN_CSUM_ERRORS = "smrnet_in_csum_errors_total",
        "Frames with a bad IP, TCP or ICMP checksum (InCsumErrors).";
    /// `Ip: InHdrErrors`.
    in_hdr_errors
        => Counter Count IP_IN_HDR_ERRORS = "smrnet_ip_in_hdr_errors_total",
        "Frames with IP-level damage (Ip: InHdrErrors).";
    /// `Ip: InAddrErrors`.
    in_addr_errors
        => Counter Count IP_IN_ADDR_ERRORS = "smrnet_ip_in_addr_errors_total",
        "Frames with a martian address (Ip: InAddrErrors).";
    /// `Ip: InUnknownProtos`.
    in_unknown_protos
        => Counter Count IP_IN_UNKNOWN_PROTOS = "smrnet_ip_in_unknown_protos_total",
        "Frames of an unsupported protocol (Ip: InUnknownProtos).";
    /// `Icmp: InEchos`.
    icmp_in_echos
        => Counter Count ICMP_IN_ECHOS = "smrnet_icmp_in_echos_total",
        "ICMP/ICMPv6 echo requests received.";
}

/// The labelled family the drops by reason are exported as.
pub mod drop_names {
    smr::metric_table! {
        /// The drops family (one sample per [`Drop`](crate::Drop) reason,
        /// labelled `reason`).
        pub const DROP_METRICS;
        drops: Counter Count IP_DROPS = "smrnet_ip_drops_total", "Frames dropped by the parser, by reason.";
    }
}

/// One worker's counters. Write from the owning worker only.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerCounters {
    wire: WireCounters,
    drops: [AtomicU64; Drop::COUNT],
}

// Only the owning worker writes these counters.
use smr::stat::bump;

impl WorkerCounters {
    /// A block of zeros.
    pub fn new() -> WorkerCounters {
        WorkerCounters::default()
    }

    /// Counts the outcome of parsing one frame.
    pub fn record(&self, outcome: &Result<Datagram<'_>, Drop>) {
        let w = &self.wire;
        match outcome {
            Ok(datagram) => {
                bump(&w.in_receives);
                bump(&w.delivered);
                match datagram.transport {
                    Transport::Tcp(_) => bump(&w.in_segs),
                    Transport::EchoRequest(_) => bump(&w.icmp_in_echos),
                }
            }
            Err(reason) => self.record_drop(*reason),
        }
    }

    /// Counts one frame received and dropped, and the kernel-style totals it belongs to.
    pub fn record_drop(&self, reason: Drop) {
        let w = &self.wire;
        bump(&w.in_receives);
        if let Some(counter) = self.drops.get(reason.index()) {
            bump(counter);
        }
        if reason.is_tcp() {
            bump(&w.in_segs);
            bump(&w.in_errs);
        }
        if reason.is_checksum() {
            bump(&w.in_csum_errors);
        }
        match reason {
            Drop::MartianAddress => bump(&w.in_addr_errors),
            Drop::UnsupportedProtocol => bump(&w.in_unknown_protos),
            Drop::TruncatedIp
            | Drop::BadIpVersion
            | Drop::BadIpHeaderLen
            | Drop::BadIpChecksum
            | Drop::BadIpv6ExtHeader => bump(&w.in_hdr_errors),
            _ => {}
        }
    }

    /// A consistent-enough copy (each counter read once, Relaxed) for reporting.
    pub fn snapshot(&self) -> CounterSnapshot {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            wire: self.wire.snapshot(),
            drops: core::array::from_fn(|i| self.drops.get(i).map_or(0, read)),
        }
    }
}

/// Plain counter values, from one worker or summed over many: the wire
/// counters (reached through `Deref`, e.g. `snapshot.in_receives`) and the
/// drops by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// The kernel-style totals.
    pub wire: WireCountersSnapshot,
    drops: [u64; Drop::COUNT],
}

impl core::ops::Deref for CounterSnapshot {
    type Target = WireCountersSnapshot;
    fn deref(&self) -> &WireCountersSnapshot {
        &self.wire
    }
}

impl CounterSnapshot {
    /// Frames dropped for `reason`.
    pub fn drops(&self, reason: Drop) -> u64 {
        self.drops.get(reason.index()).copied().unwrap_or(0)
    }

    /// Frames dropped for any reason.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Every counter as `(metric name, value)`, drops named `drop_<reason>`.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        const DROP_NAMES: [&str; Drop::COUNT] = {
            // The metric names are `drop_` + `Drop::name`; spelled out so they are
            // `&'static str` without allocation.
            [
                "drop_truncated_ip",
                "drop_bad_ip_version",
                "drop_bad_ip_header_len",
                "drop_bad_ip_checksum",
                "drop_ip_fragment",
                "drop_bad_ipv6_ext_header",
                "drop_martian_address",
                "drop_unsupported_protocol",
                "drop_truncated_tcp",
                "drop_bad_tcp_offset",
                "drop_bad_tcp_checksum",
                "drop_bad_tcp_port",
                "drop_bad_tcp_option",
                "drop_truncated_icmp",
                "drop_bad_icmp_checksum",
                "drop_icmp_ignored",
            ]
        };
        self.wire
            .iter()
            .chain(DROP_NAMES.into_iter().zip(self.drops))
    }

    fn add(mut self, other: &CounterSnapshot) -> CounterSnapshot {
        self.wire.add(&other.wire);
        for (mine, theirs) in self.drops.iter_mut().zip(other.drops) {
            *mine += theirs;
        }
        self
    }
}

/// Sums the counters of every worker.
pub fn sum<'a>(workers: impl IntoIterator<Item = &'a WorkerCounters>) -> CounterSnapshot {
    workers
        .into_iter()
        .fold(CounterSnapshot::default(), |acc, w| acc.add(&w.snapshot()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_metric_names_are_prefixed_reason_names() {
        let snapshot = CounterSnapshot::default();
        let names: Vec<_> = snapshot.iter().map(|(n, _)| n).collect();
        for reason in Drop::ALL {
            let want = format!("drop_{}", reason.name());
            assert!(names.contains(&want.as_str()), "{want} missing");
        }
    }

    #[test]
    fn a_bad_tcp_checksum_counts_everywhere_the_kernel_would() {
        let worker = WorkerCounters::new();
        worker.record(&Err(Drop::BadTcpChecksum));
        let s = worker.snapshot();
        assert_eq!(
            (s.in_receives, s.in_segs, s.in_errs, s.in_csum_errors),
            (1, 1, 1, 1)
        );
        assert_eq!(s.drops(Drop::BadTcpChecksum), 1);
        assert_eq!(s.total_drops(), 1);
    }

    #[test]
    fn sum_adds_every_worker() {
        let workers = [WorkerCounters::new(), WorkerCounters::new()];
        workers[0].record_drop(Drop::Fragment);
        workers[1].record_drop(Drop::Fragment);
        workers[1].record_drop(Drop::MartianAddress);
        let total = sum(&workers);
        assert_eq!(total.drops(Drop::Fragment), 2);
        assert_eq!(total.in_addr_errors, 1);
        assert_eq!(total.total_drops(), 3);
    }

    #[test]
    fn blocks_do_not_share_cache_lines() {
        assert_eq!(core::mem::align_of::<WorkerCounters>(), 128);
    }
}
