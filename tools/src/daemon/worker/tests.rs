//! The worker loop itself, on socket pairs standing in for TUN queues.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use netstack::{SeqNum, TcpFlags, TcpHeader, Transport, emit_tcp, parse_frame};

use super::*;
use crate::daemon::config::{ListenSpec, Service};
use crate::daemon::reload::{ServiceSet, Services};

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
    let kicking = Arc::clone(&wakers);
    let shared = Arc::new(Shared {
        forward: crate::daemon::forward::Plane::new(
            Arc::clone(&stack),
            epoch,
            Arc::new(move |i| kicking.wake(i)),
        ),
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
        offload: Default::default(),
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
    let mut buf = vec![0; 1600];
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
