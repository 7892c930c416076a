//! Chain-length statistics of a table, for metrics and for the hashing test.
//!
//! Two ways to take them, both inside one read section and neither a
//! consistent snapshot under concurrent inserts and removes (a close
//! estimate only):
//!
//! - the full walk ([`Table::chain_stats`](crate::Table::chain_stats)):
//!   every chain, O(buckets + entries); for tests and diagnostics;
//! - the sample ([`Table::chain_stats_sample`](crate::Table::chain_stats_sample)):
//!   at most [`SAMPLE_BUCKETS`] chains, evenly spaced over the array, so a
//!   metrics scrape costs the same at a thousand connections and at a
//!   million. Successive rounds start one bucket further on, so
//!   `buckets / SAMPLE_BUCKETS` consecutive rounds visit every bucket once.
//!   Its maximum and mean are of the sample: a long chain is seen within
//!   that many rounds, not necessarily in the first. That is the trade: an
//!   exact longest chain would need either the full walk or a maximum kept
//!   by every insert and remove (and a maximum cannot be decremented
//!   without a walk), while the load factor that bounds the mean is kept
//!   exactly by the per-stripe counts anyway.

/// Chains a sampled walk visits at most: 4096 chains at the load factor of
/// at most one that the resizer keeps is about 4096 PCB reads, tens of
/// microseconds.
pub const SAMPLE_BUCKETS: usize = 4096;

/// The shape of a table's chains.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChainStats {
    /// Buckets in the table.
    pub buckets: usize,
    /// Buckets whose chains were walked: all of them for the full walk, at
    /// most [`SAMPLE_BUCKETS`] for a sample.
    pub walked: usize,
    /// Entries found in the walked chains (every entry only when `walked ==
    /// buckets`).
    pub entries: usize,
    /// Walked buckets with at least one entry.
    pub nonempty: usize,
    /// The longest walked chain.
    pub max_chain: usize,
    /// Mean chain length over non-empty walked buckets (what a hit walks
    /// through).
    pub mean_chain: f64,
}

impl ChainStats {
    /// Statistics of a table of `buckets` chains (a power of two), walking
    /// those `chain_len` is called for: every chain when `budget >=
    /// buckets`, else `budget` (rounded down to a power of two) chains
    /// spaced `buckets / budget` apart, starting at `round` modulo that
    /// spacing.
    pub(crate) fn sample(
        buckets: usize,
        budget: usize,
        round: usize,
        mut chain_len: impl FnMut(usize) -> usize,
    ) -> ChainStats {
        let mut stats = ChainStats {
            buckets,
            ..ChainStats::default()
        };
        if buckets == 0 || budget == 0 {
            return stats;
        }
        // Both powers of two, so the stride divides `buckets` exactly and
        // `stride` rounds cover every bucket once.
        let budget = if budget >= buckets {
            buckets
        } else {
            1 << budget.ilog2()
        };
        let stride = buckets / budget;
        let first = round % stride;
        for k in 0..budget {
            stats.add_chain(chain_len(first + k * stride));
        }
        stats
    }

    /// Fold in one walked chain of `len` entries.
    fn add_chain(&mut self, len: usize) {
        self.walked += 1;
        self.entries += len;
        if len > 0 {
            self.nonempty += 1;
        }
        self.max_chain = self.max_chain.max(len);
        self.mean_chain = if self.nonempty == 0 {
            0.0
        } else {
            self.entries as f64 / self.nonempty as f64
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_walks_at_most_its_budget_evenly_spaced() {
        let mut seen = Vec::new();
        let s = ChainStats::sample(1 << 20, SAMPLE_BUCKETS, 3, |i| {
            seen.push(i);
            1
        });
        assert_eq!(s.walked, SAMPLE_BUCKETS);
        assert_eq!(s.buckets, 1 << 20);
        assert_eq!(seen.len(), SAMPLE_BUCKETS);
        let stride = (1 << 20) / SAMPLE_BUCKETS;
        assert!(seen.iter().enumerate().all(|(k, &i)| i == 3 + k * stride));
    }

    #[test]
    fn consecutive_rounds_visit_every_bucket_exactly_once() {
        let buckets = 64;
        let budget = 8;
        let mut visits = vec![0u32; buckets];
        for round in 0..buckets / budget {
            ChainStats::sample(buckets, budget, round, |i| {
                visits[i] += 1;
                0
            });
        }
        assert!(visits.iter().all(|&v| v == 1), "{visits:?}");
    }

    #[test]
    fn a_budget_at_least_the_table_walks_it_all_and_odd_budgets_round_down() {
        let full = ChainStats::sample(16, usize::MAX, 5, |i| i % 3);
        assert_eq!((full.walked, full.entries, full.max_chain), (16, 15, 2));
        assert_eq!(full.nonempty, 10);
        let odd = ChainStats::sample(16, 5, 0, |_| 1);
        assert_eq!(odd.walked, 4);
        assert_eq!(ChainStats::sample(0, 8, 0, |_| 1).walked, 0);
    }
}
