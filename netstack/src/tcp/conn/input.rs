//! Segment arrival, in the order of RFC 9293 §3.10.7.
//!
//! SYN-SENT has its own path (§3.10.7.3). Every other state runs the same
//! sequence of checks (§3.10.7.4) with RFC 7323 PAWS in front and RFC 5961's
//! stricter RST, SYN and ACK rules in place of the originals: a check either
//! lets the segment through to the next one or ends with a named disposition.
//! Nothing here trusts a field of the segment for indexing or arithmetic:
//! sequence distances are wrapping and every copy is bounded by the window.
//! Every `Dropped` reason is counted exactly once, by `on_segment` through
//! [`TcpMib::segment_drop`], so no caller has to remember to.

use super::timestamps::ts_clock;
use super::*;
use crate::wire::TcpFlags;

/// Timestamps echoed further back than this are not RTT samples (a bogus or
/// very stale TSecr would otherwise set SRTT to minutes).
const MAX_TS_RTT_MS: u32 = 60_000;

/// Duplicate ACKs kept owed between two `poll_transmit` calls; more than
/// enough to trigger fast retransmit, few enough to bound the burst.
const MAX_DUP_ACKS_OWED: u8 = 8;

impl Tcb {
    /// Processes one segment for this connection. Any reply it calls for
    /// (ACK, RST, challenge ACK) is queued for [`poll_transmit`](Self::poll_transmit).
    pub fn on_segment(
        &mut self,
        now: Instant,
        seg: &TcpSegment<'_>,
        mib: &TcpMib,
    ) -> SegmentDisposition {
        let disposition = match self.state {
            State::Closed | State::Listen => SegmentDisposition::Dropped(SegmentDrop::Closed),
            State::SynSent => self.on_segment_syn_sent(now, seg, mib),
            _ => self.on_segment_synchronized(now, seg, mib),
        };
        if let SegmentDisposition::Dropped(reason) = disposition {
            mib.segment_drop(reason).bump();
        }
        self.settle(mib);
        disposition
    }

    /// §3.10.7.3, SYN-SENT.
    fn on_segment_syn_sent(
        &mut self,
        now: Instant,
        seg: &TcpSegment<'_>,
        mib: &TcpMib,
    ) -> SegmentDisposition {
        let h = &seg.header;
        let flags = h.flags;
        // > If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless the RST
        // > bit is set, if so drop the segment and return).
        let ack_ok = flags.contains(TcpFlags::ACK) && self.iss.lt(h.ack) && h.ack.le(self.snd_max);
        if flags.contains(TcpFlags::ACK) && !ack_ok {
            if flags.contains(TcpFlags::RST) {
                return SegmentDisposition::Dropped(SegmentDrop::BadRst);
            }
            self.rst_pending = Some((h.ack, None));
            return SegmentDisposition::Rejected;
        }
        if flags.contains(TcpFlags::RST) {
            // > If the ACK was acceptable, then signal to the user "error:
            // > connection reset", drop the segment, enter CLOSED state.
            // RFC 5961 §3.2 keeps this: only an RST acknowledging our SYN counts.
            if !ack_ok {
                return SegmentDisposition::Dropped(SegmentDrop::BadRst);
            }
            mib.in_rsts.bump();
            mib.attempt_fails.bump();
            self.terminate(Some(ConnError::Refused));
            return SegmentDisposition::Reset;
        }
        if !flags.contains(TcpFlags::SYN) {
            return SegmentDisposition::Dropped(SegmentDrop::Unexpected);
        }
        self.last_heard = now;
        self.irs = h.seq;
        self.rcv_nxt = h.seq + 1;
        self.take_syn_options(seg);
        let window = self.limits.recv_buffer.min(u32::from(u16::MAX));
        self.rcv_adv = self.rcv_nxt + window as usize;
        if let Some(ts) = h.options.timestamps.filter(|_| self.ts_on) {
            self.ts_recent = ts.value;
        }
        if ack_ok {
            // > If SND.UNA > ISS (our SYN has been ACKed), change the connection
            // > state to ESTABLISHED, form an ACK segment and send it.
            self.take_rtt_sample(now, seg, h.ack);
            self.snd_una = h.ack;
            self.snd_nxt = self.snd_nxt.max(h.ack);
            self.timers.rto = None;
            self.retries = 0;
            // A SYN's window is never scaled. Set, not `update_window`: SND.WL1
            // has no meaning before the peer's SYN, and the WL1 < SEG.SEQ test
            // against its initial value fails for half of all IRS values.
            self.snd_wnd = u32::from(h.window);
            self.snd_wl1 = h.seq;
            self.snd_wl2 = h.ack;
            self.max_snd_wnd = self.snd_wnd;
            self.init_cwnd();
            self.enter_established();
            self.ack_due = AckDue::Now;
            return SegmentDisposition::Established;
        }
        // > Otherwise, enter SYN-RECEIVED, form a SYN,ACK segment and send it.
        // Rewinding SND.NXT to the ISS makes poll_transmit send the SYN again,
        // now with an ACK.
        self.snd_wl1 = h.seq;
        self.snd_wnd = u32::from(h.window);
        self.max_snd_wnd = self.snd_wnd;
        self.set_state(State::SynReceived);
        self.snd_nxt = self.iss;
        self.timers.rto = None;
        SegmentDisposition::SimultaneousOpen
    }

