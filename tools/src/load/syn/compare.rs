//! `smrnet load syn --compare-kernel`: the same flood and legitimate probe,
//! same seed, rate and duration, first against the Linux kernel's TCP (an
//! echo server over a veth in namespaces of its own, see
//! [`crate::load::compare`]), then against the target daemon, with the
//! ratio of legitimate connections per second under flood.
//!
//! Where the kernel side's traffic goes: the flood is sent from the client
//! namespace to 198.19.0.2; the server's SYN-ACKs to the spoofed prefix are
//! routed back to the client namespace, which owns none of those addresses
//! and does not forward, so it drops them. Nothing leaves the two
//! namespaces, and both go when the comparison ends, on any path.

use super::{SynArgs, SynReport, clock_seed, run_with};
use crate::load::compare::{self, KernelPair};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Both runs and how they compare.
#[derive(Debug, serde::Serialize)]
pub struct SynComparison {
    pub kernel: SynReport,
    pub smrnetd: SynReport,
    /// smrnetd's legitimate connections per second under flood over the
    /// kernel's (`None` without a probe).
    pub legit_under_flood_ratio: Option<f64>,
}

/// The kernel side's arguments: the same flood, aimed at the veth server
/// from the client namespace.
fn kernel_args(args: &SynArgs, pair: &KernelPair) -> SynArgs {
    let mut k = args.clone();
    k.target = compare::server_addr();
    k.probe_port = None;
    k.netns = Some(pair.client_netns().to_string());
    k
}

/// Runs both sides and prints the comparison (text or JSON).
pub fn run_cli(args: &SynArgs, stop: &AtomicBool) -> io::Result<()> {
    let cmp = run(args, stop)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&cmp)?);
    } else {
        print!("{cmp}");
    }
    Ok(())
}

/// Runs the kernel side (in namespaces of its own, removed before the
/// daemon's run starts), then the target daemon, and compares them.
pub fn run(args: &SynArgs, stop: &AtomicBool) -> io::Result<SynComparison> {
    if args.target.is_ipv6() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--compare-kernel: the kernel comparison is IPv4 only; flood an IPv4 target",
        ));
    }
    let seed = args.seed.unwrap_or_else(clock_seed);
    let pair = KernelPair::up(2)?;
    pair.route_back(&args.spoof().to_string())?;
    let kargs = kernel_args(args, &pair);
    eprintln!(
        "smrnet load syn: against the kernel ({} from {})",
        kargs.target,
        pair.client_netns()
    );
    let kernel = run_with(&kargs, stop, seed, false)?;
    drop(pair);
    // Relaxed: a flag polled by the load's loops.
    if stop.load(Ordering::Relaxed) {
        return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
    }
    eprintln!("smrnet load syn: against smrnetd ({})", args.target);
    let smrnetd = run_with(args, stop, seed, true)?;
    let legit_under_flood_ratio = match (&kernel.under_flood, &smrnetd.under_flood) {
        (Some(k), Some(s)) if k.conns_per_sec > 0.0 => Some(s.conns_per_sec / k.conns_per_sec),
        _ => None,
    };
    Ok(SynComparison {
        kernel,
        smrnetd,
        legit_under_flood_ratio,
    })
}

impl fmt::Display for SynComparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "## kernel TCP (veth, {})", self.kernel.target)?;
        write!(f, "{}", self.kernel)?;
        writeln!(f, "## smrnetd ({})", self.smrnetd.target)?;
        write!(f, "{}", self.smrnetd)?;
        writeln!(f, "## comparison (same seed {})", self.smrnetd.seed)?;
        writeln!(
            f,
            "  {:<10} {:>10} {:>16} {:>10} {:>16} {:>10}",
            "", "SYN/s", "legit conn/s", "success", "no-flood conn/s", "p99 ms"
        )?;
        for (name, r) in [("kernel", &self.kernel), ("smrnetd", &self.smrnetd)] {
            let (rate, ok, p99) = r.under_flood.as_ref().map_or((0.0, 0.0, 0.0), |u| {
                (
                    u.conns_per_sec,
                    super::success_ratio(u) * 100.0,
                    u.connect_latency.p99_us as f64 / 1e3,
                )
            });
            let base = r.baseline.as_ref().map_or(0.0, |b| b.conns_per_sec);
            writeln!(
                f,
                "  {name:<10} {:>10.0} {rate:>16.0} {ok:>9.3}% {base:>16.0} {p99:>10.2}",
                r.flood.pps
            )?;
        }
        if let Some(r) = self.legit_under_flood_ratio {
            writeln!(
                f,
                "  smrnetd / kernel, legit connections/s under flood: {r:.2}x"
            )?;
        }
        Ok(())
    }
}
