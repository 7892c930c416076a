//! The final step of a passive handshake: a non-SYN segment to a listening
//! port, checked against its SYN-cache entry or, failing that, against the SYN
//! cookie its acknowledgment number may carry.
//!
//! The checks follow RFC 9293 §3.10.7.4 for SYN-RECEIVED, in its order
//! (sequence number, RST, SYN, ACK), with RFC 7323's timestamp rules and RFC
//! 5961's exact-match rule for resets. Invariant: an entry leaves the cache
//! only on an exact RST or a completed handshake; a segment that fails any
//! check leaves it untouched, so a forger cannot tear down a real peer's
//! handshake without knowing its ISN.

use core::net::SocketAddr;

use super::entry::TupleKey;
use super::table::lock;
use super::{CookiePolicy, HandshakeDisposition, HandshakeDrop, SynCache};
use crate::tcp::handshake::Handshake;
use crate::tcp::mib::TcpMib;
use crate::tcp::options::TcpOptions;
use crate::tcp::seq::SeqNum;
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpHeader, TcpSegment};

impl SynCache {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_segment(
        &self,
        now: Instant,
        listener_id: u64,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &TcpSegment,
        can_accept: bool,
        mib: &TcpMib,
    ) -> HandshakeDisposition {
        // The tuple alone finds the entry. Entries of a listener that closed
        // without `drain_listener` complete into whichever listener now owns
        // the port, as a new SYN would.
        let _ = listener_id;
        let header = &seg.header;
        let flags = header.flags;
        let key = TupleKey::new(local, remote);
        let shard = self.shard(local, remote);
        let mut map = lock(&shard.map);
        let Some(entry) = map.entries.get(&key).copied() else {
            drop(map);
            return self.without_entry(now, local, remote, seg, can_accept, mib);
        };
        let agreed = entry.negotiated();
        let rcv_nxt = SeqNum(entry.irs) + 1usize;
        let window = u32::from(self.syn_window()).max(1);

        // RFC 9293 §3.10.7.4 (SYN-RECEIVED), "second, check the RST bit ...
        // If this connection was initiated with a passive OPEN (i.e., came
        // from the LISTEN state), then return this connection to LISTEN state
        // and return": for us, forget the entry. RFC 5961 §3.2 narrows the
        // acceptable RST to one whose sequence number is exactly RCV.NXT,
        // which is what a real peer's reset of our SYN-ACK carries, so a blind
        // attacker must guess the peer's ISN exactly. Its challenge ACK for an
        // in-window RST is not sent: the peer is not synchronized and would
        // drop it. This exact test is stricter than the sequence check, so it
        // comes first.
        if flags.contains(TcpFlags::RST) {
            if header.seq != rcv_nxt {
                mib.rsts_ignored.bump();
                let why = if header.seq.in_window(rcv_nxt, window) {
                    HandshakeDrop::RstInWindow
                } else {
                    HandshakeDrop::RstOutOfWindow
                };
                return HandshakeDisposition::Dropped(why);
            }
            map.entries.remove(&key);
            self.put_back(shard, entry.listener());
            mib.in_rsts.bump();
            return HandshakeDisposition::Reset;
        }
        // RFC 7323 §3.2: "If a non-RST segment is received without a TSopt, a
        // TCP SHOULD silently drop the segment." §5.3 (PAWS): a TSval older
        // than TS.Recent marks an old duplicate.
        if let Some(recent) = agreed.ts_recent {
            match header.options.timestamps {
                None => {
                    mib.syncache_drops.bump();
                    return HandshakeDisposition::Dropped(HandshakeDrop::MissingTimestamp);
                }
                Some(ts) if SeqNum(ts.value).lt(SeqNum(recent)) => {
                    mib.paws_drops.bump();
                    return HandshakeDisposition::Dropped(HandshakeDrop::Paws);
                }
                Some(_) => {}
            }
        }
        // "first check sequence number ... If an incoming segment is not
        // acceptable, an acknowledgment should be sent in reply". We drop it
        // without one: our SYN-ACK retransmission tells the peer the same.
        if !header.seq.in_window(rcv_nxt, window) {
            mib.out_of_window.bump();
            return HandshakeDisposition::Dropped(HandshakeDrop::OutOfWindow);
        }
        // "fourth, check the SYN bit": a SYN here belongs to on_syn; with ACK
        // it is no handshake of ours.
        if flags.contains(TcpFlags::SYN) {
            mib.syncache_drops.bump();
            return HandshakeDisposition::Dropped(HandshakeDrop::UnexpectedSyn);
        }
        // "fifth, check the ACK field, if the ACK bit is off drop the segment".
        if !flags.contains(TcpFlags::ACK) {
            mib.syncache_drops.bump();
            return HandshakeDisposition::Dropped(HandshakeDrop::NoAck);
        }
        // "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED ... If the
        // segment acknowledgment is not acceptable, form a reset segment
        // <SEQ=SEG.ACK><CTL=RST> and send it." Before our SYN-ACK is
        // acknowledged SND.UNA = ISS and SND.NXT = ISS + 1.
        let iss = self.isn.isn(local, remote, entry.syn_at());
        if header.ack != iss + 1usize {
            mib.syncache_drops.bump();
            return HandshakeDisposition::Reply(reset(local, remote, header.ack));
        }
        if !can_accept {
            mib.listen_queue_overflow.bump();
            return HandshakeDisposition::Dropped(HandshakeDrop::AcceptQueueFull);
        }
        map.entries.remove(&key);
        self.put_back(shard, entry.listener());
        drop(map);
        mib.syncache_completed.bump();
        // RFC 7323 §4.3: TS.Recent takes the TSval of the segment that begins
        // at the left edge of the window (the first byte we have not ACKed).
        let ts_recent = match (agreed.ts_recent, header.options.timestamps) {
            (Some(_), Some(ts)) if header.seq == rcv_nxt => Some(ts.value),
            (recent, _) => recent,
        };
        HandshakeDisposition::Established(Handshake {
            local,
            remote,
            iss,
            irs: SeqNum(entry.irs),
            peer_mss: agreed.peer_mss,
            window_scale: agreed
                .peer_window_scale
                .map(|peer| (peer, self.our_window_scale())),
            ts_recent,
            sack_permitted: agreed.sack_permitted,
            syn_at: entry.syn_at(),
            from_cookie: false,
        })
    }

