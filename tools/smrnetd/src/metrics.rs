//! Prometheus metrics: every value is read from the Stack's and the workers'
//! per-worker blocks, summed, and written into a `metrics` recorder right
//! before the exposition is rendered — so the packet path only ever does its
//! single-writer Relaxed stores, and a scrape costs the scraper alone.
//!
//! Names follow Prometheus conventions: the `smrnet_` prefix, `_total` on
//! counters, base units in the name (`_bytes`, `_seconds`). Drops are one
//! counter labelled by reason, per-worker figures are labelled by worker. The
//! pool's retire→reuse latency is already bucketed by the pool (powers of two
//! in nanoseconds), so it is rendered here as a Prometheus histogram with
//! those bounds rather than re-recorded sample by sample.

use std::fmt::Write as _;
use std::sync::Arc;

use metrics::{Unit, counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use netstack::Drop;

use super::worker::Shared;

/// The recorder and what it reads from.
pub struct Metrics {
    recorder: PrometheusRecorder,
    shared: Arc<Shared>,
    /// Scrapes so far: the round of the table's rotating chain sample.
    scrapes: std::sync::atomic::AtomicUsize,
}

/// The name of every metric the daemon exports, one constant each: the
/// stack's counter blocks' (generated with the blocks), the daemon's own
/// figures below, the fault counters', and the hand-rendered families'.
/// The readers of a scrape (the load tools, the lab, the benches, the demo,
/// the end-to-end tests) use these, so a renamed metric is a compile error
/// there rather than a missing series in a lab.
pub mod names {
    pub use crate::faults::names::*;
    pub use crate::worker::worker_names::*;
    pub use netstack::names::*;

    smr::metric_table! {
        /// Gauges read from the stack's figures (not counter blocks) at
        /// scrape time.
        pub(crate) const GAUGES;
        tcp_curr_estab: Gauge Count TCP_CURR_ESTAB = "smrnet_tcp_curr_estab",
            "Connections in ESTABLISHED or CLOSE-WAIT now (Tcp: CurrEstab).";
        tcp_time_wait_connections: Gauge Count TCP_TIME_WAIT_CONNECTIONS = "smrnet_tcp_time_wait_connections",
            "Connections in TIME-WAIT now (table walk; busy entries skipped).";
        syncache_entries: Gauge Count SYNCACHE_ENTRIES = "smrnet_syncache_entries",
            "Entries in the SYN cache now.";
        syncache_memory_bytes: Gauge Bytes SYNCACHE_MEMORY_BYTES = "smrnet_syncache_memory_bytes",
            "Bytes held by the SYN cache.";
        syncache_limit_entries: Gauge Count SYNCACHE_LIMIT_ENTRIES = "smrnet_syncache_limit_entries",
            "SYN-cache entries allowed over all listeners now (a reload may move it).";
        syncache_listener_limit_entries: Gauge Count SYNCACHE_LISTENER_LIMIT_ENTRIES = "smrnet_syncache_listener_limit_entries",
            "SYN-cache entries allowed for one listener now (a reload may move it).";
        accept_queue_limit: Gauge Count ACCEPT_QUEUE_LIMIT = "smrnet_accept_queue_limit",
            "Completed handshakes a listener may queue for accept now (a reload may move it).";
        smr_write_sequence: Gauge Count SMR_WRITE_SEQUENCE = "smrnet_smr_write_sequence",
            "SMR write sequence (where new goals come from).";
        smr_read_sequence: Gauge Count SMR_READ_SEQUENCE = "smrnet_smr_read_sequence",
            "SMR read sequence (every goal at or below it has passed).";
        smr_lag: Gauge Count SMR_LAG = "smrnet_smr_lag",
            "Advances the SMR read sequence trails the write sequence.";
        smr_reader_slots: Gauge Count SMR_READER_SLOTS = "smrnet_smr_reader_slots",
            "Reader slots of the SMR domain (threads that ever read).";
        smr_oldest_read_section_seconds: Gauge Seconds SMR_OLDEST_READ_SECTION_SECONDS = "smrnet_smr_oldest_read_section_seconds",
            "Age of the oldest open SMR read section, a lower bound (0 when none is open).";
        pool_live_objects: Gauge Count POOL_LIVE_OBJECTS = "smrnet_pool_live_objects",
            "Connection blocks handed out and not retired.";
        pool_live_bytes: Gauge Bytes POOL_LIVE_BYTES = "smrnet_pool_live_bytes",
            "Bytes of live connection blocks.";
        pool_cached_objects: Gauge Count POOL_CACHED_OBJECTS = "smrnet_pool_cached_objects",
            "Free connection blocks ready for reuse.";
        pool_cached_bytes: Gauge Bytes POOL_CACHED_BYTES = "smrnet_pool_cached_bytes",
            "Bytes of free connection blocks ready for reuse.";
        pool_pending_objects: Gauge Count POOL_PENDING_OBJECTS = "smrnet_pool_pending_objects",
            "Retired connection blocks waiting for readers to leave.";
        pool_pending_bytes: Gauge Bytes POOL_PENDING_BYTES = "smrnet_pool_pending_bytes",
            "Bytes of retired blocks waiting for readers.";
        pool_peak_pending_objects: Gauge Count POOL_PEAK_PENDING_OBJECTS = "smrnet_pool_peak_pending_objects",
            "Most blocks ever waiting for readers at once.";
        pool_peak_pending_bytes: Gauge Bytes POOL_PEAK_PENDING_BYTES = "smrnet_pool_peak_pending_bytes",
            "Bytes of the most blocks ever waiting for readers at once.";
        pool_allocated_objects: Gauge Count POOL_ALLOCATED_OBJECTS = "smrnet_pool_allocated_objects",
            "Slots in resident slab chunks.";
        pool_max_objects: Gauge Count POOL_MAX_OBJECTS = "smrnet_pool_max_objects",
            "The configured cap on connection blocks.";
        pool_chunks: Gauge Count POOL_CHUNKS = "smrnet_pool_chunks",
            "Resident slab chunks.";
        pool_pending_batches: Gauge Count POOL_PENDING_BATCHES = "smrnet_pool_pending_batches",
            "Stamped batches waiting in the depot.";
        pool_frees_per_advance: Gauge Count POOL_FREES_PER_ADVANCE = "smrnet_pool_frees_per_advance",
            "Blocks freed per SMR advance (how many frees one grace period pays for).";
        table_entries: Gauge Count TABLE_ENTRIES = "smrnet_table_entries",
            "Connections in the table, TIME-WAIT included.";
        table_buckets: Gauge Count TABLE_BUCKETS = "smrnet_table_buckets",
            "Hash buckets of the connection table.";
        table_max_chain_length: Gauge Count TABLE_MAX_CHAIN_LENGTH = "smrnet_table_max_chain_length",
            "The longest hash chain among the buckets this scrape sampled (see smrnet_table_sampled_buckets; every bucket is sampled once in buckets/4096 consecutive scrapes).";
        table_sampled_buckets: Gauge Count TABLE_SAMPLED_BUCKETS = "smrnet_table_sampled_buckets",
            "Hash buckets whose chains this scrape walked for the chain-length gauge: all of them up to 4096, else 4096 evenly spaced ones, rotating from scrape to scrape, so a scrape costs the same at any table size.";
        table_load_factor: Gauge Count TABLE_LOAD_FACTOR = "smrnet_table_load_factor",
            "Connections per hash bucket (the table grows past 1 and shrinks under 1/8).";
        table_resize_seconds: Gauge Seconds TABLE_RESIZE_SECONDS = "smrnet_table_resize_seconds",
            "Time the connection table spent in online resizes, start to swap, summed.";
        workers: Gauge Count WORKERS = "smrnet_workers",
            "Packet worker threads.";
        steering_ebpf_loaded: Gauge Count STEERING_EBPF_LOADED = "smrnet_steering_ebpf_loaded",
            "1 if the eBPF steering program picks each frame's TUN queue.";
        steering_ebpf_refused: Gauge Count STEERING_EBPF_REFUSED = "smrnet_steering_ebpf_refused",
            "1 if --steering ebpf was asked for and the kernel refused it (the log says why).";
        process_resident_memory_bytes: Gauge Bytes PROCESS_RESIDENT_MEMORY_BYTES = "smrnet_process_resident_memory_bytes",
            "Resident memory of the daemon process (/proc/self/statm at scrape time).";
    }

    smr::metric_table! {
        /// Counters read from the stack's figures and the workers' blocks
        /// at scrape time.
        pub(crate) const COUNTERS;
        smr_advances: Counter Count SMR_ADVANCES = "smrnet_smr_advances_total",
            "SMR advance calls.";
        smr_polls: Counter Count SMR_POLLS = "smrnet_smr_polls_total",
            "SMR poll calls, including those inside wait.";
        smr_scans: Counter Count SMR_SCANS = "smrnet_smr_scans_total",
            "Scans of the SMR reader slots.";
        smr_waits: Counter Count SMR_WAITS = "smrnet_smr_waits_total",
            "Blocking SMR wait calls.";
        smr_membarriers: Counter Count SMR_MEMBARRIERS = "smrnet_smr_membarriers_total",
            "membarrier(2) calls (lazy mode).";
        smr_membarrier_failures: Counter Count SMR_MEMBARRIER_FAILURES = "smrnet_smr_membarrier_failures_total",
            "membarrier(2) calls that failed (lazy mode); retried, nothing reclaimed meanwhile.";
        smr_catchups: Counter Count SMR_CATCHUPS = "smrnet_smr_catchups_total",
            "Forced catch-ups of readers that fell too far behind.";
        pool_allocs: Counter Count POOL_ALLOCS = "smrnet_pool_allocs_total",
            "Connection blocks handed out.";
        pool_retires: Counter Count POOL_RETIRES = "smrnet_pool_retires_total",
            "Connection blocks retired.";
        pool_advances: Counter Count POOL_ADVANCES = "smrnet_pool_advances_total",
            "SMR advances made by the pool (one per stamped batch).";
        pool_polls: Counter Count POOL_POLLS = "smrnet_pool_polls_total",
            "SMR polls made by the pool.";
        pool_sync_waits: Counter Count POOL_SYNC_WAITS = "smrnet_pool_sync_waits_total",
            "Synchronous waits of the pool for readers.";
        pool_membarrier_failures: Counter Count POOL_MEMBARRIER_FAILURES = "smrnet_pool_membarrier_failures_total",
            "Pool cache steals given up because membarrier(2) failed.";
        pool_exhausted: Counter Count POOL_EXHAUSTED = "smrnet_pool_exhausted_total",
            "Allocations refused with Exhausted.";
        table_grows: Counter Count TABLE_GROWS = "smrnet_table_grows_total",
            "Online resizes that grew the connection table.";
        table_shrinks: Counter Count TABLE_SHRINKS = "smrnet_table_shrinks_total",
            "Online resizes that shrank the connection table.";
        pool_chunks_grown: Counter Count POOL_CHUNKS_GROWN = "smrnet_pool_chunks_grown_total",
            "Slab chunks created.";
        pool_chunks_freed: Counter Count POOL_CHUNKS_FREED = "smrnet_pool_chunks_freed_total",
            "Slab chunks freed by the shrinker.";
        worker_wakeups_sent: Counter Count WORKER_WAKEUPS_SENT = "smrnet_worker_wakeups_sent_total",
            "Wake-ups sent to the worker: another thread queued work while it slept.";
    }

    /// The handshake-time histogram (rendered by hand).
    pub const TCP_HANDSHAKE_SECONDS: &str = "smrnet_tcp_handshake_seconds";
    /// Its `_count` series: handshakes timed.
    pub const TCP_HANDSHAKE_SECONDS_COUNT: &str = "smrnet_tcp_handshake_seconds_count";
    /// The pool's retire-to-reuse latency histogram (rendered by hand).
    pub const POOL_REUSE_LATENCY_SECONDS: &str = "smrnet_pool_reuse_latency_seconds";
    /// Busy time per worker (float seconds, rendered by hand).
    pub const WORKER_BUSY_SECONDS: &str = "smrnet_worker_busy_seconds_total";
    pub use crate::forward::names::*;
    pub use crate::offload::names::*;
}

use names::{COUNTERS, GAUGES};

/// The handshake-time histogram's name.
pub const HANDSHAKE: &str = names::TCP_HANDSHAKE_SECONDS;

/// The pool's latency histogram's name.
pub const REUSE_LATENCY: &str = names::POOL_REUSE_LATENCY_SECONDS;

/// Describes one generated metric (inside the recorder's scope).
fn describe(m: &smr::stat::Metric) {
    let unit = match m.unit {
        smr::stat::Unit::Count => Unit::Count,
        smr::stat::Unit::Bytes => Unit::Bytes,
        smr::stat::Unit::Seconds => Unit::Seconds,
    };
    match m.kind {
        smr::stat::Kind::Counter => describe_counter!(m.name, unit, m.help),
        smr::stat::Kind::Gauge => describe_gauge!(m.name, unit, m.help),
    }
}

/// Every generated metric the daemon describes: the stack's counter blocks
/// and its own tables.
fn described() -> impl Iterator<Item = &'static smr::stat::Metric> {
    netstack::TcpMibSnapshot::METRICS
        .iter()
        .chain(netstack::WireCountersSnapshot::METRICS)
        .chain(netstack::names::DROP_METRICS)
        .chain(netstack::StackCountersSnapshot::METRICS)
        .chain(super::worker::WorkerCountersSnapshot::METRICS)
        .chain(COUNTERS)
        .chain(GAUGES)
        .chain(super::faults::DESCRIBED)
}

