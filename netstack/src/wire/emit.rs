//! Building outbound IP datagrams into a caller-provided buffer.
//!
//! The IPv4 header is written here in one piece (no options, DF set,
//! identification 0 as RFC 6864 allows for atomic datagrams: the same octets
//! smoltcp's `Ipv4Repr` writes, which a test checks), the IPv6 header comes
//! from smoltcp's `Ipv6Repr`; the upper layer
//! is written by [`tcp`](super::tcp) or [`icmp`](super::icmp). Invariant: on `Ok(n)`
//! exactly `buf[..n]` holds a datagram whose checksums are correct; on `Err` the
//! buffer may hold garbage but nothing outside it was touched, and nothing allocates.

use core::fmt;
use core::net::IpAddr;

use smoltcp::wire::{IpProtocol, Ipv6Packet, Ipv6Repr};

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
        IpPair::V4(src, dst) => {
            // RFC 791's header written at once: version 4, IHL 5, no DSCP
            // or ECN, identification 0 with DF (RFC 6864: an atomic
            // datagram), no fragment offset; then its checksum.
            let [l0, l1] = (needed as u16).to_be_bytes();
            let [s0, s1, s2, s3] = src.octets();
            let [d0, d1, d2, d3] = dst.octets();
            let mut header: [u8; IPV4_HEADER_LEN] = [
                0x45, 0, l0, l1, 0, 0, 0x40, 0, hop_limit, protocol, 0, 0, s0, s1, s2, s3, d0, d1,
                d2, d3,
            ];
            let [c0, c1] = (!super::sum::data(&header)).to_be_bytes();
            header[10] = c0;
            header[11] = c1;
            if let Some(head) = frame.get_mut(..IPV4_HEADER_LEN) {
                head.copy_from_slice(&header);
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::options::{TcpOptions, Timestamps};
    use crate::tcp::seq::SeqNum;
    use crate::wire::TcpFlags;
    use core::net::Ipv4Addr;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{Ipv4Packet, Ipv4Repr, TcpPacket, TcpSeqNumber};

    /// The header octets written field by field through smoltcp's setters,
    /// as `write_tcp` used to: the reference for the one-piece writes.
    fn smoltcp_tcp_header(h: &TcpHeader, header_len: usize, out: &mut [u8]) {
        let mut p = TcpPacket::new_unchecked(out);
        p.set_src_port(h.src_port);
        p.set_dst_port(h.dst_port);
        p.set_seq_number(TcpSeqNumber(h.seq.0 as i32));
        p.set_ack_number(TcpSeqNumber(h.ack.0 as i32));
        p.set_header_len(header_len as u8);
        p.clear_flags();
        let f = h.flags;
        p.set_fin(f.contains(TcpFlags::FIN));
        p.set_syn(f.contains(TcpFlags::SYN));
        p.set_rst(f.contains(TcpFlags::RST));
        p.set_psh(f.contains(TcpFlags::PSH));
        p.set_ack(f.contains(TcpFlags::ACK));
        p.set_urg(f.contains(TcpFlags::URG));
        p.set_ece(f.contains(TcpFlags::ECE));
        p.set_cwr(f.contains(TcpFlags::CWR));
        p.set_window_len(h.window);
        p.set_urgent_at(h.urgent);
        p.set_checksum(0);
    }

    #[test]
    fn one_piece_headers_match_smoltcps_field_by_field_ones() {
        let mut rng = smr::rng::SplitMix64::new(0x1f);
        for _ in 0..2000 {
            let r = rng.next_u64();
            // 198.18.0.0/15 both ways: random, and never a martian.
            let src = Ipv4Addr::from_bits(0xc612_0000 | (r as u32 & 0x1_ffff));
            let dst = Ipv4Addr::from_bits(0xc612_0000 | ((r >> 32) as u32 & 0x1_ffff));
            let r = rng.next_u64();
            let header = TcpHeader {
                src_port: r as u16 | 1,
                dst_port: (r >> 16) as u16 | 1,
                seq: SeqNum((r >> 32) as u32),
                ack: SeqNum(rng.next_u64() as u32),
                flags: TcpFlags(rng.next_u64() as u8),
                window: rng.next_u64() as u16,
                urgent: rng.next_u64() as u16,
                options: TcpOptions {
                    mss: (r & 1 == 0).then_some(1460),
                    timestamps: (r & 2 == 0).then_some(Timestamps {
                        value: 7,
                        echo_reply: 9,
                    }),
                    ..TcpOptions::default()
                },
            };
            let payload = [0xa5u8; 13];
            let hop = (r >> 8) as u8;
            let mut buf = [0u8; 128];
            let n = emit_tcp(src.into(), dst.into(), hop, &header, &payload, &mut buf).unwrap();

            let mut reference = [0u8; 20];
            Ipv4Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: IpProtocol::Tcp,
                payload_len: n - 20,
                hop_limit: hop,
            }
            .emit(
                &mut Ipv4Packet::new_unchecked(&mut reference[..]),
                &ChecksumCapabilities::default(),
            );
            assert_eq!(buf[..20], reference, "IPv4 header");

            let header_len = TCP_HEADER_LEN + header.options.emitted_len();
            let mut tcp = [0u8; 20];
            smoltcp_tcp_header(&header, header_len, &mut tcp);
            // The checksum differs by construction (ours is filled in).
            assert_eq!(buf[20..36], tcp[..16], "TCP header before the checksum");
            assert_eq!(buf[38..40], tcp[18..20], "urgent pointer");
            assert_eq!(buf[n - payload.len()..n], payload);
            let parsed = crate::wire::parse(&buf[..n]).expect("our own segment parses");
            match parsed.transport {
                crate::wire::Transport::Tcp(seg) => {
                    assert_eq!(seg.header.flags, header.flags);
                    assert_eq!(seg.header.seq, header.seq);
                    assert_eq!(seg.payload, payload);
                }
                other => panic!("not TCP: {other:?}"),
            }
        }
    }
}
