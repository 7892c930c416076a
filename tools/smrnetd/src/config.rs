//! `smrnetd`'s configuration: command-line flags over an optional TOML file
//! over defaults, resolved into one checked [`Config`].
//!
//! Every setting has one name, used both as the flag (`--pool-cap`) and as
//! the TOML key (`pool-cap = ...`); a flag given on the command line wins over
//! the file. Values that need parsing (addresses, listeners, modes) are kept
//! as text until [`Args::resolve`], so every bad value, from either source,
//! becomes one [`ConfigError`] naming its field — which `main` prints on one
//! line before exiting with status 2, as clap does for a bad flag.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

/// Exit status for a bad flag or configuration value (clap's too).
pub const EXIT_USAGE: i32 = 2;

const LONG_ABOUT: &str = "\
smrnetd runs the smrnet TCP/IP stack on a Linux TUN device (IFF_MULTI_QUEUE: one queue \
and one packet thread per worker) and serves echo (RFC 862), discard (RFC 863) and a \
small HTTP/1.1 responder on it, or forwards connections to a loopback upstream \
(--listen ADDR:PORT=forward:127.0.0.1:8080: only established connections reach it), \
with Prometheus metrics on 127.0.0.1:9464.

The kernel side of the device gets --tun-ipv4/--tun-ipv6; the stack answers for \
--address (by default 198.18.0.2 and fd00:5eed::2, reached through the device). \
Opening the device needs root or CAP_NET_ADMIN; --user drops privileges right after. \
Every flag may also be given as a key of the same name in the --config TOML file; \
flags win. A bad value is reported on one line naming the field, with exit status 2.

SIGINT or SIGTERM stops it: listeners close, connections are closed (reset after 0.7 s), \
and it exits 0 within 2 s. A packet worker that fails or panics takes the daemon down \
with its reason and exit status 1, as does the deletion of the device or of its --netns.

SIGHUP re-reads the flags and the --config file and applies the listeners (added, removed, \
service changed), `log`, and the SYN-cache and accept-queue limits live (a lowered limit \
applies to new entries; `syncache-limit` at most its start value); a change to any other \
field, or a file that does not parse, is refused with the reason and changes nothing. The kernel side's addresses and MTU are put \
back when they go missing (the kernel drops IPv6 addresses on link down).";

