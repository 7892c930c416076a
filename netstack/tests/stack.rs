//! Two stacks (and raw peers) over the seeded fake network.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use netstack::{
    AppError, ConnError, ConnHandle, Echo, EchoKind, Events, ListenerHandle, SeqNum, Stack, State,
    TcpFlags, TcpHeader, Transport, emit_echo, emit_tcp, parse_frame,
};
use support::{A4, A6, B4, B6, BACKENDS, FakeNet, NetConfig};

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));

fn echo_request(src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let mut buf = vec![0; 200];
    let echo = Echo {
        ident: 7,
        seq_no: 3,
        data: b"ping payload",
    };
    let n = emit_echo(src, dst, 64, EchoKind::Request, &echo, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn segment(src: SocketAddr, dst: SocketAddr, seq: u32, ack: u32, flags: TcpFlags) -> Vec<u8> {
    let header = TcpHeader {
        src_port: src.port(),
        dst_port: dst.port(),
        seq: SeqNum(seq),
        ack: SeqNum(ack),
        flags,
        window: 65535,
        ..TcpHeader::default()
    };
    let mut buf = vec![0; 200];
    let n = emit_tcp(src.ip(), dst.ip(), 64, &header, &[], &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn ping(src: IpAddr, dst: IpAddr) {
    let mut net = FakeNet::pair(NetConfig::default());
    net.inject(&echo_request(src, dst));
    net.drain();
    assert!(net.run_until(100, |n| !n.stray.is_empty()));
    let reply = parse_frame(&net.stray[0]).map(|d| (d.src, d.dst, d.transport));
    // Our parser only accepts requests; check the reply's bytes instead.
    assert!(reply.is_err(), "an echo reply is not a request");
    let frame = &net.stray[0];
    match frame[0] >> 4 {
        4 => {
            assert_eq!(&frame[12..16], &[10, 0, 0, 1]);
            assert_eq!(frame[20], 0, "ICMP echo reply type");
        }
        _ => assert_eq!(frame[40], 129, "ICMPv6 echo reply type"),
    }
    assert!(frame.ends_with(b"ping payload"));
}

#[test]
fn ping_v4_is_answered() {
    ping(PEER, A4);
}

#[test]
fn ping_v6_is_answered() {
    let peer6: IpAddr = "fd00::9".parse().unwrap();
    ping(peer6, A6);
}

#[test]
fn frames_for_other_addresses_are_dropped_and_counted() {
    let net = FakeNet::pair(NetConfig::default());
    net.a()
        .worker(0)
        .handle_frame(net.now(), &echo_request(PEER, B4));
    assert_eq!(net.a().stack_counters().not_our_address, 1);
    assert_eq!(
        net.a().worker(0).poll_transmit(net.now(), &mut [0; 1500]),
        None
    );
}

#[test]
fn closed_port_gets_rst() {
    let mut net = FakeNet::pair(NetConfig::default());
    let peer = SocketAddr::new(PEER, 40000);
    let port = SocketAddr::new(A4, 81);
    net.inject(&segment(peer, port, 1000, 0, TcpFlags::SYN));
    net.drain();
    assert!(net.run_until(100, |n| !n.stray.is_empty()));
    let frame = net.stray.pop().unwrap();
    // Parse it as if we were the peer: swap roles via a stack owning PEER.
    let seg = tcp_of(&frame);
    assert_eq!(seg.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(seg.ack, SeqNum(1001));
    assert_eq!(net.a().mib().no_port, 1);
    // A reset is never answered.
    net.inject(&segment(peer, port, 5, 0, TcpFlags::RST));
    net.drain();
    assert!(net.stray.is_empty());
}

/// The header of a TCP frame our stacks emitted (parsed by our own parser).
fn tcp_of(frame: &[u8]) -> TcpHeader {
    match parse_frame(frame).expect("a valid frame").transport {
        Transport::Tcp(seg) => seg.header,
        Transport::EchoRequest(_) => panic!("not TCP"),
    }
}

/// B listens on `port`, A connects; returns once both ends are established.
fn open(net: &mut FakeNet, v6: bool, port: u16) -> (ConnHandle, ConnHandle, ListenerHandle) {
    let server = SocketAddr::new(if v6 { B6 } else { B4 }, port);
    let listener = net.b().listen(server).unwrap();
    let client = net.a().connect(net.now(), 0, None, server).unwrap();
    let mut accepted = None;
    let ok = net.run_until(10_000, |n| {
        if accepted.is_none() {
            accepted = n.b().accept(&listener);
        }
        accepted.is_some() && n.a().state_of(&client) == Some(State::Established)
    });
    assert!(ok, "handshake did not complete");
    (client, accepted.unwrap(), listener)
}

#[test]
fn handshake_completes() {
    let mut net = FakeNet::pair(NetConfig::default());
    let (client, server, _l) = open(&mut net, false, 80);
    assert_eq!(net.b().state_of(&server), Some(State::Established));
    assert_eq!(server.remote(), client.local());
    assert_eq!(net.a().mib().active_opens, 1);
    assert_eq!(net.b().mib().passive_opens, 1);
    let mut saw_connected = false;
    while let Some((h, ev)) = net.a().poll_events(0) {
        saw_connected |= h == client && ev.contains(Events::CONNECTED);
    }
    assert!(saw_connected);
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 9)) as u8
}

/// Moves `total` octets from `from` to `to`, checking every one.
fn transfer(net: &mut FakeNet, from: (usize, ConnHandle), to: (usize, ConnHandle), total: usize) {
    let data: Vec<u8> = (0..total).map(pattern).collect();
    let mut sent = 0;
    let mut received = Vec::with_capacity(total);
    let mut buf = vec![0; 16 * 1024];
    let ok = net.run_until(2_000_000, |n| {
        let (s, r) = (&n.stacks[from.0], &n.stacks[to.0]);
        while sent < total {
            match s.write(&from.1, &data[sent..]) {
                Ok(0) | Err(AppError::Conn(ConnError::WouldBlock)) => break,
                Ok(k) => sent += k,
                Err(e) => panic!("write failed: {e}"),
            }
        }
        loop {
            match r.read(&to.1, &mut buf) {
                Ok(0) | Err(AppError::Conn(ConnError::WouldBlock)) => break,
                Ok(k) => received.extend_from_slice(&buf[..k]),
                Err(e) => panic!("read failed: {e}"),
            }
        }
        received.len() >= total
    });
    assert!(
        ok,
        "transfer stalled at {} of {total} (sent {sent}); sender {:?} receiver {:?} at {:?}\n{:?}\n{:?}",
        received.len(),
        net.stacks[from.0].state_of(&from.1),
        net.stacks[to.0].state_of(&to.1),
        net.now(),
        net.stacks[from.0].mib(),
        net.stacks[to.0].mib(),
    );
    assert_eq!(received.len(), total);
    assert!(received == data, "received octets differ from those sent");
}

fn bulk(v6: bool, cfg: NetConfig) {
    bulk_on(netstack::PcbBackend::Smr, v6, cfg);
}

fn bulk_on(backend: netstack::PcbBackend, v6: bool, cfg: NetConfig) {
    let mut net = FakeNet::pair_with(cfg, |c| c.pcb_backend = backend);
    let (client, server, _l) = open(&mut net, v6, 5001);
    transfer(&mut net, (0, client), (1, server), 1 << 20);
    assert_eq!(net.a().pcb_backend(), backend);
}

#[test]
fn bulk_transfer_1mb_every_byte_v4_on_every_backend() {
    for backend in BACKENDS {
        bulk_on(backend, false, NetConfig::default());
    }
}

#[test]
fn bulk_transfer_1mb_every_byte_v6() {
    bulk(true, NetConfig::default());
}

#[test]
fn bulk_transfer_survives_loss_and_reordering() {
    let cfg = NetConfig {
        loss_per_mille: 20,
        dup_per_mille: 10,
        jitter: Duration::from_millis(3),
        seed: 7,
        ..NetConfig::default()
    };
    let mut net = FakeNet::pair(cfg);
    let (client, server, _l) = open(&mut net, false, 5002);
    transfer(&mut net, (0, client), (1, server), 256 * 1024);
    // And back the other way.
    transfer(&mut net, (1, server), (0, client), 64 * 1024);
    assert!(net.lost > 0, "the network should have lost something");
}

/// Reads until EOF; true once `read` returned 0.
fn read_eof(stack: &Stack, h: &ConnHandle) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stack.read(h, &mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
}

#[test]
fn client_closes_first() {
    let mut net = FakeNet::pair(NetConfig::default());
    let (client, server, _l) = open(&mut net, false, 80);
    net.a().write(&client, b"bye").unwrap();
    net.a().close(&client).unwrap();
    assert!(net.run_until(10_000, |n| read_eof(n.b(), &server)));
    net.b().close(&server).unwrap();
    assert!(net.run_until(10_000, |n| {
        n.a().state_of(&client) == Some(State::TimeWait) && n.b().state_of(&server).is_none()
    }));
    assert_time_wait_gauge(net.a(), 1);
    assert_time_wait_gauge(net.b(), 0);
    // TIME-WAIT is compact and ends after 2 MSL.
    net.run_for(Duration::from_secs(61));
    assert_eq!(net.a().state_of(&client), None);
    assert_time_wait_gauge(net.a(), 0);
    assert_eq!(net.a().connections(), 0);
    assert_eq!(net.b().connections(), 0);
}

/// The TIME-WAIT gauge (kept by counters, read without a walk) agrees
/// with a walk of the table.
fn assert_time_wait_gauge(stack: &netstack::Stack, expected: usize) {
    assert_eq!(stack.time_wait_connections_walked(), expected, "walked");
    assert_eq!(stack.time_wait_connections(), expected, "gauge");
}

#[test]
fn server_closes_first() {
    let mut net = FakeNet::pair(NetConfig::default());
    let (client, server, _l) = open(&mut net, true, 80);
    net.b().close(&server).unwrap();
    assert!(net.run_until(10_000, |n| read_eof(n.a(), &client)));
    net.a().close(&client).unwrap();
    assert!(net.run_until(10_000, |n| {
        n.b().state_of(&server) == Some(State::TimeWait) && n.a().state_of(&client).is_none()
    }));
}

#[test]
fn simultaneous_close() {
    let mut net = FakeNet::pair(NetConfig::default());
    let (client, server, _l) = open(&mut net, false, 80);
    net.a().close(&client).unwrap();
    net.b().close(&server).unwrap();
    assert!(net.run_until(10_000, |n| {
        n.a().state_of(&client) == Some(State::TimeWait)
            && n.b().state_of(&server) == Some(State::TimeWait)
    }));
}

#[test]
fn simultaneous_open() {
    // Each side connects to the other's port from that exact port: both
    // SYNs cross on the wire and neither side has a listener.
    let mut net = FakeNet::pair(NetConfig::default());
    let now = net.now();
    // The ephemeral allocator picks the port; learn it, then aim at it.
    let a = net
        .a()
        .connect(now, 0, None, SocketAddr::new(B4, 6000))
        .unwrap();
    let b = net
        .b()
        .connect_from(now, 0, SocketAddr::new(B4, 6000), a.local())
        .unwrap();
    assert!(net.run_until(10_000, |n| {
        n.a().state_of(&a) == Some(State::Established)
            && n.b().state_of(&b) == Some(State::Established)
    }));
    transfer(&mut net, (0, a), (1, b), 10_000);
}

#[test]
fn rst_aborts_peer() {
    let mut net = FakeNet::pair(NetConfig::default());
    let (client, server, _l) = open(&mut net, false, 80);
    net.a().abort(&client).unwrap();
    let mut reset = false;
    assert!(net.run_until(10_000, |n| {
        while let Some((h, ev)) = n.b().poll_events(0) {
            reset |= h == server && ev.contains(Events::RESET);
        }
        reset
    }));
    let mut buf = [0; 8];
    assert!(matches!(
        net.b().read(&server, &mut buf),
        Err(AppError::Gone | AppError::Conn(ConnError::Reset))
    ));
    assert!(net.run_until(1000, |n| n.a().connections() == 0
        && n.b().connections() == 0));
}

#[test]
fn keepalive_detects_dead_peer() {
    let mut net = FakeNet::pair_with(NetConfig::default(), |c| {
        c.tcp.keepalive.idle = Duration::from_secs(10);
        c.tcp.keepalive.interval = Duration::from_secs(2);
        c.tcp.keepalive.probes = 3;
    });
    let (client, _server, _l) = open(&mut net, false, 80);
    net.a().set_keepalive(&client, true).unwrap();
    // The peer vanishes: everything to it is lost from now on.
    net.filter = Some(Box::new(|f| support::dst_of(f) != Some(B4)));
    let silent_from = net.now();
    let mut dead_at = None;
    net.run_until(100_000, |n| {
        while let Some((h, ev)) = n.a().poll_events(0) {
            if h == client && ev.contains(Events::RESET) && dead_at.is_none() {
                dead_at = Some(n.now());
            }
        }
        dead_at.is_some() || n.now() > netstack::Instant::from_secs(120)
    });
    let dead_at = dead_at.expect("keepalive did not declare the peer dead");
    // Idle 10 s from the last segment heard (the handshake, just before
    // `silent_from`), then 3 probes 2 s apart, then one more interval for
    // the last probe's answer: dead 16 s after the peer went quiet.
    let after = dead_at.saturating_duration_since(silent_from);
    assert!(
        after >= Duration::from_millis(15_500) && after <= Duration::from_secs(16),
        "declared dead {after:?} after the peer went quiet, not 16 s"
    );
    assert_eq!(net.a().mib().keepalive_probes, 3);
    assert_eq!(net.a().mib().keepalive_timeouts, 1);
}

#[test]
fn time_wait_reuse_on_every_backend() {
    for backend in BACKENDS {
        time_wait_reuse(backend);
    }
}

fn time_wait_reuse(backend: netstack::PcbBackend) {
    let mut net = FakeNet::pair_with(NetConfig::default(), |c| c.pcb_backend = backend);
    let (client, server, listener) = open(&mut net, false, 80);
    // The server closes first, so the server's side holds TIME-WAIT.
    net.b().close(&server).unwrap();
    assert!(net.run_until(10_000, |n| read_eof(n.a(), &client)));
    net.a().close(&client).unwrap();
    assert!(net.run_until(10_000, |n| {
        n.b().state_of(&server) == Some(State::TimeWait) && n.a().state_of(&client).is_none()
    }));
    assert_time_wait_gauge(net.b(), 1);
    // The client reconnects from the same port at once: its new SYN (newer
    // timestamps) reopens the tuple in TIME-WAIT.
    let again = net
        .a()
        .connect_from(net.now(), 0, client.local(), client.remote())
        .unwrap();
    let mut accepted = None;
    assert!(net.run_until(10_000, |n| {
        if accepted.is_none() {
            accepted = n.b().accept(&listener);
        }
        accepted.is_some() && n.a().state_of(&again) == Some(State::Established)
    }));
    assert_eq!(net.b().mib().time_wait_reopens, 1, "{backend}");
    assert_time_wait_gauge(net.b(), 0);
    transfer(&mut net, (0, again), (1, accepted.unwrap()), 1000);
}

#[test]
fn accept_queue_full_is_counted_and_recovers() {
    let mut net = FakeNet::pair_with(NetConfig::default(), |c| c.accept_queue = 2);
    let server = SocketAddr::new(B4, 80);
    let listener = net.b().listen(server).unwrap();
    let clients: Vec<_> = (0..4)
        .map(|_| net.a().connect(net.now(), 0, None, server).unwrap())
        .collect();
    net.run_for(Duration::from_millis(500));
    assert_eq!(net.b().accept_queue_len(&listener), 2);
    assert!(net.b().mib().listen_queue_overflow > 0);
    // Accepting makes room; retransmitted SYN-ACKs complete the rest.
    let mut accepted = Vec::new();
    assert!(net.run_until(100_000, |n| {
        while let Some(h) = n.b().accept(&listener) {
            accepted.push(h);
        }
        accepted.len() == 4
    }));
    for c in &clients {
        assert_eq!(net.a().state_of(c), Some(State::Established));
    }
}

#[test]
fn accept_queue_limit_moved_live_applies_to_the_next_final_ack() {
    let mut net = FakeNet::pair_with(NetConfig::default(), |c| c.accept_queue = 8);
    let server = SocketAddr::new(B4, 80);
    let listener = net.b().listen(server).unwrap();
    let connect = |net: &mut FakeNet, n: usize| -> Vec<_> {
        (0..n)
            .map(|_| net.a().connect(net.now(), 0, None, server).unwrap())
            .collect()
    };
    // Five queued under the start limit of 8; then lowered to 2: the five
    // stay queued (none is reset), and new handshakes overflow.
    let first = connect(&mut net, 5);
    net.run_for(Duration::from_millis(300));
    assert_eq!(net.b().accept_queue_len(&listener), 5);
    assert_eq!(net.b().mib().listen_queue_overflow, 0);
    net.b().set_accept_queue_limit(2);
    assert_eq!(net.b().accept_queue_limit(), 2);
    let second = connect(&mut net, 3);
    net.run_for(Duration::from_millis(300));
    assert_eq!(net.b().accept_queue_len(&listener), 5, "kept, not reset");
    assert!(net.b().mib().listen_queue_overflow >= 3);
    for c in &first {
        assert_eq!(net.a().state_of(c), Some(State::Established));
    }
    // Raised: the held-back handshakes complete on their next SYN-ACK, no
    // accept needed.
    net.b().set_accept_queue_limit(16);
    assert!(net.run_until(100_000, |n| n.b().accept_queue_len(&listener) == 8));
    for c in &second {
        assert_eq!(net.a().state_of(c), Some(State::Established));
    }
}

#[test]
fn closing_a_listener_resets_unaccepted_connections_and_refuses_new_ones() {
    let mut net = FakeNet::pair(NetConfig::default());
    let server = SocketAddr::new(B4, 80);
    let listener = net.b().listen(server).unwrap();
    let waiting = net.a().connect(net.now(), 0, None, server).unwrap();
    assert!(net.run_until(1000, |n| n.b().accept_queue_len(&listener) == 1));
    net.b().close_listener(listener);
    let mut reset = false;
    assert!(net.run_until(1000, |n| {
        while let Some((h, ev)) = n.a().poll_events(0) {
            reset |= h == waiting && ev.contains(Events::RESET);
        }
        reset
    }));
    let late = net.a().connect(net.now(), 0, None, server).unwrap();
    assert!(net.run_until(1000, |n| n.a().state_of(&late).is_none()));
    assert!(net.b().mib().no_port >= 1);
    // The port can be listened on again.
    net.b().listen(server).unwrap();
}

#[test]
fn pool_exhaustion_drops_the_handshake_and_counts_it_on_every_backend() {
    for backend in BACKENDS {
        pool_exhaustion_drops_the_handshake_and_counts_it(backend);
    }
}

/// A baseline's cap is the same `pool_cap`, on entries.
fn pool_exhaustion_drops_the_handshake_and_counts_it(backend: netstack::PcbBackend) {
    let mut net = FakeNet::pair(NetConfig::default());
    let mut small = support::stack_config(vec![B4, B6], 5);
    small.pool_cap = 64;
    small.pcb_backend = backend;
    net.stacks[1] = std::sync::Arc::new(Stack::new(small));
    let server = SocketAddr::new(B4, 80);
    let listener = net.b().listen(server).unwrap();
    let clients: Vec<_> = (0..80)
        .map(|_| net.a().connect(net.now(), 0, None, server).unwrap())
        .collect();
    net.run_for(Duration::from_millis(50));
    let mut accepted = 0;
    while net.b().accept(&listener).is_some() {
        accepted += 1;
    }
    assert!(
        accepted <= 64,
        "{backend}: {accepted} connections from a pool of 64"
    );
    assert!(
        net.b().mib().pool_exhausted > 0,
        "{backend}: exhaustion must be counted"
    );
    assert!(net.b().connections() <= 64, "{backend}");
    assert!(net.b().pool_stats().exhausted > 0, "{backend}");
    assert_eq!(clients.len(), 80);
}

#[test]
fn lossy_transfers_complete_across_seeds() {
    for seed in 1..=32 {
        let cfg = NetConfig {
            loss_per_mille: 50,
            dup_per_mille: 20,
            jitter: Duration::from_millis(5),
            seed,
            ..NetConfig::default()
        };
        let mut net = FakeNet::pair(cfg);
        let (client, server, _l) = open(&mut net, seed % 2 == 0, 7000);
        transfer(&mut net, (0, client), (1, server), 128 * 1024);
        net.a().close(&client).unwrap();
        net.b().close(&server).unwrap();
        assert!(
            net.run_until(100_000, |n| {
                n.a().state_of(&client).is_none_or(|s| s == State::TimeWait)
                    && n.b().state_of(&server).is_none_or(|s| s == State::TimeWait)
            }),
            "seed {seed}: close did not finish"
        );
    }
}

#[test]
fn connection_churn_leaves_no_state_behind_on_every_backend() {
    for backend in BACKENDS {
        connection_churn_leaves_no_state_behind(backend);
    }
}

fn connection_churn_leaves_no_state_behind(backend: netstack::PcbBackend) {
    let mut net = FakeNet::pair_with(NetConfig::default(), |c| c.pcb_backend = backend);
    let server = SocketAddr::new(B4, 9000);
    let listener = net.b().listen(server).unwrap();
    for round in 0..100 {
        let c = net.a().connect(net.now(), 0, None, server).unwrap();
        let mut s = None;
        assert!(net.run_until(1000, |n| {
            s = s.or_else(|| n.b().accept(&listener));
            s.is_some() && n.a().state_of(&c) == Some(State::Established)
        }));
        let s = s.unwrap();
        net.a().write(&c, b"request").unwrap();
        let (closer, other, closer_stack) = if round % 2 == 0 { (c, s, 0) } else { (s, c, 1) };
        net.stacks[closer_stack].close(&closer).unwrap();
        let other_stack = 1 - closer_stack;
        assert!(net.run_until(1000, |n| read_eof(&n.stacks[other_stack], &other)));
        net.stacks[other_stack].close(&other).unwrap();
        assert!(net.run_until(1000, |n| n.stacks[other_stack].state_of(&other).is_none()));
        while net.a().poll_events(0).is_some() {}
        while net.b().poll_events(0).is_some() {}
    }
    // Every TIME-WAIT expires; nothing is left in the tables or the heaps.
    net.run_for(Duration::from_secs(120));
    // A connection removed while its events wait for the application keeps
    // its PCB pinned by the event entry until they are polled.
    while net.a().poll_events(0).is_some() {}
    while net.b().poll_events(0).is_some() {}
    assert_eq!(net.a().connections(), 0, "{backend}");
    assert_eq!(net.b().connections(), 0, "{backend}");
    assert_eq!(net.b().pool_stats().live, 0, "{backend}");
    assert_eq!(net.b().chain_stats().entries, 0, "{backend}");
    assert_eq!(net.a().worker(0).poll_timeout(), None);
    assert_eq!(net.b().worker(0).poll_timeout(), None);
    assert_eq!(net.b().syncache_len(), 0);
    assert_eq!(net.a().mib().curr_estab(), 0);
}
