//! The engine behind `PoolCache`: the slow paths of alloc and retire, the
//! flushes, the shrinker and the barrier.
//!
//! Invariant: a slot is handed out by `alloc` only from a thread's alloc
//! magazines or the depot's ready list, and it gets there only fresh from a
//! chunk or after the stamp of the batch it was retired in has passed
//! (`poll`, `wait`, or a completed `perform`). `Immediate` pools skip the
//! stamp and are documented as unsafe for objects readers can reach.
//!
//! Memory is bounded by `max_objects`: a chunk is created only if it fits
//! under the cap, so live + cached + pending can never exceed it. At the cap
//! `alloc` waits (bounded, `expedite_timeout`) for the oldest batch, then
//! returns `Exhausted`.
//!
//! Lock order: locals list → a thread cache's lock → depot → chunk table.
//! No lock is held across `advance`, `poll`, `wait` or `perform`.

use super::depot::{Depot, Stamp};
use super::local::{self, Local, Mags, Owner};
use super::magazine::Magazine;
use super::slab::{Slabs, Slot, SlotPtr};
use super::stats::{LocalStats, LocalSums, PoolStats, SharedCounters};
use super::{Exhausted, PoolConfig, PoolMode, Protection, Reclaimed};
use crate::backoff::Backoff;
use crate::primitive::{Mutex, lock};
use crate::seq::leq;
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Weak};
use std::time::Instant;

/// What `for_each_cache` does with a cache whose steal failed.
#[derive(Clone, Copy)]
enum OnStealFailure {
    Skip,
    Retry,
}

/// How many times `alloc_slow` looks at a newly exposed oldest batch after
/// losing the previous one to another thread.
const HEAD_RETRIES: usize = 4;

static NEXT_POOL_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

pub(crate) struct Shared<T> {
    id: u64,
    pub(crate) protect: Protection,
    pub(crate) cfg: PoolConfig,
    init: Box<dyn Fn() -> T + Send + Sync>,
    #[cfg_attr(not(feature = "poison"), allow(dead_code))]
    poison_hook: Option<fn(&T)>,
    slabs: Slabs<T>,
    depot: Mutex<Depot<T>>,
    /// Every thread cache ever created; freed with the pool.
    locals: Mutex<Vec<NonNull<Local<T>>>>,
    counters: SharedCounters,
    /// Thread caches fence for real (no `membarrier`).
    fenced: bool,
    born: Instant,
}

// SAFETY: the raw pointers are to thread caches and slots this pool owns;
// all shared state is behind mutexes or atomics, and `T: Send + Sync`.
unsafe impl<T: Send + Sync> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Shared<T> {}

/// The calling thread's cache, borrowed for one call.
pub(crate) struct LocalRef<'a, T: Send + Sync + 'static> {
    pub(crate) local: &'a Local<T>,
    /// Set when thread-local storage is gone and the cache is ours for this
    /// call only.
    temporary: Option<&'a Shared<T>>,
}

impl<T: Send + Sync + 'static> Drop for LocalRef<'_, T> {
    fn drop(&mut self) {
        if let Some(shared) = self.temporary {
            shared.release_local(self.local);
        }
    }
}

impl<T: Send + Sync + 'static> Owner for Shared<T> {
    fn release(&self, local: *const ()) {
        // SAFETY: `local` was registered by `Shared::local_slow` of this
        // pool, and caches live as long as the pool, which the caller's
        // upgraded `Arc` keeps alive.
        self.release_local(unsafe { &*(local as *const Local<T>) });
    }
}

