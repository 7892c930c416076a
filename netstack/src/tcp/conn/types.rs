//! The vocabulary the Stack and the application use with a connection: its
//! state, what a segment did to it, what it wants to send, what it reports.

use core::fmt;
use core::ops::{BitOr, BitOrAssign};

use crate::wire::TcpHeader;

/// The eleven connection states of RFC 9293 §3.3.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// No connection (a TCB reaches it only on its way out).
    Closed,
    /// Waiting for a connection request (kept by the listener, never by a TCB).
    Listen,
    /// Our SYN is sent; waiting for the peer's.
    SynSent,
    /// Both SYNs seen; waiting for the ACK of ours.
    SynReceived,
    /// Data flows both ways.
    Established,
    /// We sent FIN; waiting for its ACK or the peer's FIN.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's.
    FinWait2,
    /// Both sides sent FIN at once; waiting for the ACK of ours.
    Closing,
    /// Both FINs exchanged; waiting 2·MSL for stray segments to die.
    TimeWait,
    /// The peer sent FIN; we may still send.
    CloseWait,
    /// We sent FIN after the peer's; waiting for its ACK.
    LastAck,
}

impl State {
    /// SYNs have been exchanged both ways (RFC 9293's "synchronized states").
    pub fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }
}

/// Readiness and life-cycle events, accumulated until [`take_events`] clears them.
///
/// [`take_events`]: super::Tcb::take_events
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Events(u8);

impl Events {
    /// No events.
    pub const NONE: Events = Events(0);
    /// Received data (or EOF) is waiting for `recv`.
    pub const READABLE: Events = Events(0x01);
    /// Send buffer space became free.
    pub const WRITABLE: Events = Events(0x02);
    /// The handshake completed.
    pub const CONNECTED: Events = Events(0x04);
    /// The peer sent FIN: no more data will arrive.
    pub const PEER_CLOSED: Events = Events(0x08);
    /// The connection is over for the application (normally, in error, or on
    /// entering TIME-WAIT, when the Stack swaps in the `TimeWait` form).
    pub const CLOSED: Events = Events(0x10);
    /// The connection was reset, timed out or refused; see `error()`.
    pub const RESET: Events = Events(0x20);
    /// With `RESET`: the peer refused our SYN ([`ConnError::Refused`]). The
    /// event says why, because the connection may be gone from the table
    /// (and `error()` with it) before the application reads its events.
    pub const REFUSED: Events = Events(0x40);
    /// With `RESET`: retransmissions or keepalives went unanswered
    /// ([`ConnError::TimedOut`]).
    pub const TIMED_OUT: Events = Events(0x80);

    /// Every bit of `other` is set.
    pub const fn contains(self, other: Events) -> bool {
        self.0 & other.0 == other.0
    }

    /// No bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }
}

impl BitOr for Events {
    type Output = Events;
    fn bitor(self, rhs: Events) -> Events {
        Events(self.0 | rhs.0)
    }
}

impl BitOrAssign for Events {
    fn bitor_assign(&mut self, rhs: Events) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = [
            "READABLE",
            "WRITABLE",
            "CONNECTED",
            "PEER_CLOSED",
            "CLOSED",
            "RESET",
            "REFUSED",
            "TIMED_OUT",
        ];
        let names: Vec<&str> = NAMES
            .iter()
            .enumerate()
            .filter(|(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, n)| *n)
            .collect();
        write!(f, "Events({})", names.join("|"))
    }
}

/// Why an application call on a connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnError {
    /// Nothing to read yet, or no send-buffer space: try after the next event.
    WouldBlock,
    /// The application already closed its sending side (send after `close`).
    Closed,
    /// The peer reset the connection.
    Reset,
    /// The peer refused the connection (RST in answer to our SYN).
    Refused,
    /// Retransmissions or keepalive probes went unanswered.
    TimedOut,
    /// The application aborted the connection.
    Aborted,
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnError::WouldBlock => "operation would block; wait for the next event",
            ConnError::Closed => "the sending side is already closed",
            ConnError::Reset => "connection reset by peer",
            ConnError::Refused => "connection refused by peer",
            ConnError::TimedOut => "connection timed out",
            ConnError::Aborted => "connection aborted locally",
        })
    }
}

impl std::error::Error for ConnError {}

/// Why a segment was dropped without changing the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegmentDrop {
    /// Sequence numbers outside the receive window (§3.10.7.4); an ACK was queued.
    OutOfWindow,
    /// PAWS: its timestamp is older than TS.Recent (RFC 7323 §5); an ACK was queued.
    Paws,
    /// It acknowledges data we never sent; an ACK was queued.
    AckTooNew,
    /// It acknowledges data older than the peer could have seen (RFC 5961 §5.2).
    AckTooOld,
    /// A synchronized-state segment without ACK.
    NoAck,
    /// An RST that is not acceptable (outside the window), or any RST in SYN-SENT
    /// whose ACK does not cover our SYN.
    BadRst,
    /// A segment SYN-SENT ignores (neither SYN nor RST).
    Unexpected,
    /// The connection is already closed.
    Closed,
}

/// What one segment did to the connection. Replies it calls for (ACK, RST,
/// challenge ACK) are already queued for [`poll_transmit`].
///
/// [`poll_transmit`]: super::Tcb::poll_transmit
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegmentDisposition {
    /// Accepted: its ACK, data or FIN was processed.
    Accepted,
    /// It completed the handshake: the connection is ESTABLISHED.
    Established,
    /// A SYN in SYN-SENT: simultaneous open, now SYN-RECEIVED.
    SimultaneousOpen,
    /// An acceptable RST: the connection is closed.
    Reset,
    /// RFC 5961: an in-window RST or SYN, or an ACK too old; a challenge ACK was
    /// queued unless the rate limit suppressed it.
    ChallengeAck,
    /// An unacceptable ACK in SYN-SENT or SYN-RECEIVED: an RST was queued.
    Rejected,
    /// Dropped without effect.
    Dropped(SegmentDrop),
}

/// One segment the connection wants sent: a complete header (ports, numbers,
/// flags, window, options) and the payload, borrowed from the send buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// The header, ready for `emit_tcp`.
    pub header: TcpHeader,
    /// The data octets.
    pub payload: &'a [u8],
    /// `Some(n)` when `payload` is longer than one segment (only from
    /// [`Tcb::poll_transmit_limited`](super::Tcb::poll_transmit_limited)
    /// with a limit above the MSS): the link must cut it into segments of
    /// `n` payload octets, the last one shorter (TCP segmentation offload).
    /// `None`: the segment goes on the wire as it is.
    pub segment_size: Option<u16>,
}
