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

/// `(field, help)` of every counter of the TCP MIB snapshot we export, by
/// the MIB's own name.
const MIB: &[(&str, &str, &str)] = &[
    (
        "ActiveOpens",
        "smrnet_tcp_active_opens_total",
        "Connections that went SYN-SENT from CLOSED (Tcp: ActiveOpens).",
    ),
    (
        "PassiveOpens",
        "smrnet_tcp_passive_opens_total",
        "Connections created by a completed handshake to a listener (Tcp: PassiveOpens).",
    ),
    (
        "AttemptFails",
        "smrnet_tcp_attempt_fails_total",
        "Handshakes that failed (Tcp: AttemptFails).",
    ),
    (
        "EstabResets",
        "smrnet_tcp_estab_resets_total",
        "Resets from ESTABLISHED or CLOSE-WAIT (Tcp: EstabResets).",
    ),
    (
        "OutSegs",
        "smrnet_tcp_out_segs_total",
        "TCP segments sent, retransmissions included (Tcp: OutSegs).",
    ),
    (
        "RetransSegs",
        "smrnet_tcp_retrans_segs_total",
        "TCP segments retransmitted (Tcp: RetransSegs).",
    ),
    (
        "OutRsts",
        "smrnet_tcp_out_rsts_total",
        "TCP segments sent with RST (Tcp: OutRsts).",
    ),
    (
        "TCPTimeouts",
        "smrnet_tcp_timeouts_total",
        "Connections aborted after too many retransmissions.",
    ),
    (
        "TCPFastRetrans",
        "smrnet_tcp_fast_retrans_total",
        "Fast retransmits.",
    ),
    (
        "TCPWinProbe",
        "smrnet_tcp_window_probes_total",
        "Zero-window probes sent.",
    ),
    (
        "TCPKeepAlive",
        "smrnet_tcp_keepalive_probes_total",
        "Keepalive probes sent.",
    ),
    (
        "TCPKeepAliveTimeouts",
        "smrnet_tcp_keepalive_timeouts_total",
        "Connections aborted by unanswered keepalive probes.",
    ),
    (
        "TCPChallengeACK",
        "smrnet_tcp_challenge_acks_total",
        "RFC 5961 challenge ACKs sent.",
    ),
    (
        "TCPChallengeACKLimited",
        "smrnet_tcp_challenge_acks_limited_total",
        "Challenge ACKs suppressed by the rate limit.",
    ),
    (
        "PAWSEstab",
        "smrnet_tcp_paws_drops_total",
        "Segments dropped by PAWS (RFC 7323).",
    ),
    (
        "TCPOutOfWindow",
        "smrnet_tcp_out_of_window_total",
        "Segments outside the receive window.",
    ),
    ("TCPInRsts", "smrnet_tcp_in_rsts_total", "Resets accepted."),
    (
        "TCPDropAckTooNew",
        "smrnet_tcp_drop_ack_too_new_total",
        "Segments dropped for acknowledging data never sent.",
    ),
    (
        "TCPDropAckTooOld",
        "smrnet_tcp_drop_ack_too_old_total",
        "Segments dropped for acknowledging data older than the peer could have seen (RFC 5961).",
    ),
    (
        "TCPDropNoAck",
        "smrnet_tcp_drop_no_ack_total",
        "Synchronized-state segments dropped for carrying no ACK.",
    ),
    (
        "TCPDropSynSentUnexpected",
        "smrnet_tcp_drop_syn_sent_unexpected_total",
        "Segments SYN-SENT dropped for being neither SYN nor RST.",
    ),
    (
        "TCPDropClosed",
        "smrnet_tcp_drop_closed_total",
        "Segments for a connection already closed.",
    ),
    (
        "TCPDropTimeWait",
        "smrnet_tcp_drop_time_wait_total",
        "In-window segments a TIME-WAIT dropped without reply.",
    ),
    (
        "TCPRstsIgnored",
        "smrnet_tcp_rsts_ignored_total",
        "Resets ignored or challenged.",
    ),
    (
        "TCPOFOQueue",
        "smrnet_tcp_ofo_queued_total",
        "Out-of-order segments queued.",
    ),
    (
        "TCPOFODrop",
        "smrnet_tcp_ofo_drops_total",
        "Out-of-order segments dropped at the reassembly bound.",
    ),
    (
        "TCPTimeWaits",
        "smrnet_tcp_time_waits_total",
        "Connections that entered TIME-WAIT.",
    ),
    (
        "TCPTWRecycled",
        "smrnet_tcp_time_wait_recycled_total",
        "TIME-WAIT connections reopened by a new SYN (RFC 6191).",
    ),
    (
        "TCPNoPort",
        "smrnet_tcp_no_port_total",
        "Segments for no connection and no listener, answered with RST.",
    ),
    (
        "ListenSYNs",
        "smrnet_listen_syns_total",
        "SYNs received by a listener.",
    ),
    (
        "syncache_added",
        "smrnet_syncache_added_total",
        "SYN-cache entries created.",
    ),
    (
        "syncache_overflow",
        "smrnet_syncache_overflows_total",
        "SYNs that found the SYN cache full.",
    ),
    (
        "syncache_expired",
        "smrnet_syncache_expired_total",
        "SYN-cache entries that expired without a final ACK.",
    ),
    (
        "syncache_retransmits",
        "smrnet_syncache_retransmits_total",
        "SYN-ACKs retransmitted from the SYN cache.",
    ),
    (
        "syncache_completed",
        "smrnet_syncache_completed_total",
        "Handshakes completed from a SYN-cache entry.",
    ),
    (
        "syncache_drops",
        "smrnet_syncache_drops_total",
        "Segments for a SYN-cache entry that were dropped.",
    ),
    (
        "syncookies_sent",
        "smrnet_syncookies_sent_total",
        "SYN-ACKs sent with a SYN cookie.",
    ),
    (
        "syncookies_recv",
        "smrnet_syncookies_validated_total",
        "Final ACKs whose SYN cookie validated.",
    ),
    (
        "syncookies_failed",
        "smrnet_syncookies_failed_total",
        "Final ACKs whose SYN cookie did not validate.",
    ),
    (
        "listen_queue_overflow",
        "smrnet_listen_queue_overflows_total",
        "Completed handshakes dropped because the accept queue was full.",
    ),
    (
        "pool_exhausted",
        "smrnet_tcp_pool_exhausted_drops_total",
        "Handshakes refused because the connection pool was exhausted.",
    ),
];

