//! An IPv4 prefix (`198.19.128.0/17`) for `--spoof-prefix`: parsing with
//! messages that name the flag, membership, and drawing a uniform random
//! address inside it.

use smr::rng::SplitMix64;
use std::fmt;
use std::net::Ipv4Addr;
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
