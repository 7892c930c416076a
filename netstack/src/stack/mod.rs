//! The Stack: demultiplexes frames to connections, listeners and the SYN cache,
//! and drives every connection's timers and output, sans-IO.
//!
//! A [`Stack`] is shared by the worker threads (`Send + Sync`). Each worker
//! drives it through its own [`Worker`] token (one per index at a time) with
//! the quinn-style contract: feed it with [`Worker::handle_frame`] and
//! [`Worker::handle_timeout`], run the application's turns with
//! [`Worker::poll_events`] (each hands the closure one connection, locked,
//! as a [`ConnTurn`]: read, write and close need no lookup), drain it with
//! [`Worker::poll_transmit`] until `None`, and sleep until
//! [`Worker::poll_timeout`] (or the next frame). The application side outside
//! a turn ([`Stack::listen`], [`Stack::accept`], [`Stack::connect`],
//! [`Stack::read`], [`Stack::write`], [`Stack::close`], [`Stack::poll_events`])
//! names connections by [`ConnHandle`], looks them up on every call, and may
//! be called from any thread between those calls; its output is picked up
//! by the connection's home worker on its next `poll_transmit`, so every
//! worker must be polled, its events included: a connection removed while
//! its events wait keeps its PCB pinned until they are polled (bounded by
//! the event list's cap; see `worker.rs`).
//! Worker 0 also runs the SYN cache's timers. Counters have one writer per
//! worker; application calls count into their connection's home worker's
//! block, exact when the application runs on that worker's thread.
//!
//! Lock order, outermost first: a listener's accept queue, the SYN cache's
//! shard, the table's PCB and bucket locks (a baseline's slot lock and its
//! map's lock), a worker's queues (a leaf). The
//! SMR read section is never held across anything that waits for a grace
//! period (a table insert may, at the pool's cap), so lookups leave the
//! section with a locked PCB or a counted listener reference before acting.
//!
//! Connections live in a [`pcb::Table`] keyed by the 4-tuple, found inside an SMR
//! read section and processed under their own PCB lock (or, for comparison, in
//! a baseline map of reference-counted slots: `StackConfig::pcb_backend`,
//! `table.rs`). A connection in
//! TIME-WAIT is stored in the same table in its compact form. Every connection
//! has a *home* worker (the one that created it): its timers sit in that
//! worker's heap and its output leaves through that worker's `poll_transmit`.
//!
//! Invariant: **every connection in the table whose next deadline or pending
//! output could change has an entry in its home worker's timer heap at or
//! before that deadline, and is on its home worker's ready list** — so nothing a
//! connection wants to do is ever forgotten, while the heap and the list hold
//! at most a bounded number of entries per touch (stale entries are skipped
//! lazily when they come due).

mod app;
mod conn;
mod demux;
mod handshake_times;
mod listener;
mod offload;
mod table;
#[cfg(test)]
mod test_hooks;
mod turn;
mod wake;
mod worker;

use core::net::IpAddr;
use core::ops::RangeInclusive;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, PoisonError};

use pcb::{Backend, EphemeralPorts, FlowHash, ListenTable, SlotTable, Table, TableConfig};
use smr::{Domain, Mode, PoolConfig};

use crate::counters::WorkerCounters;
use crate::tcp::config::TcpConfig;
use crate::tcp::isn::IsnGenerator;
use crate::tcp::mib::TcpMib;
use crate::tcp::siphash::{SecretKey, siphash24};
use crate::tcp::syncache::{SynCache, SynCacheConfig};

pub use self::app::{AppError, ConnHandle, ConnectError};
pub use self::handshake_times::{HANDSHAKE_BUCKETS, HandshakeHistogram};
pub use self::listener::{ListenError, ListenerHandle};
pub use self::offload::{MAX_OFFLOAD_PAYLOAD, Segmentation, TxFrame, TxOffload};
pub use self::turn::ConnTurn;
pub use self::wake::WorkerWaker;
pub use self::worker::{StackCounters, StackCountersSnapshot, Worker, stack_names};

use self::handshake_times::HandshakeTimes;
use self::listener::Listeners;
use self::table::ConnTable;
use self::wake::Parked;
use self::worker::WorkerState;

