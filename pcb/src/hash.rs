//! Keyed flow hashing: the bucket of a connection is a function of its tuple
//! and a secret chosen when the table is created, because peers choose the
//! tuples (ARCHITECTURE invariant 4).
//!
//! Invariant: without the secret, a peer cannot choose tuples that share a
//! bucket any more often than chance allows.
//!
//! ## Choice, by measurement
//!
//! `cargo test --release -p pcb --lib hash::tests::measure -- --ignored --nocapture`
//! hashes 4096 distinct IPv4 tuples 256 times (cache-resident) with each
//! candidate (same `Key::hash_into` feeding, keyed at random). On this project's 2-core machine (AMD EPYC,
//! KVM, other builds running), best of 5:
//!
//! | hasher | ns per tuple |
//! |---|---|
//! | SipHash-1-3 (std `RandomState`) | 14.1 |
//! | foldhash `fast`, random seed | 2.1 |
//!
//! A lookup costs ~20 ns in all, so SipHash would add two thirds to it. We use
//! foldhash `fast`, seeded with a random per-table seed and foldhash's
//! process-wide random shared seed. foldhash is not a cryptographic PRF; it is
//! built to resist seed-independent collisions (what hash flooding uses),
//! which is the threat here: peers see bucket placement only through timing.
//! If that ever proves insufficient, swap [`FlowHash`]'s inner state for
//! `std::hash::RandomState` — nothing else changes.

use crate::tuple::Key;
use foldhash::SharedSeed;
use foldhash::fast::SeedableRandomState;
use std::hash::{BuildHasher, Hasher};

/// The keyed hash of connection keys (and of anything else the crate hashes
/// by flow: LB-group member choice, RFC 6056 port offsets).
#[derive(Clone, Debug)]
pub struct FlowHash {
    state: SeedableRandomState,
}

impl FlowHash {
    /// A hash keyed with a secret drawn now.
    pub fn random() -> FlowHash {
        FlowHash {
            state: SeedableRandomState::random(),
        }
    }

    /// A hash with a fixed key: reproducible, for tests and benchmarks only
    /// (a peer that knows the seed can flood one bucket).
    pub fn with_seed(seed: u64) -> FlowHash {
        FlowHash {
            state: SeedableRandomState::with_seed(seed, SharedSeed::global_fixed()),
        }
    }

    /// The hash of a connection key.
    #[inline]
    pub fn key(&self, key: &Key) -> u64 {
        let mut h = self.state.build_hasher();
        key.hash_into(&mut h);
        h.finish()
    }

    /// The hash of a few words (for listener and port choices).
    #[inline]
    pub fn words(&self, words: &[u64]) -> u64 {
        let mut h = self.state.build_hasher();
        for &w in words {
            h.write_u64(w);
        }
        h.finish()
    }
}

/// A `BuildHasher` over [`FlowHash`], so the baseline tables hash exactly as
/// the SMR table does and the comparison is about synchronisation only.
#[derive(Clone, Debug)]
pub struct FlowBuildHasher(pub FlowHash);

impl BuildHasher for FlowBuildHasher {
    type Hasher = <SeedableRandomState as BuildHasher>::Hasher;
    fn build_hasher(&self) -> Self::Hasher {
        self.0.state.build_hasher()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::tuple::FourTuple;
    use std::hint::black_box;
    use std::time::Instant;

    fn keys(n: u32) -> Vec<Key> {
        (0..n)
            .map(|i| {
                let t = FourTuple::v4([10, 0, 0, 1], 443, i.to_be_bytes(), (i % 50000) as u16);
                Key::from(&t)
            })
            .collect()
    }

    /// Passes over a cache-resident key set: the figure is the hash, not
    /// the memory system.
    const PASSES: usize = 256;

    fn time<F: Fn(&Key) -> u64>(keys: &[Key], f: F) -> f64 {
        (0..5)
            .map(|_| {
                let t0 = Instant::now();
                let mut acc = 0u64;
                for _ in 0..PASSES {
                    for k in keys {
                        acc = acc.wrapping_add(f(black_box(k)));
                    }
                }
                black_box(acc);
                t0.elapsed().as_nanos() as f64 / (PASSES * keys.len()) as f64
            })
            .fold(f64::INFINITY, f64::min)
    }

    /// The measurement behind the module docs' choice.
    #[test]
    #[ignore = "a measurement, not a test: run in release with --nocapture"]
    fn measure() {
        let keys = keys(1 << 12);
        let sip = std::hash::RandomState::new();
        let sip_ns = time(&keys, |k| {
            let mut h = sip.build_hasher();
            k.hash_into(&mut h);
            h.finish()
        });
        let fold = FlowHash::random();
        let fold_ns = time(&keys, |k| fold.key(k));
        println!("siphash-1-3: {sip_ns:.2} ns/tuple, foldhash-fast: {fold_ns:.2} ns/tuple");
    }

    #[test]
    fn different_seeds_place_the_same_tuple_differently() {
        let k = keys(64);
        let (a, b) = (FlowHash::with_seed(1), FlowHash::with_seed(2));
        let same = k
            .iter()
            .filter(|k| a.key(k) & 1023 == b.key(k) & 1023)
            .count();
        assert!(
            same < 8,
            "{same} of 64 tuples share a bucket under both seeds"
        );
    }
}
