//! The exact table: connections by 4-tuple, read without locks inside SMR
//! read sections (FreeBSD's `ipi_hash_exact` under `ipi_smr`).
//!
//! Invariant: **every PCB reachable from a bucket is live or is being
//! removed by the holder of its lock, and a PCB goes back to the pool only
//! after it is unreachable.** Readers therefore only ever see constructed
//! PCBs with a stable key, and a PCB that was in a chain for a reader's whole
//! section is found by it (a remove splices a PCB out by pointing its
//! predecessor at its successor, so a reader standing on a removed PCB still
//! walks on through the rest of the chain).
//!
//! ```text
//!  buckets[hash(tuple) & mask]          (power of two, sized at creation)
//!   ┌──────┬─────────────┐
//!   │ head ─┼─► Pcb ──next──► Pcb ──next──► null
//!   │ lock  │   (readers: Acquire loads, no stores; writers: bucket lock)
//!   └──────┴─────────────┘
//! ```
//!
//! Locking key for [`Table`]:
//! - `buckets[i].head` and every `next` in chain `i`: written only under
//!   `buckets[i].lock` (the [`ChainLock`] token); read by lookups inside a
//!   read section with Acquire.
//! - `counts[s]`: changed only under a bucket lock of stripe `s`, Relaxed
//!   (statistics only); never touched by lookups.
//! - `pool`, `hash`, `mask`, `domain`: constant after creation.

use crate::hash::FlowHash;
use crate::pcb::{Pcb, PcbGuard, PcbRef};
use crate::primitive::{AtomicPtr, AtomicUsize, CachePadded, Mutex, MutexGuard, lock};
use crate::stats::ChainStats;
use crate::tuple::{FourTuple, Key};
use smr::{Domain, PoolCache, PoolConfig, Protection, ReadSection};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// Entry-count stripes (a power of two): spreads the inserts' and removes'
/// count updates over separate cache lines.
const STRIPES: usize = 64;

/// Why an insert was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// A connection with this 4-tuple is already in the table.
    Duplicate(FourTuple),
    /// The PCB pool is at its cap and nothing retired has passed its grace
    /// period (a read section is stalled, or the table is over capacity).
    Exhausted,
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InsertError::Duplicate(t) => write!(
                f,
                "connection {t} is already in the table: remove the existing connection \
                 first, or use another local port"
            ),
            InsertError::Exhausted => f.write_str(
                "no PCB available: the pool is at its cap and no removed connection has \
                 passed its grace period; drop this connection attempt and look for a \
                 stalled read section (smr::Domain::blockers) or raise the table's capacity",
            ),
        }
    }
}

impl std::error::Error for InsertError {}

/// How to build a [`Table`].
#[derive(Clone, Debug)]
pub struct TableConfig {
    /// Connections expected at once: the bucket count is the next power of
    /// two at or above it (mean chain ≤ 1 at that load).
    pub expected: usize,
    /// The PCB pool's sizes and cap.
    pub pool: PoolConfig,
    /// The keyed hash; `None` draws a random key.
    pub hash: Option<FlowHash>,
}

impl TableConfig {
    /// Defaults for `expected` connections: a pool capped at four times that
    /// (at least the pool's default cap), a random hash key.
    pub fn new(expected: usize) -> TableConfig {
        let mut pool = PoolConfig::default();
        pool.max_objects = pool.max_objects.max(expected.saturating_mul(4));
        TableConfig {
            expected,
            pool,
            hash: None,
        }
    }
}

pub(crate) struct Bucket<T> {
    head: AtomicPtr<Pcb<T>>,
    lock: Mutex<()>,
}

/// The connection table. See the module docs for the protocol and the
/// locking key.
pub struct Table<T: Send + 'static> {
    buckets: Box<[Bucket<T>]>,
    mask: usize,
    hash: FlowHash,
    counts: Box<[CachePadded<AtomicUsize>]>,
    pool: PoolCache<Pcb<T>>,
    domain: Arc<Domain>,
    #[cfg(feature = "poison")]
    poison_hits: std::sync::atomic::AtomicU64,
}

impl<T: Send + 'static> fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("buckets", &self.buckets.len())
            .field("len", &self.len())
            .finish()
    }
}

