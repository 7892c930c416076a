//! One connection table, generic over the reclamation scheme, so that the
//! SMR modes, both pserialize variants and crossbeam-epoch run the very same
//! lookup and the very same insert/remove, and only the protection differs.
//!
//! The structure is `pcb::Table`'s exact table, in its current layout, cut
//! to what the workload needs: a power-of-two array of 8-byte chain heads
//! keyed with the same `FlowHash`, sized like `pcb::Table`'s first array
//! (the next power of two at or above the expected connections, so the load
//! factor is at most one, the load `pcb`'s resizer holds); writers take one
//! of [`pcb::STRIPES`] cache-padded stripe locks chosen by the low hash
//! bits, not a lock beside each head, so a lookup's first miss lands in an
//! array of 8 bytes a bucket (1 MiB at 100k connections instead of 2 MiB
//! with a mutex per bucket); nodes are `repr(C)` with the key, generation
//! and link first, so a lookup that stops at a node reads its first 64
//! bytes. Chains are walked with Acquire loads only; a remove splices the
//! predecessor past the node, then `retire`s it. What it leaves out: the
//! per-connection lock and its re-validation (`PcbRef::lock`), which the
//! read-only lookup does not take in `pcb::Table` either, and online resize
//! (the study's table keeps its size: every churn step removes one
//! connection and inserts one), whose second link per PCB is 8 bytes the
//! lookup never reads.
//!
//! Invariant: **a node is handed back to its scheme only after it is
//! unreachable from every bucket, and the scheme hands it out again (or
//! frees it) only after every read section that could have reached it has
//! ended.** The node's `generation` is bumped on every reuse, so a reader
//! that re-reads it after using a node catches a scheme that broke this
//! (`violations`).
//!
//! Locking key for [`ChainTable`]: `heads[i]` and every `next` in chain `i`
//! are written only under `stripes[i & (STRIPES-1)]`, and read inside a
//! section with Acquire; a node's `key` is written only while the node is
//! unreachable, before the Release store that publishes it.

use hdrhistogram::Histogram;
use pcb::{FlowHash, FourTuple, Key, STRIPES};
use std::cell::UnsafeCell;
use std::hint::black_box;
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicPtr, AtomicU64};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One connection: what a PCB is to the lookup. `repr(C)` in the order a
/// lookup reads it, as `pcb::Pcb`: key, generation (read on a hit), link
/// (read on a miss).
#[repr(C)]
pub(crate) struct Node {
    /// (k) see the module's locking key.
    key: UnsafeCell<Key>,
    /// Bumped by the writer that takes the node out of its scheme again.
    generation: AtomicU64,
    next: AtomicPtr<Node>,
    value: AtomicU64,
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

/// A writers' lock on its own cache line, as `pcb`'s stripes.
#[repr(align(64))]
struct Stripe(Mutex<()>);

/// The table. See the module docs.
pub(crate) struct ChainTable<S: Scheme> {
    heads: Box<[AtomicPtr<Node>]>,
    mask: usize,
    stripes: Box<[Stripe]>,
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
        // As `pcb::Table`: a power of two at or above `expected`, and at
        // least one bucket per stripe.
        let n = expected.max(STRIPES).next_power_of_two();
        ChainTable {
            heads: (0..n).map(|_| AtomicPtr::new(ptr::null_mut())).collect(),
            mask: n - 1,
            stripes: (0..STRIPES).map(|_| Stripe(Mutex::new(()))).collect(),
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

    /// The chain head of `key` and the stripe lock that guards it.
    fn bucket(&self, key: &Key) -> (&AtomicPtr<Node>, &Mutex<()>) {
        let i = self.hash.key(key) as usize & self.mask;
        // STRIPES divides the bucket count, so stripe `i & (STRIPES-1)`
        // covers the same keys whatever the table's size.
        (&self.heads[i], &self.stripes[i & (STRIPES - 1)].0)
    }

    /// Buckets in the table.
    #[cfg(test)]
    pub(crate) fn buckets(&self) -> usize {
        self.heads.len()
    }

    /// The node holding `key`, found inside `_section`.
    fn find<'s>(&'s self, _section: &'s S::Section<'_>, key: &Key) -> Option<&'s Node> {
        // Acquire: pairs with the Release in `insert`/`remove` that made this
        // pointer current, so the node's key written before it is visible.
        let mut p = self.bucket(key).0.load(Acquire);
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
        let (head_link, stripe) = self.bucket(&key);
        let _held = stripe.lock().unwrap_or_else(PoisonError::into_inner);
        // Relaxed: under the stripe lock, which orders writers.
        let head = head_link.load(Relaxed);
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
        head_link.store(nn.as_ptr(), Release);
        Ok(true)
    }

