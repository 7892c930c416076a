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
//! first, the baselines' arms are kept out of line, and a guard keeps a
//! pointer to its connection, so the SMR path costs one predictable branch per
//! table call over calling `pcb::Table` directly, and nothing per field access
//! (the Stack touches a locked connection's fields dozens of times).
//!
//! A [`ConnRef`] is a pin on one connection's PCB or slot (`pcb::PcbPin`,
//! `pcb::SlotPin`): what the workers' ready and event lists hold, so that
//! popping an entry locks its connection directly, with no lookup and no
//! read section. A pin keeps the memory, not the connection: locking it
//! finds a removed connection dead and answers `None`, and giving the last
//! pin of a removed PCB back retires it (see `pcb::PcbPin`).
//!
//! Invariant: **every connection is in exactly one backend, the one chosen
//! at start-up**; the listen table stays under SMR for every backend (its
//! lookups need a read section of the stack's domain either way).

use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::net::IpAddr;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use pcb::{
    Backend, Endpoint, EphemeralPorts, FourTuple, InsertError, PcbGuard, PcbPin, PortError,
    SlotGuard, SlotPin, SlotTable, Table,
};

use super::conn::Conn;

/// The connection table on one backend. See the module docs.
pub(crate) enum ConnTable {
    Smr(Table<Conn>),
    Slots(SlotTable<Conn>),
}

/// A live connection, locked (see the module docs). `!Send`.
pub(crate) struct ConnGuard<'t> {
    /// The connection, inside the lock `held` holds: the PCB's or the slot's
    /// mutex, whose data does not move while it is locked (a PCB is pinned
    /// in its pool chunk, a slot in its `Arc`), so the pointer stays valid
    /// for as long as `held` exists.
    conn: NonNull<Conn>,
    held: Held<'t>,
    _conn: PhantomData<&'t mut Conn>,
}

