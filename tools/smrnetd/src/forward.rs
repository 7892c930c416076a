//! The `forward` service: each connection a forward listener accepts is
//! spliced to a new kernel TCP connection to its upstream — a userspace
//! SYN proxy: handshakes, SYN cookies and half-open state stay in the
//! stack, and only established connections reach the upstream.
//!
//! It runs on the tokio API (`smrnet_tokio`) in a control-plane runtime
//! of its own: one thread, `smrnet-fwd`, which enters `--netns` (so the
//! upstream's loopback is the namespace's) and drops privileges itself.
//! The packet workers hand it the events of its connections and are woken
//! by the stack's own waker when its calls queue work; they never wait for
//! it.
//!
//! Per connection: connect to the upstream within [`CONNECT_TIMEOUT`]
//! (refused or timed out: RST to the client, a counter, a log line at
//! most once a second); then two pumps, one per direction, each through
//! one [`PUMP_BUFFER`] — end of stream on one side becomes a FIN on the
//! other (half-close carried); an error on one side resets the other. On
//! stop (SIGINT/SIGTERM) both sides of every splice are closed.
//!
//! Invariant: **memory per splice is bounded** (two pump buffers, plus the
//! stack's and the kernel's socket buffers, which apply backpressure), and
//! every splice is counted in and out ([`ForwardCounters::active`]).

use core::net::SocketAddr;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use netstack::ListenerHandle;
use smrnet_tokio::{TcpListener, TcpStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::config::Service;
use super::worker::Shared;

/// How long an upstream connect may take before the client is reset.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Bytes in flight inside one pump (one per direction per splice).
pub const PUMP_BUFFER: usize = 16 * 1024;
/// The least time between two "upstream down" log lines.
const LOG_EVERY: Duration = Duration::from_secs(1);
/// Splice-time histogram buckets: powers of two in nanoseconds.
const BUCKETS: usize = 40;

/// Relaxed: statistics only.
fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Relaxed: statistics only.
fn read(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// A counter family for the exposition: name, help, `(labels, value)`.
type Family<'a> = (&'a str, &'a str, &'a [(&'a str, &'a AtomicU64)]);

/// What the forward service has done (every field a statistic).
#[derive(Debug)]
pub struct ForwardCounters {
    /// Connections accepted from the stack.
    pub accepted: AtomicU64,
    /// Upstream connects that succeeded.
    pub connects: AtomicU64,
    /// Upstream connects refused / timed out / failed otherwise.
    pub refused: AtomicU64,
    pub timed_out: AtomicU64,
    pub failed: AtomicU64,
    /// Bytes carried client → upstream and upstream → client.
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
    /// Splices that ended with an error on the client's / upstream's side
    /// (the other side was reset).
    pub client_errors: AtomicU64,
    pub upstream_errors: AtomicU64,
    /// Splices closed by a stop.
    pub stopped: AtomicU64,
    /// Splices started and ended (active = started - ended).
    pub started: AtomicU64,
    pub ended: AtomicU64,
    /// Splice times (upstream connected to both sides done), bucket `i`
    /// counting times below 2^(i+1) ns; the last bucket takes the rest.
    splice_ns: [AtomicU64; BUCKETS],
    splice_sum_ns: AtomicU64,
}

impl Default for ForwardCounters {
    fn default() -> ForwardCounters {
        ForwardCounters {
            accepted: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            client_errors: AtomicU64::new(0),
            upstream_errors: AtomicU64::new(0),
            stopped: AtomicU64::new(0),
            started: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            splice_ns: core::array::from_fn(|_| AtomicU64::new(0)),
            splice_sum_ns: AtomicU64::new(0),
        }
    }
}

impl ForwardCounters {
    /// Splices running now.
    pub fn active(&self) -> u64 {
        read(&self.started).saturating_sub(read(&self.ended))
    }

    fn record_splice(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let bucket = (63 - ns.max(1).leading_zeros() as usize).min(BUCKETS - 1);
        add(&self.splice_ns[bucket], 1);
        add(&self.splice_sum_ns, ns);
    }

    /// Appends the Prometheus exposition of these counters.
    pub fn render(&self, text: &mut String) {
        let counters: [Family<'_>; 5] = [
            (
                names::FORWARD_ACCEPTED,
                "Connections the forward service accepted from the stack.",
                &[("", &self.accepted)],
            ),
            (
                names::FORWARD_UPSTREAM_CONNECTS,
                "Upstream connections the forward service opened.",
                &[("", &self.connects)],
            ),
            (
                names::FORWARD_UPSTREAM_FAILURES,
                "Upstream connects that failed, by reason (the client got an RST).",
                &[
                    ("reason=\"refused\"", &self.refused),
                    ("reason=\"timed_out\"", &self.timed_out),
                    ("reason=\"other\"", &self.failed),
                ],
            ),
            (
                names::FORWARD_BYTES,
                "Bytes carried by forward splices, by direction.",
                &[
                    ("direction=\"to_upstream\"", &self.bytes_up),
                    ("direction=\"to_client\"", &self.bytes_down),
                ],
            ),
            (
                names::FORWARD_SPLICE_ENDS,
                "Splices that ended other than in order: an error on one side (the other reset), or a stop.",
                &[
                    ("end=\"client_error\"", &self.client_errors),
                    ("end=\"upstream_error\"", &self.upstream_errors),
                    ("end=\"stopped\"", &self.stopped),
                ],
            ),
        ];
        for (name, help, series) in counters {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, c) in series {
                if labels.is_empty() {
                    let _ = writeln!(text, "{name} {}", read(c));
                } else {
                    let _ = writeln!(text, "{name}{{{labels}}} {}", read(c));
                }
            }
        }
        let _ = writeln!(
            text,
            "# HELP {a} Forward splices open now.\n# TYPE {a} gauge\n{a} {}",
            self.active(),
            a = names::FORWARD_ACTIVE_SPLICES
        );
        let buckets: Vec<u64> = self.splice_ns.iter().map(read).collect();
        super::metrics::histogram::render_pow2_ns(
            text,
            names::FORWARD_SPLICE_SECONDS,
            "Time from the upstream connect to the end of both directions of a forward splice.",
            &buckets,
            Some(read(&self.splice_sum_ns)),
        );
    }
}

