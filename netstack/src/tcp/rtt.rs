//! The retransmission timeout estimator of RFC 6298.
//!
//! The sender keeps a smoothed round-trip time (SRTT) and its mean deviation
//! (RTTVAR), and waits RTO = SRTT + max(G, 4·RTTVAR) before retransmitting, where G
//! is the clock granularity. The first sample R sets SRTT = R and RTTVAR = R/2;
//! each later sample R' moves RTTVAR a quarter of the way toward |SRTT - R'| (using
//! the SRTT from before this sample) and SRTT an eighth of the way toward R'. Before
//! any sample the RTO is 1 s (§2.1). Each expiry doubles the RTO (§5.5, "back off
//! the timer"); the next valid sample ends the backoff. Karn's rule (§3): a sample
//! from a segment that was retransmitted is ambiguous and must not be taken, unless
//! timestamps say which transmission the ACK answers (RFC 7323 §4).
//!
//! The floor is 1 s by default, as RFC 6298 §2.4 asks; Linux uses 200 ms
//! (`TCP_RTO_MIN`), which recovers faster on low-latency paths at the cost of
//! spurious retransmissions when a peer delays its ACKs (up to 200-500 ms), so it
//! is a setting here. The ceiling is 60 s (§2.5 allows any value at least that).
//! Invariant: `rto()` is always within `[min_rto, max_rto]`, and nothing overflows
//! however many times the timer backs off.

use core::time::Duration;

use crate::time::Instant;

/// Bounds and clock granularity for the estimator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtoConfig {
    /// Lower bound on the RTO (RFC 6298 §2.4: 1 s; Linux: 200 ms).
    pub min_rto: Duration,
    /// Upper bound on the RTO, backoff included (RFC 6298 §2.5: at least 60 s).
    pub max_rto: Duration,
    /// RTO before the first sample (RFC 6298 §2.1: 1 s).
    pub initial_rto: Duration,
    /// Clock granularity G.
    pub granularity: Duration,
}

impl Default for RtoConfig {
    fn default() -> RtoConfig {
        RtoConfig {
            min_rto: Duration::from_secs(1),
            max_rto: Duration::from_secs(60),
            initial_rto: Duration::from_secs(1),
            granularity: Duration::from_millis(1),
        }
    }
}

/// No more doublings than this are tracked; 2^16 × 1 ms already exceeds any sane cap.
const MAX_BACKOFF_SHIFT: u32 = 16;

/// RFC 6298 state for one connection.
#[derive(Clone, Copy, Debug)]
pub struct RttEstimator {
    config: RtoConfig,
    /// SRTT and RTTVAR, once there has been a sample.
    smoothed: Option<(Duration, Duration)>,
    /// How many times the timer has expired since the last valid sample.
    backoff: u32,
}

impl RttEstimator {
    /// A fresh estimator: no samples, RTO = `config.initial_rto` (clamped to the bounds).
    pub fn new(config: RtoConfig) -> RttEstimator {
        RttEstimator {
            config,
            smoothed: None,
            backoff: 0,
        }
    }

    /// SRTT, once there has been a sample.
    pub fn srtt(&self) -> Option<Duration> {
        self.smoothed.map(|(srtt, _)| srtt)
    }

    /// RTTVAR, once there has been a sample.
    pub fn rttvar(&self) -> Option<Duration> {
        self.smoothed.map(|(_, rttvar)| rttvar)
    }

    /// The RTO before backoff: SRTT + max(G, 4·RTTVAR), clamped to the bounds.
    pub fn base_rto(&self) -> Duration {
        let raw = match self.smoothed {
            None => self.config.initial_rto,
            Some((srtt, rttvar)) => {
                srtt.saturating_add(self.config.granularity.max(rttvar.saturating_mul(4)))
            }
        };
        self.clamp(raw)
    }

    /// The timeout to arm now: the base RTO doubled once per expiry, capped.
    pub fn rto(&self) -> Duration {
        let factor = 1u32 << self.backoff.min(MAX_BACKOFF_SHIFT);
        self.clamp(self.base_rto().saturating_mul(factor))
    }

    fn clamp(&self, rto: Duration) -> Duration {
        rto.max(self.config.min_rto)
            .min(self.config.max_rto.max(self.config.min_rto))
    }

