//! The schemes under study, each behind one [`Subject`] so the workload
//! cannot tell them apart: the SMR modes and both pserialize variants on
//! [`ChainTable`] with nodes from an `smr::PoolCache`; crossbeam-epoch on the
//! same table with boxed nodes freed by its deferred destructors; `rwlock`
//! and `dashmap` as the `pcb` baseline tables (no reclamation: a remove
//! frees at once, readers lock); and `none`, the same table read with no
//! protection at all (read-only runs only: the floor a lookup can reach).

use super::table::{ChainTable, Latency, Node, Scheme};
use crossbeam_epoch as epoch;
use hdrhistogram::Histogram;
use pcb::{ConnTable, DashMapTable, FlowHash, FourTuple, RwLockTable};
use smr::{Domain, Mode, PoolCache, PoolConfig, Protection, Pserialize, Variant};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

/// The schemes, in the order every table and plot lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Smr,
    SmrLazy,
    SmrDeferred,
    Pserialize,
    PserializeCoalesced,
    Epoch,
    /// crossbeam-epoch with spread frees: the long-running-reader and
    /// spread-free arms only.
    EpochSpread,
    RwLock,
    DashMap,
    /// No protection: read-only runs only.
    None,
}

impl Kind {
    pub(crate) const STUDIED: [Kind; 8] = [
        Kind::Smr,
        Kind::SmrLazy,
        Kind::SmrDeferred,
        Kind::Pserialize,
        Kind::PserializeCoalesced,
        Kind::Epoch,
        Kind::RwLock,
        Kind::DashMap,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Smr => "smr",
            Kind::SmrLazy => "smr-lazy",
            Kind::SmrDeferred => "smr-deferred",
            Kind::Pserialize => "pserialize",
            Kind::PserializeCoalesced => "pserialize-coalesced",
            Kind::Epoch => "epoch",
            Kind::EpochSpread => "epoch-spread",
            Kind::RwLock => "rwlock",
            Kind::DashMap => "dashmap",
            Kind::None => "none",
        }
    }
}

/// Reclamation counters, cumulative since the subject was built.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    /// Objects retired and not yet reusable (or not yet freed).
    pub(crate) pending: u64,
    /// Free objects the pool can hand out at once (its ready list and
    /// magazines); 0 where nothing is pooled.
    pub(crate) cached: u64,
    /// Objects handed back by removes.
    pub(crate) frees: u64,
    /// Write-side sequence operations / `perform` calls: goals taken.
    pub(crate) advances: u64,
    /// `membarrier(2)` calls: interrupts to every CPU running the process,
    /// the userspace xcall.
    pub(crate) membarriers: u64,
    /// The scheme's own "wait for every reader" events (see `grace_periods`
    /// in the report); `None` where the library does not expose them.
    pub(crate) grace_periods: Option<u64>,
    /// Allocations refused at the cap.
    pub(crate) exhausted: u64,
}

/// One scheme's table, as the workload drives it.
pub(crate) trait Subject: Sync {
    fn contains(&self, t: &FourTuple) -> bool;
    /// Insert; `false` when the scheme had no memory to give (at its cap).
    /// Panics on a duplicate: churn tuples are fresh.
    fn insert(&self, t: &FourTuple, v: u64) -> bool;
    fn remove(&self, t: &FourTuple) -> bool;
    /// Enter and leave an empty section; `false` if the scheme has none of
    /// its own (dashmap locks a shard per lookup).
    fn empty_section(&self) -> bool;
    /// Run `f` inside this scheme's read section; `None` if it has none of
    /// its own. Used to put every scheme's section around the same lookup
    /// in the same memory.
    fn in_section(&self, f: &dyn Fn() -> bool) -> Option<bool>;
    /// The stalled reader: find `t` and stay in the section for `d`.
    /// `Some(intact)` if found (see `ChainTable::hold`).
    fn hold(&self, t: &FourTuple, d: Duration) -> Option<bool>;
    fn counters(&self) -> Counters;
    /// Retire→reuse samples since the last call; `None` when nothing is
    /// ever pending (memory freed inside the remove).
    fn take_latency(&self) -> Option<Histogram<u64>>;
    /// Readers that saw a node reused under them.
    fn violations(&self) -> u64;
    /// The most objects that may be pending, if bounded.
    fn cap(&self) -> Option<u64>;
    /// Between runs (no reader or writer running): make everything retired
    /// so far reusable and give back what is then wholly free, so that a
    /// run starts with nothing pending and no backlog of the previous run's
    /// memory to allocate from (see `Counted::settle`).
    fn settle(&self) {}
}

