//! A small, fast, seeded PRNG for the flood: SplitMix64 (Steele, Lea and
//! Flood, 2014). It is not cryptographic and does not need to be; it only has
//! to make source addresses, ports and ISNs look unrelated to the daemon's
//! keyed hash, and to repeat exactly for one `--seed`.

/// SplitMix64: one add and three xor-shift-multiplies per 64 bits.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// A generator for flood thread `index`, independent of the others.
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

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A value in `0..n` (Lemire's multiply-shift; the bias is below 2^-32
    /// for the ranges used here). `n` must be non-zero.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}
