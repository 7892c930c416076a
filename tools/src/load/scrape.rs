//! Reading the daemon's Prometheus metrics from a load generator: where
//! they are (`--metrics URL`, in which namespace) and the few series the
//! load reports use. Samples are summed over their labels (workers).

use super::netns::NetnsFd;
use super::safety::{self, Cidr};
use crate::lab::http_get;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Where `smrnetd` serves metrics unless told otherwise.
pub const DEFAULT_METRICS_URL: &str = "http://127.0.0.1:9464/metrics";

/// A metrics endpoint, scraped from a chosen network namespace.
#[derive(Debug)]
pub struct Scraper {
    pub url: String,
    addr: SocketAddr,
    path: String,
    /// Scrape from inside this namespace (the daemon's) instead of the
    /// calling thread's.
    netns: Option<NetnsFd>,
}

impl Scraper {
    /// `http://IP:PORT/PATH` (or `localhost`); the address must pass the
    /// load safety policy like any target.
    pub fn new(url: &str, allowed: &[Cidr], netns: Option<NetnsFd>) -> io::Result<Scraper> {
        let (addr, path) = parse_url(url).map_err(|msg| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("--metrics: {msg}"))
        })?;
        safety::check(addr.ip(), allowed, "metrics address")?;
        Ok(Scraper {
            url: url.to_string(),
            addr,
            path,
            netns,
        })
    }

    /// One scrape's samples.
    pub fn scrape(&self) -> io::Result<Samples> {
        Ok(Samples::parse(&self.fetch_text()?))
    }

    /// One scrape's exposition text, as served.
    pub fn fetch_text(&self) -> io::Result<String> {
        let get = || http_get(self.addr, &self.path, Duration::from_secs(3));
        let (status, body) = match &self.netns {
            Some(ns) => ns.run(get)??,
            None => get()?,
        };
        if status != 200 {
            return Err(io::Error::other(format!(
                "{} answered HTTP {status}",
                self.url
            )));
        }
        Ok(body)
    }
}

/// `http://host:port/path` → socket address and path.
pub fn parse_url(url: &str) -> Result<(SocketAddr, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}` is not an http:// URL"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/metrics".to_string()),
    };
    let hostport = hostport.replacen("localhost", "127.0.0.1", 1);
    if let Ok(addr) = hostport.parse::<SocketAddr>() {
        return Ok((addr, path));
    }
    // No port: HTTP's.
    let host = hostport.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = host.parse().map_err(|_| {
        format!("`{url}`: the host must be an IP address (e.g. http://127.0.0.1:9464/metrics)")
    })?;
    Ok((SocketAddr::new(ip, 80), path))
}

/// Samples of one scrape: just enough of the Prometheus text format to read
/// back what the daemon exports, `name{labels} value` lines; comments and
/// blank lines are skipped. (Whether the text is valid exposition is
/// promtool's job, not this.) The one parser of the workspace: the load
/// reports and the end-to-end tests both read scrapes with it.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<Sample>);

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    /// What is between the braces, as exported (`worker="0",reason="x"`).
    labels: String,
    value: f64,
}

impl Samples {
    pub fn parse(text: &str) -> Samples {
        Samples(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .filter_map(|line| {
                    let (series, value) = line.rsplit_once(' ')?;
                    let value = value.parse().ok()?;
                    let (name, labels) = match series.split_once('{') {
                        Some((name, rest)) => (name, rest.trim_end_matches('}')),
                        None => (series, ""),
                    };
                    Some(Sample {
                        name: name.to_string(),
                        labels: labels.to_string(),
                        value,
                    })
                })
                .collect(),
        )
    }

    /// Whether any series of `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|s| s.name == name)
    }

    /// The sum over every series of `name`; `None` if it is not exported.
    pub fn sum(&self, name: &str) -> Option<f64> {
        self.has(name).then(|| {
            self.0
                .iter()
                .filter(|s| s.name == name)
                .map(|s| s.value)
                .sum()
        })
    }

    /// The sum over the series of `name` whose labels contain `label`
    /// (`reason="bad_checksum"`), zero when none match; `None` if `name` is
    /// not exported at all.
    pub fn sum_where(&self, name: &str, label: &str) -> Option<f64> {
        self.has(name).then(|| {
            self.0
                .iter()
                .filter(|s| s.name == name && s.labels.contains(label))
                .map(|s| s.value)
                .sum()
        })
    }

    /// Every metric name exported, sorted, deduplicated.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.0.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_to_address_and_path() {
        assert_eq!(
            parse_url(DEFAULT_METRICS_URL).unwrap(),
            ("127.0.0.1:9464".parse().unwrap(), "/metrics".to_string())
        );
        assert_eq!(
            parse_url("http://localhost:9500").unwrap(),
            ("127.0.0.1:9500".parse().unwrap(), "/metrics".to_string())
        );
        assert_eq!(
            parse_url("http://[::1]/m").unwrap().0,
            "[::1]:80".parse().unwrap()
        );
        assert!(
            parse_url("https://127.0.0.1/")
                .unwrap_err()
                .contains("http://")
        );
        assert!(
            parse_url("http://example.com/")
                .unwrap_err()
                .contains("IP address")
        );
    }

    #[test]
    fn metrics_address_must_pass_the_policy() {
        let err = Scraper::new("http://8.8.8.8:9464/metrics", &[], None).unwrap_err();
        assert!(
            err.to_string().contains("refusing metrics address"),
            "{err}"
        );
    }

    #[test]
    fn samples_sum_over_labels() {
        let s = Samples::parse(
            "# HELP x\nsmrnet_tcp_passive_opens_total{worker=\"0\"} 3\n\
             smrnet_tcp_passive_opens_total{worker=\"1\"} 4\nsmrnet_table_entries 2\n",
        );
        assert_eq!(s.sum("smrnet_tcp_passive_opens_total"), Some(7.0));
        assert_eq!(s.sum("smrnet_table_entries"), Some(2.0));
        assert_eq!(s.sum("smrnet_nope"), None);
    }

    #[test]
    fn samples_keep_labels_and_skip_comments_and_blank_lines() {
        let s = Samples::parse(
            "# HELP smrnet_x_total X.\n# TYPE smrnet_x_total counter\n\
             smrnet_x_total{reason=\"a\"} 2\nsmrnet_x_total{reason=\"b\"} 3\n\
             smrnet_y 1.5\n\n  \nnot a sample\n",
        );
        assert_eq!(s.sum("smrnet_x_total"), Some(5.0));
        assert_eq!(s.sum_where("smrnet_x_total", "reason=\"b\""), Some(3.0));
        assert_eq!(s.sum_where("smrnet_x_total", "reason=\"c\""), Some(0.0));
        assert_eq!(s.sum_where("smrnet_z", "reason=\"b\""), None);
        assert_eq!(s.sum("smrnet_y"), Some(1.5));
        assert_eq!(s.names(), vec!["smrnet_x_total", "smrnet_y"]);
    }
}
