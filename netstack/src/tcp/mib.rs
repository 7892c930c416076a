//! TCP and listener counters, one block per worker, summed on demand.
//!
//! As with [`WorkerCounters`](crate::WorkerCounters), each block has one writer
//! (the worker that owns it: the one running the code that counts, whichever
//! connection it is working on) and any number of readers, so a counter is a
//! Relaxed load and store, never a read-modify-write, and the block is aligned so
//! two workers never share a line. `CurrEstab` is a gauge made of two counters
//! (`estab_entered - estab_left`), so it too is written by one worker per block.
//!
//! Names follow Linux's `/proc/net/snmp` `Tcp:` MIB where one exists, and the
//! listener counters are named after what happened.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::tcp::conn::SegmentDrop;

smr::counter_block! {
    /// One worker's TCP counters. Write from the owning worker only.
    pub struct TcpMib(MibCounter);
    /// Plain values of a [`TcpMib`], from one worker or summed over many;
    /// `iter` names each counter by its Linux MIB name where one exists.
    pub struct TcpMibSnapshot;
    /// The Prometheus names of the TCP counters the daemon exports.
    pub mod tcp_names;
    /// Connections that went SYN-SENT from CLOSED (our `connect`).
    active_opens ("ActiveOpens")
        => Counter Count TCP_ACTIVE_OPENS = "smrnet_tcp_active_opens_total",
        "Connections that went SYN-SENT from CLOSED (Tcp: ActiveOpens).";
    /// Connections created when a handshake to a listener completed.
    passive_opens ("PassiveOpens")
        => Counter Count TCP_PASSIVE_OPENS = "smrnet_tcp_passive_opens_total",
        "Connections created by a completed handshake to a listener (Tcp: PassiveOpens).";
    /// Handshakes that failed: SYN-SENT or SYN-RECEIVED to CLOSED.
    attempt_fails ("AttemptFails")
        => Counter Count TCP_ATTEMPT_FAILS = "smrnet_tcp_attempt_fails_total",
        "Handshakes that failed (Tcp: AttemptFails).";
    /// Resets from ESTABLISHED or CLOSE-WAIT (either side's).
    estab_resets ("EstabResets")
        => Counter Count TCP_ESTAB_RESETS = "smrnet_tcp_estab_resets_total",
        "Resets from ESTABLISHED or CLOSE-WAIT (Tcp: EstabResets).";
    /// Times a connection entered ESTABLISHED.
    estab_entered ("EstabEntered");
    /// Times a connection left ESTABLISHED or CLOSE-WAIT.
    estab_left ("EstabLeft");
    /// TCP segments sent, retransmissions included.
    out_segs ("OutSegs")
        => Counter Count TCP_OUT_SEGS = "smrnet_tcp_out_segs_total",
        "TCP segments sent, retransmissions included (Tcp: OutSegs).";
    /// Segments retransmitted.
    retrans_segs ("RetransSegs")
        => Counter Count TCP_RETRANS_SEGS = "smrnet_tcp_retrans_segs_total",
        "TCP segments retransmitted (Tcp: RetransSegs).";
    /// Segments sent with RST.
    out_rsts ("OutRsts")
        => Counter Count TCP_OUT_RSTS = "smrnet_tcp_out_rsts_total",
        "TCP segments sent with RST (Tcp: OutRsts).";
    /// Connections aborted after too many retransmissions.
    timeouts ("TCPTimeouts")
        => Counter Count TCP_TIMEOUTS = "smrnet_tcp_timeouts_total",
        "Connections aborted after too many retransmissions.";
    /// Fast retransmits (three duplicate ACKs or SACK evidence).
    fast_retrans ("TCPFastRetrans")
        => Counter Count TCP_FAST_RETRANS = "smrnet_tcp_fast_retrans_total",
        "Fast retransmits.";
    /// Zero-window probes sent.
    window_probes ("TCPWinProbe")
        => Counter Count TCP_WINDOW_PROBES = "smrnet_tcp_window_probes_total",
        "Zero-window probes sent.";
    /// Keepalive probes sent.
    keepalive_probes ("TCPKeepAlive")
        => Counter Count TCP_KEEPALIVE_PROBES = "smrnet_tcp_keepalive_probes_total",
        "Keepalive probes sent.";
    /// Connections aborted because keepalive probes went unanswered.
    keepalive_timeouts ("TCPKeepAliveTimeouts")
        => Counter Count TCP_KEEPALIVE_TIMEOUTS = "smrnet_tcp_keepalive_timeouts_total",
        "Connections aborted by unanswered keepalive probes.";
    /// RFC 5961 challenge ACKs sent.
    challenge_acks ("TCPChallengeACK")
        => Counter Count TCP_CHALLENGE_ACKS = "smrnet_tcp_challenge_acks_total",
        "RFC 5961 challenge ACKs sent.";
    /// Challenge ACKs suppressed by the rate limit.
    challenge_acks_limited ("TCPChallengeACKLimited")
        => Counter Count TCP_CHALLENGE_ACKS_LIMITED = "smrnet_tcp_challenge_acks_limited_total",
        "Challenge ACKs suppressed by the rate limit.";
    /// Segments dropped by PAWS (RFC 7323 §5).
    paws_drops ("PAWSEstab")
        => Counter Count TCP_PAWS_DROPS = "smrnet_tcp_paws_drops_total",
        "Segments dropped by PAWS (RFC 7323).";
    /// Segments outside the receive window (answered with an ACK, dropped).
    out_of_window ("TCPOutOfWindow")
        => Counter Count TCP_OUT_OF_WINDOW = "smrnet_tcp_out_of_window_total",
        "Segments outside the receive window.";
    /// Resets accepted.
    in_rsts ("TCPInRsts")
        => Counter Count TCP_IN_RSTS = "smrnet_tcp_in_rsts_total",
        "Resets accepted.";
    /// Segments dropped because they acknowledge data never sent (an ACK
    /// was queued; RFC 9293 §3.10.7.4).
    drop_ack_too_new ("TCPDropAckTooNew")
        => Counter Count TCP_DROP_ACK_TOO_NEW = "smrnet_tcp_drop_ack_too_new_total",
        "Segments dropped for acknowledging data never sent.";
    /// Segments dropped because they acknowledge data older than the peer
    /// could have seen (RFC 5961 §5.2; a challenge ACK was queued).
    drop_ack_too_old ("TCPDropAckTooOld")
        => Counter Count TCP_DROP_ACK_TOO_OLD = "smrnet_tcp_drop_ack_too_old_total",
        "Segments dropped for acknowledging data older than the peer could have seen (RFC 5961).";
    /// Synchronized-state segments dropped for carrying no ACK.
    drop_no_ack ("TCPDropNoAck")
        => Counter Count TCP_DROP_NO_ACK = "smrnet_tcp_drop_no_ack_total",
        "Synchronized-state segments dropped for carrying no ACK.";
    /// Segments SYN-SENT dropped for being neither SYN nor RST.
    drop_syn_sent_unexpected ("TCPDropSynSentUnexpected")
        => Counter Count TCP_DROP_SYN_SENT_UNEXPECTED = "smrnet_tcp_drop_syn_sent_unexpected_total",
        "Segments SYN-SENT dropped for being neither SYN nor RST.";
    /// Segments for a connection already CLOSED (not yet out of the table).
    drop_closed ("TCPDropClosed")
        => Counter Count TCP_DROP_CLOSED = "smrnet_tcp_drop_closed_total",
        "Segments for a connection already closed.";
    /// In-window segments a TIME-WAIT dropped without reply (a plain ACK).
    drop_time_wait ("TCPDropTimeWait")
        => Counter Count TCP_DROP_TIME_WAIT = "smrnet_tcp_drop_time_wait_total",
        "In-window segments a TIME-WAIT dropped without reply.";
    /// Resets ignored (out of window) or challenged.
    rsts_ignored ("TCPRstsIgnored")
        => Counter Count TCP_RSTS_IGNORED = "smrnet_tcp_rsts_ignored_total",
        "Resets ignored or challenged.";
    /// Segments that arrived out of order and were queued.
    ofo_queued ("TCPOFOQueue")
        => Counter Count TCP_OFO_QUEUED = "smrnet_tcp_ofo_queued_total",
        "Out-of-order segments queued.";
    /// Out-of-order segments dropped because the reassembly bound was hit.
    ofo_drops ("TCPOFODrop")
        => Counter Count TCP_OFO_DROPS = "smrnet_tcp_ofo_drops_total",
        "Out-of-order segments dropped at the reassembly bound.";
    /// Connections that entered TIME-WAIT.
    time_waits ("TCPTimeWaits")
        => Counter Count TCP_TIME_WAITS = "smrnet_tcp_time_waits_total",
        "Connections that entered TIME-WAIT.";
    /// TIME-WAIT connections reopened by a new SYN (RFC 6191).
    time_wait_reopens ("TCPTWRecycled")
        => Counter Count TCP_TIME_WAIT_RECYCLED = "smrnet_tcp_time_wait_recycled_total",
        "TIME-WAIT connections reopened by a new SYN (RFC 6191).";
    /// Segments for no connection and no listener, answered with RST.
    no_port ("TCPNoPort")
        => Counter Count TCP_NO_PORT = "smrnet_tcp_no_port_total",
        "Segments for no connection and no listener, answered with RST.";
    /// SYNs received by a listener.
    listen_syns ("ListenSYNs")
        => Counter Count LISTEN_SYNS = "smrnet_listen_syns_total",
        "SYNs received by a listener.";
    /// SYN-cache entries created.
    syncache_added ("syncache_added")
        => Counter Count SYNCACHE_ADDED = "smrnet_syncache_added_total",
        "SYN-cache entries created.";
    /// SYNs that found the SYN cache full (per listener or globally).
    syncache_overflow ("syncache_overflow")
        => Counter Count SYNCACHE_OVERFLOWS = "smrnet_syncache_overflows_total",
        "SYNs that found the SYN cache full.";
    /// SYN-cache entries that expired with no final ACK.
    syncache_expired ("syncache_expired")
        => Counter Count SYNCACHE_EXPIRED = "smrnet_syncache_expired_total",
        "SYN-cache entries that expired without a final ACK.";
    /// SYN-ACKs retransmitted from the SYN cache.
    syncache_retransmits ("syncache_retransmits")
        => Counter Count SYNCACHE_RETRANSMITS = "smrnet_syncache_retransmits_total",
        "SYN-ACKs retransmitted from the SYN cache.";
    /// Handshakes completed from a SYN-cache entry.
    syncache_completed ("syncache_completed")
        => Counter Count SYNCACHE_COMPLETED = "smrnet_syncache_completed_total",
        "Handshakes completed from a SYN-cache entry.";
    /// Segments for a SYN-cache entry that were dropped (bad ACK, RST, ...).
    syncache_drops ("syncache_drops")
        => Counter Count SYNCACHE_DROPS = "smrnet_syncache_drops_total",
        "Segments for a SYN-cache entry that were dropped.";
    /// SYN-ACKs sent carrying a cookie instead of a cache entry.
    syncookies_sent ("syncookies_sent")
        => Counter Count SYNCOOKIES_SENT = "smrnet_syncookies_sent_total",
        "SYN-ACKs sent with a SYN cookie.";
    /// Final ACKs whose cookie validated into a connection.
    syncookies_recv ("syncookies_recv")
        => Counter Count SYNCOOKIES_VALIDATED = "smrnet_syncookies_validated_total",
        "Final ACKs whose SYN cookie validated.";
    /// Final ACKs whose cookie did not validate.
    syncookies_failed ("syncookies_failed")
        => Counter Count SYNCOOKIES_FAILED = "smrnet_syncookies_failed_total",
        "Final ACKs whose SYN cookie did not validate.";
    /// Completed handshakes dropped because the accept queue was full.
    listen_queue_overflow ("listen_queue_overflow")
        => Counter Count LISTEN_QUEUE_OVERFLOWS = "smrnet_listen_queue_overflows_total",
        "Completed handshakes dropped because the accept queue was full.";
    /// Handshakes refused because the connection pool was exhausted.
    pool_exhausted ("pool_exhausted")
        => Counter Count TCP_POOL_EXHAUSTED_DROPS = "smrnet_tcp_pool_exhausted_drops_total",
        "Handshakes refused because the connection pool was exhausted.";
}

