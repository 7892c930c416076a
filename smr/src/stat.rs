//! Single-writer statistics: the one primitive every counter block in the
//! workspace bumps its counters with.
//!
//! A statistic that only its owning thread writes needs no locked
//! read-modify-write: a Relaxed load of its own last store and a Relaxed store
//! of the sum. Readers (a metrics scrape summing over threads) see each
//! counter's value at some recent point, which is all statistics promise; the
//! value never goes backwards because there is only one writer. A counter
//! written by several threads must not use this (lost updates): those use
//! `fetch_add` and say so.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// Adds one to a counter that only the calling thread writes.
#[inline(always)]
pub fn bump(counter: &AtomicU64) {
    add(counter, 1);
}

/// Adds `n` to a counter that only the calling thread writes.
#[inline(always)]
pub fn add(counter: &AtomicU64, n: u64) {
    // Relaxed: statistics only, single writer (a load of our own last store).
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Reads a statistic.
#[inline(always)]
pub fn read(counter: &AtomicU64) -> u64 {
    // Relaxed: statistics only.
    counter.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_and_add_accumulate_and_wrap() {
        let c = AtomicU64::new(u64::MAX - 1);
        bump(&c);
        assert_eq!(read(&c), u64::MAX);
        add(&c, 3);
        assert_eq!(read(&c), 2);
    }
}
