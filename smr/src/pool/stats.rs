//! Pool statistics: per-thread counters written only by their owner (a load
//! and a store, never a shared-line read-modify-write on the hot path),
//! slow-path counters shared by everyone, and the snapshot type callers see.
//!
//! All of these are `std` atomics even under loom: they order nothing, and
//! modelling them would only grow the state space. Every access is
//! "Relaxed: statistics only".

use super::PoolMode;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// Buckets of the retire→reuse latency histogram: bucket `i` counts samples
/// in `[2^i, 2^(i+1))` nanoseconds (bucket 0 also holds 0 ns; the last
/// bucket holds everything from about 2 s up).
pub const LATENCY_BUCKETS: usize = 32;

/// Counters one thread keeps for one pool.
pub(crate) struct LocalStats {
    pub(crate) allocs: AtomicU64,
    pub(crate) retires: AtomicU64,
    pub(crate) exhausted: AtomicU64,
    /// Objects in this thread's alloc and previous magazines.
    pub(crate) cached: AtomicU64,
    /// Objects in this thread's (unstamped) retire magazine.
    pub(crate) pending: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS],
}

impl LocalStats {
    pub(crate) fn new() -> LocalStats {
        LocalStats {
            allocs: AtomicU64::new(0),
            retires: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
            cached: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    #[inline(always)]
    pub(crate) fn count(c: &AtomicU64) {
        crate::stat::bump(c);
    }

    #[inline(always)]
    pub(crate) fn set(c: &AtomicU64, v: usize) {
        // Relaxed: statistics only, single writer.
        c.store(v as u64, Relaxed);
    }

    pub(crate) fn record_latency(&self, ns: u64) {
        let b = (63 - ns.max(1).leading_zeros() as usize).min(LATENCY_BUCKETS - 1);
        crate::stat::bump(&self.latency[b]);
    }
}

/// Slow-path counters: touched once per magazine, not once per object.
#[derive(Default)]
pub(crate) struct SharedCounters {
    pub(crate) advances: AtomicU64,
    pub(crate) stamped: AtomicU64,
    pub(crate) polls: AtomicU64,
    pub(crate) head_races: AtomicU64,
    pub(crate) sync_waits: AtomicU64,
    pub(crate) sync_wait_failures: AtomicU64,
    /// Cache steals given up because `membarrier(2)` failed.
    pub(crate) membarrier_failures: AtomicU64,
    pub(crate) performs: AtomicU64,
    pub(crate) chunks_grown: AtomicU64,
    pub(crate) chunks_freed: AtomicU64,
    /// `Exhausted` returned on a path with no per-thread state.
    pub(crate) exhausted: AtomicU64,
}

impl SharedCounters {
    pub(crate) fn add(c: &AtomicU64, by: u64) {
        // Relaxed: statistics only.
        c.fetch_add(by, Relaxed);
    }
}

/// A snapshot of one pool's state and counters, summed over every thread
/// on demand. Counts are objects unless they say bytes.
///
/// At a quiescent point (no pool call in flight)
/// `live + cached + pending == allocated`.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolStats {
    /// The protection in force.
    pub mode: PoolMode,
    /// Bytes one object occupies in its chunk, header included.
    pub slot_bytes: usize,
    /// Objects handed out and not yet retired.
    pub live: u64,
    /// Free objects that may be handed out now (thread magazines and depot).
    pub cached: u64,
    /// Retired objects still waiting for readers (thread retire magazines
    /// and stamped batches in the depot).
    pub pending: u64,
    /// `pending * slot_bytes`.
    pub pending_bytes: u64,
    /// The most objects ever waiting in stamped batches at once (at least
    /// the current `pending`).
    pub peak_pending: u64,
    /// `peak_pending * slot_bytes`.
    pub peak_pending_bytes: u64,
    /// Slots in resident chunks.
    pub allocated: u64,
    /// The configured cap on `allocated`.
    pub max_objects: u64,
    /// Resident slab chunks.
    pub chunks: u64,
    /// Chunks created / freed by the shrinker over the pool's life.
    pub chunks_grown: u64,
    pub chunks_freed: u64,
    /// Batches stamped in the depot right now.
    pub pending_batches: u64,
    /// `alloc` calls that succeeded / `retire` calls.
    pub allocs: u64,
    pub retires: u64,
    /// `advance()` calls made by the pool (one per stamped batch).
    pub advances: u64,
    /// Objects covered by those advances.
    pub stamped: u64,
    /// `stamped / advances`: how many frees one grace period pays for.
    pub frees_per_advance: f64,
    /// `poll()` calls made by the pool.
    pub polls: u64,
    /// Times a thread saw the oldest batch pass but another thread took it
    /// first (the allocator then looks at the next one).
    pub head_races: u64,
    /// Synchronous waits (expedites, barriers, synchronous performs).
    pub sync_waits: u64,
    /// Expedited waits that timed out.
    pub sync_wait_failures: u64,
    /// Cache steals (`reclaim`, `barrier`) given up because `membarrier(2)`
    /// failed (ENOMEM); `reclaim` skips that cache, `barrier` retries it.
    pub membarrier_failures: u64,
    /// Pserialize `perform()` calls made by the pool.
    pub performs: u64,
    /// `Err(Exhausted)` returns.
    pub exhausted: u64,
    /// Sampled retire→reuse latency: `reuse_latency_ns[i]` counts samples in
    /// `[2^i, 2^(i+1))` ns.
    pub reuse_latency_ns: [u64; LATENCY_BUCKETS],
}

impl PoolStats {
    /// Samples in the latency histogram.
    pub fn latency_samples(&self) -> u64 {
        self.reuse_latency_ns.iter().sum()
    }

    /// The upper bound (ns) of the bucket holding quantile `q` of the
    /// sampled latencies, or `None` without samples.
    pub fn latency_quantile_ns(&self, q: f64) -> Option<u64> {
        let total = self.latency_samples();
        if total == 0 {
            return None;
        }
        let want = ((total as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.reuse_latency_ns.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(1u64 << (i + 1));
            }
        }
        None
    }
}

/// Accumulates per-thread counters into a snapshot.
#[derive(Default)]
pub(crate) struct LocalSums {
    pub(crate) allocs: u64,
    pub(crate) retires: u64,
    pub(crate) exhausted: u64,
    pub(crate) cached: u64,
    pub(crate) pending: u64,
    pub(crate) latency: [u64; LATENCY_BUCKETS],
}

impl LocalSums {
    pub(crate) fn add(&mut self, s: &LocalStats) {
        // Relaxed: statistics only.
        self.allocs += s.allocs.load(Relaxed);
        self.retires += s.retires.load(Relaxed);
        self.exhausted += s.exhausted.load(Relaxed);
        self.cached += s.cached.load(Relaxed);
        self.pending += s.pending.load(Relaxed);
        for (a, b) in self.latency.iter_mut().zip(&s.latency) {
            *a += b.load(Relaxed);
        }
    }
}
