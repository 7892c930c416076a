//! Hold many connections open: set up `connections` at bounded
//! concurrency across the source addresses, keep them for a while (with an
//! optional one-byte echo on each, every interval), then close them all.
//!
//! The library part is [`Holder`]: [`Holder::open`] builds its own runtime
//! in the calling thread's network namespace and sets up the connections;
//! [`Holder::hold`] keeps them; [`Holder::close`] closes them. Between the
//! steps the caller measures the daemon (memory, table size). The command
//! ([`run_cli`]) does that and then waits, bounded, for the daemon's table
//! and pending pool to drain.
//!
//! Bounds: setup stops claiming new connections after `setup_timeout` (each
//! connect is bounded by `connect_timeout`); a keepalive exchange is bounded
//! by `io_timeout`; the hold ends after `duration`. The process's open-file
//! limit is raised to fit `connections` (root may raise the hard limit up to
//! fs.nr_open); when it cannot be, the command says so and stops before
//! opening anything.

use super::churn::{ErrorCounts, Failure, lock};
use super::cli::{HoldArgs, counter, stop_on_signal};
use super::latency::{Latencies, LatencySummary};
use super::netns;
use super::safety::{self, Cidr};
use super::sockopt::set_bind_address_no_port;
use crate::lab::{self, DAEMON_V4, ECHO_PORT};
use serde::Serialize;
use smrnetd::metrics::names as metric;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout};

pub(crate) mod close;
mod limits;
pub(super) mod procs;

/// Descriptors kept free for everything else the process opens.
const SPARE_FDS: u64 = 1024;

#[derive(Clone, Debug)]
pub struct HoldOpts {
    pub target: SocketAddr,
    pub connections: usize,
    /// Connects in flight at once during setup (also keepalive parallelism).
    pub setup_concurrency: usize,
    /// Setup stops starting connects after this long.
    pub setup_timeout: Duration,
    pub duration: Duration,
    /// One byte echoed on every connection this often, if set.
    pub keepalive_interval: Option<Duration>,
    pub source_addrs: Vec<IpAddr>,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    pub progress: bool,
    pub threads: usize,
    pub allowed_networks: Vec<Cidr>,
    /// How long the close may pace before it closes the rest at once.
    pub close_timeout: Duration,
    /// Connections closed between two looks at the orphan count.
    pub close_batch: usize,
    /// The hold-wide index of this process's first connection. A
    /// multi-process hold gives each child its own range, so the (source
    /// address, local port) pairs the children choose never collide.
    pub first_index: u64,
}

impl HoldOpts {
    /// 10,000 connections, 256 connects at once, 10 s hold, no keepalive.
    pub fn new(target: SocketAddr) -> HoldOpts {
        HoldOpts {
            target,
            connections: 10_000,
            setup_concurrency: 256,
            setup_timeout: Duration::from_secs(300),
            duration: Duration::from_secs(10),
            keepalive_interval: None,
            source_addrs: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(5),
            progress: false,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            allowed_networks: Vec::new(),
            close_timeout: close::bound(10_000),
            close_batch: close::CLOSE_BATCH,
            first_index: 0,
        }
    }

    pub fn validate(&self) -> io::Result<()> {
        let bad = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        safety::check_target(self.target.ip(), &self.allowed_networks)?;
        for src in &self.source_addrs {
            safety::check(*src, &self.allowed_networks, "source address")?;
            if src.is_ipv4() != self.target.is_ipv4() {
                return bad(format!(
                    "source address {src} is not of the target {}'s address family",
                    self.target
                ));
            }
        }
        if self.connections == 0 || self.connections > 10_000_000 {
            return bad(format!(
                "connections must be 1..=10000000, not {}",
                self.connections
            ));
        }
        if self.setup_concurrency == 0 || self.setup_concurrency > 65_536 {
            return bad(format!(
                "setup concurrency must be 1..=65536, not {}",
                self.setup_concurrency
            ));
        }
        if self.duration > super::churn::MAX_DURATION {
            return bad(format!(
                "duration must be at most 24 h, not {:?}",
                self.duration
            ));
        }
        if let Some(k) = self.keepalive_interval
            && k < Duration::from_millis(10)
        {
            return bad(format!(
                "keepalive interval must be at least 10ms, not {k:?}"
            ));
        }
        for (name, d) in [
            ("connect timeout", self.connect_timeout),
            ("I/O timeout", self.io_timeout),
            ("setup timeout", self.setup_timeout),
        ] {
            if d.is_zero() || d > Duration::from_secs(3600) {
                return bad(format!(
                    "{name} must be more than 0 and at most 1 h, not {d:?}"
                ));
            }
        }
        if self.threads == 0 || self.threads > 1024 {
            return bad(format!("threads must be 1..=1024, not {}", self.threads));
        }
        Ok(())
    }
}

