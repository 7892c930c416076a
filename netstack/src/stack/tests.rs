use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;

use super::*;
use crate::tcp::conn::{Events, State};
use crate::tcp::seq::SeqNum;
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpHeader, emit_tcp};

const US: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

fn stack(tweak: impl FnOnce(&mut StackConfig)) -> Stack {
    let mut cfg = StackConfig::new(vec![US]);
    cfg.insecure_deterministic_seed = Some(9);
    cfg.table_capacity = 64;
    cfg.pool_cap = 1024;
    tweak(&mut cfg);
    Stack::new(cfg)
}

fn syn_to(port: u16, from_port: u16) -> Vec<u8> {
    let header = TcpHeader {
        src_port: from_port,
        dst_port: port,
        seq: SeqNum(100),
        flags: TcpFlags::SYN,
        window: 1000,
        ..TcpHeader::default()
    };
    let mut buf = vec![0; 128];
    let n = emit_tcp(PEER, US, 64, &header, &[], &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn drain(w: &Worker<'_>, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while let Some(n) = w.poll_transmit(now, &mut buf) {
        out.push(buf[..n].to_vec());
        assert!(out.len() < 10_000, "poll_transmit never ran dry");
    }
    out
}

#[test]
fn stack_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Stack>();
}

#[test]
fn listen_refuses_port_zero_foreign_addresses_and_duplicates() {
    let s = stack(|_| {});
    assert_eq!(s.listen(SocketAddr::new(US, 0)), Err(ListenError::PortZero));
    assert_eq!(
        s.listen(SocketAddr::new(PEER, 80)),
        Err(ListenError::AddrNotAvailable(PEER))
    );
    s.listen(SocketAddr::new(US, 80)).unwrap();
    assert_eq!(
        s.listen(SocketAddr::new(US, 80)),
        Err(ListenError::AddrInUse(SocketAddr::new(US, 80)))
    );
}

#[test]
fn connect_needs_an_address_of_the_remote_family() {
    let s = stack(|_| {});
    let v6: SocketAddr = "[fd00::2]:80".parse().unwrap();
    assert_eq!(
        s.connect(Instant::ZERO, 0, None, v6),
        Err(ConnectError::NoLocalAddress(v6))
    );
    assert_eq!(
        s.connect(Instant::ZERO, 5, None, SocketAddr::new(PEER, 80)),
        Err(ConnectError::NoSuchWorker(5))
    );
}

#[test]
fn control_queue_is_bounded_and_overflow_is_counted() {
    let s = stack(|c| c.control_queue = 2);
    let w = s.worker(0);
    for p in 0..5 {
        w.handle_frame(Instant::ZERO, &syn_to(81, 1000 + p));
    }
    assert_eq!(drain(&w, Instant::ZERO).len(), 2);
    assert_eq!(s.stack_counters().control_queue_full, 3);
    assert_eq!(s.mib().no_port, 5);
}

#[test]
fn connect_sends_a_syn_and_retransmits_it_on_the_timer() {
    let s = stack(|_| {});
    let w = s.worker(0);
    let h = s
        .connect(Instant::ZERO, 0, None, SocketAddr::new(PEER, 80))
        .unwrap();
    assert_eq!(s.state_of(&h), Some(State::SynSent));
    let first = drain(&w, Instant::ZERO);
    assert_eq!(first.len(), 1);
    let deadline = w.poll_timeout().expect("the SYN's retransmission timer");
    assert!(deadline > Instant::ZERO);
    w.handle_timeout(deadline);
    let again = drain(&w, deadline);
    assert_eq!(again.len(), 1, "one retransmitted SYN");
    assert_eq!(s.mib().retrans_segs, 1);
}

#[test]
fn an_unanswered_connect_fails_and_is_reaped() {
    let s = stack(|c| c.tcp.syn_retries = 2);
    let w = s.worker(0);
    let h = s
        .connect(Instant::ZERO, 0, None, SocketAddr::new(PEER, 80))
        .unwrap();
    let mut now = Instant::ZERO;
    for _ in 0..50 {
        drain(&w, now);
        match w.poll_timeout() {
            Some(t) => {
                now = t;
                w.handle_timeout(now);
            }
            None => break,
        }
    }
    drain(&w, now);
    assert_eq!(s.connections(), 0, "the failed connection left the table");
    assert_eq!(s.state_of(&h), None);
    let mut events = Events::NONE;
    while let Some((got, ev)) = s.poll_events(0) {
        if got == h {
            events |= ev;
        }
    }
    assert!(events.contains(Events::CLOSED), "{events:?}");
    assert_eq!(w.poll_timeout(), None, "no timer left behind");
}

#[test]
fn a_stale_handle_does_not_reach_a_new_connection_on_its_tuple() {
    let s = stack(|_| {});
    let w = s.worker(0);
    let remote = SocketAddr::new(PEER, 80);
    let local = SocketAddr::new(US, 40000);
    let old = s.connect_from(Instant::ZERO, 0, local, remote).unwrap();
    s.abort(&old).unwrap();
    drain(&w, Instant::ZERO);
    assert_eq!(s.connections(), 0);
    let new = s.connect_from(Instant::ZERO, 0, local, remote).unwrap();
    assert_ne!(old, new);
    assert_eq!(s.write(&old, b"x"), Err(AppError::Gone));
    assert_eq!(s.state_of(&new), Some(State::SynSent));
}

