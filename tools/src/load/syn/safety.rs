//! What a flood may be aimed at: the lab's IPv4 range (198.18.0.0/15,
//! RFC 2544 benchmarking space, which only exists inside lab namespaces) or
//! loopback, unless `--allow-network`. The spoof prefix must also keep clear
//! of the target and of the lab's kernel address, or SYN-ACKs would reach a
//! real socket and the kernel would answer them with RSTs.

use super::prefix::Ipv4Prefix;
use std::net::{Ipv4Addr, SocketAddrV4};

/// The lab's IPv4 network.
pub const LAB_V4: Ipv4Prefix = match Ipv4Prefix::new(Ipv4Addr::new(198, 18, 0, 0), 15) {
    Some(p) => p,
    None => panic!("valid prefix"),
};

/// Refuse a target or spoof prefix outside the lab, with a message that
/// names the flag.
pub fn check(target: SocketAddrV4, spoof: &Ipv4Prefix, allow_network: bool) -> Result<(), String> {
    let ip = *target.ip();
    let loopback = Ipv4Prefix::new(Ipv4Addr::new(127, 0, 0, 0), 8).expect("valid");
    if !allow_network && !LAB_V4.contains(ip) && !loopback.contains(ip) {
        return Err(format!(
            "--target {target}: outside the lab's {LAB_V4} and loopback; a flood goes only \
             into a lab (pass --allow-network only for a network you own)"
        ));
    }
    if !allow_network && !spoof.is_within(&LAB_V4) {
        return Err(format!(
            "--spoof-prefix {spoof}: not inside the lab's {LAB_V4}; spoofed SYN-ACKs must \
             stay in the lab (pass --allow-network only for a network you own)"
        ));
    }
    if spoof.contains(ip) {
        return Err(format!("--spoof-prefix {spoof}: contains the target {ip}"));
    }
    for lab_addr in [crate::lab::KERNEL_V4, crate::lab::DAEMON_V4] {
        if LAB_V4.contains(ip) && spoof.contains(lab_addr) {
            return Err(format!(
                "--spoof-prefix {spoof}: contains the lab address {lab_addr}; pick a range \
                 nothing uses, such as 198.19.128.0/17"
            ));
        }
    }
    Ok(())
}
