//! Connection churn between two Stacks in memory, on each connection-table
//! backend: a fixed amount of work (N complete connections: SYN, 64-octet
//! request + FIN, echo + FIN, last ACK, at most 64 in flight), so that
//! `perf stat -e cycles:u` compares builds even on a busy machine.
//!
//! `cargo run --release -p netstack --example table_churn -- [N] [RUNS] [BACKEND,...]`
//! (defaults: 20000 connections, at most 60000, 3 runs, every backend; runs interleaved,
//! median reported).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant as WallClock;

use netstack::{Events, Instant, PcbBackend, Stack, StackConfig};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 7);
const WINDOW: usize = 64;
const REQUEST: [u8; 64] = [0x5a; 64];

fn stack(addr: IpAddr, backend: PcbBackend, conns: usize) -> Stack {
    let mut cfg = StackConfig::new(vec![addr]);
    cfg.insecure_deterministic_seed = Some(7);
    cfg.table_capacity = conns + WINDOW;
    cfg.pool_cap = 2 * conns + 64 * 1024;
    cfg.accept_queue = 4 * WINDOW;
    cfg.pcb_backend = backend;
    // The client keeps every connection in TIME-WAIT for the whole run.
    cfg.ephemeral_ports = 1024..=65535;
    Stack::new(cfg)
}

/// Nanoseconds of wall time per connection for `n` complete connections.
fn run(backend: PcbBackend, n: usize) -> f64 {
    let a = stack(CLIENT, backend, n);
    let b = stack(SERVER.ip(), backend, n);
    let listener = b.listen(SERVER).expect("our address");
    let (wa, wb) = (a.worker(0), b.worker(0));
    let mut buf = vec![0u8; 2048];
    let mut scratch = [0u8; 256];
    let (mut started, mut done, mut in_flight) = (0usize, 0usize, 0usize);
    let mut now = Instant::ZERO;
    let t0 = WallClock::now();
    let mut rounds = 0u64;
    while done < n {
        rounds += 1;
        assert!(
            rounds < 100 * n as u64 + 10_000,
            "{backend}: stalled at {done}"
        );
        now = Instant::from_nanos(now.as_nanos() + 100_000);
        while in_flight < WINDOW && started < n {
            a.connect(now, 0, None, SERVER).expect("connect");
            started += 1;
            in_flight += 1;
        }
        while let Some(len) = wa.poll_transmit(now, &mut buf) {
            wb.handle_frame(now, &buf[..len]);
        }
        while b.accept(&listener).is_some() {}
        while let Some((conn, _)) = b.poll_events(0) {
            loop {
                match b.read(&conn, &mut scratch) {
                    Ok(0) => {
                        let _ = b.close(&conn);
                        break;
                    }
                    Ok(len) => {
                        let _ = b.write(&conn, &scratch[..len]);
                    }
                    Err(_) => break,
                }
            }
        }
        while let Some(len) = wb.poll_transmit(now, &mut buf) {
            wa.handle_frame(now, &buf[..len]);
        }
        while let Some((conn, events)) = a.poll_events(0) {
            if events.contains(Events::CONNECTED) && a.write(&conn, &REQUEST).is_ok() {
                let _ = a.close(&conn);
            }
            loop {
                match a.read(&conn, &mut scratch) {
                    Ok(0) => {
                        done += 1;
                        in_flight -= 1;
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        wa.handle_timeout(now);
        wb.handle_timeout(now);
    }
    t0.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
        .min(60_000);
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let backends: Vec<PcbBackend> = match args.next() {
        Some(list) => list
            .split(',')
            .map(|s| s.parse().unwrap_or_else(|e| panic!("{e}")))
            .collect(),
        None => PcbBackend::ALL.to_vec(),
    };
    let mut samples = vec![Vec::new(); backends.len()];
    for _ in 0..runs {
        for (b, s) in backends.iter().zip(&mut samples) {
            s.push(run(*b, n));
        }
    }
    println!(
        "{:<8} {:>8} {:>10} {:>10} {:>10}",
        "backend", "conns", "ns/conn", "min", "max"
    );
    for (b, s) in backends.iter().zip(&mut samples) {
        s.sort_by(f64::total_cmp);
        println!(
            "{:<8} {:>8} {:>10.0} {:>10.0} {:>10.0}",
            b.name(),
            n,
            s[s.len() / 2],
            s[0],
            s[s.len() - 1]
        );
    }
}
