//! Chain-length statistics of a table, for metrics and for the hashing test.
//!
//! Taken by walking every chain inside one read section: not a consistent
//! snapshot under concurrent inserts and removes, only a close estimate.

/// The shape of a table's chains.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChainStats {
    /// Buckets in the table.
    pub buckets: usize,
    /// Entries found by the walk.
    pub entries: usize,
    /// Buckets with at least one entry.
    pub nonempty: usize,
    /// The longest chain.
    pub max_chain: usize,
    /// Mean chain length over non-empty buckets (what a hit walks through).
    pub mean_chain: f64,
}

impl ChainStats {
    /// Fold in one chain of `len` entries.
    pub(crate) fn add_chain(&mut self, len: usize) {
        self.buckets += 1;
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
