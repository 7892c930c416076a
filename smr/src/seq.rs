//! Sequence numbers and their wrap-safe order.
//!
//! Sequences are 64-bit and compared the way TCP compares sequence numbers:
//! `a < b` iff `(a - b) as i64 < 0`. That order is only meaningful for values
//! less than 2^63 apart, so the domain keeps every live value (the write
//! sequence, the read sequence, every published reader value and every goal a
//! caller still holds) inside a window of `max_delta`, forcing a catch-up when
//! an advance would leave it.
//!
//! Why 64 bits: FreeBSD's 32-bit sequences are safe because `smr_poll` runs
//! inside `critical_enter()`, so no poller can sleep between its snapshot of
//! the read hand and its compare-and-swap. A userspace thread can be
//! preempted there for as long as the scheduler likes; with 32 bits, 2^31
//! advances by other threads during that sleep would let the stale
//! compare-and-swap move the read hand back across the wrap, after which
//! every fresh goal looks passed. With 64 bits that needs 2^62 advances
//! during one preemption: centuries at any achievable rate. The comparisons
//! stay wrap-safe, and [`SeqParams::wrap_test`] still starts just below the
//! wrap point so the tests cross it.
//!
//! Every real sequence is odd (the start is odd, the increment even), so a slot
//! holding `INVALID` (0) can never be mistaken for an observation.

/// A sequence value. `0` means "no sequence" (an idle reader slot).
pub type Seq = u64;

/// The value an idle reader slot holds.
pub const INVALID: Seq = 0;

/// `a < b` in sequence space.
#[inline(always)]
pub fn lt(a: Seq, b: Seq) -> bool {
    (a.wrapping_sub(b) as i64) < 0
}

/// `a <= b` in sequence space.
#[inline(always)]
pub fn leq(a: Seq, b: Seq) -> bool {
    (a.wrapping_sub(b) as i64) <= 0
}

/// The signed distance `a - b` in sequence space.
#[inline(always)]
pub fn delta(a: Seq, b: Seq) -> i64 {
    a.wrapping_sub(b) as i64
}

/// The smaller of two sequences in sequence space.
#[inline(always)]
pub fn min(a: Seq, b: Seq) -> Seq {
    if lt(a, b) { a } else { b }
}

/// The numeric shape of a domain's sequence space.
///
/// The default starts at 1 and steps by 2, so wrap-around takes 2^63
/// advances. [`SeqParams::wrap_test`] is the FreeBSD `INVARIANTS` trick: start
/// just below the wrap point and keep the window tiny, so every test that
/// uses it crosses the wrap and runs the forced catch-up path many times. It
/// keeps the production step: a huge step would bring back the preemption
/// ABA that 64 bits exist to rule out (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqParams {
    /// The first write sequence; must be odd.
    pub init: Seq,
    /// The step of one advance; must be even and non-zero.
    pub incr: Seq,
    /// The largest distance allowed between the read sequence and a fresh
    /// goal before `advance` forces readers to catch up. At least `4 * incr`
    /// and below 2^62, so that a goal checked after the increment is still
    /// well inside the comparable half of the space.
    pub max_delta: Seq,
}

impl SeqParams {
    /// Production parameters: wrap after 2^63 advances, catch up only when
    /// readers are 2^61 advances behind (never, in practice).
    pub const DEFAULT: SeqParams = SeqParams {
        init: 1,
        incr: 2,
        max_delta: (1 << 62) - 2,
    };

    /// Test parameters: start 40 increments before the wrap point and force
    /// a catch-up every 32 increments of reader lag.
    pub const fn wrap_test() -> SeqParams {
        let incr = 2;
        SeqParams {
            init: (0u64.wrapping_sub(40 * incr)) | 1,
            incr,
            max_delta: 32 * incr,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if self.init.is_multiple_of(2) {
            return Err("SeqParams::init must be odd");
        }
        if self.incr == 0 || !self.incr.is_multiple_of(2) {
            return Err("SeqParams::incr must be even and non-zero");
        }
        if self.max_delta < self.incr.saturating_mul(4) || self.max_delta >= 1 << 62 {
            return Err("SeqParams::max_delta must be in [4 * incr, 2^62)");
        }
        Ok(())
    }
}

impl Default for SeqParams {
    fn default() -> Self {
        SeqParams::DEFAULT
    }
}

/// The point a writer must wait for: once the domain's read sequence has
/// reached it, every read section that could have seen what the writer
/// unlinked before taking the goal has ended.
///
/// A goal is a plain number, so one goal can cover any number of retired
/// objects (the pool stamps a whole magazine with one), and it may be kept and
/// polled much later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Goal(pub(crate) Seq);

impl Goal {
    /// The raw sequence value, for diagnostics and metrics.
    pub fn seq(self) -> Seq {
        self.0
    }

    /// The later of two goals: waiting for it covers both.
    pub fn max(self, other: Goal) -> Goal {
        if lt(self.0, other.0) { other } else { self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn order_crosses_the_wrap_point() {
        assert!(lt(u64::MAX - 1, 1));
        assert!(!lt(1, u64::MAX - 1));
        assert!(leq(u64::MAX, u64::MAX));
        assert_eq!(delta(3, u64::MAX), 4);
        assert_eq!(min(u64::MAX - 3, 5), u64::MAX - 3);
    }

    #[test]
    fn default_and_wrap_test_params_are_valid() {
        SeqParams::DEFAULT.validate().unwrap();
        let w = SeqParams::wrap_test();
        w.validate().unwrap();
        // The first forty advances cross zero.
        assert!(w.init.checked_add(40 * w.incr).is_none());
    }

    #[test]
    fn invalid_params_are_refused() {
        let mut p = SeqParams::DEFAULT;
        p.init = 2;
        assert!(p.validate().is_err());
        let mut p = SeqParams::DEFAULT;
        p.incr = 3;
        assert!(p.validate().is_err());
        let mut p = SeqParams::DEFAULT;
        p.max_delta = 4;
        assert!(p.validate().is_err());
    }

    proptest! {
        // Within half the space the order is a strict total order that agrees
        // with ordinary integer order on the unwrapped values.
        #[test]
        fn order_agrees_with_unwrapped_integers(base: u64, a in 0u64..(1 << 62), b in 0u64..(1 << 62)) {
            let sa = base.wrapping_add(a);
            let sb = base.wrapping_add(b);
            prop_assert_eq!(lt(sa, sb), a < b);
            prop_assert_eq!(leq(sa, sb), a <= b);
            prop_assert_eq!(delta(sa, sb), a as i64 - b as i64);
            prop_assert_eq!(min(sa, sb), base.wrapping_add(a.min(b)));
        }

        #[test]
        fn order_is_transitive_within_the_window(base: u64, a in 0u64..(1 << 61), b in 0u64..(1 << 61), c in 0u64..(1 << 61)) {
            let (sa, sb, sc) = (base.wrapping_add(a), base.wrapping_add(b), base.wrapping_add(c));
            if lt(sa, sb) && lt(sb, sc) {
                prop_assert!(lt(sa, sc));
            }
            prop_assert!(!(lt(sa, sb) && lt(sb, sa)));
        }

        #[test]
        fn goal_max_covers_both(base: u64, a in 0u64..(1 << 61), b in 0u64..(1 << 61)) {
            let ga = Goal(base.wrapping_add(a));
            let gb = Goal(base.wrapping_add(b));
            let m = ga.max(gb);
            prop_assert!(leq(ga.0, m.0) && leq(gb.0, m.0));
            prop_assert!(m == ga || m == gb);
        }
    }
}
