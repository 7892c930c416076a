//! Latency histograms (HDR, microsecond resolution) and the percentile
//! summary every load report carries.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::Duration;

/// The largest latency recorded exactly; longer ones are clamped to it (a
/// transaction is bounded by its timeouts well below this).
pub const MAX_MICROS: u64 = 3_600_000_000;

/// A histogram of latencies in microseconds, 3 significant digits.
#[derive(Clone, Debug)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Latencies {
        Latencies::new()
    }
}

impl Latencies {
    pub fn new() -> Latencies {
        Latencies(Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds"))
    }

    /// Record one latency (rounded down to µs, at least 1 µs, at most an hour).
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(us.clamp(1, MAX_MICROS));
    }

    pub fn add(&mut self, other: &Latencies) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// Every recorded value (the highest of its bucket) with its count: the
    /// histogram in a form that crosses a process boundary as JSON.
    pub fn counts(&self) -> Vec<(u64, u64)> {
        self.0
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }

    /// The histogram [`counts`](Latencies::counts) describes; values are
    /// clamped to the bounds, so another process's output cannot fail it.
    pub fn from_counts(counts: &[(u64, u64)]) -> Latencies {
        let mut l = Latencies::new();
        for &(us, n) in counts {
            l.0.saturating_record_n(us.clamp(1, MAX_MICROS), n);
        }
        l
    }

    pub fn summary(&self) -> LatencySummary {
        let h = &self.0;
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// Percentiles of one latency distribution, in microseconds. All zero when
/// nothing was recorded (`count == 0`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl std::fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {} p90 {} p99 {} p99.9 {} max {}",
            us(self.p50_us),
            us(self.p90_us),
            us(self.p99_us),
            us(self.p999_us),
            us(self.max_us)
        )
    }
}

/// `850µs`, `12.3ms`, `1.20s`.
fn us(v: u64) -> String {
    match v {
        0..1_000 => format!("{v}µs"),
        1_000..1_000_000 => format!("{:.1}ms", v as f64 / 1e3),
        _ => format!("{:.2}s", v as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut l = Latencies::new();
        // 1..=1000 µs, once each.
        for v in 1..=1000u64 {
            l.record(Duration::from_micros(v));
        }
        let s = l.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.p50_us, 500);
        assert_eq!(s.p90_us, 900);
        assert_eq!(s.p99_us, 990);
        assert_eq!(s.p999_us, 999);
        assert_eq!(s.max_us, 1000);
        assert!((s.mean_us - 500.5).abs() < 1.0, "{}", s.mean_us);
    }

    #[test]
    fn empty_is_all_zero_and_sub_microsecond_counts_as_one() {
        assert_eq!(Latencies::new().summary(), LatencySummary::default());
        let mut l = Latencies::new();
        l.record(Duration::from_nanos(10));
        l.record(Duration::from_secs(7200));
        let s = l.summary();
        assert_eq!(s.count, 2);
        assert_eq!(s.p50_us, 1);
        // Clamped to the bound (within the histogram's precision).
        assert!(s.max_us >= MAX_MICROS && s.max_us < MAX_MICROS + MAX_MICROS / 1000);
    }

    #[test]
    fn merging_adds_counts() {
        let (mut a, mut b) = (Latencies::new(), Latencies::new());
        a.record(Duration::from_millis(1));
        b.record(Duration::from_millis(3));
        b.record(Duration::from_millis(3));
        a.add(&b);
        let s = a.summary();
        assert_eq!(s.count, 3);
        assert_eq!(s.p50_us / 1000, 3);
        assert_eq!(s.max_us / 1000, 3);
    }

    #[test]
    fn human_units() {
        assert_eq!(us(850), "850µs");
        assert_eq!(us(12_345), "12.3ms");
        assert_eq!(us(1_200_000), "1.20s");
    }
}
