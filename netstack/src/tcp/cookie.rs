//! SYN cookies: accepting a connection without keeping state for its SYN.
//!
//! Under a SYN flood the SYN cache fills; RFC 4987 §3.6 describes the way out that
//! Linux and FreeBSD use: encode what we must remember into our own ISN, send the
//! SYN-ACK, forget, and rebuild the connection from the peer's final ACK, whose
//! acknowledgment number is our ISN + 1. The ISN we send is:
//!
//! ```text
//!  31                                  4   3   2     0
//! +-------------------------------------+---+-------+
//! |  MAC (28 bits)                      | P |  MSS  |
//! +-------------------------------------+---+-------+
//!  MAC = SipHash(secret, 4-tuple, period counter, MSS index), top 28 bits
//!  P   = low bit of the period counter (which of the two live periods)
//!  MSS = index into MSS_TABLE: the largest entry not above the peer's MSS
//! ```
//!
//! The period counter is coarse time (`now / period`, 64 s by default). A cookie is
//! accepted in its own period and the next one, never later, so a captured cookie
//! stops working within two periods. A blind guess succeeds with probability 2^-28
//! per try, whatever the guesser knows about the format.
//!
//! What does not fit in 32 bits — window scale and SACK-permitted — rides in the low
//! six bits of our TSval when the peer offered timestamps, and comes back in the
//! ACK's TSecr (as Linux does; without timestamps, the connection goes without
//! them). Those bits are not under the MAC: a forger can claim any window scale up
//! to 14 or SACK, which only changes how a connection it already could open behaves.
//! Invariant: [`SynCookies::validate`] returns options only for a cookie this key
//! produced for this exact 4-tuple in the current or previous period.

use core::time::Duration;
use std::net::SocketAddr;

use super::options::MAX_WINDOW_SCALE;
use super::seq::SeqNum;
use super::siphash::{SecretKey, hash_tuple};
use crate::time::Instant;

/// The MSS values a cookie can carry (3 bits), smallest first. Common paths: 536
/// (the IPv4 default), 1220 (IPv6 minimum MTU), 1440/1460 (Ethernet less headers or
/// tunnels), 8960 (jumbo frames); 256 keeps tiny-MSS peers within their limit.
pub const MSS_TABLE: [u16; 8] = [256, 536, 1220, 1300, 1380, 1440, 1460, 8960];

/// The default period of the cookie counter.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(64);

const MSS_BITS: u32 = 3;
const PARITY_BIT: u32 = 1 << MSS_BITS;
const MAC_SHIFT: u32 = MSS_BITS + 1;

/// TSval's low six bits: four of window scale (15 = none), one of SACK-permitted,
/// one reserved (Linux uses it for ECN; we send 0).
const TS_OPTION_BITS: u32 = 6;
const TS_WSCALE_MASK: u32 = 0xf;
const TS_NO_WSCALE: u32 = 0xf;
const TS_SACK_BIT: u32 = 0x10;

/// What a valid cookie tells us about the peer's SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieOptions {
    /// The MSS to use toward the peer: the table entry chosen at SYN time.
    pub mss: u16,
    /// The peer's window scale, if it offered one and timestamps carried it back.
    pub window_scale: Option<u8>,
    /// The peer can receive SACK blocks (timestamps carried it back).
    pub sack_permitted: bool,
    /// The final ACK carried timestamps, so the connection uses them.
    pub timestamps: bool,
}

/// Mints and checks SYN cookies under one secret.
#[derive(Clone, Debug)]
pub struct SynCookies {
    key: SecretKey,
    period_nanos: u64,
}

impl SynCookies {
    /// Cookies keyed with `key`, with the [`DEFAULT_PERIOD`].
    pub fn new(key: SecretKey) -> SynCookies {
        SynCookies::with_period(key, DEFAULT_PERIOD)
    }

