//! Connection churn with kernel sockets: each transaction connects, writes
//! `request_bytes` of a per-connection pattern, reads the same bytes back
//! (the target is an echo service), verifies them byte for byte, and closes.
//!
//! Two schedules. Closed loop (no rate): `concurrency` slots each start the
//! next transaction as soon as their last one ends. Open loop (`rate` R):
//! transaction i is *intended* to start at `start + i/R`; `concurrency`
//! slots claim those tickets in order, and latency is measured from the
//! intended start, so a stalled server shows up as latency instead of as
//! fewer samples (no coordinated omission). A ticket claimed after its
//! intended start (every slot was busy) is counted as `late`; tickets whose
//! time came before the run ended but that no slot reached are `not_started`.
//!
//! Bounds: no ticket starts after `duration`; each transaction is bounded by
//! `connect_timeout` + `io_timeout`; whatever is still in flight
//! `drain_timeout` after the end is abandoned and counted. So a run lasts at
//! most `duration + drain_timeout`.
//!
//! Invariant of the report: `ok + errors.total() == attempted`.
//!
//! Everything runs in the calling thread's network namespace: the runtime
//! is built on the calling thread, and its threads inherit the namespace.

use super::latency::{Latencies, LatencySummary};
use super::safety::{self, Cidr};
use super::sockopt::set_bind_address_no_port;
use serde::Serialize;
use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::time::{Instant, sleep, sleep_until, timeout};

/// Largest `request_bytes` accepted.
pub const MAX_REQUEST_BYTES: usize = 16 << 20;
/// Largest `concurrency` accepted.
pub const MAX_CONCURRENCY: usize = 1 << 20;
/// Longest `duration` accepted.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// How a transaction ends its connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Close {
    /// close(): FIN; the client keeps TIME-WAIT (the honest default).
    #[default]
    Fin,
    /// SO_LINGER 0: RST; nothing is left in TIME-WAIT on either side.
    Rst,
}

/// Where the once-a-second interval lines go.
#[derive(Clone)]
pub enum Stream {
    /// One JSON object per line.
    Writer(Arc<Mutex<dyn Write + Send>>),
    /// Called once a second with the interval (e.g. a live display).
    Callback(Arc<dyn Fn(&Interval) + Send + Sync>),
}

impl Stream {
    pub fn stdout() -> Stream {
        Stream::Writer(Arc::new(Mutex::new(io::stdout())))
    }

    pub fn writer(w: impl Write + Send + 'static) -> Stream {
        Stream::Writer(Arc::new(Mutex::new(w)))
    }

    pub fn callback(f: impl Fn(&Interval) + Send + Sync + 'static) -> Stream {
        Stream::Callback(Arc::new(f))
    }

    fn emit(&self, line: &Interval) {
        match self {
            Stream::Writer(w) => {
                let mut w = w.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let json = serde_json::to_string(line).expect("Interval serialises");
                // A closed pipe must not stop the load; the summary reports.
                let _ = writeln!(w, "{json}").and_then(|()| w.flush());
            }
            Stream::Callback(f) => f(line),
        }
    }
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Writer(_) => "Stream::Writer",
            Stream::Callback(_) => "Stream::Callback",
        })
    }
}

/// One second of a run, as streamed.
#[derive(Clone, Debug, Serialize)]
pub struct Interval {
    /// Seconds since the start.
    pub t_secs: f64,
    /// Transactions that completed and verified in this interval.
    pub ok: u64,
    /// Transactions that failed in this interval.
    pub errors: u64,
    /// `ok` per second of this interval.
    pub conns_per_sec: f64,
    /// Totals since the start.
    pub total_ok: u64,
    pub total_attempted: u64,
    pub total_errors: u64,
    pub in_flight: u64,
    pub late: u64,
}

