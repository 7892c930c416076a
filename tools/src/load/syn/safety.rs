//! What a flood may be aimed at: the shared load policy ([`crate::load::safety`]:
//! loopback and the lab's 198.18.0.0/15 and fd00:5eed::/64, plus
//! `--allow-network` CIDRs) for the target and for the whole spoof prefix,
//! and rules of its own: the spoof prefix is of the target's family, and
//! keeps clear of the target and of the lab's addresses, or SYN-ACKs would
//! reach a real socket and be answered with RSTs.

use super::prefix::SpoofPrefix;
use crate::load::safety::{self, Cidr};
use std::net::{IpAddr, SocketAddr};

/// Refuse a target or spoof prefix the policy does not allow, with a message
/// that names the flag.
pub fn check(target: SocketAddr, spoof: &SpoofPrefix, allowed: &[Cidr]) -> Result<(), String> {
    let ip = target.ip();
    safety::check_target(ip, allowed).map_err(|e| format!("--target: {e}"))?;
    if ip.is_ipv4() != spoof.network().is_ipv4() {
        return Err(format!(
            "--spoof-prefix {spoof}: not of the target {ip}'s address family"
        ));
    }
    let net = Cidr::new(spoof.network(), spoof.prefix_len())
        .ok_or_else(|| format!("--spoof-prefix {spoof}: not a valid prefix"))?;
    safety::check_prefix(net, allowed, "spoof prefix")
        .map_err(|e| format!("--spoof-prefix {spoof}: {e}"))?;
    if spoof.contains(ip) {
        return Err(format!("--spoof-prefix {spoof}: contains the target {ip}"));
    }
    let lab_addrs = crate::lab::client_addrs_v4().into_iter().chain([
        IpAddr::V4(crate::lab::DAEMON_V4),
        IpAddr::V6(crate::lab::KERNEL_V6),
        IpAddr::V6(crate::lab::DAEMON_V6),
    ]);
    for lab_addr in lab_addrs {
        if spoof.contains(lab_addr) {
            return Err(format!(
                "--spoof-prefix {spoof}: contains the lab address {lab_addr}; pick a range \
                 nothing uses, such as {}",
                SpoofPrefix::lab_default(lab_addr)
            ));
        }
    }
    Ok(())
}
