//! The SYN cache: the passive side of the three-way handshake, without a
//! connection.
//!
//! A listener that allocated a full connection for every SYN would hand a
//! flooder its memory. Instead (as FreeBSD's syncache and Linux's request socks
//! do) a SYN creates a compact [`entry`] keyed by the 4-tuple, we answer with a
//! SYN-ACK, retransmit it on a doubling timer, and forget the entry if the peer
//! never completes. Only a final ACK that acknowledges our SYN-ACK turns into a
//! [`Handshake`], which the Stack gives to `Tcb::accept`. When the cache is full
//! (globally, for the listener, or in the tuple's shard) the SYN is answered
//! statelessly with a SYN cookie ([`SynCookies`]) and the final ACK rebuilds the
//! handshake from the cookie; as soon as entries expire or complete, new SYNs
//! get entries again.
//!
//! ```text
//!  SYN ──> on_syn ──> entry added ───> Reply(SYN-ACK)
//!            │  └──> same tuple ─────> Duplicate(SYN-ACK)
//!            └─────> cache full ─────> Cookie(SYN-ACK), no state
//!  ACK ──> on_segment ──> entry, ACK = ISS+1 ──> Established(Handshake)
//!                    └──> no entry, cookie ok ─> Established(from_cookie)
//!  timer ─> on_timeout: SYN-ACK again after RTO, 2·RTO, 4·RTO ...; then expire
//! ```
//!
//! Sans-IO: every call takes `now`; SYN-ACKs and resets come back as headers for
//! the Stack to emit from `local` to `remote`. Our TSval clock is
//! [`timestamp_clock`] (milliseconds of `now`), which the connection must keep
//! using so the peer's PAWS check holds across the handshake. The cache counts
//! its own events in the [`TcpMib`] (`ListenSYNs`, `syncache_*`, `syncookies_*`,
//! `listen_queue_overflow`); segments it hands back are counted by whoever emits
//! them. Invariant: the number of entries never exceeds `max_entries` overall
//! nor `max_per_listener` for any listener, and no peer input allocates.

// Skeleton: the bodies arrive in the next commits.
#![allow(dead_code, unused_imports)]

mod entry;
mod table;

use core::net::SocketAddr;
use core::time::Duration;

use self::entry::{Entry, MAX_RETRANSMITS, Negotiated, TupleKey};
use self::table::{Full, Ledger, Shard, lock, slot_bytes};
use crate::tcp::config::TcpConfig;
use crate::tcp::cookie::SynCookies;
use crate::tcp::handshake::Handshake;
use crate::tcp::isn::IsnGenerator;
use crate::tcp::mib::TcpMib;
use crate::tcp::options::{MAX_WINDOW_SCALE, TcpOptions, Timestamps};
use crate::tcp::seq::SeqNum;
use crate::tcp::siphash::{SecretKey, siphash24, tuple_message};
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpHeader, TcpSegment};

/// RFC 9293 §3.7.1: the MSS to assume when a SYN carries none.
pub const DEFAULT_PEER_MSS: u16 = 536;

/// The smallest peer MSS we honour; a smaller announcement is raised to this
/// (a tiny MSS only multiplies the segments, and thus our work, per octet).
pub const MIN_PEER_MSS: u16 = 64;

/// When to answer a SYN with a cookie instead of a cache entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CookiePolicy {
    /// Never: a SYN that finds the cache full is dropped.
    Off,
    /// Only when the cache (globally, for the listener, or in the shard) is full.
    #[default]
    WhenFull,
    /// Always: the cache keeps no entries at all.
    Always,
}

