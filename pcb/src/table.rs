//! The exact table: connections by 4-tuple, read without locks inside SMR
//! read sections (FreeBSD's `ipi_hash_exact` under `ipi_smr`), resized
//! online by writers (`table/resize.rs`).
//!
//! Invariant: **every PCB reachable from the readers' bucket array is live
//! or is being removed by the holder of its lock, and a PCB goes back to the
//! pool only after it is unreachable.** Readers therefore only ever see
//! constructed PCBs with a stable key, and a PCB that was in a chain for a
//! reader's whole section is found by it (a remove splices a PCB out by
//! pointing its predecessor at its successor, so a reader standing on a
//! removed PCB still walks on through the rest of the chain).
//!
//! ```text
//!  main ──► Array { mask, link, heads[hash & mask] }      (readers)
//!             heads[i] ─► Pcb ──links[link]──► Pcb ──► null
//!  shadow ─► Array (only while a resize builds it; writers only)
//!  stripes[hash & (S-1)]: { lock, count }   (S = 256 by default, fixed)
//! ```
//!
//! Layout, and why. A lookup that hits pays for the bucket word and the
//! first 64 bytes of each PCB it walks; one that misses pays for the bucket
//! word and, unless the head's tag summary rules the tuple out, each PCB in
//! the chain.
//! Three choices keep that small, each measured (`docs/benchmarks.md`):
//! - **8-byte heads, locks apart.** The locks live in a fixed array of
//!   [`STRIPES`] cache-padded stripes chosen by the low hash bits, so a
//!   bucket is one 8-byte head (1 MiB at 128k buckets), and the resizer
//!   holds the load factor at or below one, so a hit walks about 1.4 PCBs.
//!   A stripe is taken by the same low hash bits in every array size (all
//!   arrays have at least `S` buckets), which is what lets the resizer move
//!   one stripe at a time.
//! - **The PCB's lookup fields first.** `Pcb` is `repr(C)` with key,
//!   incarnation and the first link in its first 64 bytes (`pcb.rs`).
//!   Behind the pool's 24-byte slot header those bytes usually straddle two
//!   lines; cachegrind (simulated 32 KiB L1 and 512 KiB L2, one reader,
//!   100k entries) counts 4.4 L2 misses per hit for this table, 4.8 for
//!   hashbrown reaching a boxed PCB-sized block (`hashmap-unsync-pcb`), and
//!   2.5 for hashbrown holding the key inline, all including the benchmark's
//!   read of the tuple. Aligning `Pcb` to a line was tried and not kept: the
//!   one simulated run of it counted 5.4, not fewer (the method's noise, a
//!   table fill that differs run to run, is not small at the lookup counts
//!   valgrind reached on a loaded machine, so this is not settled).
//! - **A tag summary in the head word** ([`Layout::Summary`], the default;
//!   `table/array.rs`): 16 bits above the 48-bit address, one per tag of
//!   the PCBs in the chain, so most lookups of an absent tuple (the first
//!   segment of every new connection) stop at the head word. Same run, a
//!   loaded machine (`bench pcb`): absent lookups 1.7x to 2.0x the plain
//!   layout's rate, p50 latency 230-260 ns against 360-410; hits unchanged
//!   (the same instructions and simulated misses per lookup); churn within
//!   the run-to-run noise (0.78x-0.91x measured, with the remove's rehash
//!   of the chain left as its only extra work).
//!
//! Slot buckets (a cache line of (tag, pointer) pairs) were the other
//! candidate: they would save the walk over a chain's other PCBs on a hit,
//! but cost a line per bucket (8x the head array at load 1) and a copy-based
//! resize; at the load factors the resizer holds, chains are short.
//!
//! Locking key for [`Table`]:
//! - `main`: the readers' array. Changed only by the resizer holding every
//!   stripe lock (Release; readers load it with Acquire); the array it
//!   replaced is freed only after a grace period (`resize.rs`).
//! - `shadow`: null, or the array a resize is building. Changed only with
//!   every stripe lock held; read by writers under their stripe lock.
//! - In each array, `heads[i]` and every `links[array.link]` in chain `i`:
//!   written only under `stripes[i & (S-1)].lock` (the [`ChainLock`]
//!   token); read by lookups inside a read section with Acquire.
//! - `stripes[s].count`: changed only under that stripe's lock, Relaxed
//!   (statistics and resize decisions); never touched by lookups.
//! - `pool`, `hash`, `domain`, `stripes`: constant after creation.
//! - `resizer`: the resize state machine, behind its own mutex (lock order:
//!   resizer, then stripes in index order; writers step it only after
//!   releasing their stripe and PCB locks).

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
use std::sync::atomic::Ordering::{Acquire, Relaxed};

mod array;
mod resize;
#[cfg(test)]
mod tests_layout;

