//! The SMR domain: a userspace port of FreeBSD's smr(9) "global unbounded
//! sequences".
//!
//! Invariant: memory unlinked before `advance()` returned goal `g` is not
//! reachable by any read section once `poll(g)` has returned true.
//!
//! ```text
//!        rd_seq (read hand)                wr_seq (write hand)
//!   ---------|--------------------------------|---------> sequence space
//!            |<- goals here are still waited ->|
//!   goals <= rd_seq are expired: one load.     advance() moves wr_seq and
//!   A scan moves rd_seq up to the oldest       returns the new value as the
//!   sequence a reader published (never past   goal for everything unlinked
//!   the wr_seq it loaded first).               before the call.
//! ```
//!
//! A reader publishes the `wr_seq` it loaded into its own slot, then fences
//! (StoreLoad) before loading protected data; a writer fences between its
//! unlink and its scan of the slots. Those two `SeqCst` fences are the two
//! halves of a store-buffering (Dekker) pattern: either the scan sees the
//! reader's slot, or the reader's loads see the unlink. Leaving a section is a
//! Release store of `INVALID`; a scan that observed it ends with an Acquire
//! fence, so the reader's last accesses happen before the writer reuses memory.
//! Publishing a sequence is a Release store too: a reader that leaves and
//! enters again may overwrite its exit before a scan reads the slot, and then
//! the new sequence is what must carry the earlier section's accesses.
//!
//! Modes (chosen at creation):
//! - `Default`: fenced enter, one shared increment per `advance`.
//! - `Lazy`: fence-free enter; before a scan may pass a goal, a
//!   `membarrier(2)` issued after that goal forces the barrier onto every
//!   reader. One barrier serves every goal issued before it, at most one per
//!   `lazy_interval` unless someone blocks in `wait`.
//! - `Deferred`: `advance` touches the shared write sequence only every
//!   `deferred_limit`-th call per thread and otherwise returns a goal one step
//!   in the future; a non-blocking poll of such a goal fails until someone
//!   advances, a blocking wait forces the advance.

use crate::backoff::Backoff;
use crate::membarrier;
use crate::primitive::{
    AtomicU64, CachePadded, Mutex, bump, fence, lock, publish_fenced, publish_light, writer_fence,
};
use crate::registry::{self, LocalSlot, Registry};
use crate::seq::{Goal, INVALID, Seq, SeqParams, delta, leq, lt, min};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::time::{Duration, Instant};

/// How readers publish and how writers advance; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Fenced enter, an atomic increment per advance.
    Default,
    /// Fence-free enter; writers pay with an amortised `membarrier(2)`.
    Lazy,
    /// Fenced enter; advances batched per thread.
    Deferred,
}

impl Mode {
    /// The lower-case name used on command lines and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Default => "default",
            Mode::Lazy => "lazy",
            Mode::Deferred => "deferred",
        }
    }
}

/// Creation parameters of a [`Domain`].
#[derive(Clone, Debug)]
pub struct Config {
    /// Reader and writer protocol.
    pub mode: Mode,
    /// Lazy mode: the shortest time between two barriers a non-blocking
    /// `poll` will issue.
    pub lazy_interval: Duration,
    /// Deferred mode: a thread bumps the shared write sequence on every
    /// `deferred_limit`-th advance.
    pub deferred_limit: u32,
    /// The shape of the sequence space.
    pub seq: SeqParams,
}

impl Config {
    /// Defaults for `mode`: 1 ms lazy interval, deferred limit 8.
    pub fn new(mode: Mode) -> Config {
        Config {
            mode,
            lazy_interval: Duration::from_millis(1),
            deferred_limit: 8,
            seq: SeqParams::DEFAULT,
        }
    }

    /// The same configuration on the wrap-test sequence space.
    pub fn wrap_test(mut self) -> Config {
        self.seq = SeqParams::wrap_test();
        self
    }
}

