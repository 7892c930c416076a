//! The prefix of `--spoof-prefix` (`198.19.128.0/17`, `fd00:5eed:0:1::/64`):
//! parsing with messages that name the flag, membership, and drawing a
//! uniform random address inside it.

use smr::rng::SplitMix64;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 network: the address with its host bits cleared, and the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Prefix {
    network: Ipv4Addr,
    len: u8,
}

impl Ipv4Prefix {
    /// `addr/len` with the host bits of `addr` cleared; `len` at most 32.
    pub const fn new(addr: Ipv4Addr, len: u8) -> Option<Ipv4Prefix> {
        if len > 32 {
            return None;
        }
        Some(Ipv4Prefix {
            network: Ipv4Addr::from_bits(addr.to_bits() & mask(len)),
            len,
        })
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The last address of the prefix.
    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.len))
    }

    /// How many addresses the prefix holds.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.len))
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.len) == u32::from(self.network)
    }

    /// Whether every address of `self` is inside `outer`.
    pub fn is_within(&self, outer: &Ipv4Prefix) -> bool {
        self.len >= outer.len && outer.contains(self.network)
    }

    /// Whether the two prefixes share any address.
    pub fn overlaps(&self, other: &Ipv4Prefix) -> bool {
        self.is_within(other) || other.is_within(self)
    }

    /// A uniformly drawn address of the prefix.
    pub fn random(&self, rng: &mut SplitMix64) -> Ipv4Addr {
        let host = rng.next_u32() & !mask(self.len);
        Ipv4Addr::from(u32::from(self.network) | host)
    }
}

const fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

impl FromStr for Ipv4Prefix {
    type Err = String;

    /// `A.B.C.D/LEN`; a bare address means `/32`. Host bits must be clear,
    /// so a typo such as `198.19.128.1/17` is refused rather than guessed at.
    fn from_str(s: &str) -> Result<Ipv4Prefix, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, l),
            None => (s, "32"),
        };
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("`{s}`: `{addr}` is not an IPv4 address"))?;
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or_else(|| format!("`{s}`: the prefix length must be 0..=32"))?;
        let prefix = Ipv4Prefix::new(addr, len).expect("length checked above");
        if prefix.network != addr {
            return Err(format!("`{s}`: host bits are set; did you mean {prefix}?"));
        }
        Ok(prefix)
    }
}

/// An IPv6 network: the address with its host bits cleared, and the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Prefix {
    network: Ipv6Addr,
    len: u8,
}

const fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len as u32)
    }
}

impl Ipv6Prefix {
    /// `addr/len` with the host bits of `addr` cleared; `len` at most 128.
    pub const fn new(addr: Ipv6Addr, len: u8) -> Option<Ipv6Prefix> {
        if len > 128 {
            return None;
        }
        Some(Ipv6Prefix {
            network: Ipv6Addr::from_bits(addr.to_bits() & mask6(len)),
            len,
        })
    }

    pub fn network(&self) -> Ipv6Addr {
        self.network
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        addr.to_bits() & mask6(self.len) == self.network.to_bits()
    }

    /// A uniformly drawn address of the prefix.
    pub fn random(&self, rng: &mut SplitMix64) -> Ipv6Addr {
        let bits = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
        Ipv6Addr::from_bits(self.network.to_bits() | (bits & !mask6(self.len)))
    }
}

impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

/// `--spoof-prefix`: an IPv4 or an IPv6 prefix, of the target's family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoofPrefix {
    V4(Ipv4Prefix),
    V6(Ipv6Prefix),
}

impl SpoofPrefix {
    /// The lab's spoof prefix of `target`'s family ([`crate::lab::SPOOF_V4`],
    /// [`crate::lab::SPOOF_V6`]): routed by the lab toward the daemon, clear
    /// of every address the lab uses.
    pub fn lab_default(target: IpAddr) -> SpoofPrefix {
        match target {
            IpAddr::V4(_) => {
                let (net, len) = crate::lab::SPOOF_V4;
                SpoofPrefix::V4(Ipv4Prefix::new(net, len).expect("valid"))
            }
            IpAddr::V6(_) => {
                let (net, len) = crate::lab::SPOOF_V6;
                SpoofPrefix::V6(Ipv6Prefix::new(net, len).expect("valid"))
            }
        }
    }

    pub fn network(&self) -> IpAddr {
        match self {
            SpoofPrefix::V4(p) => IpAddr::V4(p.network()),
            SpoofPrefix::V6(p) => IpAddr::V6(p.network()),
        }
    }

    pub fn prefix_len(&self) -> u8 {
        match self {
            SpoofPrefix::V4(p) => p.prefix_len(),
            SpoofPrefix::V6(p) => p.prefix_len(),
        }
    }

    /// Whether `addr` is inside (an address of the other family never is).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self, addr) {
            (SpoofPrefix::V4(p), IpAddr::V4(a)) => p.contains(a),
            (SpoofPrefix::V6(p), IpAddr::V6(a)) => p.contains(a),
            _ => false,
        }
    }

    /// A uniformly drawn address of the prefix.
    pub fn random(&self, rng: &mut SplitMix64) -> IpAddr {
        match self {
            SpoofPrefix::V4(p) => IpAddr::V4(p.random(rng)),
            SpoofPrefix::V6(p) => IpAddr::V6(p.random(rng)),
        }
    }
}

impl fmt::Display for SpoofPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpoofPrefix::V4(p) => p.fmt(f),
            SpoofPrefix::V6(p) => p.fmt(f),
        }
    }
}

impl FromStr for SpoofPrefix {
    type Err = String;

    /// An IPv4 prefix as [`Ipv4Prefix`] parses it, or `ADDR/LEN` with an
    /// IPv6 address (a bare address means `/128`); host bits must be clear.
    fn from_str(s: &str) -> Result<SpoofPrefix, String> {
        if !s.contains(':') {
            return s.parse().map(SpoofPrefix::V4);
        }
        let (addr, len) = s.split_once('/').unwrap_or((s, "128"));
        let addr: Ipv6Addr = addr
            .parse()
            .map_err(|_| format!("`{s}`: `{addr}` is not an IPv6 address"))?;
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= 128)
            .ok_or_else(|| format!("`{s}`: the prefix length must be 0..=128"))?;
        let prefix = Ipv6Prefix::new(addr, len).expect("length checked above");
        if prefix.network != addr {
            return Err(format!("`{s}`: host bits are set; did you mean {prefix}?"));
        }
        Ok(SpoofPrefix::V6(prefix))
    }
}
