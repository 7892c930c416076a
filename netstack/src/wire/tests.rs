use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::tcp::options::{TcpOptions, Timestamps};
use crate::tcp::seq::SeqNum;

const PEER4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const US4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const PEER6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
const US6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));

fn syn() -> TcpHeader {
    TcpHeader {
        src_port: 40000,
        dst_port: 80,
        seq: SeqNum(0xfffffff0),
        ack: SeqNum(0),
        flags: TcpFlags::SYN,
        window: 65535,
        urgent: 0,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some(Timestamps {
                value: 1,
                echo_reply: 0,
            }),
            ..TcpOptions::default()
        },
    }
}

fn frame(src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 1600];
    let n = emit_tcp(src, dst, 64, &syn(), payload, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// Recomputes the IPv4 header checksum after a test edits the header.
fn refill_ipv4_checksum(frame: &mut [u8]) {
    let mut packet = smoltcp::wire::Ipv4Packet::new_unchecked(frame);
    packet.fill_checksum();
}

#[test]
fn a_syn_round_trips_on_both_families() {
    for (src, dst) in [(PEER4, US4), (PEER6, US6)] {
        let bytes = frame(src, dst, b"hello");
        let datagram = parse(&bytes).unwrap();
        assert_eq!(
            (datagram.src, datagram.dst, datagram.hop_limit),
            (src, dst, 64)
        );
        let Transport::Tcp(segment) = datagram.transport else {
            panic!("not TCP: {datagram:?}");
        };
        assert_eq!(segment.header, syn());
        assert_eq!(segment.payload, b"hello");
        assert_eq!(segment.seq_len(), 6);
    }
}

#[test]
fn trailing_bytes_past_the_ip_length_are_trimmed() {
    let mut bytes = frame(PEER4, US4, b"x");
    bytes.extend_from_slice(&[0xee; 7]);
    let Transport::Tcp(segment) = parse(&bytes).unwrap().transport else {
        panic!("not TCP");
    };
    assert_eq!(segment.payload, b"x");
}

#[test]
fn each_ip_defect_has_its_own_reason() {
    assert_eq!(parse(&[]), Err(Drop::TruncatedIp));
    assert_eq!(parse(&[0x45; 10]), Err(Drop::TruncatedIp));
    assert_eq!(parse(&[0x55; 40]), Err(Drop::BadIpVersion));
    assert_eq!(parse(&[0x60; 39]), Err(Drop::TruncatedIp));

    let good = frame(PEER4, US4, b"");
    let mut short_ihl = good.clone();
    short_ihl[0] = 0x44;
    assert_eq!(parse(&short_ihl), Err(Drop::BadIpHeaderLen));

    let mut bad_sum = good.clone();
    bad_sum[10] ^= 1;
    assert_eq!(parse(&bad_sum), Err(Drop::BadIpChecksum));

    let mut fragment = good.clone();
    fragment[6] |= 0x20; // more fragments
    refill_ipv4_checksum(&mut fragment);
    assert_eq!(parse(&fragment), Err(Drop::Fragment));

    let mut udp = good.clone();
    udp[9] = 17;
    refill_ipv4_checksum(&mut udp);
    assert_eq!(parse(&udp), Err(Drop::UnsupportedProtocol));

    let mut long = good.clone();
    long[3] += 1; // total length one past the frame
    refill_ipv4_checksum(&mut long);
    assert_eq!(parse(&long), Err(Drop::TruncatedIp));
}

#[test]
fn martian_sources_and_destinations_are_dropped() {
    let martians: [(IpAddr, IpAddr); 7] = [
        (Ipv4Addr::UNSPECIFIED.into(), US4),
        (Ipv4Addr::BROADCAST.into(), US4),
        (Ipv4Addr::new(224, 0, 0, 1).into(), US4),
        (Ipv4Addr::LOCALHOST.into(), US4),
        (PEER4, Ipv4Addr::BROADCAST.into()),
        (Ipv6Addr::UNSPECIFIED.into(), US6),
        (PEER6, "ff02::1".parse::<Ipv6Addr>().unwrap().into()),
    ];
    for (src, dst) in martians {
        assert_eq!(
            parse(&frame(src, dst, b"")),
            Err(Drop::MartianAddress),
            "{src} -> {dst}"
        );
    }
    let mapped: IpAddr = "::ffff:10.0.0.2".parse::<Ipv6Addr>().unwrap().into();
    assert_eq!(parse(&frame(mapped, US6, b"")), Err(Drop::MartianAddress));
}

#[test]
fn each_tcp_defect_has_its_own_reason() {
    let good = frame(PEER4, US4, b"data");
    let tcp_at = 20;

    let mut offset_small = good.clone();
    offset_small[tcp_at + 12] = 0x40;
    assert_eq!(parse(&offset_small), Err(Drop::BadTcpOffset));

    let mut offset_large = frame(PEER4, US4, b"");
    offset_large[tcp_at + 12] = 0xf0; // 60 octets, but the segment has 40
    assert_eq!(parse(&offset_large), Err(Drop::BadTcpOffset));

    let mut bad_sum = good.clone();
    bad_sum[tcp_at + 16] ^= 0x80;
    assert_eq!(parse(&bad_sum), Err(Drop::BadTcpChecksum));

    let mut header = syn();
    header.src_port = 0;
    let mut buf = [0u8; 128];
    let n = emit_tcp(PEER4, US4, 64, &header, b"", &mut buf).unwrap();
    assert_eq!(parse(&buf[..n]), Err(Drop::BadTcpPort));

    // Truncate the IP length so TCP gets 19 octets.
    let mut truncated = good[..39].to_vec();
    truncated[2..4].copy_from_slice(&39u16.to_be_bytes());
    refill_ipv4_checksum(&mut truncated);
    assert_eq!(parse(&truncated), Err(Drop::TruncatedTcp));
}

#[test]
fn a_malformed_option_drops_the_segment() {
    let mut bytes = frame(PEER6, US6, b"");
    // The MSS option starts right after the fixed TCP header; give it length 0 and
    // keep the checksum right by compensating in the urgent pointer.
    let opt = 40 + 20;
    assert_eq!(bytes[opt], 2);
    bytes[opt + 1] = 0;
    bytes[40 + 19] = 4; // the urgent pointer's low octet balances the 4 removed above
    assert_eq!(parse(&bytes), Err(Drop::BadTcpOption));
}

#[test]
fn ipv6_extension_headers_are_skipped_or_refused() {
    let base = frame(PEER6, US6, b"");
    let with_ext = |next: u8, ext: &[u8]| {
        let mut bytes = base[..40].to_vec();
        let payload_len = (base.len() - 40 + ext.len()) as u16;
        bytes[4..6].copy_from_slice(&payload_len.to_be_bytes());
        bytes[6] = next;
        bytes.extend_from_slice(ext);
        bytes.extend_from_slice(&base[40..]);
        bytes
    };
    // Hop-by-Hop with PadN only: skipped.
    let hbh = with_ext(0, &[6, 0, 1, 4, 0, 0, 0, 0]);
    assert!(matches!(parse(&hbh).unwrap().transport, Transport::Tcp(_)));
    // Destination options with an option whose action is "discard": refused.
    let dst = with_ext(60, &[6, 0, 0x80, 4, 0, 0, 0, 0]);
    assert_eq!(parse(&dst), Err(Drop::BadIpv6ExtHeader));
    // Routing header with segments left: refused; with none left: skipped.
    assert_eq!(
        parse(&with_ext(43, &[6, 0, 0, 1, 0, 0, 0, 0])),
        Err(Drop::BadIpv6ExtHeader)
    );
    assert!(parse(&with_ext(43, &[6, 0, 0, 0, 0, 0, 0, 0])).is_ok());
    // A real fragment is a fragment; an atomic one is skipped.
    assert_eq!(
        parse(&with_ext(44, &[6, 0, 0, 1, 0, 0, 0, 9])),
        Err(Drop::Fragment)
    );
    assert!(parse(&with_ext(44, &[6, 0, 0, 0, 0, 0, 0, 9])).is_ok());
    // Hop-by-Hop anywhere but first is illegal.
    let second_hbh = with_ext(60, &[0, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0]);
    assert_eq!(parse(&second_hbh), Err(Drop::BadIpv6ExtHeader));
    // A header running past the payload.
    assert_eq!(parse(&with_ext(60, &[6, 9])), Err(Drop::BadIpv6ExtHeader));
}

#[test]
fn echo_requests_are_delivered_and_replies_verify() {
    for (src, dst) in [(PEER4, US4), (PEER6, US6)] {
        let echo = Echo {
            ident: 7,
            seq_no: 9,
            data: b"ping!",
        };
        let mut buf = [0u8; 128];
        let n = emit_echo(src, dst, 64, EchoKind::Request, &echo, &mut buf).unwrap();
        let datagram = parse(&buf[..n]).unwrap();
        assert_eq!(datagram.transport, Transport::EchoRequest(echo));

        let mut reply = [0u8; 128];
        let m = emit_echo(dst, src, 64, EchoKind::Reply, &echo, &mut reply).unwrap();
        assert_eq!(m, n);
        // A reply is well-formed but not something we answer.
        assert_eq!(parse(&reply[..m]), Err(Drop::IcmpIgnored));

        let mut bad = buf;
        bad[n - 1] ^= 1;
        assert_eq!(parse(&bad[..n]), Err(Drop::BadIcmpChecksum));
        assert_eq!(
            parse(&buf[..n - 6 - echo.data.len() + 3]),
            Err(Drop::TruncatedIp)
        );
    }
}

#[test]
fn emission_reports_the_callers_mistakes() {
    let mut small = [0u8; 30];
    assert_eq!(
        emit_tcp(PEER4, US4, 64, &syn(), b"", &mut small),
        Err(EmitError::BufferTooSmall { needed: 60 })
    );
    assert_eq!(
        emit_tcp(PEER4, US6, 64, &syn(), b"", &mut small),
        Err(EmitError::AddressFamilyMismatch)
    );
    let huge = vec![0u8; 70_000];
    let mut buf = vec![0u8; 80_000];
    assert_eq!(
        emit_tcp(PEER6, US6, 64, &syn(), &huge, &mut buf),
        Err(EmitError::TooLong)
    );
}
