//! Offload through the stack: two stacks joined back to back, one (the
//! client) sending with segmentation and checksum offload, the other
//! receiving the super-segments as a TUN device with receive offload would
//! hand them over.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use smoltcp::wire::checksum;

use super::*;
use crate::stack::{AppError, ConnHandle, Stack, StackConfig};
use crate::tcp::conn::ConnError;
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpHeader, Transport, emit_tcp, parse};

const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const BIG: TxOffload = TxOffload {
    max_payload: 64 * 1024,
    checksum: true,
};

fn stack(addr: IpAddr, tweak: impl FnOnce(&mut StackConfig)) -> Stack {
    let mut cfg = StackConfig::new(vec![addr]);
    cfg.insecure_deterministic_seed = Some(7);
    cfg.table_capacity = 64;
    cfg.pool_cap = 1024;
    cfg.tcp.send_buffer = 256 * 1024;
    cfg.tcp.recv_buffer = 256 * 1024;
    tweak(&mut cfg);
    Stack::new(cfg)
}

fn drain(w: &Worker<'_>, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Some(n) = w.poll_transmit(now, &mut buf) {
        out.push(buf[..n].to_vec());
        assert!(out.len() < 10_000, "poll_transmit never ran dry");
    }
    out
}

/// Frames back and forth (plain, no offload) until both sides are quiet.
fn shuttle(a: &Worker<'_>, b: &Worker<'_>, now: Instant) {
    for _ in 0..100 {
        let from_a = drain(a, now);
        let from_b = drain(b, now);
        if from_a.is_empty() && from_b.is_empty() {
            return;
        }
        for f in from_a {
            b.handle_frame(now, &f);
        }
        for f in from_b {
            a.handle_frame(now, &f);
        }
    }
    panic!("the two stacks never went quiet");
}

/// An established connection: (server's handle, client's handle).
fn connected(server: &Stack, client: &Stack) -> (ConnHandle, ConnHandle) {
    let (a, b) = (server.worker(0), client.worker(0));
    let l = server.listen(SocketAddr::new(SERVER, 80)).unwrap();
    let c = client
        .connect(Instant::ZERO, 0, None, SocketAddr::new(SERVER, 80))
        .unwrap();
    shuttle(&a, &b, Instant::ZERO);
    let s = server.accept(&l).expect("the handshake completed");
    (s, c)
}

fn payload_of(frame: &[u8]) -> (TcpHeader, Vec<u8>) {
    match parse(frame).expect("a valid frame").transport {
        Transport::Tcp(seg) => (seg.header, seg.payload.to_vec()),
        Transport::EchoRequest(_) => panic!("not TCP"),
    }
}