/// Bounds and timing of a [`SynCache`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynCacheConfig {
    /// Entries over all listeners. Bounds the cache's memory
    /// ([`SynCacheConfig::memory_bound`]); a SYN beyond it gets a cookie.
    pub max_entries: usize,
    /// Entries for one listener, so that a flood against one port cannot take
    /// the whole cache from the others.
    pub max_per_listener: usize,
    /// Number of independently locked shards (at least 1). Each holds at most
    /// `2 * ceil(max_entries / shards)` entries, so an uneven spread of tuples
    /// still lets the global bound, not a shard, be the one normally reached.
    pub shards: usize,
    /// SYN-ACK retransmissions before an entry expires (at most 63). With an
    /// initial RTO of 1 s and 3 retries: SYN-ACKs at 0, 1, 3 and 7 s, expiry at
    /// 15 s. Each interval is capped at the RTO ceiling.
    pub synack_retries: u8,
    /// When to use SYN cookies.
    pub cookies: CookiePolicy,
}

impl Default for SynCacheConfig {
    fn default() -> SynCacheConfig {
        SynCacheConfig {
            max_entries: 16384,
            max_per_listener: 4096,
            shards: 64,
            synack_retries: 3,
            cookies: CookiePolicy::WhenFull,
        }
    }
}

impl SynCacheConfig {
    fn shard_count(&self) -> usize {
        self.shards.max(1)
    }

    fn shard_capacity(&self) -> usize {
        self.max_entries
            .div_ceil(self.shard_count())
            .saturating_mul(2)
    }

    /// An upper bound on [`SynCache::memory_bytes`] for this configuration,
    /// whatever the peers send: every shard's table at twice its initial
    /// allocation (see the table module), plus the per-listener ledger at one
    /// record per possible entry.
    pub fn memory_bound(&self) -> usize {
        let slots = self
            .shard_capacity()
            .saturating_mul(8)
            .div_ceil(7)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX)
            .saturating_mul(2);
        let shard = slots
            .saturating_mul(slot_bytes())
            .saturating_add(core::mem::size_of::<Shard>());
        let ledger = self
            .max_entries
            .saturating_mul(8)
            .div_ceil(7)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX)
            .max(16)
            .saturating_mul(core::mem::size_of::<(u64, usize)>() + 1);
        shard
            .saturating_mul(self.shard_count())
            .saturating_add(ledger)
            .saturating_add(core::mem::size_of::<SynCache>())
    }
}

/// Why a SYN got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynDrop {
    /// Not a SYN, or a SYN with ACK or RST (those go to [`SynCache::on_segment`]).
    NotASyn,
    /// SYN and FIN together: no legitimate stack sends it.
    SynFin,
    /// The cache is full and cookies are off.
    CacheFull,
}

/// What [`SynCache::on_syn`] did with a SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynDisposition {
    /// A new entry: send this SYN-ACK.
    Reply(TcpHeader),
    /// The cache was full (or cookies are always on): send this stateless
    /// SYN-ACK, whose sequence number is a cookie.
    Cookie(TcpHeader),
    /// The tuple already had an entry (the peer retransmitted its SYN, or
    /// restarted with a new ISN, which the entry now records): send this
    /// SYN-ACK again.
    Duplicate(TcpHeader),
    /// Nothing to send.
    Dropped(SynDrop),
}

/// Why a non-SYN segment to a listening port was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeDrop {
    /// No ACK bit (RFC 9293 §3.10.7.2: drop it).
    NoAck,
    /// A RST for which there is no entry (a RST is never answered).
    RstNoEntry,
    /// A RST whose sequence number is outside the window we offered.
    RstOutOfWindow,
    /// A SYN for a tuple that has an entry; SYNs go to [`SynCache::on_syn`].
    UnexpectedSyn,
    /// The sequence number is outside the window we offered.
    OutOfWindow,
    /// Timestamps were negotiated and the segment carries none (RFC 7323 §3.2).
    MissingTimestamp,
    /// PAWS: its TSval is older than the SYN's (RFC 7323 §5).
    Paws,
    /// The handshake is valid but the Stack's accept queue is full; the entry
    /// is kept, so the peer's next segment can complete it.
    AcceptQueueFull,
}

/// What [`SynCache::on_segment`] did with a non-SYN segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeDisposition {
    /// The final ACK is valid: create the connection with `Tcb::accept`, which
    /// also processes any data or FIN the segment carries.
    Established(Handshake),
    /// An acceptable RST removed the entry.
    Reset,
    /// Send this (a RST answering an unacceptable ACK, RFC 9293 §3.10.7.4).
    Reply(TcpHeader),
    /// Nothing to send.
    Dropped(HandshakeDrop),
    /// No entry and no valid cookie: answer as for a closed port (RST).
    NotOurs,
}