/// A counter with one writer: a Relaxed load and store, no read-modify-write.
#[derive(Debug, Default)]
pub struct MibCounter(AtomicU64);

impl MibCounter {
    /// Adds one. Only the owning worker calls this.
    pub fn bump(&self) {
        self.add(1);
    }

    /// Adds `n`. Only the owning worker calls this.
    pub fn add(&self, n: u64) {
        smr::stat::add(&self.0, n);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl smr::stat::Cell for MibCounter {
    fn value(&self) -> u64 {
        self.get()
    }
}

impl TcpMib {
    /// The counter of one reason `Tcb::on_segment` drops a segment for. The
    /// match is exhaustive, so a new reason does not build without its
    /// counter; each reason has exactly one counter and is counted once, by
    /// `Tcb::on_segment`.
    pub fn segment_drop(&self, reason: SegmentDrop) -> &MibCounter {
        match reason {
            SegmentDrop::OutOfWindow => &self.out_of_window,
            SegmentDrop::Paws => &self.paws_drops,
            SegmentDrop::BadRst => &self.rsts_ignored,
            SegmentDrop::AckTooNew => &self.drop_ack_too_new,
            SegmentDrop::AckTooOld => &self.drop_ack_too_old,
            SegmentDrop::NoAck => &self.drop_no_ack,
            SegmentDrop::Unexpected => &self.drop_syn_sent_unexpected,
            SegmentDrop::Closed => &self.drop_closed,
        }
    }
}

impl TcpMibSnapshot {
    /// `CurrEstab`: connections in ESTABLISHED or CLOSE-WAIT now (meaningful
    /// on the sum over all workers).
    pub fn curr_estab(&self) -> u64 {
        self.estab_entered.saturating_sub(self.estab_left)
    }
}

/// The sum of several workers' blocks.
pub fn sum_mibs<'a>(mibs: impl IntoIterator<Item = &'a TcpMib>) -> TcpMibSnapshot {
    TcpMibSnapshot::sum(mibs)
}