impl<T: Send + Sync + 'static> Shared<T> {
    pub(crate) fn new(
        protect: Protection,
        cfg: PoolConfig,
        init: Box<dyn Fn() -> T + Send + Sync>,
        poison_hook: Option<fn(&T)>,
    ) -> Shared<T> {
        cfg.validate();
        Shared {
            // Relaxed: only uniqueness matters.
            id: NEXT_POOL_ID.fetch_add(1, Relaxed),
            protect,
            depot: Mutex::new(Depot::new(cfg.magazine_size)),
            cfg,
            init,
            poison_hook,
            slabs: Slabs::new(),
            locals: Mutex::new(Vec::new()),
            counters: SharedCounters::default(),
            fenced: crate::membarrier::register().is_err(),
            born: Instant::now(),
        }
    }

    pub(crate) fn mode(&self) -> PoolMode {
        match &self.protect {
            Protection::Smr(d) => match d.mode() {
                crate::Mode::Default => PoolMode::Smr,
                crate::Mode::Lazy => PoolMode::SmrLazy,
                crate::Mode::Deferred => PoolMode::SmrDeferred,
            },
            Protection::Pserialize(_) => PoolMode::Pserialize,
            Protection::Immediate => PoolMode::Immediate,
        }
    }

    pub(crate) fn in_section(&self) -> bool {
        match &self.protect {
            Protection::Smr(d) => d.in_section(),
            Protection::Pserialize(p) => p.in_section(),
            Protection::Immediate => false,
        }
    }

    fn now_ns(&self) -> u64 {
        self.born.elapsed().as_nanos() as u64
    }

    // ----- finding the thread's cache -------------------------------------

    #[inline(always)]
    pub(crate) fn local(this: &Arc<Self>) -> LocalRef<'_, T> {
        if let Some(p) = local::cached(this.id) {
            return LocalRef {
                // SAFETY: the fast cache holds this pool's cache for this
                // thread (ids are never reused), and caches live as long as
                // the pool, which `this` keeps alive.
                local: unsafe { &*(p as *const Local<T>) },
                temporary: None,
            };
        }
        Self::local_slow(this)
    }

    #[cold]
    fn local_slow(this: &Arc<Self>) -> LocalRef<'_, T> {
        let weak: Weak<dyn Owner> = Arc::downgrade(this) as Weak<dyn Owner>;
        match local::find_or_claim(this.id, || {
            (this.claim() as *const Local<T> as *const (), weak)
        }) {
            Some(p) => LocalRef {
                // SAFETY: as in `local`.
                local: unsafe { &*(p as *const Local<T>) },
                temporary: None,
            },
            None => LocalRef {
                local: this.claim(),
                temporary: Some(this),
            },
        }
    }

    /// Claim a cache no thread owns, or create one.
    fn claim(&self) -> &Local<T> {
        let mut locals = lock(&self.locals);
        for p in locals.iter() {
            // SAFETY: caches are freed only when the pool is dropped.
            let l = unsafe { p.as_ref() };
            // Acquire: pairs with the Release in `release_local`, so the
            // previous owner's flush happens before our use.
            if !l.owned.load(Relaxed)
                && l.owned
                    .compare_exchange(false, true, Acquire, Relaxed)
                    .is_ok()
            {
                return l;
            }
        }
        let l = NonNull::from(Box::leak(Box::new(Local::new(
            self.cfg.magazine_size,
            self.fenced,
        ))));
        locals.push(l);
        // SAFETY: just created, freed only with the pool.
        unsafe { l.as_ref() }
    }

    /// Flush a cache whose owner is done with it and let another thread
    /// claim it.
    fn release_local(&self, l: &Local<T>) {
        l.exclusive(|m| self.flush_mags(m, l));
        // Release: pairs with the Acquire claim.
        l.owned.store(false, Release);
    }

    fn locals_snapshot(&self) -> Vec<NonNull<Local<T>>> {
        lock(&self.locals).clone()
    }

    // ----- alloc ----------------------------------------------------------

    /// Hand out one slot: the hot path.
    #[inline]
    pub(crate) fn alloc(this: &Arc<Self>) -> Result<SlotPtr<T>, Exhausted> {
        let lr = Self::local(this);
        let local = lr.local;
        let got = {
            let mut op = local.begin();
            let m = op.mags();
            let got = match m.alloc.pop() {
                Some(s) => Ok(s),
                None => this.alloc_slow(m),
            };
            LocalStats::set(&local.stats.cached, m.alloc.len() + m.prev.len());
            got
        };
        match got {
            Ok(slot) => {
                LocalStats::count(&local.stats.allocs);
                this.hand_out(slot, &local.stats);
                Ok(slot)
            }
            Err(e) => {
                LocalStats::count(&local.stats.exhausted);
                Err(e)
            }
        }
    }

    #[inline(always)]
    fn hand_out(&self, slot: SlotPtr<T>, stats: &LocalStats) {
        // SAFETY: slots in magazines are in resident chunks.
        let h = unsafe { Slot::header(slot) };
        #[cfg(feature = "poison")]
        h.set_poison(false);
        h.bump_generation();
        if let Some(ns) = h.take_retired_ns() {
            stats.record_latency(self.now_ns().saturating_sub(ns));
        }
    }

    /// Own magazines are empty: previous magazine, then the depot's ready
    /// list, then the oldest pending batch if it has passed, then a new
    /// chunk, then (at the cap) a bounded wait, then `Exhausted`.
    #[cold]
    fn alloc_slow(&self, m: &mut Mags<T>) -> Result<SlotPtr<T>, Exhausted> {
        if !m.prev.is_empty() {
            std::mem::swap(&mut m.alloc, &mut m.prev);
            return Ok(m.alloc.pop().expect("non-empty"));
        }
        // Another thread may take the head batch between our poll and our
        // pop; then the next batch is the likeliest to have passed, so look
        // again (a few times: each loss means someone else made progress)
        // rather than grow a chunk while reusable memory is queued.
        let mut head = None;
        for _ in 0..HEAD_RETRIES {
            head = {
                let mut d = lock(&self.depot);
                if let Some(full) = d.pop_ready() {
                    let empty = std::mem::replace(&mut m.alloc, full);
                    d.put_empty(empty);
                    drop(d);
                    return Ok(m.alloc.pop().expect("ready magazines are non-empty"));
                }
                d.head()
            };
            let Some((id, Stamp::Goal(goal))) = head else {
                break;
            };
            if !self.poll(goal) {
                break;
            }
            if let Some(slot) = self.take_head(m, id) {
                return Ok(slot);
            }
            SharedCounters::add(&self.counters.head_races, 1);
        }
        if let Some(slot) = self.grow(m) {
            return Ok(slot);
        }
        self.expedite(m, head)
    }

    fn poll(&self, goal: crate::Goal) -> bool {
        SharedCounters::add(&self.counters.polls, 1);
        match &self.protect {
            Protection::Smr(d) => d.poll(goal),
            _ => false,
        }
    }

    /// Move the oldest pending batch (if it is still batch `id`, whose stamp
    /// the caller saw pass) into the alloc magazine and pop from it.
    fn take_head(&self, m: &mut Mags<T>, id: u64) -> Option<SlotPtr<T>> {
        {
            let mut d = lock(&self.depot);
            let mag = d.pop_head_if(id)?;
            let empty = std::mem::replace(&mut m.alloc, mag);
            d.put_empty(empty);
        }
        self.make_reusable(&m.alloc);
        m.alloc.pop()
    }

    /// Create a chunk if it fits under the cap and fill the alloc magazine.
    fn grow(&self, m: &mut Mags<T>) -> Option<SlotPtr<T>> {
        let n = self.cfg.chunk_objects;
        {
            let mut d = lock(&self.depot);
            if d.allocated + n > self.cfg.max_objects {
                return None;
            }
            d.allocated += n;
        }
        let slots = self.slabs.grow(n, &*self.init);
        SharedCounters::add(&self.counters.chunks_grown, 1);
        let mut rest = slots.into_iter();
        for s in rest.by_ref().take(self.cfg.magazine_size) {
            m.alloc.push(s);
        }
        let mut rest = rest.peekable();
        if rest.peek().is_some() {
            let mut d = lock(&self.depot);
            while rest.peek().is_some() {
                let mut mag = d.take_empty();
                for s in rest.by_ref().take(self.cfg.magazine_size) {
                    mag.push(s);
                }
                d.push_ready(mag);
            }
        }
        m.alloc.pop()
    }

    /// At the cap: wait a bounded time for the oldest batch (SMR), or run a
    /// grace period for batches queued without one (pserialize), unless the
    /// caller's own read section is what holds them back.
    fn expedite(
        &self,
        m: &mut Mags<T>,
        head: Option<(u64, Stamp)>,
    ) -> Result<SlotPtr<T>, Exhausted> {
        match (head, &self.protect) {
            (Some((id, Stamp::Goal(goal))), Protection::Smr(domain)) => {
                {
                    let d = lock(&self.depot);
                    if let Some((g, at)) = d.expedite_failed
                        && g == goal
                        && at.elapsed() < self.cfg.expedite_backoff
                    {
                        return Err(Exhausted);
                    }
                }
                SharedCounters::add(&self.counters.sync_waits, 1);
                if domain.wait_timeout(goal, self.cfg.expedite_timeout) {
                    if let Some(slot) = self.take_head(m, id) {
                        return Ok(slot);
                    }
                } else {
                    SharedCounters::add(&self.counters.sync_wait_failures, 1);
                    lock(&self.depot).expedite_failed = Some((goal, Instant::now()));
                }
            }
            (Some((_, Stamp::Perform(_))), Protection::Pserialize(ps)) if !ps.in_section() => {
                self.perform_all(None);
                let mut d = lock(&self.depot);
                if let Some(full) = d.pop_ready() {
                    let empty = std::mem::replace(&mut m.alloc, full);
                    d.put_empty(empty);
                    drop(d);
                    return m.alloc.pop().ok_or(Exhausted);
                }
            }
            _ => {}
        }
        Err(Exhausted)
    }

    // ----- retire ---------------------------------------------------------

    /// Take back a slot the caller unlinked.
    ///
    /// # Safety
    /// As `PoolCache::retire_raw`.
    #[inline]
    pub(crate) unsafe fn retire(this: &Arc<Self>, slot: SlotPtr<T>) {
        // SAFETY: the caller passes a live slot of this pool.
        let h = unsafe { Slot::header(slot) };
        h.bump_generation();
        let lr = Self::local(this);
        let local = lr.local;
        // Relaxed: statistics only, our own counter.
        let n = local.stats.retires.load(Relaxed);
        LocalStats::count(&local.stats.retires);
        if n & (this.cfg.latency_sample_every as u64 - 1) == 0 {
            h.set_retired_ns(this.now_ns());
        }
        let mut op = local.begin();
        let m = op.mags();
        if matches!(this.protect, Protection::Immediate) {
            this.make_reusable_one(slot);
            if m.alloc.len() == this.cfg.magazine_size {
                this.rotate_alloc(m);
            }
            m.alloc.push(slot);
            LocalStats::set(&local.stats.cached, m.alloc.len() + m.prev.len());
            return;
        }
        m.retire.push(slot);
        if m.retire.len() == this.cfg.magazine_size {
            let empty = lock(&this.depot).take_empty();
            let full = std::mem::replace(&mut m.retire, empty);
            this.stamp_and_queue(full, true);
        }
        LocalStats::set(&local.stats.pending, m.retire.len());
    }

    /// The alloc magazine is full: it becomes the previous one, and the
    /// previous one (if any) goes to the depot.
    fn rotate_alloc(&self, m: &mut Mags<T>) {
        let mut d = lock(&self.depot);
        let empty = d.take_empty();
        let prev = std::mem::replace(&mut m.prev, empty);
        d.push_ready(prev);
        std::mem::swap(&mut m.alloc, &mut m.prev);
    }

    /// Close a batch of retired slots: stamp it with one goal and queue it,
    /// or (pserialize, when allowed to block) run one grace period for it.
    fn stamp_and_queue(&self, mag: Magazine<T>, may_block: bool) {
        if mag.is_empty() {
            return lock(&self.depot).put_empty(mag);
        }
        SharedCounters::add(&self.counters.stamped, mag.len() as u64);
        match &self.protect {
            Protection::Smr(domain) => {
                // One advance for the whole batch; taken after every slot in
                // it was retired, hence after it was unlinked.
                let goal = domain.advance();
                SharedCounters::add(&self.counters.advances, 1);
                lock(&self.depot).push_pending(Stamp::Goal(goal), mag);
            }
            Protection::Pserialize(ps) if may_block && !ps.in_section() => {
                self.perform_all(Some(mag));
            }
            Protection::Pserialize(_) => {
                let mut d = lock(&self.depot);
                // Any perform numbered above what has started so far starts
                // after this batch was queued.
                let stamp = Stamp::Perform(d.performs_started + 1);
                d.push_pending(stamp, mag);
            }
            Protection::Immediate => {
                self.make_reusable(&mag);
                lock(&self.depot).push_ready(mag);
            }
        }
    }

    /// Pserialize: one `perform()`, then everything queued before it (and
    /// `extra`, retired before it) is reusable.
    fn perform_all(&self, extra: Option<Magazine<T>>) {
        let Protection::Pserialize(ps) = &self.protect else {
            return;
        };
        let n = {
            let mut d = lock(&self.depot);
            d.performs_started += 1;
            d.performs_started
        };
        SharedCounters::add(&self.counters.performs, 1);
        SharedCounters::add(&self.counters.sync_waits, 1);
        ps.perform();
        let mut mags = {
            let mut d = lock(&self.depot);
            d.performs_done = d.performs_done.max(n);
            let done = d.performs_done;
            d.pop_passed(|s| matches!(s, Stamp::Perform(k) if k <= done))
        };
        mags.extend(extra);
        for mag in &mags {
            self.make_reusable(mag);
        }
        let mut d = lock(&self.depot);
        for mag in mags {
            d.push_ready(mag);
        }
    }

    /// A batch has passed its grace period: poison it (test builds) before
    /// anyone can reuse it.
    fn make_reusable(&self, mag: &Magazine<T>) {
        #[cfg(feature = "poison")]
        for slot in mag.iter() {
            self.make_reusable_one(slot);
        }
        let _ = mag;
    }

    #[inline(always)]
    fn make_reusable_one(&self, slot: SlotPtr<T>) {
        #[cfg(feature = "poison")]
        {
            // SAFETY: the slot is resident and free; nobody holds `&mut T`.
            unsafe { Slot::header(slot) }.set_poison(true);
            if let Some(hook) = self.poison_hook {
                // SAFETY: as above.
                hook(unsafe { Slot::value_ref(slot) });
            }
        }
        let _ = slot;
    }

    // ----- flush, shrink, barrier -----------------------------------------

    /// Give a cache's contents to the depot: reusable magazines to the ready
    /// list, the partial retire magazine stamped (without blocking).
    fn flush_mags(&self, m: &mut Mags<T>, l: &Local<T>) {
        let retire = {
            let mut d = lock(&self.depot);
            let a = std::mem::replace(&mut m.alloc, d.take_empty());
            let p = std::mem::replace(&mut m.prev, d.take_empty());
            d.push_ready(a);
            d.push_ready(p);
            std::mem::replace(&mut m.retire, d.take_empty())
        };
        self.stamp_and_queue(retire, false);
        LocalStats::set(&l.stats.cached, 0);
        LocalStats::set(&l.stats.pending, 0);
    }

    /// Flush the calling thread's cache.
    pub(crate) fn flush(this: &Arc<Self>) {
        let lr = Self::local(this);
        let mut op = lr.local.begin();
        this.flush_mags(op.mags(), lr.local);
    }

    /// Run `f` on every thread's cache: the caller's own through an
    /// operation, the others by stealing. Skips the others when the caller
    /// is inside a read section (an owner could be waiting for it). A steal
    /// whose `membarrier(2)` fails is counted and, per `on_failure`, skipped
    /// or retried with backoff until a barrier succeeds.
    fn for_each_cache(
        this: &Arc<Self>,
        on_failure: OnStealFailure,
        mut f: impl FnMut(&mut Mags<T>, &Local<T>),
    ) {
        let lr = Self::local(this);
        {
            let mut op = lr.local.begin();
            f(op.mags(), lr.local);
        }
        if this.in_section() {
            return;
        }
        for p in this.locals_snapshot() {
            // SAFETY: caches are freed only with the pool, which `this` keeps.
            let l = unsafe { p.as_ref() };
            if std::ptr::eq(l, lr.local) {
                continue;
            }
            let mut backoff = Backoff::new();
            while let Err(reason) = l.try_steal(|m| f(m, l)) {
                this.steal_failed(&reason);
                match on_failure {
                    OnStealFailure::Skip => break,
                    OnStealFailure::Retry => backoff.snooze(),
                }
            }
        }
    }

    /// Count a steal given up because `membarrier(2)` failed; log the 1st,
    /// 2nd, 4th, 8th... so a persistent failure is visible without flooding.
    fn steal_failed(&self, reason: &str) {
        // Relaxed: statistics only.
        let n = self.counters.membarrier_failures.fetch_add(1, Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::error!(
                %reason,
                failures = n,
                "smr::pool: membarrier failed; cache steal given up (skipped or retried)"
            );
        }
    }

    /// The shrinker: pull every thread's reusable magazines into the depot,
    /// move every batch that has passed to the ready list, and free chunks
    /// whose slots are all reusable.
    pub(crate) fn reclaim(this: &Arc<Self>) -> Reclaimed {
        // Skip: the shrinker is best effort, and a skipped cache keeps its
        // magazines for its owner.
        Self::for_each_cache(this, OnStealFailure::Skip, |m, l| {
            let mut d = lock(&this.depot);
            let a = std::mem::replace(&mut m.alloc, d.take_empty());
            let p = std::mem::replace(&mut m.prev, d.take_empty());
            d.push_ready(a);
            d.push_ready(p);
            LocalStats::set(&l.stats.cached, 0);
        });
        let mut out = Reclaimed::default();
        // Expired batches, oldest first, without blocking.
        loop {
            // A separate statement: the guard must not live through the body.
            let head = lock(&this.depot).head();
            let Some((id, Stamp::Goal(goal))) = head else {
                break;
            };
            if !this.poll(goal) {
                break;
            }
            let Some(mag) = lock(&this.depot).pop_head_if(id) else {
                continue;
            };
            out.passed += mag.len();
            this.make_reusable(&mag);
            lock(&this.depot).push_ready(mag);
        }
        // Chunks entirely in the ready list.
        let freed: Vec<u32> = {
            let mut d = lock(&this.depot);
            let mut per_chunk: HashMap<u32, usize> = HashMap::new();
            for mag in d.ready_mut().iter() {
                for s in mag.iter() {
                    // SAFETY: ready slots are resident.
                    *per_chunk
                        .entry(unsafe { Slot::header(s) }.chunk())
                        .or_default() += 1;
                }
            }
            let freed: Vec<u32> = per_chunk
                .into_iter()
                .filter(|&(id, n)| n == this.slabs.chunk_len(id))
                .map(|(id, _)| id)
                .collect();
            if !freed.is_empty() {
                for mag in d.ready_mut().iter_mut() {
                    // SAFETY: ready slots are resident.
                    mag.retain(|s| !freed.contains(&unsafe { Slot::header(*s) }.chunk()));
                }
                d.recount_ready();
                for &id in &freed {
                    d.allocated -= this.slabs.chunk_len(id);
                }
            }
            freed
        };
        for id in &freed {
            // SAFETY: every slot of the chunk was in the ready list (free and
            // past its grace period, or never handed out) and has just been
            // removed from it, so nothing in the pool points into it.
            unsafe { this.slabs.free(*id) };
        }
        out.chunks_freed = freed.len();
        SharedCounters::add(&this.counters.chunks_freed, freed.len() as u64);
        out
    }

    /// Stamp every thread's partial retire magazine, then wait until every
    /// batch stamped so far has passed and make it reusable.
    pub(crate) fn barrier(this: &Arc<Self>) {
        assert!(
            !this.in_section(),
            "smr::pool: barrier() inside a read section of the pool's domain would never return"
        );
        // Retry: the promise covers every thread's retired objects, so a
        // cache whose steal failed is tried again (with backoff, counted)
        // until a barrier succeeds, as `wait` keeps waiting for a reader.
        Self::for_each_cache(this, OnStealFailure::Retry, |m, l| {
            let retire = std::mem::replace(&mut m.retire, lock(&this.depot).take_empty());
            this.stamp_and_queue(retire, false);
            LocalStats::set(&l.stats.pending, 0);
        });
        match &this.protect {
            Protection::Smr(domain) => {
                SharedCounters::add(&this.counters.sync_waits, 1);
                let goal = domain.advance();
                domain.wait(goal);
                let mags = lock(&this.depot).pop_passed(|s| match s {
                    Stamp::Goal(g) => leq(g.seq(), goal.seq()),
                    Stamp::Perform(_) => false,
                });
                for mag in &mags {
                    this.make_reusable(mag);
                }
                let mut d = lock(&this.depot);
                for mag in mags {
                    d.push_ready(mag);
                }
            }
            Protection::Pserialize(_) => this.perform_all(None),
            Protection::Immediate => {}
        }
    }

    // ----- inspection -----------------------------------------------------

    pub(crate) fn stats(&self) -> PoolStats {
        let mut sums = LocalSums::default();
        for p in self.locals_snapshot() {
            // SAFETY: caches are freed only with the pool.
            sums.add(&unsafe { p.as_ref() }.stats);
        }
        let (ready, pending, peak, allocated, batches) = {
            let d = lock(&self.depot);
            (
                d.ready_objects as u64,
                d.pending_objects as u64,
                d.pending_peak as u64,
                d.allocated as u64,
                d.pending_batches() as u64,
            )
        };
        // Relaxed: statistics only.
        let c = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
        let slot_bytes = std::mem::size_of::<Slot<T>>();
        let pending = pending + sums.pending;
        let peak = peak.max(pending);
        let advances = c(&self.counters.advances);
        let performs = c(&self.counters.performs);
        let stamped = c(&self.counters.stamped);
        PoolStats {
            mode: self.mode(),
            slot_bytes,
            live: sums.allocs.wrapping_sub(sums.retires),
            cached: ready + sums.cached,
            pending,
            pending_bytes: pending * slot_bytes as u64,
            peak_pending: peak,
            peak_pending_bytes: peak * slot_bytes as u64,
            allocated,
            max_objects: self.cfg.max_objects as u64,
            chunks: self.slabs.resident() as u64,
            chunks_grown: c(&self.counters.chunks_grown),
            chunks_freed: c(&self.counters.chunks_freed),
            pending_batches: batches,
            allocs: sums.allocs,
            retires: sums.retires,
            advances,
            stamped,
            frees_per_advance: if advances + performs == 0 {
                0.0
            } else {
                stamped as f64 / (advances + performs) as f64
            },
            polls: c(&self.counters.polls),
            head_races: c(&self.counters.head_races),
            sync_waits: c(&self.counters.sync_waits),
            sync_wait_failures: c(&self.counters.sync_wait_failures),
            membarrier_failures: c(&self.counters.membarrier_failures),
            performs,
            exhausted: sums.exhausted + c(&self.counters.exhausted),
            reuse_latency_ns: sums.latency,
        }
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        for p in std::mem::take(&mut *lock(&self.locals)) {
            // SAFETY: created by `Box::leak` in `claim`; the pool is being
            // dropped, so no thread can use its cache any more (a thread's
            // entry holds the pool weakly and checks before releasing).
            drop(unsafe { Box::from_raw(p.as_ptr()) });
        }
    }
}

impl<T: Send + Sync + 'static> Shared<T> {
    /// The header of a slot the caller may access.
    ///
    /// # Safety
    /// `value` came from this pool and its chunk is resident.
    pub(crate) unsafe fn header_of(&self, value: NonNull<T>) -> &super::slab::Header {
        // SAFETY: caller.
        unsafe { Slot::header(Slot::from_value(value)) }
    }
}
