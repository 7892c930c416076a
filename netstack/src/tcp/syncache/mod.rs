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
//! [`timestamp_clock`] (milliseconds of `now`); a connection continues from the
//! TSval its peer echoes in the final ACK, so the peer's PAWS check holds
//! across the handshake. The cache counts
//! its own events in the [`TcpMib`] (`ListenSYNs`, `syncache_*`, `syncookies_*`,
//! `listen_queue_overflow`); segments it hands back are counted by whoever emits
//! them. Invariant: an entry is added only while the cache holds fewer than
//! `max_entries` overall and fewer than `max_per_listener` for its listener
//! (the limits in force at that SYN: `limits.rs` lets an operator move them
//! while running, never above the capacity allocated at start), so the count
//! never exceeds the largest limit in force since its entries were added,
//! and no peer input allocates. The
//! bounds are kept by a lock-free budget (`table::Budget`), so a SYN takes one
//! lock, its tuple's shard's, and a SYN that finds the cache full writes no
//! counter shared with other shards or workers. A SYN that adds an entry
//! usually does not either: each shard leases a few units of the budget at
//! a time (`table::Lease`) and keeps those of entries that leave, so the
//! shared counts move once per batch, not once per entry.

mod ack;
mod config;
mod disposition;
mod entry;
mod limits;
mod table;
mod timer;

pub use self::config::{CookiePolicy, DEFAULT_PEER_MSS, MIN_PEER_MSS, SynCacheConfig};
pub use self::disposition::{HandshakeDisposition, HandshakeDrop, SynDisposition, SynDrop};
pub use self::limits::LimitAboveCapacity;
pub use self::timer::TIMER_TICK;

use core::hash::BuildHasher;
use core::net::SocketAddr;

use self::entry::{Entry, Negotiated, TupleKey};
use self::limits::Limits;
use self::table::{Budget, Full, Shard, lock};
use crate::tcp::config::TcpConfig;
use crate::tcp::cookie::SynCookies;
use crate::tcp::isn::IsnGenerator;
use crate::tcp::mib::TcpMib;
use crate::tcp::options::{MAX_WINDOW_SCALE, TcpOptions, Timestamps};
use crate::tcp::seq::SeqNum;
use crate::tcp::siphash::{SecretKey, siphash24};
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpHeader, TcpSegment};

/// Our TSval clock on SYN-ACKs: milliseconds since `now`'s origin, wrapping
/// (RFC 7323 §5.4 asks for a tick between 1 ms and 1 s). A connection created
/// from the handshake must not send a TSval below the one the peer echoed.
pub fn timestamp_clock(now: Instant) -> u32 {
    (now.as_nanos() / 1_000_000) as u32
}

/// The passive-open handshake state of a stack; shared by all workers.
///
/// Call contract: [`on_syn`](SynCache::on_syn) for a segment with SYN and
/// without ACK or RST that matched a listener (and no connection);
/// [`on_segment`](SynCache::on_segment) for any other segment that matched a
/// listener (or [`on_segment_queue_full`](SynCache::on_segment_queue_full)
/// when the listener's accept queue is full); [`on_timeout`](SynCache::on_timeout) whenever `now` reaches
/// [`poll_at`](SynCache::poll_at); [`drain_listener`](SynCache::drain_listener)
/// when a listener closes. Every method takes `&self`.
pub struct SynCache {
    config: SynCacheConfig,
    tcp: TcpConfig,
    isn: IsnGenerator,
    cookies: SynCookies,
    shard_hash: pcb::FlowBuildHasher,
    shards: Box<[Shard]>,
    budget: Budget,
    limits: Limits,
}

impl core::fmt::Debug for SynCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SynCache")
            .field("config", &self.config)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// A keyed flow hash seeded from `key` (whose first eight octets are as
