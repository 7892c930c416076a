//! `smrnet bench stack`: what one whole TCP connection costs the Stack, with
//! the connection table read under each SMR mode, side by side.
//!
//! One operation is a connection's life between two in-process stacks joined
//! by direct frame passing (no loss, no copies beyond the frames): connect,
//! three-way handshake through the SYN cache, a 1 KiB request, the server's
//! 1 KiB answer, both closes, and the client's TIME-WAIT. Every frame goes
//! through `parse_frame`, the SMR-protected demux, the TCB and `emit_tcp`.
//! With T threads, the server is one Stack with T workers (shared table,
//! listener, SYN cache and PCB pool) and each thread drives one worker and its
//! own client Stack. Time is the monotonic clock (this is a driver); MSL is
//! 5 ms so TIME-WAIT entries expire and the tables reach a steady size.

use super::harness::Summary;
use super::report::{self, Machine, Measured, RunArgs, round};
use netstack::{Instant, ListenerHandle, Stack, StackConfig};
use serde::Serialize;
use smr::Mode;
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::Duration;

/// Cost of one complete TCP connection (handshake, 1 KiB each way, close,
/// TIME-WAIT) through two Stacks, per thread, with the table's SMR mode
/// default, lazy and deferred side by side. Ratios are against default.
#[derive(Debug, clap::Args)]
pub struct StackArgs {
    // With --json: `{"bench":"stack","machine":{..},"runs":K,
    // "millis_per_run":MS,"livelocked_exchanges":N,"results":[{"impl":..,"threads":N,
    // "us_per_connection":..,"min":..,"max":..}],"ratios":{..}}`.
    #[command(flatten)]
    run: RunArgs,
}

const IMPLS: [Mode; 3] = [Mode::Default, Mode::Lazy, Mode::Deferred];
const BASELINE: Mode = Mode::Default;
const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const PORT: u16 = 80;
const REQUEST: usize = 1024;

/// A distinct address per thread, so no two clients share a 4-tuple.
fn client_addr(thread: usize) -> IpAddr {
    let n = thread.wrapping_add(1);
    IpAddr::V4(Ipv4Addr::new(10, 1, (n >> 8) as u8, n as u8))
}

/// Moves frames between a client and one server worker until both are quiet
/// (or a bounded number of rounds pass: a run that hits the bound shows up as
/// a slow figure, not a hang).
fn shuttle(client: &Stack, server: &Stack, worker: usize, now: Instant, buf: &mut [u8]) {
    let (c, s) = (client.worker(0), server.worker(worker));
    for _ in 0..1000 {
        let mut moved = false;
        while let Some(n) = c.poll_transmit(now, buf) {
            s.handle_frame(now, &buf[..n]);
            moved = true;
        }
        while let Some(n) = s.poll_transmit(now, buf) {
            c.handle_frame(now, &buf[..n]);
            moved = true;
        }
        if !moved {
            return;
        }
    }
    // Relaxed: statistics only.
    LIVELOCKS.fetch_add(1, Relaxed);
    if std::env::var_os("SMRNET_TRACE_LIVELOCK").is_some() {
        for _ in 0..3 {
            if let Some(n) = c.poll_transmit(now, buf) {
                eprintln!("client> {:?}", netstack::parse_frame(&buf[..n]));
                s.handle_frame(now, &buf[..n]);
            }
            if let Some(n) = s.poll_transmit(now, buf) {
                eprintln!("server> {:?}", netstack::parse_frame(&buf[..n]));
                c.handle_frame(now, &buf[..n]);
            }
        }
    }
}

/// Shuttles that hit their bound: frames kept flowing with the clock stopped
/// (an ACK war). Reported; zero in a healthy run.
static LIVELOCKS: AtomicU64 = AtomicU64::new(0);

/// One connection's life; the clock moves on by 10 ms.
fn one_connection(
    client: &Stack,
    server: &Stack,
    listener: &ListenerHandle,
    worker: usize,
    epoch: std::time::Instant,
    buf: &mut [u8],
    data: &[u8],
) {
    // The monotonic clock, read as a driver reads it: every worker sees the
    // same time, and a preempted thread's view is late only by its delay.
    let clock =
        || Instant::from_nanos(u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX));
    let mut now = clock();
    let c = client
        .connect(now, 0, None, SocketAddr::new(SERVER, PORT))
        .expect("an ephemeral port (TIME-WAIT entries expire as the clock moves)");
    shuttle(client, server, worker, now, buf);
    let _ = client.write(&c, data);
    shuttle(client, server, worker, now, buf);
    // The server side: every connection this worker completed answers and
    // closes (working from events; the accept queue is only emptied).
    while server.accept(listener).is_some() {}
    while let Some((h, _)) = server.poll_events(worker) {
        let mut got = 0;
        while let Ok(n) = server.read(&h, buf) {
            if n == 0 {
                break;
            }
            got += n;
        }
        if got > 0 {
            let _ = server.write(&h, data);
            let _ = server.close(&h);
        }
    }
    shuttle(client, server, worker, now, buf);
    while client.read(&c, buf).is_ok_and(|n| n > 0) {}
    let _ = client.close(&c);
    shuttle(client, server, worker, now, buf);
    now = clock();
    for (stack, w) in [(client, 0), (server, worker)] {
        let w = stack.worker(w);
        if w.poll_timeout().is_some_and(|t| t <= now) {
            w.handle_timeout(now);
        }
    }
    while client.poll_events(0).is_some() {}
    shuttle(client, server, worker, now, buf);
}