/// The client's side of a hold.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct HoldStats {
    pub requested: usize,
    /// Connections established during setup.
    pub established: u64,
    /// Setup failures by cause (`abandoned`: not started before the setup
    /// timeout or a stop).
    pub setup_errors: ErrorCounts,
    pub setup_secs: f64,
    /// `established / setup_secs`.
    pub setup_per_sec: f64,
    pub connect_latency: LatencySummary,
    /// The histogram behind `connect_latency`, so holds in several
    /// processes merge distributions rather than percentiles.
    #[serde(skip)]
    pub connect_histogram: Latencies,
    pub held_secs: f64,
    pub keepalive_rounds: u64,
    /// Connections lost to a failed keepalive (and closed).
    pub keepalive_failures: u64,
    /// Connections still open when the hold ended.
    pub open_at_end: u64,
    /// The paced close (`hold/close.rs`): how long it took, how often it
    /// waited for the kernel's orphan count to fall, and how many
    /// connections it closed unpaced after its bound.
    #[serde(default)]
    pub close_secs: f64,
    #[serde(default)]
    pub close_waits: u64,
    #[serde(default)]
    pub close_unpaced: u64,
    /// Connections whose chosen local port was taken (by another socket,
    /// or a TIME-WAIT of the same four-tuple) and that let the kernel
    /// choose one instead.
    #[serde(default)]
    pub port_fallbacks: u64,
}

/// Open connections and the runtime that owns them.
pub struct Holder {
    opts: HoldOpts,
    rt: tokio::runtime::Runtime,
    /// One group per setup worker; each is served by one task.
    groups: Vec<Vec<TcpStream>>,
    stats: HoldStats,
}

