//! The SYN cache's bounds and policies, each with the reason for its default.

use super::SynCache;
use super::table::{Shard, slot_bytes};

/// RFC 9293 §3.7.1: the MSS to assume when a SYN carries none.
pub const DEFAULT_PEER_MSS: u16 = 536;

/// The smallest peer MSS we honour; a smaller announcement is raised to this
/// (a tiny MSS only multiplies the segments, and thus our work, per octet).
pub const MIN_PEER_MSS: u16 = 64;

/// When to answer a SYN with a cookie instead of a cache entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CookiePolicy {
    /// Never: a SYN that finds the cache full is dropped.
    Off,
    /// Only when the cache (globally, for the listener, or in the shard) is full.
    #[default]
    WhenFull,
    /// Always: the cache keeps no entries at all.
    Always,
}

/// Bounds and timing of a [`SynCache`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynCacheConfig {
    /// Entries over all listeners. Bounds the cache's memory
    /// ([`SynCacheConfig::memory_bound`]); a SYN beyond it gets a cookie.
    pub max_entries: usize,
    /// Entries for one listener, so that a flood against one port cannot take
    /// the whole cache from the others.
    pub max_per_listener: usize,
    /// Number of independently locked shards (at least 1). Each holds at most
    /// `2 * ceil(max_entries / shards)` entries, so an uneven spread of tuples
    /// still lets the global bound, not a shard, be the one normally reached.
    pub shards: usize,
    /// SYN-ACK retransmissions before an entry expires (at most 63). With an
    /// initial RTO of 1 s and 3 retries: SYN-ACKs at 0, 1, 3 and 7 s, expiry at
    /// 15 s. Each interval is capped at the RTO ceiling.
    pub synack_retries: u8,
    /// When to use SYN cookies.
    pub cookies: CookiePolicy,
}

impl Default for SynCacheConfig {
    fn default() -> SynCacheConfig {
        SynCacheConfig {
            max_entries: 16384,
            max_per_listener: 4096,
            shards: 64,
            synack_retries: 3,
            cookies: CookiePolicy::WhenFull,
        }
    }
}

impl SynCacheConfig {
    pub(super) fn shard_count(&self) -> usize {
        self.shards.max(1)
    }

    pub(super) fn shard_capacity(&self) -> usize {
        self.max_entries
            .div_ceil(self.shard_count())
            .saturating_mul(2)
    }

    /// An upper bound on [`SynCache::memory_bytes`] for this configuration,
    /// whatever the peers send: every shard's table at twice its initial
    /// allocation (see the table module), plus the per-listener ledger at one
    /// record per possible entry.
    pub fn memory_bound(&self) -> usize {
        let slots = self
            .shard_capacity()
            .saturating_mul(8)
            .div_ceil(7)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX)
            .saturating_mul(2);
        let shard = slots
            .saturating_mul(slot_bytes())
            .saturating_add(core::mem::size_of::<Shard>());
        let ledger = self
            .max_entries
            .saturating_mul(8)
            .div_ceil(7)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX)
            .max(16)
            .saturating_mul(core::mem::size_of::<(u64, usize)>() + 1);
        shard
            .saturating_mul(self.shard_count())
            .saturating_add(ledger)
            .saturating_add(core::mem::size_of::<SynCache>())
    }
}
