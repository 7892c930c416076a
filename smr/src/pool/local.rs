//! Per-thread magazine caches, how a thread finds its own, and how another
//! thread may take a cache's contents (flush, barrier, shrinker) without the
//! owner paying for a lock on every operation.
//!
//! Invariant: a thread's magazines are touched by one party at a time, either
//! the owner inside an operation (`Op`) or a thief holding `Local::lock`
//! while the owner is outside every operation.
//!
//! The owner's side is the reader half of a store-buffering pattern, the same
//! one the lazy SMR domain uses: it stores `busy` and (with a compiler-only
//! fence, made real by the thief's `membarrier(2)`) loads `steal`. The thief
//! stores `steal`, issues the barrier, then loads `busy`. Either the owner
//! sees `steal` and queues behind the thief on `lock`, or the thief sees
//! `busy` and waits for the operation to end. When the kernel refuses
//! `membarrier` at registration, the owner fences for real
//! (`publish_fenced`). When a barrier fails later (ENOMEM), nothing made
//! the owner's `busy` store visible, so the thief must not touch the
//! magazines: it clears `steal` and gives the steal up (`try_steal` returns
//! `Err`); its caller skips that cache or retries.
//!
//! A thread finds its cache through thread-local storage, like `registry.rs`
//! finds reader slots: a one-entry cache keyed by pool id for the hot path,
//! and a list of (pool, cache) entries released (flushed to the depot) when
//! the thread exits. The list holds the pool weakly, so a dropped pool is
//! freed at once rather than when the last thread that used it exits.
//!
//! Locking key: `busy` (w: owner; r: thief), `steal` (w: thief under `lock`;
//! r: owner), `mags` (owner inside an `Op`, or thief under `lock` with
//! `busy` idle), `owned` (claim by CAS under the pool's locals mutex,
//! release by the owner), `stats` (w: owner).

use super::magazine::Magazine;
use super::stats::LocalStats;
use crate::backoff::Backoff;
use crate::membarrier;
use crate::primitive::{
    AtomicBool, AtomicU32, Mutex, MutexGuard, fence, light_fence, lock, publish_fenced,
};
use std::cell::UnsafeCell;
use std::sync::Weak;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

/// A thread's three magazines for one pool.
pub(crate) struct Mags<T> {
    /// Reusable slots `alloc` pops from.
    pub(crate) alloc: Magazine<T>,
    /// A second reusable magazine, so alternating alloc/retire at a magazine
    /// boundary does not bounce magazines through the depot.
    pub(crate) prev: Magazine<T>,
    /// Slots retired by this thread, not yet stamped.
    pub(crate) retire: Magazine<T>,
}

const IDLE: u32 = 0;
const BUSY: u32 = 1;
const LOCKED: u32 = 2;

/// One thread's cache for one pool.
#[repr(align(128))]
pub(crate) struct Local<T> {
    busy: AtomicU32,
    steal: AtomicBool,
    /// The owner fences for real: `membarrier` is unavailable.
    fenced: bool,
    mags: UnsafeCell<Mags<T>>,
    lock: Mutex<()>,
    pub(crate) owned: AtomicBool,
    pub(crate) stats: LocalStats,
    /// Under loom: an access marker held by whichever party is in `mags`
    /// (an `Op`, a thief, `exclusive`), so the model checker reports owner
    /// and thief in the magazines at once as concurrent writes.
    #[cfg(loom)]
    in_mags: loom::cell::UnsafeCell<()>,
}

// SAFETY: `mags` is accessed only under the protocol in the module docs;
// everything else is atomics, a mutex, or owner-written statistics. The
// slots it points to hold `T: Send + Sync`.
unsafe impl<T: Send + Sync> Sync for Local<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Send for Local<T> {}

impl<T> Local<T> {
    pub(crate) fn new(mag_cap: usize, fenced: bool) -> Local<T> {
        Local {
            busy: AtomicU32::new(IDLE),
            steal: AtomicBool::new(false),
            fenced,
            mags: UnsafeCell::new(Mags {
                alloc: Magazine::with_capacity(mag_cap),
                prev: Magazine::with_capacity(mag_cap),
                retire: Magazine::with_capacity(mag_cap),
            }),
            lock: Mutex::new(()),
            owned: AtomicBool::new(true),
            stats: LocalStats::new(),
            #[cfg(loom)]
            in_mags: loom::cell::UnsafeCell::new(()),
        }
    }

