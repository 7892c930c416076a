//! Where SYN-cache entries live: a fixed number of shards, each a hash map behind
//! its own mutex, plus the lock-free [`Budget`] that counts entries overall and
//! per listener.
//!
//! Peers choose the tuples, so the shard is picked by a keyed hash and each
//! shard's map uses another keyed hash (foldhash under seeds derived from the
//! cache's secret, as the connection table does: `pcb::FlowHash`; no std
//! SipHash on the SYN path); an attacker cannot aim a flood at one shard or
//! one chain. Every map is allocated once, when the cache is made, with room
//! for twice the entries its shard may hold, and no insert is allowed past
//! that limit, so neither a flood nor churn allocates: the map rebuilds in
//! place while it is at most half full, and grows only when deletions have
//! left it too full of tombstones to rebuild in place, which at half load
//! cannot happen. Invariant: a shard never holds more than its capacity, and
//! every entry in the shards holds exactly one unit of the budget (overall
//! and of its listener), taken before its insert and given back at its
//! removal, under the shard's lock; the budget's counts are the entries
//! plus the units the shards' leases hold.
//!
//! Lock order: a shard's lock only; the budget takes no lock.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use pcb::FlowBuildHasher;

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
    pub(super) entries: HashMap<TupleKey, Entry, FlowBuildHasher>,
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
    /// Units of the budget this shard holds for one listener with no entry
    /// behind them (see [`Lease`]).
    pub(super) lease: Lease,
}

/// Units of the [`Budget`] a shard holds for one listener, taken from (or
/// kept back from) the shared counts in small batches, so that a SYN that
/// adds an entry and the completion or expiry that removes it usually
/// write only their shard's own line, not the counters every worker
/// shares. The units are counted in the budget like entries, so the bounds
/// hold as before; what a lease costs is that up to `batch - 1` units per
/// shard may sit unused while another shard's SYN finds the cache full
/// (the batch is kept small against the limits for that reason, and is 1,
/// no lease at all, when the limits are small: see `SynCache::lease_batch`).
///
/// Written only under the shard's lock (every writing method says so); read
/// without it, Relaxed, by `len` and `listener_len`, which are exact when
/// no take or give-back is under way.
#[derive(Debug, Default)]
pub(super) struct Lease {
    listener: AtomicU64,
    units: AtomicUsize,
}

impl Lease {
    /// `(listener, units)` held now.
    pub(super) fn get(&self) -> (u64, usize) {
        // Relaxed: see the type's docs.
        (
            self.listener.load(Ordering::Relaxed),
            self.units.load(Ordering::Relaxed),
        )
    }

    /// Call with the shard's lock held.
    fn set(&self, listener: u64, units: usize) {
        // Relaxed: see the type's docs.
        self.listener.store(listener, Ordering::Relaxed);
        self.units.store(units, Ordering::Relaxed);
    }
}

