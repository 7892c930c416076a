//! `smrnet lab`: a private network namespace with `smrnetd` on a TUN device
//! inside it, for tests, benchmarks and the demo.
//!
//! The kernel side of the link is 198.18.0.1/15 and fd00:5eed::1/64 inside the
//! namespace; the daemon answers as 198.18.0.2 and fd00:5eed::2. Those
//! addresses exist only inside the namespace, so every packet a lab carries
//! stays there (benchmarking range, RFC 2544; a ULA prefix, RFC 4193). The
//! daemon process itself, and its metrics listener on 127.0.0.1, stay in the
//! namespace the lab was started from.
//!
//! Invariant: everything a lab creates is owned by a guard ([`Netns`],
//! [`Daemon`]) until it is either removed or explicitly handed to a state
//! file, so a failure or an interrupt at any step removes what exists so far.

mod cli;
mod daemon;
mod http;
mod interrupt;
mod netns;
mod prometheus;
mod state;

pub use cli::{DownArgs, ExecArgs, LabCommand, UpArgs, default_daemon};
pub use daemon::{Daemon, STOP_GRACE};
pub use http::http_get;
pub use interrupt::install_teardown as remove_labs_on_signal;
pub use interrupt::{install as stop_on_signal, interrupted};
pub use netns::Netns;
pub(crate) use netns::ip;
pub use prometheus::{Prometheus, PrometheusState};
pub use state::{LabState, run_dir};

use crate::load::scrape::Samples;
use smrnetd::metrics::names as metric;
use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

/// Every lab namespace is named `smrnet-lab-<id>`.
pub const NETNS_PREFIX: &str = "smrnet-lab-";
/// The TUN device's name inside the namespace.
pub const DEVICE: &str = "smr0";
/// The kernel's end of the link, inside the namespace.
pub const KERNEL_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const KERNEL_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x5eed, 0, 0, 0, 0, 0, 1);
/// The address the daemon answers on.
pub const DAEMON_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const DAEMON_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x5eed, 0, 0, 0, 0, 0, 2);
pub const PREFIX_V4: u8 = 15;
pub const PREFIX_V6: u8 = 64;
/// The spoofed-source prefixes `smrnet load syn` draws from by default. The
/// lab routes each toward the daemon (a route via the daemon's address on
/// the device), so they are networks behind the daemon, not on the link:
/// the IPv4 one is carved out of the connected /15 by a longer route, the
/// IPv6 one is the /64 next to the connected one. Nothing in the lab owns
/// an address in them.
pub const SPOOF_V4: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 19, 128, 0), 17);
pub const SPOOF_V6: (Ipv6Addr, u8) = (Ipv6Addr::new(0xfd00, 0x5eed, 0, 1, 0, 0, 0, 0), 64);
/// More kernel-side IPv4 addresses, 198.18.0.16 to 198.18.0.31, so load can
/// come from many sources: with `IP_BIND_ADDRESS_NO_PORT` each source address
/// gives the kernel a whole local port range per target, so 17 addresses
/// carry over a million connections to one daemon port (see `smrnet load`).
pub const EXTRA_CLIENT_V4_FIRST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 16);
pub const EXTRA_CLIENT_V4_COUNT: u8 = 16;
/// The local port range set inside every lab namespace (the kernel's
/// default, 32768-60999, would cap each source address at 28k connections).
pub const LOCAL_PORT_RANGE: (u16, u16) = (1024, 65535);
/// The TUN device's transmit queue length (each queue's ring) in a lab.
pub const TUN_TXQUEUELEN: u32 = 16_384;

/// Every kernel-side IPv4 address of a lab: [`KERNEL_V4`], then the extras.
pub fn client_addrs_v4() -> Vec<IpAddr> {
    let first = u32::from(EXTRA_CLIENT_V4_FIRST);
    std::iter::once(IpAddr::V4(KERNEL_V4))
        .chain((0..u32::from(EXTRA_CLIENT_V4_COUNT)).map(|i| IpAddr::V4((first + i).into())))
        .collect()
}

/// The services every lab starts, by well-known port.
pub const ECHO_PORT: u16 = 7;
pub const DISCARD_PORT: u16 = 9;
pub const HTTP_PORT: u16 = 80;
/// How long a failed start-up waits for a dying daemon, so that its own
/// error is reported rather than the failure it caused.
const DYING_GRACE: Duration = Duration::from_secs(1);
/// The metrics address `lab up` tries first (the daemon's default).
pub const DEFAULT_METRICS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9464);