    /// The options of the peer's SYN decide what this connection uses.
    fn take_syn_options(&mut self, seg: &TcpSegment<'_>) {
        let o = &seg.header.options;
        match o.window_scale {
            Some(shift) => {
                self.snd_wscale = shift.min(MAX_WINDOW_SCALE);
                self.wscale_on = true;
            }
            None => {
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
                self.wscale_on = false;
            }
        }
        self.ts_on = self.ts_on && o.timestamps.is_some();
        self.sack_on = self.sack_on && o.sack_permitted;
        self.set_peer_mss(o.mss.unwrap_or(DEFAULT_PEER_MSS));
    }

    /// §3.10.7.4: SYN-RECEIVED and the synchronized states.
    fn on_segment_synchronized(
        &mut self,
        now: Instant,
        seg: &TcpSegment<'_>,
        mib: &TcpMib,
    ) -> SegmentDisposition {
        let h = &seg.header;
        let mut flags = h.flags;
        let mut seq = h.seq;
        let mut payload = seg.payload;
        // Simultaneous open: the peer's SYN-ACK repeats the SYN we already
        // took. Its SYN is old news; what matters is the ACK it carries.
        if self.state == State::SynReceived && flags.contains(TcpFlags::SYN) && seq == self.irs {
            flags = TcpFlags(flags.0 & !TcpFlags::SYN.0);
            seq += 1;
        }
        let seg_len = payload.len()
            + usize::from(flags.contains(TcpFlags::SYN))
            + usize::from(flags.contains(TcpFlags::FIN));
        let rst = flags.contains(TcpFlags::RST);

        // RFC 7323 §5.3 PAWS: a segment whose TSval is older than TS.Recent is
        // an old duplicate. RSTs are exempt (§5.3 R1 note).
        let peer_ts = h.options.timestamps.filter(|_| self.ts_on);
        if let Some(ts) = peer_ts
            && !rst
            && (ts.value.wrapping_sub(self.ts_recent) as i32) < 0
        {
            self.ack_due = AckDue::Now;
            return SegmentDisposition::Dropped(SegmentDrop::Paws);
        }

        // First: is the sequence number acceptable?
        let wnd = self.rcv_wnd();
        let acceptable = match (seg_len, wnd) {
            (0, 0) => seq == self.rcv_nxt,
            (0, _) => seq.in_window(self.rcv_nxt, wnd),
            (_, 0) => false,
            (len, _) => {
                seq.in_window(self.rcv_nxt, wnd) || (seq + (len - 1)).in_window(self.rcv_nxt, wnd)
            }
        };
        // > If the RCV.WND is zero, no segments will be acceptable, but special
        // > allowance should be made to accept valid ACKs, URGs, and RSTs.
        let zero_window_ack = !acceptable && wnd == 0 && seq == self.rcv_nxt;
        if !acceptable && !zero_window_ack {
            if rst {
                return SegmentDisposition::Dropped(SegmentDrop::BadRst);
            }
            // > If an incoming segment is not acceptable, an acknowledgment
            // > should be sent in reply (unless the RST bit is set).
            self.ack_due = AckDue::Now;
            if self.state == State::TimeWait && flags.contains(TcpFlags::FIN) {
                // §3.10.7.4: a retransmitted FIN restarts the 2·MSL wait.
                self.timers.close = Some(now + dur(self.limits.msl_ms).saturating_mul(2));
            }
            return SegmentDisposition::Dropped(SegmentDrop::OutOfWindow);
        }
        if zero_window_ack {
            payload = &[];
            flags = TcpFlags(flags.0 & !TcpFlags::FIN.0);
        }
        self.last_heard = now;
        self.keepalive_out = 0;
        self.arm_keepalive(now);
        if self.state == State::FinWait2 {
            // The limit is on silence: a peer still sending is not the one
            // that never sends its FIN.
            self.timers.close = Some(now + dur(self.limits.fin_wait2_ms));
        }

        // Second: the RST bit (RFC 5961 §3.2).
        if rst {
            if seq != self.rcv_nxt {
                return self.challenge_ack(now, mib);
            }
            mib.in_rsts.bump();
            return self.on_reset(mib);
        }

        // Fourth: the SYN bit (RFC 5961 §4.2): always a challenge ACK.
        if flags.contains(TcpFlags::SYN) {
            return self.challenge_ack(now, mib);
        }

        // Fifth: the ACK field.
        if !flags.contains(TcpFlags::ACK) {
            return SegmentDisposition::Dropped(SegmentDrop::NoAck);
        }
        let mut disposition = SegmentDisposition::Accepted;
        if self.state == State::SynReceived {
            // > If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state
            // > [...] If the segment acknowledgment is not acceptable, form a
            // > reset segment <SEQ=SEG.ACK><CTL=RST> and send it.
            if !(self.snd_una.lt(h.ack) && h.ack.le(self.snd_max)) {
                self.rst_pending = Some((h.ack, None));
                return SegmentDisposition::Rejected;
            }
            self.snd_wl1 = seq;
            self.snd_wl2 = h.ack;
            self.snd_wnd = u32::from(h.window) << self.snd_wscale;
            self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
            if self.cwnd == 0 {
                self.init_cwnd();
            }
            self.enter_established();
            disposition = SegmentDisposition::Established;
        }
        // RFC 5961 §5.2: acceptable ACKs lie in [SND.UNA - MAX.SND.WND, SND.NXT].
        if h.ack.gt(self.snd_max) {
            // > If the ACK acks something not yet sent, send an ACK, drop the
            // > segment, and return.
            self.ack_due = AckDue::Now;
            return SegmentDisposition::Dropped(SegmentDrop::AckTooNew);
        }
        if h.ack
            .lt(SeqNum(self.snd_una.0.wrapping_sub(self.max_snd_wnd)))
        {
            let _ = self.challenge_ack(now, mib);
            return SegmentDisposition::Dropped(SegmentDrop::AckTooOld);
        }

        // RFC 7323 §4.3: TS.Recent follows the segment that covers Last.ACK.sent.
        if let Some(ts) = peer_ts
            && seq.le(self.last_ack_sent)
        {
            self.ts_recent = ts.value;
        }

        self.on_ack(now, seg, seq, h.ack, u32::from(h.window), mib);
        if self.state == State::Closed {
            return disposition;
        }

        // Seventh: the segment text.
        let fin = flags.contains(TcpFlags::FIN);
        if (!payload.is_empty() || fin) && self.accepts_data() {
            self.receive(now, seq, payload, fin);
        } else if !payload.is_empty() || fin {
            // Data after the peer's FIN: acknowledge what we have.
            self.ack_due = AckDue::Now;
        }
        disposition
    }