/// Flags, and the keys of the TOML file: every field optional, so that
/// "not given" can fall through to the file and then to the default.
#[derive(Parser, Deserialize, Debug, Default, Clone, PartialEq)]
#[command(name = "smrnetd", version, about = "The smrnet TCP/IP stack as a daemon on a multi-queue TUN device", long_about = LONG_ABOUT)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Args {
    /// TOML file with any of these settings (keys named like the flags, without
    /// the dashes in front: `workers = 2`, `listen = ["0.0.0.0:7=echo"]`).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// TUN device name; created if missing. [default: smrnet0]
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,

    /// Attach to an existing device as it is: do not set its addresses, MTU or
    /// link state (whoever created it did). [default: false]
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub attach: Option<bool>,

    /// Kernel-side IPv4 address of the device, with prefix; `none` for no IPv4.
    /// [default: 198.18.0.1/24]
    #[arg(long, value_name = "ADDR/LEN")]
    pub tun_ipv4: Option<String>,

    /// Kernel-side IPv6 address of the device, with prefix; `none` for no IPv6.
    /// [default: fd00:5eed::1/64]
    #[arg(long, value_name = "ADDR/LEN")]
    pub tun_ipv6: Option<String>,

    /// An address the stack owns and answers for (repeat for more).
    /// [default: 198.18.0.2 and fd00:5eed::2]
    #[arg(long = "address", value_name = "IP")]
    #[serde(default, rename = "address")]
    pub addresses: Vec<String>,

    /// Device MTU (576..=65535). [default: 1500]
    #[arg(long, value_name = "BYTES")]
    pub mtu: Option<u32>,

    /// Open the device inside this existing network namespace
    /// (/run/netns/NAME); the daemon and its metrics listener stay where they
    /// were started (the forward thread enters it: a forward upstream is
    /// the namespace's loopback).
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,

    /// After opening the device, drop to this user (and its groups); the
    /// daemon keeps serving unprivileged.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Packet worker threads, one TUN queue each. [default: number of CPUs]
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// A listener and its service: `ADDR:PORT=echo|discard|http|echo-async`
    /// (echo-async: echo through the tokio API, to measure it), or
    /// `ADDR:PORT=forward:UPSTREAM` to splice each connection to a new
    /// kernel TCP connection to UPSTREAM (a loopback ADDR:PORT, inside
    /// --netns when given), half-close carried, an RST to the client when
    /// the upstream refuses or does not answer within 3 s (repeat for
    /// more). An unspecified address (0.0.0.0 or [::]) listens on every
    /// address of the stack, both families.
    /// [default: 0.0.0.0:7=echo 0.0.0.0:9=discard 0.0.0.0:80=http]
    #[arg(long = "listen", value_name = "ADDR:PORT=SERVICE")]
    #[serde(default, rename = "listen")]
    pub listeners: Vec<String>,

    /// Body size of the http service's responses (the text `smrnet\n`
    /// repeated and cut to this length). [default: 1024]
    #[arg(long, value_name = "BYTES")]
    pub http_body_bytes: Option<usize>,

    /// Connections expected at first: the table's initial (and smallest)
    /// bucket count; it grows online with the load and shrinks back.
    /// [default: 1024]
    #[arg(long, value_name = "N")]
    pub table_size: Option<usize>,

    /// Cap on connection blocks, live plus waiting for their grace period.
    /// [default: 262144]
    #[arg(long, value_name = "N")]
    pub pool_cap: Option<usize>,

    /// SYN-cache entries, all listeners together. [default: 16384]
    #[arg(long, value_name = "N")]
    pub syncache_limit: Option<usize>,

    /// SYN-cache entries per listener. [default: 4096]
    #[arg(long, value_name = "N")]
    pub syncache_per_listener: Option<usize>,

    /// Completed handshakes a listener holds before the service accepts them.
    /// [default: 1024]
    #[arg(long, value_name = "N")]
    pub accept_queue: Option<usize>,

    /// SMR read-section protocol of the connection table:
    /// default | lazy | deferred. [default: default]
    #[arg(long, value_name = "MODE")]
    pub smr_mode: Option<String>,

    /// Connection-table backend: `smr` (lock-free lookups under SMR, PCBs
    /// from the SMR pool), or a baseline for comparison that keeps
    /// reference-counted slots in `dashmap`, `rwlock` (one
    /// RwLock<HashMap>) or `papaya`, capped at --pool-cap entries; the
    /// baselines' pool and chain metrics read zero. [default: smr]
    #[arg(long, value_name = "BACKEND")]
    pub pcb_backend: Option<String>,

    /// Which TUN queue (worker) each arriving frame goes to: `ebpf` (a
    /// steering program picks it from the 4-tuple with the stack's flow
    /// function, so a connection's segments all reach its home worker;
    /// falls back to `off`, logged, where the kernel refuses it) or `off`
    /// (the kernel's default flow steering). `force-fallback` is `ebpf` with
    /// the kernel's refusal forced (tests the fallback path). [default: ebpf]
    #[arg(long, value_name = "MODE")]
    pub steering: Option<String>,

    /// TUN offload: `on` reads and writes 64 KiB TCP super-segments with
    /// the virtio-net header and leaves checksums to the kernel (falls back
    /// to `off`, logged, where the kernel refuses it); `off` moves one
    /// MTU-sized frame per system call and sums every checksum.
    /// `force-fallback` is `on` with the refusal forced (tests the fallback
    /// path). [default: on]
    #[arg(long, value_name = "MODE")]
    pub offload: Option<String>,

    /// Prometheus listener address, or `off`; port 0 picks a free port (the
    /// bound address is logged at start-up). [default: 127.0.0.1:9464]
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<String>,

    /// Log filter (tracing EnvFilter syntax); RUST_LOG is used when this is
    /// not given. [default: info]
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,

    /// Write every frame received and sent to FILE (pcap, LINKTYPE_RAW).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Stop capturing once the pcap file would exceed this size.
    /// [default: 67108864]
    #[arg(long, value_name = "BYTES")]
    pub pcap_max_bytes: Option<u64>,

    /// INSECURE, for tests only: derive every secret (ISNs, SYN cookies,
    /// hash keys, ephemeral ports) from N, so runs repeat exactly and anyone
    /// who knows N can predict them. Logged as a warning at start-up.
    /// [default: random keys]
    #[arg(long, value_name = "N")]
    pub insecure_deterministic_seed: Option<u64>,

    /// Refused: the old name of --insecure-deterministic-seed, kept only to
    /// say so.
    #[arg(long, value_name = "N", hide = true)]
    pub seed: Option<u64>,
}