/// Nodes from an SMR pool cache.
pub(crate) struct SmrScheme {
    domain: Arc<Domain>,
    pool: PoolCache<Node>,
    incr: u64,
    start_seq: u64,
}

impl Scheme for SmrScheme {
    type Section<'a> = smr::ReadSection<'a>;
    #[inline]
    fn enter(&self) -> smr::ReadSection<'_> {
        self.domain.enter()
    }
    fn alloc(&self) -> Option<NonNull<Node>> {
        self.pool.alloc_raw().ok()
    }
    unsafe fn retire(&self, node: NonNull<Node>) {
        // SAFETY: the caller's contract is the pool's: a live object of this
        // pool, unreachable, not used again.
        unsafe { self.pool.retire_raw(node) }
    }
    unsafe fn free_now(&self, node: NonNull<Node>) {
        // SAFETY: as `retire`; the pool outlives the table's teardown.
        unsafe { self.pool.retire_raw(node) }
    }
}

/// Nodes from a `PR_PSERIALIZE`-style pool cache.
pub(crate) struct PsScheme {
    ps: Arc<Pserialize>,
    pool: PoolCache<Node>,
}

impl Scheme for PsScheme {
    type Section<'a> = smr::PsReadSection<'a>;
    #[inline]
    fn enter(&self) -> smr::PsReadSection<'_> {
        self.ps.read_enter()
    }
    fn alloc(&self) -> Option<NonNull<Node>> {
        self.pool.alloc_raw().ok()
    }
    unsafe fn retire(&self, node: NonNull<Node>) {
        // SAFETY: as for `SmrScheme::retire`.
        unsafe { self.pool.retire_raw(node) }
    }
    unsafe fn free_now(&self, node: NonNull<Node>) {
        // SAFETY: as for `SmrScheme::retire`.
        unsafe { self.pool.retire_raw(node) }
    }
}

/// A node pointer moved into an epoch destructor.
struct Garbage(NonNull<Node>);
// SAFETY: the node is unreachable and owned by the destructor alone.
unsafe impl Send for Garbage {}

/// Boxed nodes, freed by crossbeam-epoch once no pinned thread can see them.
///
/// Batch free (`spread: None`, crossbeam's own behaviour): the deferred
/// destructors run inside whichever thread's `pin` collects (every 128th
/// pin of a thread: up to 8 bags of 64, so 512 nodes), readers included,
/// and each frees its node there.
/// Spread free (`spread: Some`, "Are Your Epochs Too Epic? Batch Free Can
/// Be Harmful", PPoPP 2024): a destructor only moves its node to a freeable
/// list, and the writer frees at most [`SPREAD_PER_OP`] of them per insert,
/// so a grace period that releases thousands of nodes at once costs no one
/// operation more than a few `free` calls. A node counts as pending until
/// it is actually freed in both variants.
pub(crate) struct EpochScheme {
    retired: AtomicU64,
    freed: Arc<AtomicU64>,
    latency: Arc<Latency>,
    spread: Option<Arc<Freeable>>,
}

/// Nodes past their grace period, waiting to be freed a few per operation.
/// Locking key: `nodes` under its mutex (pushed by whichever thread runs a
/// destructor, popped by the writer).
#[derive(Default)]
struct Freeable {
    nodes: Mutex<Vec<Garbage>>,
}

/// Nodes the spread-free writer frees per insert at most. Above 1, the one
/// node each churn step retires, so the freeable list drains whenever the
/// grace periods let it; small, so no insert pays for a batch.
pub(crate) const SPREAD_PER_OP: usize = 8;

impl EpochScheme {
    fn new(latency: Arc<Latency>, spread: bool) -> EpochScheme {
        EpochScheme {
            retired: AtomicU64::new(0),
            freed: Arc::new(AtomicU64::new(0)),
            latency,
            spread: spread.then(Arc::default),
        }
    }

    /// Free at most `max` nodes from the freeable list.
    fn free_some(&self, max: usize) {
        let Some(f) = &self.spread else { return };
        let batch: Vec<Garbage> = {
            let mut nodes = f.nodes.lock().unwrap_or_else(PoisonError::into_inner);
            let keep = nodes.len().saturating_sub(max);
            nodes.split_off(keep)
        };
        for g in batch {
            free_garbage(g, &self.latency, &self.freed);
        }
    }
}

