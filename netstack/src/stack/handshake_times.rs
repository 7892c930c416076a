//! SYN-to-ESTABLISHED time of passive opens, as a per-worker histogram with
//! power-of-two nanosecond buckets, summed on demand.
//!
//! One block per worker, written only by that worker (Relaxed load + store,
//! statistics only) and aligned so two workers never share a line. Only
//! handshakes completed from a SYN-cache entry are recorded: a SYN cookie
//! does not keep the SYN's arrival time, and recording zero would lie.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use core::time::Duration;

/// Buckets: bucket `i` counts times in `[2^i, 2^(i+1))` ns (bucket 0 also
/// holds 0); the last one holds everything from about 275 s up.
pub const HANDSHAKE_BUCKETS: usize = 39;

/// One worker's handshake times.
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct HandshakeTimes {
    buckets: [AtomicU64; HANDSHAKE_BUCKETS],
    sum_ns: AtomicU64,
}

impl Default for HandshakeTimes {
    fn default() -> Self {
        HandshakeTimes {
            buckets: core::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }
    }
}

// Only the owning worker records.
use smr::stat::add;

impl HandshakeTimes {
    /// Records one handshake that took `d`.
    pub(crate) fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let b = (63 - ns.max(1).leading_zeros() as usize).min(HANDSHAKE_BUCKETS - 1);
        add(&self.buckets[b], 1);
        add(&self.sum_ns, ns);
    }

    fn snapshot(&self) -> HandshakeHistogram {
        HandshakeHistogram {
            // Relaxed: statistics only.
            buckets: core::array::from_fn(|i| self.buckets[i].load(Relaxed)),
            sum_ns: self.sum_ns.load(Relaxed),
        }
    }
}

/// Handshake times summed over workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeHistogram {
    /// `buckets[i]` counts handshakes that took `[2^i, 2^(i+1))` ns.
    pub buckets: [u64; HANDSHAKE_BUCKETS],
    /// Total time of all recorded handshakes, in nanoseconds.
    pub sum_ns: u64,
}

impl HandshakeHistogram {
    /// Handshakes recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The sum over workers.
    pub(crate) fn sum<'a>(workers: impl IntoIterator<Item = &'a HandshakeTimes>) -> Self {
        let mut total = HandshakeHistogram {
            buckets: [0; HANDSHAKE_BUCKETS],
            sum_ns: 0,
        };
        for w in workers {
            let s = w.snapshot();
            for (t, b) in total.buckets.iter_mut().zip(s.buckets) {
                *t = t.wrapping_add(b);
            }
            total.sum_ns = total.sum_ns.wrapping_add(s.sum_ns);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_land_in_their_power_of_two_bucket_and_sum() {
        let w = [HandshakeTimes::default(), HandshakeTimes::default()];
        w[0].record(Duration::from_nanos(0));
        w[0].record(Duration::from_nanos(1500));
        w[1].record(Duration::from_nanos(2048));
        w[1].record(Duration::from_secs(100_000));
        let h = HandshakeHistogram::sum(&w);
        assert_eq!(h.count(), 4);
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[10], 1, "1500 ns is in [1024, 2048)");
        assert_eq!(h.buckets[11], 1);
        assert_eq!(h.buckets[HANDSHAKE_BUCKETS - 1], 1);
        assert_eq!(h.sum_ns, 1500 + 2048 + 100_000 * 1_000_000_000);
    }
}