/// Help text of every metric written through the recorder, for the
/// describe calls and for the tests.
const GAUGES: &[(&str, Unit, &str)] = &[
    (
        "smrnet_tcp_curr_estab",
        Unit::Count,
        "Connections in ESTABLISHED or CLOSE-WAIT now (Tcp: CurrEstab).",
    ),
    (
        "smrnet_tcp_time_wait_connections",
        Unit::Count,
        "Connections in TIME-WAIT now (table walk; busy entries skipped).",
    ),
    (
        "smrnet_syncache_entries",
        Unit::Count,
        "Entries in the SYN cache now.",
    ),
    (
        "smrnet_syncache_memory_bytes",
        Unit::Bytes,
        "Bytes held by the SYN cache.",
    ),
    (
        "smrnet_syncache_limit_entries",
        Unit::Count,
        "SYN-cache entries allowed over all listeners now (a reload may move it).",
    ),
    (
        "smrnet_syncache_listener_limit_entries",
        Unit::Count,
        "SYN-cache entries allowed for one listener now (a reload may move it).",
    ),
    (
        "smrnet_accept_queue_limit",
        Unit::Count,
        "Completed handshakes a listener may queue for accept now (a reload may move it).",
    ),
    (
        "smrnet_smr_write_sequence",
        Unit::Count,
        "SMR write sequence (where new goals come from).",
    ),
    (
        "smrnet_smr_read_sequence",
        Unit::Count,
        "SMR read sequence (every goal at or below it has passed).",
    ),
    (
        "smrnet_smr_lag",
        Unit::Count,
        "Advances the SMR read sequence trails the write sequence.",
    ),
    (
        "smrnet_smr_reader_slots",
        Unit::Count,
        "Reader slots of the SMR domain (threads that ever read).",
    ),
    (
        "smrnet_smr_oldest_read_section_seconds",
        Unit::Seconds,
        "Age of the oldest open SMR read section, a lower bound (0 when none is open).",
    ),
    (
        "smrnet_pool_live_objects",
        Unit::Count,
        "Connection blocks handed out and not retired.",
    ),
    (
        "smrnet_pool_live_bytes",
        Unit::Bytes,
        "Bytes of live connection blocks.",
    ),
    (
        "smrnet_pool_cached_objects",
        Unit::Count,
        "Free connection blocks ready for reuse.",
    ),
    (
        "smrnet_pool_cached_bytes",
        Unit::Bytes,
        "Bytes of free connection blocks ready for reuse.",
    ),
    (
        "smrnet_pool_pending_objects",
        Unit::Count,
        "Retired connection blocks waiting for readers to leave.",
    ),
    (
        "smrnet_pool_pending_bytes",
        Unit::Bytes,
        "Bytes of retired blocks waiting for readers.",
    ),
    (
        "smrnet_pool_peak_pending_objects",
        Unit::Count,
        "Most blocks ever waiting for readers at once.",
    ),
    (
        "smrnet_pool_peak_pending_bytes",
        Unit::Bytes,
        "Bytes of the most blocks ever waiting for readers at once.",
    ),
    (
        "smrnet_pool_allocated_objects",
        Unit::Count,
        "Slots in resident slab chunks.",
    ),
    (
        "smrnet_pool_max_objects",
        Unit::Count,
        "The configured cap on connection blocks.",
    ),
    ("smrnet_pool_chunks", Unit::Count, "Resident slab chunks."),
    (
        "smrnet_pool_pending_batches",
        Unit::Count,
        "Stamped batches waiting in the depot.",
    ),
    (
        "smrnet_pool_frees_per_advance",
        Unit::Count,
        "Blocks freed per SMR advance (how many frees one grace period pays for).",
    ),
    (
        "smrnet_table_entries",
        Unit::Count,
        "Connections in the table, TIME-WAIT included.",
    ),
    (
        "smrnet_table_buckets",
        Unit::Count,
        "Hash buckets of the connection table.",
    ),
    (
        "smrnet_table_max_chain_length",
        Unit::Count,
        "The longest hash chain among the buckets this scrape sampled (see smrnet_table_sampled_buckets; every bucket is sampled once in buckets/4096 consecutive scrapes).",
    ),
    (
        "smrnet_table_sampled_buckets",
        Unit::Count,
        "Hash buckets whose chains this scrape walked for the chain-length gauge: all of them up to 4096, else 4096 evenly spaced ones, rotating from scrape to scrape, so a scrape costs the same at any table size.",
    ),
    (
        "smrnet_table_load_factor",
        Unit::Count,
        "Connections per hash bucket (the table grows past 1 and shrinks under 1/8).",
    ),
    (
        "smrnet_table_resize_seconds",
        Unit::Seconds,
        "Time the connection table spent in online resizes, start to swap, summed.",
    ),
    ("smrnet_workers", Unit::Count, "Packet worker threads."),
    (
        "smrnet_steering_ebpf_loaded",
        Unit::Count,
        "1 if the eBPF steering program picks each frame's TUN queue.",
    ),
    (
        "smrnet_steering_ebpf_refused",
        Unit::Count,
        "1 if --steering ebpf was asked for and the kernel refused it (the log says why).",
    ),
    (
        "smrnet_process_resident_memory_bytes",
        Unit::Bytes,
        "Resident memory of the daemon process (/proc/self/statm at scrape time).",
    ),
];

