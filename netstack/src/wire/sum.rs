//! The Internet checksum (RFC 1071) over wide words.
//!
//! Every segment in and out is summed once (its checksum verified or
//! written), so this is on every packet's path. RFC 1071 §2 gives the two
//! properties used here: the one's-complement sum is independent of byte
//! order (sum native-endian words, swap once at the end), and it can be
//! taken over wider words and folded down, because 2^16 ≡ 1 modulo 2^16 − 1.
//! So the loop adds eight octets at a time into a 64-bit accumulator with
//! end-around carry, and folds 64 → 32 → 16 bits at the end.
//!
//! Invariant: [`data`] equals the RFC 1071 sum of `bytes` read as big-endian
//! 16-bit words (an odd last octet padded with a zero octet), folded and not
//! complemented, for every input; nothing allocates.

use core::net::{Ipv4Addr, Ipv6Addr};

/// One's-complement addition of two 64-bit words (end-around carry).
#[inline(always)]
fn add(acc: u64, word: u64) -> u64 {
    let (sum, carry) = acc.overflowing_add(word);
    sum + u64::from(carry)
}

/// Folds a 64-bit one's-complement sum to 16 bits.
#[inline(always)]
fn fold(acc: u64) -> u16 {
    let acc = (acc >> 32) + (acc & 0xffff_ffff);
    let acc = (acc >> 32) + (acc & 0xffff_ffff);
    let acc = (acc >> 16) + (acc & 0xffff);
    let acc = (acc >> 16) + (acc & 0xffff);
    acc as u16
}

/// The native-endian one's-complement sum of `bytes`, not folded.
#[inline]
fn native(bytes: &[u8]) -> u64 {
    let mut acc = 0u64;
    let (words, rest) = bytes.as_chunks::<8>();
    for w in words {
        acc = add(acc, u64::from_ne_bytes(*w));
    }
    let (quads, rest) = rest.as_chunks::<4>();
    if let Some(q) = quads.first() {
        acc = add(acc, u64::from(u32::from_ne_bytes(*q)));
    }
    let (pairs, rest) = rest.as_chunks::<2>();
    if let Some(p) = pairs.first() {
        acc = add(acc, u64::from(u16::from_ne_bytes(*p)));
    }
    if let Some(&last) = rest.first() {
        // The odd octet is the high half of a big-endian word: in memory
        // order it comes first, followed by a zero pad.
        acc = add(acc, u64::from(u16::from_ne_bytes([last, 0])));
    }
    acc
}

/// Converts a folded native-endian sum to its big-endian value.
#[inline(always)]
fn to_be(sum: u16) -> u16 {
    u16::from_be_bytes(sum.to_ne_bytes())
}

/// The RFC 1071 sum of `bytes`, folded, not complemented.
#[inline]
pub(crate) fn data(bytes: &[u8]) -> u16 {
    to_be(fold(native(bytes)))
}

/// The one's-complement sum of two folded sums.
#[inline]
pub(crate) fn combine(a: u16, b: u16) -> u16 {
    let s = u32::from(a) + u32::from(b);
    ((s >> 16) + (s & 0xffff)) as u16
}

/// The sum of the IPv4 pseudo-header (RFC 9293 §3.1) for `len` octets of
/// `protocol`, folded, not complemented.
#[inline]
pub(crate) fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u16 {
    let words = [
        u64::from(src.to_bits()),
        u64::from(dst.to_bits()),
        u64::from(protocol),
        u64::from(len),
    ];
    // Big-endian values summed as numbers: already in host order.
    fold(words.iter().sum())
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1) for `len` octets of
/// `protocol`, folded, not complemented.
#[inline]
pub(crate) fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, protocol: u8, len: u32) -> u16 {
    let addrs = combine(data(&src.octets()), data(&dst.octets()));
    let rest = fold(u64::from(len) + u64::from(protocol));
    combine(addrs, rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{IpProtocol, checksum};

    /// The sum as RFC 1071 spells it: big-endian 16-bit words, one at a time.
    fn reference(bytes: &[u8]) -> u16 {
        let mut acc: u64 = 0;
        for pair in bytes.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            let lo = pair.get(1).map_or(0, |&b| u64::from(b));
            acc += hi | lo;
        }
        while acc > 0xffff {
            acc = (acc >> 16) + (acc & 0xffff);
        }
        acc as u16
    }

    fn bytes(seed: u64, len: usize, fill: Option<u8>) -> Vec<u8> {
        let mut rng = smr::rng::SplitMix64::new(seed);
        (0..len)
            .map(|_| fill.unwrap_or_else(|| rng.next_u64() as u8))
            .collect()
    }

    #[test]
    fn every_length_and_alignment_matches_the_word_by_word_sum() {
        for len in 0..300 {
            for (i, fill) in [None, Some(0xff), Some(0), Some(0x80)]
                .into_iter()
                .enumerate()
            {
                let buf = bytes(len as u64 * 7 + i as u64, len + 8, fill);
                for offset in 0..8 {
                    let slice = &buf[offset..offset + len];
                    assert_eq!(data(slice), reference(slice), "len {len} offset {offset}");
                    assert_eq!(
                        data(slice),
                        checksum::data(slice),
                        "len {len} offset {offset}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_long_run_of_ones_carries_around() {
        let buf = vec![0xff; 65_535];
        assert_eq!(data(&buf), reference(&buf));
        let buf = bytes(9, 65_535, None);
        assert_eq!(data(&buf), reference(&buf));
    }

    #[test]
    fn pseudo_headers_match_smoltcp() {
        let mut rng = smr::rng::SplitMix64::new(3);
        for _ in 0..10_000 {
            let (a, b) = (rng.next_u64(), rng.next_u64());
            let len = (rng.next_u64() & 0xffff) as u16;
            let proto = rng.next_u64() as u8;
            let (s4, d4) = (Ipv4Addr::from_bits(a as u32), Ipv4Addr::from_bits(b as u32));
            assert_eq!(
                pseudo_header_v4(s4, d4, proto, len),
                checksum::pseudo_header_v4(&s4, &d4, IpProtocol::from(proto), u32::from(len))
            );
            let s6 = Ipv6Addr::from_bits(u128::from(a) << 64 | u128::from(b));
            let d6 = Ipv6Addr::from_bits(u128::from(b) << 64 | u128::from(!a));
            assert_eq!(
                pseudo_header_v6(s6, d6, proto, u32::from(len)),
                checksum::pseudo_header_v6(&s6, &d6, IpProtocol::from(proto), u32::from(len))
            );
        }
    }
}