/// What a listener serves.
/// `--offload`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffloadMode {
    On,
    Off,
    /// `on`, with the kernel's refusal simulated before asking it.
    ForceFallback,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// RFC 862: send back what arrives.
    Echo,
    /// RFC 863: read and throw away.
    Discard,
    /// A small HTTP/1.1 responder.
    Http,
    /// Splices each connection to a kernel TCP connection to this
    /// upstream (loopback only; see `forward`).
    Forward(SocketAddr),
    /// Echo served through the tokio API (`smrnet_tokio`) on the forward
    /// thread instead of by the workers: the API's cost beside `echo`.
    EchoAsync,
}

impl Service {
    /// Served through the tokio API by the forward thread, not by the
    /// packet workers' sessions.
    pub fn on_async_api(self) -> bool {
        matches!(self, Service::Forward(_) | Service::EchoAsync)
    }
}

impl Service {
    /// The name used on the command line and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Service::Echo => "echo",
            Service::Discard => "discard",
            Service::Http => "http",
            Service::Forward(_) => "forward",
            Service::EchoAsync => "echo-async",
        }
    }
}

/// One `--listen`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenSpec {
    /// Where to listen.
    pub addr: SocketAddr,
    /// What to serve there.
    pub service: Service,
}

/// A kernel-side address of the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IfAddr<A> {
    /// The address.
    pub addr: A,
    /// Its prefix length.
    pub prefix: u8,
}

/// The resolved, checked configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub device: String,
    pub attach: bool,
    pub tun_ipv4: Option<IfAddr<Ipv4Addr>>,
    pub tun_ipv6: Option<IfAddr<Ipv6Addr>>,
    pub addresses: Vec<IpAddr>,
    pub mtu: u16,
    pub netns: Option<String>,
    pub user: Option<String>,
    pub workers: usize,
    pub listeners: Vec<ListenSpec>,
    pub http_body_bytes: usize,
    pub table_size: usize,
    pub pool_cap: usize,
    pub syncache_limit: usize,
    pub syncache_per_listener: usize,
    pub accept_queue: usize,
    pub smr_mode: smr::Mode,
    pub pcb_backend: pcb::Backend,
    /// Load the eBPF steering program (`--steering ebpf`).
    pub steering_ebpf: bool,
    /// `--steering force-fallback`: ask, and take the refusal path as if
    /// the kernel had refused the program.
    pub steering_force_fallback: bool,
    /// `--offload`: asked for, and the refusal forced for a test.
    pub offload: OffloadMode,
    pub metrics: Option<SocketAddr>,
    pub log: Option<String>,
    pub pcap: Option<PathBuf>,
    pub pcap_max_bytes: u64,
    pub insecure_deterministic_seed: Option<u64>,
}

