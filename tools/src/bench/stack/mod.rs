//! `smrnet bench stack`: complete TCP connections per second through a whole
//! stack in memory (no device), with many idle connections open beside them.
//!
//! A scripted client ([`client`]) opens `open` idle connections and keeps
//! them open, then runs complete connections (SYN, request and FIN, echo and
//! FIN, last ACK) with a window of [`WINDOW`] in flight for the length of a
//! run. Frames go to the server in batches, as a worker reading a TUN queue
//! would receive them, and the server's output comes back the same way. The
//! figure is completed connections per second of wall time, client work
//! included (the same client for every server); `ns_per_conn` is its
//! inverse, all threads together. Servers: smrnet's `Stack` (one shared
//! Stack, one worker handle and one client per thread) and smoltcp's
//! `Interface` with one socket per connection (single-threaded).

mod client;
mod smoltcp_server;
mod smrnet_server;

use super::harness::Summary;
use super::report::{self, Machine, round};
use client::Client;
use serde::Serialize;
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// Connections in flight at once during the churn.
const WINDOW: usize = 64;

/// Frames handed to the server at once, as a worker reads a TUN queue in
/// batches and drains its output after each.
const BATCH: usize = 256;

/// Give up on a run (and report it) when no connection completes for this long.
const STALL: Duration = Duration::from_secs(2);

/// Complete connections per second through a stack in memory, with
/// 100, 1,000 and 10,000 idle connections open, for smrnet's `Stack` and for
/// smoltcp's `Interface` (one socket per connection). Ratios are smrnet over
/// smoltcp at the same number of open connections.
#[derive(Debug, clap::Args)]
pub struct StackArgs {
    // With --json: `{"bench":"stack","machine":{..},"runs":K,"millis_per_run":MS,
    // "window":64,"results":[{"impl":..,"threads":N,"open_conns":N,
    // "conns_per_s":..,"ns_per_conn":..,"min":..,"max":..}],
    // "ratios":{"smrnet@<threads>t/smoltcp@<open>":..}}`.
    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,

    /// Worker threads for smrnet, comma-separated (each drives one worker
    /// handle of one shared Stack with its own client; smoltcp's Interface is
    /// single-threaded and runs at 1 only).
    #[arg(long, value_name = "N,M,...", value_delimiter = ',', default_value = "1,2",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    threads: Vec<usize>,

    /// Idle connections held open during the churn, comma-separated.
    #[arg(long, value_name = "N,M,...", value_delimiter = ',',
          default_value = "100,1000,10000",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=100_000))]
    open: Vec<usize>,

    /// smrnet connection-table backends, comma-separated: smr (the SMR
    /// table) and the refcounted-slot baselines dashmap, rwlock, papaya;
    /// rows other than smr are named smrnet-<backend>.
    #[arg(
        long,
        value_name = "B,C,...",
        value_delimiter = ',',
        default_value = "smr"
    )]
    pcb_backend: Vec<pcb::Backend>,

    /// Timed runs of every configuration; the median run is reported.
    #[arg(long, value_name = "K", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,

    /// Length of one timed run, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    millis_per_run: u64,

    /// Leave out the smoltcp rows (and so the ratios): for profiling
    /// smrnet's own rows with `perf`, where the baseline would take most of
    /// the samples.
    #[arg(long)]
    no_baseline: bool,
}

/// A server under test: frames in, frames out, at time `now`.
pub(crate) trait Server: Send {
    /// Deliver `input` (drained) and append everything the server sends to
    /// `output`.
    fn exchange(&mut self, now: Duration, input: &mut Vec<Vec<u8>>, output: &mut Vec<Vec<u8>>);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    Smrnet(pcb::Backend),
    Smoltcp,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Smrnet(pcb::Backend::Smr) => "smrnet",
            Impl::Smrnet(pcb::Backend::DashMap) => "smrnet-dashmap",
            Impl::Smrnet(pcb::Backend::RwLock) => "smrnet-rwlock",
            Impl::Smrnet(pcb::Backend::Papaya) => "smrnet-papaya",
            Impl::Smoltcp => "smoltcp",
        }
    }

    /// One server per thread; `open` idle connections in all.
    fn servers(self, threads: usize, open: usize) -> Vec<Box<dyn Server>> {
        match self {
            Impl::Smrnet(backend) => {
                { smrnet_server::SmrnetServer::shared(threads, open, WINDOW, backend) }
                    .into_iter()
                    .map(|s| Box::new(s) as Box<dyn Server>)
                    .collect()
            }
            Impl::Smoltcp => vec![Box::new(smoltcp_server::SmoltcpServer::new(open + WINDOW))],
        }
    }
}

