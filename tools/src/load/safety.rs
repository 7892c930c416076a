//! Where load may go. Every load generator checks its target (and its
//! source addresses, and any spoofed prefix) here before it sends a packet.
//!
//! Policy: loopback (127.0.0.0/8, ::1) and the lab's ranges (198.18.0.0/15,
//! RFC 2544's benchmarking range; fd00:5eed::/64, the lab's ULA prefix on
//! its link, and fd00:5eed:0:1::/64, the spoof prefix the lab routes toward
//! the daemon) are always allowed; they exist only on this machine or inside namespaces
//! the lab created. Anything else is refused unless the user names a network
//! of their own with `--allow-network CIDR` (repeatable). IPv4-mapped IPv6
//! addresses are judged as the IPv4 address they carry; the unspecified
//! address is never a target.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address prefix: `198.18.0.0/15`, `fd00:5eed::/64`, or a bare address
/// (a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `addr/prefix`; `None` when the prefix is longer than the address.
    pub const fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix > max {
            None
        } else {
            Some(Cidr { addr, prefix })
        }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies inside this prefix (same family only).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an address or CIDR prefix (e.g. 192.0.2.0/24)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0..={max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

/// Networks every load generator may use without being told.
pub const ALWAYS_ALLOWED: [Cidr; 5] = [
    Cidr {
        addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
        prefix: 8,
    },
    Cidr {
        addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
        prefix: 128,
    },
    Cidr {
        addr: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 0)),
        prefix: 15,
    },
    Cidr {
        addr: IpAddr::V6(Ipv6Addr::new(0xfd00, 0x5eed, 0, 0, 0, 0, 0, 0)),
        prefix: 64,
    },
    // The lab's IPv6 spoof prefix, routed toward the daemon
    // (`crate::lab::SPOOF_V6`).
    Cidr {
        addr: IpAddr::V6(Ipv6Addr::new(0xfd00, 0x5eed, 0, 1, 0, 0, 0, 0)),
        prefix: 64,
    },
];

/// A target or source the policy refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub ip: IpAddr,
    /// What the address was for ("target", "source address", ...).
    pub role: &'static str,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ip.is_unspecified() {
            return write!(f, "refusing {} {}: not a real address", self.role, self.ip);
        }
        write!(
            f,
            "refusing {} {}: load goes only to loopback and the lab's networks \
             (127.0.0.0/8, ::1, 198.18.0.0/15, fd00:5eed::/64, fd00:5eed:0:1::/64); if {} is on a network \
             you own and mean to load, say so with --allow-network CIDR",
            self.role, self.ip, self.ip
        )
    }
}

impl std::error::Error for Refused {}

impl From<Refused> for std::io::Error {
    fn from(r: Refused) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, r.to_string())
    }
}

/// Allow `ip` as a load target if it is loopback, in a lab range, or inside
/// one of `allowed` (the user's `--allow-network` list).
pub fn check_target(ip: IpAddr, allowed: &[Cidr]) -> Result<(), Refused> {
    check(ip, allowed, "target")
}

/// The same policy for an address the load is sent from (a bound source
/// address or a spoofed prefix's base); `role` names it in the error.
pub fn check(ip: IpAddr, allowed: &[Cidr], role: &'static str) -> Result<(), Refused> {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    if ip.is_unspecified() {
        return Err(Refused { ip, role });
    }
    if ALWAYS_ALLOWED
        .iter()
        .chain(allowed)
        .any(|net| net.contains(ip))
    {
        Ok(())
    } else {
        Err(Refused { ip, role })
    }
}