pub(crate) use array::Array;
pub use array::Layout;
use resize::Resizer;
pub use resize::{ResizeStats, ResizeStep};

/// Lock stripes of a table made by [`TableConfig::new`] (a power of two),
/// chosen by the low hash bits: every bucket array has at least as many
/// buckets as the table has stripes, so a stripe covers the same keys in
/// every array size.
pub const STRIPES: usize = 256;

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
    /// Connections expected at first: the initial bucket count is the next
    /// power of two at or above it (at least `stripes`). The table grows
    /// and shrinks from there (see `auto_resize` and `min_buckets`).
    pub expected: usize,
    /// The PCB pool's sizes and cap.
    pub pool: PoolConfig,
    /// The keyed hash; `None` draws a random key.
    pub hash: Option<FlowHash>,
    /// Whether inserts and removes resize the table when its load factor
    /// leaves [1/8, 1] (each doing one bounded step). Off: the table resizes
    /// only through [`Table::resize_to`] and [`Table::resize_step`].
    pub auto_resize: bool,
    /// The fewest buckets a shrink may leave (rounded up to a power of two,
    /// at least `stripes`); `None`: the initial size.
    pub min_buckets: Option<usize>,
    /// Lock stripes (rounded up to a power of two, at least one): the
    /// fewest buckets the table can have. [`STRIPES`] by default; tests and
    /// models use one to put every PCB in one chain.
    pub stripes: usize,
    /// Whether bucket heads carry their chain's tag summary
    /// ([`Layout::Summary`], the default) or not (`table/array.rs`).
    pub layout: Layout,
}

impl TableConfig {
    /// Defaults for `expected` connections: a pool capped at four times that
    /// (at least the pool's default cap), a random hash key, online resize
    /// on, [`STRIPES`] stripes, shrinking no lower than that many buckets.
    pub fn new(expected: usize) -> TableConfig {
        let mut pool = PoolConfig::default();
        pool.max_objects = pool.max_objects.max(expected.saturating_mul(4));
        TableConfig {
            expected,
            pool,
            hash: None,
            auto_resize: true,
            min_buckets: Some(STRIPES),
            stripes: STRIPES,
            layout: Layout::default(),
        }
    }
}

/// One lock stripe: the lock every writer of the stripe's chains holds, and
/// the stripe's entry count (changed only under the lock).
pub(crate) struct Stripe {
    lock: Mutex<()>,
    count: AtomicUsize,
}

/// The connection table. See the module docs for the protocol and the
/// locking key.
pub struct Table<T: Send + 'static> {
    main: AtomicPtr<Array<T>>,
    shadow: AtomicPtr<Array<T>>,
    hash: FlowHash,
    stripes: Box<[CachePadded<Stripe>]>,
    /// `stripes.len() - 1`.
    stripe_mask: usize,
    pool: PoolCache<Pcb<T>>,
    domain: Arc<Domain>,
    resizer: Resizer<T>,
    #[cfg(feature = "poison")]
    poison_hits: std::sync::atomic::AtomicU64,
}

// SAFETY: the raw array pointers are owned by the table (freed in `Drop` or
// after a grace period by the resizer) and only shared through atomics;
// `Array<T>` holds atomics and `Pcb<T>` pointers, which are Send + Sync for
// `T: Send` (`pcb.rs`).
unsafe impl<T: Send + 'static> Send for Table<T> {}
// SAFETY: as above; every shared field is an atomic, a mutex, or constant.
unsafe impl<T: Send + 'static> Sync for Table<T> {}

