//! What to send next: an RST, the SYN, a retransmission, new data under the
//! peer's window and the congestion window (held back by Nagle), the FIN,
//! probes, and finally a bare ACK.
//!
//! Every segment but an RST carries the current ACK and window, so any segment
//! sent settles a pending ACK. The window we advertise never moves its right
//! edge left (RFC 9293 §3.8.6.2.2), and it moves right only in steps worth a
//! segment (receiver-side silly window avoidance).

use super::timestamps::ts_clock;
use super::*;
use crate::tcp::options::{SackBlocks, TcpOptions, Timestamps};
use crate::wire::{TcpFlags, TcpHeader};

impl Tcb {
    /// The next segment to send, if any; call until `None`. The Stack emits it
    /// with `emit_tcp(local.ip(), remote.ip(), ..)`.
    pub fn poll_transmit(&mut self, now: Instant, mib: &TcpMib) -> Option<Transmit<'_>> {
        self.poll_transmit_limited(now, mib, 0)
    }

    /// As [`poll_transmit`](Self::poll_transmit), for a link that segments
    /// (TCP segmentation offload): new data may leave as one segment of up
    /// to `max_payload` octets, a whole number of segments of the current
    /// payload room (the MSS less any SACK blocks) unless the tail is one
    /// the software path would also send short now (no Nagle hold, no
    /// window cut), with [`Transmit::segment_size`] set to that room.
    /// Retransmissions, the SYN, the FIN alone and bare ACKs stay single
    /// segments. A `max_payload` at or below the room changes nothing: the
    /// segments are exactly those of `poll_transmit`.
    pub fn poll_transmit_limited(
        &mut self,
        now: Instant,
        mib: &TcpMib,
        max_payload: usize,
    ) -> Option<Transmit<'_>> {
        self.settle(mib);
        if let Some((seq, ack)) = self.rst_pending.take() {
            mib.out_rsts.bump();
            mib.out_segs.bump();
            let mut header = self.bare_header(seq);
            header.flags = TcpFlags::RST;
            if let Some(ack) = ack {
                header.ack = ack;
                header.flags = TcpFlags::RST | TcpFlags::ACK;
            }
            return Some(Transmit {
                header,
                payload: &[],
                segment_size: None,
            });
        }
        match self.state {
            State::Closed | State::Listen => None,
            State::SynSent | State::SynReceived => self.poll_syn(now, mib),
            _ => self.poll_synchronized(now, mib, max_payload),
        }
    }

    /// The SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED after a simultaneous open),
    /// when SND.NXT says it is not yet out; otherwise only a pending ACK.
    fn poll_syn(&mut self, now: Instant, mib: &TcpMib) -> Option<Transmit<'_>> {
        if self.snd_nxt != self.iss {
            return self.poll_ack(now, mib);
        }
        let syn_ack = self.state == State::SynReceived;
        if self.snd_max != self.iss {
            mib.retrans_segs.bump();
            self.rtt_probe = None;
        } else {
            self.rtt_probe = Some((self.iss, now));
        }
        self.snd_nxt = self.iss + 1;
        self.snd_max = self.snd_max.max(self.snd_nxt);
        if self.timers.rto.is_none() {
            self.timers.rto = Some(now + self.rtt.rto());
        }
        let mut header = self.bare_header(self.iss);
        header.flags = TcpFlags::SYN;
        // RFC 7323 §2.2: the window in a SYN is never scaled.
        let window = self.limits.recv_buffer.min(u32::from(u16::MAX));
        header.window = window as u16;
        let mut options = TcpOptions {
            mss: Some(self.limits.our_mss),
            ..TcpOptions::default()
        };
        // On a SYN-ACK, answer only what the peer offered (RFC 7323 §1.3,
        // RFC 2018 §2); on a SYN, offer what the config allows.
        if !syn_ack || self.snd_wscale_offered() {
            options.window_scale = Some(self.rcv_wscale);
        }
        options.sack_permitted = self.sack_on;
        if self.ts_on {
            options.timestamps = Some(Timestamps {
                value: ts_clock(now, self.ts_offset),
                echo_reply: if syn_ack { self.ts_recent } else { 0 },
            });
        }
        if syn_ack {
            header.flags = TcpFlags::SYN | TcpFlags::ACK;
            header.ack = self.rcv_nxt;
            self.rcv_adv = self.rcv_nxt + window as usize;
            self.note_ack_sent();
        }
        header.options = options;
        mib.out_segs.bump();
        Some(Transmit {
            header,
            payload: &[],
            segment_size: None,
        })
    }

    /// In SYN-RECEIVED reached by a simultaneous open, the peer's SYN decided
    /// whether scaling is on: it is on iff `rcv_wscale` survived (see input).
    fn snd_wscale_offered(&self) -> bool {
        self.wscale_on
    }

    fn poll_synchronized(
        &mut self,
        now: Instant,
        mib: &TcpMib,
        max_payload: usize,
    ) -> Option<Transmit<'_>> {
        if self.state == State::TimeWait {
            return self.poll_ack(now, mib);
        }
        if core::mem::take(&mut self.retransmit_now) {
            // Only what is outstanding: a later ACK may have covered it all.
            let outstanding = usize::try_from(self.snd_max - self.snd_una).unwrap_or(0);
            let (seq, len, fin) = self.segment_at(self.snd_una, outstanding);
            if len > 0 || fin {
                return Some(self.data_segment(now, seq, len, fin, mib));
            }
        }
        if core::mem::take(&mut self.sack_rexmit)
            && self.recover.is_some()
            && let Some((hole, hole_len)) = self
                .scoreboard
                .next_hole(self.rexmit_next.max(self.snd_una))
        {
            let (seq, len, fin) = self.segment_at(hole, hole_len);
            if len > 0 || fin {
                self.rexmit_next = seq + len;
                return Some(self.data_segment(now, seq, len, fin, mib));
            }
        }
        let buffered = self.send_buf.len();
        let offset = usize::try_from(self.snd_nxt - self.snd_una).unwrap_or(0);
        let unsent = buffered.saturating_sub(offset);
        let window = self.snd_wnd.min(self.cwnd.max(u32::from(self.snd_mss)));
        let usable = usize::try_from((self.snd_una + window as usize) - self.snd_nxt).unwrap_or(0);
        let in_flight = self.snd_nxt != self.snd_una;
        if unsent > 0 && usable > 0 {
            let room = self.payload_room();
            if room > 0
                && max_payload > room
                && let Some(len) = self.super_segment_len(unsent, usable, room, max_payload)
            {
                let fin = len == unsent && self.fin_queued;
                let seq = self.snd_nxt;
                let mut t = self.data_segment(now, seq, len, fin, mib);
                // `super_segment_len` returns more than one room, and a
                // room is at most the MSS, a `u16`.
                t.segment_size = u16::try_from(room).ok();
                // Each segment the link cuts is a segment sent.
                let extra = len.div_ceil(room).saturating_sub(1);
                for _ in 0..extra {
                    mib.out_segs.bump();
                }
                return Some(t);
            }
            let len = unsent.min(usable).min(room);
            let full = len == room;
            let all = len == unsent;
            // RFC 9293 §3.7.4 Nagle: with data in flight, a short segment waits
            // for the ACK unless it ends the stream. Sender-side SWS avoidance
            // (§3.8.6.2.1): a short segment cut by the window also waits while
            // anything is in flight, since the ACK will open the window.
            let nagle_holds = self.nagle && all && !self.fin_queued;
            let window_cut = !all;
            if full || !in_flight || !(nagle_holds || window_cut) {
                let fin = all && self.fin_queued;
                let seq = self.snd_nxt;
                return Some(self.data_segment(now, seq, len, fin, mib));
            }
        }
        if unsent == 0 && self.fin_queued && self.fin_unsent() {
            let seq = self.snd_nxt;
            return Some(self.data_segment(now, seq, 0, true, mib));
        }
        if unsent > 0 && self.snd_wnd == 0 && !in_flight && self.timers.persist.is_none() {
            // RFC 9293 §3.8.6.1: keep probing a zero window.
            self.timers.rto = None;
            self.timers.persist = Some(now + self.persist_interval());
        }
        if core::mem::take(&mut self.probe_pending) {
            mib.window_probes.bump();
            return Some(self.probe_segment(now, mib));
        }
        if core::mem::take(&mut self.keepalive_pending) {
            mib.keepalive_probes.bump();
            return Some(self.probe_segment(now, mib));
        }
        self.poll_ack(now, mib)
    }

    /// A segment whose sequence number is one below SND.UNA and that carries
    /// no data: the peer must answer it with an ACK showing its window. Used for
    /// zero-window probes and keepalives alike.
    fn probe_segment(&mut self, now: Instant, mib: &TcpMib) -> Transmit<'static> {
        mib.out_segs.bump();
        let header = self.ack_header(now, SeqNum(self.snd_una.0.wrapping_sub(1)));
        Transmit {
            header,
            payload: &[],
            segment_size: None,
        }
    }

    fn poll_ack(&mut self, now: Instant, mib: &TcpMib) -> Option<Transmit<'static>> {
        if self.ack_due != AckDue::Now && self.dup_acks_owed == 0 {
            return None;
        }
        self.dup_acks_owed = self.dup_acks_owed.saturating_sub(1);
        mib.out_segs.bump();
        let seq = self.snd_nxt;
        let header = self.ack_header(now, seq);
        Some(Transmit {
            header,
            payload: &[],
            segment_size: None,
        })
    }

    /// The FIN is queued and SND.NXT has not passed it (never sent, or a
    /// timeout rewound SND.NXT to before it).
    fn fin_unsent(&self) -> bool {
        match self.fin_seq {
            None => true,
            Some(fin) => self.snd_nxt.le(fin),
        }
    }

    /// What a segment starting at `seq` holds: up to one MSS of buffered data
    /// (and no more than `max`), plus the FIN if it follows that data.
    fn segment_at(&self, seq: SeqNum, max: usize) -> (SeqNum, usize, bool) {
        let offset = usize::try_from(seq - self.snd_una).unwrap_or(0);
        let left = self.send_buf.len().saturating_sub(offset);
        let len = left.min(self.payload_room()).min(max);
        let fin = len == left && self.fin_seq == Some(seq + len);
        (seq, len, fin)
    }

    /// Builds a data (and/or FIN) segment at `seq` and advances SND.NXT past it.
    fn data_segment(
        &mut self,
        now: Instant,
        seq: SeqNum,
        len: usize,
        fin: bool,
        mib: &TcpMib,
    ) -> Transmit<'_> {
        let end = seq + len + usize::from(fin);
        if seq.lt(self.snd_max) {
            mib.retrans_segs.bump();
            // Karn: a retransmitted range cannot be timed without timestamps.
            if let Some((probe, _)) = self.rtt_probe
                && probe.ge(seq)
                && probe.lt(end)
            {
                self.rtt_probe = None;
            }
        } else if self.rtt_probe.is_none() {
            self.rtt_probe = Some((seq, now));
        }
        if fin {
            self.fin_seq = Some(seq + len);
        }
        if end.gt(self.snd_nxt) {
            self.snd_nxt = end;
        }
        self.snd_max = self.snd_max.max(self.snd_nxt);
        if self.timers.rto.is_none() {
            self.timers.rto = Some(now + self.rtt.rto());
        }
        self.timers.persist = None;
        let mut header = self.ack_header(now, seq);
        if fin {
            header.flags = header.flags | TcpFlags::FIN;
        }
        if len > 0 && seq + len == self.snd_una + self.send_buf.len() {
            header.flags = header.flags | TcpFlags::PSH;
        }
        mib.out_segs.bump();
        let offset = usize::try_from(seq - self.snd_una).unwrap_or(0);
        Transmit {
            header,
            payload: self.send_buf.slice(offset, len),
            segment_size: None,
        }
    }

    /// Payload octets that fit in one segment now: the MSS less any SACK
    /// blocks the segment will carry (timestamps are already taken out of the
    /// MSS), so the datagram never exceeds what the peer's MSS promised.
    fn payload_room(&self) -> usize {
        let mss = usize::from(self.snd_mss);
        if !(self.sack_on && self.recv_buf.has_ofo()) {
            return mss;
        }
        let room = if self.ts_on { 3 } else { 4 };
        let blocks = self
            .recv_buf
            .sack_blocks()
            .into_iter()
            .flatten()
            .take(room)
            .count();
        // Two NOPs, kind and length, then eight octets per block.
        mss.saturating_sub(4 + 8 * blocks).max(1)
    }

    /// The payload of one super-segment, if more than one `room` of new
    /// data may go now: `unsent` and `usable` (the window) bound it, and so
    /// does `max_payload` (rounded down to whole rooms). The software path
    /// would send full segments back to back and then the tail only if
    /// neither Nagle (a short last piece of the buffer with data in flight,
    /// no FIN queued) nor the window (a piece cut short by it) holds it; so
    /// the tail rides along on the same terms, else it is left for later.
    fn super_segment_len(
        &self,
        unsent: usize,
        usable: usize,
        room: usize,
        max_payload: usize,
    ) -> Option<usize> {
        let limit = max_payload - max_payload % room;
        let mut len = unsent.min(usable).min(limit);
        let all = len == unsent;
        let tail_goes = all && (!self.nagle || self.fin_queued);
        if !tail_goes {
            len -= len % room;
        }
        (len > room).then_some(len)
    }

    /// Ports and sequence number, nothing else.
    pub(super) fn bare_header(&self, seq: SeqNum) -> TcpHeader {
        TcpHeader {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq,
            ..TcpHeader::default()
        }
    }

    /// A header with ACK, window, timestamps and SACK blocks filled in; sending
    /// it settles any pending ACK.
    fn ack_header(&mut self, now: Instant, seq: SeqNum) -> TcpHeader {
        let mut header = self.bare_header(seq);
        header.flags = TcpFlags::ACK;
        header.ack = self.rcv_nxt;
        header.window = self.advertise_window();
        if self.ts_on {
            header.options.timestamps = Some(Timestamps {
                value: ts_clock(now, self.ts_offset),
                echo_reply: self.ts_recent,
            });
        }
        if self.sack_on && self.recv_buf.has_ofo() {
            let mut blocks = SackBlocks::default();
            // With timestamps, three blocks fit (RFC 2018 §3).
            let room = if self.ts_on { 3 } else { 4 };
            for b in self.recv_buf.sack_blocks().into_iter().flatten().take(room) {
                blocks.push(b);
            }
            header.options.sack_blocks = blocks;
        }
        self.note_ack_sent();
        header
    }

    fn note_ack_sent(&mut self) {
        self.last_ack_sent = self.rcv_nxt;
        self.ack_due = AckDue::No;
        self.unacked_segs = 0;
    }

    /// Free receive buffer space, in octets.
    fn recv_space(&self) -> u32 {
        self.limits
            .recv_buffer
            .saturating_sub(u32::try_from(self.recv_buf.len()).unwrap_or(u32::MAX))
    }

    /// The window currently offered: from RCV.NXT to the advertised right edge.
    pub(super) fn rcv_wnd(&self) -> u32 {
        u32::try_from(self.rcv_adv - self.rcv_nxt).unwrap_or(0)
    }

    /// Moves the right edge out if that gains at least a segment (or half the
    /// buffer), and returns the window field to send, scaled.
    fn advertise_window(&mut self) -> u16 {
        let edge = self.rcv_nxt + self.recv_space() as usize;
        let gain = u32::try_from(edge - self.rcv_adv).unwrap_or(0);
        let step = u32::from(self.limits.our_mss)
            .min(self.limits.recv_buffer / 2)
            .max(1);
        if gain >= step || (gain > 0 && self.rcv_wnd() == 0 && gain == self.recv_space()) {
            self.rcv_adv = edge;
        }
        self.advertised_window_field()
    }

    /// The window field for the right edge already advertised.
    pub(super) fn advertised_window_field(&self) -> u16 {
        let field = self.rcv_wnd() >> self.rcv_wscale;
        u16::try_from(field).unwrap_or(u16::MAX)
    }

    /// After the application read: queue a window update if the window we
    /// could offer now is larger by a segment or half the buffer.
    pub(super) fn maybe_window_update(&mut self) {
        if !self.state.is_synchronized() || self.peer_fin {
            return;
        }
        let edge = self.rcv_nxt + self.recv_space() as usize;
        let gain = u32::try_from(edge - self.rcv_adv).unwrap_or(0);
        let step = (2 * u32::from(self.limits.our_mss)).min(self.limits.recv_buffer / 2);
        if gain >= step.max(1) {
            self.ack_due = AckDue::Now;
        }
    }

    /// The persist interval: the RTO, doubled per unanswered probe, capped.
    pub(super) fn persist_interval(&self) -> Duration {
        let factor = 1u32 << self.persist_out.min(10);
        self.rtt
            .base_rto()
            .saturating_mul(factor)
            .min(Duration::from_secs(60))
    }
}
