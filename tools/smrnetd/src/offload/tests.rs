use netstack::{PartialChecksum, Segmentation, TxFrame};

use super::*;

fn header(flags: u8, gso_type: u8, csum_start: u16, csum_offset: u16) -> Vec<u8> {
    let mut h = vec![flags, gso_type];
    h.extend_from_slice(&54u16.to_le_bytes());
    h.extend_from_slice(&1448u16.to_le_bytes());
    h.extend_from_slice(&csum_start.to_le_bytes());
    h.extend_from_slice(&csum_offset.to_le_bytes());
    h
}

fn frame(h: Vec<u8>, datagram_len: usize) -> Vec<u8> {
    let mut f = h;
    f.resize(VNET_HDR_LEN + datagram_len, 0x45);
    f
}

#[test]
fn a_kernel_tso_frame_is_one_trusted_super_segment() {
    let f = frame(header(F_NEEDS_CSUM, GSO_TCPV4, 20, 16), 30_000);
    let r = parse(&f).unwrap();
    assert_eq!(r.datagram.len(), 30_000);
    assert!(r.checksum_trusted && r.super_segment);
    let f = frame(header(F_DATA_VALID, GSO_TCPV6 | GSO_ECN, 0, 0), 100);
    let r = parse(&f).unwrap();
    assert!(r.checksum_trusted && r.super_segment);
    let f = frame(header(0, GSO_NONE, 0, 0), 100);
    let r = parse(&f).unwrap();
    assert!(!r.checksum_trusted && !r.super_segment);
}

#[test]
fn hostile_headers_are_refused_by_name_and_never_panic() {
    assert_eq!(parse(&[]), Err(Reject::Truncated));
    assert_eq!(parse(&[0; 9]), Err(Reject::Truncated));
    // UDP (3), UDP_L4 (5) and unknown types.
    for t in [3u8, 5, 2, 0x7f, 0xff] {
        let f = frame(header(0, t, 0, 0), 100);
        assert_eq!(parse(&f), Err(Reject::BadGsoType), "type {t}");
    }
    // The checksum field must lie inside the datagram.
    let f = frame(header(F_NEEDS_CSUM, GSO_NONE, 90, 16), 100);
    assert_eq!(parse(&f), Err(Reject::BadCsumOffset));
    let f = frame(header(F_NEEDS_CSUM, GSO_NONE, u16::MAX, u16::MAX), 100);
    assert_eq!(parse(&f), Err(Reject::BadCsumOffset));
    let f = frame(header(F_NEEDS_CSUM, GSO_NONE, 82, 16), 100);
    assert!(
        parse(&f).is_ok(),
        "the field's last octet is the datagram's last"
    );
    // Every short frame and every header byte value: returns.
    for len in 0..VNET_HDR_LEN + 4 {
        for b in 0..=255u8 {
            let _ = parse(&vec![b; len]);
        }
    }
    let stats = OffloadStats::default();
    stats.reject(Reject::BadGsoType);
    stats.reject(Reject::BadGsoType);
    assert_eq!(stats.rejected(Reject::BadGsoType), 2);
    assert_eq!(stats.rejected(Reject::Truncated), 0);
}

#[test]
fn a_super_segment_goes_out_with_gso_and_a_partial_checksum() {
    let f = TxFrame {
        len: 20_054,
        checksum: Some(PartialChecksum {
            start: 20,
            offset: 16,
        }),
        segmentation: Some(Segmentation {
            segment_size: 1448,
            header_len: 52,
            ipv6: false,
        }),
    };
    let mut out = [0xaa; 16];
    write(&f, &mut out);
    assert_eq!(
        &out[..VNET_HDR_LEN],
        &[F_NEEDS_CSUM, GSO_TCPV4, 52, 0, 0xa8, 0x05, 20, 0, 16, 0]
    );
    assert_eq!(out[VNET_HDR_LEN], 0xaa, "nothing past the header");
    // A plain frame: an all-zero header.
    write(&TxFrame::plain(60), &mut out);
    assert_eq!(&out[..VNET_HDR_LEN], &[0; VNET_HDR_LEN]);
    // What the daemon writes, it reads back as the same kind of frame.
    let mut framed = out[..VNET_HDR_LEN].to_vec();
    framed.resize(VNET_HDR_LEN + 60, 0);
    assert!(!parse(&framed).unwrap().super_segment);
}

#[test]
fn sizes_fall_in_their_buckets() {
    let h = SizeHistogram::default();
    for len in [100, 4096, 4097, 65535, 70_000] {
        h.record(len);
    }
    let counts: Vec<u64> = h.buckets.iter().map(read).collect();
    assert_eq!(counts, vec![2, 1, 0, 0, 0, 2]);
    assert_eq!(read(&h.sum), 100 + 4096 + 4097 + 65535 + 70_000);
}