    /// States in which the peer may still send data (it has not sent FIN).
    fn accepts_data(&self) -> bool {
        matches!(
            self.state,
            State::SynReceived | State::Established | State::FinWait1 | State::FinWait2
        )
    }

    /// An acceptable RST in a synchronized state (or SYN-RECEIVED).
    fn on_reset(&mut self, mib: &TcpMib) -> SegmentDisposition {
        match self.state {
            State::SynReceived => {
                mib.attempt_fails.bump();
                self.terminate(Some(ConnError::Refused));
            }
            State::Established | State::CloseWait => {
                mib.estab_resets.bump();
                self.terminate(Some(ConnError::Reset));
            }
            State::FinWait1 | State::FinWait2 => self.terminate(Some(ConnError::Reset)),
            // The application already closed; nobody is waiting for an error.
            _ => self.terminate(None),
        }
        SegmentDisposition::Reset
    }

    /// RFC 5961 §7: at most `challenge_acks_per_sec` challenge ACKs per second.
    fn challenge_ack(&mut self, now: Instant, mib: &TcpMib) -> SegmentDisposition {
        let second = now.as_nanos() / 1_000_000_000;
        if self.challenge_slot.0 != second {
            self.challenge_slot = (second, 0);
        }
        if self.challenge_slot.1 >= self.limits.challenge_acks_per_sec {
            mib.challenge_acks_limited.bump();
        } else {
            self.challenge_slot.1 += 1;
            mib.challenge_acks.bump();
            self.ack_due = AckDue::Now;
        }
        SegmentDisposition::ChallengeAck
    }

