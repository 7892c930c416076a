//! The `smrnet load` subcommands: flags, where the daemon is, output.

use super::churn::{self, ChurnOpts, ChurnReport, Close, DaemonSide, Stream};
use super::compare::{self, KernelPair};
use super::hold::HoldOpts;
use super::netns::{self, NetnsFd};
use super::safety::Cidr;
use super::scrape::{DEFAULT_METRICS_URL, Scraper};
use super::source::parse_sources;
use crate::lab::{self, DAEMON_V4, ECHO_PORT, LabState};
use smrnetd::metrics::names as metric;
use std::io::{self, IsTerminal};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `smrnet load`: drive a daemon with kernel sockets.
#[derive(Debug, clap::Subcommand)]
pub enum LoadCommand {
    /// Connection churn: connect, write a pattern, read the echo back,
    /// verify it byte for byte, close; report rate, latency and errors.
    Churn(ChurnArgs),
    /// Open many connections, hold them, report setup rate and the
    /// daemon's memory per connection, then close and check it drains.
    Hold(HoldArgs),
    /// A SYN flood with spoofed sources into a lab, with a legitimate churn
    /// probe measured without and during it (needs root: raw socket).
    Syn(super::syn::SynArgs),
}

/// Flags every load subcommand shares.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Run the client inside this existing network namespace (an `ip netns`
    /// name such as a lab's `smrnet-lab-ID`, or a path). Metrics are still
    /// read from the daemon's namespace [default: the current namespace].
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// The daemon's Prometheus endpoint [default: the recorded lab's, else
    /// http://127.0.0.1:9464/metrics]. Unreachable metrics are reported, not fatal.
    #[arg(long, value_name = "URL")]
    pub metrics: Option<String>,
    /// Do not read the daemon's metrics at all.
    #[arg(long, conflicts_with = "metrics")]
    pub no_metrics: bool,
    /// The daemon's process id: its metrics are read from its network
    /// namespace and its memory from /proc [default: the recorded lab's].
    #[arg(long, value_name = "PID")]
    pub daemon_pid: Option<u32>,
    /// Also allow load to this network, beyond loopback and the lab's
    /// 198.18.0.0/15 and fd00:5eed::/64 (repeatable). Only name networks you own.
    #[arg(long = "allow-network", value_name = "CIDR")]
    pub allow_network: Vec<Cidr>,
    /// Print the summary as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The daemon as seen from a load command: where its metrics are and its pid.
#[derive(Debug)]
pub struct DaemonLink {
    pub scraper: Option<Scraper>,
    pub pid: Option<u32>,
}

impl CommonArgs {
    /// The recorded lab this run is about: the one whose namespace is
    /// `--netns`, else the one this process runs in (`smrnet lab exec`),
    /// else the only one recorded, else none.
    fn lab(&self) -> Option<LabState> {
        let labs = LabState::list().ok()?;
        let ns_of = |path: &str| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        match &self.netns {
            Some(ns) => labs
                .into_iter()
                .find(|l| &l.netns == ns || ns.ends_with(&format!("/{}", l.netns))),
            None => {
                let here = ns_of("/proc/thread-self/ns/net");
                let inside = labs.iter().position(|l| {
                    here.is_some() && ns_of(&format!("/run/netns/{}", l.netns)) == here
                });
                match inside {
                    Some(i) => Some(labs[i].clone()),
                    None if labs.len() == 1 => labs.into_iter().next(),
                    None => None,
                }
            }
        }
    }

    /// Where the daemon's metrics and memory are. Metrics are scraped from
    /// the daemon's own namespace when its pid is known (so this works
    /// under `smrnet lab exec` too), else from the current one.
    pub fn daemon(&self) -> io::Result<DaemonLink> {
        let lab = self.lab();
        let pid = self.daemon_pid.or(lab.as_ref().map(|l| l.pid));
        if self.no_metrics {
            return Ok(DaemonLink { scraper: None, pid });
        }
        let url = match (&self.metrics, &lab) {
            (Some(url), _) => url.clone(),
            (None, Some(l)) => format!("http://{}/metrics", l.metrics),
            (None, None) => DEFAULT_METRICS_URL.to_string(),
        };
        let ns = pid.and_then(|p| NetnsFd::of_pid(p).ok());
        let scraper = Scraper::new(&url, &self.allow_network, ns)?;
        Ok(DaemonLink {
            scraper: Some(scraper),
            pid,
        })
    }
}

