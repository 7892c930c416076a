//! Sequence numbers and their wrap-safe order.
//!
//! Sequences are 32-bit and compared the way TCP compares sequence numbers:
//! `a < b` iff `(b - a) as i32 > 0`. That order is only meaningful for values
//! less than 2^31 apart, so the domain keeps every live value (the write
//! sequence, the read sequence, every published reader value and every goal a
//! caller still holds) inside a window of `max_delta` (a quarter of the space
//! by default), forcing a catch-up when an advance would leave it.
//!
//! Every real sequence is odd (the start is odd, the increment even), so a slot
//! holding `INVALID` (0) can never be mistaken for an observation.

/// A sequence value. `0` means "no sequence" (an idle reader slot).
pub type Seq = u32;

/// The value an idle reader slot holds.
pub const INVALID: Seq = 0;

/// `a < b` in sequence space.
#[inline(always)]
pub fn lt(a: Seq, b: Seq) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a <= b` in sequence space.
#[inline(always)]
pub fn leq(a: Seq, b: Seq) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

/// The signed distance `a - b` in sequence space.
#[inline(always)]
pub fn delta(a: Seq, b: Seq) -> i32 {
    a.wrapping_sub(b) as i32
}

/// The smaller of two sequences in sequence space.
#[inline(always)]
pub fn min(a: Seq, b: Seq) -> Seq {
    if lt(a, b) { a } else { b }
}

/// The numeric shape of a domain's sequence space.
///
/// The default starts at 1 and steps by 2, so wrap-around takes 2^31
/// advances. [`SeqParams::wrap_test`] is the FreeBSD `INVARIANTS` trick: start
/// just below the wrap point, step by a huge increment and keep the window
/// tiny, so every test that uses it crosses the wrap and runs the forced
/// catch-up path many times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqParams {
    /// The first write sequence; must be odd.
    pub init: Seq,
    /// The step of one advance; must be even and non-zero.
    pub incr: Seq,
    /// The largest distance allowed between the read sequence and a fresh
    /// goal before `advance` forces readers to catch up. At least `4 * incr`
    /// and below 2^30, so that a goal checked after the increment is still
    /// well inside the comparable half of the space.
    pub max_delta: Seq,
}

impl SeqParams {
    /// Production parameters: wrap after 2^31 advances, catch up only when
    /// readers are 2^29 advances behind.
    pub const DEFAULT: SeqParams = SeqParams {
        init: 1,
        incr: 2,
        max_delta: u32::MAX / 4,
    };

    /// Test parameters: start 40 increments before the wrap point, step by
    /// about 1/10000 of the space, and force a catch-up every 32 increments
    /// of reader lag.
    pub const fn wrap_test() -> SeqParams {
        let incr = (u32::MAX / 10_000) & !1;
        SeqParams {
            init: (0u32.wrapping_sub(40 * incr)) | 1,
            incr,
            max_delta: 32 * incr,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if self.init & 1 == 0 {
            return Err("SeqParams::init must be odd");
        }
        if self.incr == 0 || self.incr & 1 != 0 {
            return Err("SeqParams::incr must be even and non-zero");
        }
        if self.max_delta < self.incr.saturating_mul(4) || self.max_delta >= 1 << 30 {
            return Err("SeqParams::max_delta must be in [4 * incr, 2^30)");
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
        assert!(lt(u32::MAX - 1, 1));
        assert!(!lt(1, u32::MAX - 1));
        assert!(leq(u32::MAX, u32::MAX));
        assert_eq!(delta(3, u32::MAX), 4);
        assert_eq!(min(u32::MAX - 3, 5), u32::MAX - 3);
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
        fn order_agrees_with_unwrapped_integers(base: u32, a in 0u64..(1 << 30), b in 0u64..(1 << 30)) {
            let sa = base.wrapping_add(a as u32);
            let sb = base.wrapping_add(b as u32);
            prop_assert_eq!(lt(sa, sb), a < b);
            prop_assert_eq!(leq(sa, sb), a <= b);
            prop_assert_eq!(delta(sa, sb) as i64, a as i64 - b as i64);
            prop_assert_eq!(min(sa, sb), base.wrapping_add(a.min(b) as u32));
        }

        #[test]
        fn order_is_transitive_within_the_window(base: u32, a in 0u32..(1 << 29), b in 0u32..(1 << 29), c in 0u32..(1 << 29)) {
            let (sa, sb, sc) = (base.wrapping_add(a), base.wrapping_add(b), base.wrapping_add(c));
            if lt(sa, sb) && lt(sb, sc) {
                prop_assert!(lt(sa, sc));
            }
            prop_assert!(!(lt(sa, sb) && lt(sb, sa)));
        }

        #[test]
        fn goal_max_covers_both(base: u32, a in 0u32..(1 << 29), b in 0u32..(1 << 29)) {
            let ga = Goal(base.wrapping_add(a));
            let gb = Goal(base.wrapping_add(b));
            let m = ga.max(gb);
            prop_assert!(leq(ga.0, m.0) && leq(gb.0, m.0));
            prop_assert!(m == ga || m == gb);
        }
    }
}
