//! The baseline tables as a stack without SMR would hold its connections:
//! reference-counted slots (BSD's `in_pcbref`/`in_pcbrele`), so that
//! `smrnetd --pcb-backend dashmap|rwlock|papaya` runs the same Stack on them.
//!
//! Every map entry is an `Arc<Slot>`: a lock around the connection's state,
//! which is `None` once the connection was removed. A lookup takes the map's
//! own synchronisation (a dashmap shard's read lock, the one `RwLock`'s read
//! lock, or a papaya/seize guard) only long enough to clone the `Arc`, then
//! locks the slot and re-validates it: a slot found removed means the
//! connection went away between the two steps, and the lookup retries (at
//! most [`LOOKUP_ATTEMPTS`] times, then answers "absent"). Memory comes from
//! the global allocator (`Arc::new`) and goes back when the last reference is
//! dropped; nothing here uses the SMR pool.
//!
//! Invariant: **a slot is taken out of the map only by the holder of its lock,
//! who marks it removed under that lock before releasing it**, and a slot is
//! never put back. So a guard that found its slot live holds a connection
//! that stays in the map, under the tuple it was found by, until the guard
//! is dropped or removes it.
//!
//! A slot is never reused either: a new connection on the same tuple (a
//! TIME-WAIT reopen) gets a new `Arc`, so a lookup still holding the old one
//! finds it removed and never locks the new connection by mistake — the
//! `Arc`'s identity does what the SMR table's PCB incarnation does.
//!
//! Lock order: slot lock, then the map's lock (as `PcbGuard::remove` takes the
//! PCB lock before the bucket lock). Nothing waits for a slot lock while
//! holding the map's lock: lookups drop the map guard before locking, and
//! [`SlotTable::for_each_try_lock`] copies the entries out first.
//!
//! The cap: at most `cap` entries at once (the SMR table's pool cap, which
//! there also counts connections waiting for their grace period); an insert
//! beyond it is refused with [`InsertError::Exhausted`] and counted.

use super::Backend;
use crate::hash::{FlowBuildHasher, FlowHash};
use crate::ports::{Claim, EphemeralPorts, PortError};
use crate::primitive::{Mutex, MutexGuard, lock, try_lock};
use crate::table::InsertError;
use crate::tuple::{Endpoint, FourTuple, Key};
use dashmap::DashMap;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, PoisonError, RwLock};

/// Lookups that find a removed slot try again this many times in all, then
/// answer "absent" (a connection on that tuple was removed and, each time,
/// replaced between the map read and the slot lock: only a churn storm on
/// one tuple does that).
pub const LOOKUP_ATTEMPTS: usize = 4;

/// One connection: its state under its own lock.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

/// What a slot's lock protects.
struct SlotState<T> {
    /// `None` once removed.
    conn: Option<T>,
    /// The tuple the slot is (or is about to be) in the map under: written
    /// only before the slot is published, so fixed while anyone can find it.
    tuple: FourTuple,
}

impl<T> Slot<T> {
    fn new(tuple: FourTuple, value: T) -> Arc<Slot<T>> {
        Arc::new(Slot {
            state: Mutex::new(SlotState {
                conn: Some(value),
                tuple,
            }),
        })
    }
}

type Entry<T> = Arc<Slot<T>>;

/// A counted reference on a slot, from [`SlotGuard::pin`]: the slot (live
/// or removed) stays allocated while it exists. Given back with
/// [`SlotTable::unpin`] (or dropped: an `Arc` needs no table to release).
pub struct SlotPin<T>(Entry<T>);

impl<T> fmt::Debug for SlotPin<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SlotPin")
            .field(&Arc::as_ptr(&self.0))
            .finish()
    }
}

/// The map underneath, one of the baseline backends.
enum Map<T> {
    DashMap(DashMap<Key, Entry<T>, FlowBuildHasher>),
    RwLock(RwLock<HashMap<Key, Entry<T>, FlowBuildHasher>>),
    Papaya(papaya::HashMap<Key, Entry<T>, FlowBuildHasher>),
}

