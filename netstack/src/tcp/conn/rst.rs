//! Resets for segments that reach no connection.
//!
//! RFC 9293 §3.10.7.1: a segment for a closed port is answered with a reset
//! whose numbers the sender will accept, and an incoming reset is never
//! answered (two stacks must not volley resets).

use crate::wire::{TcpFlags, TcpHeader, TcpSegment};

/// The reset answering `seg`, which reached no connection and no listener; `None`
/// if `seg` is itself a reset.
///
/// > If the ACK bit is off, sequence number zero is used,
/// > `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`.
/// > If the ACK bit is on, `<SEQ=SEG.ACK><CTL=RST>`.
pub fn rst_for(seg: &TcpSegment<'_>) -> Option<TcpHeader> {
    let h = &seg.header;
    if h.flags.contains(TcpFlags::RST) {
        return None;
    }
    let mut reply = TcpHeader {
        src_port: h.dst_port,
        dst_port: h.src_port,
        ..TcpHeader::default()
    };
    if h.flags.contains(TcpFlags::ACK) {
        reply.seq = h.ack;
        reply.flags = TcpFlags::RST;
    } else {
        reply.ack = h.seq + seg.seq_len();
        reply.flags = TcpFlags::RST | TcpFlags::ACK;
    }
    Some(reply)
}
