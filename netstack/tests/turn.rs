//! The application's turn (`Worker::poll_events` and `ConnTurn`): an echo
//! round trip costs the serving stack one table lookup per connection per
//! worker turn (the input segment's), stale entries are refused, on every
//! connection-table backend.
//!
//! The two stacks are wired by hand (no loss, no delay), so each worker
//! turn is exactly: deliver the peer's frames, run the application's turns,
//! drain `poll_transmit`.

mod support;

use std::net::SocketAddr;

use netstack::{AppError, ConnError, ConnHandle, Events, Instant, Stack, State};
use support::{A4, B4, BACKENDS, stack_config};

const CONNS: usize = 8;
const ECHO_PORT: u16 = 7;

fn pair(backend: netstack::PcbBackend) -> (Stack, Stack) {
    let mut a = stack_config(vec![A4], 1);
    let mut b = stack_config(vec![B4], 2);
    a.pcb_backend = backend;
    b.pcb_backend = backend;
    (Stack::new(a), Stack::new(b))
}

/// Everything `from` wants to send, handed to `to` (one worker each).
fn pump(from: &Stack, to: &Stack, now: Instant) -> usize {
    let (wf, wt) = (from.worker(0), to.worker(0));
    let mut buf = vec![0u8; 4096];
    let mut frames = Vec::new();
    while let Some(n) = wf.poll_transmit(now, &mut buf) {
        frames.push(buf[..n].to_vec());
        assert!(frames.len() < 10_000, "poll_transmit never ran dry");
    }
    for f in &frames {
        wt.handle_frame(now, f);
    }
    frames.len()
}

/// `CONNS` established connections from A to B's echo port; B's handles.
fn establish(a: &Stack, b: &Stack, now: Instant) -> (Vec<ConnHandle>, Vec<ConnHandle>) {
    let listener = b.listen(SocketAddr::new(B4, ECHO_PORT)).unwrap();
    let clients: Vec<ConnHandle> = (0..CONNS)
        .map(|_| {
            a.connect(now, 0, None, SocketAddr::new(B4, ECHO_PORT))
                .unwrap()
        })
        .collect();
    for _ in 0..4 {
        pump(a, b, now);
        pump(b, a, now);
    }
    let mut servers = Vec::new();
    while let Some(h) = b.accept(&listener) {
        servers.push(h);
    }
    assert_eq!(servers.len(), CONNS, "every handshake completed");
    for c in &clients {
        assert_eq!(a.state_of(c), Some(State::Established));
    }
    while a.poll_events(0).is_some() {}
    while b.poll_events(0).is_some() {}
    (clients, servers)
}

/// The client side writes a ping on every connection and sends it.
fn send_pings(a: &Stack, clients: &[ConnHandle]) {
    for c in clients {
        assert_eq!(a.write(c, b"ping").unwrap(), 4);
    }
}

/// B's worker turn with the application inside turns; returns the
/// connections served.
fn server_turn_in_turns(a: &Stack, b: &Stack, now: Instant) -> usize {
    pump(a, b, now);
    let w = b.worker(0);
    let mut buf = [0u8; 64];
    let mut served = 0;
    w.poll_events(usize::MAX, |conn, events| {
        if !events.contains(Events::READABLE) {
            return;
        }
        served += 1;
        let n = conn.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        assert_eq!(conn.write(&buf[..n]).unwrap(), n);
        assert_eq!(
            conn.read(&mut buf),
            Err(AppError::Conn(ConnError::WouldBlock))
        );
    });
    w.handle_timeout(now);
    drop(w);
    pump(b, a, now);
    served
}

/// The same turn through `ConnHandle`s (the path outside a turn).
fn server_turn_by_handle(a: &Stack, b: &Stack, now: Instant) -> usize {
    pump(a, b, now);
    let mut buf = [0u8; 64];
    let mut served = 0;
    while let Some((h, events)) = b.poll_events(0) {
        if !events.contains(Events::READABLE) {
            continue;
        }
        served += 1;
        let n = b.read(&h, &mut buf).unwrap();
        assert_eq!(b.write(&h, &buf[..n]).unwrap(), n);
        assert_eq!(
            b.read(&h, &mut buf),
            Err(AppError::Conn(ConnError::WouldBlock))
        );
    }
    b.worker(0).handle_timeout(now);
    pump(b, a, now);
    served
}