impl<T> Map<T> {
    fn get(&self, key: &Key) -> Option<Entry<T>> {
        match self {
            // The shard's read lock is released when the `Ref` drops, here.
            Map::DashMap(m) => m.get(key).map(|r| Arc::clone(&r)),
            Map::RwLock(m) => m
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(key)
                .cloned(),
            Map::Papaya(m) => m.pin().get(key).cloned(),
        }
    }

    /// Insert unless the key is present.
    fn try_insert(&self, key: Key, entry: &Entry<T>) -> bool {
        match self {
            Map::DashMap(m) => match m.entry(key) {
                dashmap::mapref::entry::Entry::Occupied(_) => false,
                dashmap::mapref::entry::Entry::Vacant(v) => {
                    v.insert(Arc::clone(entry));
                    true
                }
            },
            Map::RwLock(m) => {
                let mut m = m.write().unwrap_or_else(PoisonError::into_inner);
                match m.entry(key) {
                    std::collections::hash_map::Entry::Occupied(_) => false,
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(Arc::clone(entry));
                        true
                    }
                }
            }
            Map::Papaya(m) => m.pin().try_insert(key, Arc::clone(entry)).is_ok(),
        }
    }

    /// Remove the entry for `key`; whether it was `entry`.
    fn remove(&self, key: &Key, entry: &Entry<T>) -> bool {
        let same = |e: &Entry<T>| Arc::ptr_eq(e, entry);
        match self {
            Map::DashMap(m) => m.remove_if(key, |_, e| same(e)).is_some(),
            Map::RwLock(m) => {
                let mut m = m.write().unwrap_or_else(PoisonError::into_inner);
                match m.get(key) {
                    Some(e) if same(e) => m.remove(key).is_some(),
                    _ => false,
                }
            }
            Map::Papaya(m) => {
                let pinned = m.pin();
                match pinned.get(key) {
                    // Only the holder of this slot's lock removes this key
                    // while the slot is in the map (module invariant), so the
                    // entry cannot change between the get and the remove.
                    Some(e) if same(e) => pinned.remove(key).is_some(),
                    _ => false,
                }
            }
        }
    }

    /// Every entry, copied out (so no map lock is held while they are used).
    fn entries(&self) -> Vec<Entry<T>> {
        match self {
            Map::DashMap(m) => m.iter().map(|r| Arc::clone(r.value())).collect(),
            Map::RwLock(m) => m
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .cloned()
                .collect(),
            Map::Papaya(m) => m.pin().values().cloned().collect(),
        }
    }
}

/// Counters of a [`SlotTable`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotStats {
    /// Inserts refused at the cap.
    pub exhausted: u64,
    /// Lookups that found a removed slot and looked again.
    pub stale_retries: u64,
}

/// A connection table of reference-counted slots on one baseline map. See
/// the module docs for the protocol.
pub struct SlotTable<T> {
    map: Map<T>,
    backend: Backend,
    /// Entries, counted by inserts (before they link, to enforce the cap)
    /// and removes. Relaxed: a count, nothing is published with it.
    entries: AtomicUsize,
    cap: usize,
    /// Relaxed: statistics only.
    exhausted: AtomicU64,
    /// Relaxed: statistics only.
    stale_retries: AtomicU64,
}

impl<T: Send> fmt::Debug for SlotTable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotTable")
            .field("backend", &self.backend)
            .field("len", &self.len())
            .field("cap", &self.cap)
            .finish()
    }
}

