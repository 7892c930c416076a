//! `smr::pool`: a pool cache whose freed objects are reused only after every
//! read section that could still see them has ended (FreeBSD's UMA SMR zones,
//! NetBSD's `pool_cache` with SMR or `PR_PSERIALIZE`).
//!
//! Invariant: **an object retired with `retire` is handed out again by
//! `alloc` only after the grace period of the batch it was retired in has
//! passed** (except in `Immediate` mode, which is for objects readers never
//! reach), and objects are only ever reused as the same, still-constructed
//! `T`.
//!
//! ```text
//!  alloc ◄── alloc mag ◄── prev mag ◄── depot.ready ◄── fresh chunk
//!                                           ▲
//!                    poll(goal) passed ─────┘ (oldest first)
//!                                           │
//!  retire ──► retire mag ──(full: one advance() for the whole batch)──►
//!             depot.pending FIFO: [goal g1 | g2 | g3 ...]
//! ```
//!
//! Each thread has its own magazines (Bonwick), so the common alloc and
//! retire touch only thread-local memory. A full retire magazine is stamped
//! with ONE `advance()` and queued; on a miss, `alloc` takes a ready magazine,
//! else the oldest pending batch if `poll` says it has passed (bcachefs
//! `rcu_pending`: allocate from what is pending freeing), else a new chunk if
//! it fits under `max_objects`, else waits at most `expedite_timeout` for the
//! oldest batch, else returns [`Exhausted`]. It never grows past the cap and
//! never blocks without a bound.

mod depot;
mod local;
mod magazine;
mod shared;
mod slab;
mod stats;
#[cfg(all(test, not(loom)))]
mod tests;

pub use stats::{LATENCY_BUCKETS, PoolStats};

use crate::{Domain, Pserialize};
use shared::Shared;
use slab::Slot;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

/// What protects retired objects from reuse, chosen at construction.
#[derive(Clone, Debug)]
pub enum Protection {
    /// Batches are stamped with an SMR goal from this domain; the domain's
    /// mode (default, lazy, deferred) decides how goals are taken and
    /// passed.
    Smr(Arc<Domain>),
    /// NetBSD `PR_PSERIALIZE` style: a full retire batch costs one
    /// synchronous `perform()` and is reusable right after it.
    Pserialize(Arc<Pserialize>),
    /// No protection: a retired object may be handed out by the very next
    /// `alloc`. **Unsafe for any object a reader can still reach**: a reader
    /// holding a stale pointer finds the object reused (still a constructed
    /// `T`, but someone else's), and after `reclaim()` possibly freed.
    /// Only for objects that are never published to readers.
    Immediate,
}

/// The protection in force, as reported by [`PoolCache::mode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolMode {
    /// SMR, default (fenced) domain.
    Smr,
    /// SMR, lazy domain.
    SmrLazy,
    /// SMR, deferred domain.
    SmrDeferred,
    /// Pserialize.
    Pserialize,
    /// No protection.
    Immediate,
}

impl PoolMode {
    /// The lower-case name used on command lines and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            PoolMode::Smr => "smr",
            PoolMode::SmrLazy => "smr-lazy",
            PoolMode::SmrDeferred => "smr-deferred",
            PoolMode::Pserialize => "pserialize",
            PoolMode::Immediate => "immediate",
        }
    }
}

/// Sizes and limits of a pool.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Objects per magazine, hence per stamped batch: the number of frees one
    /// `advance()` pays for.
    pub magazine_size: usize,
    /// Objects constructed per slab chunk.
    pub chunk_objects: usize,
    /// The cap on constructed objects (live + cached + pending). A chunk is
    /// created only if it fits.
    pub max_objects: usize,
    /// At the cap, how long `alloc` may wait for the oldest pending batch.
    pub expedite_timeout: Duration,
    /// After an expedited wait for a goal failed, further `alloc`s at the cap
    /// return `Exhausted` at once for this long instead of waiting again for
    /// the same goal (a stalled reader must not turn every allocation into a
    /// sleep).
    pub expedite_backoff: Duration,
    /// One retire in this many records its time for the reuse-latency
    /// histogram; a power of two.
    pub latency_sample_every: u32,
}

impl Default for PoolConfig {
    /// 64-object magazines and chunks, a cap of 2^20 objects, 1 ms
    /// expedite, 10 ms backoff, latency sampled 1 in 64.
    fn default() -> Self {
        PoolConfig {
            magazine_size: 64,
            chunk_objects: 64,
            max_objects: 1 << 20,
            expedite_timeout: Duration::from_millis(1),
            expedite_backoff: Duration::from_millis(10),
            latency_sample_every: 64,
        }
    }
}

impl PoolConfig {
    fn validate(&self) {
        assert!(
            self.magazine_size > 0,
            "smr::pool: magazine_size must be positive"
        );
        assert!(
            self.chunk_objects > 0,
            "smr::pool: chunk_objects must be positive"
        );
        assert!(
            self.chunk_objects < u32::MAX as usize,
            "smr::pool: chunk_objects too large"
        );
        assert!(
            self.max_objects >= self.chunk_objects,
            "smr::pool: max_objects must hold at least one chunk"
        );
        assert!(
            self.latency_sample_every.is_power_of_two(),
            "smr::pool: latency_sample_every must be a power of two"
        );
    }
}

