//! The daemon's counters before and after a flood: fetch `/metrics` (from
//! the namespace the command was started in, where the daemon listens) and
//! sum each metric over its labels.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The counters a SYN flood report shows, in the order it shows them.
pub const FLOOD_COUNTERS: &[&str] = &[
    "smrnet_listen_syns_total",
    "smrnet_syncache_added_total",
    "smrnet_syncache_overflows_total",
    "smrnet_syncookies_sent_total",
    "smrnet_syncookies_validated_total",
    "smrnet_syncookies_failed_total",
    "smrnet_syncache_drops_total",
    "smrnet_syncache_expired_total",
    "smrnet_tcp_passive_opens_total",
    "smrnet_ip_drops_total",
    "smrnet_stack_handshake_drops_total",
    "smrnet_tcp_pool_exhausted_drops_total",
    "smrnet_listen_queue_overflows_total",
];

/// One scrape: metric name to the sum of its series.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    sums: BTreeMap<String, f64>,
    pub text: String,
}

impl Scrape {
    /// Parse Prometheus text: `name{labels} value` lines, comments skipped,
    /// lines that do not parse ignored.
    pub fn parse(text: &str) -> Scrape {
        let mut sums = BTreeMap::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let Some((series, value)) = line.trim().rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let name = series.split('{').next().unwrap_or(series);
            *sums.entry(name.to_string()).or_insert(0.0) += value;
        }
        Scrape {
            sums,
            text: text.to_string(),
        }
    }

    /// Fetch and parse `url` (`http://HOST:PORT/PATH`), bounded by 5 s.
    pub fn fetch(url: &str) -> io::Result<Scrape> {
        let (addr, path) = parse_url(url)?;
        let (status, body) = crate::lab::http_get(addr, &path, Duration::from_secs(5))
            .map_err(|e| io::Error::new(e.kind(), format!("scrape {url}: {e}")))?;
        if status != 200 {
            return Err(io::Error::other(format!("scrape {url}: HTTP {status}")));
        }
        Ok(Scrape::parse(&body))
    }

    /// The sum of `name`'s series, `None` when the daemon does not export it.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.sums.get(name).copied()
    }

    /// `after - before` for each of `names` the later scrape has.
    pub fn deltas(before: &Scrape, after: &Scrape, names: &[&str]) -> BTreeMap<String, f64> {
        names
            .iter()
            .filter_map(|n| {
                let a = after.get(n)?;
                Some((n.to_string(), a - before.get(n).unwrap_or(0.0)))
            })
            .collect()
    }
}

/// `http://host:port/path` into an address and a path (no TLS, no auth:
/// the daemon's metrics listener is plain HTTP on loopback).
pub fn parse_url(url: &str) -> io::Result<(SocketAddr, String)> {
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--metrics `{url}`: {why} (expected http://HOST:PORT/PATH)"),
        )
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// is supported"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/metrics".to_string()),
    };
    let addr = hostport
        .to_socket_addrs()
        .map_err(|_| bad("HOST:PORT does not resolve"))?
        .next()
        .ok_or_else(|| bad("HOST:PORT does not resolve"))?;
    Ok((addr, path))
}

/// Packets the namespace's kernel dropped on the way into the daemon's TUN
/// device (`tx_dropped`: the device's queue was full because the daemon's
/// workers could not keep up), read with `ip -s -j`. `None` when there is no
/// such device or `ip` cannot tell.
pub fn tun_tx_dropped(netns: &str, device: &str) -> Option<u64> {
    let out = std::process::Command::new("ip")
        .args(["-n", netns, "-s", "-j", "link", "show", device])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v.get(0)?
        .get("stats64")?
        .get("tx")?
        .get("dropped")?
        .as_u64()
}