impl<T: Send + 'static> Table<T> {
    /// A table for about `expected` connections whose readers enter `domain`.
    pub fn new(domain: Arc<Domain>, expected: usize) -> Table<T> {
        Table::with_config(domain, TableConfig::new(expected))
    }

    /// A table from a full configuration.
    pub fn with_config(domain: Arc<Domain>, cfg: TableConfig) -> Table<T> {
        let protection = Protection::Smr(domain.clone());
        Table::with_protection(domain, cfg, protection)
    }

    /// As `with_config`, with the pool's protection chosen by the caller:
    /// tests pass `Protection::Immediate` to have a removed PCB handed
    /// straight back to the next insert while a reader still holds it.
    pub(crate) fn with_protection(
        domain: Arc<Domain>,
        cfg: TableConfig,
        protection: Protection,
    ) -> Table<T> {
        let n = cfg.expected.max(1).next_power_of_two();
        let buckets = (0..n)
            .map(|_| Bucket {
                head: AtomicPtr::new(ptr::null_mut()),
                lock: Mutex::new(()),
            })
            .collect();
        let pool = PoolCache::with_poison_hook(protection, cfg.pool, Pcb::new, Pcb::<T>::poison);
        Table {
            buckets,
            mask: n - 1,
            hash: cfg.hash.unwrap_or_else(FlowHash::random),
            counts: (0..STRIPES)
                .map(|_| CachePadded(AtomicUsize::new(0)))
                .collect(),
            pool,
            domain,
            #[cfg(feature = "poison")]
            poison_hits: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The domain lookups must enter.
    pub fn domain(&self) -> &Arc<Domain> {
        &self.domain
    }

    /// The keyed hash (shared with the listen table and the baselines).
    pub fn flow_hash(&self) -> &FlowHash {
        &self.hash
    }

    /// Number of buckets.
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Bytes the table spends per entry beyond the PCB body: the bucket
    /// array spread over `entries`, plus the chain link in each PCB.
    pub fn overhead_per_entry(&self, entries: usize) -> f64 {
        let array = std::mem::size_of_val(&*self.buckets) + std::mem::size_of_val(&*self.counts);
        array as f64 / entries.max(1) as f64 + std::mem::size_of::<AtomicPtr<Pcb<T>>>() as f64
    }

    /// The PCB pool's counters.
    pub fn pool_stats(&self) -> smr::PoolStats {
        self.pool.stats()
    }

    /// Hands the calling thread's partly filled pool magazines to the depot
    /// (retired PCBs stamped as one batch) and makes every batch whose grace
    /// period has passed reusable, without waiting. For an idle thread, so
    /// that PCBs retired in a quiet period do not stay pending forever.
    pub fn pool_reclaim_idle(&self) -> smr::Reclaimed {
        self.pool.flush();
        self.pool.reclaim()
    }

    /// Lookups that walked over a PCB the pool had poisoned (feature
    /// `poison`): any non-zero value is a reclamation bug.
    #[cfg(feature = "poison")]
    pub fn poison_hits(&self) -> u64 {
        // Relaxed: statistics only.
        self.poison_hits.load(Relaxed)
    }

    #[inline(always)]
    fn bucket_of(&self, key: &Key) -> usize {
        self.hash.key(key) as usize & self.mask
    }

    fn chain(&self, idx: usize) -> ChainLock<'_, T> {
        let bucket = &self.buckets[idx];
        ChainLock {
            _held: lock(&bucket.lock),
            bucket,
            count: &self.counts[idx & (STRIPES - 1)],
        }
    }

    #[inline(always)]
    fn check_section(&self, section: &ReadSection<'_>) {
        assert!(
            ptr::eq(section.domain(), &*self.domain),
            "pcb::Table: the read section belongs to another SMR domain than the table's"
        );
    }

    /// Find the connection with this tuple. Lock-free: loads only, no
    /// stores to shared memory. The result is valid inside `section`; keep
    /// the connection beyond it with [`PcbRef::lock`].
    ///
    /// # Panics
    /// If `section` is not a section of the table's domain.
    #[inline(always)]
    pub fn lookup<'t, 'g>(
        &'t self,
        section: &'g ReadSection<'_>,
        tuple: &FourTuple,
    ) -> Option<PcbRef<'t, 'g, T>> {
        self.check_section(section);
        let key = Key::from(tuple);
        let bucket = &self.buckets[self.bucket_of(&key)];
        // Acquire: pairs with the Release store in `ChainLock::push` /
        // `unlink` that made this pointer current, so the PCB's key and link
        // written before publication are visible.
        let mut p = bucket.head.load(Acquire);
        while let Some(nn) = NonNull::new(p) {
            // SAFETY: loaded from a chain inside `section`; the pool reuses a
            // PCB only after every section that could have loaded it ended,
            // so this is a constructed `Pcb<T>` whose key is not being
            // written (locking key, `pcb.rs`).
            let pcb = unsafe { nn.as_ref() };
            #[cfg(feature = "poison")]
            // SAFETY: as above: inside a section that found it.
            if unsafe { self.pool.is_poisoned(nn) } {
                // Relaxed: statistics only (test builds).
                self.poison_hits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            // SAFETY: found in a chain inside an open section (`Pcb::key`).
            if unsafe { pcb.key() } == key {
                return Some(PcbRef {
                    table: self,
                    pcb: nn,
                    key,
                    // SAFETY: as for the key.
                    incarnation: unsafe { pcb.incarnation() },
                    _section: PhantomData,
                });
            }
            // Acquire: as for the head.
            p = pcb.next.load(Acquire);
        }
        None
    }

    /// Whether a connection with this tuple is in the table (in a section
    /// of its own).
    pub fn contains(&self, tuple: &FourTuple) -> bool {
        let section = self.domain.enter();
        self.lookup(&section, tuple).is_some()
    }

    /// Find and lock a connection: `lookup` then `PcbRef::lock`, leaving
    /// the read section before returning.
    pub fn lock(&self, tuple: &FourTuple) -> Option<PcbGuard<'_, T>> {
        let section = self.domain.enter();
        self.lookup(&section, tuple)?.lock()
    }

    /// Insert a connection with its initial state. Refuses a tuple that is
    /// already present (dropping `value`).
    pub fn insert(&self, tuple: &FourTuple, value: T) -> Result<(), InsertError> {
        let new = self.prepare(value)?;
        self.publish(new, Key::from(tuple))
            .map_err(|_| InsertError::Duplicate(*tuple))
    }

    /// Remove a connection and return its state (`lock` + `PcbGuard::remove`).
    pub fn remove(&self, tuple: &FourTuple) -> Option<T> {
        Some(self.lock(tuple)?.remove())
    }

    /// A PCB from the pool holding `value`, not yet reachable.
    pub(crate) fn prepare(&self, value: T) -> Result<Unpublished<'_, T>, InsertError> {
        let ptr = self.pool.alloc_raw().map_err(|_| InsertError::Exhausted)?;
        // SAFETY: fresh from `alloc_raw`: constructed, ours alone.
        let pcb = unsafe { ptr.as_ref() };
        let mut st = lock(&pcb.state);
        debug_assert!(st.conn.is_none(), "the pool handed out a live PCB");
        debug_assert_eq!(st.pins, 0, "the pool handed out a pinned PCB");
        st.conn = Some(value);
        drop(st);
        // SAFETY: fresh from the pool and unpublished: no reader or writer
        // can reach it (the locking key's rule for `incarnation`).
        unsafe { pcb.incarnation.set(pcb.incarnation.get().wrapping_add(1)) };
        Ok(Unpublished { table: self, ptr })
    }

    /// Give `new` the key and link it, unless the key is already present
    /// (then `new` comes back, still unpublished).
    pub(crate) fn publish<'t>(
        &'t self,
        new: Unpublished<'t, T>,
        key: Key,
    ) -> Result<(), Unpublished<'t, T>> {
        // SAFETY: `new` is unpublished: no reader or writer can reach it.
        unsafe { new.ptr.as_ref().key.set(key) };
        let mut chain = self.chain(self.bucket_of(&key));
        if chain.find(&key).is_some() {
            return Err(new);
        }
        chain.push(new.ptr);
        std::mem::forget(new);
        Ok(())
    }

    /// Call `f` for every connection present for the whole call (others may
    /// or may not be seen). Not a snapshot: entries inserted or removed
    /// meanwhile may appear or not, and `f` runs inside `section`, so it
    /// must be short (use `PcbRef::lock` to touch the state).
    pub fn for_each<'t, 'g>(
        &'t self,
        section: &'g ReadSection<'_>,
        mut f: impl FnMut(PcbRef<'t, 'g, T>),
    ) {
        self.check_section(section);
        for bucket in self.buckets.iter() {
            walk(bucket, |nn, key| {
                f(PcbRef {
                    table: self,
                    pcb: nn,
                    key,
                    // SAFETY: found in a chain inside `section` (`walk`).
                    incarnation: unsafe { nn.as_ref().incarnation() },
                    _section: PhantomData,
                })
            });
        }
    }

    /// Entries, from the per-stripe counts kept by inserts and removes
    /// (lookups do not touch them). Exact when the table is quiescent.
    pub fn len(&self) -> usize {
        // Relaxed: statistics only.
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// Whether the table is empty (see [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Chain-length statistics, walked inside one section (an estimate
    /// under concurrent changes).
    pub fn chain_stats(&self) -> ChainStats {
        let _section = self.domain.enter();
        let mut stats = ChainStats::default();
        for bucket in self.buckets.iter() {
            let mut len = 0;
            walk(bucket, |_, _| len += 1);
            stats.add_chain(len);
        }
        stats
    }
}

