//! Hostile input: a million random and mutated frames through the parser.
//!
//! The bulk runs from a seeded SplitMix64 loop (proptest's shrinking machinery is
//! far too slow for a million cases); structured cases use proptest. The parser must
//! never panic, every rejection must land in exactly one drop counter, and every
//! well-formed frame we build must parse back to what we built.
//!
//! `HOSTILE_CASES=N` changes the case count; `HOSTILE_SEED=S` the seed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant as WallClock;

use netstack::{
    Datagram, Drop, Echo, EchoKind, SackBlock, SeqNum, TcpFlags, TcpHeader, TcpOptions, Timestamps,
    Transport, WorkerCounters, emit_echo, emit_tcp, parse_frame,
};
use proptest::prelude::*;
use smoltcp::wire::{IpProtocol, checksum};
use smr::rng::SplitMix64;

/// The workspace's seeded generator, with the draws a fuzz loop wants.
struct Rng(SplitMix64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(SplitMix64::new(seed))
    }
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn u8(&mut self) -> u8 {
        self.next() as u8
    }
    fn u16(&mut self) -> u16 {
        self.next() as u16
    }
    fn u32(&mut self) -> u32 {
        self.next() as u32
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

fn addrs(rng: &mut Rng, v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        let mut a = [0u16; 8];
        a[0] = 0xfd00;
        a[7] = rng.u16() | 1;
        let src = Ipv6Addr::from(a);
        a[7] = rng.u16() | 2;
        (src.into(), Ipv6Addr::from(a).into())
    } else {
        let src = Ipv4Addr::new(10, rng.u8(), rng.u8(), rng.u8() | 1);
        let dst = Ipv4Addr::new(192, 168, rng.u8(), rng.u8() | 1);
        (src.into(), dst.into())
    }
}

fn random_header(rng: &mut Rng) -> TcpHeader {
    let mut options = TcpOptions::default();
    if rng.chance(2) {
        options.mss = Some(rng.u16());
    }
    if rng.chance(2) {
        options.window_scale = Some(rng.u8() % 15);
    }
    options.sack_permitted = rng.chance(2);
    if rng.chance(2) {
        options.timestamps = Some(Timestamps {
            value: rng.u32(),
            echo_reply: rng.u32(),
        });
    }
    for _ in 0..rng.below(5) {
        let left = SeqNum(rng.u32());
        options.sack_blocks.push(SackBlock {
            left,
            right: left + rng.below(1 << 20) as usize,
        });
    }
    let window = if rng.chance(4) { 0 } else { rng.u16() };
    TcpHeader {
        src_port: rng.u16() | 1,
        dst_port: rng.u16() | 1,
        seq: SeqNum(rng.u32()),
        ack: SeqNum(rng.u32()),
        // Every combination of the eight control bits, SYN+FIN+RST+... included.
        flags: TcpFlags(rng.u8()),
        window,
        urgent: rng.u16(),
        options,
    }
}

/// Recomputes whatever checksums the (possibly mangled) frame still lets us find,
/// so mutations reach the layers behind the checksums.
fn refill_checksums(bytes: &mut [u8]) {
    let len = bytes.len();
    match bytes.first().map(|b| b >> 4) {
        Some(4) if len >= 20 => {
            let ihl = usize::from(bytes[0] & 0xf) * 4;
            if ihl < 20 || ihl > len {
                return;
            }
            bytes[10..12].fill(0);
            let sum = !checksum::data(&bytes[..ihl]);
            bytes[10..12].copy_from_slice(&sum.to_be_bytes());
            let total = usize::from(u16::from_be_bytes([bytes[2], bytes[3]])).min(len);
            if total < ihl {
                return;
            }
            let pseudo_src = Ipv4Addr::from(<[u8; 4]>::try_from(&bytes[12..16]).unwrap());
            let pseudo_dst = Ipv4Addr::from(<[u8; 4]>::try_from(&bytes[16..20]).unwrap());
            let protocol = bytes[9];
            let l4 = &mut bytes[ihl..total];
            let pseudo = |proto, n| {
                checksum::pseudo_header_v4(&pseudo_src, &pseudo_dst, IpProtocol::from(proto), n)
            };
            fill_upper(l4, protocol, &pseudo, protocol == 1);
        }
        Some(6) if len >= 40 => {
            let end = (40 + usize::from(u16::from_be_bytes([bytes[4], bytes[5]]))).min(len);
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[8..24]).unwrap());
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[24..40]).unwrap());
            let protocol = bytes[6];
            let pseudo =
                |proto, n| checksum::pseudo_header_v6(&src, &dst, IpProtocol::from(proto), n);
            fill_upper(&mut bytes[40..end], protocol, &pseudo, false);
        }
        _ => {}
    }
}

