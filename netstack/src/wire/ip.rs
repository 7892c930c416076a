//! The IP layer of a TUN frame: version dispatch, header validation, martians.
//!
//! A TUN device in `IFF_NO_PI` mode hands us bare IP packets, so the first nibble
//! is the only hint of what follows. This file turns the frame into an [`IpLayer`]:
//! the two addresses, the hop limit, the upper-layer protocol and exactly the octets
//! the IP header says belong to it (trailing bytes past the IP length are trimmed,
//! as the kernel does). Invariant: every byte read is behind a bounds check made
//! here or by a smoltcp `check_len`, and every rejection is a [`Drop`].
//!
//! IPv6 extension headers are skipped when a host may skip them (RFC 8200 §4):
//! Hop-by-Hop (first position only) and Destination Options whose options are all
//! padding or marked "skip if unrecognised"; a Routing header with no segments
//! left; an atomic Fragment header (offset 0, no more fragments; RFC 6946). Anything
//! else in the chain, more than [`MAX_IPV6_EXT_HEADERS`] of them, or one that is cut
//! short, is `bad_ipv6_ext_header`; a real fragment is `ip_fragment`.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::wire::{Ipv4Packet, Ipv6ExtHeader, Ipv6Packet};

use super::drop::Drop;
use super::sum;

pub(crate) const PROTO_HOP_BY_HOP: u8 = 0;
pub(crate) const PROTO_ICMP: u8 = 1;
pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_IPV6_ROUTE: u8 = 43;
pub(crate) const PROTO_IPV6_FRAG: u8 = 44;
pub(crate) const PROTO_ICMPV6: u8 = 58;
pub(crate) const PROTO_IPV6_OPTS: u8 = 60;

/// The longest IPv6 extension header chain we walk before giving up.
pub const MAX_IPV6_EXT_HEADERS: usize = 8;

const IPV4_MIN_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;

/// Source and destination of one family; a pair of different families cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IpPair {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

impl IpPair {
    pub(crate) fn new(src: IpAddr, dst: IpAddr) -> Option<IpPair> {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Some(IpPair::V4(s, d)),
            (IpAddr::V6(s), IpAddr::V6(d)) => Some(IpPair::V6(s, d)),
            _ => None,
        }
    }

    pub(crate) fn src(self) -> IpAddr {
        match self {
            IpPair::V4(s, _) => IpAddr::V4(s),
            IpPair::V6(s, _) => IpAddr::V6(s),
        }
    }

    pub(crate) fn dst(self) -> IpAddr {
        match self {
            IpPair::V4(_, d) => IpAddr::V4(d),
            IpPair::V6(_, d) => IpAddr::V6(d),
        }
    }

    /// The RFC 1071 sum of the upper-layer pseudo-header (RFC 9293 §3.1 for IPv4,
    /// RFC 8200 §8.1 for IPv6), not complemented. `len` is at most 65535 here: an
    /// IPv4 packet cannot be longer, and we do not accept IPv6 jumbograms.
    pub(crate) fn pseudo_header_sum(self, protocol: u8, len: usize) -> u16 {
        match self {
            IpPair::V4(s, d) => sum::pseudo_header_v4(s, d, protocol, len as u16),
            IpPair::V6(s, d) => sum::pseudo_header_v6(s, d, protocol, len as u32),
        }
    }

    /// The upper-layer segment's checksum field verifies over `bytes`.
    pub(crate) fn verify(self, protocol: u8, bytes: &[u8]) -> bool {
        let pseudo = self.pseudo_header_sum(protocol, bytes.len());
        sum::combine(pseudo, sum::data(bytes)) == !0
    }

    /// The value to store in an upper-layer checksum field that is zero in `bytes`.
    pub(crate) fn checksum(self, protocol: u8, bytes: &[u8]) -> u16 {
        let pseudo = self.pseudo_header_sum(protocol, bytes.len());
        !sum::combine(pseudo, sum::data(bytes))
    }
}