/// Our TSval clock: milliseconds since `now`'s origin, wrapping (RFC 7323 §5.4
/// asks for a tick between 1 ms and 1 s). Connections created from a handshake
/// must use the same clock.
pub fn timestamp_clock(now: Instant) -> u32 {
    (now.as_nanos() / 1_000_000) as u32
}

/// The passive-open handshake state of a stack; shared by all workers.
///
/// Call contract: [`on_syn`](SynCache::on_syn) for a segment with SYN and
/// without ACK or RST that matched a listener (and no connection);
/// [`on_segment`](SynCache::on_segment) for any other segment that matched a
/// listener; [`on_timeout`](SynCache::on_timeout) whenever `now` reaches
/// [`poll_at`](SynCache::poll_at); [`drain_listener`](SynCache::drain_listener)
/// when a listener closes. Every method takes `&self`.
pub struct SynCache {
    config: SynCacheConfig,
    tcp: TcpConfig,
    isn: IsnGenerator,
    cookies: SynCookies,
    shard_key: SecretKey,
    shards: Box<[Shard]>,
    ledger: std::sync::Mutex<Ledger>,
}

impl core::fmt::Debug for SynCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SynCache")
            .field("config", &self.config)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// A key for one purpose, derived from the cache's key, so the shard hash and
/// the cookie MAC never share a key with the ISN function (whose output
/// peers see).
fn derive_key(key: &SecretKey, purpose: &[u8]) -> SecretKey {
    let mut message = [0u8; 24];
    let len = purpose.len().min(16);
    message[..len].copy_from_slice(purpose.get(..len).unwrap_or(&[]));
    let a = siphash24(key, &message);
    message[23] = 1;
    let b = siphash24(key, &message);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_le_bytes());
    out[8..].copy_from_slice(&b.to_le_bytes());
    SecretKey(out)
}

impl SynCache {
    /// A cache with `config`'s bounds, answering with `tcp`'s options. `key`
    /// keys the ISNs (give the Stack's `IsnGenerator` the same key so that a
    /// tuple's ISNs advance consistently) and, through derived keys, the SYN
    /// cookies and the shard hash. Allocates every shard's table now.
    pub fn new(config: SynCacheConfig, tcp: &TcpConfig, key: SecretKey) -> SynCache {
        let shards = (0..config.shard_count())
            .map(|_| Shard::new(config.shard_capacity()))
            .collect();
        SynCache {
            config,
            tcp: tcp.clone(),
            isn: IsnGenerator::new(key),
            cookies: SynCookies::new(derive_key(&key, b"syncookie")),
            shard_key: derive_key(&key, b"syncache shard"),
            shards,
            ledger: std::sync::Mutex::new(Ledger::new()),
        }
    }

    /// The configuration this cache was built with.
    pub fn config(&self) -> &SynCacheConfig {
        &self.config
    }

    fn shard(&self, local: SocketAddr, remote: SocketAddr) -> &Shard {
        let hash = siphash24(&self.shard_key, &tuple_message(local, remote, [0, 0]));
        let index = (hash % self.shards.len().max(1) as u64) as usize;
        // `shards` is never empty (shard_count() >= 1); the fallback only
        // satisfies the no-indexing rule.
        self.shards.get(index).unwrap_or_else(|| &self.shards[0])
    }

    /// Answers a SYN to a listening port (see the type's call contract).
    pub fn on_syn(
        &self,
        now: Instant,
        listener_id: u64,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &TcpSegment,
        mib: &TcpMib,
    ) -> SynDisposition {
        let _ = (now, listener_id, local, remote, seg, mib);
        SynDisposition::Dropped(SynDrop::NotASyn)
    }