fn config(addresses: Vec<IpAddr>, mode: Mode, workers: usize) -> StackConfig {
    let mut cfg = StackConfig::new(addresses);
    cfg.smr_mode = mode;
    cfg.workers = workers;
    cfg.table_capacity = 16 * 1024;
    cfg.pool_cap = 256 * 1024;
    cfg.seed = Some(7);
    cfg.tcp.delayed_ack = Duration::ZERO;
    // TIME-WAIT of 10 ms, so that at tens of thousands of connections a
    // second the client's ports come back and the tables reach a steady size.
    cfg.tcp.msl = Duration::from_millis(5);
    cfg
}

/// Microseconds per connection per thread, for one run.
fn measure(mode: Mode, threads: usize, budget: Duration) -> f64 {
    let server = Stack::new(config(vec![SERVER], mode, threads));
    let listener = server
        .listen(SocketAddr::new(SERVER, PORT))
        .expect("a fresh stack has no listener");
    let stop = AtomicBool::new(false);
    let epoch = std::time::Instant::now();
    let start = Barrier::new(threads + 1);
    let data = vec![0x5au8; REQUEST];
    let per_thread: Vec<(u64, u128)> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (server, listener, stop, start, data) =
                    (&server, &listener, &stop, &start, &data);
                s.spawn(move || {
                    let client = Stack::new(config(vec![client_addr(t)], mode, 1));
                    let mut buf = vec![0u8; 65536];
                    one_connection(&client, server, listener, t, epoch, &mut buf, data);
                    start.wait();
                    let t0 = std::time::Instant::now();
                    let mut ops = 0u64;
                    // Relaxed: a stop flag with no data behind it.
                    while !stop.load(Relaxed) {
                        for _ in 0..16 {
                            one_connection(&client, server, listener, t, epoch, &mut buf, data);
                        }
                        ops += 16;
                    }
                    (ops, t0.elapsed().as_nanos())
                })
            })
            .collect();
        start.wait();
        thread::sleep(budget);
        // Relaxed: see above.
        stop.store(true, Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().expect("a benchmark thread panicked"))
            .collect()
    });
    let (ops, ns) = per_thread
        .iter()
        .fold((0u64, 0u128), |(o, n), &(po, pn)| (o + po, n + pn));
    ns as f64 / ops.max(1) as f64 / 1000.0
}

#[derive(Serialize)]
struct Row {
    #[serde(rename = "impl")]
    imp: &'static str,
    threads: usize,
    us_per_connection: f64,
    min: f64,
    max: f64,
}

#[derive(Serialize)]
struct Report {
    bench: &'static str,
    livelocked_exchanges: u64,
    machine: Machine,
    runs: u32,
    millis_per_run: u64,
    results: Vec<Row>,
    ratios: BTreeMap<String, f64>,
}

/// Runs `smrnet bench stack`.
pub fn run(args: &StackArgs) -> io::Result<()> {
    let measured: Vec<Measured<Mode>> = report::interleave(&args.run, &IMPLS, measure);
    let rows: Vec<Row> = measured
        .iter()
        .map(|m| {
            let Summary {
                median, min, max, ..
            } = m.summary;
            Row {
                imp: m.imp.name(),
                threads: m.threads,
                us_per_connection: round(median),
                min: round(min),
                max: round(max),
            }
        })
        .collect();
    let ratios = report::ratios(
        measured.iter().map(|m| {
            let base = report::baseline_median(&measured, BASELINE, m.threads);
            (m.imp.name(), m.threads, round(m.summary.median / base))
        }),
        BASELINE.name(),
    );
    let report = Report {
        bench: "stack",
        // Relaxed: read after every thread was joined.
        livelocked_exchanges: LIVELOCKS.load(Relaxed),
        machine: Machine::this(),
        runs: args.run.runs,
        millis_per_run: args.run.millis_per_run,
        results: rows,
        ratios,
    };
    report::emit(args.run.json, &report, |out, r| {
        writeln!(
            out,
            "one TCP connection (handshake, 1 KiB each way, close, TIME-WAIT) through two \
             Stacks; median of {} runs of {} ms; {} CPUs",
            r.runs,
            r.millis_per_run,
            r.machine.cpus()
        )?;
        writeln!(
            out,
            "{:<10} {:>7} {:>14} {:>10} {:>10}",
            "smr mode", "threads", "us/connection", "min", "max"
        )?;
        for row in &r.results {
            writeln!(
                out,
                "{:<10} {:>7} {:>14.3} {:>10.3} {:>10.3}",
                row.imp, row.threads, row.us_per_connection, row.min, row.max
            )?;
        }
        for (name, ratio) in &r.ratios {
            writeln!(out, "{name}: {ratio:.3}")?;
        }
        writeln!(out, "livelocked exchanges: {}", r.livelocked_exchanges)?;
        Ok(())
    })
}