/// An IP header that passed validation, and the upper-layer octets it carries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IpLayer<'a> {
    pub(crate) addrs: IpPair,
    pub(crate) hop_limit: u8,
    pub(crate) protocol: u8,
    pub(crate) payload: &'a [u8],
}

/// Validates the IP header of a TUN frame.
pub(crate) fn parse_ip(frame: &[u8]) -> Result<IpLayer<'_>, Drop> {
    let first = *frame.first().ok_or(Drop::TruncatedIp)?;
    match first >> 4 {
        4 => parse_ipv4(frame),
        6 => parse_ipv6(frame),
        _ => Err(Drop::BadIpVersion),
    }
}

fn parse_ipv4(frame: &[u8]) -> Result<IpLayer<'_>, Drop> {
    if frame.len() < IPV4_MIN_HEADER_LEN {
        return Err(Drop::TruncatedIp);
    }
    let packet = Ipv4Packet::new_unchecked(frame);
    let header_len = usize::from(packet.header_len());
    if header_len < IPV4_MIN_HEADER_LEN {
        return Err(Drop::BadIpHeaderLen);
    }
    if frame.len() < header_len {
        return Err(Drop::TruncatedIp);
    }
    let total_len = usize::from(packet.total_len());
    if total_len < header_len {
        return Err(Drop::BadIpHeaderLen);
    }
    if frame.len() < total_len {
        return Err(Drop::TruncatedIp);
    }
    // Everything smoltcp's accessors rely on holds now; let it confirm.
    let packet = Ipv4Packet::new_checked(frame).map_err(|_| Drop::TruncatedIp)?;
    // RFC 1122 §3.2.1.2: a datagram whose header checksum fails MUST be discarded
    // silently. Options (IHL > 5) are covered by the checksum and otherwise ignored.
    if sum::data(frame.get(..header_len).ok_or(Drop::TruncatedIp)?) != !0 {
        return Err(Drop::BadIpChecksum);
    }
    if packet.more_frags() || packet.frag_offset() != 0 {
        return Err(Drop::Fragment);
    }
    let (src, dst) = (packet.src_addr(), packet.dst_addr());
    if is_martian_v4_source(src) || is_martian_v4_destination(dst) {
        return Err(Drop::MartianAddress);
    }
    Ok(IpLayer {
        addrs: IpPair::V4(src, dst),
        hop_limit: packet.hop_limit(),
        protocol: u8::from(packet.next_header()),
        payload: frame.get(header_len..total_len).ok_or(Drop::TruncatedIp)?,
    })
}

/// RFC 1122 §3.2.1.3 and RFC 1812 §5.3.7: these can never be the source of a
/// unicast conversation reaching us from a TUN device. (Loopback too: Linux drops
/// it as martian on any interface but `lo`.)
fn is_martian_v4_source(src: Ipv4Addr) -> bool {
    let first = src.octets()[0];
    first == 0 || first == 127 || src.is_multicast() || first >= 240
}

/// TCP is unicast only, and we will not answer an echo sent to a broadcast or
/// multicast group (RFC 1122 §3.2.2.6 allows silence; it denies smurf amplification).
fn is_martian_v4_destination(dst: Ipv4Addr) -> bool {
    let first = dst.octets()[0];
    first == 0 || dst.is_multicast() || first >= 240
}

fn is_martian_v6_source(src: Ipv6Addr) -> bool {
    src.is_unspecified()
        || src.is_loopback()
        || src.is_multicast()
        || src.to_ipv4_mapped().is_some()
}

fn is_martian_v6_destination(dst: Ipv6Addr) -> bool {
    dst.is_unspecified() || dst.is_multicast()
}