fn fill_upper(l4: &mut [u8], protocol: u8, pseudo: &dyn Fn(u8, u32) -> u16, icmpv4: bool) {
    let at = match protocol {
        6 if l4.len() >= 20 => 16,
        1 | 58 if l4.len() >= 4 => 2,
        _ => return,
    };
    l4[at..at + 2].fill(0);
    let data = checksum::data(l4);
    let sum = if icmpv4 {
        !data
    } else {
        !checksum::combine(&[pseudo(protocol, l4.len() as u32), data])
    };
    l4[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}

/// A well-formed frame: a TCP segment (most of the time) or an echo request.
fn valid_frame(rng: &mut Rng, buf: &mut [u8]) -> (usize, Option<TcpHeader>) {
    let v6 = rng.chance(2);
    let (src, dst) = addrs(rng, v6);
    let mut payload = [0u8; 64];
    let payload_len = rng.below(65) as usize;
    payload.iter_mut().for_each(|b| *b = rng.u8());
    let payload = &payload[..payload_len];
    if rng.chance(5) {
        let echo = Echo {
            ident: rng.u16(),
            seq_no: rng.u16(),
            data: payload,
        };
        let n = emit_echo(src, dst, 64, EchoKind::Request, &echo, buf).unwrap();
        (n, None)
    } else {
        let header = random_header(rng);
        let n = emit_tcp(src, dst, rng.u8(), &header, payload, buf).unwrap();
        (n, Some(header))
    }
}

fn check_valid_frame_parses_back(bytes: &[u8], header: Option<TcpHeader>) {
    let datagram: Datagram<'_> = match parse_frame(bytes) {
        Ok(d) => d,
        Err(reason) => panic!("our own frame was dropped as {reason:?}: {bytes:02x?}"),
    };
    match (datagram.transport, header) {
        (Transport::Tcp(segment), Some(sent)) => {
            let mut expected = sent;
            let kept = segment.header.options.sack_blocks.len();
            let mut blocks = netstack::SackBlocks::default();
            for b in sent.options.sack_blocks.as_slice().iter().take(kept) {
                blocks.push(*b);
            }
            expected.options.sack_blocks = blocks;
            assert_eq!(segment.header, expected);
        }
        (Transport::EchoRequest(_), None) => {}
        (other, _) => panic!("parsed as the wrong kind: {other:?}"),
    }
}

/// One hostile case: returns the frame length in `buf`.
fn hostile_frame(rng: &mut Rng, buf: &mut [u8]) -> usize {
    match rng.below(10) {
        // Pure noise, sometimes with a plausible version nibble.
        0 => {
            let n = rng.below(100) as usize;
            buf[..n].iter_mut().for_each(|b| *b = rng.u8());
            if n > 0 && rng.chance(2) {
                buf[0] = (buf[0] & 0x0f) | if rng.chance(2) { 0x40 } else { 0x60 };
            }
            n
        }
        // A valid frame with one byte changed.
        1 | 2 => {
            let (n, _) = valid_frame(rng, buf);
            let at = rng.below(n as u64) as usize;
            buf[at] = rng.u8();
            n
        }
        // A valid frame cut short.
        3 => {
            let (n, _) = valid_frame(rng, buf);
            rng.below(n as u64) as usize
        }
        // A valid frame with one to three bytes changed, then its checksums fixed,
        // so the damage is seen by the layer that owns it (IHL, data offset, flags,
        // fragment bits, protocol, addresses, ICMP type, option lengths...).
        4..=6 => {
            let (n, _) = valid_frame(rng, buf);
            for _ in 0..=rng.below(3) {
                let at = rng.below(n.min(80) as u64) as usize;
                buf[at] = rng.u8();
            }
            refill_checksums(&mut buf[..n]);
            n
        }
        // A TCP segment whose option area is random bytes (sometimes from port zero),
        // checksums fixed.
        7 => {
            let v6 = rng.chance(2);
            let (src, dst) = addrs(rng, v6);
            let mut header = random_header(rng);
            header.options = TcpOptions {
                mss: Some(1),
                ..TcpOptions::default()
            };
            header.options.timestamps = Some(Timestamps::default());
            header.options.window_scale = Some(0);
            if rng.chance(8) {
                // Port zero is reserved: neither end may use it.
                header.src_port = 0;
            }
            let n = emit_tcp(src, dst, 64, &header, b"", buf).unwrap();
            let ip = if src.is_ipv4() { 20 } else { 40 };
            buf[ip + 20..n].iter_mut().for_each(|b| *b = rng.u8());
            refill_checksums(&mut buf[..n]);
            n
        }
        // An IPv6 frame whose next header is an extension header followed by noise.
        8 => {
            let (n, _) = valid_frame(rng, buf);
            if buf[0] >> 4 == 6 {
                buf[6] = [0, 43, 44, 60, 59, 17][rng.below(6) as usize];
                buf[40..n].iter_mut().take(24).for_each(|b| *b = rng.u8());
                if rng.chance(2) {
                    buf[41] = 0;
                }
            }
            refill_checksums(&mut buf[..n]);
            n
        }
        // Untouched: must parse back exactly.
        _ => {
            let (n, header) = valid_frame(rng, buf);
            check_valid_frame_parses_back(&buf[..n], header);
            n
        }
    }
}