/// `alloc` found no reusable memory and the pool is at `max_objects`: every
/// object is live or still waiting for readers (a stalled read section holds
/// the oldest batch back). Counted in [`PoolStats::exhausted`]; the caller
/// should shed the work (drop the SYN), not retry in a loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exhausted;

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "pool cache exhausted: at its max_objects cap and no retired object has passed its grace period",
        )
    }
}

impl std::error::Error for Exhausted {}

/// What one [`PoolCache::reclaim`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Pending objects found past their grace period and made reusable.
    pub passed: usize,
    /// Slab chunks freed because all their objects were reusable.
    pub chunks_freed: usize,
}

/// A pool cache of type-stable `T`s whose memory is reused only after SMR
/// readers have passed. See the module docs for the allocation order and
/// the bound.
///
/// Objects are constructed by the `init` function once, when their chunk is
/// created, and stay constructed while resident: `alloc` hands out an
/// object in whatever state its last owner left it, and a reader holding a
/// stale pointer inside its section always finds a valid `T`. Mutate objects
/// through their own interior mutability (their lock).
///
/// Raw pointers from [`alloc_raw`](Self::alloc_raw) are valid while the pool
/// lives; dropping the pool frees every chunk.
pub struct PoolCache<T: Send + Sync + 'static> {
    shared: Arc<Shared<T>>,
}

impl<T: Send + Sync + 'static> std::fmt::Debug for PoolCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolCache")
            .field("mode", &self.mode())
            .field("config", &self.shared.cfg)
            .finish()
    }
}

impl<T: Send + Sync + 'static> PoolCache<T> {
    /// An SMR pool on `domain` with the default configuration.
    pub fn new(domain: Arc<Domain>, init: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Self::with_config(Protection::Smr(domain), PoolConfig::default(), init)
    }

    /// A pool with the given protection and configuration.
    ///
    /// # Panics
    /// On an invalid configuration (zero sizes, a cap below one chunk, a
    /// sample interval that is not a power of two).
    pub fn with_config(
        protection: Protection,
        config: PoolConfig,
        init: impl Fn() -> T + Send + Sync + 'static,
    ) -> Self {
        PoolCache {
            shared: Arc::new(Shared::new(protection, config, Box::new(init), None)),
        }
    }

    /// As [`with_config`](Self::with_config), plus a hook that poison builds
    /// (feature `poison`) run on every object when it passes its grace
    /// period, to overwrite fields a stale reader would check. It must leave
    /// the type-stable parts (locks) valid. Ignored without the feature.
    pub fn with_poison_hook(
        protection: Protection,
        config: PoolConfig,
        init: impl Fn() -> T + Send + Sync + 'static,
        hook: fn(&T),
    ) -> Self {
        PoolCache {
            shared: Arc::new(Shared::new(protection, config, Box::new(init), Some(hook))),
        }
    }

    /// The protection in force (for SMR, the domain's actual mode).
    pub fn mode(&self) -> PoolMode {
        self.shared.mode()
    }

    /// The SMR domain readers must enter, for SMR pools.
    pub fn domain(&self) -> Option<&Arc<Domain>> {
        match &self.shared.protect {
            Protection::Smr(d) => Some(d),
            _ => None,
        }
    }

    /// The pserialize domain readers must enter, for pserialize pools.
    pub fn pserialize(&self) -> Option<&Arc<Pserialize>> {
        match &self.shared.protect {
            Protection::Pserialize(p) => Some(p),
            _ => None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.shared.cfg
    }

    /// Allocate an object, owned by the returned handle.
    pub fn alloc(&self) -> Result<Pooled<'_, T>, Exhausted> {
        let ptr = self.alloc_raw()?;
        Ok(Pooled { pool: self, ptr })
    }

    /// Allocate an object for an intrusive structure. The caller owns it
    /// until it passes it to [`retire_raw`](Self::retire_raw); it is never
    /// handed out twice meanwhile. Never blocks longer than
    /// `expedite_timeout`.
    #[inline]
    pub fn alloc_raw(&self) -> Result<NonNull<T>, Exhausted> {
        Shared::alloc(&self.shared).map(Slot::value_ptr)
    }

    /// Give an object back. It joins the calling thread's retire magazine
    /// and is reused only after the grace period of its batch (in SMR and
    /// pserialize modes).
    ///
    /// # Safety
    /// - `ptr` came from `alloc_raw` (or `Pooled::into_raw`) of this pool
    ///   and has not been retired since;
    /// - the caller has already made it unreachable for new readers (unlinked
    ///   it from every shared structure): readers that find it after this
    ///   call are not covered by the grace period;
    /// - nobody uses it after this call except readers inside a read section
    ///   of the pool's domain entered before the unlink (and only through
    ///   `&T`);
    /// - in `Immediate` mode: no reader can reach it at all.
    #[inline]
    pub unsafe fn retire_raw(&self, ptr: NonNull<T>) {
        // SAFETY: the caller guarantees `ptr` is a live object of this pool.
        unsafe { Shared::retire(&self.shared, Slot::from_value(ptr)) }
    }

    /// The generation of the object at `ptr`: bumped on every alloc and
    /// retire, so it is odd while the object is allocated, and a reader can
    /// tell the object it found from a later reuse of the same memory.
    ///
    /// # Safety
    /// `ptr` came from this pool, and the caller owns the object or is inside
    /// a read section of the pool's domain entered before it was retired
    /// (so its chunk cannot have been freed).
    pub unsafe fn generation(&self, ptr: NonNull<T>) -> u64 {
        // SAFETY: caller.
        unsafe { self.shared.header_of(ptr) }.generation()
    }

    /// Whether the object at `ptr` has passed its grace period and sits
    /// free (poison builds only): a reader that sees `true` inside its
    /// section has found a reclamation bug.
    ///
    /// # Safety
    /// As [`generation`](Self::generation).
    #[cfg(feature = "poison")]
    pub unsafe fn is_poisoned(&self, ptr: NonNull<T>) -> bool {
        // SAFETY: caller.
        unsafe { self.shared.header_of(ptr) }.is_poisoned()
    }

    /// Hand the calling thread's partial magazines to the depot: reusable
    /// objects to the ready list, retired ones stamped as one batch. For
    /// thread shutdown and tests; thread exit does this automatically.
    pub fn flush(&self) {
        Shared::flush(&self.shared)
    }

    /// The shrinker: collect every thread's reusable magazines into the
    /// depot, make every batch that has passed (without waiting) reusable,
    /// and free the chunks whose objects are all reusable. Inside a read
    /// section only the caller's own magazines are collected; a thread's
    /// cache whose `membarrier(2)` fails is skipped (and counted in
    /// [`PoolStats::membarrier_failures`]).
    pub fn reclaim(&self) -> Reclaimed {
        Shared::reclaim(&self.shared)
    }

    /// Stamp every pending object, including those in other threads' partial
    /// retire magazines, and wait until all of them have passed and are
    /// reusable (the `kvfree_rcu_barrier` lesson). Blocks as long as a read
    /// section older than the call stays open, and while `membarrier(2)`
    /// fails (ENOMEM) for another thread's cache: that steal is retried with
    /// backoff and counted in [`PoolStats::membarrier_failures`].
    ///
    /// # Panics
    /// Inside a read section of the pool's domain.
    pub fn barrier(&self) {
        Shared::barrier(&self.shared)
    }

    /// A snapshot of the pool's counters, summed over every thread.
    pub fn stats(&self) -> PoolStats {
        self.shared.stats()
    }
}

