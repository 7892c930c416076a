//! The SYN cache's bounds and policies, each with the reason for its default.

use super::SynCache;
use super::table::{Budget, Shard, buckets_for, slot_bytes, table_bytes};

/// More entries than this are not honoured (see `entry_limit`).
const MAX_ENTRIES: usize = 1 << 20;

/// More shards than this buy no parallelism on any machine we run on.
const MAX_SHARDS: usize = 4096;

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
    /// Entries over all listeners; a SYN beyond it gets a cookie. Sets the
    /// cache's memory, allocated up front ([`SynCacheConfig::memory_bound`]:
    /// about 4.3 MB for the defaults). At most 2^20.
    pub max_entries: usize,
    /// Entries for one listener, so that a flood against one port cannot take
    /// the whole cache from the others.
    pub max_per_listener: usize,
    /// Number of independently locked shards (1 to 4096). Each holds at most
    /// 1.5 times its even share of `max_entries`: tuples spread by a keyed
    /// hash, so the global bound, not a shard's, is the one normally reached
    /// (with the defaults a shard's share is 256 entries and its limit 384,
    /// eight standard deviations away).
    pub shards: usize,
    /// SYN-ACK retransmissions before an entry expires (at most 62). With an
    /// initial RTO of 1 s and 3 retries: SYN-ACKs at 0, 1, 3 and 7 s, expiry at
    /// 15 s. Each interval is capped at the RTO ceiling.
    pub synack_retries: u8,
    /// When to use SYN cookies.
    pub cookies: CookiePolicy,
}

impl Default for SynCacheConfig {
    /// 16384 entries: the order of FreeBSD's default (512 buckets of 30), and
    /// 4.3 MB is cheap to pin. 4096 per listener: a
    /// flood against one port leaves three quarters to the others. 64 shards:
    /// far more than the workers that contend for them. 3 retries (15 s; Linux
    /// uses 5, 63 s): an entry held longer helps only peers on very lossy paths,
    /// and under a flood only fills the cache; cookies catch the rest.
    /// Cookies only when full: a cookie handshake loses window scaling and SACK
    /// unless the peer uses timestamps.
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
    /// `max_entries`, clamped to 2^20 (about 350 MB of tables).
    pub(super) fn entry_limit(&self) -> usize {
        self.max_entries.min(MAX_ENTRIES)
    }

    /// Shards actually made: `shards` clamped to 1..=4096.
    pub(super) fn shard_count(&self) -> usize {
        self.shards.clamp(1, MAX_SHARDS)
    }

    /// Entries one shard may hold: half again its even share.
    pub(super) fn shard_capacity(&self) -> usize {
        let share = self.entry_limit().div_ceil(self.shard_count());
        share.saturating_add(share.div_ceil(2))
    }

    /// An upper bound on [`SynCache::memory_bytes`] for this configuration,
    /// whatever the peers send: the shard tables as allocated by
    /// [`SynCache::new`] (they never grow), plus the fixed budget counters.
    pub fn memory_bound(&self) -> usize {
        let shard_buckets = buckets_for(self.shard_capacity().saturating_mul(2));
        let shard =
            table_bytes(shard_buckets, slot_bytes()).saturating_add(core::mem::size_of::<Shard>());
        let budget = Budget::memory_bytes();
        shard
            .saturating_mul(self.shard_count())
            .saturating_add(budget)
            .saturating_add(core::mem::size_of::<SynCache>())
    }
}
