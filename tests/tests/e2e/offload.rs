//! TUN offload: with `--offload on` (the default) the daemon reads and
//! writes TCP super-segments with the virtio-net header, and a bulk
//! transfer each way arrives byte-exact; `--offload off` moves the same
//! bytes one frame at a time; `--offload force-fallback` takes the path of a
//! kernel that refuses the offload, says so, and serves on.
//!
//! The transfer size is 256 MiB each way (`SMRNET_E2E_OFFLOAD_MIB` sets
//! another, e.g. 1024 for the 1 GiB; see docs/operator-guide.md).

use crate::names as metric;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use crate::clients::{connect, pattern};
use tests::{
    DAEMON_V4, DAEMON_V6, DISCARD_PORT, ECHO_PORT, Lab, Metrics, Outcome, lab, lab_with, scrape,
};

const FRAMES: &str = metric::WORKER_OFFLOAD_FRAMES;
const ENABLED: &str = metric::OFFLOAD_ENABLED;
const REFUSED: &str = metric::OFFLOAD_REFUSED;
const REJECTED: &str = metric::OFFLOAD_REJECTED;

fn transfer_bytes() -> usize {
    let mib = std::env::var("SMRNET_E2E_OFFLOAD_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(256);
    mib << 20
}

/// Sends `len` pattern bytes to the echo service in 64 KiB writes (from a
/// second thread) and checks every byte that comes back; then the same
/// count to discard. Returns the seconds each took.
fn echo_and_discard(lab: &Lab, dst: IpAddr, len: usize) -> (f64, f64) {
    lab.in_netns(|| {
        let data = pattern(len as u64, 1 << 20);
        let s = connect(SocketAddr::new(dst, ECHO_PORT)).expect("connect to echo");
        let mut w = s.try_clone().expect("clone the socket");
        let started = Instant::now();
        let writer = {
            let data = data.clone();
            std::thread::spawn(move || {
                let mut sent = 0;
                while sent < len {
                    let n = (len - sent).min(64 * 1024);
                    let at = sent % data.len();
                    let n = n.min(data.len() - at);
                    w.write_all(&data[at..at + n]).expect("write to echo");
                    sent += n;
                }
                w.shutdown(Shutdown::Write).expect("half-close");
            })
        };
        let mut r = s;
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0usize;
        while got < len {
            let n = r.read(&mut buf).expect("read from echo");
            assert!(n > 0, "echo closed after {got} of {len} bytes");
            for (i, b) in buf[..n].iter().enumerate() {
                let at = (got + i) % data.len();
                if *b != data[at] {
                    panic!("byte {} differs: {b:#x} for {:#x}", got + i, data[at]);
                }
            }
            got += n;
        }
        writer.join().expect("writer");
        let echo = started.elapsed().as_secs_f64();

        let mut d = connect(SocketAddr::new(dst, DISCARD_PORT)).expect("connect to discard");
        let started = Instant::now();
        let mut sent = 0;
        while sent < len {
            let n = (len - sent).min(64 * 1024).min(data.len());
            d.write_all(&data[..n]).expect("write to discard");
            sent += n;
        }
        d.shutdown(Shutdown::Write).expect("half-close");
        // The daemon closes after our FIN: all of it arrived.
        d.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut end = [0u8; 16];
        assert_eq!(d.read(&mut end).expect("discard's close"), 0);
        (echo, started.elapsed().as_secs_f64())
    })
    .expect("enter the lab")
}

fn gso(m: &Metrics, dir: &str) -> f64 {
    m.sum_where(FRAMES, &format!("direction=\"{dir}\",offload=\"gso\""))
}

pub fn offload_on_carries_super_segments_byte_exact_both_ways() -> Outcome {
    let lab = lab_with(2, &["--offload", "on"]);
    let before = scrape(&lab);
    assert_eq!(
        before.sum(ENABLED),
        1.0,
        "offload should be accepted as root"
    );
    assert_eq!(before.sum(REFUSED), 0.0);
    let len = transfer_bytes();
    let (echo, discard) = echo_and_discard(&lab, IpAddr::V4(DAEMON_V4), len);
    let mib = (len >> 20) as f64;
    eprintln!(
        "offload on, IPv4: {mib} MiB echoed in {echo:.2} s ({:.2} Gbit/s each way), discarded in {discard:.2} s ({:.2} Gbit/s)",
        mib * 8.0 / 1024.0 / echo,
        mib * 8.0 / 1024.0 / discard
    );
    let (echo6, _) = echo_and_discard(&lab, IpAddr::V6(DAEMON_V6), 16 << 20);
    eprintln!("offload on, IPv6: 16 MiB echoed in {echo6:.2} s");
    let after = scrape(&lab);
    let (rx, tx) = (
        gso(&after, "rx") - gso(&before, "rx"),
        gso(&after, "tx") - gso(&before, "tx"),
    );
    assert!(
        rx > 0.0,
        "the kernel's TSO sends should arrive as super-segments"
    );
    assert!(
        tx > 0.0,
        "the daemon's bulk sends should leave as super-segments"
    );
    assert_eq!(
        after.sum(REJECTED),
        0.0,
        "the kernel's headers are all honoured"
    );
    let log = std::fs::read_to_string(lab.log()).expect("daemon log");
    assert!(log.contains("offload: TSO and checksum offload"), "{log}");
    Outcome::Passed
}

pub fn offload_off_moves_the_same_bytes_one_frame_at_a_time() -> Outcome {
    let lab = lab_with(2, &["--offload", "off"]);
    let m = scrape(&lab);
    assert_eq!(m.sum(ENABLED), 0.0);
    assert_eq!(m.sum(REFUSED), 0.0, "off is not a refusal");
    let len = transfer_bytes() / 4;
    let (echo, discard) = echo_and_discard(&lab, IpAddr::V4(DAEMON_V4), len);
    eprintln!(
        "offload off: {} MiB echoed in {echo:.2} s, discarded in {discard:.2} s",
        len >> 20
    );
    let after = scrape(&lab);
    assert_eq!(gso(&after, "rx") + gso(&after, "tx"), 0.0);
    Outcome::Passed
}

pub fn offload_refused_falls_back_logs_why_and_serves() -> Outcome {
    let lab = lab_with(2, &["--offload", "force-fallback"]);
    let m = scrape(&lab);
    assert_eq!(m.sum(ENABLED), 0.0);
    assert_eq!(m.sum(REFUSED), 1.0);
    echo_and_discard(&lab, IpAddr::V4(DAEMON_V4), 8 << 20);
    let log = std::fs::read_to_string(lab.log()).expect("daemon log");
    assert!(
        log.contains("refused") && log.contains("force-fallback"),
        "the log names the refusal and its reason: {log}"
    );
    let after = scrape(&lab);
    assert_eq!(gso(&after, "rx") + gso(&after, "tx"), 0.0);
    Outcome::Passed
}

/// What `smrnet_offload_enabled` reads on a lab daemon started without an
/// `--offload` of its own: `SMRNET_LAB_OFFLOAD` (how the suite is run with
/// offload off) must reach it; without the variable it is the default,
/// `on`, which the kernel accepts for root.
pub(crate) fn offload_enabled_by_the_environment() -> f64 {
    match std::env::var("SMRNET_LAB_OFFLOAD").as_deref() {
        Ok("off" | "force-fallback") => 0.0,
        _ => 1.0,
    }
}

pub fn a_lab_daemon_runs_with_the_offload_the_environment_names() -> Outcome {
    let lab = lab();
    let m = scrape(&lab);
    assert_eq!(
        m.sum(ENABLED),
        offload_enabled_by_the_environment(),
        "{ENABLED} with SMRNET_LAB_OFFLOAD={:?}",
        std::env::var_os("SMRNET_LAB_OFFLOAD")
    );
    Outcome::Passed
}