/// What a lab should run.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// The `smrnetd` binary.
    pub daemon: PathBuf,
    /// `--workers` for the daemon; its own default (one per CPU) when `None`.
    pub workers: Option<usize>,
    /// The metrics listener; port 0 picks a free port on that address.
    pub metrics: SocketAddr,
    /// More daemon flags, appended after the lab's own (e.g. `--user nobody`).
    pub extra_args: Vec<OsString>,
    /// Pass the lab's echo/discard/http `--listen` flags; false leaves the
    /// listeners to a `--config` file in `extra_args` (flags would win over
    /// it, on start and on every SIGHUP). The file must listen on port 80.
    pub listen_flags: bool,
    /// Bound on the whole start-up: device, addresses, metrics, first connect.
    pub ready_timeout: Duration,
    /// Where the daemon's log goes (`<dir>/lab-<id>.log`).
    pub log_dir: PathBuf,
}

impl LabConfig {
    pub fn new(daemon: impl Into<PathBuf>) -> LabConfig {
        LabConfig {
            daemon: daemon.into(),
            workers: None,
            metrics: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            extra_args: Vec::new(),
            listen_flags: true,
            ready_timeout: Duration::from_secs(15),
            log_dir: std::env::temp_dir(),
        }
    }
}

/// A running lab: the namespace and the daemon, both removed on drop.
#[derive(Debug)]
pub struct Lab {
    id: String,
    metrics: SocketAddr,
    // Field order is drop order: Prometheus stops before the daemon it
    // scrapes, and the daemon before its namespace goes.
    prometheus: Option<Prometheus>,
    daemon: Daemon,
    netns: Netns,
}