/// A bad setting: which field, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The flag / key name, without dashes (`pool-cap`), or `config` for the
    /// file itself.
    pub field: String,
    /// What is wrong, in words a person can act on.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn bad(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The start-up warning for a configuration that gives up random keys, if
/// it does.
pub fn insecure_seed_warning(cfg: &Config) -> Option<String> {
    cfg.insecure_deterministic_seed.map(|n| {
        format!(
            "INSECURE: insecure-deterministic-seed = {n}: every ISN, SYN cookie and hash key \
             is derived from it and predictable by anyone who knows it; for tests only, \
             never on a network you do not control"
        )
    })
}

/// The largest worker count accepted (a typo guard, not a tuning limit).
pub const MAX_WORKERS: usize = 256;
/// The largest HTTP body accepted.
pub const MAX_HTTP_BODY: usize = 16 << 20;

impl Args {
    /// Reads and parses a TOML file of settings.
    pub fn from_toml_file(path: &Path) -> Result<Args, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad("config", format!("cannot read {}: {e}", path.display())))?;
        Args::from_toml(&text).map_err(|mut e| {
            e.message = format!("{} (in {})", e.message, path.display());
            e
        })
    }

    /// Parses TOML settings; a bad key or value names the key.
    pub fn from_toml(text: &str) -> Result<Args, ConfigError> {
        toml::from_str::<Args>(text).map_err(|e| {
            // toml's message names the key for unknown keys and bad types;
            // the span tells which key a type error belongs to.
            let field = e
                .span()
                .and_then(|s| key_at(text, s.start))
                .unwrap_or_else(|| "config".to_owned());
            bad(&field, e.message().replace('\n', " "))
        })
    }

    /// `self` (flags) over `file`, field by field.
    pub fn over(self, file: Args) -> Args {
        Args {
            config: self.config.or(file.config),
            device: self.device.or(file.device),
            attach: self.attach.or(file.attach),
            tun_ipv4: self.tun_ipv4.or(file.tun_ipv4),
            tun_ipv6: self.tun_ipv6.or(file.tun_ipv6),
            addresses: if self.addresses.is_empty() {
                file.addresses
            } else {
                self.addresses
            },
            mtu: self.mtu.or(file.mtu),
            netns: self.netns.or(file.netns),
            user: self.user.or(file.user),
            workers: self.workers.or(file.workers),
            listeners: if self.listeners.is_empty() {
                file.listeners
            } else {
                self.listeners
            },
            http_body_bytes: self.http_body_bytes.or(file.http_body_bytes),
            table_size: self.table_size.or(file.table_size),
            pool_cap: self.pool_cap.or(file.pool_cap),
            syncache_limit: self.syncache_limit.or(file.syncache_limit),
            syncache_per_listener: self.syncache_per_listener.or(file.syncache_per_listener),
            accept_queue: self.accept_queue.or(file.accept_queue),
            smr_mode: self.smr_mode.or(file.smr_mode),
            pcb_backend: self.pcb_backend.or(file.pcb_backend),
            steering: self.steering.or(file.steering),
            offload: self.offload.or(file.offload),
            metrics: self.metrics.or(file.metrics),
            log: self.log.or(file.log),
            pcap: self.pcap.or(file.pcap),
            pcap_max_bytes: self.pcap_max_bytes.or(file.pcap_max_bytes),
            insecure_deterministic_seed: self
                .insecure_deterministic_seed
                .or(file.insecure_deterministic_seed),
            seed: self.seed.or(file.seed),
        }
    }

    /// Parses the command line and the `--config` file, then resolves.
    pub fn load(argv: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Config, LoadError> {
        let flags = Args::try_parse_from(argv).map_err(LoadError::Usage)?;
        let merged = match &flags.config {
            Some(path) => {
                let file = Args::from_toml_file(path).map_err(LoadError::Config)?;
                flags.over(file)
            }
            None => flags,
        };
        merged.resolve().map_err(LoadError::Config)
    }

    /// Loads the configuration again from this process's own command line
    /// (and the file it names), for a SIGHUP; the error is one line.
    pub fn load_again() -> Result<Config, String> {
        Args::load(std::env::args_os()).map_err(|e| match e {
            LoadError::Usage(e) => e.to_string().lines().next().unwrap_or_default().to_owned(),
            LoadError::Config(e) => e.to_string(),
        })
    }

    /// Fills in defaults and checks every value.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        if self.seed.is_some() {
            return Err(bad(
                "seed",
                "a fixed seed makes every ISN, SYN cookie and hash key predictable, so it \
                 is refused; leave it out for random keys, or, for a test that must repeat, \
                 say so with `insecure-deterministic-seed`",
            ));
        }
        let tun_ipv4 = match self.tun_ipv4.as_deref().unwrap_or("198.18.0.1/24") {
            "none" => None,
            s => Some(parse_ifaddr::<Ipv4Addr>("tun-ipv4", s, 32)?),
        };
        let tun_ipv6 = match self.tun_ipv6.as_deref().unwrap_or("fd00:5eed::1/64") {
            "none" => None,
            s => Some(parse_ifaddr::<Ipv6Addr>("tun-ipv6", s, 128)?),
        };
        let addresses = if self.addresses.is_empty() {
            let mut v = Vec::new();
            if tun_ipv4.is_some() {
                v.push(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)));
            }
            if tun_ipv6.is_some() {
                v.push(IpAddr::V6(Ipv6Addr::new(0xfd00, 0x5eed, 0, 0, 0, 0, 0, 2)));
            }
            v
        } else {
            let mut v = Vec::new();
            for a in &self.addresses {
                let ip: IpAddr = a
                    .parse()
                    .map_err(|_| bad("address", format!("`{a}` is not an IPv4 or IPv6 address")))?;
                if ip.is_unspecified() || ip.is_multicast() {
                    return Err(bad(
                        "address",
                        format!("`{a}` cannot be owned by the stack (unspecified or multicast)"),
                    ));
                }
                if !v.contains(&ip) {
                    v.push(ip);
                }
            }
            v
        };
        if addresses.is_empty() {
            return Err(bad(
                "address",
                "the stack owns no address: give --address, or a --tun-ipv4/--tun-ipv6 that is not `none`",
            ));
        }
        let mtu = self.mtu.unwrap_or(1500);
        if !(576..=65535).contains(&mtu) {
            return Err(bad("mtu", format!("{mtu} is outside 576..=65535")));
        }
        let workers = match self.workers {
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Some(n) if (1..=MAX_WORKERS).contains(&n) => n,
            Some(n) => return Err(bad("workers", format!("{n} is outside 1..={MAX_WORKERS}"))),
        };
        let listeners = if self.listeners.is_empty() {
            ["0.0.0.0:7=echo", "0.0.0.0:9=discard", "0.0.0.0:80=http"]
                .iter()
                .map(|s| parse_listen(s))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            self.listeners
                .iter()
                .map(|s| parse_listen(s))
                .collect::<Result<Vec<_>, _>>()?
        };
        for (i, l) in listeners.iter().enumerate() {
            if !l.addr.ip().is_unspecified() && !addresses.contains(&l.addr.ip()) {
                return Err(bad(
                    "listen",
                    format!(
                        "{} is not an address of the stack (add it with --address, or listen on 0.0.0.0)",
                        l.addr.ip()
                    ),
                ));
            }
            let clash = listeners[..i].iter().any(|o| {
                o.addr.port() == l.addr.port()
                    && (o.addr.ip() == l.addr.ip()
                        || o.addr.ip().is_unspecified()
                        || l.addr.ip().is_unspecified())
            });
            if clash {
                return Err(bad(
                    "listen",
                    format!(
                        "port {} is listed twice (an unspecified address covers every address of both families)",
                        l.addr.port()
                    ),
                ));
            }
        }
        let http_body_bytes = self.http_body_bytes.unwrap_or(1024);
        if http_body_bytes > MAX_HTTP_BODY {
            return Err(bad(
                "http-body-bytes",
                format!("{http_body_bytes} is above the limit of {MAX_HTTP_BODY}"),
            ));
        }
        let positive = |field: &str, v: Option<usize>, default: usize| match v {
            Some(0) => Err(bad(field, "must be at least 1")),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let table_size = positive("table-size", self.table_size, 1024)?;
        let pool_cap = positive("pool-cap", self.pool_cap, 262_144)?;
        let syncache_limit = positive("syncache-limit", self.syncache_limit, 16384)?;
        let syncache_per_listener =
            positive("syncache-per-listener", self.syncache_per_listener, 4096)?;
        let accept_queue = positive("accept-queue", self.accept_queue, 1024)?;
        let smr_mode = match self.smr_mode.as_deref().unwrap_or("default") {
            "default" => smr::Mode::Default,
            "lazy" => smr::Mode::Lazy,
            "deferred" => smr::Mode::Deferred,
            other => {
                return Err(bad(
                    "smr-mode",
                    format!("`{other}` is not one of default, lazy, deferred"),
                ));
            }
        };
        let pcb_backend = match self.pcb_backend.as_deref() {
            None => pcb::Backend::Smr,
            Some(name) => name.parse::<pcb::Backend>().map_err(|_| {
                bad(
                    "pcb-backend",
                    format!("`{name}` is not one of smr, dashmap, rwlock, papaya"),
                )
            })?,
        };
        let (steering_ebpf, steering_force_fallback) =
            match self.steering.as_deref().unwrap_or("ebpf") {
                "ebpf" => (true, false),
                "off" => (false, false),
                "force-fallback" => (true, true),
                other => {
                    return Err(bad(
                        "steering",
                        format!("`{other}` is not one of ebpf, off, force-fallback"),
                    ));
                }
            };
        let offload = match self.offload.as_deref().unwrap_or("on") {
            "on" => OffloadMode::On,
            "off" => OffloadMode::Off,
            "force-fallback" => OffloadMode::ForceFallback,
            other => {
                return Err(bad(
                    "offload",
                    format!("`{other}` is not one of on, off, force-fallback"),
                ));
            }
        };
        let metrics = match self.metrics.as_deref().unwrap_or("127.0.0.1:9464") {
            "off" => None,
            s => Some(s.parse::<SocketAddr>().map_err(|_| {
                bad(
                    "metrics",
                    format!("`{s}` is not ADDR:PORT (e.g. 127.0.0.1:9464) or `off`"),
                )
            })?),
        };
        let device = self.device.unwrap_or_else(|| "smrnet0".to_owned());
        if device.is_empty() || device.len() > 15 || device.contains(['/', ' ', '\0']) {
            return Err(bad(
                "device",
                format!(
                    "`{device}` is not a Linux interface name (1 to 15 characters, no `/` or spaces)"
                ),
            ));
        }
        if let Some(ns) = &self.netns
            && (ns.is_empty() || ns.contains('/') || ns == "." || ns == "..")
        {
            return Err(bad(
                "netns",
                format!("`{ns}` is not a namespace name under /run/netns"),
            ));
        }
        if let Some(u) = &self.user
            && u.is_empty()
        {
            return Err(bad("user", "empty user name"));
        }
        let pcap_max_bytes = self.pcap_max_bytes.unwrap_or(64 << 20);
        if pcap_max_bytes < crate::pcap::FILE_HEADER_LEN as u64 {
            return Err(bad(
                "pcap-max-bytes",
                "must hold at least the 24-byte file header",
            ));
        }
        Ok(Config {
            device,
            attach: self.attach.unwrap_or(false),
            tun_ipv4,
            tun_ipv6,
            addresses,
            mtu: mtu as u16,
            netns: self.netns,
            user: self.user,
            workers,
            listeners,
            http_body_bytes,
            table_size,
            pool_cap,
            syncache_limit,
            syncache_per_listener,
            accept_queue,
            smr_mode,
            pcb_backend,
            steering_ebpf,
            steering_force_fallback,
            offload,
            metrics,
            log: self.log,
            pcap: self.pcap,
            pcap_max_bytes,
            insecure_deterministic_seed: self.insecure_deterministic_seed,
        })
    }
}