impl fmt::Debug for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Holder")
            .field("open", &self.open_count())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Holder {
    /// Set up the connections (in the calling thread's namespace).
    pub fn open(opts: &HoldOpts, stop: &AtomicBool) -> io::Result<Holder> {
        opts.validate()?;
        super::source::check_sources_local(&opts.source_addrs)?;
        // Read here, in the namespace the connections are made from.
        let ports = if opts.source_addrs.is_empty() {
            None
        } else {
            Some(limits::local_port_range()?)
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(opts.threads)
            .thread_name("smrnet-hold")
            .enable_all()
            .build()?;
        let (groups, stats) = rt.block_on(setup(opts, ports, stop));
        Ok(Holder {
            opts: opts.clone(),
            rt,
            groups,
            stats,
        })
    }

    /// Connections open now.
    pub fn open_count(&self) -> u64 {
        self.groups.iter().map(|g| g.len() as u64).sum()
    }

    pub fn stats(&self) -> &HoldStats {
        &self.stats
    }

    /// Keep the connections for `opts.duration` (or until `stop`), echoing
    /// one byte on each every keepalive interval.
    pub fn hold(&mut self, stop: &AtomicBool) {
        let start = Instant::now();
        let end = start + self.opts.duration;
        let opts = self.opts.clone();
        let groups = std::mem::take(&mut self.groups);
        let (groups, rounds, failures) = self.rt.block_on(keep(opts, groups, end, stop));
        self.groups = groups;
        self.stats.keepalive_rounds += rounds;
        self.stats.keepalive_failures += failures;
        self.stats.held_secs = start.elapsed().as_secs_f64();
        self.stats.open_at_end = self.open_count();
    }

    /// Close every connection (FIN), paced so that the kernel never has
    /// too many unacknowledged closes to abort (`hold/close.rs`), and
    /// return the client's statistics.
    pub fn close(self) -> HoldStats {
        let Holder {
            opts,
            rt,
            groups,
            mut stats,
        } = self;
        // Dropping the streams inside the runtime closes them.
        let closed = rt.block_on(close::paced(
            groups,
            opts.close_batch,
            close::orphan_limit(),
            opts.close_timeout,
            close::orphans,
        ));
        drop(rt);
        stats.close_secs = closed.secs;
        stats.close_waits = closed.waits;
        stats.close_unpaced = closed.unpaced;
        stats
    }
}

/// The local address of the hold's connection `index` (hold-wide): the
/// source addresses round robin, and on each address the ports of `ports`
/// in order, so no two connections of the hold ask for the same pair.
/// `None` for the port once the range is used up (the kernel chooses).
///
/// The hold picks ports itself because the kernel's choice slows down by
/// orders of magnitude once half of a source address's ports are in use:
/// `connect()` tries the ports of one parity first and, past half, scans
/// that whole half on every call before it tries the other (a
/// million-connection hold over 17 addresses fell from about 10,000 to
/// under 1,000 connects a second at about 505,000).
fn local_addr(
    index: u64,
    sources: &[IpAddr],
    ports: Option<(u32, u32)>,
) -> Option<(IpAddr, Option<u16>)> {
    let n = sources.len() as u64;
    let addr = *sources.get(usize::try_from(index % n.max(1)).ok()?)?;
    let port = ports.and_then(|(lo, hi)| {
        let p = u64::from(lo) + index / n;
        (p <= u64::from(hi))
            .then(|| u16::try_from(p).ok())
            .flatten()
    });
    Some((addr, port))
}

async fn setup(
    opts: &HoldOpts,
    ports: Option<(u32, u32)>,
    stop: &AtomicBool,
) -> (Vec<Vec<TcpStream>>, HoldStats) {
    let start = Instant::now();
    let setup_end = start + opts.setup_timeout;
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let fallbacks = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(ErrorCounts::default()));
    let lat = Arc::new(Mutex::new(Latencies::new()));
    let workers = opts.setup_concurrency.min(opts.connections);
    let opts_arc = Arc::new(opts.clone());
    let quit = Arc::new(AtomicBool::new(false));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (o, next, done, fallbacks, errors, lat, quit) = (
            opts_arc.clone(),
            next.clone(),
            done.clone(),
            fallbacks.clone(),
            errors.clone(),
            lat.clone(),
            quit.clone(),
        );
        set.spawn(async move {
            let mut mine = Vec::new();
            loop {
                // Relaxed: a work counter and a flag, statistics only.
                if quit.load(Ordering::Relaxed) || Instant::now() >= setup_end {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= o.connections as u64 {
                    break;
                }
                let local = local_addr(o.first_index + i, &o.source_addrs, ports);
                let t0 = Instant::now();
                match connect(&o, local, &fallbacks).await {
                    Ok(s) => {
                        lock(&lat).record(t0.elapsed());
                        mine.push(s);
                    }
                    Err(f) => f.count(&mut lock(&errors)),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            mine
        });
    }
    let bar = opts.progress.then(|| {
        let bar = indicatif::ProgressBar::new(opts.connections as u64);
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        if let Ok(s) = indicatif::ProgressStyle::with_template(
            "setup {elapsed:>4} [{bar:30}] {pos}/{len} {per_sec}",
        ) {
            bar.set_style(s.progress_chars("=> "));
        }
        bar
    });
    let mut groups = Vec::with_capacity(workers);
    loop {
        tokio::select! {
            joined = set.join_next() => match joined {
                Some(Ok(g)) => groups.push(g),
                Some(Err(_)) => {}
                None => break,
            },
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if stop.load(Ordering::Relaxed) {
                    quit.store(true, Ordering::Relaxed);
                }
                if let Some(bar) = &bar {
                    bar.set_position(done.load(Ordering::Relaxed));
                }
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let setup_secs = start.elapsed().as_secs_f64().max(1e-9);
    let established: u64 = groups.iter().map(|g| g.len() as u64).sum();
    let mut setup_errors = *lock(&errors);
    setup_errors.abandoned = (opts.connections as u64).saturating_sub(done.load(Ordering::Relaxed));
    // One guard: a second `lock` in the same statement would deadlock.
    let connect_histogram = lock(&lat).clone();
    let stats = HoldStats {
        requested: opts.connections,
        established,
        setup_errors,
        setup_secs,
        setup_per_sec: established as f64 / setup_secs,
        connect_latency: connect_histogram.summary(),
        connect_histogram,
        open_at_end: established,
        port_fallbacks: fallbacks.load(Ordering::Relaxed),
        ..HoldStats::default()
    };
    (groups, stats)
}

/// Connect from `local` (address and, if chosen, port; else the kernel
/// chooses everything). A chosen port that is taken falls back, once, to the
/// kernel's choice of port on that address, counted in `fallbacks`.
async fn connect(
    o: &HoldOpts,
    local: Option<(IpAddr, Option<u16>)>,
    fallbacks: &AtomicU64,
) -> Result<TcpStream, Failure> {
    if let Some((src, Some(port))) = local {
        match try_connect(o, Some((src, Some(port)))).await {
            Err(Failure::NoLocalPort) => {
                // Relaxed: a statistic.
                fallbacks.fetch_add(1, Ordering::Relaxed);
                try_connect(o, Some((src, None))).await
            }
            r => r,
        }
    } else {
        try_connect(o, local).await
    }
}

async fn try_connect(
    o: &HoldOpts,
    local: Option<(IpAddr, Option<u16>)>,
) -> Result<TcpStream, Failure> {
    let other = |e: io::Error| Failure::of(&e);
    let sock = match o.target {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(other)?;
    match local {
        Some((src, Some(port))) => {
            // A port left in TIME-WAIT towards another peer may be bound
            // again; connect() still refuses a four-tuple in use.
            sock.set_reuseaddr(true).map_err(other)?;
            sock.bind(SocketAddr::new(src, port)).map_err(other)?;
        }
        Some((src, None)) => {
            set_bind_address_no_port(&sock).map_err(other)?;
            sock.bind(SocketAddr::new(src, 0)).map_err(other)?;
        }
        None => {}
    }
    timeout(o.connect_timeout, sock.connect(o.target))
        .await
        .map_err(|_| Failure::TimedOut)?
        .map_err(other)
}

/// Hold until `end` or `stop`; returns the groups, keepalive rounds and
/// connections lost.
async fn keep(
    opts: HoldOpts,
    mut groups: Vec<Vec<TcpStream>>,
    end: Instant,
    stop: &AtomicBool,
) -> (Vec<Vec<TcpStream>>, u64, u64) {
    let (mut rounds, mut lost) = (0u64, 0u64);
    let mut next_round = opts.keepalive_interval.map(|k| Instant::now() + k);
    loop {
        let now = Instant::now();
        if now >= end || stop.load(Ordering::Relaxed) {
            break;
        }
        match next_round {
            Some(at) if now >= at => {
                let mut set = tokio::task::JoinSet::new();
                for g in groups.drain(..) {
                    let io_timeout = opts.io_timeout;
                    set.spawn(async move { ping_group(g, io_timeout).await });
                }
                while let Some(r) = set.join_next().await {
                    if let Ok((g, l)) = r {
                        groups.push(g);
                        lost += l;
                    }
                }
                rounds += 1;
                next_round = opts.keepalive_interval.map(|k| at + k);
            }
            _ => {
                let wake = next_round.map_or(end, |at| at.min(end));
                tokio::time::sleep_until(wake.min(now + Duration::from_millis(100))).await;
            }
        }
    }
    (groups, rounds, lost)
}

/// One byte out and back on each connection; failed ones are dropped.
async fn ping_group(group: Vec<TcpStream>, io_timeout: Duration) -> (Vec<TcpStream>, u64) {
    let mut kept = Vec::with_capacity(group.len());
    let mut lost = 0;
    for (i, mut s) in group.into_iter().enumerate() {
        let byte = [b'a' + (i % 26) as u8];
        let exchange = async {
            s.write_all(&byte).await?;
            let mut back = [0u8; 1];
            s.read_exact(&mut back).await?;
            Ok::<bool, io::Error>(back == byte)
        };
        match timeout(io_timeout, exchange).await {
            Ok(Ok(true)) => kept.push(s),
            _ => lost += 1,
        }
    }
    (kept, lost)
}

/// `VmRSS` of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&status).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status has no VmRSS line"),
        )
    })
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Raise RLIMIT_NOFILE so `connections` sockets fit; returns the new soft
/// limit, or an error saying how many can be opened and why.
pub fn raise_nofile(connections: usize) -> io::Result<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let want = connections as u64 + SPARE_FDS;
    let cur = getrlimit(Resource::Nofile);
    let soft = cur.current.unwrap_or(u64::MAX);
    if soft >= want {
        return Ok(soft);
    }
    let hard = cur.maximum.unwrap_or(u64::MAX);
    let new_hard = hard.max(want);
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: Some(new_hard),
        },
    ) {
        Ok(()) => Ok(want),
        Err(e) => {
            let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            Err(io::Error::other(format!(
                "{connections} connections need {want} open files, but the limit is {soft} \
                 (hard {hard}) and raising it failed ({e}); at most {} connections can be \
                 opened. Run as root to raise the hard limit (up to fs.nr_open = {}), or ask \
                 for fewer connections",
                hard.min(soft.max(hard)).saturating_sub(SPARE_FDS),
                nr_open.map_or("?".to_string(), |n| n.to_string()),
            )))
        }
    }
}

