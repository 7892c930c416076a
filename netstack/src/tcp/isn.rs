//! Initial sequence numbers, RFC 6528.
//!
//! The RFC's recipe: ISN = M + F(local address, local port, remote address, remote
//! port, secret), where M is a clock ticking every 4 microseconds and F a keyed
//! pseudorandom function. The clock keeps successive incarnations of one 4-tuple
//! moving forward through sequence space (so old duplicates fall outside the new
//! window, RFC 9293 §3.4.1); the keyed offset gives every 4-tuple its own,
//! unguessable starting point, so an off-path attacker who learns one connection's
//! ISN learns nothing about another's (the blind-injection attacks of RFC 6528 §1).
//!
//! F is SipHash-2-4 (a PRF keyed with 128 bits, see `siphash.rs`) over the
//! 4-tuple alone: for IPv4 a 20-octet message, ten SipHash rounds, the same
//! shape as a SYN cookie's MAC. It is computed once per SYN that gets a
//! cache entry (and again for a retransmitted one), never for a cookie. We
//! keep the 2-4 rounds rather than a lighter PRF: the output is sent to the
//! peer, and the ISN of another peer's connection must stay unpredictable
//! to an off-path attacker who collects as many of its own as it likes.
//! Invariant: the same tuple's ISNs advance with `now` at 250,000 per second,
//! wrapping every ~4.77 hours; the offset never changes for the life of the key.

use std::net::SocketAddr;

use super::seq::SeqNum;
use super::siphash::{SecretKey, hash_tuple};
use crate::time::Instant;

/// Nanoseconds per tick of RFC 6528's M clock.
const TICK_NANOS: u64 = 4_000;

/// Chooses initial sequence numbers for connections we open or accept.
#[derive(Clone, Debug)]
pub struct IsnGenerator {
    key: SecretKey,
}

impl IsnGenerator {
    /// A generator keyed with `key` (choose it at start-up, e.g. [`SecretKey::random`]).
    pub fn new(key: SecretKey) -> IsnGenerator {
        IsnGenerator { key }
    }

    /// The ISN for the connection between `local` and `foreign` at `now`.
    pub fn isn(&self, local: SocketAddr, foreign: SocketAddr, now: Instant) -> SeqNum {
        // M: the 4 µs clock, truncated to 32 bits (it wraps, as sequence space does).
        let m = (now.as_nanos() / TICK_NANOS) as u32;
        // F: the keyed hash of the 4-tuple, truncated to 32 bits.
        let f = hash_tuple(&self.key, local, foreign, [0, 0]) as u32;
        SeqNum(m.wrapping_add(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    fn addrs() -> (SocketAddr, SocketAddr) {
        (
            "10.0.0.1:80".parse().unwrap(),
            "10.0.0.2:40000".parse().unwrap(),
        )
    }

    fn generator() -> IsnGenerator {
        IsnGenerator::new(SecretKey([7; 16]))
    }

    #[test]
    fn the_clock_adds_one_every_four_microseconds() {
        let (local, foreign) = addrs();
        let t0 = Instant::from_secs(1000);
        let a = generator().isn(local, foreign, t0);
        let b = generator().isn(local, foreign, t0 + Duration::from_micros(4_000));
        assert_eq!(b - a, 1000);
        let c = generator().isn(local, foreign, t0 + Duration::from_secs(1));
        assert_eq!(c - a, 250_000);
    }

    #[test]
    fn the_offset_depends_on_every_part_of_the_tuple_and_the_key() {
        let (local, foreign) = addrs();
        let now = Instant::ZERO;
        let base = generator().isn(local, foreign, now);
        let other_port: SocketAddr = "10.0.0.2:40001".parse().unwrap();
        let other_ip: SocketAddr = "10.0.0.3:40000".parse().unwrap();
        assert_ne!(generator().isn(local, other_port, now), base);
        assert_ne!(generator().isn(local, other_ip, now), base);
        assert_ne!(generator().isn(foreign, local, now), base);
        assert_ne!(
            IsnGenerator::new(SecretKey([8; 16])).isn(local, foreign, now),
            base
        );
    }
}