/// What the link does with a partial checksum: sums from `start` to the
/// end, the field included, and stores the complement.
fn finish_checksum(frame: &mut [u8], c: PartialChecksum) {
    let at = usize::from(c.start) + usize::from(c.offset);
    let sum = !checksum::data(&frame[usize::from(c.start)..]);
    frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn a_large_send_leaves_as_one_segment_cut_like_the_plain_path_would() {
    // Two identical seeded runs: one plain, one with offload.
    let payload = data(40_000);
    let mut plain = Vec::new();
    let mut plain_segs = 0;
    for offload in [false, true] {
        let (server, client) = (stack(SERVER, |_| {}), stack(CLIENT, |_| {}));
        let (_s, c) = connected(&server, &client);
        let b = client.worker(0);
        client.write(&c, &payload).unwrap();
        let mut buf = vec![0u8; 70_000];
        let mut frames = Vec::new();
        let tx = if offload { BIG } else { TxOffload::NONE };
        let segs = client.mib().out_segs;
        while let Some(f) = b.poll_transmit_with(Instant::ZERO, &mut buf, tx) {
            frames.push((buf[..f.len].to_vec(), f));
            assert!(frames.len() < 1000);
        }
        if !offload {
            assert!(frames.iter().all(|(_, f)| *f == TxFrame::plain(f.len)));
            plain = frames;
            plain_segs = client.mib().out_segs - segs;
            continue;
        }
        // The plain path sent one initial window of MSS-sized segments; the
        // offloaded path sends the same bytes as one segment, to be cut at
        // the same size.
        assert!(
            plain.len() > 1,
            "the plain path sent {} segments",
            plain.len()
        );
        assert_eq!(frames.len(), 1, "one super-segment");
        let (mut frame, f) = frames.pop().unwrap();
        let seg = f.segmentation.expect("a segment to cut");
        let c = f.checksum.expect("a partial checksum");
        let plain_payloads: Vec<Vec<u8>> = plain.iter().map(|(p, _)| payload_of(p).1).collect();
        assert!(
            plain_payloads[..plain_payloads.len() - 1]
                .iter()
                .all(|p| p.len() == usize::from(seg.segment_size)),
            "segment size {} against the plain path's segments",
            seg.segment_size
        );
        assert!(!seg.ipv6);
        assert_eq!(
            usize::from(seg.header_len),
            20 + 20 + 12,
            "IPv4, TCP, timestamps"
        );
        assert!(f.len - usize::from(seg.header_len) <= BIG.max_payload);
        // Partial until finished: a full check fails, then passes.
        assert!(parse(&frame).is_err(), "a partial checksum is not complete");
        finish_checksum(&mut frame, c);
        let (header, bytes) = payload_of(&frame);
        assert_eq!(
            bytes,
            plain_payloads.concat(),
            "the same bytes in one segment"
        );
        let (plain_first, _) = payload_of(&plain[0].0);
        assert_eq!(header.seq, plain_first.seq);
        assert_eq!(
            client.mib().out_segs - segs,
            plain_segs,
            "each segment the link cuts counts as sent"
        );
    }
}

#[test]
fn offload_off_or_below_the_mss_changes_no_frame() {
    let payload = data(20_000);
    let mut runs = Vec::new();
    for tx in [
        TxOffload::NONE,
        TxOffload {
            max_payload: 1000,
            checksum: false,
        },
    ] {
        let (server, client) = (stack(SERVER, |_| {}), stack(CLIENT, |_| {}));
        let (_s, c) = connected(&server, &client);
        let b = client.worker(0);
        client.write(&c, &payload).unwrap();
        let mut buf = vec![0u8; 70_000];
        let mut frames = Vec::new();
        while let Some(f) = b.poll_transmit_with(Instant::ZERO, &mut buf, tx) {
            assert_eq!(f, TxFrame::plain(f.len));
            frames.push(buf[..f.len].to_vec());
        }
        runs.push(frames);
    }
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn a_super_segment_in_is_one_segment_and_gets_one_ack() {
    let (server, client) = (stack(SERVER, |_| {}), stack(CLIENT, |_| {}));
    let (s, c) = connected(&server, &client);
    let (a, b) = (server.worker(0), client.worker(0));
    let payload = data(14_000);
    client.write(&c, &payload).unwrap();
    let mut buf = vec![0u8; 70_000];
    let f = b
        .poll_transmit_with(Instant::ZERO, &mut buf, BIG)
        .expect("a segment");
    assert!(f.segmentation.is_some());
    let frame = buf[..f.len].to_vec();
    // Untrusted, the partial checksum is a bad checksum: dropped, counted.
    let bad = server.counters().drops(crate::wire::Drop::BadTcpChecksum);
    a.handle_frame(Instant::ZERO, &frame);
    assert_eq!(
        server.counters().drops(crate::wire::Drop::BadTcpChecksum),
        bad + 1
    );
    assert!(drain(&a, Instant::ZERO).is_empty());
    // Trusted (the link vouches for it): one segment, one ACK for all of it.
    let lookups = server.table_lookups();
    assert_eq!(
        a.handle_with(Instant::ZERO, &frame, true, &mut [0; 128]),
        None
    );
    assert_eq!(server.table_lookups(), lookups + 1, "one lookup");
    let out = drain(&a, Instant::ZERO);
    assert_eq!(out.len(), 1, "one ACK");
    let (ack, body) = payload_of(&out[0]);
    let Ok(crate::wire::Datagram {
        transport: Transport::Tcp(sent),
        ..
    }) = crate::wire::parse_with(&frame, true)
    else {
        panic!("a TCP frame");
    };
    let (sent, sent_len) = (sent.header, sent.payload.len());
    assert!(
        sent_len > 2 * 1460,
        "more than two segments' worth: {sent_len}"
    );
    assert!(body.is_empty() && ack.flags.contains(TcpFlags::ACK));
    assert_eq!(ack.ack, sent.seq + sent_len);
    let mut got = vec![0u8; 20_000];
    let n = server.read(&s, &mut got).unwrap();
    assert_eq!(&got[..n], &payload[..sent_len]);
}

#[test]
fn a_super_segment_past_the_window_is_trimmed_to_it() {
    let (server, client) = (
        stack(SERVER, |c| c.tcp.recv_buffer = 16 * 1024),
        stack(CLIENT, |_| {}),
    );
    let (s, c) = connected(&server, &client);
    let a = server.worker(0);
    // The client's next segment, forged: 60 000 octets where the server
    // offered 16 KiB.
    client.write(&c, b"x").unwrap();
    let (probe, _) = payload_of(&drain(&client.worker(0), Instant::ZERO)[0]);
    let payload = data(60_000);
    let mut header = probe;
    header.seq = probe.seq + 1;
    let mut buf = vec![0u8; 70_000];
    let n = emit_tcp(CLIENT, SERVER, 64, &header, &payload, &mut buf).unwrap();
    a.handle_frame(Instant::ZERO, &buf[..n]);
    let mut got = vec![0u8; 70_000];
    // The first octet never arrived (we kept the probe), so nothing is
    // readable yet: the forged segment sits out of order, bounded by the
    // window.
    assert_eq!(
        server.read(&s, &mut got),
        Err(AppError::Conn(ConnError::WouldBlock))
    );
    // Now in order: a super-segment at RCV.NXT, larger than the window.
    header.seq = probe.seq;
    let n = emit_tcp(CLIENT, SERVER, 64, &header, &payload, &mut buf).unwrap();
    a.handle_frame(Instant::ZERO, &buf[..n]);
    let n = server.read(&s, &mut got).unwrap();
    assert_eq!(n, 16 * 1024, "no more than the window offered");
    assert_eq!(&got[..n], &payload[..n]);
    let acks = drain(&a, Instant::ZERO);
    let (last, _) = payload_of(acks.last().expect("an ACK"));
    assert_eq!(last.ack, probe.seq + 16 * 1024);
}