/// One configuration: a server (shared by its threads) and a client per thread.
struct Config {
    imp: Impl,
    threads: usize,
    open: usize,
    benches: Vec<Bench>,
}

impl Config {
    fn new(imp: Impl, threads: usize, open: usize, first_source: &mut u32) -> io::Result<Config> {
        let servers = imp.servers(threads, open);
        let mut benches = Vec::with_capacity(threads);
        for (i, server) in servers.into_iter().enumerate() {
            // The idle connections are split between the threads.
            let share = open / threads + usize::from(i < open % threads);
            benches.push(Bench::new(imp, share, server, *first_source)?);
            *first_source += 1;
        }
        Ok(Config {
            imp,
            threads,
            open,
            benches,
        })
    }

    /// One timed run: every thread churns for `budget` at once; returns
    /// nanoseconds of wall time per completed connection, all threads
    /// together.
    fn run(&mut self, budget: Duration) -> io::Result<f64> {
        let start = Instant::now();
        let done: Vec<io::Result<u64>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .benches
                .iter_mut()
                .map(|b| s.spawn(move || b.run(budget)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(io::Error::other("bench thread panicked")))
                })
                .collect()
        });
        let elapsed = start.elapsed();
        let mut total = 0;
        for d in done {
            total += d?;
        }
        Ok(elapsed.as_nanos() as f64 / total as f64)
    }
}

/// One server with its idle connections established and its client.
struct Bench {
    imp: Impl,
    open: usize,
    server: Box<dyn Server>,
    client: Client,
    epoch: Instant,
    to_server: Vec<Vec<u8>>,
    to_client: Vec<Vec<u8>>,
}

impl Bench {
    fn new(imp: Impl, open: usize, server: Box<dyn Server>, index: u32) -> io::Result<Bench> {
        let mut b = Bench {
            imp,
            open,
            server,
            // Disjoint sources per configuration: 2^24 each.
            client: Client::new(index << 24, 1 << 24),
            epoch: Instant::now(),
            to_server: Vec::new(),
            to_client: Vec::new(),
        };
        for _ in 0..open {
            b.client.connect(true, &mut b.to_server);
        }
        let started = Instant::now();
        while b.client.idle < open as u64 {
            b.step();
            if started.elapsed() > STALL * 5 {
                return Err(b.stalled("establishing idle connections"));
            }
        }
        // Deliver the last handshake ACKs before any timing starts.
        b.step();
        Ok(b)
    }

    /// One round trip: everything queued for the server, then its replies
    /// into the client.
    fn step(&mut self) {
        let now = self.epoch.elapsed();
        let n = self.to_server.len().min(BATCH);
        let mut batch: Vec<Vec<u8>> = self.to_server.drain(..n).collect();
        self.server.exchange(now, &mut batch, &mut self.to_client);
        for frame in self.to_client.drain(..) {
            self.client.on_frame(&frame, &mut self.to_server);
        }
    }

    fn stalled(&self, what: &str) -> io::Error {
        io::Error::other(format!(
            "bench stack: {} with {} open connections stalled while {what}: {} idle, {} completed, {} reset, {} unexpected frames",
            self.imp.name(),
            self.open,
            self.client.idle,
            self.client.completed,
            self.client.resets,
            self.client.unexpected
        ))
    }

    /// Churn for `budget`; returns the connections completed.
    fn run(&mut self, budget: Duration) -> io::Result<u64> {
        let start = Instant::now();
        let first = self.client.completed;
        let mut last_progress = (first, start);
        // Run for the budget, and on until the first completion: at 10,000
        // sockets one smoltcp round trip can outlast a short budget.
        while start.elapsed() < budget || self.client.completed == first {
            while self.client.open() < self.open + WINDOW {
                if !self.client.connect(false, &mut self.to_server) {
                    return Err(io::Error::other(
                        "bench stack: client ran out of source addresses",
                    ));
                }
            }
            self.step();
            if self.client.completed != last_progress.0 {
                last_progress = (self.client.completed, Instant::now());
            } else if last_progress.1.elapsed() > STALL {
                return Err(self.stalled("churning"));
            }
        }
        let done = self.client.completed - first;
        if done == 0 {
            return Err(self.stalled("churning"));
        }
        Ok(done)
    }
}