impl Lab {
    /// Create the namespace, start the daemon, configure the link, and wait
    /// (bounded by `cfg.ready_timeout`) until the metrics endpoint answers
    /// and a TCP connection from inside the namespace succeeds.
    pub fn up(cfg: &LabConfig) -> Result<Lab, LabError> {
        preflight()?;
        // A taken port would only show as the daemon's death after the
        // namespace and the device exist: refuse before creating anything.
        if cfg.metrics.port() != 0 {
            match std::net::TcpListener::bind(cfg.metrics) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    return Err(LabError::MetricsInUse(cfg.metrics));
                }
                Err(e) => {
                    return Err(LabError::io(
                        format!("the metrics address {} cannot be used", cfg.metrics),
                        e,
                    ));
                }
            }
        }
        let deadline = Instant::now() + cfg.ready_timeout;
        let id = unique_id();
        let netns = Netns::create(&format!("{NETNS_PREFIX}{id}"))?;
        let metrics = if cfg.metrics.port() == 0 {
            free_port(cfg.metrics.ip())?
        } else {
            cfg.metrics
        };
        let log = cfg.log_dir.join(format!("lab-{id}.log"));
        let mut args = daemon_args(netns.name(), metrics, cfg.workers, &[]);
        if !cfg.listen_flags {
            strip_listen_flags(&mut args);
        }
        // `SMRNET_LAB_OFFLOAD=off` (or `on`) runs every lab's daemon so,
        // unless the lab's own flags say otherwise: how the end-to-end
        // suite is run both ways.
        if let Some(mode) = std::env::var_os("SMRNET_LAB_OFFLOAD")
            && !cfg.extra_args.iter().any(|a| a == "--offload")
        {
            args.push("--offload".into());
            args.push(mode);
        }
        args.extend(cfg.extra_args.iter().cloned());
        let daemon = Daemon::spawn(&cfg.daemon, &args, &log)?;
        let mut lab = Lab {
            id,
            metrics,
            prometheus: None,
            daemon,
            netns,
        };
        let ready = lab
            .configure_link(deadline)
            .and_then(|()| lab.wait_ready(deadline));
        match ready {
            Ok(()) => Ok(lab),
            // A daemon that died explains a failure better than whatever
            // failed next (an `ip` command on the device it took with it).
            // It may still be exiting: give it a moment (an error path only).
            Err(LabError::Interrupted) => Err(LabError::Interrupted),
            Err(e) => match lab.daemon.wait_timeout(DYING_GRACE) {
                Ok(Some(status)) => Err(LabError::DaemonExited {
                    status: status.to_string(),
                    log_tail: daemon::log_tail(lab.log()),
                }),
                _ => match e {
                    LabError::Timeout { what, .. } => Err(LabError::Timeout {
                        what,
                        log_tail: daemon::log_tail(lab.log()),
                    }),
                    e => Err(e),
                },
            },
        }
    }

    /// The daemon creates the TUN device and sets the kernel's end of it
    /// (`--tun-ipv4`, `--tun-ipv6`); once the device shows up in the
    /// namespace, make sure of both addresses and the link state, so a lab
    /// does not depend on when the daemon gets to it.
    fn configure_link(&mut self, deadline: Instant) -> Result<(), LabError> {
        let ns = self.netns.name().to_string();
        wait_until(
            deadline,
            "the TUN device to appear in the namespace",
            || {
                self.daemon.check_running()?;
                Ok(netns::ip_ok(&["-n", &ns, "link", "show", DEVICE]))
            },
        )?;
        let v4 = format!("{KERNEL_V4}/{PREFIX_V4}");
        let v6 = format!("{KERNEL_V6}/{PREFIX_V6}");
        // `replace`: the daemon may already have set them itself.
        netns::ip(&["-n", &ns, "addr", "replace", &v4, "dev", DEVICE])?;
        netns::ip(&[
            "-n", &ns, "-6", "addr", "replace", &v6, "dev", DEVICE, "nodad",
        ])?;
        for extra in client_addrs_v4().iter().skip(1) {
            netns::ip(&[
                "-n",
                &ns,
                "addr",
                "replace",
                &format!("{extra}/32"),
                "dev",
                DEVICE,
            ])?;
        }
        // The kernel drops what it sends to a TUN queue whose ring (one
        // txqueuelen deep, 500 by default) is full: a mass close of 100k
        // connections then loses FINs, and their exponential backoff
        // keeps connections around for minutes.
        netns::ip(&[
            "-n",
            &ns,
            "link",
            "set",
            DEVICE,
            "txqueuelen",
            &TUN_TXQUEUELEN.to_string(),
        ])?;
        netns::ip(&["-n", &ns, "link", "set", DEVICE, "up"])?;
        // Sysctls under /proc/sys/net are those of the opening thread's
        // namespace.
        let (lo, hi) = LOCAL_PORT_RANGE;
        self.in_netns(|| {
            std::fs::write(
                "/proc/sys/net/ipv4/ip_local_port_range",
                format!("{lo} {hi}"),
            )
        })?
        .map_err(|e| LabError::io("widen the namespace's local port range", e))?;
        // The connected routes (198.18.0.0/15, fd00:5eed::/64 via the device)
        // come with the addresses; the spoof prefixes are routed via the
        // daemon's address (after the link is up, when the gateway is
        // reachable). Nothing else is routed into the lab.
        let (v4net, v4len) = SPOOF_V4;
        netns::ip(&[
            "-n",
            &ns,
            "route",
            "replace",
            &format!("{v4net}/{v4len}"),
            "via",
            &DAEMON_V4.to_string(),
            "dev",
            DEVICE,
        ])?;
        let (v6net, v6len) = SPOOF_V6;
        netns::ip(&[
            "-n",
            &ns,
            "-6",
            "route",
            "replace",
            &format!("{v6net}/{v6len}"),
            "via",
            &DAEMON_V6.to_string(),
            "dev",
            DEVICE,
        ])?;
        Ok(())
    }

    fn wait_ready(&mut self, deadline: Instant) -> Result<(), LabError> {
        let metrics = self.metrics;
        wait_until(deadline, "the metrics endpoint", || {
            self.daemon.check_running()?;
            Ok(http_get(metrics, "/metrics", Duration::from_millis(500))
                .is_ok_and(|(status, _)| status == 200))
        })?;
        // One connection over each family proves both paths; the v6 one
        // also waits out anything the kernel still does to the new link.
        for (what, ip) in [
            (
                "a TCP connection over IPv4 from inside the namespace",
                IpAddr::V4(DAEMON_V4),
            ),
            (
                "a TCP connection over IPv6 from inside the namespace",
                IpAddr::V6(DAEMON_V6),
            ),
        ] {
            let probe = SocketAddr::new(ip, HTTP_PORT);
            wait_until(deadline, what, || {
                self.daemon.check_running()?;
                self.in_netns(|| {
                    TcpStream::connect_timeout(&probe, Duration::from_millis(300)).is_ok()
                })
            })?;
        }
        // The probes' last ACKs and closes may still be on their way: a lab
        // is handed over quiet, with both probes counted and gone, so a
        // caller's first scrape is a clean baseline.
        wait_until(
            deadline,
            "the readiness probes to be counted and closed",
            || {
                self.daemon.check_running()?;
                let Ok((200, body)) = http_get(metrics, "/metrics", Duration::from_millis(500))
                else {
                    return Ok(false);
                };
                let m = Samples::parse(&body);
                let zero = |name| m.sum(name) == Some(0.0);
                Ok(zero(metric::TABLE_ENTRIES)
                    && zero(metric::SYNCACHE_ENTRIES)
                    && m.sum(metric::TCP_PASSIVE_OPENS).is_some_and(|n| n >= 2.0))
            },
        )
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics
    }

    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics)
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    pub fn log(&self) -> &Path {
        self.daemon.log()
    }

    /// Start a Prometheus server that scrapes this lab's daemon and
    /// evaluates the alerting rules; it goes when the lab does.
    pub fn start_prometheus(
        &mut self,
        listen: SocketAddr,
        timeout: Duration,
    ) -> Result<&Prometheus, LabError> {
        let dir = self
            .daemon
            .log()
            .with_file_name(format!("lab-{}-prometheus", self.id));
        let p = Prometheus::start(&dir, listen, self.metrics, Instant::now() + timeout)?;
        Ok(self.prometheus.insert(p))
    }

    /// The daemon, for tests that signal it or wait for its exit.
    pub fn daemon_mut(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    /// Run `f` on a thread inside the lab's namespace (where the daemon's
    /// addresses are reachable) and return its result.
    pub fn in_netns<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R, LabError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.netns.enter_current_thread().map_err(|e| {
                    LabError::io(format!("enter namespace {}", self.netns.name()), e)
                })?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// `ip netns exec NS program`: a command that runs inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.netns.name(), program]);
        cmd
    }

    /// The daemon's `/metrics` text.
    pub fn scrape(&self) -> Result<String, LabError> {
        let (status, body) = http_get(self.metrics, "/metrics", Duration::from_secs(5))
            .map_err(|e| LabError::io(format!("scrape {}", self.metrics_url()), e))?;
        if status != 200 {
            return Err(LabError::Daemon(format!(
                "{} answered HTTP {status}",
                self.metrics_url()
            )));
        }
        Ok(body)
    }

    /// Hand the lab to a state file: the daemon and the namespace outlive
    /// this process until `smrnet lab down`.
    pub fn detach(self) -> Result<LabState, LabError> {
        let Lab {
            id,
            metrics,
            prometheus,
            daemon,
            netns,
        } = self;
        let state = LabState {
            id,
            netns: netns.name().to_string(),
            device: DEVICE.to_string(),
            pid: daemon.pid(),
            daemon_addrs: vec![IpAddr::V4(DAEMON_V4), IpAddr::V6(DAEMON_V6)],
            metrics,
            log: daemon.log().to_path_buf(),
            prometheus: prometheus.as_ref().map(|p| p.state().clone()),
        };
        // If saving fails, the guards still own everything and remove it.
        state.save()?;
        if let Some(p) = prometheus {
            p.detach();
        }
        daemon.detach();
        netns.keep();
        Ok(state)
    }

    /// Stop the daemon (SIGTERM, then SIGKILL after [`STOP_GRACE`]) and
    /// delete the namespace, reporting failures instead of printing them.
    pub fn down(mut self) -> Result<Option<ExitStatus>, LabError> {
        // Dropping it stops it and removes its directory.
        self.prometheus = None;
        let status = match self.daemon.stop(STOP_GRACE) {
            Ok((status, _)) => Some(status),
            // Already stopped by the caller (e.g. a SIGTERM test).
            Err(LabError::Daemon(_)) => None,
            Err(e) => return Err(e),
        };
        let Lab { netns, .. } = self;
        netns.delete()?;
        Ok(status)
    }
}