    /// Start an operation on the owner's magazines.
    ///
    /// # Panics
    /// On a re-entrant call (a pool's init function or poison hook using the
    /// same pool on the same thread), which would alias the magazines.
    #[inline(always)]
    pub(crate) fn begin(&self) -> Op<'_, T> {
        // Relaxed: our own word.
        assert!(
            self.busy.load(Relaxed) == IDLE,
            "smr::pool: re-entrant use of a pool from its own init or poison hook"
        );
        if self.fenced {
            // StoreLoad for real: pairs with the thief's SeqCst fence.
            publish_fenced(&self.busy, BUSY);
        } else {
            self.busy.store(BUSY, Relaxed);
            // Race point for the model checker: a thief may store `steal`
            // and issue its barrier between our store and our load.
            #[cfg(loom)]
            loom::thread::yield_now();
            // StoreLoad supplied by the thief's membarrier (the reader point
            // of the membarrier model under loom), like the lazy domain's
            // readers.
            light_fence();
        }
        // Acquire: pairs with the thief's Release clearing `steal`, so its
        // edits to our magazines happen before ours.
        if self.steal.load(Acquire) {
            return self.begin_locked();
        }
        Op {
            local: self,
            _guard: None,
            #[cfg(loom)]
            in_mags: Some(self.in_mags.get_mut()),
        }
    }

    #[cold]
    fn begin_locked(&self) -> Op<'_, T> {
        // Release: the thief's Acquire spin on `busy` sees our last edits.
        self.busy.store(IDLE, Release);
        let guard = lock(&self.lock);
        // Relaxed: only we read LOCKED (re-entrancy check); thieves are
        // excluded by the mutex we hold.
        self.busy.store(LOCKED, Relaxed);
        Op {
            local: self,
            _guard: Some(guard),
            #[cfg(loom)]
            in_mags: Some(self.in_mags.get_mut()),
        }
    }

    /// Take the owner's magazines from another thread and run `f` on them.
    ///
    /// `Err` (the reason) when `membarrier(2)` failed: then `f` did not run,
    /// the magazines were not touched, and `steal` is clear again. The
    /// caller skips this cache or tries again later; it must not fall back
    /// to a fence of its own, since the owner's side is only a compiler
    /// fence and a one-sided fence does not order store buffering.
    pub(crate) fn try_steal<R>(&self, f: impl FnOnce(&mut Mags<T>) -> R) -> Result<R, String> {
        let _guard = lock(&self.lock);
        // Relaxed: ordered by the barrier below.
        self.steal.store(true, Relaxed);
        // Race point for the model checker: the owner may begin between our
        // store and our barrier.
        #[cfg(loom)]
        loom::thread::yield_now();
        if self.fenced {
            // SeqCst: pairs with the owner's `publish_fenced`.
            fence(SeqCst);
        } else if let Err(reason) = Self::steal_barrier() {
            // Relaxed: we touched nothing the owner must see. An owner that
            // saw `true` is queued on `lock` and is ordered after us by it.
            self.steal.store(false, Relaxed);
            return Err(reason);
        }
        let mut backoff = Backoff::new();
        // Acquire: pairs with the Release in `Op::drop`, so the owner's last
        // operation's edits happen before ours.
        while self.busy.load(Acquire) == BUSY {
            backoff.snooze();
        }
        #[cfg(loom)]
        let in_mags = self.in_mags.get_mut();
        // SAFETY: we hold `lock`, and the owner is outside every operation
        // and will see `steal` (and queue on `lock`) before it starts one:
        // the barrier (or both sides' SeqCst fences) succeeded.
        let r = f(unsafe { &mut *self.mags.get() });
        #[cfg(loom)]
        drop(in_mags);
        // Release: pairs with the Acquire load of `steal` in `begin`.
        self.steal.store(false, Release);
        Ok(r)
    }

    /// The thief's barrier. `--cfg smr_weakened="steal_fallback"` restores
    /// the old error path (a one-sided fence, then steal anyway), which the
    /// loom model of a failed barrier must catch.
    fn steal_barrier() -> Result<(), String> {
        let r = membarrier::barrier();
        #[cfg(all(loom, smr_weakened = "steal_fallback"))]
        if r.is_err() {
            fence(SeqCst);
            return Ok(());
        }
        r
    }

    /// Run `f` on the magazines as their owner when the owner is outside
    /// every operation (thread exit, a temporary cache): the mutex excludes
    /// thieves, and no barrier is needed because we are the owner.
    pub(crate) fn exclusive<R>(&self, f: impl FnOnce(&mut Mags<T>) -> R) -> R {
        let _guard = lock(&self.lock);
        // Relaxed: our own word; re-entrancy would be a bug here too.
        debug_assert_eq!(self.busy.load(Relaxed), IDLE);
        #[cfg(loom)]
        let _in_mags = self.in_mags.get_mut();
        // SAFETY: we are the owner and outside every operation, and the
        // mutex excludes thieves.
        f(unsafe { &mut *self.mags.get() })
    }
}