/// How to build a [`Stack`].
#[derive(Clone, Debug)]
pub struct StackConfig {
    /// The addresses we own (IPv4 and IPv6); frames to any other are dropped.
    pub addresses: Vec<IpAddr>,
    /// TCP settings for every connection.
    pub tcp: TcpConfig,
    /// Connections expected at first: the table starts with this many
    /// buckets (rounded up) and grows online with the load, shrinking back
    /// to it, never below.
    pub table_capacity: usize,
    /// The cap on PCBs (live + waiting for their grace period).
    pub pool_cap: usize,
    /// SYN cache bounds.
    pub syncache: SynCacheConfig,
    /// Completed handshakes a listener holds before `accept` (Linux's backlog).
    pub accept_queue: usize,
    /// Worker handles (`Stack::worker(0..workers)`).
    pub workers: usize,
    /// Frames (resets, SYN-ACKs, echo replies) a worker queues before dropping.
    pub control_queue: usize,
    /// Local ports for active opens.
    pub ephemeral_ports: RangeInclusive<u16>,
    /// SMR read-section protocol for the tables.
    pub smr_mode: Mode,
    /// Which connection table: the SMR table, or a baseline map of
    /// reference-counted slots capped at `pool_cap` entries (the listen
    /// table stays under SMR either way).
    pub pcb_backend: Backend,
    /// Seeds every secret (ISNs, SYN cookies, the flow hashes, ephemeral
    /// ports): `None`, the default, draws random keys. **Insecure**: with a
    /// seed anyone who knows it predicts every ISN and cookie (blind
    /// injection, spoofed handshakes) and can aim colliding tuples at one
    /// hash chain. For tests and benchmarks that must repeat exactly; a
    /// stack facing a network must leave it `None`.
    pub insecure_deterministic_seed: Option<u64>,
    /// How to wake a sleeping worker when another thread queues work for
    /// it (see `Worker::park`); `None`: the driver polls often enough
    /// instead.
    pub waker: Option<WorkerWaker>,
}

impl StackConfig {
    /// Defaults for a stack owning `addresses`.
    pub fn new(addresses: Vec<IpAddr>) -> StackConfig {
        StackConfig {
            addresses,
            tcp: TcpConfig::default(),
            table_capacity: 1024,
            pool_cap: 64 * 1024,
            syncache: SynCacheConfig::default(),
            accept_queue: 128,
            workers: 1,
            control_queue: 1024,
            ephemeral_ports: 49152..=65535,
            smr_mode: Mode::Default,
            pcb_backend: Backend::Smr,
            insecure_deterministic_seed: None,
            waker: None,
        }
    }
}

/// The TCP/IP stack shared by all workers. See the module docs.
pub struct Stack {
    cfg: StackConfig,
    table: ConnTable,
    /// The SMR domain of the listen table (and of the connection table when
    /// that is the SMR one).
    domain: Arc<Domain>,
    listen_table: ListenTable,
    listeners: Listeners,
    /// Completed handshakes a listener may queue for `accept`, now (starts
    /// as `cfg.accept_queue`; see `Stack::set_accept_queue_limit`).
    accept_queue_limit: AtomicUsize,
    syncache: SynCache,
    isn: IsnGenerator,
    ports: EphemeralPorts,
    workers: Box<[WorkerState]>,
    counters: Box<[WorkerCounters]>,
    mibs: Box<[TcpMib]>,
    stack_counters: Box<[StackCounters]>,
    handshake_times: Box<[HandshakeTimes]>,
    parked: Box<[Parked]>,
    next_id: AtomicU64,
    /// Connection-table lookups (test builds: `cfg(test)` or the
    /// `test-hooks` feature), for the tests that count them.
    #[cfg(any(test, feature = "test-hooks"))]
    lookups: AtomicU64,
    #[cfg(test)]
    hooks: test_hooks::Hooks,
}

impl core::fmt::Debug for Stack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Stack")
            .field("addresses", &self.cfg.addresses)
            .field("connections", &self.table.len())
            .finish_non_exhaustive()
    }
}

/// A secret derived from the seed for one purpose (`label`), or a random one.
fn key_for(seed: Option<u64>, label: u64) -> SecretKey {
    match seed {
        None => SecretKey::random(),
        Some(s) => {
            let base = SecretKey([0x5a; 16]);
            let mut msg = [0u8; 16];
            msg[..8].copy_from_slice(&s.to_le_bytes());
            msg[8..].copy_from_slice(&label.to_le_bytes());
            let lo = siphash24(&base, &msg);
            msg[0] ^= 0xff;
            let hi = siphash24(&base, &msg);
            let mut k = [0u8; 16];
            k[..8].copy_from_slice(&lo.to_le_bytes());
            k[8..].copy_from_slice(&hi.to_le_bytes());
            SecretKey(k)
        }
    }
}