/// The names of the forward service's families (rendered by hand).
pub mod names {
    /// `smrnet_forward_accepted_total`.
    pub const FORWARD_ACCEPTED: &str = "smrnet_forward_accepted_total";
    /// `smrnet_forward_upstream_connects_total`.
    pub const FORWARD_UPSTREAM_CONNECTS: &str = "smrnet_forward_upstream_connects_total";
    /// `smrnet_forward_upstream_failures_total`.
    pub const FORWARD_UPSTREAM_FAILURES: &str = "smrnet_forward_upstream_failures_total";
    /// `smrnet_forward_bytes_total`.
    pub const FORWARD_BYTES: &str = "smrnet_forward_bytes_total";
    /// `smrnet_forward_splice_ends_total`.
    pub const FORWARD_SPLICE_ENDS: &str = "smrnet_forward_splice_ends_total";
    /// `smrnet_forward_splice_seconds`.
    pub const FORWARD_SPLICE_SECONDS: &str = "smrnet_forward_splice_seconds";
    /// `smrnet_forward_active_splices`.
    pub const FORWARD_ACTIVE_SPLICES: &str = "smrnet_forward_active_splices";
    /// `smrnet_forward_task_wakeups_total`.
    pub const FORWARD_TASK_WAKEUPS: &str = "smrnet_forward_task_wakeups_total";
}

/// What the packet workers, the control plane and the forward thread
/// share: the tokio API over the stack (always built: a worker hands it
/// events only once a forward listener exists), the counters, and the
/// forward thread's wake-up (a reload or the stop).
pub struct Plane {
    pub net: smrnet_tokio::Net,
    pub counters: ForwardCounters,
    pub wake: tokio::sync::Notify,
}

impl Plane {
    /// The plane of `stack`, whose clock starts at `epoch`. The packet
    /// workers are woken by the stack's own `WorkerWaker`.
    pub fn new(stack: Arc<netstack::Stack>, epoch: Instant) -> Plane {
        let net = smrnet_tokio::Net::new(
            stack,
            Arc::new(move || {
                netstack::Instant::from_nanos(
                    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX),
                )
            }),
        );
        Plane {
            net,
            counters: ForwardCounters::default(),
            wake: tokio::sync::Notify::new(),
        }
    }
}

