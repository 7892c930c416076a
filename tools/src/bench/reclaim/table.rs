//! One connection table, generic over the reclamation scheme, so that the
//! SMR modes, both pserialize variants and crossbeam-epoch run the very same
//! lookup and the very same insert/remove, and only the protection differs.
//!
//! The structure is `pcb::Table`'s exact table cut to what the workload
//! needs: a power-of-two bucket array keyed with the same `FlowHash`, chains
//! of nodes linked by atomic pointers and walked with Acquire loads only,
//! one mutex per bucket for writers, remove by splicing the predecessor past
//! the node, then `retire`. What it leaves out: the per-connection lock and
//! its re-validation (`PcbRef::lock`), which the read-only lookup does not
//! take in `pcb::Table` either.
//!
//! Invariant: **a node is handed back to its scheme only after it is
//! unreachable from every bucket, and the scheme hands it out again (or
//! frees it) only after every read section that could have reached it has
//! ended.** The node's `generation` is bumped on every reuse, so a reader
//! that re-reads it after using a node catches a scheme that broke this
//! (`violations`).
//!
//! Locking key for [`ChainTable`]: bucket heads and every `next` are written
//! only under the bucket's mutex, read inside a section with Acquire; a
//! node's `key` is written only while the node is unreachable, before the
//! Release store that publishes it.

use hdrhistogram::Histogram;
use pcb::{FlowHash, FourTuple, Key};
use std::cell::UnsafeCell;
use std::hint::black_box;
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicPtr, AtomicU64};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One connection: what a PCB is to the lookup.
pub(crate) struct Node {
    /// (k) see the module's locking key.
    key: UnsafeCell<Key>,
    value: AtomicU64,
    next: AtomicPtr<Node>,
    /// Bumped by the writer that takes the node out of its scheme again.
    generation: AtomicU64,
    /// Retire time (ns since the table's clock base) for sampled retires,
    /// 0 otherwise: the start of a retire→reuse latency sample.
    retired_at: AtomicU64,
}

// SAFETY: every field but `key` is atomic; `key` is written only while the
// node is unreachable by readers and owned by one writer (locking key), and
// read only after the Release publication that follows that write.
unsafe impl Sync for Node {}

impl Node {
    pub(crate) fn new() -> Node {
        Node {
            key: UnsafeCell::new(Key::from(&FourTuple::v4([0; 4], 0, [0; 4], 0))),
            value: AtomicU64::new(0),
            next: AtomicPtr::new(ptr::null_mut()),
            generation: AtomicU64::new(0),
            retired_at: AtomicU64::new(0),
        }
    }
}

/// Retire→reuse (or retire→free) latency samples, shared with whatever
/// thread finishes the reclamation (crossbeam-epoch runs destructors on any
/// pinned thread).
pub(crate) struct Latency {
    base: Instant,
    /// Retires stamped before this (ns since `base`) belong to an earlier
    /// run and are not recorded: a node a run left in the pool is reused
    /// runs later, and that wait measures the benchmark, not the scheme.
    since: AtomicU64,
    hist: Mutex<Histogram<u64>>,
}

impl Latency {
    pub(crate) fn new() -> Arc<Latency> {
        Arc::new(Latency {
            base: Instant::now(),
            since: AtomicU64::new(0),
            hist: Mutex::new(new_histogram()),
        })
    }

    fn now(&self) -> u64 {
        // +1: 0 means "not sampled".
        self.base.elapsed().as_nanos() as u64 + 1
    }

    /// The node is being reused or freed: record how long since its retire,
    /// if that retire was sampled.
    pub(crate) fn finish(&self, node: &Node) {
        // Relaxed: written and read by the writer side only (the scheme's
        // grace period orders the epoch destructor after the retire).
        let at = node.retired_at.swap(0, Relaxed);
        // Relaxed: set between runs, while no churner runs.
        if at != 0 && at >= self.since.load(Relaxed) {
            let ns = self.now().saturating_sub(at);
            self.hist
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .saturating_record(ns.max(1));
        }
    }

    /// The samples recorded since the last call; only retires from now on
    /// are recorded.
    pub(crate) fn take(&self) -> Histogram<u64> {
        // Relaxed: see `since`.
        self.since.store(self.now(), Relaxed);
        let mut h = self.hist.lock().unwrap_or_else(PoisonError::into_inner);
        let out = h.clone();
        h.reset();
        out
    }
}