impl<T: Send + 'static> fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("buckets", &self.buckets())
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
        let stripes = cfg.stripes.clamp(1, 1 << 16).next_power_of_two();
        let n = resize::clamp_buckets(cfg.expected, stripes);
        let min = cfg
            .min_buckets
            .map_or(n, |m| resize::clamp_buckets(m, stripes));
        let pool = PoolCache::with_poison_hook(protection, cfg.pool, Pcb::new, Pcb::<T>::poison);
        Table {
            main: AtomicPtr::new(Array::alloc(n, 0, cfg.layout)),
            shadow: AtomicPtr::new(ptr::null_mut()),
            hash: cfg.hash.unwrap_or_else(FlowHash::random),
            stripe_mask: stripes - 1,
            stripes: (0..stripes)
                .map(|_| {
                    CachePadded(Stripe {
                        lock: Mutex::new(()),
                        count: AtomicUsize::new(0),
                    })
                })
                .collect(),
            pool,
            domain,
            resizer: Resizer::new(cfg.auto_resize, min, n),
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

    /// The readers' array. Valid while the caller is inside a read section
    /// of the domain or holds a stripe lock (the resizer frees a replaced
    /// array only after a grace period, and replaces it only with every
    /// stripe lock held), or holds the resizer's lock.
    #[inline(always)]
    fn main(&self) -> &Array<T> {
        // Acquire: pairs with the Release store in `Resizer::swap`, so the
        // heads and links written into the new array before it was
        // published are visible.
        let arr = self.main.load(Acquire);
        // SAFETY: never null; freed only after a grace period that covers
        // every section (and every stripe-lock holder, who took the lock
        // before the swap released it) that could have loaded it.
        unsafe { &*arr }
    }

    /// Number of buckets in the readers' array.
    pub fn buckets(&self) -> usize {
        let _section = self.domain.enter();
        self.main().len()
    }

    /// Bytes the table spends per entry beyond the PCB body: the bucket
    /// array and the stripes spread over `entries`, plus the two chain links
    /// in each PCB.
    pub fn overhead_per_entry(&self, entries: usize) -> f64 {
        let array = self.buckets() * std::mem::size_of::<AtomicPtr<Pcb<T>>>()
            + std::mem::size_of_val(&*self.stripes);
        array as f64 / entries.max(1) as f64 + 2.0 * std::mem::size_of::<AtomicPtr<Pcb<T>>>() as f64
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

    /// Lookups that walked over a PCB the pool had poisoned, or through a
    /// bucket array the resizer had retired (feature `poison`): any non-zero
    /// value is a reclamation bug.
    #[cfg(feature = "poison")]
    pub fn poison_hits(&self) -> u64 {
        // Relaxed: statistics only.
        self.poison_hits.load(Relaxed)
    }

    #[inline(always)]
    fn hash_of(&self, key: &Key) -> usize {
        self.hash.key(key) as usize
    }

    /// Lock the stripe of hash `h`: the right to change its chains in both
    /// arrays.
    fn chain(&self, h: usize) -> ChainLock<'_, T> {
        let stripe = &self.stripes[h & self.stripe_mask];
        let held = lock(&stripe.lock);
        // Relaxed: `main` and `shadow` change only while every stripe lock
        // is held, so taking ours ordered the last change before us.
        let main = self.main.load(Relaxed);
        let shadow = self.shadow.load(Relaxed);
        ChainLock {
            // SAFETY: never null; an array is freed only after it stopped
            // being `main` or `shadow`, which needs our stripe lock.
            main: unsafe { &*main },
            // SAFETY: as above: null or an array under construction, freed
            // only with every stripe lock held.
            shadow: unsafe { shadow.as_ref() },
            h,
            hash: &self.hash,
            count: &stripe.count,
            _held: held,
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
        let arr = self.main();
        let (mut p, link) = arr.head(self.hash_of(&key));
        #[cfg(all(feature = "poison", not(loom)))]
        if arr.is_retired() {
            // Relaxed: statistics only (test builds).
            self.poison_hits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
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
            // Acquire: as for the head (`Array::head`): pairs with the
            // Release store that linked the successor.
            p = pcb.links[link].load(Acquire);
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
        let mut chain = self.chain(self.hash_of(&key));
        if chain.find(&key).is_some() {
            return Err(new);
        }
        chain.push(new.ptr);
        std::mem::forget(new);
        let count = chain.count();
        drop(chain);
        self.resizer.after_insert(self, count);
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
        let arr = self.main();
        for i in 0..arr.len() {
            arr.walk(i, |nn, key| {
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
        self.stripes.iter().map(|s| s.count.load(Relaxed)).sum()
    }

    /// Whether the table is empty (see [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Chain-length statistics, walked inside one section (an estimate
    /// under concurrent changes).
    pub fn chain_stats(&self) -> ChainStats {
        self.chain_stats_walk(usize::MAX, 0)
    }

    /// Chain-length statistics of at most [`SAMPLE_BUCKETS`](crate::SAMPLE_BUCKETS)
    /// evenly spaced chains, the spacing's offset chosen by `round` (see
    /// `stats.rs`): bounded work, for metrics scrapes.
    pub fn chain_stats_sample(&self, round: usize) -> ChainStats {
        self.chain_stats_walk(crate::stats::SAMPLE_BUCKETS, round)
    }

    fn chain_stats_walk(&self, budget: usize, round: usize) -> ChainStats {
        let _section = self.domain.enter();
        let arr = self.main();
        ChainStats::sample(arr.len(), budget, round, |i| {
            let mut len = 0;
            arr.walk(i, |_, _| len += 1);
            len
        })
    }

    /// The resizer's counters: resizes, current buckets, load factor, time
    /// spent. Cheap (no walk): for metrics scrapes.
    pub fn resize_stats(&self) -> ResizeStats {
        self.resizer.stats(self)
    }

    /// Start a resize to `buckets` (rounded up to a power of two, at least
    /// the table's stripe count, at most 2^28) unless one is already under
    /// way or the table has that size; whether one was started. The work is done by later calls to
    /// [`resize_step`](Self::resize_step) (and by inserts and removes when
    /// `auto_resize` is on). Never waits for readers.
    pub fn resize_to(&self, buckets: usize) -> bool {
        self.resizer
            .start(self, resize::clamp_buckets(buckets, self.stripes.len()))
    }

    /// One bounded step of the resizer (one stripe moved, the swap, or a
    /// poll for the old array's grace period), or with none under way and
    /// `auto_resize` on, a check of the load factor. For a maintenance
    /// thread; never waits for readers, so it may be called from inside a
    /// read section.
    pub fn resize_step(&self) -> ResizeStep {
        self.resizer.step(self, true)
    }
}

impl<T: Send + 'static> Drop for Table<T> {
    fn drop(&mut self) {
        // Relaxed: `&mut self`, so no reader or writer is left.
        let main = self.main.load(Relaxed);
        let shadow = self.shadow.load(Relaxed);
        // SAFETY: both were made by `Array::alloc` and are owned by the
        // table; nothing can reach them any more.
        unsafe {
            Array::free(main);
            if !shadow.is_null() {
                Array::free(shadow);
            }
        }
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

/// The lock of one stripe, and with it the right to change that stripe's
/// chains in the readers' array and in the array a resize is building: the
/// type-level form of "writers hold the stripe lock".
struct ChainLock<'a, T> {
    main: &'a Array<T>,
    shadow: Option<&'a Array<T>>,
    /// The hash of the key this lock was taken for.
    h: usize,
    /// The table's keyed hash (an unlink recomputes the chain's summary).
    hash: &'a FlowHash,
    count: &'a AtomicUsize,
    _held: MutexGuard<'a, ()>,
}

impl<T> ChainLock<'_, T> {
    /// The linked PCB with this key (the readers' array is complete).
    fn find(&self, key: &Key) -> Option<NonNull<Pcb<T>>> {
        self.main.find_locked(self.h, key)
    }

    /// Link `new` at the head of its chain in the readers' array and, while
    /// a resize builds one, in the new array.
    fn push(&mut self, new: NonNull<Pcb<T>>) {
        // SAFETY: we hold the stripe lock of `h` (this token), and `new` is
        // constructed and not yet reachable.
        unsafe { self.main.push_locked(self.h, new) };
        if let Some(shadow) = self.shadow {
            // SAFETY: as above; a PCB's links in the two arrays are
            // separate fields (`Array::link` differs).
            unsafe { shadow.push_locked(self.h, new) };
        }
        // Relaxed: under the stripe lock (statistics and resize decisions).
        self.count.fetch_add(1, Relaxed);
    }

    /// Splice `victim` out of both arrays; whether it was linked in the
    /// readers' one. Its own links are left intact, so a reader standing on
    /// it walks on.
    fn unlink(&mut self, victim: NonNull<Pcb<T>>) -> bool {
        let hash_of = |k: &Key| self.hash.key(k) as usize;
        // SAFETY: we hold the stripe lock of `h`.
        let found = unsafe { self.main.unlink_locked(self.h, victim, hash_of) };
        if let Some(shadow) = self.shadow {
            // SAFETY: as above. Absent from the shadow when its stripe has
            // not been copied yet and it was linked before the resize began.
            unsafe { shadow.unlink_locked(self.h, victim, hash_of) };
        }
        if found {
            // Relaxed: as in `push`.
            self.count.fetch_sub(1, Relaxed);
        }
        found
    }

    /// The stripe's entries.
    fn count(&self) -> usize {
        // Relaxed: under the stripe lock.
        self.count.load(Relaxed)
    }
}

impl<T: Send + 'static> PcbGuard<'_, T> {
    /// Remove the connection from the table and return its state. The PCB
    /// is marked dead under its lock (which we hold), unlinked under its
    /// stripe lock (lock order: PCB, then stripe), and retired to the pool
    /// after both are released; readers still holding it find it dead.
    pub fn remove(mut self) -> T {
        let table = self.table;
        let ptr = NonNull::from(self.pcb);
        // SAFETY: we hold the lock of a live PCB.
        let key = unsafe { self.pcb.key() };
        let mut chain = table.chain(table.hash_of(&key));
        let unlinked = chain.unlink(ptr);
        assert!(unlinked, "pcb::Table: a live PCB was not in its chain");
        let count = chain.count();
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
            // SAFETY: unlinked above from every array a new reader can load
            // (`main`; an array replaced earlier is frozen and only sections
            // older than this retire can still hold it); marked dead under
            // its lock, so no `PcbRef::lock` can validate it and no guard to
            // it remains (we consumed the only one); no pin is outstanding
            // (none can be taken on a dead PCB); readers that still hold a
            // pointer are inside sections entered before the unlink.
            unsafe { table.pool.retire_raw(ptr) };
        }
        table.resizer.after_remove(table, count);
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
