//! The worker loop itself, on socket pairs standing in for TUN queues.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use netstack::{SeqNum, TcpFlags, TcpHeader, Transport, emit_tcp, parse_frame};

use super::*;
use crate::config::{ListenSpec, Service};
use crate::reload::{ServiceSet, Services};

const US: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
const PORT: u16 = 7;

impl FrameQueue for UnixDatagram {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        UnixDatagram::recv(self, buf)
    }
    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        UnixDatagram::send(self, buf)
    }
}

/// Two workers serving echo on port 7, each on one end of a socket pair;
/// returns the shared state and the peer's ends.
fn daemon(
    wake: bool,
) -> (
    Arc<Shared>,
    Vec<std::thread::JoinHandle<()>>,
    Vec<UnixDatagram>,
) {
    daemon_with(wake, false)
}

/// As [`daemon`], the queues carrying the virtio-net header if `offload`.
fn daemon_with(
    wake: bool,
    offload: bool,
) -> (
    Arc<Shared>,
    Vec<std::thread::JoinHandle<()>>,
    Vec<UnixDatagram>,
) {
    let wakers = Arc::new(Wakers::new(2).unwrap());
    let mut cfg = netstack::StackConfig::new(vec![US]);
    cfg.workers = 2;
    cfg.insecure_deterministic_seed = Some(15);
    if wake {
        let w = Arc::clone(&wakers);
        cfg.waker = Some(netstack::WorkerWaker::new(move |i| w.wake(i)));
    }
    let stack = Arc::new(netstack::Stack::new(cfg));
    let addr = SocketAddr::new(US, PORT);
    let l = stack.listen(addr).unwrap();
    let spec = ListenSpec {
        addr,
        service: Service::Echo,
    };
    let epoch = std::time::Instant::now();
    let shared = Arc::new(Shared {
        forward: crate::forward::Plane::new(Arc::clone(&stack), epoch),
        stack,
        services: Services::new(ServiceSet {
            listeners: vec![(l, spec)],
        }),
        http_body_bytes: 0,
        stats: (0..2).map(|_| WorkerStats::default()).collect(),
        pcap: None,
        stop: AtomicBool::new(false),
        epoch,
        mtu: 1500,
        faults: Default::default(),
        wakers,
        steering: Default::default(),
        offload: crate::offload::Status {
            requested: offload,
            enabled: offload,
        },
    });
    let mut peers = Vec::new();
    let mut threads = Vec::new();
    for i in 0..2 {
        let (ours, theirs) = UnixDatagram::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        theirs
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        peers.push(theirs);
        let shared = Arc::clone(&shared);
        threads.push(std::thread::spawn(move || run(i, shared, ours).unwrap()));
    }
    (shared, threads, peers)
}

fn stop(shared: &Shared, threads: Vec<std::thread::JoinHandle<()>>) {
    shared.stop.store(true, Ordering::Release);
    shared.wakers.wake_all();
    for t in threads {
        t.join().unwrap();
    }
}