/// secret as the rest).
fn flow_hash(key: &SecretKey) -> pcb::FlowBuildHasher {
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&key.0[..8]);
    pcb::FlowBuildHasher(pcb::FlowHash::with_seed(u64::from_le_bytes(seed)))
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
        let map_hash = flow_hash(&derive_key(&key, b"syncache map"));
        let shards = (0..config.shard_count())
            .map(|_| Shard::new(config.shard_capacity(), map_hash.clone()))
            .collect();
        SynCache {
            config,
            tcp: tcp.clone(),
            isn: IsnGenerator::new(key),
            cookies: SynCookies::new(derive_key(&key, b"syncookie")),
            shard_hash: flow_hash(&derive_key(&key, b"syncache shard")),
            shards,
            budget: Budget::new(),
            limits: Limits::new(config.entry_limit(), config.max_per_listener),
        }
    }

    /// The configuration this cache was built with (its limits as they
    /// were at start: [`limits`](Self::limits) has them now).
    pub fn config(&self) -> &SynCacheConfig {
        &self.config
    }

    /// `(max_entries, max_per_listener)` as new SYNs are checked now.
    pub fn limits(&self) -> (usize, usize) {
        self.limits.get()
    }

    /// The most `max_entries` can be raised to: what the tables were
    /// allocated for at start.
    pub fn capacity(&self) -> usize {
        self.limits.capacity()
    }

    /// Moves the entry limits while the cache runs (see `limits.rs`): a
    /// raised limit applies to the next SYN; a lowered one to new entries
    /// only, the entries over it staying until they complete or expire
    /// while every new SYN counts as an overflow. Refuses, changing
    /// nothing, a `max_entries` above [`capacity`](Self::capacity).
    pub fn set_limits(
        &self,
        max_entries: usize,
        max_per_listener: usize,
    ) -> Result<(), LimitAboveCapacity> {
        self.limits.set(max_entries, max_per_listener)
    }

    fn shard(&self, local: SocketAddr, remote: SocketAddr) -> &Shard {
        // Not the maps' hash (a shard's keys would share its low bits).
        let hash = self.shard_hash.hash_one(TupleKey::new(local, remote));
        // The high bits (Lemire's multiply-shift), the best mixed. In bounds:
        // `new` makes at least one shard, and `(hash * len) >> 64 < len`.
        let index = (u128::from(hash) * self.shards.len() as u128) >> 64;
        &self.shards[index as usize]
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
        let flags = seg.header.flags;
        if !flags.contains(TcpFlags::SYN) || flags.intersects(TcpFlags::ACK | TcpFlags::RST) {
            return SynDisposition::Dropped(SynDrop::NotASyn);
        }
        if flags.contains(TcpFlags::FIN) {
            mib.syncache_drops.bump();
            return SynDisposition::Dropped(SynDrop::SynFin);
        }
        mib.listen_syns.bump();
        let offered = self.negotiate(&seg.header.options);
        let irs = seg.header.seq;
        if self.config.cookies == CookiePolicy::Always {
            return self.cookie(now, local, remote, irs, offered, mib);
        }
        let key = TupleKey::new(local, remote);
        let shard = self.shard(local, remote);
        let mut map = lock(&shard.map);
        if let Some(entry) = map.entries.get_mut(&key) {
            if entry.irs == irs.0 {
                // A retransmitted SYN: our SYN-ACK (or its ACK) was lost.
                if let Some(ts) = seg.header.options.timestamps {
                    entry.set_ts_recent(ts.value);
                }
            } else {
                // The peer gave up on its first attempt and tries again from
                // the same port with a new ISN: answer the new attempt. Our
                // ISN and the retransmit schedule stay those of the entry.
                let retransmits = entry.retransmits();
                *entry = Entry::new(entry.listener(), entry.syn_at(), irs.0, offered);
                entry.set_retransmits(retransmits);
            }
            let iss = self.isn.isn(local, remote, entry.syn_at());
            let header = self.synack(local, remote, iss, irs, &entry.negotiated(), now);
            return SynDisposition::Duplicate(header);
        }
        let room = if map.is_full() {
            Err(Full::Shard)
        } else {
            let limits = self.limits.get();
            let batch = self.lease_batch(limits);
            self.budget
                .take_in(&shard.lease, listener_id, limits, batch)
        };
        if room.is_err() {
            drop(map);
            mib.syncache_overflow.bump();
            return match self.config.cookies {
                CookiePolicy::Off => SynDisposition::Dropped(SynDrop::CacheFull),
                CookiePolicy::WhenFull | CookiePolicy::Always => {
                    self.cookie(now, local, remote, irs, offered, mib)
                }
            };
        }
        map.insert(key, Entry::new(listener_id, now, irs.0, offered));
        shard.lower_due(&map, self.deadline(now, 1));
        drop(map);
        mib.syncache_added.bump();
        let iss = self.isn.isn(local, remote, now);
        SynDisposition::Reply(self.synack(local, remote, iss, irs, &offered, now))
    }

    /// What we agree to, given the options of the peer's SYN.
    fn negotiate(&self, syn: &TcpOptions) -> Negotiated {
        Negotiated {
            peer_mss: syn.mss.unwrap_or(DEFAULT_PEER_MSS).max(MIN_PEER_MSS),
            // RFC 7323 §2.2: scaling is on only if both sides send the option;
            // we always do when the peer does.
            peer_window_scale: syn.window_scale.map(|s| s.min(MAX_WINDOW_SCALE)),
            sack_permitted: self.tcp.sack && syn.sack_permitted,
            ts_recent: if self.tcp.timestamps {
                syn.timestamps.map(|ts| ts.value)
            } else {
                None
            },
        }
    }

    /// The window we offer on the SYN-ACK (never scaled, RFC 7323 §2.2).
    fn syn_window(&self) -> u16 {
        u16::try_from(self.tcp.recv_buffer).unwrap_or(u16::MAX)
    }

    fn our_window_scale(&self) -> u8 {
        self.tcp.window_scale.min(MAX_WINDOW_SCALE)
    }

    /// Our SYN-ACK answering `irs` with `iss` and the agreed options.
    fn synack(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNum,
        irs: SeqNum,
        agreed: &Negotiated,
        now: Instant,
    ) -> TcpHeader {
        TcpHeader {
            src_port: local.port(),
            dst_port: remote.port(),
            seq: iss,
            ack: irs + 1usize,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: self.syn_window(),
            urgent: 0,
            options: TcpOptions {
                mss: Some(self.tcp.mss),
                window_scale: agreed.peer_window_scale.map(|_| self.our_window_scale()),
                sack_permitted: agreed.sack_permitted,
                timestamps: agreed.ts_recent.map(|echo_reply| Timestamps {
                    value: timestamp_clock(now),
                    echo_reply,
                }),
                ..TcpOptions::default()
            },
        }
    }

    /// A stateless SYN-ACK whose ISN is a cookie.
    fn cookie(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        irs: SeqNum,
        offered: Negotiated,
        mib: &TcpMib,
    ) -> SynDisposition {
        let iss = self.cookies.generate(local, remote, offered.peer_mss, now);
        // Window scale and SACK-permitted come back only inside our TSval;
        // without timestamps we cannot remember them, so we do not offer them
        // (a peer that believed scaling on would misread every window).
        let agreed = if offered.ts_recent.is_some() {
            offered
        } else {
            Negotiated {
                peer_window_scale: None,
                sack_permitted: false,
                ..offered
            }
        };
        let mut header = self.synack(local, remote, iss, irs, &agreed, now);
        if let Some(ts) = header.options.timestamps.as_mut() {
            ts.value = SynCookies::timestamp_value(
                ts.value,
                agreed.peer_window_scale,
                agreed.sack_permitted,
            );
        }
        mib.syncookies_sent.bump();
        SynDisposition::Cookie(header)
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

    /// Forgets the entry for this tuple, if any; returns whether there was one.
    pub fn remove(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        let shard = self.shard(local, remote);
        let mut map = lock(&shard.map);
        match map.entries.remove(&TupleKey::new(local, remote)) {
            Some(entry) => {
                self.put_back(shard, entry.listener());
                true
            }
            None => false,
        }
    }

    /// Retransmits the SYN-ACKs that are due and expires entries that ran out
    /// Entries in the cache.
    pub fn len(&self) -> usize {
        let leased = self
            .shards
            .iter()
            .map(|shard| shard.lease.get().1)
            .fold(0usize, usize::saturating_add);
        self.budget.total().saturating_sub(leased)
    }

    /// The cache holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries held for one listener.
    pub fn listener_len(&self, listener_id: u64) -> usize {
        let leased = self
            .shards
            .iter()
            .map(|shard| shard.lease.get())
            .filter(|&(l, _)| Budget::same_slot(l, listener_id))
            .fold(0usize, |sum, (_, units)| sum.saturating_add(units));
        self.budget.of(listener_id).saturating_sub(leased)
    }

    /// Budget units a shard takes at once for its lease (see
    /// `table::Lease`): at most 8, and small enough that the units all
    /// shards may hold unused stay within 1/16 of the smaller limit; 1 (no
    /// lease) for limits too small to spare that.
    fn lease_batch(&self, (max_entries, max_per_listener): (usize, usize)) -> usize {
        let spare = max_entries.min(max_per_listener) / 16;
        (spare / self.shards.len().max(1)).clamp(1, 8)
    }

    /// Gives back the unit of a removed entry of `listener` in `shard`.
    /// Call with the shard's lock held.
    fn put_back(&self, shard: &Shard, listener: u64) {
        let batch = self.lease_batch(self.limits.get());
        self.budget.put_back(&shard.lease, listener, batch);
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
            .saturating_add(Budget::memory_bytes())
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
            let gone = before.saturating_sub(map.entries.len());
            if gone > 0 {
                self.budget.give_back(listener_id, gone);
            }
            self.budget.return_lease(&shard.lease, listener_id);
            removed += gone;
        }
        removed
    }
}

#[cfg(test)]
mod bound_tests;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod flood_tests;

#[cfg(test)]
mod limits_tests;

#[cfg(test)]
mod lease_tests;