/// Tear down a detached lab from its record.
pub fn down_detached(state: &LabState) -> Result<(), LabError> {
    if let Some(p) = &state.prometheus {
        prometheus::stop_detached(p)?;
    }
    daemon::stop_pid(state.pid, &state.netns, STOP_GRACE)?;
    Netns::adopt(&state.netns).delete()?;
    let _ = std::fs::remove_file(&state.log);
    state.remove()
}

/// The daemon's command line for a lab. Kept in one place: it is the whole
/// contract between the lab and `smrnetd`.
fn daemon_args(
    netns: &str,
    metrics: SocketAddr,
    workers: Option<usize>,
    extra: &[OsString],
) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--netns".to_string(),
        netns.to_string(),
        "--device".to_string(),
        DEVICE.to_string(),
        "--tun-ipv4".to_string(),
        format!("{KERNEL_V4}/{PREFIX_V4}"),
        "--tun-ipv6".to_string(),
        format!("{KERNEL_V6}/{PREFIX_V6}"),
        "--address".to_string(),
        DAEMON_V4.to_string(),
        "--address".to_string(),
        DAEMON_V6.to_string(),
        "--metrics".to_string(),
        metrics.to_string(),
        "--listen".to_string(),
        format!("0.0.0.0:{ECHO_PORT}=echo"),
        "--listen".to_string(),
        format!("0.0.0.0:{DISCARD_PORT}=discard"),
        "--listen".to_string(),
        format!("0.0.0.0:{HTTP_PORT}=http"),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    if let Some(n) = workers {
        args.push("--workers".into());
        args.push(n.to_string().into());
    }
    args.extend(extra.iter().cloned());
    args
}

