//! ICMP echo (ping) for IPv4 (RFC 792) and IPv6 (RFC 4443 §4).
//!
//! The engine answers echo requests addressed to it and ignores every other ICMP
//! message for now. Invariant: an [`Echo`] handed out came from a message whose
//! checksum verified (ICMPv6's over its pseudo-header, ICMPv4's over the message
//! alone) and whose type is echo request with code 0.

use smoltcp::wire::{Icmpv4Message, Icmpv4Packet, Icmpv6Message, Icmpv6Packet};

use super::drop::Drop;
use super::ip::{IpPair, PROTO_ICMPV6};

/// Length of an echo header: type, code, checksum, identifier, sequence number.
pub const ECHO_HEADER_LEN: usize = 8;

const ICMPV4_ECHO_REQUEST: u8 = 8;
const ICMPV6_ECHO_REQUEST: u8 = 128;

/// An echo request or reply: identifier, sequence number and the data to echo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Echo<'a> {
    /// Identifier, chosen by the requester.
    pub ident: u16,
    /// Sequence number, chosen by the requester.
    pub seq_no: u16,
    /// Data, returned unchanged in the reply.
    pub data: &'a [u8],
}

/// Which way an echo goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoKind {
    /// Type 8 (IPv4) or 128 (IPv6).
    Request,
    /// Type 0 (IPv4) or 129 (IPv6).
    Reply,
}

/// Validates an ICMP message for `addrs`' family and keeps it if it is an echo request.
pub(crate) fn parse_echo_request(addrs: IpPair, bytes: &[u8]) -> Result<Echo<'_>, Drop> {
    let header: &[u8; ECHO_HEADER_LEN] = bytes.first_chunk().ok_or(Drop::TruncatedIcmp)?;
    let checksum_ok = match addrs {
        IpPair::V4(..) => super::sum::data(bytes) == !0,
        IpPair::V6(..) => addrs.verify(PROTO_ICMPV6, bytes),
    };
    if !checksum_ok {
        return Err(Drop::BadIcmpChecksum);
    }
    let echo_request = match addrs {
        IpPair::V4(..) => ICMPV4_ECHO_REQUEST,
        IpPair::V6(..) => ICMPV6_ECHO_REQUEST,
    };
    let &[kind, code, _, _, id_hi, id_lo, seq_hi, seq_lo] = header;
    if kind != echo_request || code != 0 {
        return Err(Drop::IcmpIgnored);
    }
    Ok(Echo {
        ident: u16::from_be_bytes([id_hi, id_lo]),
        seq_no: u16::from_be_bytes([seq_hi, seq_lo]),
        data: bytes.get(ECHO_HEADER_LEN..).unwrap_or(&[]),
    })
}

/// Writes an echo message into `out`, which is exactly `ECHO_HEADER_LEN + data` long.
pub(crate) fn write_echo(addrs: IpPair, kind: EchoKind, echo: &Echo<'_>, out: &mut [u8]) {
    match addrs {
        IpPair::V4(..) => {
            let mut packet = Icmpv4Packet::new_unchecked(out);
            packet.set_msg_type(match kind {
                EchoKind::Request => Icmpv4Message::EchoRequest,
                EchoKind::Reply => Icmpv4Message::EchoReply,
            });
            packet.set_msg_code(0);
            packet.set_echo_ident(echo.ident);
            packet.set_echo_seq_no(echo.seq_no);
            packet.data_mut().copy_from_slice(echo.data);
            packet.fill_checksum();
        }
        IpPair::V6(src, dst) => {
            let mut packet = Icmpv6Packet::new_unchecked(out);
            packet.set_msg_type(match kind {
                EchoKind::Request => Icmpv6Message::EchoRequest,
                EchoKind::Reply => Icmpv6Message::EchoReply,
            });
            packet.set_msg_code(0);
            packet.set_echo_ident(echo.ident);
            packet.set_echo_seq_no(echo.seq_no);
            packet.payload_mut().copy_from_slice(echo.data);
            packet.fill_checksum(&src, &dst);
        }
    }
}