/// Free a node whose grace period has passed.
fn free_garbage(g: Garbage, latency: &Latency, freed: &AtomicU64) {
    // SAFETY: from `Box::leak` in `alloc`, past its grace period, and owned
    // by `g` alone (moved out of its destructor or the freeable list once).
    let node = unsafe { Box::from_raw(g.0.as_ptr()) };
    latency.finish(&node);
    drop(node);
    // Relaxed: statistics only.
    freed.fetch_add(1, Relaxed);
}

impl Drop for EpochScheme {
    fn drop(&mut self) {
        // Nodes already past their grace period; the rest are freed by
        // their destructors, which only touch the list through its `Arc`.
        self.free_some(usize::MAX);
    }
}

impl Scheme for EpochScheme {
    type Section<'a> = epoch::Guard;
    #[inline]
    fn enter(&self) -> epoch::Guard {
        epoch::pin()
    }
    fn alloc(&self) -> Option<NonNull<Node>> {
        self.free_some(SPREAD_PER_OP);
        Some(NonNull::from(Box::leak(Box::new(Node::new()))))
    }
    unsafe fn retire(&self, node: NonNull<Node>) {
        // Relaxed: statistics only.
        self.retired.fetch_add(1, Relaxed);
        let (freed, latency, garbage) = (self.freed.clone(), self.latency.clone(), Garbage(node));
        let spread = self.spread.clone();
        let guard = epoch::pin();
        // SAFETY: the node is unreachable (caller), so only sections pinned
        // before this point can hold it, and the destructor runs after all
        // of them; it owns the box alone (freeing it, or handing it to the
        // freeable list, which frees it once).
        unsafe {
            guard.defer_unchecked(move || {
                let garbage = garbage;
                match spread {
                    Some(f) => f
                        .nodes
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(garbage),
                    None => free_garbage(garbage, &latency, &freed),
                }
            })
        };
    }
    unsafe fn free_now(&self, node: NonNull<Node>) {
        // SAFETY: from `Box::leak`, unreachable, no section open (caller).
        drop(unsafe { Box::from_raw(node.as_ptr()) });
    }
}

/// No protection at all: only for runs without removes.
pub(crate) struct Unprotected;

impl Scheme for Unprotected {
    type Section<'a> = ();
    #[inline]
    fn enter(&self) {}
    fn alloc(&self) -> Option<NonNull<Node>> {
        Some(NonNull::from(Box::leak(Box::new(Node::new()))))
    }
    unsafe fn retire(&self, _node: NonNull<Node>) {
        unreachable!("the unprotected table is read-only: a remove would be a use-after-free")
    }
    unsafe fn free_now(&self, node: NonNull<Node>) {
        // SAFETY: from `Box::leak`, unreachable, no section open (caller).
        drop(unsafe { Box::from_raw(node.as_ptr()) });
    }
}

/// What a scheme's counters are made of, for the `Subject` impl.
pub(crate) trait Counted {
    fn counters(&self) -> Counters;
    fn cap(&self) -> Option<u64>;
    fn settle(&self) {}
    fn has_pending(&self) -> bool {
        true
    }
}

fn pool_counters(pool: &PoolCache<Node>) -> (u64, u64, u64, u64) {
    let s = pool.stats();
    (s.pending, s.cached, s.retires, s.exhausted)
}

/// A pool between runs: `barrier()` makes every retired node reusable (it
/// waits for the grace period of everything pending), then `reclaim()`
/// frees the slab chunks whose nodes are all reusable. Without the second
/// step the previous run's whole pending queue stays in the ready list, and
/// the next run allocates from that backlog instead of reusing its own
/// retires (nodes of a chunk that also holds a live connection stay ready:
/// at most 63 a chunk).
fn settle_pool(pool: &PoolCache<Node>) {
    pool.barrier();
    pool.reclaim();
}

impl Counted for SmrScheme {
    fn settle(&self) {
        settle_pool(&self.pool);
    }
    fn counters(&self) -> Counters {
        let (pending, cached, frees, exhausted) = pool_counters(&self.pool);
        let d = self.domain.stats();
        let steps =
            smr::seq_order::delta(d.write_seq, self.start_seq).max(0) as u64 / self.incr.max(1);
        Counters {
            pending,
            cached,
            frees,
            advances: d.advances,
            membarriers: d.membarriers,
            // Lazy: a goal passes only after a barrier issued after it, and
            // one barrier serves every goal before it: the barrier is the
            // grace period. Otherwise: each step of the shared write
            // sequence is a new goal readers must pass.
            grace_periods: Some(if self.domain.mode() == Mode::Lazy {
                d.membarriers
            } else {
                steps
            }),
            exhausted,
        }
    }
    fn cap(&self) -> Option<u64> {
        Some(self.pool.config().max_objects as u64)
    }
}

