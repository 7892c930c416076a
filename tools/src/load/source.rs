//! Source address lists: `--source-addrs 198.18.0.1,198.18.0.16-198.18.0.31`
//! or `198.18.0.16/28`. Each item is an address, an inclusive range `A-B`,
//! or a prefix (every address in it); items are joined in order.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

/// No list may expand to more than this many addresses.
pub const MAX_SOURCES: usize = 65_536;

/// Parse one `--source-addrs` value (comma-separated items).
pub fn parse_sources(s: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (first, last) = bounds(item)?;
        let n = span(first, last).ok_or_else(|| {
            format!("`{item}`: the range must run from low to high within one address family")
        })?;
        if out.len() as u128 + n > MAX_SOURCES as u128 {
            return Err(format!(
                "`{s}` names more than {MAX_SOURCES} source addresses"
            ));
        }
        for i in 0..n {
            out.push(nth(first, i));
        }
    }
    if out.is_empty() {
        return Err("no source address given".into());
    }
    Ok(out)
}

fn bounds(item: &str) -> Result<(IpAddr, IpAddr), String> {
    let addr = |a: &str| -> Result<IpAddr, String> {
        a.trim()
            .parse()
            .map_err(|_| format!("`{a}` is not an IP address"))
    };
    if let Some((a, b)) = item.split_once('-') {
        return Ok((addr(a)?, addr(b)?));
    }
    if let Some((a, p)) = item.split_once('/') {
        let base = addr(a)?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let p: u32 = p
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("`{item}`: the prefix length must be 0..={max}"))?;
        return Ok(match base {
            IpAddr::V4(a) => {
                let host = u32::MAX.checked_shr(p).unwrap_or(0);
                let b = u32::from(a) & !host;
                (IpAddr::V4(b.into()), IpAddr::V4((b | host).into()))
            }
            IpAddr::V6(a) => {
                let host = u128::MAX.checked_shr(p).unwrap_or(0);
                let b = u128::from(a) & !host;
                (IpAddr::V6(b.into()), IpAddr::V6((b | host).into()))
            }
        });
    }
    let a = addr(item)?;
    Ok((a, a))
}

/// How many addresses `first..=last` holds; `None` if backwards or mixed.
fn span(first: IpAddr, last: IpAddr) -> Option<u128> {
    match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) if a <= b => {
            Some(u128::from(u32::from(b) - u32::from(a)) + 1)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if a <= b => (u128::from(b) - u128::from(a)).checked_add(1),
        _ => None,
    }
}

fn nth(first: IpAddr, i: u128) -> IpAddr {
    match first {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) + i as u32)),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) + i)),
    }
}

/// Checks, without sending anything, that every source address is one of
/// the current network namespace's (a UDP socket can bind it), so a run
/// from the wrong namespace stops at once with one line that says what to
/// do, instead of failing every connection with "no local port". Checks at
/// most the first and the last address and every 64th between (a list is
/// one lab's range, assigned together).
pub fn check_sources_local(sources: &[IpAddr]) -> io::Result<()> {
    let step = 64;
    let picks = sources.iter().step_by(step).chain(sources.last()).copied();
    for src in picks {
        match UdpSocket::bind(SocketAddr::new(src, 0)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "source address {src} is not an address of this network namespace: \
                         run inside the lab (--netns smrnet-lab-ID, or under `smrnet lab exec`; \
                         `sudo smrnet lab up` starts one) or pass --source-addrs with local \
                         addresses"
                    ),
                ));
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot bind source address {src}: {e}"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn lists_ranges_and_prefixes_expand_in_order() {
        assert_eq!(
            parse_sources("198.18.0.1, 198.18.0.16-198.18.0.18").unwrap(),
            ips(&["198.18.0.1", "198.18.0.16", "198.18.0.17", "198.18.0.18"])
        );
        assert_eq!(
            parse_sources("198.18.0.17/30").unwrap(),
            ips(&["198.18.0.16", "198.18.0.17", "198.18.0.18", "198.18.0.19"])
        );
        assert_eq!(
            parse_sources("fd00:5eed::10-fd00:5eed::11").unwrap(),
            ips(&["fd00:5eed::10", "fd00:5eed::11"])
        );
    }

    #[test]
    fn bad_lists_are_refused_with_the_item_named() {
        assert!(
            parse_sources("198.18.0.9-198.18.0.1")
                .unwrap_err()
                .contains("low to high")
        );
        assert!(
            parse_sources("198.18.0.1-::1")
                .unwrap_err()
                .contains("198.18.0.1-::1")
        );
        assert!(parse_sources("nope").unwrap_err().contains("`nope`"));
        assert!(
            parse_sources("198.18.0.0/33")
                .unwrap_err()
                .contains("0..=32")
        );
        assert!(
            parse_sources("10.0.0.0/8")
                .unwrap_err()
                .contains("more than")
        );
        assert!(parse_sources(" , ").is_err());
    }

    #[test]
    fn a_source_address_of_another_namespace_is_refused_at_once_naming_the_fix() {
        // 198.18.0.77 (benchmark range) is assigned nowhere in a test's
        // namespace; loopback always is.
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let there: IpAddr = "198.18.0.77".parse().unwrap();
        check_sources_local(&[here]).unwrap();
        let e = check_sources_local(&[here, there]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "one line: {msg}");
        assert!(
            msg.contains("198.18.0.77") && msg.contains("--netns"),
            "{msg}"
        );
    }
}
