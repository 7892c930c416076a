//! The daemon's counters before and after a flood: fetch `/metrics` (from
//! the namespace the command was started in, where the daemon listens) and
//! sum each metric over its labels.

use crate::load::scrape::{Samples, Scraper};
use smrnetd::metrics::names as metric;
use std::collections::BTreeMap;
use std::io;

/// The counters a SYN flood report shows, in the order it shows them.
pub const FLOOD_COUNTERS: &[&str] = &[
    metric::LISTEN_SYNS,
    metric::SYNCACHE_ADDED,
    metric::SYNCACHE_OVERFLOWS,
    metric::SYNCOOKIES_SENT,
    metric::SYNCOOKIES_VALIDATED,
    metric::SYNCOOKIES_FAILED,
    metric::SYNCACHE_DROPS,
    metric::SYNCACHE_EXPIRED,
    metric::TCP_PASSIVE_OPENS,
    metric::IP_DROPS,
    metric::STACK_HANDSHAKE_DROPS,
    metric::TCP_POOL_EXHAUSTED_DROPS,
    metric::LISTEN_QUEUE_OVERFLOWS,
];

/// One scrape: its samples (summed over labels by name) and its text.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    samples: Samples,
    pub text: String,
}

impl Scrape {
    /// Parse Prometheus text ([`Samples::parse`]: comments skipped, lines
    /// that do not parse ignored).
    pub fn parse(text: &str) -> Scrape {
        Scrape {
            samples: Samples::parse(text),
            text: text.to_string(),
        }
    }

    /// Fetch and parse one scrape.
    pub fn fetch(scraper: &Scraper) -> io::Result<Scrape> {
        Ok(Scrape::parse(&scraper.fetch_text()?))
    }

    /// The sum of `name`'s series, `None` when the daemon does not export it.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.samples.sum(name)
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