/// What to run. [`ChurnOpts::new`] gives the defaults the CLI documents.
#[derive(Clone, Debug)]
pub struct ChurnOpts {
    pub target: SocketAddr,
    /// Connection slots: at most this many transactions in flight.
    pub concurrency: usize,
    /// Open loop at this many transactions per second; closed loop if `None`.
    pub rate: Option<f64>,
    /// No transaction starts after this.
    pub duration: Duration,
    /// Bytes written and expected back per connection (0: connect and close).
    pub request_bytes: usize,
    /// Local addresses to bind, round robin; empty: the kernel chooses.
    pub source_addrs: Vec<IpAddr>,
    pub connect_timeout: Duration,
    /// Bound on writing the request and reading it back.
    pub io_timeout: Duration,
    /// How long in-flight transactions may run on after `duration`.
    pub drain_timeout: Duration,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// One line per second, if set.
    pub stream: Option<Stream>,
    pub close: Close,
    /// Runtime worker threads.
    pub threads: usize,
    /// Networks allowed beyond loopback and the lab's (`--allow-network`).
    pub allowed_networks: Vec<Cidr>,
    /// Stop after this many transactions have been started.
    pub max_transactions: Option<u64>,
}

impl ChurnOpts {
    /// 64 slots, closed loop, 10 s, 64-byte requests, kernel-chosen source,
    /// 3 s connect and I/O timeouts, 5 s drain, no progress or stream.
    pub fn new(target: SocketAddr) -> ChurnOpts {
        ChurnOpts {
            target,
            concurrency: 64,
            rate: None,
            duration: Duration::from_secs(10),
            request_bytes: 64,
            source_addrs: Vec::new(),
            connect_timeout: Duration::from_secs(3),
            io_timeout: Duration::from_secs(3),
            drain_timeout: Duration::from_secs(5),
            progress: false,
            stream: None,
            close: Close::Fin,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            allowed_networks: Vec::new(),
            max_transactions: None,
        }
    }

    /// Refuse options that cannot make a bounded, allowed run.
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
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            return bad(format!(
                "concurrency must be 1..={MAX_CONCURRENCY}, not {}",
                self.concurrency
            ));
        }
        if let Some(r) = self.rate
            && !(r.is_finite() && r > 0.0 && r <= 1e8)
        {
            return bad(format!(
                "rate must be a positive number of connections per second up to 1e8, not {r}"
            ));
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return bad(format!(
                "duration must be more than 0 and at most 24 h, not {:?}",
                self.duration
            ));
        }
        if self.request_bytes > MAX_REQUEST_BYTES {
            return bad(format!(
                "request bytes must be at most {MAX_REQUEST_BYTES}, not {}",
                self.request_bytes
            ));
        }
        for (name, d) in [
            ("connect timeout", self.connect_timeout),
            ("I/O timeout", self.io_timeout),
        ] {
            if d.is_zero() || d > Duration::from_secs(3600) {
                return bad(format!(
                    "{name} must be more than 0 and at most 1 h, not {d:?}"
                ));
            }
        }
        if self.drain_timeout > Duration::from_secs(3600) {
            return bad(format!(
                "drain timeout must be at most 1 h, not {:?}",
                self.drain_timeout
            ));
        }
        if self.threads == 0 || self.threads > 1024 {
            return bad(format!("threads must be 1..=1024, not {}", self.threads));
        }
        Ok(())
    }
}

/// Failed transactions by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorCounts {
    /// The target answered the SYN with RST (nothing listening).
    pub refused: u64,
    /// The connection was reset or aborted after it was established.
    pub reset: u64,
    /// Connecting, or the request/echo exchange, ran past its timeout.
    pub timed_out: u64,
    /// The server closed before echoing every byte.
    pub short_read: u64,
    /// The echo differed from what was sent.
    pub mismatch: u64,
    /// No local address or port was free (bind or connect: EADDRNOTAVAIL, EADDRINUSE).
    pub no_local_port: u64,
    /// Still in flight when the drain timeout ended the run.
    pub abandoned: u64,
    /// Anything else (e.g. too many open files, no route).
    pub other: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.refused
            + self.reset
            + self.timed_out
            + self.short_read
            + self.mismatch
            + self.no_local_port
            + self.abandoned
            + self.other
    }
}