#[test]
fn a_million_hostile_frames_never_panic_and_every_drop_is_counted() {
    let cases: u64 = std::env::var("HOSTILE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe);
    let mut rng = Rng::new(seed);
    let counters = WorkerCounters::new();
    let mut buf = [0u8; 256];
    let mut rejected = 0u64;
    let started = WallClock::now();
    for _ in 0..cases {
        let n = hostile_frame(&mut rng, &mut buf);
        let outcome = parse_frame(&buf[..n]);
        if let Ok(Datagram {
            transport: Transport::Tcp(segment),
            ..
        }) = &outcome
        {
            assert!(segment.payload.len() <= n);
            assert!(segment.header.options.window_scale.is_none_or(|s| s <= 14));
        }
        rejected += u64::from(outcome.is_err());
        counters.record(&outcome);
    }
    let elapsed = started.elapsed();
    let totals = counters.snapshot();
    eprintln!("{cases} cases in {elapsed:?} (seed {seed:#x}), {rejected} rejected");
    for (name, value) in totals.iter() {
        eprintln!("  {name:28} {value}");
    }
    assert_eq!(totals.in_receives, cases);
    assert_eq!(totals.total_drops(), rejected);
    assert_eq!(totals.delivered + rejected, cases);
    if cases >= 100_000 {
        for reason in Drop::ALL {
            assert!(
                totals.drops(reason) > 0,
                "no case reached {}",
                reason.name()
            );
        }
    }
}

fn any_header() -> impl Strategy<Value = TcpHeader> {
    (any::<u64>()).prop_map(|seed| random_header(&mut Rng::new(seed)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_emitted_segment_parses_back(
        seed: u64,
        v6: bool,
        header in any_header(),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let (src, dst) = addrs(&mut Rng::new(seed), v6);
        let mut buf = [0u8; 512];
        let n = emit_tcp(src, dst, 64, &header, &payload, &mut buf).unwrap();
        let datagram = parse_frame(&buf[..n]).unwrap();
        prop_assert_eq!((datagram.src, datagram.dst), (src, dst));
        let Transport::Tcp(segment) = datagram.transport else {
            return Err(TestCaseError::fail("not TCP"));
        };
        prop_assert_eq!(segment.payload, &payload[..]);
        prop_assert_eq!(segment.header.flags, header.flags);
        prop_assert_eq!(segment.header.seq, header.seq);
        prop_assert_eq!(segment.header.ack, header.ack);
        prop_assert_eq!(segment.header.window, header.window);
        prop_assert_eq!(segment.header.options.mss, header.options.mss);
        prop_assert_eq!(segment.header.options.timestamps, header.options.timestamps);
        let kept = segment.header.options.sack_blocks.len();
        prop_assert_eq!(
            segment.header.options.sack_blocks.as_slice(),
            &header.options.sack_blocks.as_slice()[..kept]
        );
    }

    #[test]
    fn every_emitted_echo_parses_back(
        seed: u64,
        v6: bool,
        ident: u16,
        seq_no: u16,
        data in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let (src, dst) = addrs(&mut Rng::new(seed), v6);
        let echo = Echo { ident, seq_no, data: &data };
        let mut buf = [0u8; 512];
        let n = emit_echo(src, dst, 64, EchoKind::Request, &echo, &mut buf).unwrap();
        let datagram = parse_frame(&buf[..n]).unwrap();
        prop_assert_eq!(datagram.transport, Transport::EchoRequest(echo));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = parse_frame(&bytes);
    }
}