/// The daemon's side of a hold, from /proc and its metrics.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HoldDaemon {
    pub pid: Option<u32>,
    pub rss_before_bytes: Option<u64>,
    pub rss_held_bytes: Option<u64>,
    pub rss_after_bytes: Option<u64>,
    /// (held - before) / established.
    pub rss_per_conn_bytes: Option<f64>,
    pub table_entries_before: Option<u64>,
    pub table_entries_held: Option<u64>,
    /// Wall time of each of [`SCRAPE_SAMPLES`] metrics scrapes taken while
    /// every connection was held (request to parsed exposition).
    pub scrape_secs_held: Vec<f64>,
    pub table_entries_after: Option<u64>,
    pub pool_pending_after: Option<u64>,
    /// Table back to its size before the hold and no pool object pending,
    /// within the drain timeout.
    pub drained: Option<bool>,
    pub drain_secs: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HoldReport {
    pub target: SocketAddr,
    pub source_addrs: usize,
    pub nofile_limit: u64,
    /// Processes the connections were held from.
    pub processes: usize,
    #[serde(flatten)]
    pub client: HoldStats,
    pub daemon: HoldDaemon,
}

impl fmt::Display for HoldReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.client;
        writeln!(
            f,
            "hold {}: {} of {} connections established from {} source address(es) and {} \
             process(es) in {:.2} s ({:.0}/s); setup errors {}",
            self.target,
            c.established,
            c.requested,
            self.source_addrs,
            self.processes,
            c.setup_secs,
            c.setup_per_sec,
            c.setup_errors.total()
        )?;
        writeln!(f, "  connect      {}", c.connect_latency)?;
        writeln!(
            f,
            "  held {:.1} s, {} keepalive round(s), {} lost, {} open at the end",
            c.held_secs, c.keepalive_rounds, c.keepalive_failures, c.open_at_end
        )?;
        writeln!(
            f,
            "  closed in {:.2} s, {} wait(s) for the kernel's orphans, {} closed unpaced",
            c.close_secs, c.close_waits, c.close_unpaced
        )?;
        let d = &self.daemon;
        let mib =
            |b: Option<u64>| b.map_or("?".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0));
        let num = |v: Option<u64>| v.map_or("?".into(), |v| v.to_string());
        write!(
            f,
            "  daemon RSS   {} before, {} held, {} after; {} per connection",
            mib(d.rss_before_bytes),
            mib(d.rss_held_bytes),
            mib(d.rss_after_bytes),
            d.rss_per_conn_bytes
                .map_or("?".into(), |b| format!("{b:.0} bytes"))
        )?;
        if let Some(max) = d.scrape_secs_held.iter().copied().reduce(f64::max) {
            let min = d.scrape_secs_held.iter().copied().fold(f64::MAX, f64::min);
            write!(
                f,
                "\n  metrics scrape while held: {:.1}-{:.1} ms over {} scrapes",
                min * 1e3,
                max * 1e3,
                d.scrape_secs_held.len()
            )?;
        }
        write!(
            f,
            "\n  daemon table {} before, {} held, {} after; pool pending {} after; {}",
            num(d.table_entries_before),
            num(d.table_entries_held),
            num(d.table_entries_after),
            num(d.pool_pending_after),
            match (d.drained, d.drain_secs) {
                (Some(true), Some(s)) => format!("drained in {s:.2} s"),
                (Some(false), Some(s)) => format!("NOT drained after {s:.1} s"),
                _ => "drain not checked (no metrics)".into(),
            }
        )
    }
}

