//! What the SYN cache did with a segment: one named outcome per case, so the
//! Stack's demultiplexer is a `match`, and every drop has a reason.

#[cfg(doc)]
use super::SynCache;
use crate::tcp::handshake::Handshake;
use crate::wire::TcpHeader;

/// Why a SYN got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynDrop {
    /// Not a SYN, or a SYN with ACK or RST (those go to
    /// [`SynCache::on_segment`]).
    NotASyn,
    /// SYN and FIN together: no legitimate stack sends it.
    SynFin,
    /// The cache is full and cookies are off.
    CacheFull,
}

/// What [`SynCache::on_syn`] did with a SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynDisposition {
    /// A new entry: send this SYN-ACK.
    Reply(TcpHeader),
    /// The cache was full (or cookies are always on): send this stateless
    /// SYN-ACK, whose sequence number is a cookie.
    Cookie(TcpHeader),
    /// The tuple already had an entry (the peer retransmitted its SYN, or
    /// restarted with a new ISN, which the entry now records): send this
    /// SYN-ACK again.
    Duplicate(TcpHeader),
    /// Nothing to send.
    Dropped(SynDrop),
}

/// Why a non-SYN segment to a listening port was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeDrop {
    /// No ACK bit (RFC 9293 §3.10.7.2: drop it).
    NoAck,
    /// A RST for which there is no entry (a RST is never answered).
    RstNoEntry,
    /// A RST whose sequence number is outside the window we offered.
    RstOutOfWindow,
    /// A RST in the window but not at its left edge (RFC 5961 §3.2).
    RstInWindow,
    /// A SYN (with ACK) for a tuple that has an entry.
    UnexpectedSyn,
    /// The sequence number is outside the window we offered.
    OutOfWindow,
    /// Timestamps were negotiated and the segment carries none (RFC 7323 §3.2).
    MissingTimestamp,
    /// PAWS: its TSval is older than the SYN's (RFC 7323 §5).
    Paws,
    /// The handshake is valid but the Stack's accept queue is full; the entry
    /// is kept, so the peer's next segment can complete it.
    AcceptQueueFull,
}

/// What [`SynCache::on_segment`] did with a non-SYN segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeDisposition {
    /// The final ACK is valid: create the connection with `Tcb::accept`, which
    /// also processes any data or FIN the segment carries.
    Established(Handshake),
    /// A RST whose sequence number is exactly the peer's ISN + 1 removed
    /// the entry.
    Reset,
    /// Send this (a RST answering an unacceptable ACK, RFC 9293 §3.10.7.4).
    Reply(TcpHeader),
    /// Nothing to send.
    Dropped(HandshakeDrop),
    /// No entry and no valid cookie: answer as for a closed port (RST).
    NotOurs,
}
