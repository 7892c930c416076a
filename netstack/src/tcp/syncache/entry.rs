//! One half-open connection, as the SYN cache remembers it between the SYN and
//! the final ACK.
//!
//! A flood fills the cache with entries that will never complete, so each one is
//! kept as small as the handshake allows: the 4-tuple as the table key, and as the
//! value only what the peer's SYN negotiated, its ISN, the listener and the
//! SYN's arrival time. Our own ISN is not
//! stored: it is a pure function of the tuple and the SYN's arrival time
//! ([`IsnGenerator`](crate::IsnGenerator), RFC 6528), so it is recomputed when the
//! final ACK arrives. Invariant: a key and its entry together fit in 64 octets
//! (one cache line), checked by a test.

use core::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::tcp::options::MAX_WINDOW_SCALE;
use crate::time::Instant;

/// The 4-tuple of a half-open connection, in a fixed 36-octet form: IPv4
/// addresses are stored IPv4-mapped (the parser drops IPv4-mapped IPv6
/// sources, so an IPv6 tuple never has the remote half of an IPv4 one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct TupleKey {
    local_ip: [u8; 16],
    remote_ip: [u8; 16],
    local_port: u16,
    remote_port: u16,
}

fn octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn address(octets: [u8; 16], port: u16) -> SocketAddr {
    let v6 = Ipv6Addr::from(octets);
    match v6.to_ipv4_mapped() {
        Some(v4) => SocketAddr::new(IpAddr::V4(v4), port),
        None => SocketAddr::new(IpAddr::V6(v6), port),
    }
}

impl TupleKey {
    pub(super) fn new(local: SocketAddr, remote: SocketAddr) -> TupleKey {
        TupleKey {
            local_ip: octets(local.ip()),
            remote_ip: octets(remote.ip()),
            local_port: local.port(),
            remote_port: remote.port(),
        }
    }

    pub(super) fn local(&self) -> SocketAddr {
        address(self.local_ip, self.local_port)
    }

    pub(super) fn remote(&self) -> SocketAddr {
        address(self.remote_ip, self.remote_port)
    }
}

/// A `u64` stored as two `u32`s, so that an [`Entry`] is 4-aligned and packs
/// behind the 36-octet key without padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Split64([u32; 2]);

impl Split64 {
    fn new(value: u64) -> Split64 {
        Split64([value as u32, (value >> 32) as u32])
    }

    fn get(self) -> u64 {
        u64::from(self.0[0]) | (u64::from(self.0[1]) << 32)
    }
}

const NO_WINDOW_SCALE: u8 = u8::MAX;
const SACK_BIT: u8 = 1 << 0;
const TIMESTAMPS_BIT: u8 = 1 << 1;
const RETRANSMITS_SHIFT: u32 = 2;
/// The retransmit counter has six bits.
pub(super) const MAX_RETRANSMITS: u8 = u8::MAX >> RETRANSMITS_SHIFT;

/// What the peer's SYN negotiated, in the form [`Entry::new`] takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Negotiated {
    /// The peer's MSS (already defaulted and clamped).
    pub peer_mss: u16,
    /// The peer's window scale shift, if both sides scale.
    pub peer_window_scale: Option<u8>,
    /// Both sides offered SACK-permitted.
    pub sack_permitted: bool,
    /// Both sides offered timestamps: the peer's TSval.
    pub ts_recent: Option<u32>,
}

/// The value stored for a [`TupleKey`]: 28 octets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    listener: Split64,
    /// Nanoseconds of the SYN's arrival; the retransmit schedule and our ISN
    /// are both derived from it.
    syn_at: Split64,
    /// The peer's ISN (the SYN's sequence number).
    pub irs: u32,
    /// The peer's latest TSval, when timestamps were negotiated.
    ts_recent: u32,
    pub peer_mss: u16,
    peer_window_scale: u8,
    /// SACK and timestamp flags in the low bits, the SYN-ACK retransmit count
    /// above them.
    bits: u8,
}

impl Entry {
    pub(super) fn new(listener: u64, syn_at: Instant, irs: u32, n: Negotiated) -> Entry {
        let mut bits = 0;
        if n.sack_permitted {
            bits |= SACK_BIT;
        }
        if n.ts_recent.is_some() {
            bits |= TIMESTAMPS_BIT;
        }
        Entry {
            listener: Split64::new(listener),
            syn_at: Split64::new(syn_at.as_nanos()),
            irs,
            ts_recent: n.ts_recent.unwrap_or(0),
            peer_mss: n.peer_mss,
            peer_window_scale: n
                .peer_window_scale
                .map_or(NO_WINDOW_SCALE, |s| s.min(MAX_WINDOW_SCALE)),
            bits,
        }
    }

    pub(super) fn listener(&self) -> u64 {
        self.listener.get()
    }

    pub(super) fn syn_at(&self) -> Instant {
        Instant::from_nanos(self.syn_at.get())
    }

    pub(super) fn negotiated(&self) -> Negotiated {
        Negotiated {
            peer_mss: self.peer_mss,
            peer_window_scale: (self.peer_window_scale != NO_WINDOW_SCALE)
                .then_some(self.peer_window_scale),
            sack_permitted: self.bits & SACK_BIT != 0,
            ts_recent: (self.bits & TIMESTAMPS_BIT != 0).then_some(self.ts_recent),
        }
    }

    /// Records a newer TSval from the peer (only when timestamps are in use).
    pub(super) fn set_ts_recent(&mut self, value: u32) {
        if self.bits & TIMESTAMPS_BIT != 0 {
            self.ts_recent = value;
        }
    }

    /// SYN-ACK retransmissions (timer events) already handled.
    pub(super) fn retransmits(&self) -> u8 {
        self.bits >> RETRANSMITS_SHIFT
    }

    pub(super) fn set_retransmits(&mut self, count: u8) {
        let count = count.min(MAX_RETRANSMITS);
        self.bits = (self.bits & ((1 << RETRANSMITS_SHIFT) - 1)) | (count << RETRANSMITS_SHIFT);
    }
}
