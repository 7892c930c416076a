//! Building outbound IP datagrams into a caller-provided buffer.
//!
//! The IP header comes from smoltcp's `Ipv4Repr`/`Ipv6Repr` (no IPv4 options, DF
//! set, identification 0 as RFC 6864 allows for atomic datagrams); the upper layer
//! is written by [`tcp`](super::tcp) or [`icmp`](super::icmp). Invariant: on `Ok(n)`
//! exactly `buf[..n]` holds a datagram whose checksums are correct; on `Err` the
//! buffer may hold garbage but nothing outside it was touched, and nothing allocates.

use core::fmt;
use core::net::IpAddr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr};

use super::icmp::{self, ECHO_HEADER_LEN, Echo, EchoKind};
use super::ip::{IpPair, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP};
use super::tcp::{self, TCP_HEADER_LEN, TcpHeader};

/// The TTL or hop limit we send with (Linux's default, `net.ipv4.ip_default_ttl`).
pub const DEFAULT_HOP_LIMIT: u8 = 64;

const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;

/// Why a datagram could not be built. These are the caller's mistakes, not the peer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitError {
    /// The buffer is shorter than the datagram, which needs this many octets.
    BufferTooSmall {
        /// Octets the datagram needs.
        needed: usize,
    },
    /// Source and destination are of different families.
    AddressFamilyMismatch,
    /// The datagram would exceed 65535 octets (IPv4 total or IPv6 payload length).
    TooLong,
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::BufferTooSmall { needed } => {
                write!(f, "buffer too small: the datagram needs {needed} octets")
            }
            EmitError::AddressFamilyMismatch => {
                f.write_str("source and destination addresses are of different families")
            }
            EmitError::TooLong => f.write_str("datagram longer than 65535 octets"),
        }
    }
}

impl std::error::Error for EmitError {}

/// Writes the IP header for `upper_len` octets of `protocol` and returns the whole
/// datagram's slice and the offset where the upper layer starts.
fn ip_frame(
    addrs: IpPair,
    hop_limit: u8,
    protocol: u8,
    upper_len: usize,
    buf: &mut [u8],
) -> Result<(&mut [u8], usize), EmitError> {
    let header_len = match addrs {
        IpPair::V4(..) => IPV4_HEADER_LEN,
        IpPair::V6(..) => IPV6_HEADER_LEN,
    };
    let limited = match addrs {
        IpPair::V4(..) => header_len + upper_len,
        IpPair::V6(..) => upper_len,
    };
    if limited > usize::from(u16::MAX) {
        return Err(EmitError::TooLong);
    }
    let needed = header_len + upper_len;
    let frame = buf
        .get_mut(..needed)
        .ok_or(EmitError::BufferTooSmall { needed })?;
    let next_header = IpProtocol::from(protocol);
    match addrs {
        IpPair::V4(src_addr, dst_addr) => {
            let repr = Ipv4Repr {
                src_addr,
                dst_addr,
                next_header,
                payload_len: upper_len,
                hop_limit,
            };
            let mut packet = Ipv4Packet::new_unchecked(&mut *frame);
            // The header checksum is ours (the wide-word sum), not smoltcp's.
            repr.emit(&mut packet, &ChecksumCapabilities::ignored());
            let header = packet.into_inner();
            let sum = !super::sum::data(header.get(..IPV4_HEADER_LEN).unwrap_or(&[]));
            Ipv4Packet::new_unchecked(header).set_checksum(sum);
        }
        IpPair::V6(src_addr, dst_addr) => {
            let repr = Ipv6Repr {
                src_addr,
                dst_addr,
                next_header,
                payload_len: upper_len,
                hop_limit,
            };
            repr.emit(&mut Ipv6Packet::new_unchecked(&mut *frame));
        }
    }
    Ok((frame, header_len))
}

/// Builds a TCP segment from `src` to `dst` into `buf`; returns the datagram length.
pub fn emit_tcp(
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    header: &TcpHeader,
    payload: &[u8],
    buf: &mut [u8],
) -> Result<usize, EmitError> {
    let addrs = IpPair::new(src, dst).ok_or(EmitError::AddressFamilyMismatch)?;
    let segment_len = TCP_HEADER_LEN + header.options.emitted_len() + payload.len();
    let (frame, at) = ip_frame(addrs, hop_limit, PROTO_TCP, segment_len, buf)?;
    let len = frame.len();
    if let Some(out) = frame.get_mut(at..) {
        tcp::write_tcp(addrs, header, payload, out, false);
    }
    Ok(len)
}

/// Where a partial checksum is finished: the sum of every octet from
/// `start` to the end of the datagram is added, complemented, to the
/// 16-bit field at `start + offset` (virtio's `csum_start`/`csum_offset`,
/// Linux's `CHECKSUM_PARTIAL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialChecksum {
    /// Where the summed range starts: the TCP header.
    pub start: u16,
    /// The checksum field's offset from `start`.
    pub offset: u16,
}

/// The TCP checksum field's offset in the TCP header.
pub const TCP_CHECKSUM_OFFSET: u16 = 16;

/// As [`emit_tcp`], leaving the TCP checksum partial (the pseudo-header's
/// sum) for the link to finish; returns the datagram length and where the
/// link finishes it. The IP header's checksum (IPv4) is complete.
pub fn emit_tcp_partial(
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    header: &TcpHeader,
    payload: &[u8],
    buf: &mut [u8],
) -> Result<(usize, PartialChecksum), EmitError> {
    let addrs = IpPair::new(src, dst).ok_or(EmitError::AddressFamilyMismatch)?;
    let segment_len = TCP_HEADER_LEN + header.options.emitted_len() + payload.len();
    let (frame, at) = ip_frame(addrs, hop_limit, PROTO_TCP, segment_len, buf)?;
    let len = frame.len();
    if let Some(out) = frame.get_mut(at..) {
        tcp::write_tcp(addrs, header, payload, out, true);
    }
    // `at` is an IP header's length: 20 or 40.
    let start = at as u16;
    Ok((
        len,
        PartialChecksum {
            start,
            offset: TCP_CHECKSUM_OFFSET,
        },
    ))
}

/// Builds an ICMP (IPv4) or ICMPv6 (IPv6) echo message into `buf`; returns the
/// datagram length. A reply to a request is `emit_echo(req.dst, req.src, ..,
/// EchoKind::Reply, &echo, buf)`.
pub fn emit_echo(
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    kind: EchoKind,
    echo: &Echo<'_>,
    buf: &mut [u8],
) -> Result<usize, EmitError> {
    let addrs = IpPair::new(src, dst).ok_or(EmitError::AddressFamilyMismatch)?;
    let protocol = match addrs {
        IpPair::V4(..) => PROTO_ICMP,
        IpPair::V6(..) => PROTO_ICMPV6,
    };
    let message_len = ECHO_HEADER_LEN + echo.data.len();
    let (frame, at) = ip_frame(addrs, hop_limit, protocol, message_len, buf)?;
    let len = frame.len();
    if let Some(out) = frame.get_mut(at..) {
        icmp::write_echo(addrs, kind, echo, out);
    }
    Ok(len)
}