fn hash_for(seed: Option<u64>, label: u64) -> FlowHash {
    match seed {
        None => FlowHash::random(),
        Some(s) => FlowHash::with_seed(s ^ label.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
    }
}

impl Stack {
    /// A stack with no listeners and no connections.
    ///
    /// # Panics
    /// If `cfg.workers` is zero or the ephemeral port range is empty (both
    /// configuration mistakes, not network input).
    pub fn new(cfg: StackConfig) -> Stack {
        assert!(cfg.workers > 0, "StackConfig::workers must be at least 1");
        let domain = Arc::new(Domain::new(cfg.smr_mode));
        let table = match cfg.pcb_backend {
            Backend::Smr => ConnTable::Smr(Table::with_config(
                domain.clone(),
                TableConfig {
                    expected: cfg.table_capacity,
                    pool: PoolConfig {
                        max_objects: cfg.pool_cap,
                        ..PoolConfig::default()
                    },
                    hash: Some(hash_for(cfg.insecure_deterministic_seed, 1)),
                    // Grows with the load from `table_capacity`, and shrinks
                    // back to it, never below.
                    auto_resize: true,
                    min_buckets: None,
                    stripes: pcb::STRIPES,
                    layout: pcb::Layout::default(),
                },
            )),
            baseline => ConnTable::Slots(SlotTable::new(
                baseline,
                cfg.table_capacity,
                cfg.pool_cap,
                hash_for(cfg.insecure_deterministic_seed, 1),
            )),
        };
        let listen_table =
            ListenTable::new(domain.clone(), hash_for(cfg.insecure_deterministic_seed, 2));
        // One ISN key for both open paths (RFC 6528: one ISN clock per
        // 4-tuple, whichever side opened it); the SYN cache derives its
        // cookie and shard keys from it.
        let isn_key = key_for(cfg.insecure_deterministic_seed, 3);
        let syncache = SynCache::new(cfg.syncache, &cfg.tcp, isn_key);
        let isn = IsnGenerator::new(isn_key);
        let ports = EphemeralPorts::with_hashes(
            cfg.ephemeral_ports.clone(),
            hash_for(cfg.insecure_deterministic_seed, 5),
            hash_for(cfg.insecure_deterministic_seed, 6),
        );
        let n = cfg.workers;
        Stack {
            table,
            domain,
            listen_table,
            listeners: Listeners::default(),
            accept_queue_limit: AtomicUsize::new(cfg.accept_queue),
            syncache,
            isn,
            ports,
            workers: (0..n).map(|_| WorkerState::default()).collect(),
            counters: (0..n).map(|_| WorkerCounters::new()).collect(),
            mibs: (0..n).map(|_| TcpMib::default()).collect(),
            stack_counters: (0..n).map(|_| StackCounters::default()).collect(),
            handshake_times: (0..n).map(|_| HandshakeTimes::default()).collect(),
            parked: (0..n).map(|_| Parked::default()).collect(),
            next_id: AtomicU64::new(1),
            #[cfg(any(test, feature = "test-hooks"))]
            lookups: AtomicU64::new(0),
            #[cfg(test)]
            hooks: test_hooks::Hooks::default(),
            cfg,
        }
    }

    /// The handle worker `index` drives the stack with: a token, at most
    /// one per index at a time (dropping it frees the index), so one thread
    /// at a time drives each worker.
    ///
    /// # Panics
    /// If `index >= cfg.workers`, or a `Worker` for `index` exists already
    /// (use [`try_worker`](Self::try_worker) to ask instead).
    pub fn worker(&self, index: usize) -> Worker<'_> {
        assert!(index < self.workers.len(), "no worker {index}");
        Worker::claim(self, index).unwrap_or_else(|| {
            panic!(
                "worker {index} is already driven by another Worker handle: \
                 one thread drives each worker; drop that handle first"
            )
        })
    }

    /// As [`worker`](Self::worker), `None` if `index` is out of range or its
    /// `Worker` exists already.
    pub fn try_worker(&self, index: usize) -> Option<Worker<'_>> {
        if index >= self.workers.len() {
            return None;
        }
        Worker::claim(self, index)
    }

    /// Connection-table lookups so far (test builds only): every
    /// hash-and-walk of the table for a tuple, from any path (input,
    /// application handles, timers); pinned reaches are not lookups.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn table_lookups(&self) -> u64 {
        // Relaxed: a statistic read after the work it counts.
        self.lookups.load(Relaxed)
    }

    /// Lookups that walked over a PCB the pool had poisoned (feature
    /// `poison`, SMR backend; zero otherwise): any non-zero value is a
    /// reclamation bug.
    #[cfg(feature = "poison")]
    pub fn poison_hits(&self) -> u64 {
        match &self.table {
            ConnTable::Smr(t) => t.poison_hits(),
            ConnTable::Slots(_) => 0,
        }
    }

    #[inline(always)]
    fn count_lookup(&self) {
        #[cfg(any(test, feature = "test-hooks"))]
        // Relaxed: a statistic.
        self.lookups.fetch_add(1, Relaxed);
    }

    /// Find and lock the connection with this tuple: one table lookup.
    #[inline]
    fn lock_tuple(&self, tuple: &pcb::FourTuple) -> Option<table::ConnGuard<'_>> {
        self.count_lookup();
        self.table.lock(tuple)
    }

    /// The configuration the stack was built with (the SYN-cache and
    /// accept-queue limits as they were at start: see
    /// [`syncache_limits`](Self::syncache_limits) and
    /// [`accept_queue_limit`](Self::accept_queue_limit) for now).
    pub fn config(&self) -> &StackConfig {
        &self.cfg
    }

    /// Connections in the table (TIME-WAIT included).
    pub fn connections(&self) -> usize {
        self.table.len()
    }

    /// Entries in the SYN cache.
    pub fn syncache_len(&self) -> usize {
        self.syncache.len()
    }

    /// The SYN cache's `(max_entries, max_per_listener)` as new SYNs are
    /// checked now.
    pub fn syncache_limits(&self) -> (usize, usize) {
        self.syncache.limits()
    }

    /// Moves the SYN cache's limits while running: a raised limit applies to
    /// the next SYN; a lowered one to new entries, the entries over it
    /// staying until they complete or expire while new SYNs count as
    /// overflows and get cookies. Refuses, changing nothing, a
    /// `max_entries` above what the cache was allocated for at start.
    pub fn set_syncache_limits(
        &self,
        max_entries: usize,
        max_per_listener: usize,
    ) -> Result<(), crate::tcp::syncache::LimitAboveCapacity> {
        self.syncache.set_limits(max_entries, max_per_listener)
    }

    /// The most the SYN cache's `max_entries` can be raised to.
    pub fn syncache_capacity(&self) -> usize {
        self.syncache.capacity()
    }

    /// Bytes held by the SYN cache.
    pub fn syncache_memory_bytes(&self) -> usize {
        self.syncache.memory_bytes()
    }

    /// Every worker's wire counters, summed.
    pub fn counters(&self) -> crate::counters::CounterSnapshot {
        crate::counters::sum(self.counters.iter())
    }

    /// Every worker's TCP counters, summed.
    pub fn mib(&self) -> crate::tcp::mib::TcpMibSnapshot {
        crate::tcp::mib::sum_mibs(self.mibs.iter())
    }

    /// Every worker's stack-level counters, summed.
    pub fn stack_counters(&self) -> StackCountersSnapshot {
        StackCountersSnapshot::sum(self.stack_counters.iter())
    }

    /// SYN-to-ESTABLISHED times of passive opens completed from the SYN
    /// cache (cookie handshakes keep no SYN time), summed over workers.
    pub fn handshake_times(&self) -> HandshakeHistogram {
        HandshakeHistogram::sum(self.handshake_times.iter())
    }

    /// The SMR domain's counters (the connection and listen tables share
    /// one domain).
    pub fn smr_stats(&self) -> smr::DomainStats {
        self.domain.stats()
    }

    /// The SMR domain the tables are read under. Hidden: for fault tests
    /// that hold a read section open (a stalled reader) from outside.
    #[doc(hidden)]
    pub fn smr_domain(&self) -> &Arc<Domain> {
        &self.domain
    }

    /// How long the oldest read section open now has been open, as far as
    /// the domain has seen (a lower bound: see `smr::Blocker::open_for`), or
    /// `None` when no section is open.
    pub fn oldest_read_section(&self) -> Option<core::time::Duration> {
        self.domain.open_sections().first().map(|b| b.open_for)
    }

    /// The connection table's backend.
    pub fn pcb_backend(&self) -> Backend {
        self.table.backend()
    }

    /// The connection pool's counters. A baseline backend has no pool:
    /// `live` is its entries, `max_objects` its cap, `exhausted` its inserts
    /// refused at the cap, every other field zero.
    pub fn pool_stats(&self) -> smr::PoolStats {
        self.table.pool_stats()
    }

    /// For a worker with nothing to do: stamps the PCBs this thread retired
    /// since its last full magazine and recycles every batch whose readers
    /// have left, so the pool's pending count drains in a quiet period
    /// instead of waiting for the next busy one. Never waits. Nothing to do
    /// for a baseline backend (no pool).
    pub fn reclaim_idle(&self) -> smr::Reclaimed {
        let ConnTable::Smr(table) = &self.table else {
            return smr::Reclaimed::default();
        };
        let reclaimed = Self::reclaim_pool_idle(table);
        // Finish (or start) a table resize: the last insert or remove of a
        // busy period may have left one under way, and the old bucket array
        // is freed only by a step after its grace period. Bounded: at most
        // one full resize of steps, none of which waits.
        for _ in 0..pcb::STRIPES + 4 {
            match table.resize_step() {
                pcb::ResizeStep::Idle | pcb::ResizeStep::Busy | pcb::ResizeStep::Waiting => {
                    break;
                }
                _ => {}
            }
        }
        reclaimed
    }

    fn reclaim_pool_idle(table: &Table<self::conn::Conn>) -> smr::Reclaimed {
        let first = table.pool_reclaim_idle();
        let domain = table.domain();
        if domain.mode() == Mode::Default || table.pool_stats().pending == 0 {
            return first;
        }
        // A deferred goal stays unpublished, and a lazy goal uncovered by a
        // membarrier, until some thread advances enough or waits; an idle
        // worker with PCBs still pending is that thread. A zero timeout
        // makes one forced pass and never blocks.
        let goal = domain.advance();
        domain.wait_timeout(goal, core::time::Duration::ZERO);
        let second = table.pool_reclaim_idle();
        smr::Reclaimed {
            passed: first.passed + second.passed,
            chunks_freed: first.chunks_freed + second.chunks_freed,
        }
    }

    /// The connection table's resizer counters (buckets, load factor,
    /// resizes, time spent): cheap, no walk. `None` for a baseline backend.
    pub fn resize_stats(&self) -> Option<pcb::ResizeStats> {
        match &self.table {
            ConnTable::Smr(t) => Some(t.resize_stats()),
            ConnTable::Slots(_) => None,
        }
    }

    /// The connection table's chain lengths. Walks every bucket: for tests
    /// and diagnostics (metrics use [`chain_stats_sample`](Self::chain_stats_sample)). A baseline backend
    /// reports its entries only (zero buckets and chain lengths).
    pub fn chain_stats(&self) -> pcb::ChainStats {
        self.table.chain_stats()
    }

    /// The connection table's chain lengths from a sample of at most
    /// `pcb::SAMPLE_BUCKETS` evenly spaced buckets, rotating with `round`
    /// (`buckets / SAMPLE_BUCKETS` consecutive rounds cover the table):
    /// bounded work whatever the table's size, for metrics scrapes. A
    /// baseline backend reports its entries only.
    pub fn chain_stats_sample(&self, round: usize) -> pcb::ChainStats {
        self.table.chain_stats_sample(round)
    }

    /// Connections in TIME-WAIT now: entries into TIME-WAIT less the
    /// entries that expired or were reopened, summed over the workers. No
    /// walk (a metrics scrape calls it at any table size); exact when
    /// quiescent, a close estimate while connections move.
    pub fn time_wait_connections(&self) -> usize {
        let c = self.stack_counters();
        c.time_wait_entered.saturating_sub(c.time_wait_left) as usize
    }

    /// Connections in TIME-WAIT found by walking the table, counting only
    /// entries whose lock it gets without waiting: O(entries), for tests
    /// that check [`time_wait_connections`](Self::time_wait_connections).
    #[doc(hidden)]
    pub fn time_wait_connections_walked(&self) -> usize {
        self.table
            .count_unlocked(|c| matches!(c.state, conn::ConnState::TimeWait(_)))
    }

    fn owns(&self, addr: IpAddr) -> bool {
        self.cfg.addresses.contains(&addr)
    }

    /// The per-worker mutable state, which only that worker and application
    /// calls for its connections touch, so the lock is uncontended.
    fn queues(&self, worker: usize) -> std::sync::MutexGuard<'_, worker::Queues> {
        let w = self.workers.get(worker).unwrap_or(&self.workers[0]);
        w.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A number no other connection of this stack had.
    fn next_conn_id(&self) -> u64 {
        // Relaxed: a unique number; nothing is published with it.
        self.next_id.fetch_add(1, Relaxed)
    }

    fn mib_of(&self, worker: usize) -> &TcpMib {
        self.mibs.get(worker).unwrap_or(&self.mibs[0])
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_listener_close;