impl Counted for PsScheme {
    fn settle(&self) {
        settle_pool(&self.pool);
    }
    fn counters(&self) -> Counters {
        let (pending, cached, frees, exhausted) = pool_counters(&self.pool);
        let p = self.ps.stats();
        Counters {
            pending,
            cached,
            frees,
            advances: p.callers_served,
            membarriers: p.membarriers,
            grace_periods: Some(p.grace_periods),
            exhausted,
        }
    }
    fn cap(&self) -> Option<u64> {
        Some(self.pool.config().max_objects as u64)
    }
}

/// Pins (each collecting a few bags) that settling an epoch table may take.
const SETTLE_PINS: usize = 100_000;

impl Counted for EpochScheme {
    /// crossbeam-epoch has no barrier: pin and flush until every deferred
    /// destructor has run (no other thread is pinned between runs, so the
    /// epoch can advance), bounded in pins and in time; then free what the
    /// spread variant still holds.
    fn settle(&self) {
        let t0 = std::time::Instant::now();
        for _ in 0..SETTLE_PINS {
            let c = self.counters();
            // Relaxed: statistics only.
            let waiting = self.retired.load(Relaxed) - self.freed.load(Relaxed);
            let listed = self.spread.as_ref().map_or(0, |f| {
                f.nodes.lock().unwrap_or_else(PoisonError::into_inner).len() as u64
            });
            if c.pending == 0 || waiting == listed || t0.elapsed() > Duration::from_millis(500) {
                break;
            }
            epoch::pin().flush();
        }
        self.free_some(usize::MAX);
    }
    fn counters(&self) -> Counters {
        // Relaxed: statistics only.
        let retired = self.retired.load(Relaxed);
        let freed = self.freed.load(Relaxed);
        Counters {
            pending: retired.saturating_sub(freed),
            frees: retired,
            // crossbeam-epoch does not say how often its global epoch moved.
            grace_periods: None,
            ..Counters::default()
        }
    }
    fn cap(&self) -> Option<u64> {
        None
    }
}

impl Counted for Unprotected {
    fn counters(&self) -> Counters {
        Counters::default()
    }
    fn cap(&self) -> Option<u64> {
        None
    }
    fn has_pending(&self) -> bool {
        false
    }
}

impl<S: Scheme + Counted> Subject for ChainTable<S> {
    #[inline]
    fn contains(&self, t: &FourTuple) -> bool {
        ChainTable::contains(self, t)
    }
    fn insert(&self, t: &FourTuple, v: u64) -> bool {
        match ChainTable::insert(self, t, v) {
            Ok(fresh) => {
                assert!(fresh, "churn tuple {t} inserted twice");
                true
            }
            Err(()) => false,
        }
    }
    fn remove(&self, t: &FourTuple) -> bool {
        ChainTable::remove(self, t)
    }
    fn empty_section(&self) -> bool {
        ChainTable::empty_section(self);
        true
    }
    #[inline]
    fn in_section(&self, f: &dyn Fn() -> bool) -> Option<bool> {
        let _section = self.enter();
        Some(f())
    }
    fn hold(&self, t: &FourTuple, d: Duration) -> Option<bool> {
        ChainTable::hold(self, t, d)
    }
    fn counters(&self) -> Counters {
        self.scheme().counters()
    }
    fn take_latency(&self) -> Option<Histogram<u64>> {
        self.scheme().has_pending().then(|| self.latency().take())
    }
    fn violations(&self) -> u64 {
        ChainTable::violations(self)
    }
    fn cap(&self) -> Option<u64> {
        self.scheme().cap()
    }
    fn settle(&self) {
        self.scheme().settle()
    }
}

/// A `pcb` baseline table; removes free at once, readers lock.
pub(crate) struct Baseline<C> {
    table: C,
    frees: AtomicU64,
    /// The read lock alone, for the cost of an empty section (`rwlock`).
    section: Option<RwLock<()>>,
}