impl Plane {
    /// Appends the Prometheus exposition of the forward service: its
    /// counters and how the workers' wake-ups reached its tasks.
    pub fn render(&self, text: &mut String) {
        self.counters.render(text);
        let n = self.net.counters();
        let _ = writeln!(
            text,
            "# HELP {m} Forward tasks woken by the packet workers' events, by path: through the wake relay (batched), and the relay's own wake-ups (each one a wake from outside the forward runtime).\n# TYPE {m} counter\n{m}{{path=\"relayed\"}} {}\n{m}{{path=\"relay\"}} {}",
            n.relayed,
            n.relay_wakes,
            m = names::FORWARD_TASK_WAKEUPS,
        );
    }
}

impl core::fmt::Debug for Plane {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Plane").finish_non_exhaustive()
    }
}

/// "Upstream down" lines at most once per [`LOG_EVERY`], with a count of
/// the ones left out.
#[derive(Debug, Default)]
struct LogLimit {
    last: Mutex<Option<Instant>>,
    held: AtomicU64,
}

impl LogLimit {
    fn warn(&self, upstream: SocketAddr, why: &str) {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            add(&self.held, 1);
            return;
        }
        *last = Some(now);
        drop(last);
        // Relaxed: a count of suppressed lines, read and reset here only.
        let held = self.held.swap(0, Ordering::Relaxed);
        tracing::warn!(%upstream, held, "forward: upstream {why}; client reset ({held} more like it not logged)");
    }
}