/// Why loading failed: a flag clap rejected (print with clap, which exits 2
/// or 0 for --help), or a value we rejected.
#[derive(Debug)]
pub enum LoadError {
    Usage(clap::Error),
    Config(ConfigError),
}

/// The TOML key whose line holds byte `offset`, for error messages.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let line_start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next()?;
    let key = line.split('=').next()?.trim();
    (!key.is_empty() && !key.starts_with('[')).then(|| key.trim_matches('"').to_owned())
}

fn parse_ifaddr<A: core::str::FromStr>(
    field: &str,
    s: &str,
    max_prefix: u8,
) -> Result<IfAddr<A>, ConfigError> {
    let (a, p) = s.split_once('/').ok_or_else(|| {
        bad(
            field,
            format!("`{s}` needs a prefix length (ADDR/LEN), or `none`"),
        )
    })?;
    let addr = a
        .parse::<A>()
        .map_err(|_| bad(field, format!("`{a}` is not an address of this family")))?;
    let prefix = p
        .parse::<u8>()
        .ok()
        .filter(|p| (1..=max_prefix).contains(p))
        .ok_or_else(|| bad(field, format!("prefix `{p}` is outside 1..={max_prefix}")))?;
    Ok(IfAddr { addr, prefix })
}

/// `ADDR:PORT=SERVICE`.
pub fn parse_listen(s: &str) -> Result<ListenSpec, ConfigError> {
    let (a, svc) = s.rsplit_once('=').ok_or_else(|| {
        bad(
            "listen",
            format!("`{s}` is not ADDR:PORT=SERVICE (e.g. 0.0.0.0:7=echo)"),
        )
    })?;
    let addr: SocketAddr = a.parse().map_err(|_| {
        bad(
            "listen",
            format!("`{a}` is not ADDR:PORT (IPv6 in brackets: [::]:80)"),
        )
    })?;
    if addr.port() == 0 {
        return Err(bad(
            "listen",
            format!("`{a}`: port 0 cannot be listened on"),
        ));
    }
    let service = match svc {
        "echo" => Service::Echo,
        "discard" => Service::Discard,
        "http" => Service::Http,
        "echo-async" => Service::EchoAsync,
        other => match other.strip_prefix("forward:") {
            Some(up) => Service::Forward(parse_upstream(up)?),
            None => {
                return Err(bad(
                    "listen",
                    format!(
                        "service `{other}` is not one of echo, discard, http, echo-async, \
                         forward:UPSTREAM"
                    ),
                ));
            }
        },
    };
    Ok(ListenSpec { addr, service })
}

/// The upstream of `forward:UPSTREAM`: a loopback `ADDR:PORT` (the
/// daemon's own namespace, or --netns's), so the daemon never opens
/// connections to anywhere else.
fn parse_upstream(up: &str) -> Result<SocketAddr, ConfigError> {
    let addr: SocketAddr = up.parse().map_err(|_| {
        bad(
            "listen",
            format!("forward upstream `{up}` is not ADDR:PORT (e.g. forward:127.0.0.1:8080)"),
        )
    })?;
    if !addr.ip().is_loopback() {
        return Err(bad(
            "listen",
            format!(
                "forward upstream `{up}` is not a loopback address: use 127.0.0.1 or [::1] \
                 (inside --netns when given)"
            ),
        ));
    }
    if addr.port() == 0 {
        return Err(bad(
            "listen",
            format!("forward upstream `{up}`: port 0 is not a port to connect to"),
        ));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests;