impl<T: Send> SlotTable<T> {
    /// A table on `backend`'s map for about `expected` connections, holding
    /// at most `cap`, hashed with `hash`.
    ///
    /// # Panics
    /// If `backend` is [`Backend::Smr`]: that is [`Table`](crate::Table).
    pub fn new(backend: Backend, expected: usize, cap: usize, hash: FlowHash) -> SlotTable<T> {
        let hasher = FlowBuildHasher(hash);
        let map = match backend {
            Backend::Smr => panic!(
                "pcb::SlotTable: backend smr is pcb::Table, not a slot table; \
                 use dashmap, rwlock or papaya"
            ),
            Backend::DashMap => Map::DashMap(DashMap::with_capacity_and_hasher(expected, hasher)),
            Backend::RwLock => Map::RwLock(RwLock::new(HashMap::with_capacity_and_hasher(
                expected, hasher,
            ))),
            Backend::Papaya => {
                Map::Papaya(papaya::HashMap::with_capacity_and_hasher(expected, hasher))
            }
        };
        SlotTable {
            map,
            backend,
            entries: AtomicUsize::new(0),
            cap,
            exhausted: AtomicU64::new(0),
            stale_retries: AtomicU64::new(0),
        }
    }

    /// The map underneath.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The most entries the table holds at once.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Entries (exact when quiescent; an insert counts itself just before
    /// it links).
    pub fn len(&self) -> usize {
        // Relaxed: see the field's docs.
        self.entries.load(Relaxed)
    }

    /// Whether the table is empty (see [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The table's counters.
    pub fn stats(&self) -> SlotStats {
        // Relaxed: statistics only.
        SlotStats {
            exhausted: self.exhausted.load(Relaxed),
            stale_retries: self.stale_retries.load(Relaxed),
        }
    }

    /// Count one entry against the cap, or refuse (and count the refusal).
    fn reserve(&self) -> Result<(), InsertError> {
        // Relaxed: a count; the map's own synchronisation publishes entries.
        let before = self.entries.fetch_add(1, Relaxed);
        if before >= self.cap {
            // Relaxed: as above.
            self.entries.fetch_sub(1, Relaxed);
            // Relaxed: statistics only.
            self.exhausted.fetch_add(1, Relaxed);
            return Err(InsertError::Exhausted);
        }
        Ok(())
    }

    fn unreserve(&self) {
        // Relaxed: see `reserve`.
        self.entries.fetch_sub(1, Relaxed);
    }

    /// Insert a connection with its initial state; refuses a tuple already
    /// present, and any insert at the cap.
    pub fn insert(&self, tuple: &FourTuple, value: T) -> Result<(), InsertError> {
        self.reserve()?;
        let entry = Slot::new(*tuple, value);
        if self.map.try_insert(Key::from(tuple), &entry) {
            Ok(())
        } else {
            self.unreserve();
            Err(InsertError::Duplicate(*tuple))
        }
    }

    /// Connect: an RFC 6056 ephemeral port on `local` towards `foreign`
    /// from `ports`, claimed by inserting `value` under the tuple.
    pub fn connect(
        &self,
        ports: &EphemeralPorts,
        local: IpAddr,
        foreign: Endpoint,
        value: T,
    ) -> Result<FourTuple, PortError> {
        self.reserve().map_err(|_| PortError::NoPcb)?;
        let entry = Slot::new(FourTuple::new(Endpoint::new(local, 0), foreign), value);
        let got = ports.connect_with(local, foreign, |tuple| {
            // Unpublished: only we can reach it (the lock is uncontended).
            lock(&entry.state).tuple = *tuple;
            if self.map.try_insert(Key::from(tuple), &entry) {
                Claim::Claimed
            } else {
                Claim::InUse
            }
        });
        if got.is_err() {
            self.unreserve();
        }
        got
    }

