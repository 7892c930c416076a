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

/// One worker's counters. Write from the owning worker only.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerCounters {
    in_receives: AtomicU64,
    delivered: AtomicU64,
    in_segs: AtomicU64,
    in_errs: AtomicU64,
    in_csum_errors: AtomicU64,
    in_hdr_errors: AtomicU64,
    in_addr_errors: AtomicU64,
    in_unknown_protos: AtomicU64,
    icmp_in_echos: AtomicU64,
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
        match outcome {
            Ok(datagram) => {
                bump(&self.in_receives);
                bump(&self.delivered);
                match datagram.transport {
                    Transport::Tcp(_) => bump(&self.in_segs),
                    Transport::EchoRequest(_) => bump(&self.icmp_in_echos),
                }
            }
            Err(reason) => self.record_drop(*reason),
        }
    }

    /// Counts one frame received and dropped, and the kernel-style totals it belongs to.
    pub fn record_drop(&self, reason: Drop) {
        bump(&self.in_receives);
        if let Some(counter) = self.drops.get(reason.index()) {
            bump(counter);
        }
        if reason.is_tcp() {
            bump(&self.in_segs);
            bump(&self.in_errs);
        }
        if reason.is_checksum() {
            bump(&self.in_csum_errors);
        }
        match reason {
            Drop::MartianAddress => bump(&self.in_addr_errors),
            Drop::UnsupportedProtocol => bump(&self.in_unknown_protos),
            Drop::TruncatedIp
            | Drop::BadIpVersion
            | Drop::BadIpHeaderLen
            | Drop::BadIpChecksum
            | Drop::BadIpv6ExtHeader => bump(&self.in_hdr_errors),
            _ => {}
        }
    }

    /// A consistent-enough copy (each counter read once, Relaxed) for reporting.
    pub fn snapshot(&self) -> CounterSnapshot {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            in_receives: read(&self.in_receives),
            delivered: read(&self.delivered),
            in_segs: read(&self.in_segs),
            in_errs: read(&self.in_errs),
            in_csum_errors: read(&self.in_csum_errors),
            in_hdr_errors: read(&self.in_hdr_errors),
            in_addr_errors: read(&self.in_addr_errors),
            in_unknown_protos: read(&self.in_unknown_protos),
            icmp_in_echos: read(&self.icmp_in_echos),
            drops: core::array::from_fn(|i| self.drops.get(i).map_or(0, read)),
        }
    }
}

/// Plain counter values, from one worker or summed over many.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Frames handed to the parser (`Ip: InReceives`).
    pub in_receives: u64,
    /// Frames parsed into a datagram.
    pub delivered: u64,
    /// `Tcp: InSegs`.
    pub in_segs: u64,
    /// `Tcp: InErrs`.
    pub in_errs: u64,
    /// `InCsumErrors`, all protocols.
    pub in_csum_errors: u64,
    /// `Ip: InHdrErrors`.
    pub in_hdr_errors: u64,
    /// `Ip: InAddrErrors`.
    pub in_addr_errors: u64,
    /// `Ip: InUnknownProtos`.
    pub in_unknown_protos: u64,
    /// `Icmp: InEchos`.
    pub icmp_in_echos: u64,
    drops: [u64; Drop::COUNT],
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
        [
            ("in_receives", self.in_receives),
            ("delivered", self.delivered),
            ("in_segs", self.in_segs),
            ("in_errs", self.in_errs),
            ("in_csum_errors", self.in_csum_errors),
            ("in_hdr_errors", self.in_hdr_errors),
            ("in_addr_errors", self.in_addr_errors),
            ("in_unknown_protos", self.in_unknown_protos),
            ("icmp_in_echos", self.icmp_in_echos),
        ]
        .into_iter()
        .chain(DROP_NAMES.into_iter().zip(self.drops))
    }

    fn add(mut self, other: &CounterSnapshot) -> CounterSnapshot {
        self.in_receives += other.in_receives;
        self.delivered += other.delivered;
        self.in_segs += other.in_segs;
        self.in_errs += other.in_errs;
        self.in_csum_errors += other.in_csum_errors;
        self.in_hdr_errors += other.in_hdr_errors;
        self.in_addr_errors += other.in_addr_errors;
        self.in_unknown_protos += other.in_unknown_protos;
        self.icmp_in_echos += other.icmp_in_echos;
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
