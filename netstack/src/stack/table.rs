//! The Stack's connection table, on the backend `StackConfig::pcb_backend`
//! names: the SMR table ([`pcb::Table`]: lock-free lookup inside a read
//! section, PCBs from the SMR pool), or one of the baseline maps (dashmap,
//! `RwLock<HashMap>`, papaya) holding reference-counted slots
//! ([`pcb::SlotTable`]: the map's own synchronisation to clone an `Arc`, then
//! the slot's lock and a re-check, memory from the global allocator). The
//! baselines are the refcount-and-lock design a stack without SMR would use
//! (BSD's `in_pcbref`), so the daemon can compare the two under real load.
//!
//! Both give the same contract: a [`ConnGuard`] is a live connection, locked,
//! found under the tuple asked for; nobody else can remove it while the guard
//! exists; [`ConnGuard::remove`] takes it out of the table. The SMR variant is
//! first and every method is a two-way match, so the SMR path costs one
//! predictable branch over calling `pcb::Table` directly.
//!
//! Invariant: **every connection is in exactly one backend, the one chosen
//! at start-up**; the listen table stays under SMR for every backend (its
//! lookups need a read section of the stack's domain either way).

use core::net::IpAddr;
use core::ops::{Deref, DerefMut};

use pcb::{
    Backend, Endpoint, EphemeralPorts, FourTuple, InsertError, PcbGuard, PortError, SlotGuard,
    SlotTable, Table,
};

use super::conn::Conn;

/// The connection table on one backend. See the module docs.
pub(crate) enum ConnTable {
    Smr(Table<Conn>),
    Slots(SlotTable<Conn>),
}

/// A live connection, locked (see the module docs). `!Send`.
pub(crate) enum ConnGuard<'t> {
    Smr(PcbGuard<'t, Conn>),
    Slot(SlotGuard<'t, Conn>),
}

impl ConnTable {
    /// The backend's name, as `--pcb-backend` spells it.
    pub(crate) fn backend(&self) -> Backend {
        match self {
            ConnTable::Smr(_) => Backend::Smr,
            ConnTable::Slots(t) => t.backend(),
        }
    }

    /// Find and lock the connection with this tuple.
    #[inline]
    pub(crate) fn lock(&self, tuple: &FourTuple) -> Option<ConnGuard<'_>> {
        match self {
            ConnTable::Smr(t) => t.lock(tuple).map(ConnGuard::Smr),
            ConnTable::Slots(t) => t.lock(tuple).map(ConnGuard::Slot),
        }
    }

    /// Insert a connection; refuses a tuple already present and any insert
    /// at the cap ([`InsertError::Exhausted`]).
    #[inline]
    pub(crate) fn insert(&self, tuple: &FourTuple, conn: Conn) -> Result<(), InsertError> {
        match self {
            ConnTable::Smr(t) => t.insert(tuple, conn),
            ConnTable::Slots(t) => t.insert(tuple, conn),
        }
    }

    /// Insert `conn` under an RFC 6056 ephemeral port from `ports`.
    pub(crate) fn connect(
        &self,
        ports: &EphemeralPorts,
        local: IpAddr,
        foreign: Endpoint,
        conn: Conn,
    ) -> Result<FourTuple, PortError> {
        match self {
            ConnTable::Smr(t) => ports.connect(t, local, foreign, conn),
            ConnTable::Slots(t) => t.connect(ports, local, foreign, conn),
        }
    }

    /// Entries (exact when quiescent).
    pub(crate) fn len(&self) -> usize {
        match self {
            ConnTable::Smr(t) => t.len(),
            ConnTable::Slots(t) => t.len(),
        }
    }

    /// Connections whose lock is free now and that satisfy `pred` (busy
    /// ones are skipped: an estimate under load, exact when quiescent).
    pub(crate) fn count_unlocked(&self, mut pred: impl FnMut(&Conn) -> bool) -> usize {
        let mut n = 0;
        match self {
            ConnTable::Smr(t) => {
                let section = t.domain().enter();
                t.for_each(&section, |pcb| {
                    if let Ok(Some(guard)) = pcb.try_lock()
                        && pred(&guard)
                    {
                        n += 1;
                    }
                });
            }
            ConnTable::Slots(t) => t.for_each_try_lock(|guard| {
                if pred(guard) {
                    n += 1;
                }
            }),
        }
        n
    }

    /// Chain lengths. A baseline map has no chains we can see: it reports
    /// its entries only (zero buckets, zero chain lengths).
    pub(crate) fn chain_stats(&self) -> pcb::ChainStats {
        match self {
            ConnTable::Smr(t) => t.chain_stats(),
            ConnTable::Slots(t) => pcb::ChainStats {
                entries: t.len(),
                ..pcb::ChainStats::default()
            },
        }
    }

    /// The connection pool's counters. A baseline has no pool (its slots
    /// come from the global allocator and go back when the last reference
    /// drops): `live` is its entries, `max_objects` its cap, `exhausted`
    /// its refusals at the cap, and everything else is zero.
    pub(crate) fn pool_stats(&self) -> smr::PoolStats {
        match self {
            ConnTable::Smr(t) => t.pool_stats(),
            ConnTable::Slots(t) => baseline_pool_stats(t),
        }
    }
}

fn baseline_pool_stats(t: &SlotTable<Conn>) -> smr::PoolStats {
    smr::PoolStats {
        mode: smr::PoolMode::Immediate,
        slot_bytes: 0,
        live: t.len() as u64,
        cached: 0,
        pending: 0,
        pending_bytes: 0,
        peak_pending: 0,
        peak_pending_bytes: 0,
        allocated: 0,
        max_objects: t.cap() as u64,
        chunks: 0,
        chunks_grown: 0,
        chunks_freed: 0,
        pending_batches: 0,
        allocs: 0,
        retires: 0,
        advances: 0,
        stamped: 0,
        frees_per_advance: 0.0,
        polls: 0,
        head_races: 0,
        sync_waits: 0,
        sync_wait_failures: 0,
        performs: 0,
        exhausted: t.stats().exhausted,
        reuse_latency_ns: [0; smr::LATENCY_BUCKETS],
    }
}

impl ConnGuard<'_> {
    /// The connection's tuple.
    #[inline]
    pub(crate) fn tuple(&self) -> FourTuple {
        match self {
            ConnGuard::Smr(g) => g.tuple(),
            ConnGuard::Slot(g) => g.tuple(),
        }
    }

    /// Take the connection out of the table and return it.
    pub(crate) fn remove(self) -> Conn {
        match self {
            ConnGuard::Smr(g) => g.remove(),
            ConnGuard::Slot(g) => g.remove(),
        }
    }
}

impl Deref for ConnGuard<'_> {
    type Target = Conn;
    #[inline]
    fn deref(&self) -> &Conn {
        match self {
            ConnGuard::Smr(g) => g,
            ConnGuard::Slot(g) => g,
        }
    }
}

impl DerefMut for ConnGuard<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Conn {
        match self {
            ConnGuard::Smr(g) => g,
            ConnGuard::Slot(g) => g,
        }
    }
}

#[cfg(test)]
mod tests;