impl Metrics {
    /// A recorder with every metric described.
    pub fn new(shared: Arc<Shared>) -> Metrics {
        let recorder = PrometheusBuilder::new().build_recorder();
        metrics::with_local_recorder(&recorder, || {
            for m in described() {
                describe(m);
            }
        });
        Metrics {
            recorder,
            shared,
            scrapes: Default::default(),
        }
    }

    /// Refreshes every value from the stack and renders the exposition.
    pub fn render(&self) -> String {
        metrics::with_local_recorder(&self.recorder, || self.refresh());
        let mut text = self.recorder.handle().render();
        self.render_by_hand(&mut text);
        text
    }

    fn refresh(&self) {
        let stack = &*self.shared.stack;
        let mib = stack.mib();
        for (m, value) in mib.metrics() {
            counter!(m.name).absolute(value);
        }
        gauge!(names::TCP_CURR_ESTAB).set(mib.curr_estab() as f64);
        gauge!(names::TCP_TIME_WAIT_CONNECTIONS).set(stack.time_wait_connections() as f64);
        gauge!(names::SYNCACHE_ENTRIES).set(stack.syncache_len() as f64);
        gauge!(names::SYNCACHE_MEMORY_BYTES).set(stack.syncache_memory_bytes() as f64);
        let (syn_limit, syn_per_listener) = stack.syncache_limits();
        gauge!(names::SYNCACHE_LIMIT_ENTRIES).set(syn_limit as f64);
        gauge!(names::SYNCACHE_LISTENER_LIMIT_ENTRIES).set(syn_per_listener as f64);
        gauge!(names::ACCEPT_QUEUE_LIMIT).set(stack.accept_queue_limit() as f64);

        let wire = stack.counters();
        for (m, value) in wire.wire.metrics() {
            counter!(m.name).absolute(value);
        }
        for reason in Drop::ALL {
            counter!(names::IP_DROPS, "reason" => reason.name()).absolute(wire.drops(reason));
        }
        for (m, value) in stack.stack_counters().metrics() {
            counter!(m.name).absolute(value);
        }

        let smr = stack.smr_stats();
        gauge!(names::SMR_WRITE_SEQUENCE).set(smr.write_seq as f64);
        gauge!(names::SMR_READ_SEQUENCE).set(smr.read_seq as f64);
        gauge!(names::SMR_LAG).set(smr.lag as f64);
        gauge!(names::SMR_READER_SLOTS).set(smr.slots as f64);
        gauge!(names::SMR_OLDEST_READ_SECTION_SECONDS)
            .set(stack.oldest_read_section().map_or(0.0, |d| d.as_secs_f64()));
        counter!(names::SMR_ADVANCES).absolute(smr.advances);
        counter!(names::SMR_POLLS).absolute(smr.polls);
        counter!(names::SMR_SCANS).absolute(smr.scans);
        counter!(names::SMR_WAITS).absolute(smr.waits);
        counter!(names::SMR_MEMBARRIERS).absolute(smr.membarriers);
        counter!(names::SMR_MEMBARRIER_FAILURES).absolute(smr.membarrier_failures);
        counter!(names::SMR_CATCHUPS).absolute(smr.catchups);

        let pool = stack.pool_stats();
        let slot = pool.slot_bytes as f64;
        gauge!(names::POOL_LIVE_OBJECTS).set(pool.live as f64);
        gauge!(names::POOL_LIVE_BYTES).set(pool.live as f64 * slot);
        gauge!(names::POOL_CACHED_OBJECTS).set(pool.cached as f64);
        gauge!(names::POOL_CACHED_BYTES).set(pool.cached as f64 * slot);
        gauge!(names::POOL_PENDING_OBJECTS).set(pool.pending as f64);
        gauge!(names::POOL_PENDING_BYTES).set(pool.pending_bytes as f64);
        gauge!(names::POOL_PEAK_PENDING_OBJECTS).set(pool.peak_pending as f64);
        gauge!(names::POOL_PEAK_PENDING_BYTES).set(pool.peak_pending_bytes as f64);
        gauge!(names::POOL_ALLOCATED_OBJECTS).set(pool.allocated as f64);
        gauge!(names::POOL_MAX_OBJECTS).set(pool.max_objects as f64);
        gauge!(names::POOL_CHUNKS).set(pool.chunks as f64);
        gauge!(names::POOL_PENDING_BATCHES).set(pool.pending_batches as f64);
        gauge!(names::POOL_FREES_PER_ADVANCE).set(if pool.frees_per_advance.is_finite() {
            pool.frees_per_advance
        } else {
            0.0
        });
        counter!(names::POOL_ALLOCS).absolute(pool.allocs);
        counter!(names::POOL_RETIRES).absolute(pool.retires);
        counter!(names::POOL_ADVANCES).absolute(pool.advances);
        counter!(names::POOL_POLLS).absolute(pool.polls);
        counter!(names::POOL_SYNC_WAITS).absolute(pool.sync_waits);
        counter!(names::POOL_MEMBARRIER_FAILURES).absolute(pool.membarrier_failures);
        counter!(names::POOL_EXHAUSTED).absolute(pool.exhausted);
        counter!(names::POOL_CHUNKS_GROWN).absolute(pool.chunks_grown);
        counter!(names::POOL_CHUNKS_FREED).absolute(pool.chunks_freed);

        // Relaxed: a round number; any value gives a valid sample.
        let round = self
            .scrapes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let chains = stack.chain_stats_sample(round);
        gauge!(names::TABLE_ENTRIES).set(stack.connections() as f64);
        gauge!(names::TABLE_BUCKETS).set(chains.buckets as f64);
        gauge!(names::TABLE_MAX_CHAIN_LENGTH).set(chains.max_chain as f64);
        gauge!(names::TABLE_SAMPLED_BUCKETS).set(chains.walked as f64);
        if let Some(rs) = stack.resize_stats() {
            gauge!(names::TABLE_LOAD_FACTOR).set(rs.load_factor);
            gauge!(names::TABLE_RESIZE_SECONDS).set(rs.resize_ns as f64 / 1e9);
            counter!(names::TABLE_GROWS).absolute(rs.grows);
            counter!(names::TABLE_SHRINKS).absolute(rs.shrinks);
        }

        gauge!(names::WORKERS).set(self.shared.stats.len() as f64);
        let steering = self.shared.steering;
        gauge!(names::STEERING_EBPF_LOADED).set(f64::from(u8::from(steering.loaded)));
        gauge!(names::STEERING_EBPF_REFUSED)
            .set(f64::from(u8::from(steering.requested && !steering.loaded)));
        self.shared.faults.refresh();
        // Left unset (the previous value stays) if /proc cannot be read.
        if let Some(rss) = resident_bytes() {
            gauge!(names::PROCESS_RESIDENT_MEMORY_BYTES).set(rss as f64);
        }
        for (i, w) in self.shared.stats.iter().enumerate() {
            let worker = i.to_string();
            for (m, value) in w.counters.snapshot().metrics() {
                counter!(m.name, "worker" => worker.clone()).absolute(value);
            }
            counter!(names::WORKER_WAKEUPS_SENT, "worker" => worker)
                .absolute(self.shared.stack.wakes_sent(i));
        }
    }

