//! TCP segments on the wire: the parsed header view, its validation, its emission.
//!
//! Reading goes through smoltcp's zero-copy `TcpPacket` once the data offset is known
//! to lie inside the segment; options go through our own parser
//! ([`TcpOptions`](crate::TcpOptions)), because smoltcp's `TcpRepr` drops the
//! ECE/CWR/URG bits, refuses SYN+FIN (a state-machine decision, not a wire one) and
//! keeps at most three SACK blocks. Invariant: a [`TcpSegment`] handed out has a
//! verified checksum, non-zero ports, a data offset inside the segment and walkable
//! options; emission writes only into the caller's buffer.

use core::fmt;
use core::ops::BitOr;

use smoltcp::wire::TcpPacket;

use super::drop::Drop;
use super::ip::{IpPair, PROTO_TCP};
use crate::tcp::options::TcpOptions;
use crate::tcp::seq::SeqNum;

/// Length of the TCP header without options.
pub const TCP_HEADER_LEN: usize = 20;

/// The eight control bits of a TCP header (RFC 9293 §3.1, RFC 3168 §6.1 for ECE/CWR).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronise sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// The acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// The urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// Every bit of `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// At least one bit of `other` is set in `self`.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;

    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("(none)")?;
        }
        Ok(())
    }
}

/// Every field of a TCP header, as parsed or as to be emitted (checksum and data
/// offset are derived, so they are not here).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number of the first octet (or of the SYN).
    pub seq: SeqNum,
    /// Acknowledgment number; meaningful only with [`TcpFlags::ACK`].
    pub ack: SeqNum,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window, unscaled as on the wire.
    pub window: u16,
    /// Urgent pointer; meaningful only with [`TcpFlags::URG`].
    pub urgent: u16,
    /// Options.
    pub options: TcpOptions,
}

/// A TCP segment that passed validation: header and a zero-copy payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// The header.
    pub header: TcpHeader,
    /// The data octets, borrowed from the frame.
    pub payload: &'a [u8],
}

impl TcpSegment<'_> {
    /// Length in sequence space: payload plus one for SYN and one for FIN.
    pub fn seq_len(&self) -> usize {
        self.payload.len()
            + usize::from(self.header.flags.contains(TcpFlags::SYN))
            + usize::from(self.header.flags.contains(TcpFlags::FIN))
    }
}

/// Validates a TCP segment carried between `addrs`; its checksum is not
/// summed when `checksum_trusted` (the driver says the link verified it, or
/// that it comes from this host with the sum left to offload).
pub(crate) fn parse_tcp(
    addrs: IpPair,
    bytes: &[u8],
    checksum_trusted: bool,
) -> Result<TcpSegment<'_>, Drop> {
    if bytes.len() < TCP_HEADER_LEN {
        return Err(Drop::TruncatedTcp);
    }
    let header_len = usize::from(TcpPacket::new_unchecked(bytes).header_len());
    if header_len < TCP_HEADER_LEN || header_len > bytes.len() {
        return Err(Drop::BadTcpOffset);
    }
    let packet = TcpPacket::new_checked(bytes).map_err(|_| Drop::BadTcpOffset)?;
    // RFC 9293 §3.1: the checksum covers the pseudo-header, the header and the data.
    if !checksum_trusted && !addrs.verify(PROTO_TCP, bytes) {
        return Err(Drop::BadTcpChecksum);
    }
    if packet.src_port() == 0 || packet.dst_port() == 0 {
        return Err(Drop::BadTcpPort);
    }
    let options = TcpOptions::parse(packet.options()).map_err(|_| Drop::BadTcpOption)?;
    // Byte 13 holds the eight control bits; the top nibble of byte 12 is the offset
    // and its low four bits are reserved (the historic NS bit included): ignored.
    let flags = TcpFlags(*bytes.get(13).ok_or(Drop::TruncatedTcp)?);
    Ok(TcpSegment {
        header: TcpHeader {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq: SeqNum(packet.seq_number().0 as u32),
            ack: SeqNum(packet.ack_number().0 as u32),
            flags,
            window: packet.window_len(),
            urgent: packet.urgent_at(),
            options,
        },
        payload: packet.payload(),
    })
}

/// Writes header, options and payload into `out`, which is exactly the segment's
/// length, and fills the checksum for `addrs`; with `partial`, only the
/// pseudo-header's sum, folded and not complemented (what Linux leaves in a
/// `CHECKSUM_PARTIAL` segment), for the link to add the segment's own sum to.
pub(crate) fn write_tcp(
    addrs: IpPair,
    header: &TcpHeader,
    payload: &[u8],
    out: &mut [u8],
    partial: bool,
) {
    let options_len = header.options.emitted_len();
    let header_len = TCP_HEADER_LEN + options_len;
    // The fixed header in one write, in the layout of RFC 9293 §3.1: the
    // data offset in the top nibble of octet 12 (its reserved bits zero),
    // the eight control bits in octet 13 as `TcpFlags` holds them (parse
    // reads them from there), the checksum zero until summed below.
    let [s0, s1] = header.src_port.to_be_bytes();
    let [d0, d1] = header.dst_port.to_be_bytes();
    let [q0, q1, q2, q3] = header.seq.0.to_be_bytes();
    let [a0, a1, a2, a3] = header.ack.0.to_be_bytes();
    let [w0, w1] = header.window.to_be_bytes();
    let [u0, u1] = header.urgent.to_be_bytes();
    let fixed: [u8; TCP_HEADER_LEN] = [
        s0,
        s1,
        d0,
        d1,
        q0,
        q1,
        q2,
        q3,
        a0,
        a1,
        a2,
        a3,
        ((header_len / 4) as u8) << 4,
        header.flags.0,
        w0,
        w1,
        0,
        0,
        u0,
        u1,
    ];
    // The caller sized `out` from `emitted_len`, so every write fits.
    if let Some(head) = out.get_mut(..TCP_HEADER_LEN) {
        head.copy_from_slice(&fixed);
    }
    if let Some(opts) = out.get_mut(TCP_HEADER_LEN..header_len) {
        let _ = header.options.emit(opts);
    }
    if let Some(data) = out.get_mut(header_len..) {
        data.copy_from_slice(payload);
    }
    let sum = if partial {
        addrs.pseudo_header_sum(PROTO_TCP, out.len())
    } else {
        addrs.checksum(PROTO_TCP, out)
    };
    TcpPacket::new_unchecked(out).set_checksum(sum);
}