    /// Cookies keyed with `key` whose counter ticks every `period` (at least 1 ns).
    pub fn with_period(key: SecretKey, period: Duration) -> SynCookies {
        let period_nanos = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX).max(1);
        SynCookies { key, period_nanos }
    }

    fn counter(&self, now: Instant) -> u64 {
        now.as_nanos() / self.period_nanos
    }

    fn mac(&self, local: SocketAddr, foreign: SocketAddr, counter: u64, mss_index: u32) -> u32 {
        // IPv4 in 20 octets, the cheaper half of the flood path (see
        // `hash_tuple`).
        let mac = hash_tuple(&self.key, local, foreign, [counter as u32, mss_index]);
        (mac >> (64 - (32 - MAC_SHIFT))) as u32
    }

    /// The index of the largest table entry not above `peer_mss` (0 if none is).
    pub fn mss_index(peer_mss: u16) -> usize {
        MSS_TABLE.iter().rposition(|&m| m <= peer_mss).unwrap_or(0)
    }

    /// Our ISN for a SYN from `foreign` to `local` announcing `peer_mss`
    /// (536 if the SYN had no MSS option, RFC 9293 §3.7.1).
    pub fn generate(
        &self,
        local: SocketAddr,
        foreign: SocketAddr,
        peer_mss: u16,
        now: Instant,
    ) -> SeqNum {
        let counter = self.counter(now);
        let index = SynCookies::mss_index(peer_mss) as u32;
        let parity = if counter & 1 == 1 { PARITY_BIT } else { 0 };
        let mac = self.mac(local, foreign, counter, index);
        SeqNum((mac << MAC_SHIFT) | parity | index)
    }

    /// The TSval to send in the SYN-ACK: our timestamp clock `ts_clock` with its low
    /// bits replaced by the peer's window scale and SACK-permitted. Like Linux, the
    /// result is never ahead of `ts_clock`, so the peer's PAWS check still holds.
    pub fn timestamp_value(ts_clock: u32, window_scale: Option<u8>, sack_permitted: bool) -> u32 {
        let wscale = window_scale.map_or(TS_NO_WSCALE, |w| u32::from(w.min(MAX_WINDOW_SCALE)));
        let options = wscale | if sack_permitted { TS_SACK_BIT } else { 0 };
        let mask = (1 << TS_OPTION_BITS) - 1;
        let value = (ts_clock & !mask) | options;
        if SeqNum(value).gt(SeqNum(ts_clock)) {
            value.wrapping_sub(1 << TS_OPTION_BITS)
        } else {
            value
        }
    }

    /// Checks the cookie returned in a final ACK: `cookie` is the ACK's
    /// acknowledgment number minus one, `echoed_timestamp` its TSecr if it carried
    /// timestamps. Returns the options to build the connection with, or `None` for
    /// a forged, stale, or other-tuple cookie.
    pub fn validate(
        &self,
        cookie: SeqNum,
        local: SocketAddr,
        foreign: SocketAddr,
        echoed_timestamp: Option<u32>,
        now: Instant,
    ) -> Option<CookieOptions> {
        let bits = cookie.0;
        let now_counter = self.counter(now);
        let parity = u64::from(bits & PARITY_BIT != 0);
        // The parity bit picks the one live period it can belong to.
        let counter = if now_counter & 1 == parity {
            now_counter
        } else {
            now_counter.checked_sub(1)?
        };
        let index = bits & ((1 << MSS_BITS) - 1);
        if bits >> MAC_SHIFT != self.mac(local, foreign, counter, index) {
            return None;
        }
        let mss = *MSS_TABLE.get(index as usize)?;
        let (window_scale, sack_permitted) = match echoed_timestamp {
            Some(ts) => {
                let wscale = ts & TS_WSCALE_MASK;
                let window_scale = if wscale == TS_NO_WSCALE {
                    None
                } else {
                    Some((wscale as u8).min(MAX_WINDOW_SCALE))
                };
                (window_scale, ts & TS_SACK_BIT != 0)
            }
            None => (None, false),
        };
        Some(CookieOptions {
            mss,
            window_scale,
            sack_permitted,
            timestamps: echoed_timestamp.is_some(),
        })
    }
}

#[cfg(test)]
#[path = "cookie_tests.rs"]
mod tests;