/// Walk one chain, calling `f` with each PCB and its key.
///
/// Only called with a read section of the table's domain open (for_each,
/// chain_stats), which is what makes the dereferences sound.
fn walk<T>(bucket: &Bucket<T>, mut f: impl FnMut(NonNull<Pcb<T>>, Key)) {
    // Acquire: as in `lookup`.
    let mut p = bucket.head.load(Acquire);
    while let Some(nn) = NonNull::new(p) {
        // SAFETY: the caller holds a read section (see above): as in `lookup`.
        let pcb = unsafe { nn.as_ref() };
        // SAFETY: as above.
        f(nn, unsafe { pcb.key() });
        // Acquire: as in `lookup`.
        p = pcb.next.load(Acquire);
    }
}

/// A PCB taken from the pool and given its state, not yet linked. Dropping
/// it gives the memory back (and drops the state).
pub(crate) struct Unpublished<'t, T: Send + 'static> {
    table: &'t Table<T>,
    ptr: NonNull<Pcb<T>>,
}

impl<T: Send + 'static> Drop for Unpublished<'_, T> {
    fn drop(&mut self) {
        // SAFETY: ours and unpublished.
        let conn = lock(&unsafe { self.ptr.as_ref() }.state).conn.take();
        // SAFETY: never linked, so no reader can reach it; we give up our
        // only handle.
        unsafe { self.table.pool.retire_raw(self.ptr) };
        drop(conn);
    }
}