impl Shard {
    pub(super) fn new(capacity: usize, hasher: FlowBuildHasher) -> Shard {
        let room = capacity.saturating_mul(2);
        Shard {
            map: Mutex::new(ShardMap {
                entries: HashMap::with_capacity_and_hasher(room, hasher),
                capacity,
                buckets: Buckets::for_request(room),
            }),
            next_due: AtomicU64::new(u64::MAX),
            lease: Lease::default(),
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

/// Per-listener counters of the [`Budget`]. A listener's count lives in
/// slot `id % LISTENER_SLOTS`; listener ids are handed out in sequence, so
/// two live listeners share a slot only when more than this many listeners
/// have been opened between them, and then they share one budget of
/// `max_per_listener` (the bound gets stricter, never looser).
pub(super) const LISTENER_SLOTS: usize = 256;

/// A counter alone on its cache line(s), so that the global count does not
/// share a line with anything a SYN reads.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(AtomicUsize);

/// The global and per-listener entry counts, without a lock.
///
/// A SYN that finds the cache full reads two counters and writes nothing
/// (the flood's common case: no shared line is written per SYN). Taking a
/// unit is two `fetch_add`s, each backed out if it went past its bound, so
/// a successful take always saw a count below the bound in the counter's
/// modification order: the counts never exceed `max_total` overall or
/// `max_per_listener` for a slot, however many workers race. A take that
/// fails while another is backing out may see a transient excess and answer
/// with a cookie where an entry would have fitted; that is the only cost of
/// the race, and it errs on the side of the bound.
///
/// Orderings: every access is Relaxed. The counts guard no data (each entry
/// is published under its shard's lock); the only property they carry is
/// the bound, which the RMWs' total order on each counter gives by itself.
#[derive(Debug)]
pub(super) struct Budget {
    total: Padded,
    per_listener: Box<[AtomicUsize]>,
    /// Read-modify-writes of the shared counts (each `reserve` or
    /// `give_back` counts once), for the tests of the leases.
    #[cfg(test)]
    pub(super) shared_writes: AtomicUsize,
}

impl Budget {
    pub(super) fn new() -> Budget {
        Budget {
            total: Padded::default(),
            per_listener: (0..LISTENER_SLOTS).map(|_| AtomicUsize::new(0)).collect(),
            #[cfg(test)]
            shared_writes: AtomicUsize::new(0),
        }
    }

    fn slot(&self, listener: u64) -> &AtomicUsize {
        // In bounds: the index is below the slice's length.
        &self.per_listener[(listener % LISTENER_SLOTS as u64) as usize]
    }

    /// Entries in the cache, exact when no take or give-back is under way.
    pub(super) fn total(&self) -> usize {
        // Relaxed: see the type's docs.
        self.total.0.load(Ordering::Relaxed)
    }

    /// Entries of `listener`'s slot.
    pub(super) fn of(&self, listener: u64) -> usize {
        // Relaxed: see the type's docs.
        self.slot(listener).load(Ordering::Relaxed)
    }

    /// Counts one more entry for `listener` if both bounds allow it (the
    /// SYN path goes through [`take_in`](Self::take_in), which may lease).
    #[cfg(test)]
    pub(super) fn take(
        &self,
        listener: u64,
        max_total: usize,
        max_per_listener: usize,
    ) -> Result<(), Full> {
        self.check(listener, max_total, max_per_listener)?;
        self.reserve(listener, max_total, max_per_listener)
    }

    /// The read-only half of [`take`](Self::take): whether both bounds look
    /// open. A full cache ends here, having written nothing.
    pub(super) fn check(
        &self,
        listener: u64,
        max_total: usize,
        max_per_listener: usize,
    ) -> Result<(), Full> {
        // Relaxed: see the type's docs.
        if self.total.0.load(Ordering::Relaxed) >= max_total {
            return Err(Full::Global);
        }
        if self.slot(listener).load(Ordering::Relaxed) >= max_per_listener {
            return Err(Full::Listener);
        }
        Ok(())
    }

    /// The writing half of [`take`](Self::take): count the unit, backing
    /// out of a bound another taker filled since [`check`](Self::check).
    pub(super) fn reserve(
        &self,
        listener: u64,
        max_total: usize,
        max_per_listener: usize,
    ) -> Result<(), Full> {
        self.reserve_n(listener, 1, max_total, max_per_listener)
    }

    /// Counts `n` units for `listener` if both bounds allow all of them.
    fn reserve_n(
        &self,
        listener: u64,
        n: usize,
        max_total: usize,
        max_per_listener: usize,
    ) -> Result<(), Full> {
        let slot = self.slot(listener);
        #[cfg(test)]
        self.shared_writes.fetch_add(1, Ordering::Relaxed);
        // Relaxed: see the type's docs.
        if self
            .total
            .0
            .fetch_add(n, Ordering::Relaxed)
            .saturating_add(n)
            > max_total
        {
            self.total.0.fetch_sub(n, Ordering::Relaxed);
            return Err(Full::Global);
        }
        if slot.fetch_add(n, Ordering::Relaxed).saturating_add(n) > max_per_listener {
            slot.fetch_sub(n, Ordering::Relaxed);
            self.total.0.fetch_sub(n, Ordering::Relaxed);
            return Err(Full::Listener);
        }
        Ok(())
    }

    /// Gives back `n` units of `listener`, each taken by an entry now gone
    /// (or held in a lease being returned).
    pub(super) fn give_back(&self, listener: u64, n: usize) {
        if n == 0 {
            return;
        }
        #[cfg(test)]
        self.shared_writes.fetch_add(1, Ordering::Relaxed);
        // Relaxed: see the type's docs. Never below zero: every unit given
        // back was taken by the entry being removed or by the lease.
        self.slot(listener).fetch_sub(n, Ordering::Relaxed);
        self.total.0.fetch_sub(n, Ordering::Relaxed);
    }

    /// One unit for a new entry of `listener` in the shard holding `lease`
    /// (its lock held): from the lease when it holds units for `listener`,
    /// else from the shared counts, `batch` at a time when `batch > 1` (the
    /// rest kept as the shard's lease; a lease for another listener goes
    /// back). A leased unit is counted already, so only a limit lowered
    /// below the count refuses it, and then the lease goes back too, so the
    /// count drains below the new limit as entries leave.
    pub(super) fn take_in(
        &self,
        lease: &Lease,
        listener: u64,
        (max_total, max_per_listener): (usize, usize),
        batch: usize,
    ) -> Result<(), Full> {
        let (leased_to, units) = lease.get();
        if units > 0 && leased_to == listener {
            let over = if self.total() > max_total {
                Some(Full::Global)
            } else if self.of(listener) > max_per_listener {
                Some(Full::Listener)
            } else {
                None
            };
            if let Some(full) = over {
                self.give_back(listener, units);
                lease.set(listener, 0);
                return Err(full);
            }
            lease.set(listener, units - 1);
            return Ok(());
        }
        self.check(listener, max_total, max_per_listener)?;
        if batch > 1
            && self
                .reserve_n(listener, batch, max_total, max_per_listener)
                .is_ok()
        {
            self.give_back(leased_to, units);
            lease.set(listener, batch - 1);
            return Ok(());
        }
        self.reserve(listener, max_total, max_per_listener)
    }

    /// Gives back the unit of a removed entry of `listener` in the shard
    /// holding `lease` (its lock held): into the lease when it is empty or
    /// holds fewer than `batch - 1` units of the same listener, else to the
    /// shared counts.
    pub(super) fn put_back(&self, lease: &Lease, listener: u64, batch: usize) {
        let (leased_to, units) = lease.get();
        if batch > 1 && (units == 0 || (leased_to == listener && units + 1 < batch)) {
            lease.set(listener, units + 1);
        } else {
            self.give_back(listener, 1);
        }
    }

    /// Returns the lease of a shard (its lock held) if it is `listener`'s.
    pub(super) fn return_lease(&self, lease: &Lease, listener: u64) {
        let (leased_to, units) = lease.get();
        if leased_to == listener && units > 0 {
            self.give_back(listener, units);
            lease.set(listener, 0);
        }
    }

    /// Whether `a` and `b` share a per-listener slot.
    pub(super) fn same_slot(a: u64, b: u64) -> bool {
        a % LISTENER_SLOTS as u64 == b % LISTENER_SLOTS as u64
    }

    pub(super) fn memory_bytes() -> usize {
        core::mem::size_of::<Padded>()
            .saturating_add(LISTENER_SLOTS * core::mem::size_of::<AtomicUsize>())
    }
}