    /// Find and lock the connection with this tuple (see the module docs).
    pub fn lock(&self, tuple: &FourTuple) -> Option<SlotGuard<'_, T>> {
        let key = Key::from(tuple);
        for _ in 0..LOOKUP_ATTEMPTS {
            let slot = self.map.get(&key)?;
            if let Some(guard) = self.validate(slot, |s| Some(lock(s))) {
                return Some(guard);
            }
            // Relaxed: statistics only.
            self.stale_retries.fetch_add(1, Relaxed);
        }
        None
    }

    /// Lock `slot` with `take` and keep it if it is live.
    fn validate<'t>(
        &'t self,
        slot: Entry<T>,
        take: impl FnOnce(&'t Mutex<SlotState<T>>) -> Option<MutexGuard<'t, SlotState<T>>>,
    ) -> Option<SlotGuard<'t, T>> {
        // SAFETY: the `Arc` is moved into the guard below next to the lock
        // guard, and the struct's field order drops the lock guard first, so
        // the slot outlives every borrow of it; an `Arc`'s contents do not
        // move when the `Arc` does. Nothing hands the `'t` borrow out.
        let state_lock: &'t Mutex<SlotState<T>> = unsafe { &(*Arc::as_ptr(&slot)).state };
        let state = take(state_lock)?;
        // Removed between the map read and the lock.
        state.conn.as_ref()?;
        Some(SlotGuard {
            table: self,
            state,
            slot,
        })
    }

    /// Lock a pinned slot: `None` if its connection was removed since it was
    /// pinned. The pin stays outstanding. No map lookup.
    pub fn lock_pinned(&self, pin: &SlotPin<T>) -> Option<SlotGuard<'_, T>> {
        self.validate(Arc::clone(&pin.0), |s| Some(lock(s)))
    }

    /// Give a pin back; if the connection is still live, its guard.
    pub fn unpin(&self, pin: SlotPin<T>) -> Option<SlotGuard<'_, T>> {
        self.validate(pin.0, |s| Some(lock(s)))
    }

    /// Call `f` with every connection whose lock is free now (the others are
    /// being worked on and are skipped). Copies the entries out first, so it
    /// costs an allocation of the table's size: for metrics, not the packet
    /// path.
    pub fn for_each_try_lock(&self, mut f: impl FnMut(&mut SlotGuard<'_, T>)) {
        for slot in self.map.entries() {
            if let Some(mut guard) = self.validate(slot, try_lock) {
                f(&mut guard);
            }
        }
    }
}

/// A live connection of a [`SlotTable`], locked: derefs to its state. Nobody
/// else can remove it while this exists; remove it with
/// [`remove`](Self::remove).
///
/// Small (four words) on purpose: a Stack moves guards around by value.
pub struct SlotGuard<'t, T: Send> {
    table: &'t SlotTable<T>,
    // Declared before `slot`: dropped first (see `SlotTable::validate`).
    state: MutexGuard<'t, SlotState<T>>,
    slot: Entry<T>,
}

impl<T: Send> SlotGuard<'_, T> {
    /// The connection's tuple.
    pub fn tuple(&self) -> FourTuple {
        self.state.tuple
    }

    /// A pin on this slot (a reference: BSD's `in_pcbref`), for
    /// [`SlotTable::lock_pinned`] later without a map lookup; the same
    /// contract as the SMR table's `PcbGuard::pin`.
    pub fn pin(&self) -> SlotPin<T> {
        SlotPin(Arc::clone(&self.slot))
    }

    /// Take the connection out of the table and return its state: out of
    /// the map while we hold its lock, then marked removed, so a lookup that
    /// cloned the `Arc` before the unlink finds it dead and looks again.
    pub fn remove(mut self) -> T {
        let linked = self
            .table
            .map
            .remove(&Key::from(&self.state.tuple), &self.slot);
        assert!(linked, "pcb::SlotTable: a live slot was not in the map");
        self.table.unreserve();
        self.state
            .conn
            .take()
            .expect("a slot guard exists only for a live slot")
    }
}

impl<T: Send> Deref for SlotGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.state
            .conn
            .as_ref()
            .expect("a slot guard exists only for a live slot")
    }
}

impl<T: Send> DerefMut for SlotGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.state
            .conn
            .as_mut()
            .expect("a slot guard exists only for a live slot")
    }
}

#[cfg(test)]
mod tests;
