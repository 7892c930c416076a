//! The wire layer: a TUN frame in, a validated [`Datagram`] view or a [`Drop`] reason
//! out; a segment or echo reply description in, octets in the caller's buffer out.
//!
//! Parsing borrows from the frame and never allocates; emission writes only into the
//! caller's `&mut [u8]`. Invariant: for every possible input slice, [`parse`] returns
//! (it does not panic, loop or allocate), and what it returns is either a datagram
//! whose every checksum verified (the TCP one excepted where the caller said
//! the link vouches for it: [`parse_with`]) or exactly one named reason.

mod drop;
mod emit;
mod icmp;
mod ip;
mod sum;
mod tcp;

use core::net::IpAddr;

pub use self::drop::Drop;
pub use self::emit::{
    DEFAULT_HOP_LIMIT, EmitError, PartialChecksum, TCP_CHECKSUM_OFFSET, emit_echo, emit_tcp,
    emit_tcp_partial,
};
pub use self::icmp::{ECHO_HEADER_LEN, Echo, EchoKind};
pub use self::ip::MAX_IPV6_EXT_HEADERS;
pub use self::tcp::{TCP_HEADER_LEN, TcpFlags, TcpHeader, TcpSegment};

/// A validated inbound IP datagram and what it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// Source address (the peer).
    pub src: IpAddr,
    /// Destination address (one of ours, if routing is right).
    pub dst: IpAddr,
    /// TTL or hop limit as received.
    pub hop_limit: u8,
    /// The upper-layer content.
    pub transport: Transport<'a>,
}

/// The upper-layer content of a [`Datagram`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    /// A TCP segment.
    Tcp(TcpSegment<'a>),
    /// An ICMP or ICMPv6 echo request.
    EchoRequest(Echo<'a>),
}

/// Parses and validates one frame from a TUN device (a bare IPv4 or IPv6 packet).
pub fn parse(frame: &[u8]) -> Result<Datagram<'_>, Drop> {
    parse_with(frame, false)
}

/// As [`parse`]; with `tcp_checksum_trusted` a TCP segment's checksum is not
/// summed (the driver vouches for it: the link verified it, or the segment
/// comes from this host with its sum left to offload). Every other check,
/// the IPv4 header's checksum included, still runs.
pub fn parse_with(frame: &[u8], tcp_checksum_trusted: bool) -> Result<Datagram<'_>, Drop> {
    let layer = ip::parse_ip(frame)?;
    let transport = match (layer.addrs, layer.protocol) {
        (_, ip::PROTO_TCP) => Transport::Tcp(tcp::parse_tcp(
            layer.addrs,
            layer.payload,
            tcp_checksum_trusted,
        )?),
        (ip::IpPair::V4(..), ip::PROTO_ICMP) | (ip::IpPair::V6(..), ip::PROTO_ICMPV6) => {
            Transport::EchoRequest(icmp::parse_echo_request(layer.addrs, layer.payload)?)
        }
        _ => return Err(Drop::UnsupportedProtocol),
    };
    Ok(Datagram {
        src: layer.addrs.src(),
        dst: layer.addrs.dst(),
        hop_limit: layer.hop_limit,
        transport,
    })
}

#[cfg(test)]
mod tests;
