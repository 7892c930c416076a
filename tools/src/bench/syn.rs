//! `smrnet bench syn`: SYN-ACKs per second through one `Stack` whose SYN
//! cache is full, in memory, so every SYN is answered with a cookie — the
//! path a spoofed flood takes once it has filled the cache.
//!
//! One Stack per thread count, its listener's SYN cache filled up front by
//! SYNs from a separate set of sources, and per thread a ring of pre-built
//! spoofed SYN frames (random sources in 198.19.128.0/17, random ports and
//! ISNs, random options: MSS or none, window scale or none, SACK-permitted
//! or not, timestamps or not). Every thread drives its own worker handle: a
//! batch of frames through `Worker::handle` (whose stateless reply lands in
//! the caller's buffer), then `poll_transmit` until `None`, as the daemon's
//! worker does. Every SYN must come back as exactly one SYN-ACK, or the run
//! is an error.
//!
//! `ns_per_syn` is CPU time per SYN, from each thread's own CPU clock (so
//! time the scheduler gave other processes on a shared machine does not
//! count), `synacks_per_s` its inverse (SYN-ACKs per second of one busy
//! thread), `wall_ns_per_syn` the wall-clock equivalent (wall time × threads
//! ÷ SYNs, preemption included), and `cookie_ns` the CPU cost of
//! `SynCookies::generate` alone over the same kind of tuples, so the rest of
//! the path is `ns_per_syn - cookie_ns`.
//!
//! Nothing leaves the process: the frames are bytes in memory, the Stack has
//! no device.

use super::churn::thread_cpu_ns;
use super::harness::Summary;
use super::report::{self, Machine, round};
use netstack::{
    Instant as NetInstant, SecretKey, SeqNum, Stack, StackConfig, SynCookies, TcpFlags, TcpHeader,
    TcpOptions, Timestamps, emit_tcp,
};
use serde::Serialize;
use smr::rng::SplitMix64;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// The listener every SYN is aimed at (RFC 2544's benchmarking range).
const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)), 80);

/// Distinct SYN frames per thread, replayed in a ring: enough that the
/// tuples do not all sit in cache lines the Stack already touched.
const FRAMES: usize = 1 << 15;

/// Frames handed to a worker before it drains its output.
const BATCH: usize = 64;

/// Cookie generations timed for `cookie_ns`.
const COOKIE_ITERS: usize = 1 << 20;

/// SYN-ACKs per second through a Stack with a full SYN cache (every SYN a
/// cookie), at each thread count, and the cookie's own cost.
#[derive(Debug, clap::Args)]
pub struct SynBenchArgs {
    // With --json: `{"bench":"syn","machine":{..},"runs":K,"millis_per_run":MS,
    // "results":[{"impl":"smrnet","threads":N,"synacks_per_s":..,
    // "ns_per_syn":..,"cookie_ns":..,"min":..,"max":..,"wall_ns_per_syn":..}]}`
    // (ns figures are CPU time per SYN; see the module docs).
    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,

    /// Worker threads, comma-separated (each drives one worker handle of one
    /// shared Stack with its own frames).
    #[arg(long, value_name = "N,M,...", value_delimiter = ',', default_value = "1,2",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    threads: Vec<usize>,

    /// Timed runs of every configuration; the median run is reported.
    #[arg(long, value_name = "K", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,

    /// Length of one timed run, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    millis_per_run: u64,
}

/// A spoofed source in 198.19.128.0/17 with a port of 1024 or above.
fn spoofed_source(rng: &mut SplitMix64) -> SocketAddr {
    let r = rng.next_u64();
    let host = (r as u32) & 0x7fff;
    let addr = Ipv4Addr::new(198, 19, 128 | (host >> 8) as u8, host as u8);
    let port = 1024 + ((r >> 32) as u16 % (65535 - 1024));
    SocketAddr::new(IpAddr::V4(addr), port)
}

/// `count` SYN frames from random sources with random options.
fn syn_frames(seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|_| {
            let src = spoofed_source(&mut rng);
            let r = rng.next_u64();
            let options = TcpOptions {
                mss: (r & 1 == 0).then_some(536 + (r >> 8) as u16 % 1000),
                window_scale: (r & 2 == 0).then_some((r >> 20) as u8 % 15),
                sack_permitted: r & 4 == 0,
                timestamps: (r & 8 == 0).then_some(Timestamps {
                    value: (r >> 32) as u32,
                    echo_reply: 0,
                }),
                ..TcpOptions::default()
            };
            let header = TcpHeader {
                src_port: src.port(),
                dst_port: SERVER.port(),
                seq: SeqNum(rng.next_u64() as u32),
                ack: SeqNum(0),
                flags: TcpFlags::SYN,
                window: 65535,
                urgent: 0,
                options,
            };
            let mut buf = vec![0u8; 128];
            let n = emit_tcp(src.ip(), SERVER.ip(), 64, &header, &[], &mut buf)
                .expect("a SYN with options fits 128 octets");
            buf.truncate(n);
            buf
        })
        .collect()
}