const TABLE_ENTRIES: &str = metric::TABLE_ENTRIES;
/// Metrics scrapes timed while the connections are held.
const SCRAPE_SAMPLES: usize = 5;
const POOL_PENDING: &str = metric::POOL_PENDING_OBJECTS;
const POOL_LIVE: &str = metric::POOL_LIVE_OBJECTS;
const POOL_MAX: &str = metric::POOL_MAX_OBJECTS;

/// `smrnet load hold`.
pub fn run_cli(args: &HoldArgs) -> io::Result<()> {
    if args.worker {
        return worker_main(args);
    }
    let opts = args.opts();
    opts.validate()?;
    let ports = netns::run_in(args.common.netns.as_deref(), limits::local_port_range)??;
    limits::check_four_tuples(opts.connections, &opts.source_addrs, ports)?;
    if let Some((allocated, max)) = limits::file_nr() {
        limits::check_file_max(opts.connections, allocated, max, SPARE_FDS)?;
    }
    let link = args.common.daemon()?;
    let scraper = link.scraper.as_ref();
    if let (Some(live), Some(max)) = (
        counter(scraper, POOL_LIVE).map(|v| v as u64),
        counter(scraper, POOL_MAX).map(|v| v as u64),
    ) && max > 0
    {
        limits::check_pool(opts.connections, live, max)?;
    }
    // One process if it may open them all; else as many processes as the
    // fixed per-process limit requires.
    let (nofile_limit, procs) = match (args.processes, raise_nofile(opts.connections)) {
        (Some(p), _) if p == 0 || p > procs::MAX_PROCS || p > opts.connections => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "processes must be 1..={} and at most the connections, not {p}",
                    procs::MAX_PROCS
                ),
            ));
        }
        (Some(p), Ok(limit)) => (limit, p),
        (None, Ok(limit)) => (limit, 1),
        (asked, Err(e)) => {
            let per_proc = per_process_capacity();
            let needed = opts.connections.div_ceil(per_proc.max(1) as usize);
            let procs = needed.max(asked.unwrap_or(1));
            if per_proc == 0 || procs > procs::MAX_PROCS {
                return Err(e);
            }
            eprintln!(
                "smrnet load: the open-file limit allows {per_proc} connections per process; \
                 holding {} across {procs} processes",
                opts.connections
            );
            (per_proc + SPARE_FDS, procs)
        }
    };
    let stop = stop_on_signal()?;
    let rss = |pid: Option<u32>| pid.and_then(|p| rss_bytes(p).ok());
    let mut d = HoldDaemon {
        pid: link.pid,
        rss_before_bytes: rss(link.pid),
        table_entries_before: counter(scraper, TABLE_ENTRIES).map(|v| v as u64),
        ..HoldDaemon::default()
    };
    let on_ready = |d: &mut HoldDaemon| {
        // A client's connect returns when it has sent its final ACK; the
        // daemon may still have some of those queued. Give it up to 3 s to
        // enter them before the held figures are taken.
        let want = d.table_entries_before.unwrap_or(0) + opts.connections as u64;
        let mut entries = counter(scraper, TABLE_ENTRIES).map(|v| v as u64);
        for _ in 0..30 {
            if entries.is_none_or(|e| e >= want) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            entries = counter(scraper, TABLE_ENTRIES).map(|v| v as u64);
        }
        d.table_entries_held = entries;
        d.rss_held_bytes = rss(link.pid);
        if let Some(s) = scraper {
            for _ in 0..SCRAPE_SAMPLES {
                let t0 = std::time::Instant::now();
                if s.scrape().is_ok() {
                    d.scrape_secs_held.push(t0.elapsed().as_secs_f64());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    let client = if procs == 1 {
        let mut holder =
            netns::run_in(args.common.netns.as_deref(), || Holder::open(&opts, stop))??;
        on_ready(&mut d);
        holder.hold(stop);
        holder.close()
    } else {
        procs::run(args, &opts, procs, || on_ready(&mut d))?
    };
    if let (Some(b), Some(h)) = (d.rss_before_bytes, d.rss_held_bytes)
        && client.established > 0
    {
        d.rss_per_conn_bytes = Some((h as f64 - b as f64) / client.established as f64);
    }
    if let Some(s) = scraper {
        let t0 = std::time::Instant::now();
        let baseline = d.table_entries_before.unwrap_or(0);
        loop {
            let m = s.scrape().ok();
            let table = m
                .as_ref()
                .and_then(|m| m.sum(TABLE_ENTRIES))
                .map(|v| v as u64);
            let pending = m
                .as_ref()
                .and_then(|m| m.sum(POOL_PENDING))
                .map(|v| v as u64);
            d.table_entries_after = table;
            d.pool_pending_after = pending;
            let drained = table.is_some_and(|t| t <= baseline) && pending == Some(0);
            let waited = t0.elapsed();
            if drained || waited >= args.drain_timeout || lab::interrupted() {
                d.drained = Some(drained);
                d.drain_secs = Some(waited.as_secs_f64());
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    d.rss_after_bytes = rss(link.pid);
    let report = HoldReport {
        target: opts.target,
        source_addrs: opts.source_addrs.len(),
        nofile_limit,
        processes: procs,
        client,
        daemon: d,
    };
    if args.common.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(io::Error::other)?
        );
    } else {
        println!("{report}");
    }
    if report.daemon.drained == Some(false) {
        return Err(io::Error::other(
            "the daemon's table or pending pool did not drain after the connections closed",
        ));
    }
    Ok(())
}

/// A child of a multi-process hold: set up, report, hold, report, wait
/// for the parent's word, close, report.
fn worker_main(args: &HoldArgs) -> io::Result<()> {
    let opts = args.opts();
    opts.validate()?;
    raise_nofile(opts.connections)?;
    let stop = stop_on_signal()?;
    let mut holder = netns::run_in(args.common.netns.as_deref(), || Holder::open(&opts, stop))??;
    procs::emit("ready", holder.stats())?;
    holder.hold(stop);
    procs::emit("held", holder.stats())?;
    procs::wait_for_close();
    let stats = holder.close();
    procs::emit("closed", &stats)
}

/// Connections one process may hold: its hard open-file limit (raising
/// the soft limit to it) less the spare descriptors.
fn per_process_capacity() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let cur = getrlimit(Resource::Nofile);
    let hard = cur.maximum.unwrap_or(u64::MAX).min(1 << 24);
    let soft = match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(hard),
            maximum: cur.maximum,
        },
    ) {
        Ok(()) => hard,
        Err(_) => cur.current.unwrap_or(hard),
    };
    soft.saturating_sub(SPARE_FDS)
}

/// The lab daemon's echo service.
pub fn default_target() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(DAEMON_V4), ECHO_PORT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection of a hold, however it is split over processes, gets
    /// its own (address, port) pair inside the port range, the addresses
    /// taking turns; past the range the kernel chooses the port.
    #[test]
    fn local_addrs_are_distinct_across_processes_and_inside_the_range() {
        let sources: Vec<IpAddr> = (16..20).map(|i| IpAddr::from([198, 18, 0, i])).collect();
        let ports = Some((1024, 1123)); // 100 ports x 4 addresses = 400 pairs
        let mut seen = std::collections::HashSet::new();
        // Three processes with shares of 150, 150 and 100.
        for (first, share) in [(0u64, 150u64), (150, 150), (300, 100)] {
            for i in 0..share {
                let (addr, port) = local_addr(first + i, &sources, ports).unwrap();
                let port = port.expect("inside the range");
                assert!((1024..=1123).contains(&port));
                assert!(seen.insert((addr, port)), "{addr}:{port} twice");
            }
        }
        assert_eq!(seen.len(), 400);
        assert_eq!(local_addr(5, &sources, ports).unwrap().0, sources[1]);
        assert_eq!(local_addr(400, &sources, ports), Some((sources[0], None)));
        assert_eq!(local_addr(7, &sources, None), Some((sources[3], None)));
        assert_eq!(local_addr(7, &[], ports), None);
    }

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tsmrnetd\nVmPeak:\t  9000 kB\nVmRSS:\t  1234 kB\nThreads: 3\n";
        assert_eq!(parse_vm_rss(status), Some(1234 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn options_are_validated() {
        let t = default_target();
        HoldOpts::new(t).validate().unwrap();
        let mut o = HoldOpts::new(t);
        o.connections = 0;
        assert!(
            o.validate()
                .unwrap_err()
                .to_string()
                .contains("connections")
        );
        let mut o = HoldOpts::new(t);
        o.keepalive_interval = Some(Duration::from_millis(1));
        assert!(o.validate().unwrap_err().to_string().contains("keepalive"));
        let mut o = HoldOpts::new("10.0.0.1:7".parse().unwrap());
        o.connections = 1;
        assert!(
            o.validate()
                .unwrap_err()
                .to_string()
                .contains("refusing target")
        );
    }

    #[test]
    fn nofile_limit_fits_a_small_hold() {
        let limit = raise_nofile(10).unwrap();
        assert!(limit >= 10 + SPARE_FDS);
    }
}