const COUNTERS: &[(&str, Unit, &str)] = &[
    (
        "smrnet_ip_in_receives_total",
        Unit::Count,
        "Frames read from the TUN device and parsed (Ip: InReceives).",
    ),
    (
        "smrnet_ip_in_delivers_total",
        Unit::Count,
        "Frames parsed into a datagram.",
    ),
    (
        "smrnet_ip_in_hdr_errors_total",
        Unit::Count,
        "Frames with IP-level damage (Ip: InHdrErrors).",
    ),
    (
        "smrnet_ip_in_addr_errors_total",
        Unit::Count,
        "Frames with a martian address (Ip: InAddrErrors).",
    ),
    (
        "smrnet_ip_in_unknown_protos_total",
        Unit::Count,
        "Frames of an unsupported protocol (Ip: InUnknownProtos).",
    ),
    (
        "smrnet_ip_not_our_address_total",
        Unit::Count,
        "Datagrams addressed to an address the stack does not own.",
    ),
    (
        "smrnet_ip_drops_total",
        Unit::Count,
        "Frames dropped by the parser, by reason.",
    ),
    (
        "smrnet_in_csum_errors_total",
        Unit::Count,
        "Frames with a bad IP, TCP or ICMP checksum (InCsumErrors).",
    ),
    (
        "smrnet_tcp_in_segs_total",
        Unit::Count,
        "TCP segments received, errors included (Tcp: InSegs).",
    ),
    (
        "smrnet_tcp_in_errs_total",
        Unit::Count,
        "TCP segments dropped as malformed (Tcp: InErrs).",
    ),
    (
        "smrnet_icmp_in_echos_total",
        Unit::Count,
        "ICMP/ICMPv6 echo requests received.",
    ),
    (
        "smrnet_icmp_out_echo_replies_total",
        Unit::Count,
        "ICMP/ICMPv6 echo replies queued.",
    ),
    (
        "smrnet_stack_control_queue_full_total",
        Unit::Count,
        "Control frames dropped because a worker's control queue was full.",
    ),
    (
        "smrnet_stack_emit_errors_total",
        Unit::Count,
        "Segments that could not be built.",
    ),
    (
        "smrnet_stack_duplicate_connections_total",
        Unit::Count,
        "Completed handshakes whose tuple was already taken.",
    ),
    (
        "smrnet_stack_events_dropped_total",
        Unit::Count,
        "Application events dropped because nobody polled them.",
    ),
    (
        "smrnet_stack_handshake_drops_total",
        Unit::Count,
        "Non-SYN segments for a listener dropped by the SYN cache.",
    ),
    (
        "smrnet_stack_closed_listener_drops_total",
        Unit::Count,
        "Handshakes completed on a listener being closed, answered with a reset.",
    ),
    (
        "smrnet_stack_foreign_segments_total",
        Unit::Count,
        "Segments that reached a worker other than their connection's home.",
    ),
    (
        "smrnet_smr_advances_total",
        Unit::Count,
        "SMR advance calls.",
    ),
    (
        "smrnet_smr_polls_total",
        Unit::Count,
        "SMR poll calls, including those inside wait.",
    ),
    (
        "smrnet_smr_scans_total",
        Unit::Count,
        "Scans of the SMR reader slots.",
    ),
    (
        "smrnet_smr_waits_total",
        Unit::Count,
        "Blocking SMR wait calls.",
    ),
    (
        "smrnet_smr_membarriers_total",
        Unit::Count,
        "membarrier(2) calls (lazy mode).",
    ),
    (
        "smrnet_smr_membarrier_failures_total",
        Unit::Count,
        "membarrier(2) calls that failed (lazy mode); retried, nothing reclaimed meanwhile.",
    ),
    (
        "smrnet_smr_catchups_total",
        Unit::Count,
        "Forced catch-ups of readers that fell too far behind.",
    ),
    (
        "smrnet_pool_allocs_total",
        Unit::Count,
        "Connection blocks handed out.",
    ),
    (
        "smrnet_pool_retires_total",
        Unit::Count,
        "Connection blocks retired.",
    ),
    (
        "smrnet_pool_advances_total",
        Unit::Count,
        "SMR advances made by the pool (one per stamped batch).",
    ),
    (
        "smrnet_pool_polls_total",
        Unit::Count,
        "SMR polls made by the pool.",
    ),
    (
        "smrnet_pool_sync_waits_total",
        Unit::Count,
        "Synchronous waits of the pool for readers.",
    ),
    (
        "smrnet_pool_membarrier_failures_total",
        Unit::Count,
        "Pool cache steals given up because membarrier(2) failed.",
    ),
    (
        "smrnet_pool_exhausted_total",
        Unit::Count,
        "Allocations refused with Exhausted.",
    ),
    (
        "smrnet_table_grows_total",
        Unit::Count,
        "Online resizes that grew the connection table.",
    ),
    (
        "smrnet_table_shrinks_total",
        Unit::Count,
        "Online resizes that shrank the connection table.",
    ),
    (
        "smrnet_pool_chunks_grown_total",
        Unit::Count,
        "Slab chunks created.",
    ),
    (
        "smrnet_pool_chunks_freed_total",
        Unit::Count,
        "Slab chunks freed by the shrinker.",
    ),
    (
        "smrnet_worker_packets_in_total",
        Unit::Count,
        "Frames read from the worker's TUN queue.",
    ),
    (
        "smrnet_worker_packets_out_total",
        Unit::Count,
        "Frames written to the worker's TUN queue.",
    ),
    (
        "smrnet_worker_received_bytes_total",
        Unit::Bytes,
        "Bytes read from the worker's TUN queue.",
    ),
    (
        "smrnet_worker_sent_bytes_total",
        Unit::Bytes,
        "Bytes written to the worker's TUN queue.",
    ),
    (
        "smrnet_worker_batches_total",
        Unit::Count,
        "Worker turns that read at least one frame.",
    ),
    (
        "smrnet_worker_write_errors_total",
        Unit::Count,
        "Frames the TUN queue refused.",
    ),
    (
        "smrnet_worker_sessions_total",
        Unit::Count,
        "Service sessions (echo, discard, http connections) started.",
    ),
    (
        "smrnet_worker_wakeups_sent_total",
        Unit::Count,
        "Wake-ups sent to the worker: another thread queued work while it slept.",
    ),
    (
        "smrnet_worker_wakeups_received_total",
        Unit::Count,
        "Sleeps the worker's wake-up eventfd ended.",
    ),
];