/// `10`, `10s`, `500ms`, `2m`, `1.5s`: a duration (bare numbers are seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("`{s}`: the unit must be ms, s, m or h")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is out of range"))
}

fn sources(s: &str) -> Result<Vec<IpAddr>, String> {
    parse_sources(s)
}

#[derive(Debug, Clone, clap::Args)]
pub struct ChurnArgs {
    /// The echo server to churn [default: the lab daemon's echo service, 198.18.0.2:7].
    #[arg(long, value_name = "ADDR:PORT")]
    pub target: Option<SocketAddr>,
    /// Connection slots: at most this many transactions in flight.
    #[arg(long, short = 'c', value_name = "N", default_value_t = 64)]
    pub concurrency: usize,
    /// Open loop: start this many transactions per second on a fixed
    /// schedule, latency measured from each intended start [default: closed
    /// loop, each slot starts its next one when the last ends].
    #[arg(long, short = 'r', value_name = "PER_SEC")]
    pub rate: Option<f64>,
    /// How long to start transactions (10s, 500ms, 2m).
    #[arg(long, short = 'd', value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Bytes each connection writes and expects echoed (0: connect and close only).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub request_bytes: usize,
    /// Local addresses to connect from, round robin: a list, ranges A-B, or
    /// prefixes (198.18.0.16/28); the kernel picks each port by 4-tuple
    /// [default: the lab's 17 kernel-side addresses when the target is the
    /// lab daemon, else the kernel chooses].
    #[arg(long, value_name = "LIST", value_parser = sources)]
    pub source_addrs: Vec<Vec<IpAddr>>,
    /// Bound on each connect.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Bound on each request-and-echo exchange.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub io_timeout: Duration,
    /// How long transactions in flight at the end may finish before they
    /// are abandoned (and counted).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// How to close: fin (close(2), the client keeps TIME-WAIT) or rst
    /// (SO_LINGER 0, no TIME-WAIT anywhere).
    #[arg(long, value_enum, default_value_t = Close::Fin)]
    pub close: Close,
    /// Client runtime threads [default: one per CPU].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Show a progress bar with the live rate [default: only when stderr is
    /// a terminal and no JSON is asked for].
    #[arg(long)]
    pub progress: bool,
    /// Print one JSON line per second to stdout while running.
    #[arg(long)]
    pub json_stream: bool,
    /// First run the same churn against the Linux kernel's TCP (an echo
    /// server in a namespace of its own, over a veth, 198.19.0.1 to
    /// 198.19.0.2), then against smrnetd, and print both and the ratio.
    /// Needs root; both namespaces are removed afterwards.
    #[arg(long)]
    pub compare_kernel: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `--compare-kernel`'s result.
#[derive(Debug, serde::Serialize)]
pub struct Comparison {
    pub kernel: ChurnReport,
    pub smrnetd: ChurnReport,
    /// smrnetd's connections per second over the kernel's.
    pub ratio: f64,
}

impl ChurnArgs {
    /// The library options these flags mean.
    pub fn opts(&self) -> ChurnOpts {
        let target = self.target.unwrap_or(lab_echo());
        let mut o = ChurnOpts::new(target);
        o.concurrency = self.concurrency;
        o.rate = self.rate;
        o.duration = self.duration;
        o.request_bytes = self.request_bytes;
        o.source_addrs = default_sources(target, &self.source_addrs);
        o.connect_timeout = self.connect_timeout;
        o.io_timeout = self.io_timeout;
        o.drain_timeout = self.drain_timeout;
        o.close = self.close;
        if let Some(t) = self.threads {
            o.threads = t;
        }
        o.allowed_networks = self.common.allow_network.clone();
        o.progress =
            self.progress || (io::stderr().is_terminal() && !self.common.json && !self.json_stream);
        if self.json_stream {
            o.stream = Some(Stream::stdout());
        }
        o
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct HoldArgs {
    /// The server to connect to [default: the lab daemon's echo service, 198.18.0.2:7].
    #[arg(long, value_name = "ADDR:PORT")]
    pub target: Option<SocketAddr>,
    /// Connections to open and hold.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 10_000)]
    pub connections: usize,
    /// Connects in flight at once during setup.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub setup_concurrency: usize,
    /// How long to hold the connections once set up.
    #[arg(long, short = 'd', value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Send one byte on every connection this often while holding, and
    /// expect it echoed [default: stay silent].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub keepalive_interval: Option<Duration>,
    /// Local addresses to connect from, round robin (as for churn)
    /// [default: the lab's kernel-side addresses when the target is the lab
    /// daemon, else the kernel chooses].
    #[arg(long, value_name = "LIST", value_parser = sources)]
    pub source_addrs: Vec<Vec<IpAddr>>,
    /// Bound on each connect.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// How long to wait, after closing, for the daemon's table and pending
    /// pool to drain.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// How long the close may pace itself (batches of 1,024, waiting while
    /// the kernel's orphaned sockets are over a quarter of
    /// `net.ipv4.tcp_max_orphans`) before it closes the rest at once
    /// [default: 250 µs per connection, at least 100 s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub close_timeout: Option<Duration>,
    /// Show a progress bar [default: only when stderr is a terminal and no JSON is asked for].
    #[arg(long)]
    pub progress: bool,
    /// Hold across this many processes, each with its share [default: 1,
    /// or as many as the open-file limit requires].
    #[arg(long, value_name = "N")]
    pub processes: Option<usize>,
    /// Internal: run as one of several holding processes (used when one
    /// process may not open enough descriptors); speaks JSON lines.
    #[arg(long, hide = true)]
    pub worker: bool,
    /// Internal: the hold-wide index of a holding process's first
    /// connection, which decides its (source address, local port) pairs.
    #[arg(long, hide = true, default_value_t = 0)]
    pub first_index: u64,
    /// Internal: connections a holding process closes between two looks at
    /// the orphan count (its share of the machine-wide limit).
    #[arg(long, hide = true)]
    pub close_batch: Option<usize>,
    #[command(flatten)]
    pub common: CommonArgs,
}

impl HoldArgs {
    /// The library options these flags mean.
    pub fn opts(&self) -> HoldOpts {
        let target = self.target.unwrap_or(lab_echo());
        let mut o = HoldOpts::new(target);
        o.connections = self.connections;
        o.setup_concurrency = self.setup_concurrency;
        o.duration = self.duration;
        o.keepalive_interval = self.keepalive_interval;
        o.source_addrs = default_sources(target, &self.source_addrs);
        o.connect_timeout = self.connect_timeout;
        o.close_timeout = self
            .close_timeout
            .unwrap_or(super::hold::close::bound(self.connections));
        o.first_index = self.first_index;
        if let Some(b) = self.close_batch {
            o.close_batch = b;
        }
        o.allowed_networks = self.common.allow_network.clone();
        o.progress =
            !self.worker && (self.progress || (io::stderr().is_terminal() && !self.common.json));
        o
    }
}

/// The lab daemon's echo service.
fn lab_echo() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(DAEMON_V4), ECHO_PORT)
}

/// `--source-addrs` as given; if none and the target is the lab daemon,
/// every kernel-side address a lab has (so one lab carries 100k+
/// connections); else none (the kernel chooses).
fn default_sources(target: SocketAddr, given: &[Vec<IpAddr>]) -> Vec<IpAddr> {
    if !given.is_empty() {
        given.concat()
    } else if target.ip() == IpAddr::V4(DAEMON_V4) {
        lab::client_addrs_v4()
    } else {
        Vec::new()
    }
}

impl LoadCommand {
    pub fn run(&self) -> io::Result<()> {
        match self {
            LoadCommand::Churn(args) => churn_cmd(args),
            LoadCommand::Hold(args) => super::hold::run_cli(args),
            LoadCommand::Syn(args) => args.run(stop_on_signal()?),
        }
    }
}

/// A flag that Ctrl-C or SIGTERM raises, for `run_until`. The watcher
/// thread lives as long as the process; it only polls a flag.
pub(crate) fn stop_on_signal() -> io::Result<&'static AtomicBool> {
    static STOP: AtomicBool = AtomicBool::new(false);
    static WATCH: std::sync::Once = std::sync::Once::new();
    lab::stop_on_signal()?;
    WATCH.call_once(|| {
        std::thread::spawn(|| {
            while !lab::interrupted() {
                std::thread::sleep(Duration::from_millis(50));
            }
            // Relaxed: a flag polled by the load's loops.
            STOP.store(true, Ordering::Relaxed);
        });
    });
    Ok(&STOP)
}

