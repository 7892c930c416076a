//! `smrnet bench tunio`: does batching TUN I/O through io_uring pay
//! against one system call per frame, on this machine?
//!
//! Each measurement creates a namespace of its own (`smrnet-tunio-<id>`,
//! removed when the measurement ends, on every path) with a multi-queue TUN
//! device `tio0` (198.18.0.1/15, MTU 1500) and one thread per queue:
//!
//! - `tx`: each thread writes `--frames` copies of a small IPv4/UDP frame
//!   (198.18.0.2 to 198.18.0.1, port 9, nobody listening; the kernel's
//!   receive path takes each frame up to UDP and counts it as no-port, the
//!   answering ICMP being rate-limited) into its queue.
//! - `rx`: one sender thread in the namespace sends `--frames` UDP
//!   datagrams per queue over 16 flows (so the TUN's flow hashing spreads
//!   them over the queues) to 198.18.0.2, which routes out of the device;
//!   each queue thread reads what reaches its queue. Frames the kernel drops
//!   at a full queue are not counted; the sender's own cost is in neither
//!   side's per-frame figure.
//!
//! Each of those runs once per way (`per-frame`: `write` per frame, or
//! non-blocking `read` until `EAGAIN` and then `poll`, as smrnetd's workers
//! do; `uring`: `--batch` requests per `io_uring_enter`) and once per queue
//! count. Figures: frames/s over the queue threads' run, and the queue
//! threads' own CPU per frame (user + system, `RUSAGE_THREAD`, so the
//! kernel work inside the system calls counts, the sender's does not),
//! with the process's whole CPU per frame beside it (io_uring's kernel
//! worker threads, if the kernel falls back to them, belong to the process
//! and count there). Where io_uring is refused (an old kernel,
//! `kernel.io_uring_disabled`, a seccomp filter; or forced by
//! `--refuse-uring`) the uring rows run per-frame and say why.
//!
//! Invariant: every loop is bounded by its frame count and by `--seconds`.

mod io;

use crate::lab::{LabError, Netns};
use crate::load::netns::NetnsFd;
use serde::Serialize;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const DEVICE: &str = "tio0";
const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const FLOWS: u16 = 16;

/// Run shape for `bench tunio`.
#[derive(Debug, clap::Args)]
pub struct TunioArgs {
    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Frames per queue per measurement.
    #[arg(long, value_name = "N", default_value_t = 500_000,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    frames: u64,
    /// The longest one measurement may take, in seconds.
    #[arg(long, value_name = "S", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// Queue counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    queues: Vec<usize>,
    /// io_uring requests in flight per queue (and per `io_uring_enter`).
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    batch: u32,
    /// IPv4 frame size in bytes (IP header included).
    #[arg(long, value_name = "B", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(28..=1500))]
    frame_bytes: u16,
    /// Act as if the kernel refused io_uring: the uring rows fall back to
    /// per-frame I/O and say so.
    #[arg(long)]
    refuse_uring: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Dir {
    Tx,
    Rx,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Way {
    PerFrame,
    Uring,
}

#[derive(Debug, Serialize)]
struct Row {
    dir: Dir,
    queues: usize,
    /// What was asked for.
    way: Way,
    /// What ran: `per-frame`, `uring`, or `per-frame` with the refusal.
    ran: String,
    frames: u64,
    errors: u64,
    seconds: f64,
    frames_per_sec: f64,
    /// Queue threads' user + system CPU per frame, ns.
    thread_cpu_ns_per_frame: f64,
    /// The whole process's CPU per frame, ns (rx: includes the sender).
    process_cpu_ns_per_frame: f64,
    syscalls_per_frame: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    frames_per_queue: u64,
    batch: u32,
    frame_bytes: u16,
    rows: Vec<Row>,
}

fn lab_err(e: LabError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

pub fn run(args: &TunioArgs) -> std::io::Result<()> {
    crate::lab::preflight().map_err(lab_err)?;
    if args.queues.iter().any(|&q| !(1..=16).contains(&q)) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "--queues: each count must be 1..=16",
        ));
    }
    let mut rows = Vec::new();
    for dir in [Dir::Tx, Dir::Rx] {
        for &q in &args.queues {
            for way in [Way::PerFrame, Way::Uring] {
                eprintln!("smrnet bench tunio: {dir:?} {q} queue(s) {way:?}");
                rows.push(measure(args, dir, q, way)?);
            }
        }
    }
    let report = Report {
        bench: "tunio",
        frames_per_queue: args.frames,
        batch: args.batch,
        frame_bytes: args.frame_bytes,
        rows,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)
    } else {
        writeln!(
            out,
            "bench tunio: {} frames/queue of {} bytes, io_uring batch {}",
            args.frames, args.frame_bytes, args.batch
        )?;
        writeln!(
            out,
            "{:<3} {:>6} {:<32} {:>12} {:>14} {:>14} {:>10}",
            "dir", "queues", "ran", "frames/s", "thread ns/fr", "process ns/fr", "sys/frame"
        )?;
        for r in &report.rows {
            writeln!(
                out,
                "{:<3} {:>6} {:<32} {:>12.0} {:>14.0} {:>14.0} {:>10.3}",
                format!("{:?}", r.dir).to_lowercase(),
                r.queues,
                r.ran,
                r.frames_per_sec,
                r.thread_cpu_ns_per_frame,
                r.process_cpu_ns_per_frame,
                r.syscalls_per_frame
            )?;
        }
        Ok(())
    }
}

