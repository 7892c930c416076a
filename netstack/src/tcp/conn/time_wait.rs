//! TIME-WAIT without buffers.
//!
//! A connection in TIME-WAIT has nothing left to deliver; it only has to answer
//! a retransmitted FIN and keep old duplicates of this incarnation away for
//! 2·MSL. So the Stack trades the [`Tcb`](super::Tcb) for this struct: the
//! numbers needed to re-acknowledge, the timestamp state for PAWS and RFC 6191
//! reuse, and a deadline. The addresses are the table key, so only the ports
//! are kept (the Stack supplies the addresses when it emits).

use core::time::Duration;

use crate::tcp::mib::TcpMib;
use crate::tcp::options::{TcpOptions, Timestamps};
use crate::tcp::seq::SeqNum;
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpHeader, TcpSegment};

use super::Transmit;
use super::timestamps::ts_clock;

/// What a segment did to a connection in TIME-WAIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeWaitDisposition {
    /// A retransmission of the peer's FIN: re-acknowledged, 2·MSL restarted.
    Reacked,
    /// Out of window or too old (PAWS): an ACK was queued, nothing else.
    Acked,
    /// A SYN that may reuse the tuple (RFC 6191): the Stack should drop this
    /// TIME-WAIT and hand the SYN to the listener.
    Reopen,
    /// A reset; ignored to avoid TIME-WAIT assassination (RFC 1337).
    RstIgnored,
    /// Nothing to do.
    Dropped,
}

/// A connection in TIME-WAIT, without buffers (see the module comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWait {
    local_port: u16,
    remote_port: u16,
    /// Our next sequence number (our FIN is acknowledged).
    snd_nxt: SeqNum,
    /// The peer's next sequence number (just past its FIN).
    rcv_nxt: SeqNum,
    /// Our TSval clock's offset from `now` in ms; `ts_recent` is valid only when
    /// `timestamps` is set.
    ts_offset: u32,
    ts_recent: u32,
    /// The window field our ACKs carry.
    window: u16,
    timestamps: bool,
    ack_pending: bool,
    /// 2·MSL in milliseconds, to restart the wait on a retransmitted FIN.
    two_msl_ms: u32,
    expires_at: Instant,
}

impl TimeWait {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        local_port: u16,
        remote_port: u16,
        snd_nxt: SeqNum,
        rcv_nxt: SeqNum,
        timestamps: Option<(u32, u32)>,
        window: u16,
        ack_pending: bool,
        two_msl: Duration,
        expires_at: Instant,
    ) -> TimeWait {
        let (ts_offset, ts_recent) = timestamps.unwrap_or((0, 0));
        TimeWait {
            local_port,
            remote_port,
            snd_nxt,
            rcv_nxt,
            ts_offset,
            ts_recent,
            window,
            timestamps: timestamps.is_some(),
            ack_pending,
            two_msl_ms: u32::try_from(two_msl.as_millis()).unwrap_or(u32::MAX),
            expires_at,
        }
    }

    /// When 2·MSL has passed and the Stack may forget the tuple.
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// 2·MSL has passed.
    pub fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_at
    }

    /// Our next sequence number; a reopened connection should start above it.
    pub fn snd_nxt(&self) -> SeqNum {
        self.snd_nxt
    }

    /// The peer's next expected sequence number.
    pub fn rcv_nxt(&self) -> SeqNum {
        self.rcv_nxt
    }

    /// Handles a segment for this tuple; any ACK it calls for is queued for
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn on_segment(
        &mut self,
        now: Instant,
        seg: &TcpSegment<'_>,
        mib: &TcpMib,
    ) -> TimeWaitDisposition {
        let h = &seg.header;
        if h.flags.contains(TcpFlags::RST) {
            // RFC 1337: an RST must not cut TIME-WAIT short, or an old duplicate
            // could open the door to the next incarnation.
            mib.rsts_ignored.bump();
            return TimeWaitDisposition::RstIgnored;
        }
        let peer_ts = if self.timestamps {
            h.options.timestamps
        } else {
            None
        };
        if h.flags.contains(TcpFlags::SYN) && !h.flags.contains(TcpFlags::ACK) {
            // RFC 6191 §2: with timestamps, a SYN whose TSval is newer than
            // TS.Recent cannot be an old duplicate; without them, RFC 9293's
            // older rule: its sequence number is above RCV.NXT.
            let newer = match peer_ts {
                Some(ts) => (ts.value.wrapping_sub(self.ts_recent) as i32) > 0,
                None => h.seq.gt(self.rcv_nxt),
            };
            if newer {
                mib.time_wait_reopens.bump();
                return TimeWaitDisposition::Reopen;
            }
            self.ack_pending = true;
            return TimeWaitDisposition::Acked;
        }
        if let Some(ts) = peer_ts
            && (ts.value.wrapping_sub(self.ts_recent) as i32) < 0
        {
            mib.paws_drops.bump();
            self.ack_pending = true;
            return TimeWaitDisposition::Acked;
        }
        let end = h.seq + seg.seq_len();
        if h.flags.contains(TcpFlags::FIN) && end == self.rcv_nxt {
            // §3.10.7.4 TIME-WAIT: "The only thing that can arrive in this state
            // is a retransmission of the remote FIN. Acknowledge it, and restart
            // the 2 MSL timeout."
            self.ack_pending = true;
            self.expires_at = now + Duration::from_millis(u64::from(self.two_msl_ms));
            return TimeWaitDisposition::Reacked;
        }
        if h.seq != self.rcv_nxt || !seg.payload.is_empty() {
            mib.out_of_window.bump();
            self.ack_pending = true;
            return TimeWaitDisposition::Acked;
        }
        mib.drop_time_wait.bump();
        TimeWaitDisposition::Dropped
    }

    /// The queued ACK, if any. The Stack emits it between the tuple's addresses.
    pub fn poll_transmit(&mut self, now: Instant, mib: &TcpMib) -> Option<Transmit<'static>> {
        if !core::mem::take(&mut self.ack_pending) {
            return None;
        }
        mib.out_segs.bump();
        let mut options = TcpOptions::default();
        if self.timestamps {
            options.timestamps = Some(Timestamps {
                value: ts_clock(now, self.ts_offset),
                echo_reply: self.ts_recent,
            });
        }
        Some(Transmit {
            header: TcpHeader {
                src_port: self.local_port,
                dst_port: self.remote_port,
                seq: self.snd_nxt,
                ack: self.rcv_nxt,
                flags: TcpFlags::ACK,
                window: self.window,
                urgent: 0,
                options,
            },
            payload: &[],
            segment_size: None,
        })
    }
}
