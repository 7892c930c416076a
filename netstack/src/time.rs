//! Time as the caller tells it.
//!
//! The engine never reads a clock: every entry point takes `now: Instant`, and only
//! the driver turns the system's monotonic clock into one. An [`Instant`] is a count
//! of nanoseconds since an origin the caller chooses, so a test can start its fake
//! clock at zero (or just below a wrap point) and step it by hand. Invariant: the
//! arithmetic here saturates instead of wrapping or panicking, so a caller that
//! passes a time earlier than one it passed before gets a zero duration, not a panic.

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time: nanoseconds since an arbitrary, caller-chosen origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant(0);

    /// The instant `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant(nanos)
    }

    /// The instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Instant {
        Instant(millis.saturating_mul(1_000_000))
    }

    /// The instant `secs` seconds after the origin.
    pub const fn from_secs(secs: u64) -> Instant {
        Instant(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturates at the largest representable instant (about 584 years).
    fn add(self, rhs: Duration) -> Instant {
        let nanos = u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(nanos))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;

    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn going_backwards_gives_zero_not_a_panic() {
        let later = Instant::from_secs(2);
        assert_eq!(Instant::from_secs(1) - later, Duration::ZERO);
        assert_eq!(later - Instant::from_secs(1), Duration::from_secs(1));
    }

    #[test]
    fn adding_saturates_at_the_end_of_time() {
        let end = Instant::from_nanos(u64::MAX - 1) + Duration::from_secs(5);
        assert_eq!(end.as_nanos(), u64::MAX);
    }
}