/// Counters of one domain, summed over every thread that used it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainStats {
    /// The write sequence (where new goals come from).
    pub write_seq: Seq,
    /// The read sequence (every goal at or below it has passed).
    pub read_seq: Seq,
    /// How many advances the read hand trails the write hand.
    pub lag: u64,
    /// `advance` calls.
    pub advances: u64,
    /// `poll` calls (including the polls inside `wait`).
    pub polls: u64,
    /// Scans of the reader slots.
    pub scans: u64,
    /// Blocking `wait` calls.
    pub waits: u64,
    /// `membarrier(2)` calls issued (lazy mode).
    pub membarriers: u64,
    /// `membarrier(2)` calls that failed (lazy mode; ENOMEM). Nothing is
    /// reclaimed on a failed barrier; `wait` retries it with backoff.
    pub membarrier_failures: u64,
    /// Forced catch-ups: `advance` found readers `max_delta` behind.
    pub catchups: u64,
    /// Reader slots created (the most threads ever alive at once that used
    /// this domain).
    pub slots: usize,
}

/// A read section that holds back a goal, from [`Domain::blockers`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    /// The name (or id) of the thread that owns the section.
    pub thread: String,
    /// The sequence the section published.
    pub seq: Seq,
    /// How many advances behind the goal it is.
    pub behind: u64,
    /// How long the section has been open, as far as this domain has seen:
    /// measured from the first diagnostic call that found this slot
    /// publishing this sequence, so it is a lower bound whose resolution is
    /// the caller's polling interval (and back-to-back sections that publish
    /// the same sequence count as one, which holds back nothing new).
    pub open_for: Duration,
}

struct LazyState {
    /// Every goal at or below this has had a barrier issued after it, and
    /// the read hand is never moved past it (see `try_pass`).
    covered: AtomicU64,
    /// Nanoseconds since `Domain::born` of the last barrier.
    last_barrier_ns: AtomicU64,
    /// Serialises barrier issue so concurrent pollers share one.
    issuing: Mutex<()>,
    interval_ns: u64,
    /// Barriers that failed (statistics; a std atomic, so the model checker
    /// does not explore it).
    membarrier_failures: std::sync::atomic::AtomicU64,
}

/// An SMR domain. Share it by reference or in an `Arc`; every thread that
/// enters it gets its own reader slot.
pub struct Domain {
    wr: CachePadded<AtomicU64>,
    rd: CachePadded<AtomicU64>,
    registry: Arc<Registry>,
    /// `registry.id()`, kept inline so `enter` checks its thread-local cache
    /// without a dependent load through the `Arc`.
    registry_id: u64,
    mode: Mode,
    fallback: Option<String>,
    params: SeqParams,
    deferred_limit: u32,
    lazy: Option<LazyState>,
    born: Instant,
    /// Diagnostics: (slot index) -> (published sequence, first seen).
    seen: Mutex<HashMap<usize, (Seq, Instant)>>,
}