    /// The ACK field of an acceptable segment (§3.10.7.4 fifth step): advance
    /// SND.UNA, time the round trip, run congestion control, take the window,
    /// and move the closing states along when our FIN is acknowledged.
    fn on_ack(
        &mut self,
        now: Instant,
        seg: &TcpSegment<'_>,
        seq: SeqNum,
        ack: SeqNum,
        window: u32,
        mib: &TcpMib,
    ) {
        let mss = u32::from(self.snd_mss);
        let wnd = window << self.snd_wscale;
        if self.sack_on {
            let blocks = seg.header.options.sack_blocks;
            let una = if self.snd_una.lt(ack) {
                ack
            } else {
                self.snd_una
            };
            self.scoreboard.update(blocks.as_slice(), una, self.snd_max);
        }
        if self.snd_una.lt(ack) {
            self.take_rtt_sample(now, seg, ack);
            let mut acked = usize::try_from(ack - self.snd_una).unwrap_or(0);
            if self.snd_una == self.iss {
                acked = acked.saturating_sub(1);
            }
            let data = acked.min(self.send_buf.len());
            self.send_buf.ack(data);
            self.snd_una = ack;
            if self.snd_nxt.lt(ack) {
                self.snd_nxt = ack;
            }
            if data > 0 {
                self.events |= Events::WRITABLE;
            }
            self.retries = 0;
            self.persist_out = 0;
            let acked = u32::try_from(acked).unwrap_or(u32::MAX);
            match self.recover {
                // RFC 6582 §3.2 step 3: a full ACK ends recovery.
                Some(recover) if ack.gt(recover) || ack == recover => {
                    let flight = u32::try_from(self.snd_max - self.snd_una).unwrap_or(0);
                    self.cwnd = self.ssthresh.min(flight.saturating_add(mss));
                    self.recover = None;
                }
                // A partial ACK: retransmit the next hole, deflate by what was acked.
                Some(_) => {
                    self.retransmit_now = true;
                    self.rexmit_next = self.rexmit_next.max(ack + usize::from(self.snd_mss));
                    self.cwnd = self.cwnd.saturating_sub(acked).saturating_add(mss);
                }
                None if self.cwnd < self.ssthresh => {
                    self.cwnd = self.cwnd.saturating_add(acked.min(mss));
                }
                None => {
                    let step = (mss.saturating_mul(mss) / self.cwnd.max(1)).max(1);
                    self.cwnd = self.cwnd.saturating_add(step);
                }
            }
            self.dup_acks = 0;
            self.timers.rto = if self.snd_una == self.snd_max {
                None
            } else {
                Some(now + self.rtt.rto())
            };
        } else if ack == self.snd_una
            && seg.payload.is_empty()
            && !seg.header.flags.intersects(TcpFlags::SYN | TcpFlags::FIN)
            && wnd == self.snd_wnd
            && self.snd_max != self.snd_una
        {
            // RFC 5681 §2: a duplicate ACK.
            self.dup_acks = self.dup_acks.saturating_add(1);
            if self.dup_acks == 3 && self.recover.is_none() && ack.gt(self.recover_floor) {
                let flight = u32::try_from(self.snd_max - self.snd_una).unwrap_or(0);
                self.ssthresh = (flight / 2).max(2 * mss);
                self.cwnd = self.ssthresh.saturating_add(3 * mss);
                self.recover = Some(self.snd_max);
                self.recover_floor = self.snd_max;
                self.rexmit_next = self.snd_una + usize::from(self.snd_mss);
                self.retransmit_now = true;
                mib.fast_retrans.bump();
            } else if self.dup_acks > 3 || self.recover.is_some() {
                self.cwnd = self.cwnd.saturating_add(mss);
                // RFC 6675 in small: each further duplicate may repair one
                // more reported hole instead of only sending new data.
                self.sack_rexmit = self.recover.is_some() && self.sack_on;
            }
        }
        self.update_window(seq, ack, wnd);

        let fin_acked = self.fin_seq.is_some_and(|fin| self.snd_una.gt(fin));
        match self.state {
            State::FinWait1 if fin_acked => {
                self.set_state(State::FinWait2);
                self.timers.close = Some(now + dur(self.limits.fin_wait2_ms));
            }
            State::Closing if fin_acked => self.enter_time_wait(now),
            State::LastAck if fin_acked => self.terminate(None),
            _ => {}
        }
    }