/// A latency histogram from 1 ns to 100 s at 3 significant figures.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid bounds")
}

/// What a reclamation scheme gives the table.
pub(crate) trait Scheme: Sync {
    /// A read section; holding it keeps every node reached inside it from
    /// reuse.
    type Section<'a>
    where
        Self: 'a;
    fn enter(&self) -> Self::Section<'_>;
    /// A node to publish (fresh or reused). `None` when the scheme is at its
    /// cap and nothing retired has passed its grace period.
    fn alloc(&self) -> Option<NonNull<Node>>;
    /// Hand back a node.
    ///
    /// # Safety
    /// `node` came from this scheme's `alloc`, is unreachable from the table,
    /// and is not used again by the caller.
    unsafe fn retire(&self, node: NonNull<Node>);
    /// Give back a node at table teardown, when no reader exists.
    ///
    /// # Safety
    /// As `retire`, and no read section is open on this table.
    unsafe fn free_now(&self, node: NonNull<Node>);
}

struct Bucket {
    head: AtomicPtr<Node>,
    lock: Mutex<()>,
}

/// The table. See the module docs.
pub(crate) struct ChainTable<S: Scheme> {
    buckets: Box<[Bucket]>,
    mask: usize,
    hash: FlowHash,
    scheme: S,
    latency: Arc<Latency>,
    /// Retires so far, to sample one in `SAMPLE_EVERY` for latency.
    retires: AtomicU64,
    /// Readers that found their node reused under them.
    violations: AtomicU64,
}

/// One retire in this many is timed.
const SAMPLE_EVERY: u64 = 16;

impl<S: Scheme> ChainTable<S> {
    pub(crate) fn new(scheme: S, expected: usize, hash: FlowHash, latency: Arc<Latency>) -> Self {
        let n = expected.max(1).next_power_of_two();
        ChainTable {
            buckets: (0..n)
                .map(|_| Bucket {
                    head: AtomicPtr::new(ptr::null_mut()),
                    lock: Mutex::new(()),
                })
                .collect(),
            mask: n - 1,
            hash,
            scheme,
            latency,
            retires: AtomicU64::new(0),
            violations: AtomicU64::new(0),
        }
    }

    pub(crate) fn scheme(&self) -> &S {
        &self.scheme
    }

    pub(crate) fn latency(&self) -> &Latency {
        &self.latency
    }

    pub(crate) fn violations(&self) -> u64 {
        // Relaxed: statistics only.
        self.violations.load(Relaxed)
    }

    fn bucket(&self, key: &Key) -> &Bucket {
        &self.buckets[self.hash.key(key) as usize & self.mask]
    }