/// Read a counter, or say why not (once, on stderr).
pub(crate) fn counter(scraper: Option<&Scraper>, name: &str) -> Option<f64> {
    let s = scraper?;
    match s.scrape() {
        Ok(samples) => {
            let v = samples.sum(name);
            if v.is_none() {
                eprintln!("smrnet load: {} does not export {name}", s.url);
            }
            v
        }
        Err(e) => {
            eprintln!("smrnet load: daemon metrics unavailable ({}): {e}", s.url);
            None
        }
    }
}

const PASSIVE_OPENS: &str = metric::TCP_PASSIVE_OPENS;

fn churn_cmd(args: &ChurnArgs) -> io::Result<()> {
    let opts = args.opts();
    opts.validate()?;
    // Before the kernel comparison, which would otherwise run first and
    // only then meet the wrong namespace.
    netns::run_in(args.common.netns.as_deref(), || {
        super::source::check_sources_local(&opts.source_addrs)
    })??;
    let daemon = args.common.daemon()?;
    let stop = stop_on_signal()?;
    let kernel = if args.compare_kernel {
        let pair = KernelPair::up(opts.threads)?;
        eprintln!(
            "smrnet load: churn against the kernel ({} from {})",
            compare::server_addr(),
            pair.client_netns()
        );
        let report = pair.churn(&opts, stop)?;
        drop(pair);
        if stop.load(Ordering::Relaxed) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        }
        eprintln!("smrnet load: churn against smrnetd ({})", opts.target);
        Some(report)
    } else {
        None
    };
    let report = churn_daemon(args, &opts, &daemon, stop)?;
    match kernel {
        Some(kernel) => {
            let ratio = report.conns_per_sec / kernel.conns_per_sec.max(1e-9);
            let cmp = Comparison {
                kernel,
                smrnetd: report,
                ratio,
            };
            if args.common.json {
                println!("{}", serde_json::to_string(&cmp).map_err(io::Error::other)?);
            } else {
                println!(
                    "kernel TCP (veth, {}):\n{}",
                    compare::server_addr(),
                    cmp.kernel
                );
                println!("smrnetd:\n{}", cmp.smrnetd);
                println!(
                    "smrnetd / kernel: {:.2} ({:.0} vs {:.0} connections/s)",
                    cmp.ratio, cmp.smrnetd.conns_per_sec, cmp.kernel.conns_per_sec
                );
            }
            check_daemon(&cmp.smrnetd)
        }
        None => {
            print_churn(&report, args.common.json)?;
            check_daemon(&report)
        }
    }
}