/// The lock of one bucket, and with it the right to change that chain: the
/// type-level form of "writers hold the bucket lock".
struct ChainLock<'a, T> {
    bucket: &'a Bucket<T>,
    count: &'a AtomicUsize,
    _held: MutexGuard<'a, ()>,
}

impl<T> ChainLock<'_, T> {
    /// The linked PCB with this key.
    fn find(&self, key: &Key) -> Option<NonNull<Pcb<T>>> {
        // Relaxed loads: every store to this chain happens under the bucket
        // lock we hold, whose acquisition orders them before us.
        let mut p = self.bucket.head.load(Relaxed);
        while let Some(nn) = NonNull::new(p) {
            // SAFETY: linked PCBs are not retired while linked (module
            // invariant), and we hold the bucket lock.
            let pcb = unsafe { nn.as_ref() };
            // SAFETY: linked, and we hold its bucket lock.
            if unsafe { pcb.key() } == *key {
                return Some(nn);
            }
            p = pcb.next.load(Relaxed);
        }
        None
    }

    /// Link `new` at the head.
    fn push(&mut self, new: NonNull<Pcb<T>>) {
        // SAFETY: `new` is constructed and not yet reachable.
        let pcb = unsafe { new.as_ref() };
        // Relaxed: under the bucket lock (see `find`).
        let head = self.bucket.head.load(Relaxed);
        // Relaxed: published by the Release store below.
        pcb.next.store(head, Relaxed);
        // Release: pairs with the Acquire loads in `lookup`/`walk`, so a
        // reader that sees `new` sees its key, its link and its state.
        self.bucket.head.store(new.as_ptr(), Release);
        // Relaxed: statistics only.
        self.count.fetch_add(1, Relaxed);
    }

    /// Splice `victim` out; whether it was linked here. Its own `next` is
    /// left intact, so a reader standing on it walks on.
    fn unlink(&mut self, victim: NonNull<Pcb<T>>) -> bool {
        let mut link: &AtomicPtr<Pcb<T>> = &self.bucket.head;
        loop {
            // Relaxed: under the bucket lock.
            let p = link.load(Relaxed);
            let Some(nn) = NonNull::new(p) else {
                return false;
            };
            // SAFETY: linked, so not retired.
            let pcb = unsafe { nn.as_ref() };
            if nn == victim {
                // Release: the successor was published by an earlier Release
                // store; this one carries that to readers that load the new
                // pointer from `link` with Acquire.
                link.store(pcb.next.load(Relaxed), Release);
                // Relaxed: statistics only.
                self.count.fetch_sub(1, Relaxed);
                return true;
            }
            link = &pcb.next;
        }
    }
}