#[test]
fn connect_from_an_existing_tuple_is_refused() {
    let s = stack(|_| {});
    let remote = SocketAddr::new(PEER, 80);
    let local = SocketAddr::new(US, 40000);
    s.connect_from(Instant::ZERO, 0, local, remote).unwrap();
    assert_eq!(
        s.connect_from(Instant::ZERO, 0, local, remote),
        Err(ConnectError::AddrInUse(local))
    );
}

#[test]
fn timers_fire_in_deadline_order_and_only_once() {
    let s = stack(|_| {});
    let w = s.worker(0);
    for port in [1000, 1001, 1002] {
        s.connect(Instant::ZERO, 0, None, SocketAddr::new(PEER, port))
            .unwrap();
    }
    drain(&w, Instant::ZERO);
    let t = w.poll_timeout().unwrap();
    w.handle_timeout(t);
    assert_eq!(drain(&w, t).len(), 3, "each SYN retransmitted once");
    w.handle_timeout(t);
    assert_eq!(drain(&w, t).len(), 0, "a timer does not fire twice");
    assert!(w.poll_timeout().unwrap() > t + Duration::from_millis(1));
}

#[test]
fn a_table_entry_is_compact_so_time_wait_costs_little() {
    // The TCB is boxed; what stays in the PCB is the TIME-WAIT form at most.
    let size = core::mem::size_of::<super::conn::Conn>();
    assert!(size <= 80, "Conn is {size} bytes");
}

#[test]
fn large_echo_requests_cannot_fill_memory() {
    use crate::wire::{Echo, EchoKind, emit_echo};
    let s = stack(|c| c.control_queue = 4);
    let w = s.worker(0);
    let data = vec![7u8; 4000];
    let echo = Echo {
        ident: 1,
        seq_no: 1,
        data: &data,
    };
    let mut frame = vec![0; 4100];
    let n = emit_echo(PEER, US, 64, EchoKind::Request, &echo, &mut frame).unwrap();
    for _ in 0..4 {
        w.handle_frame(Instant::ZERO, &frame[..n]);
    }
    // 4 slots of 1500 octets hold one 4 KB reply, not four.
    assert_eq!(s.stack_counters().echo_replies, 1);
    assert_eq!(s.stack_counters().control_queue_full, 3);
    let mut buf = vec![0; 8192];
    assert!(w.poll_transmit(Instant::ZERO, &mut buf).is_some());
    assert!(w.poll_transmit(Instant::ZERO, &mut buf).is_none());
}

#[test]
fn metrics_accessors_see_the_table_pool_and_domain() {
    let s = stack(|_| {});
    assert_eq!(s.chain_stats().entries, 0);
    assert_eq!(s.pool_stats().live, 0);
    assert_eq!(s.time_wait_connections(), 0);
    assert_eq!(s.oldest_read_section(), None);
    let remote = SocketAddr::new(PEER, 80);
    s.connect(Instant::from_nanos(0), 0, None, remote).unwrap();
    assert_eq!(s.chain_stats().entries, 1);
    assert_eq!(s.chain_stats().max_chain, 1);
    assert_eq!(s.pool_stats().live, 1);
    assert_eq!(s.time_wait_connections(), 0, "SYN-SENT is not TIME-WAIT");
    let before = s.smr_stats();
    assert_eq!(before.lag, 0);
}

#[test]
fn reclaim_idle_drains_what_a_quiet_thread_retired() {
    for mode in [Mode::Default, Mode::Lazy, Mode::Deferred] {
        reclaim_idle_drains_in(mode);
    }
}

fn reclaim_idle_drains_in(mode: Mode) {
    let s = stack(|c| c.smr_mode = mode);
    let remote = SocketAddr::new(PEER, 80);
    let c = s.connect(Instant::from_nanos(0), 0, None, remote).unwrap();
    s.abort(&c).unwrap();
    let w = s.worker(0);
    w.handle_timeout(Instant::from_nanos(1));
    drain(&w, Instant::from_nanos(1));
    assert_eq!(s.connections(), 0);
    // The reset's event entry pins the removed PCB until the application
    // polls it; polling gives the last pin back, which retires the PCB.
    assert_eq!(s.pool_stats().pending, 0, "pinned by its event entry");
    while s.poll_events(0).is_some() {}
    assert_eq!(
        s.pool_stats().pending,
        1,
        "retired into this thread's magazine"
    );
    // The first call stamps the batch; a grace period with no reader open
    // passes at once, so at most a second call makes it reusable.
    s.reclaim_idle();
    s.reclaim_idle();
    assert_eq!(s.pool_stats().pending, 0, "{mode:?}");
}