/// The handshake-time histogram's name.
pub const HANDSHAKE: &str = "smrnet_tcp_handshake_seconds";

/// The pool's latency histogram's name.
pub const REUSE_LATENCY: &str = "smrnet_pool_reuse_latency_seconds";

impl Metrics {
    /// A recorder with every metric described.
    pub fn new(shared: Arc<Shared>) -> Metrics {
        let recorder = PrometheusBuilder::new().build_recorder();
        metrics::with_local_recorder(&recorder, || {
            for (_, name, help) in MIB {
                describe_counter!(*name, Unit::Count, *help);
            }
            for (name, unit, help) in COUNTERS {
                describe_counter!(*name, *unit, *help);
            }
            for (name, unit, help) in GAUGES {
                describe_gauge!(*name, *unit, *help);
            }
            super::faults::Faults::describe();
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
        for (mib_name, value) in mib.iter() {
            if let Some((_, name, _)) = MIB.iter().find(|(m, _, _)| *m == mib_name) {
                counter!(*name).absolute(value);
            }
        }
        gauge!("smrnet_tcp_curr_estab")
            .set(mib.estab_entered.saturating_sub(mib.estab_left) as f64);
        gauge!("smrnet_tcp_time_wait_connections").set(stack.time_wait_connections() as f64);
        gauge!("smrnet_syncache_entries").set(stack.syncache_len() as f64);
        gauge!("smrnet_syncache_memory_bytes").set(stack.syncache_memory_bytes() as f64);
        let (syn_limit, syn_per_listener) = stack.syncache_limits();
        gauge!("smrnet_syncache_limit_entries").set(syn_limit as f64);
        gauge!("smrnet_syncache_listener_limit_entries").set(syn_per_listener as f64);
        gauge!("smrnet_accept_queue_limit").set(stack.accept_queue_limit() as f64);

        let wire = stack.counters();
        counter!("smrnet_ip_in_receives_total").absolute(wire.in_receives);
        counter!("smrnet_ip_in_delivers_total").absolute(wire.delivered);
        counter!("smrnet_ip_in_hdr_errors_total").absolute(wire.in_hdr_errors);
        counter!("smrnet_ip_in_addr_errors_total").absolute(wire.in_addr_errors);
        counter!("smrnet_ip_in_unknown_protos_total").absolute(wire.in_unknown_protos);
        counter!("smrnet_in_csum_errors_total").absolute(wire.in_csum_errors);
        counter!("smrnet_tcp_in_segs_total").absolute(wire.in_segs);
        counter!("smrnet_tcp_in_errs_total").absolute(wire.in_errs);
        counter!("smrnet_icmp_in_echos_total").absolute(wire.icmp_in_echos);
        for reason in Drop::ALL {
            counter!("smrnet_ip_drops_total", "reason" => reason.name())
                .absolute(wire.drops(reason));
        }

        let sc = stack.stack_counters();
        counter!("smrnet_ip_not_our_address_total").absolute(sc.not_our_address);
        counter!("smrnet_icmp_out_echo_replies_total").absolute(sc.echo_replies);
        counter!("smrnet_stack_control_queue_full_total").absolute(sc.control_queue_full);
        counter!("smrnet_stack_emit_errors_total").absolute(sc.emit_errors);
        counter!("smrnet_stack_duplicate_connections_total").absolute(sc.duplicate_connections);
        counter!("smrnet_stack_events_dropped_total").absolute(sc.events_dropped);
        counter!("smrnet_stack_handshake_drops_total").absolute(sc.handshake_drops);
        counter!("smrnet_stack_closed_listener_drops_total").absolute(sc.closed_listener_drops);
        counter!("smrnet_stack_foreign_segments_total").absolute(sc.foreign_segments);

        let smr = stack.smr_stats();
        gauge!("smrnet_smr_write_sequence").set(smr.write_seq as f64);
        gauge!("smrnet_smr_read_sequence").set(smr.read_seq as f64);
        gauge!("smrnet_smr_lag").set(smr.lag as f64);
        gauge!("smrnet_smr_reader_slots").set(smr.slots as f64);
        gauge!("smrnet_smr_oldest_read_section_seconds")
            .set(stack.oldest_read_section().map_or(0.0, |d| d.as_secs_f64()));
        counter!("smrnet_smr_advances_total").absolute(smr.advances);
        counter!("smrnet_smr_polls_total").absolute(smr.polls);
        counter!("smrnet_smr_scans_total").absolute(smr.scans);
        counter!("smrnet_smr_waits_total").absolute(smr.waits);
        counter!("smrnet_smr_membarriers_total").absolute(smr.membarriers);
        counter!("smrnet_smr_membarrier_failures_total").absolute(smr.membarrier_failures);
        counter!("smrnet_smr_catchups_total").absolute(smr.catchups);

        let pool = stack.pool_stats();
        let slot = pool.slot_bytes as f64;
        gauge!("smrnet_pool_live_objects").set(pool.live as f64);
        gauge!("smrnet_pool_live_bytes").set(pool.live as f64 * slot);
        gauge!("smrnet_pool_cached_objects").set(pool.cached as f64);
        gauge!("smrnet_pool_cached_bytes").set(pool.cached as f64 * slot);
        gauge!("smrnet_pool_pending_objects").set(pool.pending as f64);
        gauge!("smrnet_pool_pending_bytes").set(pool.pending_bytes as f64);
        gauge!("smrnet_pool_peak_pending_objects").set(pool.peak_pending as f64);
        gauge!("smrnet_pool_peak_pending_bytes").set(pool.peak_pending_bytes as f64);
        gauge!("smrnet_pool_allocated_objects").set(pool.allocated as f64);
        gauge!("smrnet_pool_max_objects").set(pool.max_objects as f64);
        gauge!("smrnet_pool_chunks").set(pool.chunks as f64);
        gauge!("smrnet_pool_pending_batches").set(pool.pending_batches as f64);
        gauge!("smrnet_pool_frees_per_advance").set(if pool.frees_per_advance.is_finite() {
            pool.frees_per_advance
        } else {
            0.0
        });
        counter!("smrnet_pool_allocs_total").absolute(pool.allocs);
        counter!("smrnet_pool_retires_total").absolute(pool.retires);
        counter!("smrnet_pool_advances_total").absolute(pool.advances);
        counter!("smrnet_pool_polls_total").absolute(pool.polls);
        counter!("smrnet_pool_sync_waits_total").absolute(pool.sync_waits);
        counter!("smrnet_pool_membarrier_failures_total").absolute(pool.membarrier_failures);
        counter!("smrnet_pool_exhausted_total").absolute(pool.exhausted);
        counter!("smrnet_pool_chunks_grown_total").absolute(pool.chunks_grown);
        counter!("smrnet_pool_chunks_freed_total").absolute(pool.chunks_freed);

        // Relaxed: a round number; any value gives a valid sample.
        let round = self
            .scrapes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let chains = stack.chain_stats_sample(round);
        gauge!("smrnet_table_entries").set(stack.connections() as f64);
        gauge!("smrnet_table_buckets").set(chains.buckets as f64);
        gauge!("smrnet_table_max_chain_length").set(chains.max_chain as f64);
        gauge!("smrnet_table_sampled_buckets").set(chains.walked as f64);
        if let Some(rs) = stack.resize_stats() {
            gauge!("smrnet_table_load_factor").set(rs.load_factor);
            gauge!("smrnet_table_resize_seconds").set(rs.resize_ns as f64 / 1e9);
            counter!("smrnet_table_grows_total").absolute(rs.grows);
            counter!("smrnet_table_shrinks_total").absolute(rs.shrinks);
        }

        gauge!("smrnet_workers").set(self.shared.stats.len() as f64);
        let steering = self.shared.steering;
        gauge!("smrnet_steering_ebpf_loaded").set(f64::from(u8::from(steering.loaded)));
        gauge!("smrnet_steering_ebpf_refused")
            .set(f64::from(u8::from(steering.requested && !steering.loaded)));
        self.shared.faults.refresh();
        // Left unset (the previous value stays) if /proc cannot be read.
        if let Some(rss) = resident_bytes() {
            gauge!("smrnet_process_resident_memory_bytes").set(rss as f64);
        }
        let read = |c: &std::sync::atomic::AtomicU64| {
            // Relaxed: statistics only.
            c.load(std::sync::atomic::Ordering::Relaxed)
        };
        for (i, w) in self.shared.stats.iter().enumerate() {
            let worker = i.to_string();
            counter!("smrnet_worker_packets_in_total", "worker" => worker.clone())
                .absolute(read(&w.packets_in));
            counter!("smrnet_worker_packets_out_total", "worker" => worker.clone())
                .absolute(read(&w.packets_out));
            counter!("smrnet_worker_received_bytes_total", "worker" => worker.clone())
                .absolute(read(&w.bytes_in));
            counter!("smrnet_worker_sent_bytes_total", "worker" => worker.clone())
                .absolute(read(&w.bytes_out));
            counter!("smrnet_worker_batches_total", "worker" => worker.clone())
                .absolute(read(&w.batches));
            counter!("smrnet_worker_write_errors_total", "worker" => worker.clone())
                .absolute(read(&w.write_errors));
            counter!("smrnet_worker_sessions_total", "worker" => worker.clone())
                .absolute(read(&w.sessions));
            counter!("smrnet_worker_wakeups_sent_total", "worker" => worker.clone())
                .absolute(self.shared.stack.wakes_sent(i));
            counter!("smrnet_worker_wakeups_received_total", "worker" => worker)
                .absolute(read(&w.wakeups));
        }
    }

    /// The busy-time counters (float seconds) and the pool's reuse latency
    /// histogram, rendered by hand: the recorder's counters are integers,
    /// and the histogram arrives already bucketed.
    fn render_by_hand(&self, text: &mut String) {
        let _ = writeln!(
            text,
            "# HELP smrnet_worker_busy_seconds_total Time the worker spent working rather than waiting in poll(2).\n# TYPE smrnet_worker_busy_seconds_total counter"
        );
        for (i, w) in self.shared.stats.iter().enumerate() {
            // Relaxed: statistics only.
            let ns = w.busy_ns.load(std::sync::atomic::Ordering::Relaxed);
            let _ = writeln!(
                text,
                "smrnet_worker_busy_seconds_total{{worker=\"{i}\"}} {}",
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