impl std::fmt::Debug for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Domain")
            .field("mode", &self.mode)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Domain {
    /// A domain in `mode` with default parameters.
    pub fn new(mode: Mode) -> Domain {
        Domain::with_config(Config::new(mode))
    }

    /// A domain from a full configuration.
    ///
    /// # Panics
    /// If `config.seq` is not a valid sequence space (see [`SeqParams`]) or
    /// `deferred_limit` is zero: both are programming errors.
    pub fn with_config(config: Config) -> Domain {
        if let Err(e) = config.seq.validate() {
            panic!("smr::Domain: {e}");
        }
        assert!(
            config.deferred_limit > 0,
            "smr::Domain: deferred_limit must be positive"
        );
        let mut mode = config.mode;
        let mut fallback = None;
        if mode == Mode::Lazy
            && let Err(reason) = membarrier::register()
        {
            tracing::warn!(%reason, "smr: lazy mode unavailable, using the default (fenced) mode");
            fallback = Some(reason);
            mode = Mode::Default;
        }
        let init = config.seq.init;
        let registry = Registry::new();
        Domain {
            registry_id: registry.id(),
            wr: CachePadded(AtomicU64::new(init)),
            rd: CachePadded(AtomicU64::new(init)),
            registry,
            mode,
            fallback,
            params: config.seq,
            deferred_limit: config.deferred_limit,
            lazy: (mode == Mode::Lazy).then(|| LazyState {
                covered: AtomicU64::new(init),
                last_barrier_ns: AtomicU64::new(0),
                issuing: Mutex::new(()),
                interval_ns: config.lazy_interval.as_nanos().min(u64::MAX as u128) as u64,
                membarrier_failures: std::sync::atomic::AtomicU64::new(0),
            }),
            born: Instant::now(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The mode in effect (lazy falls back to default when the kernel
    /// refuses `membarrier`).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Why the requested lazy mode was not used, if it was not.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// Enter a read section. Pointers loaded from structures this domain
    /// protects stay valid until the returned guard is dropped.
    ///
    /// Sections nest: entering again on the same thread only counts depth and
    /// keeps the outer section's sequence (the more conservative one).
    /// Sections must be short and must not block; a section that stalls
    /// holds back every goal issued after it entered (see [`Domain::blockers`]).
    #[inline]
    pub fn enter(&self) -> ReadSection<'_> {
        let local = registry::local_slot(self.registry_id, &self.registry);
        let slot = local.get();
        if slot.active() {
            slot.nest();
        } else {
            // Acquire: on a lazy domain there is no fence below to order
            // this load; on the others the fence subsumes it (and it is a
            // plain load on x86).
            let seq = self.wr.load(Acquire);
            if self.mode == Mode::Lazy {
                // No StoreLoad here: the writer's membarrier supplies it.
                publish_light(&slot.value, seq);
            } else {
                // StoreLoad: pairs with the SeqCst fence at the top of `scan`.
                publish_fenced(&slot.value, seq);
            }
        }
        ReadSection {
            domain: self,
            slot: local,
            _not_send: PhantomData,
        }
    }

    /// Whether the calling thread is inside a read section of this domain.
    pub fn in_section(&self) -> bool {
        registry::in_section(&self.registry)
    }

    /// Start a new grace period and return its goal: once `poll(goal)` is
    /// true, no read section can still see what the caller unlinked before
    /// this call. Never blocks, except for the forced catch-up when readers
    /// trail by `max_delta` (impossible in practice with the default sequence
    /// space; skipped when the caller is itself inside a section).
    pub fn advance(&self) -> Goal {
        let local = registry::local_slot(self.registry_id, &self.registry);
        let slot = local.get();
        bump(&slot.stats.advances);
        // SeqCst: orders the caller's unlink before the load or increment of
        // the write sequence below. For the deferred path, which only loads
        // it, this fence is what guarantees that a reader which later loads a
        // write sequence at or past the goal also sees the unlink.
        writer_fence();
        let incr = self.params.incr;
        if self.mode == Mode::Deferred {
            // Relaxed: owner-only counter.
            let n = slot.deferred.load(Relaxed) + 1;
            if n < self.deferred_limit {
                slot.deferred.store(n, Relaxed);
                // Relaxed: ordered by the fence above.
                return Goal(self.wr.load(Relaxed).wrapping_add(incr));
            }
            slot.deferred.store(0, Relaxed);
        }
        // Acquire, and loaded before the increment, so the read sequence
        // used for the window check is no newer than the goal.
        let rd = self.rd.load(Acquire);
        // AcqRel: the Release half makes the caller's unlink visible to any
        // reader that loads this (or a later) write sequence.
        let goal = self.wr.fetch_add(incr, AcqRel).wrapping_add(incr);
        if delta(goal, rd) >= self.params.max_delta as i64 {
            bump(&slot.stats.catchups);
            if !slot.active() {
                let target = goal.wrapping_sub(self.params.max_delta - 2 * incr);
                self.wait_inner(Goal(target), None, &local);
            }
        }
        Goal(goal)
    }

    /// Whether every reader that could see memory retired with `goal` has
    /// left. Never blocks. A goal at or below the cached read sequence costs
    /// one shared load; otherwise the slots are scanned and the cache moves.
    #[inline]
    pub fn poll(&self, goal: Goal) -> bool {
        let local = registry::local_slot(self.registry_id, &self.registry);
        bump(&local.get().stats.polls);
        // Acquire: pairs with the Release CAS that published `rd` after its
        // scan's Acquire fence, so passing here orders the readers' exits
        // before the caller's reuse.
        leq(goal.0, self.rd.load(Acquire)) || self.try_pass(goal, false, &local)
    }

    /// Block until `poll(goal)` would be true: spin, then yield, then sleep.
    ///
    /// # Panics
    /// If the calling thread's own read section is one of the readers the
    /// goal waits for: that wait could never end.
    pub fn wait(&self, goal: Goal) {
        let local = registry::local_slot(self.registry_id, &self.registry);
        self.wait_inner(goal, None, &local);
    }

    /// `wait` with a time limit; returns whether the goal passed. Returns
    /// false at once if the caller's own section blocks the goal.
    pub fn wait_timeout(&self, goal: Goal, timeout: Duration) -> bool {
        let local = registry::local_slot(self.registry_id, &self.registry);
        self.wait_inner(goal, Some(timeout), &local)
    }

    /// `wait(advance())`: every section open now has ended on return.
    pub fn synchronize(&self) {
        let goal = self.advance();
        self.wait(goal);
    }

    fn wait_inner(&self, goal: Goal, timeout: Option<Duration>, local: &LocalSlot) -> bool {
        let slot = local.get();
        bump(&slot.stats.waits);
        // Relaxed: our own slot.
        if slot.active() && lt(slot.value.load(Relaxed), goal.0) {
            if timeout.is_some() {
                return false;
            }
            panic!("smr: wait() inside a read section that the goal waits for would never return");
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut backoff = Backoff::new();
        loop {
            bump(&slot.stats.polls);
            if leq(goal.0, self.rd.load(Acquire)) || self.try_pass(goal, true, local) {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            backoff.snooze();
        }
    }

    /// One attempt to pass `goal` past the read hand. `force` is set by
    /// blocking callers: it forces a deferred advance and a lazy barrier.
    fn try_pass(&self, goal: Goal, force: bool, local: &LocalSlot) -> bool {
        // Acquire: pairs with the Release half of the increments in
        // `advance`. This value, loaded before the scan's fence, is also the
        // highest read hand the scan may publish (FreeBSD's `smr_poll` does
        // the same). A write sequence loaded *after* that fence could come
        // from a third thread's bump that is not ordered after a deferred
        // writer's unlink, and would let the scan pass that writer's goal
        // while a reader it missed can still see the unlinked object.
        let mut bound = self.wr.load(Acquire);
        let ahead = delta(goal.0, bound);
        if ahead > 0 {
            if self.mode == Mode::Deferred && ahead <= self.params.incr as i64 {
                // A deferred goal not yet published.
                if !force {
                    return false;
                }
                // AcqRel: as in `advance`; a blocking waiter forces the bump.
                bound = self
                    .wr
                    .fetch_add(self.params.incr, AcqRel)
                    .wrapping_add(self.params.incr);
            } else {
                // Ahead of every goal this domain has issued: not one of its
                // goals (sequences are 64-bit, so no goal can be kept across
                // a wrap). Never treat it as passed.
                debug_assert!(false, "smr: poll of a goal this domain never issued");
                return false;
            }
        }
        if let Some(lz) = &self.lazy {
            if !self.lazy_cover(goal, force, local) {
                return false;
            }
            // Acquire: pairs with the Release store of `covered` after its
            // barrier. The read hand must never pass the last sequence a
            // barrier covered: a later `poll` of any goal at or below the
            // read hand passes on the fast path, with no barrier of its own,
            // so a goal taken after the last barrier and let through by a
            // read hand above it would be reused under a lazy reader whose
            // slot store is still in its store buffer.
            #[cfg(not(all(loom, smr_weakened = "lazy_bound")))]
            {
                bound = min(bound, lz.covered.load(Acquire));
            }
            #[cfg(all(loom, smr_weakened = "lazy_bound"))]
            let _ = lz;
        }
        #[cfg(all(loom, smr_weakened = "scan_candidate"))]
        let bound = {
            let _ = bound;
            None
        };
        #[cfg(not(all(loom, smr_weakened = "scan_candidate")))]
        let bound = Some(bound);
        leq(goal.0, self.scan(bound, local))
    }

    /// Lazy mode: make sure a membarrier has been issued after `goal` was
    /// taken, issuing one if the interval allows (or `force`).
    fn lazy_cover(&self, goal: Goal, force: bool, local: &LocalSlot) -> bool {
        let Some(lz) = &self.lazy else { return true };
        // Acquire: pairs with the Release store below; seeing the cover means
        // the barrier completed before our scan.
        if leq(goal.0, lz.covered.load(Acquire)) {
            return true;
        }
        let now = || self.born.elapsed().as_nanos() as u64;
        // Relaxed: rate limiting only.
        if !force && now().saturating_sub(lz.last_barrier_ns.load(Relaxed)) < lz.interval_ns {
            return false;
        }
        let _issuing = if force {
            lock(&lz.issuing)
        } else {
            match lz.issuing.try_lock() {
                Ok(g) => g,
                Err(_) => return false,
            }
        };
        if leq(goal.0, lz.covered.load(Acquire)) {
            return true;
        }
        // Acquire: pairs with the Release increments in `advance`, so every
        // unlink behind a goal at or below `upto` happens before the barrier.
        let upto = self.wr.load(Acquire);
        bump(&local.get().stats.membarriers);
        if let Err(reason) = membarrier::barrier() {
            // It can fail after registration (ENOMEM). Then nothing new is
            // covered and this goal does not pass: safe, since the read hand
            // never passes `covered`. A blocking caller (`wait`) comes back
            // here with `force` after its backoff, so it retries the barrier
            // until one succeeds; `poll` stays non-blocking and, as the
            // failed attempt counts as a barrier for the rate limit, waits
            // `lazy_interval` before it tries again. Counted, and logged on
            // the 1st, 2nd, 4th, 8th... failure.
            // Relaxed: statistics only.
            let n = lz.membarrier_failures.fetch_add(1, Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::error!(%reason, failures = n, "smr: membarrier failed; lazy reclamation waits for a retry");
            }
            lz.last_barrier_ns.store(now(), Relaxed);
            return false;
        }
        // Release: the barrier happens before any scan that sees this.
        lz.covered.store(upto, Release);
        lz.last_barrier_ns.store(now(), Relaxed);
        leq(goal.0, upto)
    }

    /// Scan every reader slot, publish the new read sequence (never past
    /// `bound`), return the read sequence.
    ///
    /// `bound` is `None` only under the loom negative control
    /// `smr_weakened = "scan_candidate"`, which restores the old behaviour of
    /// starting from the write sequence loaded after the fence.
    fn scan(&self, bound: Option<Seq>, local: &LocalSlot) -> Seq {
        bump(&local.get().stats.scans);
        // SeqCst: the writer half of the Dekker pattern; pairs with the
        // fence in `enter` (`publish_fenced`). Either a reader's published
        // sequence is visible to the loads below, or that reader's protected
        // loads see what the caller unlinked before this point.
        writer_fence();
        // Acquire: read before any slot, so the clamp below compares slot
        // values against a read hand no newer than the slots.
        let rd = self.rd.load(Acquire);
        // The candidate: every slot idle means every reader that could see
        // an unlink behind a goal at or below `bound` has left.
        let mut oldest = bound.unwrap_or_else(|| self.wr.load(Acquire));
        for slot in self.registry.iter() {
            // Relaxed: ordered by the fences on either side.
            let c = slot.value.load(Relaxed);
            if c == INVALID {
                continue;
            }
            // Clamp a stale published sequence (the reader loaded wr, was
            // delayed, then published an old value): its loads come after
            // its fence, which came after the scan that set `rd`, so it cannot
            // see anything retired at or below `rd`.
            let c = if lt(c, rd) { rd } else { c };
            oldest = min(oldest, c);
        }
        // Acquire: the exits (Release stores of INVALID) observed above
        // happen before everything after this fence, including the caller's
        // reuse of memory and, through the Release CAS, every fast-path poll.
        fence(Acquire);
        // The window the 64-bit sequences exist for: a poller preempted
        // here while others move the sequences on. Tests park it here.
        #[cfg(test)]
        tests::hooks::before_read_hand_cas();
        // Acquire, not Relaxed: if another poller already moved the read hand
        // past what we saw (it observed a reader's exit that we did not), our
        // caller may reuse memory on the strength of its value, so we must
        // synchronise with its Release CAS too. (Loom found this one.)
        let mut cur = self.rd.load(Acquire);
        while lt(cur, oldest) {
            match self.rd.compare_exchange_weak(cur, oldest, AcqRel, Acquire) {
                Ok(_) => return oldest,
                Err(actual) => cur = actual,
            }
        }
        cur
    }

    /// The read sections that hold `goal` back, oldest first.
    pub fn blockers(&self, goal: Goal) -> Vec<Blocker> {
        self.sections_where(|seq| lt(seq, goal.0), goal.0)
    }

    /// Every read section open now, oldest first; the first one's
    /// `open_for` is the age of the oldest open section.
    pub fn open_sections(&self) -> Vec<Blocker> {
        let wr = self.wr.load(Acquire);
        self.sections_where(|_| true, wr)
    }

    fn sections_where(&self, keep: impl Fn(Seq) -> bool, reference: Seq) -> Vec<Blocker> {
        let now = Instant::now();
        let mut seen = lock(&self.seen);
        let mut out = Vec::new();
        let mut live = Vec::new();
        for slot in self.registry.iter() {
            // Relaxed: diagnostics only.
            let seq = slot.value.load(Relaxed);
            if seq == INVALID {
                continue;
            }
            live.push(slot.index());
            let first = seen.entry(slot.index()).or_insert((seq, now));
            if first.0 != seq {
                *first = (seq, now);
            }
            if keep(seq) {
                out.push(Blocker {
                    thread: slot.thread_name(),
                    seq,
                    behind: (delta(reference, seq).max(0) as u64) / self.params.incr,
                    open_for: now - first.1,
                });
            }
        }
        seen.retain(|k, _| live.contains(k));
        out.sort_by(|a, b| b.open_for.cmp(&a.open_for).then(b.behind.cmp(&a.behind)));
        out
    }

    /// Counters summed over every thread.
    pub fn stats(&self) -> DomainStats {
        let r = &self.registry;
        // Relaxed: statistics only.
        let write_seq = self.wr.load(Relaxed);
        let read_seq = self.rd.load(Relaxed);
        DomainStats {
            write_seq,
            read_seq,
            lag: (delta(write_seq, read_seq).max(0) as u64) / self.params.incr,
            advances: registry::sum(r, |s| &s.advances),
            polls: registry::sum(r, |s| &s.polls),
            scans: registry::sum(r, |s| &s.scans),
            waits: registry::sum(r, |s| &s.waits),
            membarriers: registry::sum(r, |s| &s.membarriers),
            // Relaxed: statistics only.
            membarrier_failures: self
                .lazy
                .as_ref()
                .map_or(0, |lz| lz.membarrier_failures.load(Relaxed)),
            catchups: registry::sum(r, |s| &s.catchups),
            slots: r.len(),
        }
    }

    /// The sequence-space parameters.
    pub fn params(&self) -> SeqParams {
        self.params
    }
}

/// An open read section of a [`Domain`]; leaving it is dropping it.
///
/// `!Send`: the section lives in the entering thread's slot, so the guard
/// must be dropped on that thread. Its lifetime bounds every reference a
/// protected structure hands out under it.
#[must_use = "a read section ends as soon as its guard is dropped"]
pub struct ReadSection<'d> {
    domain: &'d Domain,
    slot: LocalSlot,
    _not_send: PhantomData<*const ()>,
}

impl ReadSection<'_> {
    /// The domain this section belongs to.
    pub fn domain(&self) -> &Domain {
        self.domain
    }

    /// The sequence this section published (that of the outermost section
    /// when nested).
    pub fn seq(&self) -> Seq {
        // Relaxed: our own slot.
        self.slot.get().value.load(Relaxed)
    }
}

impl Drop for ReadSection<'_> {
    #[inline]
    fn drop(&mut self) {
        let slot = self.slot.get();
        if slot.unnest() {
            // Release: every protected load of the section happens before a
            // scan that observes the slot idle (paired with its Acquire fence).
            slot.value.store(INVALID, Release);
        }
        // A temporary slot is released when `self.slot` drops, after this.
    }
}

#[cfg(test)]
mod tests;
