//! Running `wrk` inside a namespace and reading its report.
//!
//! `wrk --latency` prints a latency distribution; the 99 % line is the p99.
//! Errors are wrk's socket errors (connect, read, write, timeout) plus its
//! non-2xx/3xx responses. The run is bounded: wrk gets `-d` seconds, and is
//! killed if it has not exited [`SLACK`] later.

use super::process::run_bounded;
use std::io;
use std::process::Command;
use std::time::Duration;

/// How long past its `-d` a wrk run may take before it is killed.
const SLACK: Duration = Duration::from_secs(20);

/// One wrk run's shape.
#[derive(Debug, Clone, Copy)]
pub struct WrkOpts {
    pub threads: usize,
    pub connections: usize,
    pub seconds: u64,
    /// Send `Connection: close`: one request per connection.
    pub close: bool,
}

/// What one wrk run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrkRun {
    pub req_per_s: f64,
    pub p99_ms: f64,
    pub requests: u64,
    pub errors: u64,
}

/// Run wrk inside `netns` against `url`.
pub fn run(netns: &str, url: &str, o: WrkOpts) -> io::Result<WrkRun> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns, "wrk", "--latency"])
        .args(["-t", &o.threads.to_string()])
        .args(["-c", &o.connections.max(o.threads).to_string()])
        .args(["-d", &format!("{}s", o.seconds)])
        .args(["--timeout", "5s"]);
    if o.close {
        cmd.args(["-H", "Connection: close"]);
    }
    cmd.arg(url);
    let out = run_bounded(cmd, Duration::from_secs(o.seconds) + SLACK, "wrk")?;
    let text = String::from_utf8_lossy(&out);
    parse(&text).map_err(|why| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("wrk against {url}: {why}; its output was:\n{text}"),
        )
    })
}

/// Read wrk's text report.
pub fn parse(out: &str) -> Result<WrkRun, String> {
    let mut req_per_s = None;
    let mut p99_ms = None;
    let mut requests = None;
    let mut errors = 0u64;
    for line in out.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            req_per_s = v.trim().parse::<f64>().ok();
        } else if let Some(v) = line.strip_prefix("99%") {
            p99_ms = Some(duration_ms(v.trim()).ok_or_else(|| format!("p99 {v:?}"))?);
        } else if let Some((n, _)) = line.split_once(" requests in ") {
            requests = n.trim().parse::<u64>().ok();
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            for part in v.split(',') {
                let n = part
                    .split_whitespace()
                    .nth(1)
                    .and_then(|n| n.parse::<u64>().ok());
                errors += n.ok_or_else(|| format!("socket errors {v:?}"))?;
            }
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += v
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("non-2xx {v:?}"))?;
        }
    }
    Ok(WrkRun {
        req_per_s: req_per_s.ok_or("no Requests/sec line")?,
        p99_ms: p99_ms.ok_or("no 99% latency line (was --latency given?)")?,
        requests: requests.ok_or("no 'N requests in' line")?,
        errors,
    })
}

/// wrk's durations: a number and one of us, ms, s, m, h.
fn duration_ms(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.trim().parse().ok()?;
    let per = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        _ => return None,
    };
    Some(n * per)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 1s test @ http://198.18.0.2:8000/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.23ms  456.00us  10.00ms   80.00%
    Req/Sec     5.00k   500.00     6.00k    70.00%
  Latency Distribution
     50%    1.00ms
     75%    1.50ms
     90%  750.00us
     99%    2.50s
  10000 requests in 1.00s, 1.00MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:  10000.50
Transfer/sec:      1.00MB
";

    #[test]
    fn a_full_report_gives_rate_p99_requests_and_every_error() {
        assert_eq!(
            parse(REPORT),
            Ok(WrkRun {
                req_per_s: 10000.5,
                p99_ms: 2500.0,
                requests: 10000,
                errors: 15,
            })
        );
    }

    #[test]
    fn a_clean_run_has_no_error_lines_and_zero_errors() {
        let clean: String = REPORT
            .lines()
            .filter(|l| !l.contains("errors") && !l.contains("Non-2xx"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(parse(&clean).map(|r| r.errors), Ok(0));
    }

    #[test]
    fn a_report_without_latency_or_rate_is_an_error_not_a_zero() {
        let no_p99 = REPORT.replace("99%", "98%");
        assert!(parse(&no_p99).unwrap_err().contains("99%"));
        assert!(parse("unable to connect to 198.18.0.2:8000 Connection refused").is_err());
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(duration_ms("750.00us"), Some(0.75));
        assert_eq!(duration_ms("1.5ms"), Some(1.5));
        assert_eq!(duration_ms("2.00m"), Some(120_000.0));
        assert_eq!(duration_ms("3.00x"), None);
        assert_eq!(duration_ms("ms"), None);
    }
}