impl std::ops::AddAssign for ErrorCounts {
    fn add_assign(&mut self, o: ErrorCounts) {
        self.refused += o.refused;
        self.reset += o.reset;
        self.timed_out += o.timed_out;
        self.short_read += o.short_read;
        self.mismatch += o.mismatch;
        self.no_local_port += o.no_local_port;
        self.abandoned += o.abandoned;
        self.other += o.other;
    }
}

/// The daemon's side of a run, from its metrics (filled in by callers that
/// can scrape it; see [`DaemonSide::check`]).
#[derive(Clone, Debug, Serialize)]
pub struct DaemonSide {
    pub metrics_url: String,
    /// `smrnet_tcp_passive_opens_total` after minus before.
    pub passive_opens: u64,
    /// Whether the two sides' counts are consistent.
    pub agrees: bool,
    /// Why they are or are not.
    pub verdict: String,
}

impl DaemonSide {
    /// Compare the daemon's passive opens with the client's counts. Every
    /// verified transaction was an established connection, so the daemon
    /// counted at least `ok` (its counter rises when the handshake's last
    /// ACK arrives, before it can echo); every passive open came from one
    /// attempted connect, so at most `attempted`. With no failures both
    /// bounds meet and the counts must be equal. Assumes nothing else
    /// connects to the daemon during the run.
    pub fn check(metrics_url: String, passive_opens: u64, ok: u64, attempted: u64) -> DaemonSide {
        let agrees = ok <= passive_opens && passive_opens <= attempted;
        let verdict = if passive_opens == ok && ok == attempted {
            format!("both sides counted {ok} connections")
        } else if agrees {
            format!(
                "daemon counted {passive_opens}, between the client's {ok} verified and \
                 {attempted} attempted"
            )
        } else if passive_opens < ok {
            format!(
                "daemon counted {passive_opens} connections but the client verified {ok}: \
                 the metrics miss connections"
            )
        } else {
            format!(
                "daemon counted {passive_opens} connections but the client attempted only \
                 {attempted}: someone else connected, or the daemon counts twice"
            )
        };
        DaemonSide {
            metrics_url,
            passive_opens,
            agrees,
            verdict,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Serialize)]
pub struct ChurnReport {
    pub target: SocketAddr,
    pub concurrency: usize,
    /// The open-loop rate asked for, if any.
    pub rate: Option<f64>,
    pub request_bytes: usize,
    pub source_addrs: usize,
    pub close: Close,
    /// Transactions that connected, echoed and verified.
    pub ok: u64,
    /// Transactions started.
    pub attempted: u64,
    /// `ok / elapsed_secs`.
    pub conns_per_sec: f64,
    /// From the start until the last transaction ended.
    pub elapsed_secs: f64,
    /// Open loop: tickets claimed after their intended start.
    pub late: u64,
    /// Open loop: tickets due before the end that no slot started.
    pub not_started: u64,
    pub errors: ErrorCounts,
    /// SYN sent to connection established.
    pub connect_latency: LatencySummary,
    /// Intended start (open loop) or start (closed loop) to verified echo.
    pub transaction_latency: LatencySummary,
    /// The daemon's view, when its metrics were reachable.
    pub daemon: Option<DaemonSide>,
}

impl fmt::Display for ChurnReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let schedule = match self.rate {
            Some(r) => format!("open loop at {r}/s"),
            None => "closed loop".to_string(),
        };
        writeln!(
            f,
            "churn {}: {} slots, {schedule}, {} bytes, {} source address(es), close by {:?}",
            self.target, self.concurrency, self.request_bytes, self.source_addrs, self.close
        )?;
        writeln!(
            f,
            "  {} ok of {} attempted in {:.2} s: {:.0} connections/s",
            self.ok, self.attempted, self.elapsed_secs, self.conns_per_sec
        )?;
        let e = &self.errors;
        writeln!(
            f,
            "  errors {}: refused {}, reset {}, timed out {}, short read {}, mismatch {}, \
             no local port {}, abandoned {}, other {}",
            e.total(),
            e.refused,
            e.reset,
            e.timed_out,
            e.short_read,
            e.mismatch,
            e.no_local_port,
            e.abandoned,
            e.other
        )?;
        if self.rate.is_some() {
            writeln!(f, "  late {}, not started {}", self.late, self.not_started)?;
        }
        writeln!(f, "  connect      {}", self.connect_latency)?;
        write!(f, "  transaction  {}", self.transaction_latency)?;
        if let Some(d) = &self.daemon {
            write!(
                f,
                "\n  daemon       {} passive opens: {} ({})",
                d.passive_opens,
                if d.agrees { "agrees" } else { "DISAGREES" },
                d.verdict
            )?;
        }
        Ok(())
    }
}

