//! Malformed packets from inside the namespace reach the daemon through the
//! TUN device; it drops and counts them, and keeps serving.

use crate::clients::http_get_once;
use crate::names::{BAD_TCP_CHECKSUM, CSUM_ERRORS, DROPS};
use std::net::{IpAddr, SocketAddr};
use tests::{DAEMON_V4, HTTP_PORT, Outcome, lab, scrape, send_raw_ipv4};
use tools::lab::KERNEL_V4;

/// Frames per kind of damage.
const EACH: usize = 300;

pub fn malformed_burst_is_counted_and_daemon_keeps_serving() -> Outcome {
    let mut lab = lab();
    let before = scrape(&lab);
    let queue_drops_before = tun_tx_dropped(&lab);
    let frames = malformed_frames();
    let dst = SocketAddr::new(IpAddr::V4(DAEMON_V4), 0);
    let sent = lab
        .in_netns(|| send_raw_ipv4(dst, &frames))
        .expect("enter the lab")
        .expect("send raw frames");
    assert_eq!(sent, frames.len());

    // Still serving, and still the same process.
    let addr = SocketAddr::new(IpAddr::V4(DAEMON_V4), HTTP_PORT);
    lab.in_netns(|| http_get_once(addr))
        .expect("enter the lab")
        .expect("the daemon stopped serving after the burst");
    lab.daemon_mut()
        .check_running()
        .expect("the daemon died after the burst");

    // Counted: the frames cross a TUN queue asynchronously; the HTTP round
    // trip above followed them on the link, but give the counters a moment.
    // Frames the kernel's TUN queue dropped never reached the daemon; they
    // are allowed, within reason, and are not expected in its counters.
    let queue_drops = tun_tx_dropped(&lab) - queue_drops_before;
    assert!(
        queue_drops * 10 <= sent as u64,
        "the TUN queue dropped {queue_drops} of {sent} frames before the daemon read them"
    );
    let reached = (sent as u64 - queue_drops) as f64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let after = scrape(&lab);
        let drops = after.sum(DROPS) - before.sum(DROPS);
        let bad_sum =
            after.sum_where(DROPS, BAD_TCP_CHECKSUM) - before.sum_where(DROPS, BAD_TCP_CHECKSUM);
        let csum_errors = after.sum(CSUM_ERRORS) - before.sum(CSUM_ERRORS);
        let want_bad = EACH as f64 - queue_drops as f64;
        if drops >= reached && bad_sum >= want_bad && csum_errors >= want_bad {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sent {sent} malformed frames ({EACH} with bad TCP checksums), {queue_drops} \
             dropped by the TUN queue; drops counted {drops}, bad TCP checksums {bad_sum}, \
             checksum errors {csum_errors}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Outcome::Passed
}

/// The TUN device's transmit drops (kernel to daemon), read inside the lab.
fn tun_tx_dropped(lab: &tests::Lab) -> u64 {
    let out = lab
        .command("cat")
        .arg(format!(
            "/sys/class/net/{}/statistics/tx_dropped",
            tools::lab::DEVICE
        ))
        .output()
        .expect("read the TUN device's statistics");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("tx_dropped: {}", String::from_utf8_lossy(&out.stderr)))
}

/// IPv4 frames with a damaged TCP or transport part. The kernel fills in the
/// IP header's checksum and total length (IP_HDRINCL); the rest is as here.
fn malformed_frames() -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for i in 0..EACH {
        let port = 40_000 + i as u16;
        // A SYN to a listening port whose TCP checksum is wrong (the right
        // one with bits flipped, so it can never be right by chance).
        let mut syn = tcp_header(port, HTTP_PORT, 5, 0x02);
        let wrong = tcp_checksum(&syn) ^ 0x5555;
        syn[16..18].copy_from_slice(&wrong.to_be_bytes());
        frames.push(ipv4(6, &syn));
        // The rest carry checksum 0, also wrong.
        // Data offset below the minimum header (3 words).
        frames.push(ipv4(6, &tcp_header(port, HTTP_PORT, 3, 0x02)));
        // Data offset past the end of the segment (15 words in 20 bytes).
        frames.push(ipv4(6, &tcp_header(port, HTTP_PORT, 15, 0x10)));
        // A TCP header cut short.
        frames.push(ipv4(6, &tcp_header(port, HTTP_PORT, 5, 0x02)[..9]));
        // An ICMP echo request too short to hold its header.
        frames.push(ipv4(1, &[8, 0, 0xff]));
    }
    frames
}

fn tcp_header(src: u16, dst: u16, offset_words: u8, flags: u8) -> Vec<u8> {
    let mut h = vec![0u8; 20];
    h[0..2].copy_from_slice(&src.to_be_bytes());
    h[2..4].copy_from_slice(&dst.to_be_bytes());
    h[4..8].copy_from_slice(&0x5eed_0001u32.to_be_bytes());
    h[12] = offset_words << 4;
    h[13] = flags;
    h[14..16].copy_from_slice(&65535u16.to_be_bytes());
    // Checksum (16..18) left zero: wrong for any of these segments.
    h
}

fn ipv4(protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[8] = 64;
    p[9] = protocol;
    p[12..16].copy_from_slice(&KERNEL_V4.octets());
    p[16..20].copy_from_slice(&DAEMON_V4.octets());
    p.extend_from_slice(payload);
    p
}

/// The correct TCP checksum of `segment` (checksum field zero) from the
/// kernel's address to the daemon's (RFC 9293 pseudo-header).
fn tcp_checksum(segment: &[u8]) -> u16 {
    let mut bytes = Vec::with_capacity(12 + segment.len());
    bytes.extend_from_slice(&KERNEL_V4.octets());
    bytes.extend_from_slice(&DAEMON_V4.octets());
    bytes.extend_from_slice(&[0, 6]);
    bytes.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    bytes.extend_from_slice(segment);
    tests::internet_checksum(&bytes)
}