/// Removes every `--listen VALUE` pair.
fn strip_listen_flags(args: &mut Vec<OsString>) {
    let mut out = Vec::with_capacity(args.len());
    let mut it = core::mem::take(args).into_iter();
    while let Some(a) = it.next() {
        if a == "--listen" {
            it.next();
        } else {
            out.push(a);
        }
    }
    *args = out;
}

/// Refuse early, with a message a person can act on, when the lab cannot work.
pub fn preflight() -> Result<(), LabError> {
    if !rustix::process::geteuid().is_root() {
        return Err(LabError::NotRoot);
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err(LabError::NoTun);
    }
    match Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => Err(LabError::NoIp),
    }
}

/// Six hex digits from the pid, the time and a counter: unique among labs
/// started on one machine at the same time, short enough to type.
fn unique_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    // Relaxed: only uniqueness within this process matters.
    h.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.write_u128(now.as_nanos());
    let id = format!("{:06x}", h.finish() & 0xff_ffff);
    if Path::new("/run/netns")
        .join(format!("{NETNS_PREFIX}{id}"))
        .exists()
    {
        unique_id()
    } else {
        id
    }
}

/// A port on `ip` that was free a moment ago.
fn free_port(ip: IpAddr) -> Result<SocketAddr, LabError> {
    let l = std::net::TcpListener::bind((ip, 0))
        .map_err(|e| LabError::io(format!("find a free port on {ip}"), e))?;
    l.local_addr()
        .map_err(|e| LabError::io("read a listener's address", e))
}