    /// A non-SYN segment for a tuple without an entry: a final ACK whose
    /// SYN-ACK carried a cookie, or nothing of ours.
    fn without_entry(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &TcpSegment,
        can_accept: bool,
        mib: &TcpMib,
    ) -> HandshakeDisposition {
        let header = &seg.header;
        let flags = header.flags;
        if flags.contains(TcpFlags::RST) {
            return HandshakeDisposition::Dropped(HandshakeDrop::RstNoEntry);
        }
        if !flags.contains(TcpFlags::ACK) {
            return HandshakeDisposition::Dropped(HandshakeDrop::NoAck);
        }
        if flags.contains(TcpFlags::SYN) || self.config.cookies == CookiePolicy::Off {
            return HandshakeDisposition::NotOurs;
        }
        // Any ACK to a listening port is checked: a blind forger succeeds with
        // probability 2^-28 per segment (see the cookie module), which is the
        // same odds whether or not we sent cookies lately.
        let cookie = SeqNum(header.ack.0.wrapping_sub(1));
        let echoed = if self.tcp.timestamps {
            header.options.timestamps.map(|ts| ts.echo_reply)
        } else {
            None
        };
        let Some(options) = self.cookies.validate(cookie, local, remote, echoed, now) else {
            mib.syncookies_failed.bump();
            return HandshakeDisposition::NotOurs;
        };
        if !can_accept {
            mib.listen_queue_overflow.bump();
            return HandshakeDisposition::Dropped(HandshakeDrop::AcceptQueueFull);
        }
        mib.syncookies_recv.bump();
        HandshakeDisposition::Established(Handshake {
            local,
            remote,
            iss: cookie,
            irs: SeqNum(header.seq.0.wrapping_sub(1)),
            peer_mss: options.mss,
            window_scale: options
                .window_scale
                .map(|peer| (peer, self.our_window_scale())),
            ts_recent: if options.timestamps {
                header.options.timestamps.map(|ts| ts.value)
            } else {
                None
            },
            sack_permitted: options.sack_permitted && self.tcp.sack,
            // The SYN's time was not kept; the ACK's is the closest we know.
            syn_at: now,
            from_cookie: true,
        })
    }
}

/// RFC 9293 §3.10.7.4: the reset answering an unacceptable ACK,
/// `<SEQ=SEG.ACK><CTL=RST>`.
fn reset(local: SocketAddr, remote: SocketAddr, seq: SeqNum) -> TcpHeader {
    TcpHeader {
        src_port: local.port(),
        dst_port: remote.port(),
        seq,
        ack: SeqNum(0),
        flags: TcpFlags::RST,
        window: 0,
        urgent: 0,
        options: TcpOptions::default(),
    }
}
