//! SplitMix64 (Steele, Lea and Flood, 2014): the workspace's one small,
//! fast, seeded generator, for fuzz loops, fake networks, load generators and
//! benchmarks. Not cryptographic and not meant to be: it only has to repeat
//! exactly for one seed and look unrelated to the keyed hashes it is fed to.
//! It lives in the lowest crate so every other crate and test can reach it
//! without a new dependency.

/// SplitMix64: one add and three xor-shift-multiplies per 64 bits.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// A generator for thread `index` of many seeded with `seed`,
    /// independent of the others.
    pub fn for_thread(seed: u64, index: usize) -> SplitMix64 {
        let mut base = SplitMix64::new(seed ^ 0x5eed_5eed_5eed_5eed);
        for _ in 0..=index {
            base.next_u64();
        }
        SplitMix64::new(base.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The high 32 bits of the next value.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A value in `0..n` (Lemire's multiply-shift; the bias is below 2^-32
    /// for ranges below 2^32); zero when `n` is zero.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    #[test]
    fn matches_the_reference_sequence() {
        // The first outputs for seed 1234567 of the reference C code
        // (splitmix64.c, Vigna).
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(r.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn below_stays_in_range_and_threads_differ() {
        let mut r = SplitMix64::new(7);
        assert!((0..1000).all(|_| r.below(10) < 10));
        assert_eq!(r.below(0), 0);
        let a = SplitMix64::for_thread(1, 0).next_u64();
        let b = SplitMix64::for_thread(1, 1).next_u64();
        assert_ne!(a, b);
    }
}