impl<T: Send + 'static> PcbGuard<'_, T> {
    /// Remove the connection from the table and return its state. The PCB
    /// is marked dead under its lock (which we hold), unlinked under its
    /// bucket lock (lock order: PCB, then bucket), and retired to the pool
    /// after both are released; readers still holding it find it dead.
    pub fn remove(mut self) -> T {
        let table = self.table;
        let ptr = NonNull::from(self.pcb);
        // SAFETY: we hold the lock of a live PCB.
        let key = unsafe { self.pcb.key() };
        let mut chain = table.chain(table.bucket_of(&key));
        let unlinked = chain.unlink(ptr);
        assert!(unlinked, "pcb::Table: a live PCB was not in its chain");
        drop(chain);
        let conn = self
            .state
            .conn
            .take()
            .expect("a guard exists only for a live PCB");
        // Pinned: the last pin's holder retires it (`Table::unpin`).
        let retire = self.state.pins == 0;
        drop(self);
        if retire {
            // SAFETY: unlinked above, so new readers cannot find it; marked
            // dead under its lock, so no `PcbRef::lock` can validate it and
            // no guard to it remains (we consumed the only one); no pin is
            // outstanding (none can be taken on a dead PCB); readers that
            // still hold a pointer are inside sections entered before the
            // unlink.
            unsafe { table.pool.retire_raw(ptr) };
        }
        conn
    }
}

impl<T: Send + 'static> Table<T> {
    /// The pool's generation of a PCB we hold (feature `poison`).
    #[cfg(feature = "poison")]
    pub(crate) fn pool_generation(&self, ptr: NonNull<Pcb<T>>) -> u64 {
        // SAFETY: the caller holds the PCB's live lock: allocated, not
        // retired, its chunk in place.
        unsafe { self.pool.generation(ptr) }
    }

    /// A pinned PCB must be neither retired nor reused (feature `poison`):
    /// counts a violation as a poison hit.
    #[cfg(feature = "poison")]
    pub(crate) fn check_pin(&self, ptr: NonNull<Pcb<T>>, generation: u64) {
        // SAFETY: the pin is outstanding, so (unless this very check fails)
        // the PCB is allocated and its chunk in place.
        let bad = unsafe { self.pool.is_poisoned(ptr) || self.pool.generation(ptr) != generation };
        if bad {
            // Relaxed: statistics only (test builds).
            self.poison_hits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Retire a PCB to the pool (for `unpin`).
    ///
    /// # Safety
    /// As `PoolCache::retire_raw`: the PCB is unlinked, dead, unpinned, and
    /// the caller gives up its last handle.
    pub(crate) unsafe fn pool_retire(&self, ptr: NonNull<Pcb<T>>) {
        // SAFETY: the caller's contract.
        unsafe { self.pool.retire_raw(ptr) }
    }
}
