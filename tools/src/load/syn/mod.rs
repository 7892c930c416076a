//! `smrnet load syn`: a SYN flood with spoofed sources against a daemon in a
//! lab, while a legitimate client measures what the flood costs it.
//!
//! The flood writes IPv4 or IPv6 TCP SYNs (built with `smoltcp::wire`,
//! checksums valid) to a raw socket inside the lab's namespace: random
//! sources from `--spoof-prefix`, random ports, ISNs and options, paced by
//! `--rate` or as fast as the sender threads go, for `--duration`. A probe
//! (`probe`) first runs alone for the same duration, then during the flood;
//! the report compares the two and shows the daemon's SYN-cache and
//! SYN-cookie counters over the flood.
//!
//! Where the traffic goes: the SYNs are routed by the lab namespace's table
//! onto its TUN device, i.e. into the daemon. The daemon's SYN-ACKs to the
//! spoofed sources come back out of the TUN device into the namespace's
//! kernel, which owns none of those addresses and does not forward
//! (`net.ipv4.ip_forward` is 0 in every new network namespace, whatever the
//! host's setting), so it drops them. Nothing leaves the namespace. The
//! target and the spoof prefix must both lie in the lab's ranges (or
//! loopback) unless `--allow-network` is given, and the prefix may not
//! contain the target or the lab's own addresses.
//!
//! Invariant: every thread this command starts ends by the deadline
//! (`--duration`, at most [`MAX_DURATION`]) plus one probe connect timeout.

mod compare;
mod flood;
mod packet;
mod prefix;
mod probe;
mod rate;
mod report;
mod safety;
mod scrape;
#[cfg(test)]
mod tests;

pub use compare::{SynComparison, run as compare_kernel};
pub use flood::{FloodOpts, FloodReport, enter_netns};
pub use packet::{MAX_SYN_LEN, OptionsMode, Syn, SynOptions, write_syn};
pub use prefix::{Ipv4Prefix, Ipv6Prefix, SpoofPrefix};
pub use probe::{ProbeOpts, success_ratio};
pub use rate::TokenBucket;
pub use report::SynReport;
pub use scrape::{FLOOD_COUNTERS, Scrape};
pub use smr::rng::SplitMix64;

use crate::load::safety::Cidr;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// The name under which the report shows the TUN device's `tx_dropped`
/// growth (not a daemon metric: the namespace's kernel counts it).
pub const TUN_DROPPED: &str = "tun_tx_dropped (kernel, queue full)";

/// The longest flood one command may run.
pub const MAX_DURATION: Duration = Duration::from_secs(300);

/// `smrnet load syn`.
#[derive(Debug, Clone, clap::Args)]
pub struct SynArgs {
    /// The listener to flood, IPv4 ADDR:PORT or IPv6 [ADDR]:PORT (the
    /// default is the lab daemon's echo service; its IPv6 one is
    /// [fd00:5eed::2]:7).
    #[arg(long, value_name = "ADDR:PORT", default_value = "198.18.0.2:7")]
    pub target: SocketAddr,
    /// Spoofed source addresses are drawn uniformly from this prefix, of the
    /// target's family. It must not contain the target or the lab's
    /// addresses [default: 198.19.128.0/17 for an IPv4 target,
    /// fd00:5eed:0:1::/64 for IPv6: the lab routes both toward the daemon,
    /// and nothing uses them].
    #[arg(long, value_name = "CIDR")]
    pub spoof_prefix: Option<SpoofPrefix>,
    /// TCP options on each SYN: `random` (each of MSS, window scale,
    /// SACK-permitted, timestamps present or not, random values), `fixed`
    /// (MSS 1460, wscale 7, SACK, timestamps, as Linux sends) or `none`.
    #[arg(long, value_enum, default_value_t = OptionsMode::Random)]
    pub options: OptionsMode,
    /// SYNs per second over all sender threads (token bucket) [default: as
    /// fast as the threads can send].
    #[arg(long, value_name = "PPS")]
    pub rate: Option<u64>,
    /// Seconds the flood lasts; the probe runs this long without the flood
    /// first, so the command takes about twice this (at most 300).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub duration: f64,
    /// Sender threads. On a 2-core machine one sender leaves the other core
    /// to the daemon's workers.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
    /// SYNs per sendmmsg call (1..=1024).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub batch: usize,
    /// PRNG seed for addresses, ports, ISNs and options [default: from the
    /// clock; the report prints it so a run can be repeated].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Network namespace (name under /run/netns) to send from and run the
    /// probe in: a lab's `smrnet-lab-<id>` [default: the current one].
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// The daemon's metrics, scraped from the current namespace before and
    /// after the flood.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:9464/metrics"
    )]
    pub metrics: String,
    /// Legitimate connections in flight at once (closed loop: connect, echo
    /// 16 bytes, verify, close with RST, repeat).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub probe_concurrency: usize,
    /// The legit probe's port on the target address [default: the target's].
    #[arg(long, value_name = "PORT")]
    pub probe_port: Option<u16>,
    /// Flood only: no legitimate probe, no baseline phase.
    #[arg(long)]
    pub no_probe: bool,
    /// Also allow this network as target or spoof prefix, beyond loopback
    /// and the lab's 198.18.0.0/15 (repeatable). Only name networks you own.
    #[arg(long = "allow-network", value_name = "CIDR")]
    pub allow_network: Vec<Cidr>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// First run the same flood and probe (same seed, rate and duration)
    /// against the Linux kernel's TCP — an echo server in a namespace of
    /// its own behind a veth, 198.19.0.2:7, flooded from the client side —
    /// then against the target, and print both and the ratio of their
    /// legitimate connections per second under flood. Needs root; both
    /// namespaces are removed afterwards.
    #[arg(long)]
    pub compare_kernel: bool,
}

