//! Where SYN-cache entries live: a fixed number of shards, each a hash map behind
//! its own mutex, plus one small ledger of how many entries each listener holds.
//!
//! Peers choose the tuples, so the shard is picked by a keyed hash (SipHash under
//! a secret derived from the cache's key) and each shard's map uses std's
//! randomly keyed hasher; an attacker cannot aim a flood at one shard or one
//! chain. Every map is allocated once, when the cache is made, with room for
//! twice the entries its shard may hold, and no insert is allowed past that
//! limit, so neither a flood nor churn allocates: std's map rebuilds in place
//! while it is at most half full, and grows only when deletions have left it
//! too full of tombstones to rebuild in place, which at half load cannot
//! happen. Invariant: a shard never holds more than its capacity, and the
//! ledger's total and per-listener counts equal the entries in the shards,
//! exactly; every insert and removal updates both under the shard's lock.
//!
//! Lock order: a shard, then the ledger. The ledger is never held while taking a
//! shard.

use core::sync::atomic::{AtomicU64, Ordering};
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::sync::{Mutex, MutexGuard};

use super::entry::{Entry, TupleKey};
use super::timer::TIMER_TICK;
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
    /// Read and remove freely; insert only through [`ShardMap::insert`].
    pub(super) entries: HashMap<TupleKey, Entry, RandomState>,
    capacity: usize,
    buckets: Buckets,
}

impl ShardMap {
    pub(super) fn is_full(&self) -> bool {
        self.entries.len() >= self.capacity
    }

    /// Adds an entry; the caller has checked [`ShardMap::is_full`].
    pub(super) fn insert(&mut self, key: TupleKey, entry: Entry) {
        self.entries.insert(key, entry);
        self.buckets.observe(self.entries.capacity());
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
        let room = capacity.saturating_mul(2);
        Shard {
            map: Mutex::new(ShardMap {
                entries: HashMap::with_capacity_and_hasher(room, RandomState::new()),
                capacity,
                buckets: Buckets::for_request(room),
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

    /// Lowers the recorded deadline to `at` (rounded up to the timer tick) if
    /// that is earlier. Call with the shard lock held.
    pub(super) fn lower_due(&self, _held: &ShardMap, at: Instant) {
        let at = round_up(at);
        // Relaxed: see `next_due`; writers are serialized by the shard lock.
        if at < self.next_due.load(Ordering::Relaxed) {
            self.next_due.store(at, Ordering::Relaxed);
        }
    }

    /// Replaces the recorded deadline after a full scan. Call with the shard
    /// lock held.
    pub(super) fn set_due(&self, _held: &ShardMap, at: Option<Instant>) {
        // Relaxed: see `next_due`.
        self.next_due
            .store(at.map_or(u64::MAX, round_up), Ordering::Relaxed);
    }

    /// Bytes of this shard: its table and its bookkeeping.
    pub(super) fn memory_bytes(map: &ShardMap) -> usize {
        table_bytes(map.buckets.0, slot_bytes()).saturating_add(core::mem::size_of::<Shard>())
    }
}

/// `at` in nanoseconds, rounded up to a multiple of [`TIMER_TICK`] (and kept
/// below `u64::MAX`, which means "nothing due").
fn round_up(at: Instant) -> u64 {
    let tick = TIMER_TICK.as_nanos() as u64;
    at.as_nanos()
        .div_ceil(tick)
        .saturating_mul(tick)
        .min(u64::MAX - 1)
}

/// Octets per hash-table element: a key and its entry.
pub(super) const fn slot_bytes() -> usize {
    core::mem::size_of::<(TupleKey, Entry)>()
}

// Memory accounting for std's `HashMap`, from its current SwissTable layout
// (not a documented guarantee, so these are estimates, checked by a test): a
// power-of-two number of buckets, 7/8 of them usable once there are 8 or
// more, one control octet per bucket and one trailing group of 16.

/// The buckets behind one std map, tracked from outside. std reports only
/// `capacity()`, which counts tombstones against it, so it cannot say how much
/// was allocated; instead we remember the allocation and watch for a resize,
/// which shows right after an insert as a capacity beyond what the old
/// buckets could hold (a rebuilt table has no tombstones).
#[derive(Clone, Copy, Debug)]
pub(super) struct Buckets(usize);

impl Buckets {
    /// What `with_capacity(capacity)` allocates.
    pub(super) fn for_request(capacity: usize) -> Buckets {
        Buckets(buckets_for(capacity))
    }

    /// Takes note of `capacity()` just after an insert.
    pub(super) fn observe(&mut self, capacity: usize) {
        if capacity > usable(self.0) {
            self.0 = buckets_for(capacity);
        }
    }
}

/// Elements a table of `buckets` buckets holds before it must grow.
pub(super) fn usable(buckets: usize) -> usize {
    if buckets < 8 {
        buckets.saturating_sub(1)
    } else {
        buckets / 8 * 7
    }
}

/// The buckets std allocates when asked for room for `capacity` elements.
pub(super) fn buckets_for(capacity: usize) -> usize {
    match capacity {
        0 => 0,
        1..4 => 4,
        4..8 => 8,
        _ => capacity
            .saturating_mul(8)
            .div_ceil(7)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX),
    }
}

/// Bytes of a table with `buckets` buckets of `slot` octets each.
pub(super) fn table_bytes(buckets: usize, slot: usize) -> usize {
    if buckets == 0 {
        return 0;
    }
    buckets.saturating_mul(slot + 1).saturating_add(16)
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

/// Listeners the ledger has room for before it allocates.
pub(super) const LEDGER_PREALLOC: usize = 16;

/// The exact counts behind the global and per-listener bounds.
pub(super) struct Ledger {
    total: usize,
    /// Listeners with at least one entry. Its size follows the number of
    /// listeners, which the application controls, not the peers.
    per_listener: HashMap<u64, usize>,
    buckets: Buckets,
}

impl Ledger {
    pub(super) fn new() -> Ledger {
        Ledger {
            total: 0,
            per_listener: HashMap::with_capacity(LEDGER_PREALLOC),
            buckets: Buckets::for_request(LEDGER_PREALLOC),
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
        self.buckets.observe(self.per_listener.capacity());
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
        table_bytes(self.buckets.0, core::mem::size_of::<(u64, usize)>())
    }
}