    /// > If SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK),
    /// > set SND.WND <- SEG.WND, set SND.WL1 <- SEG.SEQ, and set SND.WL2 <- SEG.ACK.
    fn update_window(&mut self, seq: SeqNum, ack: SeqNum, wnd: u32) {
        if self.snd_wl1.lt(seq) || (self.snd_wl1 == seq && self.snd_wl2.le(ack)) {
            self.snd_wnd = wnd;
            self.snd_wl1 = seq;
            self.snd_wl2 = ack;
            self.max_snd_wnd = self.max_snd_wnd.max(wnd);
            if wnd > 0 {
                self.timers.persist = None;
                self.persist_out = 0;
            }
        }
    }

    /// One RTT sample per ACK: from the echoed timestamp if there is one (valid
    /// even for retransmissions), else from the timed segment (Karn's rule).
    fn take_rtt_sample(&mut self, now: Instant, seg: &TcpSegment<'_>, ack: SeqNum) {
        if let Some(ts) = seg.header.options.timestamps.filter(|_| self.ts_on)
            && ts.echo_reply != 0
        {
            let rtt_ms = ts_clock(now, self.ts_offset).wrapping_sub(ts.echo_reply);
            if rtt_ms <= MAX_TS_RTT_MS {
                self.rtt.on_sample(Duration::from_millis(u64::from(rtt_ms)));
                self.rtt_probe = None;
                return;
            }
        }
        if let Some((probe, sent)) = self.rtt_probe
            && probe.lt(ack)
        {
            self.rtt.on_sample(now - sent);
            self.rtt_probe = None;
        }
    }

