//! What a flood may be aimed at: the shared load policy ([`crate::load::safety`]:
//! loopback and the lab's 198.18.0.0/15, plus `--allow-network` CIDRs) for
//! the target and for the whole spoof prefix, and one rule of its own: the
//! spoof prefix must keep clear of the target and of the lab's addresses, or
//! SYN-ACKs would reach a real socket and be answered with RSTs.

use super::prefix::Ipv4Prefix;
use crate::load::safety::{self, Cidr};
use std::net::{IpAddr, SocketAddrV4};

/// Refuse a target or spoof prefix the policy does not allow, with a message
/// that names the flag.
pub fn check(target: SocketAddrV4, spoof: &Ipv4Prefix, allowed: &[Cidr]) -> Result<(), String> {
    let ip = *target.ip();
    safety::check_target(IpAddr::V4(ip), allowed).map_err(|e| format!("--target: {e}"))?;
    let net = Cidr::new(IpAddr::V4(spoof.network()), spoof.prefix_len())
        .ok_or_else(|| format!("--spoof-prefix {spoof}: not a valid prefix"))?;
    safety::check_prefix(net, allowed, "spoof prefix")
        .map_err(|e| format!("--spoof-prefix {spoof}: {e}"))?;
    if spoof.contains(ip) {
        return Err(format!("--spoof-prefix {spoof}: contains the target {ip}"));
    }
    let lab_addrs = crate::lab::client_addrs_v4()
        .into_iter()
        .chain([IpAddr::V4(crate::lab::DAEMON_V4)]);
    for lab_addr in lab_addrs {
        if matches!(lab_addr, IpAddr::V4(a) if spoof.contains(a)) {
            return Err(format!(
                "--spoof-prefix {spoof}: contains the lab address {lab_addr}; pick a range \
                 nothing uses, such as 198.19.128.0/17"
            ));
        }
    }
    Ok(())
}
