//! The SYN-ACK retransmission timer.
//!
//! An entry does not store its next deadline: it is a function of the SYN's
//! arrival and the number of retransmissions already sent, with intervals
//! starting at the initial RTO and doubling up to the RTO ceiling (RFC 6298
//! §5.5, as for a SYN, RFC 9293 §3.8.1). Each shard remembers the earliest
//! deadline among its entries, so `poll_at` reads one word per shard and
//! `on_timeout` scans only shards with something due. Invariant: an entry gets
//! at most `synack_retries` retransmissions and is gone by its expiry
//! deadline's first `on_timeout`.

use core::net::SocketAddr;
use core::time::Duration;

use super::SynCache;
use super::entry::MAX_RETRANSMITS;
use super::table::{Shard, lock};
use crate::tcp::mib::TcpMib;
use crate::tcp::seq::SeqNum;
use crate::time::Instant;
use crate::wire::TcpHeader;

/// The timer's resolution: SYN-ACKs go out up to this much after their exact
/// deadline, in exchange for bounded scanning (see `on_timeout`).
pub const TIMER_TICK: Duration = Duration::from_millis(50);

impl SynCache {
    /// Retransmits the SYN-ACKs that are due and expires entries that ran out
    /// of retransmissions. `emit(local, remote, header)` is called once per
    /// SYN-ACK, with a shard lock held: it must not call back into the cache.
    ///
    /// Work: a shard whose recorded deadline has passed is scanned whole (at
    /// most its capacity); others are skipped without taking their lock.
    /// Recorded deadlines are rounded up to a [`TIMER_TICK`], so under a flood,
    /// when some entry is always about to be due, each shard is still scanned
    /// at most once per tick. An entry that is several deadlines late gets one
    /// SYN-ACK, not a burst.
    pub fn on_timeout(
        &self,
        now: Instant,
        mib: &TcpMib,
        mut emit: impl FnMut(SocketAddr, SocketAddr, TcpHeader),
    ) {
        let retries = self.retries();
        for shard in self.shards.iter() {
            match shard.next_due() {
                Some(due) if due <= now => {}
                _ => continue,
            }
            let mut map = lock(&shard.map);
            let mut next: Option<Instant> = None;
            let batch = self.lease_batch(self.limits.get());
            map.entries.retain(|key, entry| {
                let syn_at = entry.syn_at();
                let done = entry.retransmits();
                let due = self.deadline(syn_at, done.saturating_add(1));
                if due > now {
                    next = Some(next.map_or(due, |n| n.min(due)));
                    return true;
                }
                // The latest event already due: one SYN-ACK however late we are.
                let mut step = done.saturating_add(1);
                while step <= retries && self.deadline(syn_at, step.saturating_add(1)) <= now {
                    step += 1;
                }
                if step > retries {
                    mib.syncache_expired.bump();
                    self.budget.put_back(&shard.lease, entry.listener(), batch);
                    return false;
                }
                entry.set_retransmits(step);
                let (local, remote) = (key.local(), key.remote());
                let iss = self.isn.isn(local, remote, syn_at);
                let irs = SeqNum(entry.irs);
                emit(
                    local,
                    remote,
                    self.synack(local, remote, iss, irs, &entry.negotiated(), now),
                );
                mib.syncache_retransmits.bump();
                let due = self.deadline(syn_at, step.saturating_add(1));
                next = Some(next.map_or(due, |n| n.min(due)));
                true
            });
            shard.set_due(&map, next);
        }
    }

    /// The earliest time [`on_timeout`](SynCache::on_timeout) has work to do
    /// (possibly earlier, never later, for the calling worker's own inserts).
    pub fn poll_at(&self) -> Option<Instant> {
        self.shards.iter().filter_map(Shard::next_due).min()
    }

    /// The RTO before the first SYN-ACK retransmission.
    fn first_interval(&self) -> Duration {
        self.tcp
            .rto
            .initial_rto
            .min(self.tcp.rto.max_rto)
            .max(Duration::from_millis(1))
    }

    fn retries(&self) -> u8 {
        self.config.synack_retries.min(MAX_RETRANSMITS - 1)
    }

    /// When the `step`-th timer event of an entry falls: steps 1 to `retries`
    /// retransmit the SYN-ACK, step `retries + 1` expires the entry. Each
    /// interval doubles the last, up to the RTO ceiling (RFC 6298 §5.5).
    pub(super) fn deadline(&self, syn_at: Instant, step: u8) -> Instant {
        let ceiling = self.tcp.rto.max_rto.max(self.first_interval());
        let mut at = syn_at;
        let mut interval = self.first_interval();
        for _ in 0..step {
            at = at + interval;
            interval = interval.saturating_mul(2).min(ceiling);
        }
        at
    }
}