/// An operation on a thread's own magazines; ends when dropped.
pub(crate) struct Op<'a, T> {
    local: &'a Local<T>,
    _guard: Option<MutexGuard<'a, ()>>,
    /// Under loom: the owner's hold on `Local::in_mags`, given up before
    /// `busy` goes idle (loom records an access's end too).
    #[cfg(loom)]
    in_mags: Option<loom::cell::MutPtr<()>>,
}

impl<T> Op<'_, T> {
    #[inline(always)]
    pub(crate) fn mags(&mut self) -> &mut Mags<T> {
        // SAFETY: an `Op` exists only between `begin` and its drop, during
        // which the owner is the only party touching `mags` (module docs),
        // and `&mut self` keeps this borrow unique within the operation.
        unsafe { &mut *self.local.mags.get() }
    }
}

impl<T> Drop for Op<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        #[cfg(loom)]
        drop(self.in_mags.take());
        // Release: pairs with the thief's Acquire spin on `busy`. Runs before
        // the guard (if any) is released.
        self.local.busy.store(IDLE, Release);
    }
}

/// What a thread-exit needs from a pool: flush and release a cache.
pub(crate) trait Owner: Send + Sync {
    fn release(&self, local: *const ());
}

struct Entry {
    id: u64,
    local: *const (),
    owner: Weak<dyn Owner>,
}

/// The caches this thread holds, released when it exits.
struct Held(Vec<Entry>);

impl Drop for Held {
    fn drop(&mut self) {
        #[cfg(not(loom))]
        CACHE.set((0, std::ptr::null()));
        for e in self.0.drain(..) {
            // A pool that is gone has freed its caches already.
            if let Some(owner) = e.owner.upgrade() {
                owner.release(e.local);
            }
        }
    }
}

#[cfg(not(loom))]
thread_local! {
    /// One-entry cache for the hot path: (pool id, cache). No destructor, so
    /// reading it is a plain thread-local load. A cached pointer is only
    /// dereferenced by a method of the live pool with that id, which keeps
    /// the cache allocated.
    static CACHE: std::cell::Cell<(u64, *const ())> =
        const { std::cell::Cell::new((0, std::ptr::null())) };
    static HELD: std::cell::RefCell<Held> = const { std::cell::RefCell::new(Held(Vec::new())) };
}

#[cfg(loom)]
loom::thread_local! {
    static HELD: std::cell::RefCell<Held> = std::cell::RefCell::new(Held(Vec::new()));
}

/// This thread's cache for pool `id`, if it is the one in the fast cache.
#[inline(always)]
pub(crate) fn cached(id: u64) -> Option<*const ()> {
    #[cfg(not(loom))]
    {
        let (cid, p) = CACHE.get();
        if cid == id {
            return Some(p);
        }
    }
    let _ = id;
    None
}

/// This thread's cache for pool `id`, claiming one with `claim` the first
/// time. `None` when thread-local storage is being torn down.
#[cold]
pub(crate) fn find_or_claim(
    id: u64,
    claim: impl FnOnce() -> (*const (), Weak<dyn Owner>),
) -> Option<*const ()> {
    HELD.try_with(|held| {
        let mut held = held.borrow_mut();
        // Forget pools that are gone, so a long-lived thread that used many
        // short-lived pools does not keep a growing list.
        held.0.retain(|e| e.owner.strong_count() > 0);
        let p = match held.0.iter().find(|e| e.id == id) {
            Some(e) => e.local,
            None => {
                let (p, owner) = claim();
                held.0.push(Entry {
                    id,
                    local: p,
                    owner,
                });
                p
            }
        };
        #[cfg(not(loom))]
        CACHE.set((id, p));
        p
    })
    .ok()
}
