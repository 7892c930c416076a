//! Real threads: the application's turns on one worker race another
//! worker's input path closing and resetting the same connections, while
//! tuples are reused, on the SMR table with a poisoning pool (feature
//! `poison`: a PCB past its grace period is poisoned, and a pin that reaches
//! a retired or reused PCB, or a lookup that walks over a poisoned one,
//! counts a poison hit).
//!
//! Server B has two workers on two threads; each handles half of the
//! client's frames (alternating, so a connection's segments arrive on both
//! workers), runs turns for the connections it is home to (read, echo,
//! sometimes close or abort inside the turn), and transmits. The client A
//! runs on the test thread: it connects from a small set of ports (so
//! tuples are reused, TIME-WAIT reopens included), writes, and aborts or
//! closes at random. Every loop is bounded in rounds and in time.
//!
//! At the end, with everything drained: no poison hit, and every PCB the
//! pool holds live is a connection in the table (no pin was leaked: a
//! removed PCB whose last pin was never given back would stay live).

mod support;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use netstack::{ConnHandle, Instant, ListenerHandle, PcbBackend, Stack, State};
use support::{A4, B4, Rng, stack_config};

const PORTS: u16 = 64;
const ROUNDS: usize = 20_000;
const TIME_LIMIT: Duration = Duration::from_secs(20);
const SERVER_PORT: u16 = 7;

type Wire = Mutex<VecDeque<Vec<u8>>>;

struct Shared {
    b: Stack,
    listener: OnceLock<ListenerHandle>,
    /// Client frames for each of B's workers.
    inbox: [Wire; 2],
    /// B's frames for the client.
    outbox: Wire,
    now_ns: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn now(&self) -> Instant {
        // Relaxed: a clock value; the frames carry their own ordering.
        Instant::from_nanos(self.now_ns.load(Ordering::Relaxed))
    }
}

fn take(w: &Wire) -> Vec<Vec<u8>> {
    w.lock().unwrap().drain(..).collect()
}

/// One worker turn of B's worker `index`: input, application turns,
/// timers, output. Returns whether anything happened.
fn server_turn(s: &Shared, index: usize, rng: &mut Rng, buf: &mut [u8]) -> bool {
    let w = s.b.worker(index);
    let now = s.now();
    let input = take(&s.inbox[index]);
    let mut busy = !input.is_empty();
    for f in &input {
        w.handle_frame(now, f);
    }
    // Accepted connections are served from their events alone.
    if let Some(l) = s.listener.get() {
        while s.b.accept(l).is_some() {}
    }
    let mut scratch = [0u8; 256];
    let turns = w.poll_events(64, |conn, _| {
        loop {
            match conn.read(&mut scratch) {
                Ok(0) => {
                    let _ = conn.close();
                    break;
                }
                Ok(n) => {
                    let _ = conn.write(&scratch[..n]);
                }
                Err(_) => break,
            }
        }
        match rng.below(16) {
            0 => {
                let _ = conn.abort();
            }
            1 => {
                let _ = conn.close();
            }
            _ => {}
        }
    });
    busy |= turns > 0;
    w.handle_timeout(now);
    let mut out = Vec::new();
    while let Some(n) = w.poll_transmit(now, buf) {
        out.push(buf[..n].to_vec());
        assert!(out.len() < 100_000, "poll_transmit never ran dry");
    }
    busy |= !out.is_empty();
    s.outbox.lock().unwrap().extend(out);
    busy
}