impl Default for SynArgs {
    /// The command line's defaults: what `smrnet load syn` with no flags
    /// runs (the lab daemon's echo service, 10 s, one sender, the probe on).
    /// Taken from the `#[arg]` attributes above, so they are said once.
    fn default() -> SynArgs {
        #[derive(clap::Parser)]
        struct NoFlags {
            #[command(flatten)]
            args: SynArgs,
        }
        <NoFlags as clap::Parser>::try_parse_from(["syn"])
            .expect("every flag of `load syn` has a default")
            .args
    }
}

impl SynArgs {
    /// A flood of `target` from inside `lab`'s namespace, scraping `lab`'s
    /// metrics; every other field is the command line's default, so a
    /// caller names only what it changes (`..SynArgs::for_lab(..)`).
    pub fn for_lab(lab: &crate::lab::Lab, target: impl Into<SocketAddr>) -> SynArgs {
        SynArgs {
            target: target.into(),
            netns: Some(lab.netns().name().to_string()),
            metrics: lab.metrics_url(),
            ..SynArgs::default()
        }
    }

    /// Check the arguments and run until done or `stop`; prints the report.
    pub fn run(&self, stop: &AtomicBool) -> io::Result<()> {
        if self.compare_kernel {
            return compare::run_cli(self, stop);
        }
        let report = run(self, stop)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{report}");
        }
        Ok(())
    }

    /// The spoof prefix asked for, or the lab's of the target's family.
    pub fn spoof(&self) -> SpoofPrefix {
        self.spoof_prefix
            .unwrap_or_else(|| SpoofPrefix::lab_default(self.target.ip()))
    }

    fn duration(&self) -> io::Result<Duration> {
        if !(self.duration > 0.0 && self.duration <= MAX_DURATION.as_secs_f64()) {
            return Err(invalid(format!(
                "--duration {}: must be more than 0 and at most {} seconds",
                self.duration,
                MAX_DURATION.as_secs()
            )));
        }
        Ok(Duration::from_secs_f64(self.duration))
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Validate `args`, run the baseline probe, then the flood with the probe,
/// and collect the report. `stop` ends every phase early.
pub fn run(args: &SynArgs, stop: &AtomicBool) -> io::Result<SynReport> {
    run_with(args, stop, args.seed.unwrap_or_else(clock_seed), true)
}

/// [`run`] with the seed chosen, scraping the daemon's metrics or not (the
/// kernel baseline has none).
fn run_with(args: &SynArgs, stop: &AtomicBool, seed: u64, scrape: bool) -> io::Result<SynReport> {
    let duration = args.duration()?;
    safety::check(args.target, &args.spoof(), &args.allow_network).map_err(invalid)?;
    if args.threads == 0 || args.threads > 64 {
        return Err(invalid(format!(
            "--threads {}: must be 1..=64",
            args.threads
        )));
    }
    if args.rate == Some(0) {
        return Err(invalid(
            "--rate 0: must be at least 1 (omit it for no limit)".into(),
        ));
    }
    // From the namespace the command started in, where the daemon listens.
    let scraper = scrape
        .then(|| crate::load::scrape::Scraper::new(&args.metrics, &args.allow_network, None))
        .transpose()?;
    let probe = ProbeOpts {
        target: SocketAddr::new(
            args.target.ip(),
            args.probe_port.unwrap_or(args.target.port()),
        ),
        duration,
        concurrency: args.probe_concurrency.clamp(1, 1024),
        netns: args.netns.clone(),
        allowed: args.allow_network.clone(),
    };
    let flood = FloodOpts {
        target: args.target,
        spoof: args.spoof(),
        options: args.options,
        rate: args.rate,
        duration,
        threads: args.threads,
        batch: args.batch,
        seed,
        netns: args.netns.clone(),
    };
    let baseline = if args.no_probe {
        None
    } else {
        Some(probe::run(&probe, stop)?)
    };
    let before = scraper.as_ref().map(Scrape::fetch).transpose()?;
    let tun_dropped = || {
        args.netns
            .as_deref()
            .and_then(|ns| scrape::tun_tx_dropped(ns, crate::lab::DEVICE))
    };
    let tun_before = tun_dropped();
    let (flood_report, under_flood) = std::thread::scope(|s| {
        let prober = (!args.no_probe).then(|| s.spawn(|| probe::run(&probe, stop)));
        let flooded = flood::run(&flood, stop);
        let probed = prober
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .transpose();
        Ok::<_, io::Error>((flooded?, probed?))
    })?;
    // Let the daemon's workers drain what is still queued on the device.
    std::thread::sleep(Duration::from_millis(300));
    let mut daemon = match (&scraper, before) {
        (Some(scraper), Some(before)) => {
            Scrape::deltas(&before, &Scrape::fetch(scraper)?, FLOOD_COUNTERS)
        }
        _ => Default::default(),
    };
    if let (Some(b), Some(a)) = (tun_before, tun_dropped()) {
        daemon.insert(TUN_DROPPED.to_string(), a.saturating_sub(b) as f64);
    }
    Ok(SynReport::new(
        args,
        seed,
        flood_report,
        baseline,
        under_flood,
        daemon,
    ))
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x5eed)
}