    /// Remove and retire; whether the tuple was present.
    pub(crate) fn remove(&self, tuple: &FourTuple) -> bool {
        let key = Key::from(tuple);
        let (head_link, stripe) = self.bucket(&key);
        let held = stripe.lock().unwrap_or_else(PoisonError::into_inner);
        let mut link = head_link;
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
        for h in self.heads.iter() {
            // Relaxed: `&mut self`: no reader or writer is left.
            let mut p = h.swap(ptr::null_mut(), Relaxed);
            while let Some(q) = NonNull::new(p) {
                // SAFETY: still linked, so live.
                p = unsafe { q.as_ref() }.next.load(Relaxed);
                // SAFETY: unreachable now and no section is open (`&mut`).
                unsafe { self.scheme.free_now(q) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of, size_of_val};
    use std::sync::atomic::AtomicBool;

    /// Boxed nodes that are never freed while the table lives: safe under
    /// any reader, so the tests check the table alone.
    struct Leaky;

    impl Scheme for Leaky {
        type Section<'a> = ();
        fn enter(&self) {}
        fn alloc(&self) -> Option<NonNull<Node>> {
            Some(NonNull::from(Box::leak(Box::new(Node::new()))))
        }
        unsafe fn retire(&self, _node: NonNull<Node>) {
            // Leaked: a reader may still stand on it.
        }
        unsafe fn free_now(&self, node: NonNull<Node>) {
            // SAFETY: from `Box::leak`, unreachable, no section open.
            drop(unsafe { Box::from_raw(node.as_ptr()) });
        }
    }

    fn table(expected: usize) -> ChainTable<Leaky> {
        ChainTable::new(Leaky, expected, FlowHash::random(), Latency::new())
    }

    fn t(i: u32) -> FourTuple {
        crate::bench::churn::tuple(i)
    }

    #[test]
    fn buckets_are_bare_eight_byte_heads_sized_like_pcb_table() {
        let tb = table(100_000);
        assert_eq!(tb.buckets(), 131_072, "next power of two, as pcb::Table");
        assert_eq!(
            size_of_val(&*tb.heads),
            8 * tb.buckets(),
            "no lock per bucket"
        );
        assert_eq!(tb.stripes.len(), STRIPES);
        assert_eq!(size_of::<Stripe>(), 64, "one stripe lock per cache line");
        // A small table still has one bucket per stripe.
        assert_eq!(table(10).buckets(), STRIPES);
    }

    #[test]
    fn a_lookup_that_stops_at_a_node_reads_its_first_line() {
        let key = size_of::<Key>();
        assert_eq!(offset_of!(Node, key), 0);
        assert_eq!(offset_of!(Node, generation), key);
        assert_eq!(offset_of!(Node, next), key + 8);
        assert!(key + 16 <= 64, "key, generation and link fit in 64 bytes");
    }

    #[test]
    fn insert_remove_and_lookup_agree_across_shared_stripes() {
        // 4,096 keys in a 256-bucket table: every stripe guards chains of
        // about 16 nodes, so inserts and removes splice inside long chains.
        let tb = table(10);
        for i in 0..4096 {
            assert_eq!(tb.insert(&t(i), u64::from(i)), Ok(true));
        }
        assert_eq!(tb.insert(&t(7), 7), Ok(false), "duplicate refused");
        for i in (0..4096).step_by(2) {
            assert!(tb.remove(&t(i)));
        }
        for i in 0..4096 {
            assert_eq!(tb.contains(&t(i)), i % 2 == 1, "key {i}");
        }
        assert!(!tb.remove(&t(0)), "already removed");
    }

    #[test]
    fn readers_find_every_present_key_while_two_writers_churn_the_same_stripes() {
        // Keys 0..512 stay; two writers insert and remove keys of their own
        // in the same small table (so in the same stripes and chains) for a
        // bounded number of steps, while a reader checks the stable keys.
        let tb = table(10);
        for i in 0..512 {
            assert_eq!(tb.insert(&t(i), 0), Ok(true));
        }
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut misses = 0u32;
                let mut rounds = 0u32;
                // Relaxed: a stop flag only.
                while !stop.load(Relaxed) && rounds < 10_000 {
                    for i in 0..512 {
                        misses += u32::from(!tb.contains(&t(i)));
                    }
                    rounds += 1;
                }
                misses
            });
            let writers: Vec<_> = (0..2u32)
                .map(|w| {
                    let tb = &tb;
                    s.spawn(move || {
                        let base = 1_000_000 * (w + 1);
                        for k in 0..20_000u32 {
                            assert_eq!(tb.insert(&t(base + k), 1), Ok(true));
                            if k >= 32 {
                                assert!(tb.remove(&t(base + k - 32)));
                            }
                        }
                    })
                })
                .collect();
            for w in writers {
                w.join().expect("writer");
            }
            // Relaxed: a stop flag only.
            stop.store(true, Relaxed);
            assert_eq!(
                reader.join().expect("reader"),
                0,
                "a present key was missed"
            );
        });
        assert_eq!(tb.violations(), 0);
    }
}