/// Run to completion. Blocking: builds its own tokio runtime, in the
/// calling thread's network namespace.
pub fn run(opts: &ChurnOpts) -> io::Result<ChurnReport> {
    run_until(opts, &AtomicBool::new(false))
}

/// Like [`run`], but stops starting transactions as soon as `stop` is set
/// (polled at least every 100 ms); in-flight ones finish or are abandoned
/// after `drain_timeout`, as at the normal end. For probes that must end
/// early and for Ctrl-C.
pub fn run_until(opts: &ChurnOpts, stop: &AtomicBool) -> io::Result<ChurnReport> {
    opts.validate()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads)
        .thread_name("smrnet-churn")
        .enable_all()
        .build()?;
    rt.block_on(drive(opts, stop))
}

/// Counters shared by the slots. Relaxed everywhere: statistics only,
/// read after the slots are joined (which synchronises) or approximately
/// by the ticker.
#[derive(Default)]
struct Shared {
    ok: AtomicU64,
    attempted: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
    late: AtomicU64,
    next_ticket: AtomicU64,
    next_source: AtomicUsize,
    errors: Mutex<ErrorCounts>,
    connect: Mutex<Latencies>,
    transaction: Mutex<Latencies>,
    /// Set when the run is over: no new tickets.
    done: AtomicBool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Refused,
    Reset,
    TimedOut,
    ShortRead,
    Mismatch,
    NoLocalPort,
    Other,
}

impl Failure {
    pub(crate) fn of(e: &io::Error) -> Failure {
        use io::ErrorKind as K;
        match e.kind() {
            K::ConnectionRefused => Failure::Refused,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Failure::Reset,
            K::TimedOut => Failure::TimedOut,
            K::UnexpectedEof => Failure::ShortRead,
            K::AddrNotAvailable | K::AddrInUse => Failure::NoLocalPort,
            _ => Failure::Other,
        }
    }

