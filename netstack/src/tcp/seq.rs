//! TCP sequence numbers and their modular comparison.
//!
//! Sequence numbers live on a circle of 2^32 points (RFC 9293 §3.4): every
//! comparison is made on the signed 32-bit distance between two numbers, so `a`
//! is "before" `b` when going forward from `a` reaches `b` in fewer than 2^31
//! steps. That is only meaningful while the numbers compared are less than 2^31
//! apart, which TCP guarantees by bounding windows (at most 2^30 with scaling,
//! RFC 7323 §2.3). Invariant: nothing here panics or overflows; all arithmetic
//! wraps.
//!
//! ```text
//!        a.lt(b)                  b.lt(a)
//!   ----a=====>b----         ----b<=====a----
//!   distance b - a in (0, 2^31)  distance b - a in [-2^31, 0)
//! ```

use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A TCP sequence number (or acknowledgment number, or SACK edge).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// The signed distance from `other` to `self`, `self - other` on the circle.
    fn distance_from(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// `self` comes strictly before `other`.
    pub fn lt(self, other: SeqNum) -> bool {
        self.distance_from(other) < 0
    }

    /// `self` comes before `other` or is equal to it.
    pub fn le(self, other: SeqNum) -> bool {
        self.distance_from(other) <= 0
    }

    /// `self` comes strictly after `other`.
    pub fn gt(self, other: SeqNum) -> bool {
        self.distance_from(other) > 0
    }

    /// `self` comes after `other` or is equal to it.
    pub fn ge(self, other: SeqNum) -> bool {
        self.distance_from(other) >= 0
    }

    /// `self` lies in the window `[start, start + len)`.
    ///
    /// This is a membership test on the circle, exact for every `len` up to 2^32 - 1:
    /// an empty window contains nothing (RFC 9293's acceptability test treats the
    /// zero-window case separately, and so must its caller).
    pub fn in_window(self, start: SeqNum, len: u32) -> bool {
        self.0.wrapping_sub(start.0) < len
    }

    /// The later of two sequence numbers.
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self.ge(other) { self } else { other }
    }

    /// The earlier of two sequence numbers.
    pub fn min(self, other: SeqNum) -> SeqNum {
        if self.le(other) { self } else { other }
    }
}

impl Add<usize> for SeqNum {
    type Output = SeqNum;

    /// Advances by `rhs` octets. Only the low 32 bits of `rhs` count: sequence
    /// space is a circle, and no caller has a segment longer than 2^31.
    fn add(self, rhs: usize) -> SeqNum {
        SeqNum(self.0.wrapping_add(rhs as u32))
    }
}

impl AddAssign<usize> for SeqNum {
    fn add_assign(&mut self, rhs: usize) {
        *self = *self + rhs;
    }
}

impl Sub<SeqNum> for SeqNum {
    type Output = i32;

    /// The signed distance `self - rhs`: positive when `self` is after `rhs`.
    fn sub(self, rhs: SeqNum) -> i32 {
        self.distance_from(rhs)
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeqNum({})", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn comparison_survives_the_wrap() {
        let before = SeqNum(u32::MAX - 10);
        let after = before + 20;
        assert_eq!(after, SeqNum(9));
        assert!(before.lt(after) && after.gt(before));
        assert_eq!(after - before, 20);
        assert_eq!(before - after, -20);
        assert!(SeqNum(3).in_window(before, 30));
        assert!(!SeqNum(20).in_window(before, 30));
    }

    #[test]
    fn an_empty_window_contains_nothing() {
        assert!(!SeqNum(5).in_window(SeqNum(5), 0));
    }

    proptest! {
        #[test]
        fn exactly_one_order_holds(a: u32, b: u32) {
            let (a, b) = (SeqNum(a), SeqNum(b));
            // Trichotomy for one ordered pair. (At distance exactly 2^31 both
            // `a.lt(b)` and `b.lt(a)` hold: antipodes have no order, and TCP never
            // compares numbers that far apart.)
            let ordered = [a.lt(b), a == b, a.gt(b)];
            prop_assert_eq!(ordered.iter().filter(|x| **x).count(), 1);
            prop_assert_eq!(a.le(b), a.lt(b) || a == b);
            prop_assert_eq!(a.ge(b), a.gt(b) || a == b);
        }

        #[test]
        fn order_is_antisymmetric_away_from_the_antipode(a: u32, d in 1u32..(1 << 31)) {
            let a = SeqNum(a);
            let b = a + d as usize;
            prop_assert!(a.lt(b));
            prop_assert!(b.gt(a));
            prop_assert!(!b.lt(a));
            prop_assert_eq!(b - a, d as i32);
            prop_assert_eq!(a - b, (d as i32).wrapping_neg());
        }

        #[test]
        fn adding_then_subtracting_is_identity(a: u32, n in 0usize..(1 << 31)) {
            let a = SeqNum(a);
            prop_assert_eq!((a + n) - a, n as i32);
        }

        #[test]
        fn window_membership_matches_offsets(start: u32, len: u32, off: u32) {
            let start = SeqNum(start);
            let s = start + off as usize;
            prop_assert_eq!(s.in_window(start, len), off < len);
        }

        #[test]
        fn window_membership_agrees_with_order(start: u32, len in 1u32..(1 << 31), s: u32) {
            let (start, s) = (SeqNum(start), SeqNum(s));
            let end = start + len as usize;
            if s.in_window(start, len) {
                prop_assert!(start.le(s) && s.lt(end));
            } else {
                prop_assert!(s.lt(start) || end.le(s));
            }
        }

        #[test]
        fn max_and_min_pick_by_circle_order(a: u32, d in 0u32..(1 << 31)) {
            let a = SeqNum(a);
            let b = a + d as usize;
            prop_assert_eq!(a.max(b), b);
            prop_assert_eq!(a.min(b), a);
        }
    }
}