/// One thread count: a Stack with a full SYN cache and each thread's frames.
struct Config {
    threads: usize,
    stack: Stack,
    frames: Vec<Vec<Vec<u8>>>,
    epoch: Instant,
}

impl Config {
    fn new(threads: usize) -> io::Result<Config> {
        let mut cfg = StackConfig::new(vec![SERVER.ip()]);
        cfg.workers = threads;
        cfg.insecure_deterministic_seed = Some(0x5eed);
        // Room for every SYN-ACK of a batch in the control queue.
        cfg.control_queue = cfg.control_queue.max(4 * BATCH);
        let stack = Stack::new(cfg);
        let _listener = stack
            .listen(SERVER)
            .map_err(|e| io::Error::other(format!("bench syn: listen: {e}")))?;
        let epoch = Instant::now();
        let mut c = Config {
            threads,
            stack,
            frames: (0..threads)
                .map(|t| syn_frames(0x1000 + t as u64, FRAMES))
                .collect(),
            epoch,
        };
        c.fill()?;
        Ok(c)
    }

    fn now(&self) -> NetInstant {
        NetInstant::from_nanos(self.epoch.elapsed().as_nanos() as u64)
    }

    /// Sends SYNs from other sources until the cache takes no more.
    fn fill(&mut self) -> io::Result<()> {
        let limit = {
            let s = self.stack.config().syncache;
            s.max_entries.min(s.max_per_listener)
        };
        let fill = syn_frames(0xf111, 4 * limit);
        let w = self.stack.worker(0);
        let mut frame = [0u8; 2048];
        for chunk in fill.chunks(BATCH) {
            let now = self.now();
            for f in chunk {
                w.handle_frame(now, f);
            }
            while w.poll_transmit(now, &mut frame).is_some() {}
        }
        let before = self.stack.mib().syncookies_sent;
        let probe = syn_frames(0xf00d, BATCH);
        let now = self.now();
        for f in &probe {
            w.handle_frame(now, f);
        }
        while w.poll_transmit(now, &mut frame).is_some() {}
        if self.stack.mib().syncookies_sent - before != BATCH as u64 {
            return Err(io::Error::other(format!(
                "bench syn: the SYN cache did not fill ({} entries, limit {limit})",
                self.stack.syncache_len()
            )));
        }
        Ok(())
    }

    /// One timed run: returns (CPU ns per SYN, wall ns × threads per SYN).
    fn run(&self, budget: Duration) -> io::Result<(f64, f64)> {
        let start = Instant::now();
        let counts: Vec<io::Result<(u64, u64)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..self.threads)
                .map(|t| s.spawn(move || self.drive(t, budget)))
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
        let (mut total, mut cpu) = (0, 0);
        for c in counts {
            let (n, ns) = c?;
            total += n;
            cpu += ns;
        }
        let total = total.max(1) as f64;
        Ok((
            cpu as f64 / total,
            elapsed.as_nanos() as f64 * self.threads as f64 / total,
        ))
    }

    /// Worker `t` for `budget`: returns the SYN-ACKs it sent, checked
    /// against the SYNs it fed, and the CPU time it took.
    fn drive(&self, t: usize, budget: Duration) -> io::Result<(u64, u64)> {
        let w = self.stack.worker(t);
        let frames = &self.frames[t];
        let mut out = [0u8; 2048];
        let start = Instant::now();
        let cpu_start = thread_cpu_ns();
        let (mut fed, mut synacks, mut at) = (0u64, 0u64, 0usize);
        while start.elapsed() < budget {
            let now = self.now();
            for _ in 0..BATCH {
                // The stateless SYN-ACK comes back in `out` at once, as the
                // daemon sends it; anything queued is drained below.
                if w.handle(now, &frames[at], &mut out).is_some() {
                    synacks += 1;
                }
                at = (at + 1) % frames.len();
            }
            fed += BATCH as u64;
            while w.poll_transmit(now, &mut out).is_some() {
                synacks += 1;
            }
        }
        let cpu = thread_cpu_ns().saturating_sub(cpu_start);
        if synacks != fed {
            return Err(io::Error::other(format!(
                "bench syn: worker {t} fed {fed} SYNs and sent {synacks} segments"
            )));
        }
        Ok((synacks, cpu))
    }
}

