//! SYN segments for the flood, written with `smoltcp::wire` straight into a
//! send buffer: an IPv4 header (random IP ID, TTL 64) or an IPv6 header
//! (hop limit 64, the same random 16 bits as flow label) and a TCP header
//! with only SYN set, a random ISN, and the options `--options` asks for,
//! both checksums filled. Building one is a few hundred nanoseconds, far
//! below the cost of handing it to the kernel, so every packet is written
//! fresh into a reused batch buffer instead of patching a template by hand.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpControl, TcpPacket,
    TcpRepr, TcpSeqNumber, TcpTimestampRepr,
};
use smr::rng::SplitMix64;
use std::net::IpAddr;

/// IPv6 header (40) plus the largest TCP header we write (20 + 4 + 3 + 2 +
/// 10 option bytes, padded to 40); an IPv4 SYN is 20 bytes shorter.
pub const MAX_SYN_LEN: usize = 80;

/// Which TCP options each SYN carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OptionsMode {
    /// Each option present or not at random, with random values: exercises
    /// every path of the daemon's option parsing and SYN-cookie encoding.
    Random,
    /// What Linux sends: MSS 1460, window scale 7, SACK-permitted, timestamps.
    Fixed,
    /// A bare 20-byte TCP header.
    None,
}

/// The option values of one SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SynOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub tsval: Option<u32>,
}

impl SynOptions {
    /// Draw the options for one SYN under `mode`.
    pub fn draw(mode: OptionsMode, rng: &mut SplitMix64) -> SynOptions {
        match mode {
            OptionsMode::None => SynOptions::default(),
            OptionsMode::Fixed => SynOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                tsval: Some(rng.next_u32()),
            },
            OptionsMode::Random => {
                const MSS: [u16; 6] = [536, 1220, 1360, 1440, 1460, 8960];
                let bits = rng.next_u64();
                SynOptions {
                    mss: (bits & 1 != 0).then(|| MSS[((bits >> 8) % MSS.len() as u64) as usize]),
                    // RFC 7323 caps the shift at 14; a receiver clamps larger
                    // ones, so 15 is sent now and then on purpose.
                    window_scale: (bits & 2 != 0).then_some(((bits >> 16) % 16) as u8),
                    sack_permitted: bits & 4 != 0,
                    tsval: (bits & 8 != 0).then_some((bits >> 32) as u32),
                }
            }
        }
    }
}

/// The fields that differ between SYNs of one flood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syn {
    /// Source and destination are of one family.
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub isn: u32,
    /// The IPv4 ID, or the low 16 bits of the IPv6 flow label.
    pub ip_id: u16,
    pub window: u16,
    pub options: SynOptions,
}

/// Write `syn` as an IPv4 or IPv6 packet at the start of `buf` and return
/// its length. `buf` must hold at least [`MAX_SYN_LEN`] bytes; source and
/// destination must be of one family (a mixed pair panics: a bug, not input).
pub fn write_syn(buf: &mut [u8], syn: &Syn) -> usize {
    let tcp = TcpRepr {
        src_port: syn.src_port,
        dst_port: syn.dst_port,
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(syn.isn as i32),
        ack_number: None,
        window_len: syn.window,
        window_scale: syn.options.window_scale,
        max_seg_size: syn.options.mss,
        sack_permitted: syn.options.sack_permitted,
        sack_ranges: [None; 3],
        timestamp: syn.options.tsval.map(|v| TcpTimestampRepr::new(v, 0)),
        payload: &[],
    };
    let caps = ChecksumCapabilities::default();
    let (header_len, src, dst) = match (syn.src, syn.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let ip = Ipv4Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: IpProtocol::Tcp,
                payload_len: tcp.buffer_len(),
                hop_limit: 64,
            };
            let len = ip.buffer_len() + tcp.buffer_len();
            let mut ip_packet = Ipv4Packet::new_unchecked(&mut buf[..len]);
            ip.emit(&mut ip_packet, &caps);
            ip_packet.set_ident(syn.ip_id);
            // The ident changed after emit filled the checksum.
            ip_packet.fill_checksum();
            (ip.buffer_len(), IpAddress::Ipv4(src), IpAddress::Ipv4(dst))
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let ip = Ipv6Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: IpProtocol::Tcp,
                payload_len: tcp.buffer_len(),
                hop_limit: 64,
            };
            let len = ip.buffer_len() + tcp.buffer_len();
            let mut ip_packet = Ipv6Packet::new_unchecked(&mut buf[..len]);
            ip.emit(&mut ip_packet);
            ip_packet.set_flow_label(u32::from(syn.ip_id));
            (ip.buffer_len(), IpAddress::Ipv6(src), IpAddress::Ipv6(dst))
        }
        (src, dst) => panic!("a SYN from {src} to {dst} mixes address families"),
    };
    let len = header_len + tcp.buffer_len();
    let mut tcp_packet = TcpPacket::new_unchecked(&mut buf[header_len..len]);
    tcp.emit(&mut tcp_packet, &src, &dst, &caps);
    len
}