fn client_got_echoes(a: &Stack, clients: &[ConnHandle]) {
    let mut buf = [0u8; 64];
    for c in clients {
        assert_eq!(a.read(c, &mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"ping");
    }
    while a.poll_events(0).is_some() {}
}

fn echo_in_turns_costs_one_lookup_per_connection(backend: netstack::PcbBackend) {
    let (a, b) = pair(backend);
    let now = Instant::from_nanos(1_000_000);
    let (clients, _servers) = establish(&a, &b, now);
    for round in 0..3 {
        send_pings(&a, &clients);
        let before = b.table_lookups();
        assert_eq!(server_turn_in_turns(&a, &b, now), CONNS);
        let lookups = b.table_lookups() - before;
        assert!(
            lookups <= CONNS as u64,
            "{backend} round {round}: {lookups} lookups for {CONNS} connections in one worker \
             turn (input, application turns, transmit); at most one each"
        );
        // The counter counts: every input segment found its connection.
        assert!(lookups >= CONNS as u64, "{backend}: {lookups} lookups");
        client_got_echoes(&a, &clients);
        // The client's ACK of the echo, delivered alone: one lookup each.
        let before = b.table_lookups();
        pump(&a, &b, now);
        b.worker(0).poll_events(usize::MAX, |_, _| {});
        pump(&b, &a, now);
        assert!(b.table_lookups() - before <= CONNS as u64, "{backend}");
    }
}

#[test]
fn echo_round_trip_in_turns_costs_one_lookup_per_connection_on_every_backend() {
    for backend in BACKENDS {
        echo_in_turns_costs_one_lookup_per_connection(backend);
    }
}

/// The control: the same round trip through handles looks each connection
/// up again for every call, so the counter above would see it.
#[test]
fn echo_round_trip_by_handle_looks_up_again_for_every_call() {
    for backend in BACKENDS {
        let (a, b) = pair(backend);
        let now = Instant::from_nanos(1_000_000);
        let (clients, _servers) = establish(&a, &b, now);
        send_pings(&a, &clients);
        let before = b.table_lookups();
        assert_eq!(server_turn_by_handle(&a, &b, now), CONNS);
        let lookups = b.table_lookups() - before;
        // Input 1, read 1, write 1, read (would block) 1.
        assert!(
            lookups >= 4 * CONNS as u64,
            "{backend}: {lookups} lookups by handle"
        );
        client_got_echoes(&a, &clients);
    }
}

/// A connection removed while its entries wait on the worker's lists, and
/// its tuple reused by a new connection: the old entries reach the old
/// (dead) PCB, never the newcomer, and its turn refuses every call as
/// `Gone`; the newcomer gets its own turn.
fn stale_entries_are_refused(backend: netstack::PcbBackend) {
    let (a, b) = pair(backend);
    let now = Instant::from_nanos(1_000_000);
    let listener = b.listen(SocketAddr::new(B4, ECHO_PORT)).unwrap();
    let local = SocketAddr::new(A4, 40_000);
    let remote = SocketAddr::new(B4, ECHO_PORT);
    let c1 = a.connect_from(now, 0, local, remote).unwrap();
    for _ in 0..4 {
        pump(&a, &b, now);
        pump(&b, &a, now);
    }
    let s1 = b.accept(&listener).expect("first connection");
    // Data for the application (an event entry), then an abort from the
    // application side of B: the reset leaves, the connection is removed,
    // and its event entry is still on the list.
    a.write(&c1, b"old").unwrap();
    pump(&a, &b, now);
    b.abort(&s1).unwrap();
    pump(&b, &a, now);
    assert_eq!(b.state_of(&s1), None, "{backend}: removed");
    assert_eq!(b.connections(), 0, "{backend}");
    // A settles its reset connection on its next transmit poll.
    pump(&a, &b, now);
    assert_eq!(
        a.state_of(&c1),
        None,
        "{backend}: the client's side is gone too"
    );
    while a.poll_events(0).is_some() {}
    // The same tuple again.
    let c2 = a.connect_from(now, 0, local, remote).unwrap();
    for _ in 0..4 {
        pump(&a, &b, now);
        pump(&b, &a, now);
    }
    let s2 = b.accept(&listener).expect("second connection");
    assert_eq!(s1.local(), s2.local());
    assert_eq!(s1.remote(), s2.remote());
    assert_ne!(s1, s2, "a new connection number");
    a.write(&c2, b"new").unwrap();
    pump(&a, &b, now);
    let mut buf = [0u8; 16];
    let (mut old_turns, mut new_reads) = (0, 0);
    b.worker(0).poll_events(usize::MAX, |conn, _| {
        if conn.handle() == s1 {
            old_turns += 1;
            assert!(
                !conn.is_live(),
                "{backend}: the old turn reached a live PCB"
            );
            assert_eq!(conn.read(&mut buf), Err(AppError::Gone), "{backend}");
            assert_eq!(conn.write(b"x"), Err(AppError::Gone), "{backend}");
            assert_eq!(conn.state(), None);
        } else if conn.handle() == s2
            && let Ok(n) = conn.read(&mut buf)
        {
            assert_eq!(&buf[..n], b"new", "{backend}");
            new_reads += 1;
        }
    });
    assert!(
        old_turns <= 1,
        "{backend}: the old connection's final events once"
    );
    assert_eq!(new_reads, 1, "{backend}: the newcomer got its turn");
    assert_eq!(b.read(&s1, &mut buf), Err(AppError::Gone), "{backend}");
    // Nothing the old entries did reached the newcomer: it is established
    // and its data was read exactly once.
    assert_eq!(b.state_of(&s2), Some(State::Established), "{backend}");
    assert_eq!(
        b.read(&s2, &mut buf),
        Err(AppError::Conn(ConnError::WouldBlock))
    );
}

#[test]
fn stale_entries_are_refused_after_the_tuple_is_reused_on_every_backend() {
    for backend in BACKENDS {
        stale_entries_are_refused(backend);
    }
}

#[test]
fn a_second_worker_token_for_one_index_is_refused() {
    let (_, b) = pair(netstack::PcbBackend::Smr);
    let w = b.worker(0);
    assert!(b.try_worker(0).is_none(), "one token per index");
    assert!(b.try_worker(1).is_none(), "no such index");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.worker(0)));
    assert!(caught.is_err(), "worker() panics on a second token");
    drop(w);
    assert!(
        b.try_worker(0).is_some(),
        "dropping the token frees the index"
    );
}

#[test]
fn a_nested_turn_panics_instead_of_locking_a_second_connection() {
    let (a, b) = pair(netstack::PcbBackend::Smr);
    let now = Instant::from_nanos(1_000_000);
    let (clients, _servers) = establish(&a, &b, now);
    send_pings(&a, &clients);
    pump(&a, &b, now);
    let w = b.worker(0);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        w.poll_events(1, |_, _| {
            w.poll_events(1, |_, _| {});
        })
    }));
    assert!(caught.is_err());
    // The worker is usable again afterwards.
    assert!(w.poll_events(usize::MAX, |_, _| {}) > 0);
}