    pub(crate) fn count(self, e: &mut ErrorCounts) {
        let slot = match self {
            Failure::Refused => &mut e.refused,
            Failure::Reset => &mut e.reset,
            Failure::TimedOut => &mut e.timed_out,
            Failure::ShortRead => &mut e.short_read,
            Failure::Mismatch => &mut e.mismatch,
            Failure::NoLocalPort => &mut e.no_local_port,
            Failure::Other => &mut e.other,
        };
        *slot += 1;
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn drive(opts: &ChurnOpts, stop: &AtomicBool) -> io::Result<ChurnReport> {
    let shared = Arc::new(Shared::default());
    let start = Instant::now();
    let end = start + opts.duration;
    let opts_arc = Arc::new(opts.clone());
    let mut slots = tokio::task::JoinSet::new();
    for _ in 0..opts.concurrency {
        slots.spawn(slot(opts_arc.clone(), shared.clone(), start, end));
    }
    let ticker = tokio::spawn(ticker(opts_arc.clone(), shared.clone(), start));
    let mut hard_end = end + opts.drain_timeout;
    let mut last_done = start;
    loop {
        tokio::select! {
            joined = slots.join_next() => match joined {
                Some(_) => last_done = Instant::now(),
                None => break,
            },
            _ = sleep(Duration::from_millis(100)) => {
                if stop.load(Ordering::Relaxed) && !shared.done.swap(true, Ordering::Relaxed) {
                    hard_end = hard_end.min(Instant::now() + opts.drain_timeout);
                }
                if Instant::now() >= hard_end {
                    slots.abort_all();
                    while slots.join_next().await.is_some() {}
                    last_done = Instant::now();
                    break;
                }
            }
        }
    }
    shared.done.store(true, Ordering::Relaxed);
    ticker.abort();
    let _ = ticker.await;
    let elapsed = last_done.duration_since(start).as_secs_f64().max(1e-9);
    let mut errors = *lock(&shared.errors);
    errors.abandoned = shared.in_flight.load(Ordering::Relaxed);
    let ok = shared.ok.load(Ordering::Relaxed);
    let attempted = shared.attempted.load(Ordering::Relaxed);
    let not_started = match opts.rate {
        Some(r) => {
            let window = elapsed.min(opts.duration.as_secs_f64());
            let due = (window * r).ceil() as u64;
            let due = opts.max_transactions.map_or(due, |m| due.min(m));
            due.saturating_sub(attempted)
        }
        None => 0,
    };
    Ok(ChurnReport {
        target: opts.target,
        concurrency: opts.concurrency,
        rate: opts.rate,
        request_bytes: opts.request_bytes,
        source_addrs: opts.source_addrs.len(),
        close: opts.close,
        ok,
        attempted,
        conns_per_sec: ok as f64 / elapsed,
        elapsed_secs: elapsed,
        late: shared.late.load(Ordering::Relaxed),
        not_started,
        errors,
        connect_latency: lock(&shared.connect).summary(),
        transaction_latency: lock(&shared.transaction).summary(),
        daemon: None,
    })
}

/// One connection slot: claims tickets until the run ends.
async fn slot(opts: Arc<ChurnOpts>, sh: Arc<Shared>, start: Instant, end: Instant) {
    let mut sent = vec![0u8; opts.request_bytes];
    let mut echoed = vec![0u8; opts.request_bytes];
    loop {
        if sh.done.load(Ordering::Relaxed) || Instant::now() >= end {
            return;
        }
        let ticket = sh.next_ticket.fetch_add(1, Ordering::Relaxed);
        if opts.max_transactions.is_some_and(|m| ticket >= m) {
            return;
        }
        let intended = match opts.rate {
            None => Instant::now(),
            Some(r) => {
                let due = start + Duration::from_secs_f64(ticket as f64 / r);
                if due >= end {
                    return;
                }
                if Instant::now() > due {
                    sh.late.fetch_add(1, Ordering::Relaxed);
                }
                // Sleep in short steps so a stop request is seen promptly.
                while Instant::now() < due {
                    if sh.done.load(Ordering::Relaxed) {
                        return;
                    }
                    sleep_until(due.min(Instant::now() + Duration::from_millis(100))).await;
                }
                due
            }
        };
        let source = (!opts.source_addrs.is_empty()).then(|| {
            let i = sh.next_source.fetch_add(1, Ordering::Relaxed);
            opts.source_addrs[i % opts.source_addrs.len()]
        });
        fill_pattern(&mut sent, ticket);
        sh.attempted.fetch_add(1, Ordering::Relaxed);
        sh.in_flight.fetch_add(1, Ordering::Relaxed);
        let result = transaction(&opts, source, &sent, &mut echoed).await;
        let finished = Instant::now();
        match result {
            Ok(connect) => {
                lock(&sh.connect).record(connect);
                lock(&sh.transaction).record(finished.duration_since(intended));
                sh.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(f) => {
                f.count(&mut lock(&sh.errors));
                sh.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        sh.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The bytes of transaction `ticket`: different for every connection (so
/// an echo from the wrong connection fails verification) and cheap.
pub(crate) fn fill_pattern(buf: &mut [u8], ticket: u64) {
    let mut x = ticket.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for chunk in buf.chunks_mut(8) {
        // xorshift64: a different byte stream per ticket.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
}

/// Connect, echo, verify, close. Returns the connect latency.
async fn transaction(
    opts: &ChurnOpts,
    source: Option<IpAddr>,
    sent: &[u8],
    echoed: &mut [u8],
) -> Result<Duration, Failure> {
    let other = |e: io::Error| Failure::of(&e);
    let sock = match opts.target {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(other)?;
    if let Some(src) = source {
        set_bind_address_no_port(&sock).map_err(other)?;
        sock.bind(SocketAddr::new(src, 0)).map_err(other)?;
    }
    if opts.close == Close::Rst {
        sock.set_zero_linger().map_err(other)?;
    }
    let t0 = Instant::now();
    let mut stream = timeout(opts.connect_timeout, sock.connect(opts.target))
        .await
        .map_err(|_| Failure::TimedOut)?
        .map_err(other)?;
    let connect = t0.elapsed();
    if sent.is_empty() {
        return Ok(connect);
    }
    let (mut rd, mut wr) = stream.split();
    // Write and read at once: a request larger than the socket buffers
    // would otherwise deadlock against the echo.
    let exchange = async { tokio::try_join!(wr.write_all(sent), rd.read_exact(echoed)) };
    timeout(opts.io_timeout, exchange)
        .await
        .map_err(|_| Failure::TimedOut)?
        .map_err(other)?;
    if sent != echoed {
        return Err(Failure::Mismatch);
    }
    Ok(connect)
}

/// Progress bar (every 250 ms) and stream lines (every second) until aborted.
async fn ticker(opts: Arc<ChurnOpts>, sh: Arc<Shared>, start: Instant) {
    let bar = opts.progress.then(|| progress_bar(opts.duration));
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut last_ok, mut last_failed, mut last_t) = (0u64, 0u64, start);
    let mut n = 0u64;
    let _finish = FinishBar(bar.clone());
    loop {
        tick.tick().await;
        n += 1;
        let now = Instant::now();
        let ok = sh.ok.load(Ordering::Relaxed);
        let failed = sh.failed.load(Ordering::Relaxed);
        if let Some(bar) = &bar {
            let secs = now.duration_since(start).as_secs_f64();
            bar.set_position((secs * 1000.0) as u64);
            bar.set_message(format!(
                "{ok} ok, {failed} errors, {:.0}/s",
                ok as f64 / secs.max(1e-3)
            ));
        }
        if n.is_multiple_of(4)
            && let Some(stream) = &opts.stream
        {
            let dt = now.duration_since(last_t).as_secs_f64().max(1e-9);
            stream.emit(&Interval {
                t_secs: now.duration_since(start).as_secs_f64(),
                ok: ok - last_ok,
                errors: failed - last_failed,
                conns_per_sec: (ok - last_ok) as f64 / dt,
                total_ok: ok,
                total_attempted: sh.attempted.load(Ordering::Relaxed),
                total_errors: failed,
                in_flight: sh.in_flight.load(Ordering::Relaxed),
                late: sh.late.load(Ordering::Relaxed),
            });
            (last_ok, last_failed, last_t) = (ok, failed, now);
        }
    }
}

fn progress_bar(duration: Duration) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(duration.as_millis() as u64);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Clears the bar however the ticker ends (it is aborted).
struct FinishBar(Option<indicatif::ProgressBar>);

impl Drop for FinishBar {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests;