/// One direction, queue count and way, in a namespace of its own.
fn measure(args: &TunioArgs, dir: Dir, queues: usize, way: Way) -> std::io::Result<Row> {
    let id = format!(
        "{:06x}",
        (u64::from(std::process::id()) << 20
            ^ u64::from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .subsec_nanos(),
            ))
            & 0xff_ffff
    );
    let ns = Netns::create(&format!("smrnet-tunio-{id}")).map_err(lab_err)?;
    let fd = NetnsFd::open(ns.name())?;
    let row = fd.run(|| in_namespace(args, dir, queues, way))??;
    drop(ns);
    Ok(row)
}

fn in_namespace(args: &TunioArgs, dir: Dir, queues: usize, way: Way) -> std::io::Result<Row> {
    let first = tun_rs::DeviceBuilder::new()
        .name(DEVICE)
        .multi_queue(true)
        .packet_information(false)
        .mtu(1500)
        .ipv4(LOCAL, 15, None)
        .enable(true)
        .build_sync()?;
    let mut devs = vec![first];
    for _ in 1..queues {
        let q = devs[0].try_clone()?;
        devs.push(q);
    }
    crate::lab::ip(&["link", "set", DEVICE, "txqueuelen", "16384"]).map_err(lab_err)?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let frame = udp_frame(PEER, LOCAL, 40_000, 9, usize::from(args.frame_bytes));
    let done = AtomicBool::new(false);
    let refusal = std::sync::Mutex::new(None::<String>);
    let p0 = crate::bench::cpu::process_cpu(std::process::id())?;
    let start = Instant::now();
    let counts = std::thread::scope(|s| {
        let workers: Vec<_> = devs
            .iter()
            .map(|d| {
                let fd = d.as_raw_fd();
                let (frame, done, refusal) = (&frame, &done, &refusal);
                s.spawn(move || {
                    let t0 = thread_cpu();
                    let c = queue_loop(args, dir, way, fd, frame, done, deadline, refusal);
                    c.map(|c| (c, thread_cpu().saturating_sub(t0)))
                })
            })
            .collect();
        let sent = if dir == Dir::Rx {
            let r = send_flows(
                args.frames * queues as u64,
                usize::from(args.frame_bytes),
                deadline,
            );
            // Release: pairs with the queue loops' Acquire in `stop_now`.
            done.store(true, Ordering::Release);
            r
        } else {
            Ok(())
        };
        let results: Vec<_> = workers
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        sent?;
        results.into_iter().collect::<std::io::Result<Vec<_>>>()
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let process = crate::bench::cpu::process_cpu(std::process::id())?.saturating_sub(p0);
    let frames: u64 = counts.iter().map(|(c, _)| c.frames).sum();
    let errors: u64 = counts.iter().map(|(c, _)| c.errors).sum();
    let syscalls: u64 = counts.iter().map(|(c, _)| c.syscalls).sum();
    let thread: Duration = counts.iter().map(|(_, t)| *t).sum();
    let per = |x: f64| if frames > 0 { x / frames as f64 } else { 0.0 };
    let ran = match (way, refusal.into_inner().unwrap_or_else(|p| p.into_inner())) {
        (Way::PerFrame, _) => "per-frame".to_string(),
        (Way::Uring, None) => "uring".to_string(),
        (Way::Uring, Some(why)) => format!("per-frame (io_uring {why})"),
    };
    Ok(Row {
        dir,
        queues,
        way,
        ran,
        frames,
        errors,
        seconds,
        frames_per_sec: frames as f64 / seconds.max(1e-9),
        thread_cpu_ns_per_frame: per(thread.as_nanos() as f64),
        process_cpu_ns_per_frame: per(process.as_nanos() as f64),
        syscalls_per_frame: per(syscalls as f64),
    })
}

/// One queue's loop, falling back to per-frame when io_uring is refused.
#[allow(clippy::too_many_arguments)]
fn queue_loop(
    args: &TunioArgs,
    dir: Dir,
    way: Way,
    fd: RawFd,
    frame: &[u8],
    done: &AtomicBool,
    deadline: Instant,
    refusal: &std::sync::Mutex<Option<String>>,
) -> std::io::Result<io::Count> {
    let idle = Duration::from_millis(200);
    let mut ring = match way {
        Way::PerFrame => None,
        Way::Uring => match io::open_ring(args.batch.next_power_of_two() * 2, args.refuse_uring) {
            Ok(r) => Some(r),
            Err(why) => {
                *refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                None
            }
        },
    };
    set_nonblocking(fd, dir == Dir::Rx && ring.is_none())?;
    Ok(match (dir, ring.as_mut()) {
        (Dir::Tx, None) => io::tx_per_frame(fd, frame, args.frames),
        (Dir::Tx, Some(r)) => io::tx_uring(r, fd, frame, args.frames, args.batch)?,
        (Dir::Rx, None) => io::rx_per_frame(fd, done, idle, deadline),
        (Dir::Rx, Some(r)) => io::rx_uring(r, fd, args.batch, done, idle, deadline)?,
    })
}

fn set_nonblocking(fd: RawFd, on: bool) -> std::io::Result<()> {
    // SAFETY: fcntl on an fd the caller keeps open; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread's user + system CPU so far.
fn thread_cpu() -> Duration {
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a live, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Sends `n` UDP datagrams (sized so each makes a `frame_bytes` frame) from
/// the namespace's own address over [`FLOWS`] source ports to [`PEER`],
/// i.e. out of the TUN device; bounded by `deadline`.
fn send_flows(n: u64, frame_bytes: usize, deadline: Instant) -> std::io::Result<()> {
    let socks = (0..FLOWS)
        .map(|i| {
            let s = UdpSocket::bind(SocketAddrV4::new(LOCAL, 41_000 + i))?;
            s.connect(SocketAddrV4::new(PEER, 9))?;
            Ok(s)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let payload = vec![0u8; frame_bytes.saturating_sub(28)];
    for i in 0..n {
        if i % 1024 == 0 && Instant::now() >= deadline {
            break;
        }
        // A full queue or device shows as ENOBUFS: the frame is dropped,
        // which the receive count shows.
        let _ = socks[(i % u64::from(FLOWS)) as usize].send(&payload);
    }
    Ok(())
}

/// An IPv4/UDP frame of `len` bytes (at least 28), both checksums valid
/// (the UDP one as 0, "none", which IPv4 allows).
fn udp_frame(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let len = len.max(28);
    let mut f = vec![0u8; len];
    f[0] = 0x45;
    f[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    f[6] = 0x40; // DF
    f[8] = 64;
    f[9] = 17;
    f[12..16].copy_from_slice(&src.octets());
    f[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(&f[..20]);
    f[10..12].copy_from_slice(&sum.to_be_bytes());
    f[20..22].copy_from_slice(&sport.to_be_bytes());
    f[22..24].copy_from_slice(&dport.to_be_bytes());
    f[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    f
}

/// The Internet checksum (RFC 1071) of `b`.
fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_a_valid_ip_header_and_the_asked_length() {
        let f = udp_frame(PEER, LOCAL, 40_000, 9, 64);
        assert_eq!(f.len(), 64);
        // A header with its checksum in place sums to zero.
        assert_eq!(checksum(&f[..20]), 0);
        assert_eq!(u16::from_be_bytes([f[24], f[25]]), 44);
        assert_eq!(udp_frame(PEER, LOCAL, 1, 2, 3).len(), 28);
    }
}
