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

macro_rules! mib {
    ($( $(#[doc = $doc:literal])* $field:ident => $name:literal, )*) => {
        /// One worker's TCP counters. Write from the owning worker only.
        #[derive(Debug, Default)]
        #[repr(align(128))]
        pub struct TcpMib {
            $( $(#[doc = $doc])* pub $field: MibCounter, )*
        }

        /// Plain values of a [`TcpMib`], from one worker or summed over many.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct TcpMibSnapshot {
            $( $(#[doc = $doc])* pub $field: u64, )*
        }

        impl TcpMib {
            /// Each counter read once, Relaxed.
            pub fn snapshot(&self) -> TcpMibSnapshot {
                TcpMibSnapshot { $( $field: self.$field.get(), )* }
            }
        }

        impl TcpMibSnapshot {
            /// Adds `other` into `self`, counter by counter.
            pub fn add(&mut self, other: &TcpMibSnapshot) {
                $( self.$field = self.$field.wrapping_add(other.$field); )*
            }

            /// `(name, value)` for every counter, in declaration order; names
            /// are the Linux MIB names where one exists.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [ $( ($name, self.$field), )* ].into_iter()
            }
        }
    };
}

mib! {
    /// Connections that went SYN-SENT from CLOSED (our `connect`).
    active_opens => "ActiveOpens",
    /// Connections created when a handshake to a listener completed.
    passive_opens => "PassiveOpens",
    /// Handshakes that failed: SYN-SENT or SYN-RECEIVED to CLOSED.
    attempt_fails => "AttemptFails",
    /// Resets from ESTABLISHED or CLOSE-WAIT (either side's).
    estab_resets => "EstabResets",
    /// Times a connection entered ESTABLISHED.
    estab_entered => "EstabEntered",
    /// Times a connection left ESTABLISHED or CLOSE-WAIT.
    estab_left => "EstabLeft",
    /// TCP segments sent, retransmissions included.
    out_segs => "OutSegs",
    /// Segments retransmitted.
    retrans_segs => "RetransSegs",
    /// Segments sent with RST.
    out_rsts => "OutRsts",
    /// Connections aborted after too many retransmissions.
    timeouts => "TCPTimeouts",
    /// Fast retransmits (three duplicate ACKs or SACK evidence).
    fast_retrans => "TCPFastRetrans",
    /// Zero-window probes sent.
    window_probes => "TCPWinProbe",
    /// Keepalive probes sent.
    keepalive_probes => "TCPKeepAlive",
    /// Connections aborted because keepalive probes went unanswered.
    keepalive_timeouts => "TCPKeepAliveTimeouts",
    /// RFC 5961 challenge ACKs sent.
    challenge_acks => "TCPChallengeACK",
    /// Challenge ACKs suppressed by the rate limit.
    challenge_acks_limited => "TCPChallengeACKLimited",
    /// Segments dropped by PAWS (RFC 7323 §5).
    paws_drops => "PAWSEstab",
    /// Segments outside the receive window (answered with an ACK, dropped).
    out_of_window => "TCPOutOfWindow",
    /// Resets accepted.
    in_rsts => "TCPInRsts",
    /// Segments dropped because they acknowledge data never sent (an ACK
    /// was queued; RFC 9293 §3.10.7.4).
    drop_ack_too_new => "TCPDropAckTooNew",
    /// Segments dropped because they acknowledge data older than the peer
    /// could have seen (RFC 5961 §5.2; a challenge ACK was queued).
    drop_ack_too_old => "TCPDropAckTooOld",
    /// Synchronized-state segments dropped for carrying no ACK.
    drop_no_ack => "TCPDropNoAck",
    /// Segments SYN-SENT dropped for being neither SYN nor RST.
    drop_syn_sent_unexpected => "TCPDropSynSentUnexpected",
    /// Segments for a connection already CLOSED (not yet out of the table).
    drop_closed => "TCPDropClosed",
    /// In-window segments a TIME-WAIT dropped without reply (a plain ACK).
    drop_time_wait => "TCPDropTimeWait",
    /// Resets ignored (out of window) or challenged.
    rsts_ignored => "TCPRstsIgnored",
    /// Segments that arrived out of order and were queued.
    ofo_queued => "TCPOFOQueue",
    /// Out-of-order segments dropped because the reassembly bound was hit.
    ofo_drops => "TCPOFODrop",
    /// Connections that entered TIME-WAIT.
    time_waits => "TCPTimeWaits",
    /// TIME-WAIT connections reopened by a new SYN (RFC 6191).
    time_wait_reopens => "TCPTWRecycled",
    /// Segments for no connection and no listener, answered with RST.
    no_port => "TCPNoPort",
    /// SYNs received by a listener.
    listen_syns => "ListenSYNs",
    /// SYN-cache entries created.
    syncache_added => "syncache_added",
    /// SYNs that found the SYN cache full (per listener or globally).
    syncache_overflow => "syncache_overflow",
    /// SYN-cache entries that expired with no final ACK.
    syncache_expired => "syncache_expired",
    /// SYN-ACKs retransmitted from the SYN cache.
    syncache_retransmits => "syncache_retransmits",
    /// Handshakes completed from a SYN-cache entry.
    syncache_completed => "syncache_completed",
    /// Segments for a SYN-cache entry that were dropped (bad ACK, RST, ...).
    syncache_drops => "syncache_drops",
    /// SYN-ACKs sent carrying a cookie instead of a cache entry.
    syncookies_sent => "syncookies_sent",
    /// Final ACKs whose cookie validated into a connection.
    syncookies_recv => "syncookies_recv",
    /// Final ACKs whose cookie did not validate.
    syncookies_failed => "syncookies_failed",
    /// Completed handshakes dropped because the accept queue was full.
    listen_queue_overflow => "listen_queue_overflow",
    /// Handshakes refused because the connection pool was exhausted.
    pool_exhausted => "pool_exhausted",
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
    let mut total = TcpMibSnapshot::default();
    for m in mibs {
        total.add(&m.snapshot());
    }
    total
}
