//! The keyed hash behind ISNs and SYN cookies: SipHash-2-4 with a 128-bit secret.
//!
//! RFC 6528 asks for a pseudorandom function keyed with a secret; SYN cookies need a
//! MAC. SipHash-2-4 (Aumasson and Bernstein, 2012) is exactly a short-input PRF,
//! is what Linux uses for both (`secure_tcp_seq`, `cookie_hash`), and is small
//! enough to write out here, so the key is ours to choose (tests fix it; std's
//! `RandomState` would hide it and its algorithm is unspecified). Invariant: the
//! output depends on every octet of the key and the message, and on the message
//! length; nothing allocates.

use core::hash::BuildHasher;
use std::collections::hash_map::RandomState;
use std::net::{IpAddr, SocketAddr};

/// A 128-bit secret. Choose it at start-up and keep it for the life of the process.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretKey(pub [u8; 16]);

impl core::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// A key drawn from the randomness std seeds `HashMap`s with (the OS generator,
    /// read once per thread). Each `RandomState` differs from the last, so two of
    /// them hashing a constant give 128 unpredictable bits. A driver that wants a
    /// key from elsewhere (a file, `getrandom`) passes it to the consumers directly.
    pub fn random() -> SecretKey {
        let a = RandomState::new().hash_one(0x736d_726e_6574_u64);
        let b = RandomState::new().hash_one(0x6b65_7932_u64);
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&a.to_le_bytes());
        key[8..].copy_from_slice(&b.to_le_bytes());
        SecretKey(key)
    }
}

struct State {
    v: [u64; 4],
}

impl State {
    fn round(&mut self) {
        let [v0, v1, v2, v3] = &mut self.v;
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    }

    fn absorb(&mut self, word: u64) {
        self.v[3] ^= word;
        self.round();
        self.round();
        self.v[0] ^= word;
    }
}

/// SipHash-2-4 of `message` under `key`.
pub fn siphash24(key: &SecretKey, message: &[u8]) -> u64 {
    let (k0, k1) = key.0.split_at(8);
    let k0 = u64::from_le_bytes(k0.try_into().unwrap_or([0; 8]));
    let k1 = u64::from_le_bytes(k1.try_into().unwrap_or([0; 8]));
    let mut state = State {
        v: [
            k0 ^ 0x736f_6d65_7073_6575,
            k1 ^ 0x646f_7261_6e64_6f6d,
            k0 ^ 0x6c79_6765_6e65_7261,
            k1 ^ 0x7465_6462_7974_6573,
        ],
    };
    let mut words = message.chunks_exact(8);
    for word in &mut words {
        state.absorb(u64::from_le_bytes(word.try_into().unwrap_or([0; 8])));
    }
    let mut last = [0u8; 8];
    let tail = words.remainder();
    last[..tail.len()].copy_from_slice(tail);
    last[7] = message.len() as u8;
    state.absorb(u64::from_le_bytes(last));
    state.v[2] ^= 0xff;
    for _ in 0..4 {
        state.round();
    }
    let [v0, v1, v2, v3] = state.v;
    v0 ^ v1 ^ v2 ^ v3
}

/// SipHash-2-4 of a connection's 4-tuple and two extra words under `key`.
///
/// Two IPv4 addresses go in a 20-octet message (three SipHash blocks, ten
/// rounds in all), anything else in [`tuple_message`]'s 44 octets (six
/// blocks, sixteen rounds): a SYN's ISN and cookie are each one of these,
/// so IPv4, the common case, pays for its own length only. The message
/// length (20 or 44) is in SipHash's last block, so the two layouts never
/// give one input the other's output by construction.
pub fn hash_tuple(key: &SecretKey, local: SocketAddr, foreign: SocketAddr, extra: [u32; 2]) -> u64 {
    match (local.ip(), foreign.ip()) {
        (IpAddr::V4(l), IpAddr::V4(f)) => {
            let mut message = [0u8; 20];
            message[..4].copy_from_slice(&l.octets());
            message[4..8].copy_from_slice(&f.octets());
            message[8..10].copy_from_slice(&local.port().to_be_bytes());
            message[10..12].copy_from_slice(&foreign.port().to_be_bytes());
            message[12..16].copy_from_slice(&extra[0].to_be_bytes());
            message[16..20].copy_from_slice(&extra[1].to_be_bytes());
            siphash24(key, &message)
        }
        _ => siphash24(key, &tuple_message(local, foreign, extra)),
    }
}

/// Lays out a connection's 4-tuple and up to two extra words as hash input.
/// Addresses are written as 16 octets (IPv4 as IPv4-mapped IPv6) so the two families
/// cannot collide.
pub fn tuple_message(local: SocketAddr, foreign: SocketAddr, extra: [u32; 2]) -> [u8; 44] {
    let octets = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    };
    let mut message = [0u8; 44];
    message[..16].copy_from_slice(&octets(local.ip()));
    message[16..32].copy_from_slice(&octets(foreign.ip()));
    message[32..34].copy_from_slice(&local.port().to_be_bytes());
    message[34..36].copy_from_slice(&foreign.port().to_be_bytes());
    message[36..40].copy_from_slice(&extra[0].to_be_bytes());
    message[40..44].copy_from_slice(&extra[1].to_be_bytes());
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vectors from the SipHash paper's appendix: key 00..0f,
    /// messages 00, 00 01, ... of length 0 to 15 (first and a few others here).
    #[test]
    fn matches_the_reference_vectors() {
        let key = SecretKey(core::array::from_fn(|i| i as u8));
        let message: [u8; 15] = core::array::from_fn(|i| i as u8);
        assert_eq!(siphash24(&key, &[]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(&key, &message[..1]), 0x74f8_39c5_93dc_67fd);
        assert_eq!(siphash24(&key, &message[..8]), 0x93f5_f579_9a93_2462);
        assert_eq!(siphash24(&key, &message), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(SecretKey::random(), SecretKey::random());
    }
}