    /// Handles a non-SYN segment to a listening port when the listener's accept
    /// queue has room (see the type's call contract).
    pub fn on_segment(
        &self,
        now: Instant,
        listener_id: u64,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &TcpSegment,
        mib: &TcpMib,
    ) -> HandshakeDisposition {
        self.handle_segment(now, listener_id, local, remote, seg, true, mib)
    }

    /// As [`on_segment`](SynCache::on_segment), for a listener whose accept
    /// queue is full: a final ACK that would complete the handshake is dropped
    /// and counted (`listen_queue_overflow`), and the entry is kept, so that
    /// the peer's retransmission (or its first data segment, which carries the
    /// same acknowledgment) can complete it once there is room. Everything else
    /// is handled as by `on_segment`.
    pub fn on_segment_queue_full(
        &self,
        now: Instant,
        listener_id: u64,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &TcpSegment,
        mib: &TcpMib,
    ) -> HandshakeDisposition {
        self.handle_segment(now, listener_id, local, remote, seg, false, mib)
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_segment(
        &self,
        now: Instant,
        listener_id: u64,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &TcpSegment,
        can_accept: bool,
        mib: &TcpMib,
    ) -> HandshakeDisposition {
        let _ = (now, listener_id, local, remote, seg, can_accept, mib);
        HandshakeDisposition::NotOurs
    }

    /// Forgets the entry for this tuple, if any; returns whether there was one.
    pub fn remove(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        let shard = self.shard(local, remote);
        let mut map = lock(&shard.map);
        match map.entries.remove(&TupleKey::new(local, remote)) {
            Some(entry) => {
                lock(&self.ledger).give_back(entry.listener());
                true
            }
            None => false,
        }
    }

    /// Retransmits the SYN-ACKs that are due and expires entries that ran out
    /// of retransmissions. `emit(local, remote, header)` is called once per
    /// SYN-ACK, with a shard lock held: it must not call back into the cache.
    ///
    /// Work: every shard whose earliest deadline has passed is scanned whole
    /// (at most its capacity); shards with nothing due are skipped without
    /// taking their lock. An entry that is several deadlines late gets one
    /// SYN-ACK, not a burst.
    pub fn on_timeout(
        &self,
        now: Instant,
        mib: &TcpMib,
        mut emit: impl FnMut(SocketAddr, SocketAddr, TcpHeader),
    ) {
        let _ = (now, mib, &mut emit);
    }

    /// The earliest time [`on_timeout`](SynCache::on_timeout) has work to do
    /// (possibly earlier, never later, for the calling worker's own inserts).
    pub fn poll_at(&self) -> Option<Instant> {
        self.shards.iter().filter_map(Shard::next_due).min()
    }

    /// Entries in the cache.
    pub fn len(&self) -> usize {
        lock(&self.ledger).total()
    }

    /// The cache holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries held for one listener.
    pub fn listener_len(&self, listener_id: u64) -> usize {
        lock(&self.ledger).of(listener_id)
    }

    /// Bytes held by the cache's tables (from their capacities; allocator
    /// overhead aside). Never above [`SynCacheConfig::memory_bound`].
    pub fn memory_bytes(&self) -> usize {
        let shards = self
            .shards
            .iter()
            .map(|shard| Shard::memory_bytes(&lock(&shard.map)))
            .fold(0usize, usize::saturating_add);
        shards
            .saturating_add(lock(&self.ledger).memory_bytes())
            .saturating_add(core::mem::size_of::<SynCache>())
    }

    /// Removes every entry of a listener that is closing; returns how many.
    /// Their peers get nothing now and a RST (as for a closed port) when their
    /// final ACK arrives.
    pub fn drain_listener(&self, listener_id: u64) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut map = lock(&shard.map);
            let before = map.entries.len();
            map.entries.retain(|_, e| e.listener() != listener_id);
            let gone = before - map.entries.len();
            drop(map);
            if gone > 0 {
                let mut ledger = lock(&self.ledger);
                for _ in 0..gone {
                    ledger.give_back(listener_id);
                }
            }
            removed += gone;
        }
        removed
    }
}

#[cfg(test)]
mod tests;