/// The ISN of the SYN a fresh stack built by `cfg` sends for one fixed tuple.
fn first_isn(cfg: StackConfig) -> u32 {
    use crate::wire::{Transport, parse};
    let s = Stack::new(cfg);
    let local = SocketAddr::new(US, 40000);
    s.connect_from(Instant::ZERO, 0, local, SocketAddr::new(PEER, 80))
        .unwrap();
    let syn = drain(&s.worker(0), Instant::ZERO).remove(0);
    match parse(&syn).unwrap().transport {
        Transport::Tcp(seg) => seg.header.seq.0,
        other => panic!("not a SYN: {other:?}"),
    }
}

#[test]
fn keys_are_random_unless_the_insecure_seed_is_set() {
    let cfg = StackConfig::new(vec![US]);
    assert_eq!(cfg.insecure_deterministic_seed, None, "random by default");
    // Two random 32-bit ISNs for one tuple and clock collide with
    // probability 2^-32.
    assert_ne!(first_isn(cfg.clone()), first_isn(cfg.clone()));
    let mut seeded = cfg;
    seeded.insecure_deterministic_seed = Some(5);
    assert_eq!(
        first_isn(seeded.clone()),
        first_isn(seeded),
        "a seed repeats every key: why it is insecure"
    );
}

#[test]
fn handle_writes_stateless_replies_into_the_callers_buffer_not_the_queue() {
    let s = stack(|_| {});
    s.listen(SocketAddr::new(US, 80)).unwrap();
    let w = s.worker(0);
    let mut buf = [0u8; 256];
    // A SYN to a listener: the SYN-ACK comes back at once, nothing queued.
    let n = w
        .handle(Instant::ZERO, &syn_to(80, 5000), &mut buf)
        .expect("a SYN-ACK");
    let h = tcp_header_of(&buf[..n]);
    assert_eq!(h.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!((h.src_port, h.dst_port, h.ack), (80, 5000, SeqNum(101)));
    assert!(
        drain(&w, Instant::ZERO).is_empty(),
        "the reply was not queued too"
    );
    // A SYN to a closed port: the reset, likewise.
    let n = w
        .handle(Instant::ZERO, &syn_to(81, 5001), &mut buf)
        .expect("a RST");
    assert!(tcp_header_of(&buf[..n]).flags.contains(TcpFlags::RST));
    assert!(drain(&w, Instant::ZERO).is_empty());
    // A buffer too small for the reply: it goes through the queue instead.
    let mut tiny = [0u8; 8];
    assert_eq!(w.handle(Instant::ZERO, &syn_to(80, 5002), &mut tiny), None);
    let queued = drain(&w, Instant::ZERO);
    assert_eq!(queued.len(), 1);
    assert_eq!(
        tcp_header_of(&queued[0]).flags,
        TcpFlags::SYN | TcpFlags::ACK
    );
    // `handle_frame` still queues.
    w.handle_frame(Instant::ZERO, &syn_to(80, 5003));
    assert_eq!(drain(&w, Instant::ZERO).len(), 1);
}

/// The TCP header of a frame the stack sent.
fn tcp_header_of(frame: &[u8]) -> TcpHeader {
    match crate::wire::parse(frame).expect("a valid frame").transport {
        crate::wire::Transport::Tcp(seg) => seg.header,
        other => panic!("not TCP: {other:?}"),
    }
}

/// The sequence number and flags of an IPv4 TCP frame the stack sent.
fn seq_and_flags(frame: &[u8]) -> (u32, u8) {
    let ihl = usize::from(frame[0] & 0x0f) * 4;
    let seq = u32::from_be_bytes(frame[ihl + 4..ihl + 8].try_into().unwrap());
    (seq, frame[ihl + 13])
}

/// RFC 6528 gives each 4-tuple one ISN clock, and RFC 6191's TIME-WAIT
/// reuse relies on it: a tuple's next ISN must lie ahead of its last,
/// whichever path opened either connection. So the SYN cache (passive
/// opens) and `connect` (active opens) draw from one keyed function: at the
/// same instant the same tuple gets the same ISN from both.
#[test]
fn active_and_passive_opens_of_a_tuple_share_one_isn_clock() {
    let s = stack(|_| {});
    let w = s.worker(0);
    let now = Instant::from_secs(5);
    s.listen(SocketAddr::new(US, 4000)).unwrap();
    w.handle_frame(now, &syn_to(4000, 80));
    let out = drain(&w, now);
    assert_eq!(out.len(), 1, "one SYN-ACK");
    let (passive, flags) = seq_and_flags(&out[0]);
    assert_eq!(flags & 0x12, 0x12, "SYN-ACK");

    s.connect_from(now, 0, SocketAddr::new(US, 4000), SocketAddr::new(PEER, 80))
        .unwrap();
    let out = drain(&w, now);
    assert_eq!(out.len(), 1, "one SYN");
    let (active, flags) = seq_and_flags(&out[0]);
    assert_eq!(flags & 0x12, 0x02, "SYN");
    assert_eq!(active, passive, "two ISN clocks for one tuple");
}