    /// The node holding `key`, found inside `_section`.
    fn find<'s>(&'s self, _section: &'s S::Section<'_>, key: &Key) -> Option<&'s Node> {
        // Acquire: pairs with the Release in `insert`/`remove` that made this
        // pointer current, so the node's key written before it is visible.
        let mut p = self.bucket(key).head.load(Acquire);
        while let Some(nn) = NonNull::new(p) {
            // SAFETY: reached from a bucket inside an open section: the
            // scheme does not reuse or free it before the section ends.
            let node = unsafe { nn.as_ref() };
            // SAFETY: the key is written only while unreachable (locking key).
            if unsafe { *node.key.get() } == *key {
                return Some(node);
            }
            // Acquire: as for the head.
            p = node.next.load(Acquire);
        }
        None
    }

    /// Whether `tuple` is present, in a section of its own. Also checks
    /// that the node found was not reused while it was being read.
    #[inline]
    pub(crate) fn contains(&self, tuple: &FourTuple) -> bool {
        let key = Key::from(tuple);
        let section = self.scheme.enter();
        let Some(node) = self.find(&section, &key) else {
            return false;
        };
        // Acquire: pairs with the Release bump in `insert`; a changed
        // generation means the node was handed out again under this section.
        let generation = node.generation.load(Acquire);
        black_box(node.value.load(Relaxed));
        if node.generation.load(Acquire) != generation {
            // Relaxed: statistics only.
            self.violations.fetch_add(1, Relaxed);
        }
        true
    }

    /// The scheme's read section.
    pub(crate) fn enter(&self) -> S::Section<'_> {
        self.scheme.enter()
    }

    /// An empty read section, for its cost alone.
    #[inline]
    pub(crate) fn empty_section(&self) {
        black_box(self.scheme.enter());
    }

    /// Find `tuple` and stay inside the section for `hold`: the stalled
    /// reader. Returns whether it was found, and whether the node still
    /// held the same connection afterwards (false means it was reused while
    /// a reader could see it).
    pub(crate) fn hold(&self, tuple: &FourTuple, hold: Duration) -> Option<bool> {
        let key = Key::from(tuple);
        let section = self.scheme.enter();
        let node = self.find(&section, &key)?;
        // Acquire: as in `contains`.
        let generation = node.generation.load(Acquire);
        std::thread::sleep(hold);
        // Acquire: as in `contains`.
        let intact = node.generation.load(Acquire) == generation;
        if !intact {
            // Relaxed: statistics only.
            self.violations.fetch_add(1, Relaxed);
        }
        Some(intact)
    }

    /// Insert; `Ok(false)` if the tuple is present, `Err(())` if the scheme
    /// has no node to give.
    pub(crate) fn insert(&self, tuple: &FourTuple, value: u64) -> Result<bool, ()> {
        let key = Key::from(tuple);
        let nn = self.scheme.alloc().ok_or(())?;
        // SAFETY: fresh from `alloc`: unreachable and ours alone.
        let node = unsafe { nn.as_ref() };
        self.latency.finish(node);
        // Release: pairs with the Acquire re-reads in `contains`/`hold`.
        node.generation.fetch_add(1, Release);
        // SAFETY: unreachable, ours alone (locking key).
        unsafe { *node.key.get() = key };
        // Relaxed: published by the Release store of the head below.
        node.value.store(value, Relaxed);
        let bucket = self.bucket(&key);
        let _held = bucket.lock.lock().unwrap_or_else(PoisonError::into_inner);
        // Relaxed: under the bucket lock, which orders writers.
        let head = bucket.head.load(Relaxed);
        let mut p = head;
        while let Some(q) = NonNull::new(p) {
            // SAFETY: in the chain, and chains change only under the lock we
            // hold, so `q` is live.
            let n = unsafe { q.as_ref() };
            // SAFETY: key stable while reachable.
            if unsafe { *n.key.get() } == key {
                // SAFETY: never published; ours alone.
                unsafe { self.scheme.free_now(nn) };
                return Ok(false);
            }
            // Relaxed: under the lock.
            p = n.next.load(Relaxed);
        }
        // Relaxed: the node is unreachable until the Release below.
        node.next.store(head, Relaxed);
        // Release: publishes the key, value and link; pairs with the
        // Acquire loads in `find`.
        bucket.head.store(nn.as_ptr(), Release);
        Ok(true)
    }

    /// Remove and retire; whether the tuple was present.
    pub(crate) fn remove(&self, tuple: &FourTuple) -> bool {
        let key = Key::from(tuple);
        let bucket = self.bucket(&key);
        let held = bucket.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut link = &bucket.head;
        loop {
            // Relaxed: under the lock.
            let Some(q) = NonNull::new(link.load(Relaxed)) else {
                return false;
            };
            // SAFETY: in the chain under its lock: live.
            let n = unsafe { q.as_ref() };
            // SAFETY: key stable while reachable.
            if unsafe { *n.key.get() } == key {
                // Release: a reader that loads the successor through the
                // predecessor sees it initialised; pairs with `find`.
                link.store(n.next.load(Relaxed), Release);
                drop(held);
                // Relaxed: statistics only.
                if self
                    .retires
                    .fetch_add(1, Relaxed)
                    .is_multiple_of(SAMPLE_EVERY)
                {
                    // Relaxed: read back by the writer side (`finish`).
                    n.retired_at.store(self.latency.now(), Relaxed);
                }
                // SAFETY: unlinked under the lock; no later use by us.
                unsafe { self.scheme.retire(q) };
                return true;
            }
            link = &n.next;
        }
    }
}

impl<S: Scheme> Drop for ChainTable<S> {
    fn drop(&mut self) {
        for b in self.buckets.iter() {
            // Relaxed: `&mut self`: no reader or writer is left.
            let mut p = b.head.swap(ptr::null_mut(), Relaxed);
            while let Some(q) = NonNull::new(p) {
                // SAFETY: still linked, so live.
                p = unsafe { q.as_ref() }.next.load(Relaxed);
                // SAFETY: unreachable now and no section is open (`&mut`).
                unsafe { self.scheme.free_now(q) };
            }
        }
    }
}