    /// Seventh and eighth steps: place the data (trimmed to the window), move
    /// RCV.NXT, decide when to ACK, and take the FIN once it is in sequence.
    fn receive(&mut self, now: Instant, seq: SeqNum, payload: &[u8], fin: bool) {
        let wnd = self.rcv_wnd() as usize;
        // Trim the front: octets before RCV.NXT were already received.
        let skip = usize::try_from(self.rcv_nxt - seq).unwrap_or(0);
        let (start, mut data, mut fin) = if skip > 0 {
            (
                self.rcv_nxt,
                payload.get(skip..).unwrap_or(&[]),
                fin && skip <= payload.len(),
            )
        } else {
            (seq, payload, fin)
        };
        // Trim the back: nothing beyond the window we offered.
        let offset = usize::try_from(start - self.rcv_nxt).unwrap_or(0);
        let room = wnd.saturating_sub(offset);
        if data.len() > room {
            data = data.get(..room).unwrap_or(&[]);
            fin = false;
        }
        let had_ofo = self.recv_buf.has_ofo();
        let placed = self.recv_buf.place(
            self.rcv_nxt,
            start,
            data,
            fin,
            self.limits.recv_buffer as usize,
            usize::from(self.limits.max_ofo),
        );
        self.note_placed(placed);
        self.rcv_nxt += placed.advanced;
        if placed.advanced > 0 {
            self.events |= Events::READABLE;
        }
        // A full-sized segment, or (a super-segment from a receive offload)
        // as many full-sized segments as it holds: each counts toward the
        // every-second-segment ACK rule as if it had arrived alone.
        // A peer keeps to our MSS, so without offload this is 0 or 1.
        let our_mss = usize::from(self.limits.our_mss).max(1);
        let full_size = usize::from(self.snd_mss).min(our_mss);
        let full = if data.len() >= full_size {
            (data.len() / our_mss).max(1)
        } else {
            0
        };
        if placed.queued || placed.dropped || had_ofo || skip > 0 || data.len() < payload.len() {
            // RFC 5681 §4.2: out-of-order data, or data that fills a hole, is
            // acknowledged at once (the sender counts duplicate ACKs).
            self.ack_due = AckDue::Now;
            if placed.queued || placed.dropped {
                self.dup_acks_owed = self.dup_acks_owed.saturating_add(1).min(MAX_DUP_ACKS_OWED);
            }
        } else if placed.advanced > 0 {
            let full = u8::try_from(full).unwrap_or(u8::MAX);
            self.unacked_segs = self.unacked_segs.saturating_add(full);
            // RFC 9293 §3.8.6.3: an ACK for at least every second full-sized
            // segment, and none delayed past the configured bound.
            if self.unacked_segs >= 2 || self.limits.delayed_ack_ms == 0 {
                self.ack_due = AckDue::Now;
            } else if self.ack_due == AckDue::No {
                self.ack_due = AckDue::By(now + dur(self.limits.delayed_ack_ms));
            }
        }
        if placed.fin {
            self.on_fin(now);
        }
    }

    fn note_placed(&mut self, placed: buffers::Placed) {
        // Counters are bumped by the caller that holds the MIB; see `receive`.
        self.ofo_note = (
            self.ofo_note.0.saturating_add(u16::from(placed.queued)),
            self.ofo_note.1.saturating_add(u16::from(placed.dropped)),
        );
    }

    /// Eighth step: the peer's FIN is in sequence.
    fn on_fin(&mut self, now: Instant) {
        self.rcv_nxt += 1;
        self.peer_fin = true;
        self.ack_due = AckDue::Now;
        self.events |= Events::PEER_CLOSED | Events::READABLE;
        match self.state {
            State::SynReceived | State::Established => self.set_state(State::CloseWait),
            State::FinWait1 => {
                let fin_acked = self.fin_seq.is_some_and(|fin| self.snd_una.gt(fin));
                if fin_acked {
                    self.enter_time_wait(now);
                } else {
                    self.set_state(State::Closing);
                }
            }
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }

    /// TIME-WAIT: every timer but the 2·MSL one stops; the buffers go.
    fn enter_time_wait(&mut self, now: Instant) {
        self.set_state(State::TimeWait);
        self.unsettled.time_waits = self.unsettled.time_waits.saturating_add(1);
        self.timers = Timers {
            close: Some(now + dur(self.limits.msl_ms).saturating_mul(2)),
            ..Timers::default()
        };
        self.send_buf = SendBuffer::default();
        self.retransmit_now = false;
        self.probe_pending = false;
        self.keepalive_pending = false;
        self.events |= Events::CLOSED;
    }
}