impl<C: ConnTable<u64>> Subject for Baseline<C> {
    #[inline]
    fn contains(&self, t: &FourTuple) -> bool {
        self.table.contains(t)
    }
    fn insert(&self, t: &FourTuple, v: u64) -> bool {
        match self.table.insert(t, v) {
            Ok(()) => true,
            Err(e) => panic!("baseline insert failed: {e}"),
        }
    }
    fn remove(&self, t: &FourTuple) -> bool {
        let hit = self.table.remove(t);
        // Relaxed: statistics only.
        self.frees.fetch_add(u64::from(hit), Relaxed);
        hit
    }
    fn empty_section(&self) -> bool {
        match &self.section {
            Some(l) => {
                drop(std::hint::black_box(
                    l.read().unwrap_or_else(PoisonError::into_inner),
                ));
                true
            }
            None => false,
        }
    }
    fn in_section(&self, f: &dyn Fn() -> bool) -> Option<bool> {
        let l = self.section.as_ref()?;
        let _held = l.read().unwrap_or_else(PoisonError::into_inner);
        Some(f())
    }
    fn hold(&self, t: &FourTuple, d: Duration) -> Option<bool> {
        // The section is whatever the table holds around `f`: the one read
        // lock (rwlock), one shard's read lock (dashmap).
        self.table.lookup_with(t, |_| std::thread::sleep(d))?;
        Some(true)
    }
    fn counters(&self) -> Counters {
        Counters {
            // Relaxed: statistics only.
            frees: self.frees.load(Relaxed),
            ..Counters::default()
        }
    }
    fn take_latency(&self) -> Option<Histogram<u64>> {
        None
    }
    fn violations(&self) -> u64 {
        0
    }
    fn cap(&self) -> Option<u64> {
        None
    }
}

/// Sizes every scheme's table is built with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizing {
    pub(crate) entries: usize,
    /// The pool cap (live + cached + pending nodes) for the pooled schemes.
    pub(crate) pool_cap: usize,
}

fn pool(protection: Protection, sizing: Sizing) -> PoolCache<Node> {
    let config = PoolConfig {
        max_objects: sizing.pool_cap,
        ..PoolConfig::default()
    };
    PoolCache::with_config(protection, config, Node::new)
}

/// Build `kind`'s empty table. Every table shares `hash`.
pub(crate) fn build(kind: Kind, sizing: Sizing, hash: &FlowHash) -> Box<dyn Subject> {
    let n = sizing.entries;
    let latency = Latency::new();
    let smr = |mode: Mode| -> Box<dyn Subject> {
        let domain = Arc::new(Domain::new(mode));
        let d = domain.stats();
        let scheme = SmrScheme {
            pool: pool(Protection::Smr(domain.clone()), sizing),
            incr: smr::Config::new(mode).seq.incr,
            start_seq: d.write_seq,
            domain,
        };
        Box::new(ChainTable::new(scheme, n, hash.clone(), latency.clone()))
    };
    let ps = |variant: Variant| -> Box<dyn Subject> {
        let ps = Arc::new(Pserialize::new(variant));
        let scheme = PsScheme {
            pool: pool(Protection::Pserialize(ps.clone()), sizing),
            ps,
        };
        Box::new(ChainTable::new(scheme, n, hash.clone(), latency.clone()))
    };
    match kind {
        Kind::Smr => smr(Mode::Default),
        Kind::SmrLazy => smr(Mode::Lazy),
        Kind::SmrDeferred => smr(Mode::Deferred),
        Kind::Pserialize => ps(Variant::Naive),
        Kind::PserializeCoalesced => ps(Variant::Coalesced),
        Kind::Epoch | Kind::EpochSpread => {
            let scheme = EpochScheme::new(latency.clone(), kind == Kind::EpochSpread);
            Box::new(ChainTable::new(scheme, n, hash.clone(), latency))
        }
        Kind::None => Box::new(ChainTable::new(Unprotected, n, hash.clone(), latency)),
        Kind::RwLock => Box::new(Baseline {
            table: RwLockTable::new(n, hash.clone()),
            frees: AtomicU64::new(0),
            section: Some(RwLock::new(())),
        }),
        Kind::DashMap => Box::new(Baseline {
            table: DashMapTable::new(n, hash.clone()),
            frees: AtomicU64::new(0),
            section: None,
        }),
    }
}

/// The mode each SMR domain ended up in (lazy falls back to default when
/// the kernel refuses membarrier), by building one of each.
pub(crate) fn smr_modes() -> [(&'static str, &'static str); 3] {
    [Mode::Default, Mode::Lazy, Mode::Deferred].map(|m| (m.name(), Domain::new(m).mode().name()))
}