#[derive(Serialize)]
struct Row {
    #[serde(rename = "impl")]
    imp: &'static str,
    threads: usize,
    open_conns: usize,
    conns_per_s: f64,
    ns_per_conn: f64,
    min: f64,
    max: f64,
}

#[derive(Serialize)]
struct Report {
    bench: &'static str,
    machine: Machine,
    runs: u32,
    millis_per_run: u64,
    window: usize,
    results: Vec<Row>,
    ratios: std::collections::BTreeMap<String, f64>,
}

pub(crate) fn run(args: &StackArgs) -> io::Result<()> {
    let mut opens = args.open.clone();
    opens.sort_unstable();
    opens.dedup();
    let mut threads = args.threads.clone();
    threads.sort_unstable();
    threads.dedup();
    let mut configs = Vec::new();
    let mut source = 0;
    for &open in &opens {
        for &t in &threads {
            let mut backends = args.pcb_backend.clone();
            backends.dedup();
            for backend in backends {
                configs.push(Config::new(Impl::Smrnet(backend), t, open, &mut source)?);
            }
        }
        if !args.no_baseline {
            configs.push(Config::new(Impl::Smoltcp, 1, open, &mut source)?);
        }
    }
    let budget = Duration::from_millis(args.millis_per_run);
    let mut samples = vec![Vec::new(); configs.len()];
    // Interleaved: run k of every configuration before run k+1 of any.
    for _ in 0..args.runs {
        for (c, s) in configs.iter_mut().zip(&mut samples) {
            s.push(c.run(budget)?);
        }
    }
    let results: Vec<Row> = configs
        .iter()
        .zip(&samples)
        .map(|(c, s)| {
            let sum = Summary::of(s);
            Row {
                imp: c.imp.name(),
                threads: c.threads,
                open_conns: c.open,
                conns_per_s: round(1e9 / sum.median),
                ns_per_conn: round(sum.median),
                min: round(sum.min),
                max: round(sum.max),
            }
        })
        .collect();
    let ratios = ratios(&results);
    let report = Report {
        bench: "stack",
        machine: Machine::this(),
        runs: args.runs,
        millis_per_run: args.millis_per_run,
        window: WINDOW,
        results,
        ratios,
    };
    report::emit(args.json, &report, table)
}

/// smrnet's conns/s over smoltcp's at each number of open connections.
fn ratios(rows: &[Row]) -> std::collections::BTreeMap<String, f64> {
    rows.iter()
        .filter(|r| r.imp == "smrnet")
        .filter_map(|r| {
            let base = rows
                .iter()
                .find(|b| b.imp == "smoltcp" && b.open_conns == r.open_conns)?;
            Some((
                format!("smrnet@{}t/smoltcp@{}", r.threads, r.open_conns),
                round(r.conns_per_s / base.conns_per_s),
            ))
        })
        .collect()
}

fn table(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    writeln!(
        out,
        "complete connections (SYN, {}-octet request + FIN, echo + FIN, ACK) through a stack in memory, {} in flight; median of {} runs x {} ms ({} cpus)",
        client::REQUEST_LEN,
        r.window,
        r.runs,
        r.millis_per_run,
        r.machine.cpus()
    )?;
    writeln!(
        out,
        "{:<14} {:>7} {:>10} {:>12} {:>11} {:>11} {:>11}",
        "impl", "threads", "open", "conns/s", "ns/conn", "min", "max"
    )?;
    for row in &r.results {
        writeln!(
            out,
            "{:<14} {:>7} {:>10} {:>12.0} {:>11.0} {:>11.0} {:>11.0}",
            row.imp,
            row.threads,
            row.open_conns,
            row.conns_per_s,
            row.ns_per_conn,
            row.min,
            row.max
        )?;
    }
    for (k, v) in &r.ratios {
        writeln!(out, "{k}: {v:.2}")?;
    }
    Ok(())
}
