//! Raw sockets, from a thread inside a lab's namespace: ICMP echo (a ping
//! without the `ping` binary) and hand-made IPv4 frames that reach the TUN
//! device exactly as written, bad checksums and all.

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType, ipproto};
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, Instant};

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// Send one ICMP echo request to `dst` and wait at most `timeout` for the
/// matching reply; returns the round-trip time. Needs CAP_NET_RAW.
pub fn ping(dst: IpAddr, ident: u16, timeout: Duration) -> io::Result<Duration> {
    let (family, proto, request, reply) = match dst {
        IpAddr::V4(_) => (
            AddressFamily::INET,
            ipproto::ICMP,
            ECHO_REQUEST_V4,
            ECHO_REPLY_V4,
        ),
        IpAddr::V6(_) => (
            AddressFamily::INET6,
            ipproto::ICMPV6,
            ECHO_REQUEST_V6,
            ECHO_REPLY_V6,
        ),
    };
    let fd = rustix::net::socket(family, SocketType::RAW, Some(proto))?;
    rustix::net::sockopt::set_socket_timeout(
        &fd,
        rustix::net::sockopt::Timeout::Recv,
        Some(Duration::from_millis(100)),
    )?;
    let seq: u16 = 1;
    let mut msg = vec![request, 0, 0, 0];
    msg.extend_from_slice(&ident.to_be_bytes());
    msg.extend_from_slice(&seq.to_be_bytes());
    msg.extend_from_slice(b"smrnet e2e ping payload");
    if dst.is_ipv4() {
        // ICMPv6 checksums cover a pseudo-header; the kernel fills those in
        // for raw ICMPv6 sockets. ICMPv4's is ours to compute.
        let sum = internet_checksum(&msg);
        msg[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    let start = Instant::now();
    match dst {
        IpAddr::V4(a) => {
            rustix::net::sendto(&fd, &msg, SendFlags::empty(), &SocketAddrV4::new(a, 0))?
        }
        IpAddr::V6(a) => rustix::net::sendto(
            &fd,
            &msg,
            SendFlags::empty(),
            &SocketAddrV6::new(a, 0, 0, 0),
        )?,
    };
    let mut buf = [0u8; 2048];
    // Bounded: at most `timeout`, at most 1,000 unrelated packets.
    for _ in 0..1000 {
        if start.elapsed() > timeout {
            break;
        }
        let n = match rustix::net::recv(&fd, &mut buf, RecvFlags::empty()) {
            Ok((n, _)) => n,
            Err(rustix::io::Errno::AGAIN) => continue,
            Err(e) => return Err(e.into()),
        };
        // Raw IPv4 sockets deliver the IP header too; IPv6 ones do not.
        let icmp = if dst.is_ipv4() {
            let ihl = usize::from(buf[0] & 0x0f) * 4;
            &buf[ihl.min(n)..n]
        } else {
            &buf[..n]
        };
        if icmp.len() >= 8
            && icmp[0] == reply
            && icmp[4..6] == ident.to_be_bytes()
            && icmp[6..8] == seq.to_be_bytes()
        {
            return Ok(start.elapsed());
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no echo reply from {dst} within {timeout:?}"),
    ))
}

/// Write `frames` (complete IPv4 packets, header included) with an
/// IPPROTO_RAW socket toward `dst`. The kernel fills in only the IP header's
/// checksum and total length; everything after the header arrives as
/// written. Paced in groups of 50 with a 2 ms pause, so that the TUN
/// device's transmit queue (500 frames) does not overflow while the daemon
/// reads. Returns how many were sent.
pub fn send_raw_ipv4(dst: SocketAddr, frames: &[Vec<u8>]) -> io::Result<usize> {
    let SocketAddr::V4(dst) = dst else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "IPv4 only"));
    };
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::RAW, Some(ipproto::RAW))?;
    let mut sent = 0;
    for group in frames.chunks(50) {
        for f in group {
            rustix::net::sendto(&fd, f, SendFlags::empty(), &dst)?;
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(sent)
}

/// RFC 1071 one's-complement sum.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in bytes.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::internet_checksum;

    #[test]
    fn checksum_matches_rfc1071_example_and_verifies_to_zero() {
        // RFC 1071 section 3: the sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data), !0xddf2);
        let mut with_sum = data.to_vec();
        with_sum.extend_from_slice(&internet_checksum(&data).to_be_bytes());
        assert_eq!(internet_checksum(&with_sum), 0);
    }
}