/// Check a whole prefix (e.g. a spoofed source range): both its first and
/// its last address must be allowed, which for prefixes means all of it is.
pub fn check_prefix(net: Cidr, allowed: &[Cidr], role: &'static str) -> Result<(), Refused> {
    let (first, last) = match net.addr {
        IpAddr::V4(a) => {
            let host = u32::MAX.checked_shr(u32::from(net.prefix)).unwrap_or(0);
            let base = u32::from(a) & !host;
            (IpAddr::V4(base.into()), IpAddr::V4((base | host).into()))
        }
        IpAddr::V6(a) => {
            let host = u128::MAX.checked_shr(u32::from(net.prefix)).unwrap_or(0);
            let base = u128::from(a) & !host;
            (IpAddr::V6(base.into()), IpAddr::V6((base | host).into()))
        }
    };
    // A prefix is inside an allowed prefix exactly when an allowed prefix
    // no longer than it contains its base address.
    let ok = ALWAYS_ALLOWED
        .iter()
        .chain(allowed)
        .any(|a| a.prefix <= net.prefix && a.contains(first));
    if ok {
        Ok(())
    } else {
        let ip = if check(first, allowed, role).is_err() {
            first
        } else {
            last
        };
        Err(Refused { ip, role })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_public_and_private_addresses_by_default() {
        for bad in [
            "8.8.8.8",
            "10.0.0.1",
            "192.168.1.1",
            "2001:db8::1",
            "fd00:5eee::1",
        ] {
            let err = check_target(ip(bad), &[]).unwrap_err();
            assert_eq!(err.ip, ip(bad));
            assert!(err.to_string().contains("--allow-network"), "{err}");
        }
    }

    #[test]
    fn allows_lab_ranges_and_loopback() {
        for good in [
            "198.18.0.2",
            "198.19.255.254",
            "127.0.0.1",
            "127.3.2.1",
            "::1",
            "fd00:5eed::1",
            "fd00:5eed::ffff:1",
            "fd00:5eed:0:1::7",
        ] {
            assert_eq!(check_target(ip(good), &[]), Ok(()), "{good}");
        }
        // The lab's two IPv6 /64s and nothing past them.
        assert!(check_target(ip("fd00:5eed:0:2::1"), &[]).is_err());
        assert!(check_target(ip("fd00:5eed:1::1"), &[]).is_err());
        // Just outside the lab's /15.
        assert!(check_target(ip("198.20.0.1"), &[]).is_err());
        assert!(check_target(ip("198.17.255.255"), &[]).is_err());
    }

    #[test]
    fn allow_network_admits_only_that_network() {
        let allowed = ["10.0.0.0/24".parse::<Cidr>().unwrap()];
        assert_eq!(check_target(ip("10.0.0.1"), &allowed), Ok(()));
        assert!(check_target(ip("10.0.1.1"), &allowed).is_err());
        assert!(check_target(ip("8.8.8.8"), &allowed).is_err());
    }

    #[test]
    fn mapped_and_unspecified_addresses_are_judged_as_what_they_are() {
        assert!(check_target(ip("::ffff:8.8.8.8"), &[]).is_err());
        assert_eq!(check_target(ip("::ffff:127.0.0.1"), &[]), Ok(()));
        assert!(check_target(ip("0.0.0.0"), &[]).is_err());
        assert!(check_target(ip("::"), &[]).is_err());
        // A /0 the user asked for admits everything but the unspecified address.
        let all = ["0.0.0.0/0".parse::<Cidr>().unwrap()];
        assert_eq!(check_target(ip("8.8.8.8"), &all), Ok(()));
        assert!(check_target(ip("0.0.0.0"), &all).is_err());
    }

    #[test]
    fn source_role_is_named_in_the_error() {
        let err = check(ip("10.1.1.1"), &[], "source address").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("refusing source address 10.1.1.1")
        );
    }

    #[test]
    fn prefixes_must_lie_wholly_inside_an_allowed_network() {
        let p = |s: &str| s.parse::<Cidr>().unwrap();
        assert_eq!(check_prefix(p("198.18.128.0/17"), &[], "spoof"), Ok(()));
        assert_eq!(check_prefix(p("198.18.0.0/15"), &[], "spoof"), Ok(()));
        // Starts inside, ends outside.
        let err = check_prefix(p("198.16.0.0/14"), &[], "spoof").unwrap_err();
        assert_eq!(err.ip, ip("198.16.0.0"));
        let err = check_prefix(p("198.18.0.0/14"), &[], "spoof").unwrap_err();
        assert_eq!(err.ip, ip("198.16.0.0"));
        assert!(err.to_string().contains("spoof"));
        assert_eq!(check_prefix(p("fd00:5eed::/96"), &[], "spoof"), Ok(()));
        assert_eq!(check_prefix(p("fd00:5eed:0:1::/64"), &[], "spoof"), Ok(()));
        assert!(check_prefix(p("fd00:5eed::/63"), &[], "spoof").is_err());
        assert!(check_prefix(p("fd00:5eed:0:2::/64"), &[], "spoof").is_err());
        assert!(check_prefix(p("fd00::/8"), &[], "spoof").is_err());
    }

    #[test]
    fn cidr_parsing_names_the_bad_field() {
        assert_eq!(
            "198.18.0.0/15".parse::<Cidr>().unwrap().to_string(),
            "198.18.0.0/15"
        );
        assert_eq!("::1".parse::<Cidr>().unwrap().prefix(), 128);
        assert!(
            "198.18.0.0/33"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("0..=32")
        );
        assert!(
            "fd00::/129"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("0..=128")
        );
        assert!(
            "example.com/8"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("not an address")
        );
    }
}