fn parse_ipv6(frame: &[u8]) -> Result<IpLayer<'_>, Drop> {
    if frame.len() < IPV6_HEADER_LEN {
        return Err(Drop::TruncatedIp);
    }
    let packet = Ipv6Packet::new_unchecked(frame);
    let end = IPV6_HEADER_LEN + usize::from(packet.payload_len());
    if frame.len() < end {
        return Err(Drop::TruncatedIp);
    }
    let packet = Ipv6Packet::new_checked(frame).map_err(|_| Drop::TruncatedIp)?;
    let (src, dst) = (packet.src_addr(), packet.dst_addr());
    if is_martian_v6_source(src) || is_martian_v6_destination(dst) {
        return Err(Drop::MartianAddress);
    }
    let mut payload = frame.get(IPV6_HEADER_LEN..end).ok_or(Drop::TruncatedIp)?;
    let mut protocol = u8::from(packet.next_header());
    let mut walked = 0;
    while matches!(
        protocol,
        PROTO_HOP_BY_HOP | PROTO_IPV6_OPTS | PROTO_IPV6_ROUTE | PROTO_IPV6_FRAG
    ) {
        if walked == MAX_IPV6_EXT_HEADERS || (protocol == PROTO_HOP_BY_HOP && walked > 0) {
            return Err(Drop::BadIpv6ExtHeader);
        }
        walked += 1;
        let (next, rest) = skip_ext_header(protocol, payload)?;
        protocol = next;
        payload = rest;
    }
    Ok(IpLayer {
        addrs: IpPair::V6(src, dst),
        hop_limit: packet.hop_limit(),
        protocol,
        payload,
    })
}

/// Skips one extension header, returning the next header value and what follows.
fn skip_ext_header(protocol: u8, bytes: &[u8]) -> Result<(u8, &[u8]), Drop> {
    if protocol == PROTO_IPV6_FRAG {
        // RFC 8200 §4.5: a fixed 8 octets; the second is reserved and ignored, so it
        // is not a length. Octets 2-3 hold the offset (13 bits), 2 reserved bits and M.
        let &[next, _, hi, lo, ..] = bytes.first_chunk::<8>().ok_or(Drop::BadIpv6ExtHeader)?;
        let atomic = u16::from_be_bytes([hi, lo]) & 0xfff9 == 0;
        if !atomic {
            return Err(Drop::Fragment);
        }
        return Ok((next, bytes.get(8..).unwrap_or(&[])));
    }
    let header = Ipv6ExtHeader::new_checked(bytes).map_err(|_| Drop::BadIpv6ExtHeader)?;
    let len = (usize::from(header.header_len()) + 1) * 8;
    let next = u8::from(header.next_header());
    // The octets after Next Header and Hdr Ext Len.
    let body = header.payload();
    if protocol == PROTO_IPV6_ROUTE {
        // RFC 8200 §4.4: with segments left, the packet is not for us yet, and we do
        // not forward.
        let segments_left = *body.get(1).ok_or(Drop::BadIpv6ExtHeader)?;
        if segments_left != 0 {
            return Err(Drop::BadIpv6ExtHeader);
        }
    } else if !options_may_be_skipped(body) {
        return Err(Drop::BadIpv6ExtHeader);
    }
    let rest = bytes.get(len..).ok_or(Drop::BadIpv6ExtHeader)?;
    Ok((next, rest))
}

/// RFC 8200 §4.2: the two high bits of an option type say what a node that does not
/// recognise it must do; `00` is "skip it". We recognise only padding.
fn options_may_be_skipped(mut options: &[u8]) -> bool {
    const PAD1: u8 = 0;
    while let Some(&kind) = options.first() {
        if kind == PAD1 {
            options = options.get(1..).unwrap_or(&[]);
            continue;
        }
        let Some(&len) = options.get(1) else {
            return false;
        };
        if kind >> 6 != 0 {
            return false;
        }
        match options.get(2 + usize::from(len)..) {
            Some(rest) => options = rest,
            None => return false,
        }
    }
    true
}