/// An object owned by the caller: derefs to `T`, and goes back to the pool
/// (retired, reused after readers pass) when dropped or [`retired`].
///
/// [`retired`]: Pooled::retire
pub struct Pooled<'p, T: Send + Sync + 'static> {
    pool: &'p PoolCache<T>,
    ptr: NonNull<T>,
}

// SAFETY: a `Pooled` is a unique owner of a `T: Send + Sync` plus a shared
// reference to a `Sync` pool; retiring from another thread is allowed.
unsafe impl<T: Send + Sync + 'static> Send for Pooled<'_, T> {}
// SAFETY: `&Pooled` only gives `&T`.
unsafe impl<T: Send + Sync + 'static> Sync for Pooled<'_, T> {}

impl<'p, T: Send + Sync + 'static> Pooled<'p, T> {
    /// Retire the object now (the same as dropping the handle).
    pub fn retire(self) {
        drop(self)
    }

    /// The object's address, for publishing into an intrusive structure.
    /// The handle keeps ownership; drop or retire it only after unlinking.
    pub fn as_ptr(&self) -> NonNull<T> {
        self.ptr
    }

    /// Give up the handle; retire the object later with
    /// [`PoolCache::retire_raw`].
    pub fn into_raw(self) -> NonNull<T> {
        let ptr = self.ptr;
        std::mem::forget(self);
        ptr
    }

    /// Take ownership of an object from `alloc_raw` / `into_raw`.
    ///
    /// # Safety
    /// `ptr` came from `pool` and the caller owns it (not retired, no other
    /// handle).
    pub unsafe fn from_raw(pool: &'p PoolCache<T>, ptr: NonNull<T>) -> Self {
        Pooled { pool, ptr }
    }

    /// The object's generation (odd: allocated).
    pub fn generation(&self) -> u64 {
        // SAFETY: we own the object.
        unsafe { self.pool.generation(self.ptr) }
    }
}

impl<T: Send + Sync + 'static> Deref for Pooled<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we own a live object of a pool that outlives `'p`; the
        // pool never hands out `&mut T`, so shared access is always sound.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: Send + Sync + 'static> Drop for Pooled<'_, T> {
    fn drop(&mut self) {
        // SAFETY: we own the object; the handle's contract (`as_ptr`) makes
        // the owner unlink it before dropping the handle.
        unsafe { self.pool.retire_raw(self.ptr) }
    }
}