/// Both in `ManuallyDrop`, dropped by `ConnGuard`'s own `Drop`: the SMR
/// arm's unlock inline, the baseline's (unlock and `Arc` release) out of
/// line, so the drop on the SMR path is as small as a `PcbGuard`'s.
enum Held<'t> {
    Smr(ManuallyDrop<PcbGuard<'t, Conn>>),
    Slot(ManuallyDrop<SlotGuard<'t, Conn>>),
}

/// A pin on one connection (see the module docs). Not `Clone`: each is
/// given back once, with [`ConnTable::unpin`].
#[derive(Debug)]
pub(crate) enum ConnRef {
    Smr(PcbPin<Conn>),
    Slot(SlotPin<Conn>),
}

impl ConnTable {
    /// Give a pin back; the connection's guard if it is still live.
    #[inline]
    pub(crate) fn unpin(&self, pin: ConnRef) -> Option<ConnGuard<'_>> {
        match (self, pin) {
            (ConnTable::Smr(t), ConnRef::Smr(p)) => t.unpin(p).map(ConnGuard::smr),
            (ConnTable::Slots(t), ConnRef::Slot(p)) => t.unpin(p).map(ConnGuard::slot),
            _ => unreachable!("a pin of another backend than the table's"),
        }
    }

    /// The backend's name, as `--pcb-backend` spells it.
    pub(crate) fn backend(&self) -> Backend {
        match self {
            ConnTable::Smr(_) => Backend::Smr,
            ConnTable::Slots(t) => t.backend(),
        }
    }

    /// Find and lock the connection with this tuple.
    #[inline(always)]
    pub(crate) fn lock(&self, tuple: &FourTuple) -> Option<ConnGuard<'_>> {
        match self {
            ConnTable::Smr(t) => t.lock(tuple).map(ConnGuard::smr),
            ConnTable::Slots(t) => slot_lock(t, tuple),
        }
    }

    /// Insert a connection; refuses a tuple already present and any insert
    /// at the cap ([`InsertError::Exhausted`]).
    #[inline]
    pub(crate) fn insert(&self, tuple: &FourTuple, conn: Conn) -> Result<(), InsertError> {
        match self {
            ConnTable::Smr(t) => t.insert(tuple, conn),
            ConnTable::Slots(t) => slot_insert(t, tuple, conn),
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
        self.chain_stats_of(None)
    }

    /// As [`chain_stats`](Self::chain_stats), walking at most
    /// `pcb::SAMPLE_BUCKETS` chains (round `round` of the rotating sample).
    pub(crate) fn chain_stats_sample(&self, round: usize) -> pcb::ChainStats {
        self.chain_stats_of(Some(round))
    }

    fn chain_stats_of(&self, sample: Option<usize>) -> pcb::ChainStats {
        match (self, sample) {
            (ConnTable::Smr(t), None) => t.chain_stats(),
            (ConnTable::Smr(t), Some(round)) => t.chain_stats_sample(round),
            (ConnTable::Slots(t), _) => pcb::ChainStats {
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

// Out of line, so the SMR arms of the hot calls stay as small as before.
#[inline(never)]
fn slot_lock<'t>(t: &'t SlotTable<Conn>, tuple: &FourTuple) -> Option<ConnGuard<'t>> {
    t.lock(tuple).map(ConnGuard::slot)
}

#[inline(never)]
fn slot_insert(t: &SlotTable<Conn>, tuple: &FourTuple, conn: Conn) -> Result<(), InsertError> {
    t.insert(tuple, conn)
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
        membarrier_failures: 0,
        performs: 0,
        exhausted: t.stats().exhausted,
        reuse_latency_ns: [0; smr::LATENCY_BUCKETS],
    }
}

impl<'t> ConnGuard<'t> {
    #[inline(always)]
    pub(crate) fn smr(mut g: PcbGuard<'t, Conn>) -> ConnGuard<'t> {
        ConnGuard {
            conn: NonNull::from(&mut *g),
            held: Held::Smr(ManuallyDrop::new(g)),
            _conn: PhantomData,
        }
    }

    pub(crate) fn slot(mut g: SlotGuard<'t, Conn>) -> ConnGuard<'t> {
        ConnGuard {
            conn: NonNull::from(&mut *g),
            held: Held::Slot(ManuallyDrop::new(g)),
            _conn: PhantomData,
        }
    }

    /// The connection's tuple.
    #[inline]
    pub(crate) fn tuple(&self) -> FourTuple {
        match &self.held {
            Held::Smr(g) => g.tuple(),
            Held::Slot(g) => g.tuple(),
        }
    }

    /// A pin on this connection (see [`ConnRef`]).
    #[inline]
    pub(crate) fn pin(&mut self) -> ConnRef {
        let pin = match &mut self.held {
            Held::Smr(g) => ConnRef::Smr(g.pin()),
            Held::Slot(g) => ConnRef::Slot(g.pin()),
        };
        // `pin` wrote the count beside the connection through the lock's
        // own guard: take the pointer afresh from it, so it is derived from
        // the newest borrow.
        self.conn = match &mut self.held {
            Held::Smr(g) => NonNull::from(&mut ***g),
            Held::Slot(g) => NonNull::from(&mut ***g),
        };
        pin
    }

    /// Take the connection out of the table and return it.
    pub(crate) fn remove(self) -> Conn {
        let mut this = ManuallyDrop::new(self);
        match &mut this.held {
            // SAFETY: `this` is never dropped, so the guard is taken once.
            Held::Smr(g) => unsafe { ManuallyDrop::take(g) }.remove(),
            // SAFETY: as above.
            Held::Slot(g) => unsafe { ManuallyDrop::take(g) }.remove(),
        }
    }
}

impl Drop for ConnGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        match &mut self.held {
            // SAFETY: dropped once, here (`remove` forgets the guard).
            Held::Smr(g) => unsafe { ManuallyDrop::drop(g) },
            Held::Slot(g) => drop_slot_guard(g),
        }
    }
}

#[inline(never)]
fn drop_slot_guard(g: &mut ManuallyDrop<SlotGuard<'_, Conn>>) {
    // SAFETY: called once, from `ConnGuard::drop`.
    unsafe { ManuallyDrop::drop(g) }
}

impl Deref for ConnGuard<'_> {
    type Target = Conn;
    #[inline]
    fn deref(&self) -> &Conn {
        // SAFETY: `conn` points at the live connection inside the lock that
        // `held` holds (see the field); `&self` borrows the guard, so no
        // `&mut` from `deref_mut` is alive, and `held` is not used to reach
        // the connection except by `remove`, which consumes the guard.
        unsafe { self.conn.as_ref() }
    }
}

impl DerefMut for ConnGuard<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Conn {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { self.conn.as_mut() }
    }
}

#[cfg(test)]
mod tests;