/// Starts the forward thread, before the daemon drops privileges (entering
/// `netns` needs them); returns once the thread is in `netns` with
/// `user`'s privileges, or with the reason it could not get there. The
/// thread then waits for the daemon's [`Shared`] on the returned sender
/// (and ends if the sender is dropped unused).
pub fn spawn(
    netns: Option<String>,
    user: Option<super::privs::User>,
) -> io::Result<(
    std::thread::JoinHandle<()>,
    std::sync::mpsc::SyncSender<Arc<Shared>>,
)> {
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<io::Result<()>>(1);
    let (shared_tx, shared_rx) = std::sync::mpsc::sync_channel::<Arc<Shared>>(1);
    let handle = std::thread::Builder::new()
        .name("smrnet-fwd".to_owned())
        .spawn(move || {
            let setup = || -> io::Result<tokio::runtime::Runtime> {
                if let Some(ns) = &netns {
                    super::netns::enter(ns)?;
                }
                // Credentials are per thread here (raw syscalls): this
                // thread drops its own, as the main thread does.
                if let Some(u) = &user {
                    super::privs::drop_to(u)?;
                }
                tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build()
            };
            let rt = match setup() {
                Ok(rt) => {
                    let _ = ready_tx.send(Ok(()));
                    rt
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            if let Ok(shared) = shared_rx.recv() {
                rt.block_on(plane(shared));
            }
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok((handle, shared_tx)),
        Ok(Err(e)) => Err(io::Error::new(e.kind(), format!("forward thread: {e}"))),
        Err(_) => Err(io::Error::other(
            "the forward thread ended before it was ready",
        )),
    }
}

/// The forward plane: one accept loop per forward listener of the current
/// service set, kept in step with reloads, until stop.
async fn plane(shared: Arc<Shared>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let log = Arc::new(LogLimit::default());
    // Keyed by listener and service: a reload that swaps a listener's
    // service ends its loop here (the workers serve it from then on).
    let mut loops: HashMap<(ListenerHandle, Service), tokio::task::JoinHandle<()>> = HashMap::new();
    // The workers' events wake this runtime's tasks through one relay task:
    // one wake from outside the runtime (an eventfd write) per batch of
    // events instead of one per task.
    // It runs until the runtime is dropped (the splices' closes still
    // wait on events during the stop).
    if let Some(relay) = shared.forward.net.wake_relay() {
        tokio::spawn(relay);
    }
    loop {
        // Acquire: pairs with the control plane's Release store.
        if shared.stop.load(Ordering::Acquire) {
            break;
        }
        let current = shared.services.current();
        let wanted: Vec<(ListenerHandle, Service)> = current
            .listeners
            .iter()
            .filter(|(_, s)| s.service.on_async_api())
            .map(|(h, s)| (*h, s.service))
            .collect();
        loops.retain(|key, task| {
            let keep = wanted.contains(key);
            if !keep {
                task.abort();
            }
            keep
        });
        for (h, service) in wanted {
            loops.entry((h, service)).or_insert_with(|| {
                let listener = TcpListener::from_handle(&shared.forward.net, h);
                match service {
                    Service::Forward(up) => tokio::spawn(accept_loop(
                        listener,
                        up,
                        Arc::clone(&shared),
                        Arc::clone(&log),
                        stop_rx.clone(),
                    )),
                    _ => tokio::spawn(echo_loop(listener, stop_rx.clone())),
                }
            });
        }
        shared.forward.wake.notified().await;
    }
    for (_, task) in loops.drain() {
        task.abort();
    }
    let _ = stop_tx.send(true);
    // The splices close both sides and end; give them the workers' grace.
    let deadline = tokio::time::Instant::now() + super::worker::GRACEFUL_CLOSE;
    while shared.forward.counters.active() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    log: Arc<LogLimit>,
    stop: watch::Receiver<bool>,
) {
    loop {
        let client = match listener.accept().await {
            Ok((s, _)) => s,
            // The stack's accept has no error but a closed listener, which
            // never wakes this task again: the plane aborts it.
            Err(_) => return,
        };
        add(&shared.forward.counters.accepted, 1);
        add(&shared.forward.counters.started, 1);
        let (shared, log, stop) = (Arc::clone(&shared), Arc::clone(&log), stop.clone());
        tokio::spawn(async move {
            splice(client, upstream, &shared.forward.counters, &log, stop).await;
            add(&shared.forward.counters.ended, 1);
        });
    }
}

/// `echo-async`: RFC 862 through the tokio API, one task per connection,
/// one [`PUMP_BUFFER`] each; closed on stop.
async fn echo_loop(listener: TcpListener, stop: watch::Receiver<bool>) {
    while let Ok((s, _)) = listener.accept().await {
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; PUMP_BUFFER];
            let mut s = s;
            loop {
                let n = tokio::select! {
                    r = s.read(&mut buf) => match r {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    },
                    _ = stop.wait_for(|s| *s) => break,
                };
                if s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Which side of a splice failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Client,
    Upstream,
}

/// Copies `from` to `to` until end of stream, then shuts `to`'s sending
/// side (the half-close carried across). The error names the failed side.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    sides: (Side, Side),
    bytes: &AtomicU64,
) -> Result<(), Side>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; PUMP_BUFFER];
    loop {
        let n = from.read(&mut buf).await.map_err(|_| sides.0)?;
        if n == 0 {
            return to.shutdown().await.map_err(|_| sides.1);
        }
        to.write_all(&buf[..n]).await.map_err(|_| sides.1)?;
        add(bytes, n as u64);
    }
}

async fn splice(
    client: TcpStream,
    upstream: SocketAddr,
    c: &ForwardCounters,
    log: &LogLimit,
    mut stop: watch::Receiver<bool>,
) {
    let connect = tokio::net::TcpStream::connect(upstream);
    let mut up = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let (counter, why) = match e.kind() {
                io::ErrorKind::ConnectionRefused => (&c.refused, "refused the connection"),
                _ => (&c.failed, "connect failed"),
            };
            add(counter, 1);
            log.warn(upstream, why);
            client.abort();
            return;
        }
        Err(_) => {
            add(&c.timed_out, 1);
            log.warn(upstream, "did not answer within the connect timeout");
            client.abort();
            return;
        }
    };
    add(&c.connects, 1);
    let _ = up.set_nodelay(true);
    let started = Instant::now();
    let end = {
        let (ur, uw) = up.split();
        let mut to_up = pin!(pump(
            &client,
            uw,
            (Side::Client, Side::Upstream),
            &c.bytes_up
        ));
        let mut to_client = pin!(pump(
            ur,
            &client,
            (Side::Upstream, Side::Client),
            &c.bytes_down
        ));
        let (mut up_done, mut down_done) = (false, false);
        loop {
            tokio::select! {
                r = &mut to_up, if !up_done => match r {
                    Ok(()) => up_done = true,
                    Err(side) => break Some(side),
                },
                r = &mut to_client, if !down_done => match r {
                    Ok(()) => down_done = true,
                    Err(side) => break Some(side),
                },
                _ = stop.wait_for(|s| *s) => {
                    add(&c.stopped, 1);
                    break None;
                }
            }
            if up_done && down_done {
                break None;
            }
        }
    };
    c.record_splice(started.elapsed());
    match end {
        Some(Side::Client) => {
            add(&c.client_errors, 1);
            // Linger zero: the close is an RST, as the client's was.
            #[allow(deprecated)]
            let _ = up.set_linger(Some(Duration::ZERO));
            drop(up);
        }
        Some(Side::Upstream) => {
            add(&c.upstream_errors, 1);
            client.abort();
        }
        // Done both ways, or stopped: dropping closes both sides (FIN).
        None => {}
    }
}
