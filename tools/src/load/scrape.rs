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

/// Samples of one scrape: `name{labels} value` lines.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<(String, f64)>);

impl Samples {
    pub fn parse(text: &str) -> Samples {
        Samples(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|line| {
                    let (series, value) = line.trim().rsplit_once(' ')?;
                    let name = series.split('{').next()?;
                    Some((name.to_string(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    /// The sum over every series of `name`; `None` if it is not exported.
    pub fn sum(&self, name: &str) -> Option<f64> {
        let mut found = false;
        let mut total = 0.0;
        for (n, v) in &self.0 {
            if n == name {
                found = true;
                total += v;
            }
        }
        found.then_some(total)
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
}