/// Churn the daemon, with its passive-open count before and after.
fn churn_daemon(
    args: &ChurnArgs,
    opts: &ChurnOpts,
    daemon: &DaemonLink,
    stop: &AtomicBool,
) -> io::Result<ChurnReport> {
    let before = counter(daemon.scraper.as_ref(), PASSIVE_OPENS);
    let mut report = netns::run_in(args.common.netns.as_deref(), || {
        churn::run_until(opts, stop)
    })??;
    if let (Some(before), Some(s)) = (before, daemon.scraper.as_ref())
        && let Some(after) = counter(Some(s), PASSIVE_OPENS)
    {
        let delta = (after - before).max(0.0) as u64;
        report.daemon = Some(DaemonSide::check(
            s.url.clone(),
            delta,
            report.ok,
            report.attempted,
        ));
    }
    Ok(report)
}

fn check_daemon(report: &ChurnReport) -> io::Result<()> {
    if report.daemon.as_ref().is_some_and(|d| !d.agrees) {
        return Err(io::Error::other(
            "the daemon's count disagrees with the client's",
        ));
    }
    Ok(())
}

pub(crate) fn print_churn(report: &ChurnReport, json: bool) -> io::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).map_err(io::Error::other)?
        );
    } else {
        println!("{report}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        load: LoadCommand,
    }

    fn churn(argv: &[&str]) -> ChurnArgs {
        let mut full = vec!["smrnet", "churn"];
        full.extend(argv);
        match Cli::try_parse_from(full).unwrap().load {
            LoadCommand::Churn(a) => a,
            other => panic!("parsed as {other:?}"),
        }
    }

    fn hold<S: AsRef<str>>(argv: &[S]) -> HoldArgs {
        let mut full = vec!["smrnet", "hold"];
        full.extend(argv.iter().map(AsRef::as_ref));
        match Cli::try_parse_from(full).unwrap().load {
            LoadCommand::Hold(a) => a,
            other => panic!("parsed as {other:?}"),
        }
    }

    /// The close's pacing bound follows the whole hold's size, and a holding
    /// child, which sees only its share, is handed the parent's bound.
    #[test]
    fn the_hold_close_timeout_grows_with_the_hold_and_reaches_the_children() {
        let small = hold(&["-n", "3000"]).opts();
        assert_eq!(small.close_timeout, Duration::from_secs(100));
        let large = hold(&["-n", "1000000"]).opts();
        assert_eq!(large.close_timeout, Duration::from_secs(250));
        let given = hold(&["-n", "1000000", "--close-timeout", "7s"]).opts();
        assert_eq!(given.close_timeout, Duration::from_secs(7));

        let parent = hold(&["-n", "1000000"]);
        let argv =
            super::super::hold::procs::child_args(&parent, &parent.opts(), 20_000, 40_000, 50);
        assert_eq!(argv[..2], ["load", "hold"]);
        let child = hold(&argv[2..]);
        assert_eq!(child.connections, 20_000);
        assert_eq!(child.opts().first_index, 40_000);
        assert_eq!(
            child.opts().close_batch,
            super::super::hold::close::batch_for(50)
        );
        assert!(child.opts().close_batch < parent.opts().close_batch);
        assert_eq!(child.opts().close_timeout, Duration::from_secs(250));
    }

    #[test]
    fn churn_defaults_aim_at_the_lab_echo_service() {
        let o = churn(&[]).opts();
        assert_eq!(o.target, "198.18.0.2:7".parse().unwrap());
        assert_eq!(o.concurrency, 64);
        assert_eq!(o.rate, None);
        assert_eq!(o.duration, Duration::from_secs(10));
        assert_eq!(o.request_bytes, 64);
        assert_eq!(o.source_addrs, lab::client_addrs_v4());
        o.validate().unwrap();
        // Another target: the kernel chooses the source.
        assert!(
            churn(&["--target", "127.0.0.1:7"])
                .opts()
                .source_addrs
                .is_empty()
        );
    }

    #[test]
    fn compare_kernel_outside_a_lab_refuses_at_once_saying_what_to_do() {
        // The test runs outside any lab namespace: the lab's client
        // addresses are not here. (Inside a lab the command would run.)
        let sources = lab::client_addrs_v4();
        if super::super::source::check_sources_local(&sources).is_ok() {
            eprintln!("skipped: this namespace has the lab's client addresses");
            return;
        }
        let started = std::time::Instant::now();
        let e = churn_cmd(&churn(&["--compare-kernel", "-d", "1s", "--no-metrics"])).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1), "not at once");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "one line: {msg}");
        assert!(msg.contains("--netns") && msg.contains("lab up"), "{msg}");
    }

    #[test]
    fn churn_flags_reach_the_options() {
        let a = churn(&[
            "--target",
            "127.0.0.1:7007",
            "-c",
            "8",
            "--rate",
            "1000",
            "-d",
            "1500ms",
            "--request-bytes",
            "0",
            "--source-addrs",
            "198.18.0.16-198.18.0.17",
            "--source-addrs",
            "198.18.0.1",
            "--close",
            "rst",
            "--allow-network",
            "192.0.2.0/24",
            "--json",
            "--netns",
            "smrnet-lab-abc123",
        ]);
        let o = a.opts();
        assert_eq!(o.target, "127.0.0.1:7007".parse().unwrap());
        assert_eq!((o.concurrency, o.rate), (8, Some(1000.0)));
        assert_eq!(o.duration, Duration::from_millis(1500));
        assert_eq!(o.request_bytes, 0);
        assert_eq!(o.source_addrs.len(), 3);
        assert_eq!(o.close, Close::Rst);
        assert_eq!(o.allowed_networks, vec!["192.0.2.0/24".parse().unwrap()]);
        assert!(a.common.json);
        assert_eq!(a.common.netns.as_deref(), Some("smrnet-lab-abc123"));
    }

    #[test]
    fn bad_flags_are_refused_naming_the_value() {
        let mut argv = vec!["smrnet", "churn", "--duration", "ten"];
        let err = Cli::try_parse_from(&argv).unwrap_err().to_string();
        assert!(err.contains("`ten` is not a duration"), "{err}");
        argv[3] = "3parsecs";
        let err = Cli::try_parse_from(&argv).unwrap_err().to_string();
        assert!(err.contains("unit"), "{err}");
        let err = Cli::try_parse_from(["smrnet", "churn", "--allow-network", "10.0.0.0/40"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("0..=32"), "{err}");
    }

    #[test]
    fn durations_accept_units() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("0.5s").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("-1").is_err());
    }
}