    /// Takes one round-trip measurement (RFC 6298 §2.2-2.3) and ends any backoff.
    pub fn on_sample(&mut self, rtt: Duration) {
        self.smoothed = Some(match self.smoothed {
            None => (rtt, rtt / 2),
            Some((srtt, rttvar)) => {
                let deviation = srtt.abs_diff(rtt);
                // RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|, with the old SRTT.
                let rttvar = (rttvar.saturating_mul(3) + deviation) / 4;
                // SRTT <- 7/8 SRTT + 1/8 R'.
                let srtt = (srtt.saturating_mul(7) + rtt) / 8;
                (srtt, rttvar)
            }
        });
        self.backoff = 0;
    }

    /// The retransmission timer expired: back off (RFC 6298 §5.5).
    pub fn on_timeout(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// How many times the timer has backed off since the last sample.
    pub fn backoff(&self) -> u32 {
        self.backoff
    }
}

/// Karn's rule: the RTT sample an ACK yields for a segment sent at `sent_at`, or
/// `None` if the segment was retransmitted and nothing (no timestamp echo) says
/// which transmission is being acknowledged.
pub fn karn_sample(
    sent_at: Instant,
    now: Instant,
    retransmitted: bool,
    timestamp_echo: bool,
) -> Option<Duration> {
    (!retransmitted || timestamp_echo).then(|| now - sent_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn linux_like() -> RtoConfig {
        RtoConfig {
            min_rto: ms(200),
            ..RtoConfig::default()
        }
    }

    #[test]
    fn before_any_sample_the_rto_is_one_second() {
        assert_eq!(
            RttEstimator::new(RtoConfig::default()).rto(),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn the_first_sample_sets_srtt_and_half_of_it_as_rttvar() {
        let mut est = RttEstimator::new(linux_like());
        est.on_sample(ms(100));
        assert_eq!(est.srtt(), Some(ms(100)));
        assert_eq!(est.rttvar(), Some(ms(50)));
        // RTO = 100 + max(1, 4 × 50) = 300 ms.
        assert_eq!(est.rto(), ms(300));
    }

    #[test]
    fn later_samples_follow_the_rfc_formulas() {
        let mut est = RttEstimator::new(linux_like());
        est.on_sample(ms(100));
        est.on_sample(ms(200));
        // RTTVAR = 3/4 × 50 + 1/4 × |100 - 200| = 62.5; SRTT = 7/8 × 100 + 1/8 × 200 = 112.5.
        assert_eq!(est.rttvar(), Some(Duration::from_micros(62_500)));
        assert_eq!(est.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(est.rto(), Duration::from_micros(112_500 + 250_000));
    }

    #[test]
    fn the_floor_applies_and_defaults_to_one_second() {
        let mut est = RttEstimator::new(RtoConfig::default());
        est.on_sample(ms(10));
        assert_eq!(est.rto(), Duration::from_secs(1));
        let mut fast = RttEstimator::new(linux_like());
        fast.on_sample(ms(10));
        assert_eq!(fast.rto(), ms(200));
    }

    #[test]
    fn granularity_bounds_the_variance_term() {
        let config = RtoConfig {
            min_rto: Duration::ZERO,
            granularity: ms(50),
            ..RtoConfig::default()
        };
        let mut est = RttEstimator::new(config);
        for _ in 0..200 {
            est.on_sample(ms(40));
        }
        // RTTVAR decays toward 0, so RTO tends to SRTT + G.
        assert_eq!(est.rto(), ms(90));
    }

    #[test]
    fn timeouts_double_the_rto_up_to_the_cap_and_a_sample_resets() {
        let mut est = RttEstimator::new(RtoConfig::default());
        let mut expected = Duration::from_secs(1);
        for _ in 0..6 {
            est.on_timeout();
            expected = (expected * 2).min(Duration::from_secs(60));
            assert_eq!(est.rto(), expected);
        }
        for _ in 0..1000 {
            est.on_timeout();
        }
        assert_eq!(est.rto(), Duration::from_secs(60));
        est.on_sample(ms(100));
        assert_eq!(est.backoff(), 0);
        assert_eq!(est.rto(), Duration::from_secs(1));
    }

    #[test]
    fn karn_skips_retransmitted_segments_unless_timestamps_disambiguate() {
        let sent = Instant::from_millis(1000);
        let now = Instant::from_millis(1250);
        assert_eq!(karn_sample(sent, now, false, false), Some(ms(250)));
        assert_eq!(karn_sample(sent, now, true, false), None);
        assert_eq!(karn_sample(sent, now, true, true), Some(ms(250)));
    }
}