fn segment(seq: u32, ack: u32, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
    let header = TcpHeader {
        src_port: 40000,
        dst_port: PORT,
        seq: SeqNum(seq),
        ack: SeqNum(ack),
        flags,
        window: 65535,
        ..TcpHeader::default()
    };
    let mut buf = vec![0; 1600 + payload.len()];
    let n = emit_tcp(PEER, US, 64, &header, payload, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// The next TCP segment the peer end receives: (seq, ack, payload length).
fn receive(peer: &UnixDatagram) -> (u32, u32, usize) {
    let mut buf = [0u8; 2048];
    let n = peer.recv(&mut buf).expect("a segment within 2 s");
    let d = parse_frame(&buf[..n]).unwrap();
    let Transport::Tcp(seg) = d.transport else {
        panic!("not TCP")
    };
    (seg.header.seq.0, seg.header.ack.0, seg.payload.len())
}

/// Median time from a segment reaching worker 1 to the echo leaving worker
/// 0 (the connection's home), over `trials` round trips.
fn cross_worker_echo_median(wake: bool, trials: usize) -> Duration {
    let (shared, threads, peers) = daemon(wake);
    // The handshake on worker 0's queue makes worker 0 the home.
    let mut seq = 1000;
    peers[0].send(&segment(seq, 0, TcpFlags::SYN, &[])).unwrap();
    let (their_seq, _, _) = receive(&peers[0]);
    seq += 1;
    let mut ack = their_seq.wrapping_add(1);
    peers[0]
        .send(&segment(seq, ack, TcpFlags::ACK, &[]))
        .unwrap();
    let mut times = Vec::with_capacity(trials);
    for _ in 0..trials {
        // Let worker 0 fall asleep.
        std::thread::sleep(Duration::from_millis(3));
        let sent = Instant::now();
        peers[1]
            .send(&segment(seq, ack, TcpFlags::ACK | TcpFlags::PSH, b"ping"))
            .unwrap();
        seq += 4;
        // Worker 1 has no such connection's home: the echo must come from
        // worker 0 (a bare ACK may come first).
        loop {
            let (s, _, len) = receive(&peers[0]);
            if len > 0 {
                times.push(sent.elapsed());
                ack = s.wrapping_add(len as u32);
                break;
            }
        }
        peers[0]
            .send(&segment(seq, ack, TcpFlags::ACK, &[]))
            .unwrap();
    }
    let wakeups: u64 = shared
        .stats
        .iter()
        .map(|s| s.wakeups.load(Ordering::Relaxed))
        .sum();
    stop(&shared, threads);
    if wake {
        assert!(wakeups > 0, "the echoes must have come from woken sleeps");
    }
    times.sort();
    eprintln!(
        "wake {wake}: median {:?}, max {:?} over {trials} trials",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    times[times.len() / 2]
}

#[test]
fn a_segment_on_another_workers_queue_is_answered_within_a_millisecond() {
    let median = cross_worker_echo_median(true, 41);
    assert!(
        median < Duration::from_millis(1),
        "median {median:?} from the segment on worker 1 to the echo from worker 0"
    );
}

#[test]
fn without_the_waker_the_home_worker_sleeps_through_it() {
    // The control: the same path without wake-ups waits for the home
    // worker's poll timeout, so the test above can tell the difference.
    let median = cross_worker_echo_median(false, 21);
    assert!(
        median >= Duration::from_millis(1),
        "median {median:?}: without a waker the home worker should have slept"
    );
}

/// With offload the worker reads the virtio-net header, trusts the
/// checksum the header vouches for, refuses a header it cannot honour by
/// name, and writes a large echo as one super-segment with GSO and a
/// partial checksum.
#[test]
fn offload_reads_and_writes_the_virtio_net_header() {
    use crate::offload::{F_DATA_VALID, F_NEEDS_CSUM, GSO_TCPV4, Reject};
    let (shared, threads, peers) = daemon_with(false, true);
    let framed = |flags: u8, gso_type: u8, datagram: &[u8]| {
        let mut f = vec![flags, gso_type, 0, 0, 0, 0, 0, 0, 0, 0];
        f.extend_from_slice(datagram);
        f
    };
    let receive_framed = |peer: &UnixDatagram| {
        let mut buf = vec![0u8; 70_000];
        let n = peer.recv(&mut buf).expect("a frame within 2 s");
        buf.truncate(n);
        buf
    };
    // A SYN: the SYN-ACK comes back behind an all-zero header.
    let mut seq = 1000;
    let syn = segment(seq, 0, TcpFlags::SYN, &[]);
    // No MSS option: the peer's MSS is the default 536, so a 4000-octet
    // echo is several segments.
    peers[0].send(&framed(0, 0, &syn)).unwrap();
    let f = receive_framed(&peers[0]);
    assert_eq!(&f[..10], &[0; 10]);
    let d = parse_frame(&f[10..]).expect("a complete SYN-ACK");
    let Transport::Tcp(synack) = d.transport else {
        panic!("not TCP")
    };
    seq += 1;
    let ack = synack.header.seq.0.wrapping_add(1);
    // A UDP GSO header: refused, counted, nothing else happens.
    peers[0].send(&framed(0, 3, &syn)).unwrap();
    // The data, its checksum field spoiled but vouched for by DATA_VALID.
    let data: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
    let mut seg = segment(seq, ack, TcpFlags::ACK | TcpFlags::PSH, &data);
    seg[20 + 16] ^= 0x5a;
    peers[0].send(&framed(F_DATA_VALID, 0, &seg)).unwrap();
    // The echo: one super-segment, cut at 536, checksum left partial.
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < data.len() && Instant::now() < deadline {
        let mut f = receive_framed(&peers[0]);
        let (flags, gso_type) = (f[0], f[1]);
        let gso_size = u16::from_le_bytes([f[4], f[5]]);
        let start = usize::from(u16::from_le_bytes([f[6], f[7]]));
        let offset = usize::from(u16::from_le_bytes([f[8], f[9]]));
        let datagram = &mut f[10..];
        if flags & F_NEEDS_CSUM != 0 {
            // Finish the checksum as the kernel would.
            let at = start + offset;
            let sum = !smoltcp::wire::checksum::data(&datagram[start..]);
            datagram[at..at + 2].copy_from_slice(&sum.to_be_bytes());
        }
        let Transport::Tcp(echo) = parse_frame(datagram)
            .expect("complete once finished")
            .transport
        else {
            panic!("not TCP")
        };
        if echo.payload.len() > 536 {
            assert_eq!(gso_type, GSO_TCPV4);
            assert_eq!(gso_size, 536);
            assert_eq!(flags, F_NEEDS_CSUM);
        }
        got.extend_from_slice(echo.payload);
        // Acknowledge it, so the rest of the echo may follow.
        let acked = ack.wrapping_add(got.len() as u32);
        let seg = segment(seq + data.len() as u32, acked, TcpFlags::ACK, &[]);
        peers[0].send(&framed(0, 0, &seg)).unwrap();
    }
    assert_eq!(got, data, "the echo, byte for byte");
    stop(&shared, threads);
    let o = &shared.stats[0].offload;
    assert_eq!(o.rejected(Reject::BadGsoType), 1);
    // Relaxed: the worker thread has been joined.
    assert!(
        o.tx_super_frames.load(Ordering::Relaxed) >= 1,
        "a super-segment went out"
    );
}
