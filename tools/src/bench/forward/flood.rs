//! The flood arm of `bench forward`: a SYN flood at unlimited rate from one
//! sender thread (`smrnet load syn`) at the forward port, and during it a
//! legitimate client making one HTTP request per connection through the
//! forward, each verified. It reports the legitimate success rate and the
//! upstream's accepts over the arm, which should equal the legitimate
//! connections: the flood's SYNs end in smrnetd (SYN cache, cookies) and
//! only established connections are spliced to the upstream.
//!
//! The legitimate client is sequential and bounded: at most
//! [`MAX_LEGIT`] connections, each with a connect and an I/O timeout.

use super::upstream::Upstream;
use crate::lab::{DAEMON_V4, Lab, LabError};
use crate::load::syn::{self, SynArgs};
use serde::Serialize;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// The most legitimate connections one flood arm makes.
const MAX_LEGIT: u64 = 100_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the upstream's count may lag the client's last connection.
const SETTLE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize)]
pub struct FloodResult {
    pub seconds: f64,
    pub flood_syns_sent: u64,
    /// Legitimate connections tried, completed (handshake done) and
    /// answered with a whole 200 response.
    pub legit_attempts: u64,
    pub legit_connected: u64,
    pub legit_ok: u64,
    pub legit_success_pct: f64,
    /// Connections the upstream accepted during the arm.
    pub upstream_accepts: u64,
    pub upstream_saw_only_legit: bool,
}

/// Run the arm against `lab`'s forward `port`; `upstream.accepts(index)` is
/// the upstream listener in the lab's namespace.
pub fn run(
    lab: &Lab,
    port: u16,
    upstream: &Upstream,
    index: usize,
    seconds: f64,
) -> io::Result<FloodResult> {
    // One sender at the unlimited rate, no probe of its own (the
    // legitimate clients below are the probe).
    let args = SynArgs {
        rate: None,
        duration: seconds,
        threads: 1,
        seed: None,
        no_probe: true,
        ..SynArgs::for_lab(lab, SocketAddrV4::new(DAEMON_V4, port))
    };
    let before = upstream.accepts(index);
    let front = SocketAddr::from((DAEMON_V4, port));
    let (report, legit) = std::thread::scope(|scope| {
        let flood = scope.spawn(|| syn::run(&args, &AtomicBool::new(false)));
        let legit = lab.in_netns(|| {
            // Let the flood fill the SYN cache first.
            std::thread::sleep(Duration::from_millis(200));
            let mut l = Legit::default();
            while !flood.is_finished() && l.attempts < MAX_LEGIT {
                l.one(front);
            }
            l
        });
        let report = flood
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (report, legit)
    });
    let report = report?;
    let legit = legit.map_err(lab_err)?;
    // The upstream counts a splice once the forward has connected it; wait
    // (bounded) for the last ones, then a little more for strays.
    let deadline = Instant::now() + SETTLE;
    while upstream.accepts(index) - before < legit.connected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let accepts = upstream.accepts(index) - before;
    Ok(FloodResult {
        seconds,
        flood_syns_sent: report.flood.sent,
        legit_attempts: legit.attempts,
        legit_connected: legit.connected,
        legit_ok: legit.ok,
        legit_success_pct: if legit.attempts == 0 {
            0.0
        } else {
            100.0 * legit.ok as f64 / legit.attempts as f64
        },
        upstream_accepts: accepts,
        upstream_saw_only_legit: accepts == legit.connected,
    })
}

#[derive(Default)]
struct Legit {
    attempts: u64,
    connected: u64,
    ok: u64,
}

impl Legit {
    fn one(&mut self, front: SocketAddr) {
        self.attempts += 1;
        let Ok(mut s) = TcpStream::connect_timeout(&front, CONNECT_TIMEOUT) else {
            return;
        };
        self.connected += 1;
        let _ = s.set_read_timeout(Some(IO_TIMEOUT));
        let _ = s.set_write_timeout(Some(IO_TIMEOUT));
        if s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            .is_err()
        {
            return;
        }
        let mut reply = Vec::new();
        // The upstream closes after its answer, bounded by its size.
        if s.take(1 << 20).read_to_end(&mut reply).is_ok() && whole_200(&reply) {
            self.ok += 1;
        }
    }
}

/// A 200 response whose body is exactly its Content-Length.
fn whole_200(reply: &[u8]) -> bool {
    let Some(end) = reply.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&reply[..end]);
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    head.starts_with("HTTP/1.1 200 ") && length == Some(reply.len() - end - 4)
}

fn lab_err(e: LabError) -> io::Error {
    io::Error::other(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_200_counts_as_success() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        assert!(whole_200(ok));
        assert!(!whole_200(&ok[..ok.len() - 1]), "a short body");
        assert!(!whole_200(b"HTTP/1.1 431 X\r\nContent-Length: 0\r\n\r\n"));
        assert!(!whole_200(b"HTTP/1.1 200 OK\r\n"));
        assert!(!whole_200(b""));
    }
}
