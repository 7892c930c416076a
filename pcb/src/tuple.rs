//! Connection identities: [`Endpoint`], [`FourTuple`], and the compact
//! [`Key`] the tables store and compare.
//!
//! Invariant: `Key::from(t) == Key::from(u)` exactly when `t` and `u` name the
//! same connection. IPv4 addresses are stored in the IPv4-mapped IPv6 space
//! with a family tag, so an IPv4 tuple and the IPv4-mapped IPv6 tuple with the
//! same numbers are different connections (as they are on the wire), and a
//! tuple that mixes families is normalised to IPv6.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One end of a connection: an address and a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

impl Endpoint {
    pub fn new(addr: impl Into<IpAddr>, port: u16) -> Endpoint {
        Endpoint {
            addr: addr.into(),
            port,
        }
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(s: SocketAddr) -> Endpoint {
        Endpoint::new(s.ip(), s.port())
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&SocketAddr::new(self.addr, self.port), f)
    }
}

/// A TCP connection's identity as seen by this host: (local address, local
/// port, foreign address, foreign port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FourTuple {
    pub local: Endpoint,
    pub foreign: Endpoint,
}

impl FourTuple {
    pub fn new(local: impl Into<Endpoint>, foreign: impl Into<Endpoint>) -> FourTuple {
        FourTuple {
            local: local.into(),
            foreign: foreign.into(),
        }
    }

    /// Both ends IPv4.
    pub fn v4(laddr: [u8; 4], lport: u16, faddr: [u8; 4], fport: u16) -> FourTuple {
        FourTuple::new(
            Endpoint::new(Ipv4Addr::from(laddr), lport),
            Endpoint::new(Ipv4Addr::from(faddr), fport),
        )
    }

    /// Both ends IPv6.
    pub fn v6(laddr: Ipv6Addr, lport: u16, faddr: Ipv6Addr, fport: u16) -> FourTuple {
        FourTuple::new(Endpoint::new(laddr, lport), Endpoint::new(faddr, fport))
    }
}

impl fmt::Display for FourTuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <-> {}", self.local, self.foreign)
    }
}

/// The stored form of a [`FourTuple`]: two 128-bit addresses, both ports and
/// the family in one word. Compared field by field without branches on the
/// family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    faddr: u128,
    laddr: u128,
    /// `lport << 16 | fport`, and bit 32 set for IPv6.
    ports: u64,
}

const V6: u64 = 1 << 32;

fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl Key {
    /// A key no connection has (family bits that `from` never sets): what a
    /// reused PCB's tuple is overwritten with in poison builds.
    pub(crate) const POISON: Key = Key {
        faddr: u128::MAX,
        laddr: u128::MAX,
        ports: u64::MAX,
    };

    /// The key of an unused PCB (never matches a lookup: no family bits).
    pub(crate) const EMPTY: Key = Key {
        faddr: 0,
        laddr: 0,
        ports: 1 << 40,
    };

    /// Feed the key to a hasher: three words, the foreign address first (it
    /// is what the peer varies most).
    #[inline(always)]
    pub(crate) fn hash_into<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u128(self.faddr);
        h.write_u128(self.laddr);
        h.write_u64(self.ports);
    }

    /// Local port.
    pub fn local_port(&self) -> u16 {
        (self.ports >> 16) as u16
    }

    /// The tuple back (mixed-family tuples come back as IPv6).
    pub fn tuple(&self) -> FourTuple {
        let addr = |bits: u128| -> IpAddr {
            let v6 = Ipv6Addr::from(bits);
            if self.ports & V6 == 0 {
                IpAddr::V4(v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED))
            } else {
                IpAddr::V6(v6)
            }
        };
        FourTuple::new(
            Endpoint::new(addr(self.laddr), (self.ports >> 16) as u16),
            Endpoint::new(addr(self.faddr), self.ports as u16),
        )
    }
}

/// The same words as `hash_into`, so a `HashMap<Key, _, FlowBuildHasher>`
/// hashes exactly as the SMR table does.
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.hash_into(h)
    }
}

impl From<&FourTuple> for Key {
    #[inline]
    fn from(t: &FourTuple) -> Key {
        let v6 = t.local.addr.is_ipv6() || t.foreign.addr.is_ipv6();
        Key {
            faddr: addr_bits(t.foreign.addr),
            laddr: addr_bits(t.local.addr),
            ports: u64::from(t.local.port) << 16 | u64::from(t.foreign.port) | (v6 as u64) << 32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trips_both_families() {
        let a = FourTuple::v4([10, 0, 0, 1], 80, [192, 0, 2, 7], 40000);
        assert_eq!(Key::from(&a).tuple(), a);
        let b = FourTuple::v6(Ipv6Addr::LOCALHOST, 443, "2001:db8::1".parse().unwrap(), 5);
        assert_eq!(Key::from(&b).tuple(), b);
    }

    #[test]
    fn v4_and_v4_mapped_v6_are_different_connections() {
        let a = FourTuple::v4([10, 0, 0, 1], 80, [192, 0, 2, 7], 40000);
        let m = FourTuple::v6(
            Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped(),
            80,
            Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped(),
            40000,
        );
        assert_ne!(Key::from(&a), Key::from(&m));
        assert_ne!(Key::from(&a), Key::EMPTY);
    }
}