    /// The busy-time counters (float seconds) and the pool's reuse latency
    /// histogram, rendered by hand: the recorder's counters are integers,
    /// and the histogram arrives already bucketed.
    fn render_by_hand(&self, text: &mut String) {
        use names::WORKER_BUSY_SECONDS;
        let _ = writeln!(
            text,
            "# HELP {WORKER_BUSY_SECONDS} Time the worker spent working rather than waiting in poll(2).\n# TYPE {WORKER_BUSY_SECONDS} counter"
        );
        for (i, w) in self.shared.stats.iter().enumerate() {
            // Relaxed: statistics only.
            let ns = w.busy_ns.load(std::sync::atomic::Ordering::Relaxed);
            let _ = writeln!(
                text,
                "{WORKER_BUSY_SECONDS}{{worker=\"{i}\"}} {}",
                ns as f64 / 1e9
            );
        }
        let pool = self.shared.stack.pool_stats();
        histogram::render_pow2_ns(
            text,
            REUSE_LATENCY,
            "Sampled time from a connection block's retire to its reuse (bucket bounds are the pool's powers of two in nanoseconds; no _sum is kept by the pool).",
            &pool.reuse_latency_ns,
            None,
        );
        let hs = self.shared.stack.handshake_times();
        histogram::render_pow2_ns(
            text,
            HANDSHAKE,
            "Time from a SYN to ESTABLISHED of passive opens completed from the SYN cache (SYN-cookie handshakes keep no SYN time and are not included).",
            &hs.buckets,
            Some(hs.sum_ns),
        );
        self.shared.forward.render(text);
        let totals: Vec<_> = self
            .shared
            .stats
            .iter()
            .map(|w| {
                // Relaxed: statistics only.
                let read =
                    |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
                super::offload::WorkerTotals {
                    frames_in: read(&w.packets_in),
                    bytes_in: read(&w.bytes_in),
                    frames_out: read(&w.packets_out),
                    bytes_out: read(&w.bytes_out),
                    offload: &w.offload,
                }
            })
            .collect();
        super::offload::render(text, self.shared.offload, &totals);
    }
}

pub(crate) mod histogram;
#[cfg(test)]
mod ops_files;
#[cfg(test)]
mod tests;

/// This process's resident memory: the second field of /proc/self/statm
/// (pages) times the page size.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}