fn client_round(a: &Stack, s: &Shared, slots: &mut [Option<ConnHandle>], rng: &mut Rng, n: usize) {
    let now = s.now();
    let wa = a.worker(0);
    for f in take(&s.outbox) {
        wa.handle_frame(now, &f);
    }
    let mut buf = [0u8; 256];
    for (i, slot) in slots.iter_mut().enumerate() {
        match slot {
            None => {
                let local = SocketAddr::new(A4, 41_000 + i as u16);
                let remote = SocketAddr::new(B4, SERVER_PORT);
                *slot = a.connect_from(now, 0, local, remote).ok();
            }
            Some(c) => match a.state_of(c) {
                None => *slot = None,
                Some(State::Established) => {
                    while a.read(c, &mut buf).is_ok_and(|n| n > 0) {}
                    let _ = a.write(c, b"ping");
                    match rng.below(12) {
                        0 => {
                            let _ = a.abort(c);
                        }
                        1 => {
                            let _ = a.close(c);
                        }
                        _ => {}
                    }
                }
                Some(State::CloseWait) => {
                    let _ = a.close(c);
                }
                Some(_) => while a.read(c, &mut buf).is_ok_and(|n| n > 0) {},
            },
        }
    }
    while a.poll_events(0).is_some() {}
    wa.handle_timeout(now);
    let mut frame = vec![0u8; 4096];
    let mut k = n;
    while let Some(len) = wa.poll_transmit(now, &mut frame) {
        // Alternate the workers, so one connection's segments reach both.
        s.inbox[k % 2]
            .lock()
            .unwrap()
            .push_back(frame[..len].to_vec());
        k += 1;
    }
}

#[test]
fn turns_race_closes_and_resets_from_another_worker_without_touching_freed_pcbs() {
    let mut a_cfg = stack_config(vec![A4], 11);
    a_cfg.pool_cap = 1 << 14;
    let a = Stack::new(a_cfg);
    let mut b_cfg = stack_config(vec![B4], 12);
    b_cfg.workers = 2;
    b_cfg.pcb_backend = PcbBackend::Smr;
    b_cfg.pool_cap = 1 << 14;
    let shared = Arc::new(Shared {
        b: Stack::new(b_cfg),
        listener: OnceLock::new(),
        inbox: [Mutex::default(), Mutex::default()],
        outbox: Mutex::default(),
        now_ns: AtomicU64::new(1_000_000),
        stop: AtomicBool::new(false),
    });
    let listener = shared.b.listen(SocketAddr::new(B4, SERVER_PORT)).unwrap();
    assert!(shared.listener.set(listener).is_ok());
    let started = std::time::Instant::now();
    let servers: Vec<_> = (0..2)
        .map(|index| {
            let s = Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut rng = Rng::new(100 + index as u64);
                let mut buf = vec![0u8; 4096];
                let mut turns = 0u64;
                // Acquire: pairs with the Release store of `stop`.
                while !s.stop.load(Ordering::Acquire) && started.elapsed() < TIME_LIMIT {
                    if !server_turn(&s, index, &mut rng, &mut buf) {
                        std::thread::yield_now();
                    }
                    turns += 1;
                }
                turns
            })
        })
        .collect();
    let mut rng = Rng::new(7);
    let mut slots = vec![None; PORTS as usize];
    let mut rounds = 0;
    while rounds < ROUNDS && started.elapsed() < TIME_LIMIT {
        client_round(&a, &shared, &mut slots, &mut rng, rounds);
        // 40 ms a round: retransmissions and TIME-WAIT (60 s) play a part
        // over the run.
        // Relaxed: a clock value.
        shared.now_ns.fetch_add(40_000_000, Ordering::Relaxed);
        rounds += 1;
        std::thread::yield_now();
    }
    // Release: pairs with the workers' Acquire load.
    shared.stop.store(true, Ordering::Release);
    let turns: Vec<u64> = servers.into_iter().map(|t| t.join().unwrap()).collect();
    let b = &shared.b;
    let stats = b.stack_counters();
    assert!(rounds > 100, "the client ran only {rounds} rounds");
    assert!(turns.iter().all(|&t| t > 10), "worker turns {turns:?}");
    assert!(b.mib().passive_opens > 20, "connections were made");
    // Quiesce on this thread: drain every list, so every pin goes back.
    let mut buf = vec![0u8; 4096];
    let mut rng = Rng::new(1);
    for _ in 0..4 {
        for index in 0..2 {
            server_turn(&shared, index, &mut rng, &mut buf);
        }
    }
    for index in 0..2 {
        let w = b.worker(index);
        w.poll_events(usize::MAX, |_, _| {});
        while w.poll_transmit(shared.now(), &mut buf).is_some() {}
    }
    while b.poll_events(0).is_some() || b.poll_events(1).is_some() {}
    assert_eq!(b.poison_hits(), 0, "a pin or lookup reached a freed PCB");
    assert_eq!(
        b.pool_stats().live,
        b.connections() as u64,
        "PCBs live in the pool beyond the table's connections: a pin was leaked \
         ({stats:?})"
    );
}