/// Poll `ready` every 20 ms until it says yes, the deadline passes, it
/// fails, or the user interrupts.
fn wait_until(
    deadline: Instant,
    what: &str,
    mut ready: impl FnMut() -> Result<bool, LabError>,
) -> Result<(), LabError> {
    loop {
        if interrupt::interrupted() {
            return Err(LabError::Interrupted);
        }
        if ready()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(LabError::Timeout {
                what: what.to_string(),
                log_tail: String::new(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Why a lab could not be started, reached or stopped.
#[derive(Debug)]
pub enum LabError {
    NotRoot,
    NoTun,
    NoIp,
    Ip {
        args: String,
        stderr: String,
    },
    Io {
        context: String,
        source: std::io::Error,
    },
    Daemon(String),
    MetricsInUse(SocketAddr),
    DaemonExited {
        status: String,
        log_tail: String,
    },
    Timeout {
        what: String,
        log_tail: String,
    },
    Interrupted,
    State(String),
}

impl LabError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> LabError {
        LabError::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabError::NotRoot => write!(
                f,
                "the lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN): it creates a network \
                 namespace and opens a TUN device; run it with sudo"
            ),
            LabError::NoTun => write!(
                f,
                "/dev/net/tun does not exist: load the tun module (modprobe tun) or, in a \
                 container, pass the device in"
            ),
            LabError::NoIp => write!(f, "the `ip` command is missing: install iproute2"),
            LabError::Ip { args, stderr } => write!(f, "`ip {args}` failed: {stderr}"),
            LabError::Io { context, source } => write!(f, "{context}: {source}"),
            LabError::Daemon(msg) => write!(f, "{msg}"),
            LabError::MetricsInUse(addr) => write!(
                f,
                "the metrics address {addr} is in use by another process: pass another \
                 --metrics ADDR, or leave --metrics out for a free port"
            ),
            // The daemon's own last error line first, then its log.
            LabError::DaemonExited { status, log_tail } => match log_tail
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("smrnetd: "))
            {
                Some(why) => write!(
                    f,
                    "smrnetd exited ({status}): {why}\nthe end of its log:\n{log_tail}"
                ),
                None => write!(
                    f,
                    "smrnetd exited ({status}); the end of its log:\n{log_tail}"
                ),
            },
            LabError::Timeout { what, log_tail } if log_tail.is_empty() => {
                write!(f, "timed out waiting for {what}")
            }
            LabError::Timeout { what, log_tail } => write!(
                f,
                "timed out waiting for {what}; the end of smrnetd's log:\n{log_tail}"
            ),
            LabError::Interrupted => write!(f, "interrupted; the lab was removed"),
            LabError::State(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for LabError {}

#[cfg(test)]
mod tests {
    use super::*;
    use smrnetd::config::{Args, Service};

    /// The lab's command line is the whole contract with `smrnetd`: it must
    /// parse, and mean what the lab prints.
    #[test]
    fn daemon_accepts_the_labs_command_line() {
        let metrics: SocketAddr = "127.0.0.1:9500".parse().unwrap();
        let mut argv = vec![OsString::from("smrnetd")];
        argv.extend(daemon_args("smrnet-lab-abc123", metrics, Some(2), &[]));
        let cfg = match Args::load(argv) {
            Ok(cfg) => cfg,
            Err(e) => panic!("smrnetd rejects the lab's flags: {e:?}"),
        };
        assert_eq!(cfg.netns.as_deref(), Some("smrnet-lab-abc123"));
        assert_eq!(cfg.device, DEVICE);
        assert_eq!(cfg.workers, 2);
        assert_eq!(cfg.metrics, Some(metrics));
        assert_eq!(
            cfg.addresses,
            vec![IpAddr::V4(DAEMON_V4), IpAddr::V6(DAEMON_V6)]
        );
        let v4 = cfg.tun_ipv4.expect("kernel-side IPv4");
        assert_eq!((v4.addr, v4.prefix), (KERNEL_V4, PREFIX_V4));
        let v6 = cfg.tun_ipv6.expect("kernel-side IPv6");
        assert_eq!((v6.addr, v6.prefix), (KERNEL_V6, PREFIX_V6));
        let ports: Vec<(u16, Service)> = cfg
            .listeners
            .iter()
            .map(|l| (l.addr.port(), l.service))
            .collect();
        assert_eq!(
            ports,
            vec![
                (ECHO_PORT, Service::Echo),
                (DISCARD_PORT, Service::Discard),
                (HTTP_PORT, Service::Http)
            ]
        );
    }

    #[test]
    fn extra_daemon_flags_come_last_and_are_kept() {
        let extra = [OsString::from("--user"), OsString::from("nobody")];
        let args = daemon_args("ns", DEFAULT_METRICS, None, &extra);
        assert_eq!(&args[args.len() - 2..], &extra);
        assert!(!args.iter().any(|a| a == "--workers"));
    }

    #[test]
    fn client_addresses_are_distinct_and_inside_the_lab_prefix() {
        let addrs = client_addrs_v4();
        assert_eq!(addrs.len(), 1 + usize::from(EXTRA_CLIENT_V4_COUNT));
        assert_eq!(addrs[0], IpAddr::V4(KERNEL_V4));
        let mut unique = addrs.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), addrs.len());
        for a in &addrs {
            assert_ne!(*a, IpAddr::V4(DAEMON_V4));
            assert!(crate::load::safety::check_target(*a, &[]).is_ok(), "{a}");
        }
    }

    #[test]
    fn lab_ids_are_six_hex_digits_and_differ() {
        let a = unique_id();
        let b = unique_id();
        assert_eq!(a.len(), 6);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
