//! Where SYN-cache entries live: a fixed number of shards, each a hash map behind
//! its own mutex, plus one small ledger of how many entries each listener holds.
//!
//! Peers choose the tuples, so the shard is picked by a keyed hash (SipHash under
//! a secret derived from the cache's key) and each shard's map uses std's
//! randomly keyed hasher; an attacker cannot aim a flood at one shard or one
//! chain. Every map is allocated at its full capacity up front and no insert is
//! allowed past that capacity, so a flood costs no allocation. (std's map may
//! rebuild itself once, at most doubling, when deletions leave too many
//! tombstones; [`SynCacheConfig::memory_bound`](super::SynCacheConfig::memory_bound)
//! allows for that.) Invariant: a shard never holds more than its capacity, and
//! the ledger's total and per-listener counts equal the entries in the shards,
//! exactly; every insert and removal updates both under the shard's lock.
//!
//! Lock order: a shard, then the ledger. The ledger is never held while taking a
//! shard.

use core::sync::atomic::{AtomicU64, Ordering};
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::sync::{Mutex, MutexGuard};

use super::entry::{Entry, TupleKey};
use crate::time::Instant;

/// Takes a lock, ignoring poisoning: every critical section here leaves the
/// data consistent before anything that could panic, and nothing on the packet
/// path may panic because another thread did.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One shard's entries.
pub(super) struct ShardMap {
    pub(super) entries: HashMap<TupleKey, Entry, RandomState>,
    capacity: usize,
}

impl ShardMap {
    pub(super) fn is_full(&self) -> bool {
        self.entries.len() >= self.capacity
    }
}

/// A shard: its entries, and the earliest time any of them needs the timer.
pub(super) struct Shard {
    pub(super) map: Mutex<ShardMap>,
    /// Nanoseconds of the earliest deadline in the shard (`u64::MAX`: none). It
    /// may be earlier than the true earliest (entries removed since), never
    /// later: it is lowered on every insert and recomputed on every scan.
    next_due: AtomicU64,
}

impl Shard {
    pub(super) fn new(capacity: usize) -> Shard {
        Shard {
            map: Mutex::new(ShardMap {
                entries: HashMap::with_capacity_and_hasher(capacity, RandomState::new()),
                capacity,
            }),
            next_due: AtomicU64::new(u64::MAX),
        }
    }

    /// The earliest deadline recorded for this shard.
    pub(super) fn next_due(&self) -> Option<Instant> {
        // Relaxed: written only under the shard lock, and a reader on another
        // thread that misses a just-lowered value learns of it at its next
        // poll; the worker that inserted the entry reads its own write.
        let nanos = self.next_due.load(Ordering::Relaxed);
        (nanos != u64::MAX).then(|| Instant::from_nanos(nanos))
    }

    /// Lowers the recorded deadline to `at` if it is earlier. Call with the
    /// shard lock held.
    pub(super) fn lower_due(&self, _held: &ShardMap, at: Instant) {
        // Relaxed: see `next_due`; writers are serialized by the shard lock.
        let current = self.next_due.load(Ordering::Relaxed);
        if at.as_nanos() < current {
            self.next_due.store(at.as_nanos(), Ordering::Relaxed);
        }
    }

    /// Replaces the recorded deadline after a full scan. Call with the shard
    /// lock held.
    pub(super) fn set_due(&self, _held: &ShardMap, at: Option<Instant>) {
        // Relaxed: see `next_due`.
        self.next_due
            .store(at.map_or(u64::MAX, Instant::as_nanos), Ordering::Relaxed);
    }

    /// Bytes of this shard's table, estimated from its capacity: one key, one
    /// entry and one control octet per slot.
    pub(super) fn memory_bytes(map: &ShardMap) -> usize {
        map.entries
            .capacity()
            .saturating_mul(slot_bytes())
            .saturating_add(core::mem::size_of::<Shard>())
    }
}

/// Octets per hash-table slot: key, entry, and the map's control octet.
pub(super) const fn slot_bytes() -> usize {
    core::mem::size_of::<(TupleKey, Entry)>() + 1
}

/// Which bound a SYN ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Full {
    /// `max_entries` over the whole cache.
    Global,
    /// `max_per_listener` for this listener.
    Listener,
    /// The tuple's shard is at its capacity.
    Shard,
}

/// The exact counts behind the global and per-listener bounds.
pub(super) struct Ledger {
    total: usize,
    /// Listeners with at least one entry. Its size follows the number of
    /// listeners, which the application controls, not the peers.
    per_listener: HashMap<u64, usize>,
}

impl Ledger {
    pub(super) fn new() -> Ledger {
        Ledger {
            total: 0,
            per_listener: HashMap::with_capacity(16),
        }
    }

    pub(super) fn total(&self) -> usize {
        self.total
    }

    pub(super) fn of(&self, listener: u64) -> usize {
        self.per_listener.get(&listener).copied().unwrap_or(0)
    }

    /// Counts one more entry for `listener` if both bounds allow it.
    pub(super) fn take(
        &mut self,
        listener: u64,
        max_total: usize,
        max_per_listener: usize,
    ) -> Result<(), Full> {
        if self.total >= max_total {
            return Err(Full::Global);
        }
        if self.of(listener) >= max_per_listener {
            return Err(Full::Listener);
        }
        self.total += 1;
        *self.per_listener.entry(listener).or_insert(0) += 1;
        Ok(())
    }

    /// Counts one entry of `listener` gone.
    pub(super) fn give_back(&mut self, listener: u64) {
        self.total = self.total.saturating_sub(1);
        if let Some(count) = self.per_listener.get_mut(&listener) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_listener.remove(&listener);
            }
        }
    }

    pub(super) fn memory_bytes(&self) -> usize {
        self.per_listener
            .capacity()
            .saturating_mul(core::mem::size_of::<(u64, usize)>() + 1)
            .saturating_add(core::mem::size_of::<Ledger>())
    }
}
