//! The `wrk` row of `bench path`: HTTP/1.1 keep-alive requests per second
//! from `wrk` (Debian's package, when installed) run inside a namespace.
//!
//! Invariant: wrk runs for `seconds` by its own clock; it is killed if it
//! has not exited `KILL_AFTER` later, so the row is bounded even if wrk
//! hangs.

use std::io;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Connections and threads, as in the reference comparison.
pub const CONNECTIONS: u32 = 64;
pub const THREADS: u32 = 2;
const KILL_AFTER: Duration = Duration::from_secs(15);

/// What one wrk run reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrkResult {
    pub requests_per_sec: f64,
    /// connect + read + write + timeout socket errors.
    pub socket_errors: u64,
    pub non_2xx: u64,
}

/// `wrk` on the PATH, or why not.
pub fn find() -> Result<std::path::PathBuf, String> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("wrk"))
        .find(|p| p.is_file())
        .ok_or_else(|| "wrk is not installed (Debian: apt-get install wrk); row skipped".into())
}

/// Runs wrk against `url` from inside network namespace `netns`.
pub fn run(wrk: &std::path::Path, netns: &str, url: &str, seconds: u64) -> io::Result<WrkResult> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns])
        .arg(wrk)
        .args(["-c", &CONNECTIONS.to_string(), "-t", &THREADS.to_string()])
        .args(["-d", &format!("{seconds}s"), "--timeout", "2s", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(seconds) + KILL_AFTER;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            // Our own child, by its handle.
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "wrk did not finish; killed",
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "wrk failed ({}): {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    parse(&text)
        .ok_or_else(|| io::Error::other(format!("wrk printed no Requests/sec line:\n{text}")))
}

/// Reads wrk's summary: `Requests/sec:`, and the error lines it prints only
/// when there were errors.
pub fn parse(text: &str) -> Option<WrkResult> {
    let mut rps = None;
    let mut socket_errors = 0;
    let mut non_2xx = 0;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok().filter(|x| x.is_finite());
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 1, write 0, timeout 3"
            socket_errors = v
                .split(',')
                .filter_map(|kv| kv.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = v.trim().parse().unwrap_or(u64::MAX);
        }
    }
    Some(WrkResult {
        requests_per_sec: rps?,
        socket_errors,
        non_2xx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_with_errors_is_read_in_full() {
        let out = "Running 1s test @ http://198.18.0.2/\n  2 threads and 64 connections\n\
                   \x20 Thread Stats   Avg      Stdev     Max   +/- Stdev\n\
                   \x20   Latency   632.93us  1.02ms  22.08ms   93.19%\n\
                   \x20 98765 requests in 1.00s, 112.00MB read\n\
                   \x20 Socket errors: connect 2, read 1, write 0, timeout 4\n\
                   \x20 Non-2xx or 3xx responses: 3\n\
                   Requests/sec:  98700.12\nTransfer/sec:    111.91MB\n";
        assert_eq!(
            parse(out),
            Some(WrkResult {
                requests_per_sec: 98700.12,
                socket_errors: 7,
                non_2xx: 3
            })
        );
    }

    #[test]
    fn output_without_a_rate_is_no_result() {
        assert_eq!(
            parse("unable to connect to 198.18.0.2:80 Connection refused\n"),
            None
        );
        assert_eq!(parse("Requests/sec: nan\n"), None);
        assert_eq!(parse(""), None);
    }
}
