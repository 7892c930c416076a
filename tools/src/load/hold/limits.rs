//! What a hold of `n` connections needs from the machine, checked before
//! anything is opened, each refusal one line that names the limit and the
//! way past it.
//!
//! - Four-tuples: every connection to one target needs its own (source
//!   address, local port) pair, so `n` must fit in the source addresses
//!   times the namespace's `net.ipv4.ip_local_port_range` (a lab sets
//!   1024-65535 and has 17 client addresses: 1,096,704 pairs per target).
//! - Descriptors machine-wide: `fs.file-max` less those open now (the
//!   per-process limit is met by spreading the hold over processes).
//! - The daemon's connection pool: `n` more than its `--pool-cap` allows
//!   would be refused by the daemon one connection at a time.

use std::io;
use std::net::IpAddr;

/// The (source address, local port) pairs available towards one target:
/// one address (the kernel's choice) when no source addresses are given.
pub(super) fn four_tuples(sources: &[IpAddr], ports: (u32, u32)) -> u64 {
    let per_addr = u64::from(ports.1.saturating_sub(ports.0)) + 1;
    sources.len().max(1) as u64 * per_addr
}

/// Refuse `n` connections to one target from `sources` with local ports
/// `ports` (inclusive) if they cannot all have distinct pairs.
pub(super) fn check_four_tuples(n: usize, sources: &[IpAddr], ports: (u32, u32)) -> io::Result<()> {
    let have = four_tuples(sources, ports);
    if n as u64 <= have {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{n} connections to one target need {n} distinct (source address, local port) \
             pairs, but {} source address(es) x ports {}-{} (net.ipv4.ip_local_port_range) \
             give {have}: add source addresses (--source-addrs; a lab has 17) or widen the \
             port range",
            sources.len().max(1),
            ports.0,
            ports.1
        ),
    ))
}

/// Refuse `n` more descriptors if `fs.file-max` less those allocated now
/// (`fs.file-nr`) cannot hold them (with `spare` for everything else).
pub(super) fn check_file_max(n: usize, file_nr: u64, file_max: u64, spare: u64) -> io::Result<()> {
    let free = file_max.saturating_sub(file_nr);
    if n as u64 + spare <= free {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{n} connections need {n} open files, but fs.file-max ({file_max}) leaves {free} \
         free machine-wide: raise it (sysctl fs.file-max) or ask for fewer connections"
    )))
}

/// Refuse `n` more connections if the daemon's pool (`max_objects`, with
/// `live` in use) cannot hold them.
pub(super) fn check_pool(n: usize, live: u64, max_objects: u64) -> io::Result<()> {
    if n as u64 + live <= max_objects {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{n} connections would not fit the daemon's connection pool ({live} live of \
         --pool-cap {max_objects}): start the daemon with a larger --pool-cap (e.g. \
         `smrnet lab up -- --pool-cap {}`)",
        n as u64 + live + 1024
    )))
}

/// `net.ipv4.ip_local_port_range` of the calling thread's namespace.
pub(super) fn local_port_range() -> io::Result<(u32, u32)> {
    let s = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")?;
    let mut it = s.split_whitespace().map(str::parse::<u32>);
    match (it.next(), it.next()) {
        (Some(Ok(lo)), Some(Ok(hi))) if lo <= hi => Ok((lo, hi)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot parse ip_local_port_range `{}`", s.trim()),
        )),
    }
}

/// `(allocated, max)` from `fs.file-nr`.
pub(super) fn file_nr() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/sys/fs/file-nr").ok()?;
    let v: Vec<u64> = s
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    Some((*v.first()?, *v.get(2)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u8) -> Vec<IpAddr> {
        (0..n).map(|i| IpAddr::from([198, 18, 0, 16 + i])).collect()
    }

    #[test]
    fn a_lab_s_17_addresses_carry_a_million_and_16_do_not_carry_1_1_million() {
        let lab_ports = (1024, 65535);
        check_four_tuples(1_000_000, &addrs(17), lab_ports).unwrap();
        assert_eq!(four_tuples(&addrs(17), lab_ports), 17 * 64_512);
        let e = check_four_tuples(1_100_000, &addrs(16), lab_ports).unwrap_err();
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "one line: {msg}");
        assert!(
            msg.contains("16 source address(es)") && msg.contains("1024-65535"),
            "{msg}"
        );
        assert!(msg.contains("--source-addrs"), "{msg}");
    }

    #[test]
    fn no_source_address_means_one_and_the_default_range_caps_it() {
        let linux_default = (32768, 60999);
        check_four_tuples(28_232, &[], linux_default).unwrap();
        assert!(check_four_tuples(28_233, &[], linux_default).is_err());
    }

    #[test]
    fn file_max_and_pool_cap_refuse_with_the_flag_to_change() {
        check_file_max(1_000_000, 40_000, 2_466_103, 1024).unwrap();
        let e = check_file_max(1_000_000, 40_000, 1_000_000, 1024).unwrap_err();
        assert!(e.to_string().contains("fs.file-max"), "{e}");
        check_pool(1_000_000, 0, 1_200_000).unwrap();
        let e = check_pool(1_000_000, 5, 262_144).unwrap_err().to_string();
        assert!(!e.contains('\n') && e.contains("--pool-cap 1001029"), "{e}");
    }

    #[test]
    fn this_namespace_s_port_range_and_file_counts_are_read() {
        let (lo, hi) = local_port_range().unwrap();
        assert!(lo <= hi && hi <= 65535);
        let (nr, max) = file_nr().unwrap();
        assert!(nr > 0 && max >= nr);
    }
}
