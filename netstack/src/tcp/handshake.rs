//! What a completed passive handshake hands to the connection: the contract
//! between the SYN cache (or a validated SYN cookie) and the TCB.

use core::net::SocketAddr;

use crate::tcp::seq::SeqNum;
use crate::time::Instant;

/// A three-way handshake that just completed on a listener: the final ACK
/// acknowledged our SYN-ACK. Everything the connection needs to start in
/// ESTABLISHED, and nothing more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// Our address and port (the listener's, made specific).
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// Our initial sequence number (the SYN-ACK's sequence number).
    pub iss: SeqNum,
    /// The peer's initial sequence number (the SYN's sequence number).
    pub irs: SeqNum,
    /// The MSS the peer announced (536 if it sent none); the TCB sends
    /// segments of at most `min(this, our mss)` payload octets.
    pub peer_mss: u16,
    /// Window scaling, if both sides offered it: (peer's shift, our shift).
    pub window_scale: Option<(u8, u8)>,
    /// Timestamps, if both sides offered them: the peer's most recent TSval
    /// (the TCB's `TS.Recent`).
    pub ts_recent: Option<u32>,
    /// The peer offered SACK-permitted and we accepted.
    pub sack_permitted: bool,
    /// When the SYN arrived (for the handshake-time histogram).
    pub syn_at: Instant,
    /// The handshake came from a SYN cookie, not a cache entry.
    pub from_cookie: bool,
}
