//! Hostile input through a whole Stack: a million random, mutated and
//! misdirected frames into `handle_frame` of a stack with a listener and a live
//! connection. Nothing may panic, every frame is counted exactly once, state
//! stays bounded, and the stack still accepts a connection afterwards.
//!
//! `HOSTILE_STACK_CASES=N` changes the case count; `HOSTILE_STACK_SEED=S` the seed.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use netstack::{
    EchoKind, PcbBackend, SeqNum, State, TcpFlags, TcpHeader, TcpOptions, Timestamps, emit_echo,
    emit_tcp,
};
use support::{A4, B4, FakeNet, NetConfig, Rng};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A segment aimed at something the stack has: the listener, the live
/// connection's tuple, a closed port; random numbers, flags and options.
fn aimed_segment(rng: &mut Rng, conn: (SocketAddr, SocketAddr), buf: &mut [u8]) -> usize {
    let r = rng.next_u64();
    let (src, dst) = match r % 4 {
        0 => (
            SocketAddr::new(A4, (r >> 8) as u16 | 1),
            SocketAddr::new(B4, 80),
        ),
        1 | 2 => conn,
        _ => (
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 0, (r >> 8) as u8 | 1)), 999),
            SocketAddr::new(B4, (r >> 16) as u16 | 1),
        ),
    };
    let near = |rng: &mut Rng| (rng.next_u64() % 200_000) as u32;
    let mut options = TcpOptions::default();
    if rng.chance(300) {
        options.mss = Some(rng.next_u64() as u16);
    }
    if rng.chance(300) {
        options.window_scale = Some((rng.next_u64() % 16) as u8);
    }
    options.sack_permitted = rng.chance(200);
    if rng.chance(500) {
        options.timestamps = Some(Timestamps {
            value: rng.next_u64() as u32,
            echo_reply: rng.next_u64() as u32,
        });
    }
    let header = TcpHeader {
        src_port: src.port(),
        dst_port: dst.port(),
        seq: SeqNum(if rng.chance(500) {
            rng.next_u64() as u32
        } else {
            near(rng)
        }),
        ack: SeqNum(if rng.chance(500) {
            rng.next_u64() as u32
        } else {
            near(rng)
        }),
        flags: TcpFlags(rng.next_u64() as u8),
        window: rng.next_u64() as u16,
        urgent: rng.next_u64() as u16,
        options,
    };
    let payload = [0x42u8; 48];
    let len = (rng.next_u64() % 49) as usize;
    emit_tcp(src.ip(), dst.ip(), 64, &header, &payload[..len], buf).unwrap_or(0)
}

fn hostile(rng: &mut Rng, conn: (SocketAddr, SocketAddr), buf: &mut [u8]) -> usize {
    match rng.next_u64() % 8 {
        // Noise.
        0 => {
            let n = (rng.next_u64() % 120) as usize;
            buf[..n].iter_mut().for_each(|b| *b = rng.next_u64() as u8);
            n
        }
        // A good segment with a byte changed (its checksum now fails, or the
        // change hit the checksum itself).
        1 => {
            let n = aimed_segment(rng, conn, buf);
            if n > 0 {
                let at = (rng.next_u64() % n as u64) as usize;
                buf[at] ^= 1 << (rng.next_u64() % 8);
            }
            n
        }
        // Cut short.
        2 => {
            let n = aimed_segment(rng, conn, buf);
            (rng.next_u64() % (n as u64).max(1)) as usize
        }
        // An echo request, to us or to someone else.
        3 => {
            let dst = if rng.chance(500) { A4 } else { B4 };
            let echo = netstack::Echo {
                ident: 1,
                seq_no: rng.next_u64() as u16,
                data: b"hostile",
            };
            emit_echo(A4, dst, 64, EchoKind::Request, &echo, buf).unwrap_or(0)
        }
        // Well-formed, aimed.
        _ => aimed_segment(rng, conn, buf),
    }
}

#[test]
fn a_million_hostile_frames_through_the_stack() {
    hostile_frames_through(PcbBackend::Smr, env("HOSTILE_STACK_CASES", 1_000_000));
}

/// The same on a baseline table (refcounted slots), with a tenth of the
/// frames: what it checks is the table layer, not the parser again.
#[test]
fn hostile_frames_through_the_stack_on_the_dashmap_backend() {
    hostile_frames_through(PcbBackend::DashMap, env("HOSTILE_STACK_CASES", 100_000));
}

fn hostile_frames_through(backend: PcbBackend, cases: u64) {
    let seed = env("HOSTILE_STACK_SEED", 0x0bad_5eed);
    let mut net = FakeNet::pair_with(NetConfig::default(), |c| {
        c.workers = 2;
        c.pcb_backend = backend;
    });
    net.keep_stray = false;
    let listener = net.b().listen(SocketAddr::new(B4, 80)).unwrap();
    let client = net
        .a()
        .connect(net.now(), 0, None, SocketAddr::new(B4, 80))
        .unwrap();
    // Both ends: the server's side exists once the final ACK arrived.
    assert!(net.run_until(1000, |n| {
        n.a().state_of(&client) == Some(State::Established) && n.b().connections() == 1
    }));
    let conn = (client.local(), client.remote());
    let mut rng = Rng::new(seed);
    let mut buf = [0u8; 256];
    let mut max_conns = 0;
    let mut max_timers = 0;
    for i in 0..cases {
        let n = hostile(&mut rng, conn, &mut buf);
        // Worker 1 takes only the hostile frames, so its counters are theirs.
        net.b().worker(1).handle_frame(net.now(), &buf[..n]);
        if i % 1000 == 999 {
            net.step();
            while net.b().accept(&listener).is_some() {}
            max_conns = max_conns.max(net.b().connections());
            max_timers = max_timers
                .max(net.b().worker(0).timer_entries() + net.b().worker(1).timer_entries());
        }
    }
    let c = net.b().worker(1).counters().snapshot();
    eprintln!(
        "{backend}: {cases} hostile frames (seed {seed:#x}): {} delivered, {} dropped; at most {max_conns} \
         connections and {max_timers} timer entries; stack {:?}",
        c.delivered,
        c.total_drops(),
        net.b().stack_counters()
    );
    assert_eq!(c.in_receives, cases);
    assert_eq!(c.delivered + c.total_drops(), cases);
    assert!(net.b().syncache_len() <= net.b().config().syncache.max_entries);
    assert!(max_conns <= net.b().config().pool_cap);
    assert!(
        max_timers <= 4 * max_conns + 16,
        "{max_timers} timer entries for {max_conns} connections"
    );
    // Still serving: a fresh connection completes.
    let fresh = net
        .a()
        .connect(net.now(), 0, None, SocketAddr::new(B4, 80))
        .unwrap();
    assert!(net.run_until(10_000, |n| {
        while n.b().accept(&listener).is_some() {}
        n.a().state_of(&fresh) == Some(State::Established)
    }));
}