/// CPU nanoseconds per `SynCookies::generate`, over spoofed tuples.
fn cookie_ns() -> f64 {
    let cookies = SynCookies::new(SecretKey([7; 16]));
    let mut rng = SplitMix64::new(0xc00c);
    let sources: Vec<SocketAddr> = (0..FRAMES).map(|_| spoofed_source(&mut rng)).collect();
    let now = NetInstant::from_nanos(1);
    let start = thread_cpu_ns();
    let mut acc = 0u32;
    for i in 0..COOKIE_ITERS {
        let src = sources[i % sources.len()];
        acc ^= cookies.generate(SERVER, src, 1460, now).0;
    }
    let elapsed = thread_cpu_ns().saturating_sub(start);
    std::hint::black_box(acc);
    elapsed as f64 / COOKIE_ITERS as f64
}

#[derive(Serialize)]
struct Row {
    #[serde(rename = "impl")]
    imp: &'static str,
    threads: usize,
    synacks_per_s: f64,
    ns_per_syn: f64,
    cookie_ns: f64,
    min: f64,
    max: f64,
    wall_ns_per_syn: f64,
}

#[derive(Serialize)]
struct Report {
    bench: &'static str,
    machine: Machine,
    runs: u32,
    millis_per_run: u64,
    batch: usize,
    results: Vec<Row>,
}

pub(crate) fn run(args: &SynBenchArgs) -> io::Result<()> {
    let mut threads = args.threads.clone();
    threads.sort_unstable();
    threads.dedup();
    let configs = threads
        .iter()
        .map(|&t| Config::new(t))
        .collect::<io::Result<Vec<_>>>()?;
    let budget = Duration::from_millis(args.millis_per_run);
    let mut samples = vec![Vec::new(); configs.len()];
    let mut walls = vec![Vec::new(); configs.len()];
    let mut cookie = Vec::new();
    // Interleaved: run k of every configuration before run k+1 of any.
    for _ in 0..args.runs {
        for ((c, s), w) in configs.iter().zip(&mut samples).zip(&mut walls) {
            let (cpu, wall) = c.run(budget)?;
            s.push(cpu);
            w.push(wall);
        }
        cookie.push(cookie_ns());
    }
    let cookie = Summary::of(&cookie).median;
    let results = configs
        .iter()
        .zip(samples.iter().zip(&walls))
        .map(|(c, (s, w))| {
            let sum = Summary::of(s);
            Row {
                imp: "smrnet",
                threads: c.threads,
                synacks_per_s: round(1e9 / sum.median),
                ns_per_syn: round(sum.median),
                cookie_ns: round(cookie),
                min: round(sum.min),
                max: round(sum.max),
                wall_ns_per_syn: round(Summary::of(w).median),
            }
        })
        .collect();
    let report = Report {
        bench: "syn",
        machine: Machine::this(),
        runs: args.runs,
        millis_per_run: args.millis_per_run,
        batch: BATCH,
        results,
    };
    report::emit(args.json, &report, table)
}

fn table(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    writeln!(
        out,
        "spoofed SYNs (random options) into one Stack with a full SYN cache, in memory, batches of {}; CPU time per SYN, median of {} runs x {} ms ({} cpus)",
        r.batch,
        r.runs,
        r.millis_per_run,
        r.machine.cpus()
    )?;
    writeln!(
        out,
        "{:<8} {:>7} {:>16} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "impl", "threads", "SYN-ACKs/s/thr", "ns/SYN", "cookie ns", "min", "max", "wall ns"
    )?;
    for row in &r.results {
        writeln!(
            out,
            "{:<8} {:>7} {:>16.0} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            row.imp,
            row.threads,
            row.synacks_per_s,
            row.ns_per_syn,
            row.cookie_ns,
            row.min,
            row.max,
            row.wall_ns_per_syn
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short run answers every SYN with one cookie SYN-ACK and reports a
    /// positive rate (the run itself errors when a SYN goes unanswered).
    #[test]
    fn a_short_run_answers_every_syn_with_a_cookie() {
        let c = Config::new(2).expect("the cache fills");
        let before = c.stack.mib();
        let (ns, wall) = c
            .run(Duration::from_millis(20))
            .expect("every SYN answered");
        let after = c.stack.mib();
        assert!(ns > 0.0 && ns.is_finite(), "{ns}");
        assert!(wall > 0.0 && wall.is_finite(), "{wall}");
        assert!(after.syncookies_sent > before.syncookies_sent);
        assert_eq!(
            after.syncache_added, before.syncache_added,
            "the cache was full"
        );
    }

    #[test]
    fn spoofed_sources_stay_in_the_flood_range() {
        let mut rng = SplitMix64::new(1);
        for _ in 0..10_000 {
            let s = spoofed_source(&mut rng);
            let IpAddr::V4(a) = s.ip() else {
                panic!("v4 only")
            };
            assert_eq!(a.octets()[..2], [198, 19]);
            assert!(a.octets()[2] >= 128);
            assert!(s.port() >= 1024);
        }
    }
}
