//! The protocol control block and the three ways to hold one: [`PcbRef`],
//! valid only inside the read section that found it; [`PcbGuard`], the PCB's
//! own lock, taken and re-validated from a `PcbRef` (FreeBSD's
//! `inp_smr_lock`), which may outlive the section; and [`PcbPin`], an owned
//! token that keeps the PCB's memory from going back to the pool, so its
//! holder can lock it later without a lookup and without a read section
//! (FreeBSD's `in_pcbref`, counted under the PCB's lock instead of with an
//! atomic).
//!
//! Invariant: **a PCB is retired only by the holder of its lock, once it is
//! dead (marked under that lock) and no pin is left.** So a guard that found
//! it live (and with the tuple it looked up) holds a connection that cannot
//! be unlinked, retired or reused until the guard is dropped; and a pinned
//! PCB, live or dead, stays a constructed `Pcb<T>` in its chunk until the
//! last pin is given back. The remover retires it when no pin is left;
//! otherwise the holder of the last pin does, under the lock, when it gives
//! that pin back ([`Table::unpin`]). Either way the retire comes after the
//! unlink, so the grace period still covers every reader that found it.
//!
//! Locking key for [`Pcb`] (FreeBSD style: what protects each field):
//! - `key` (k): written only while the PCB is unreachable — after `alloc`,
//!   before its Release publication into a chain — and otherwise read-only.
//!   Readers that found the PCB inside a read section may read it; the pool
//!   reuses (and rewrites) a PCB only after every section that could have
//!   found it has ended, and a live PCB is never reused (invariant above).
//! - `incarnation` (k): as `key`: bumped by `Table::prepare` while the PCB
//!   is ours alone, before its publication; read by lookups beside the key.
//! - `links[i]` (s): the chain link this PCB uses in a bucket array whose
//!   `link` is `i` (two, so that during a resize the PCB is in the readers'
//!   array and in the array being built at once; see `table/resize.rs`).
//!   Written under the lock of the PCB's stripe; loaded by readers with
//!   Acquire, pairing with the Release stores in `table.rs` that publish a
//!   PCB or splice one out.
//! - `state` (l): the PCB's own lock. It protects the stack's per-connection
//!   state `T` and the liveness (`conn.is_some()`), and it is type-stable:
//!   constructed once by the pool's `init`, never re-created on reuse.
//!
//! Lock order: PCB lock, then stripe lock (as in FreeBSD: inp lock before the
//! hash lock), then (resizer only) every stripe lock in index order. Nothing
//! takes a PCB lock while holding a stripe lock, except `insert` on a PCB no
//! one else can reach yet.

use crate::primitive::{AtomicPtr, Mutex, MutexGuard, TupleCell, lock};
use crate::table::Table;
use crate::tuple::{FourTuple, Key};
use smr::ReadSection;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};

/// A connection's control block, as the pool holds it. Only the table
/// creates and links PCBs; users see them through [`PcbRef`] and
/// [`PcbGuard`].
///
/// `repr(C)`, in the order a lookup reads: the key (48 bytes), the
/// incarnation (read on a hit) and the first link (read on a miss) fill the
/// first 64 bytes, so a lookup that stops at this PCB reads one contiguous
/// run instead of fields the compiler may have spread over the object.
#[repr(C)]
pub struct Pcb<T> {
    pub(crate) key: TupleCell<Key>,
    /// Which use of this memory the PCB is (1 for the first): a `PcbRef`
    /// keeps the value it saw, so `lock` can tell its connection from a
    /// later one on the same tuple in the same memory (FreeBSD's
    /// `inp_gencnt`).
    pub(crate) incarnation: TupleCell<u64>,
    pub(crate) links: [AtomicPtr<Pcb<T>>; 2],
    pub(crate) state: Mutex<State<T>>,
}

/// What the PCB's lock protects.
pub(crate) struct State<T> {
    /// `Some` while the PCB is live (linked in the table, or about to be).
    pub(crate) conn: Option<T>,
    /// [`PcbPin`]s outstanding: while non-zero the PCB is not retired, dead
    /// or not. Zero whenever the PCB is in the pool.
    pub(crate) pins: u32,
}

// SAFETY: the only fields that are not Sync by themselves are `key` and
// `incarnation`, `Copy` values written only while no other thread can reach
// the PCB (see the locking key);
// `T` is reached only through the Mutex, which needs `T: Send`.
unsafe impl<T: Send> Sync for Pcb<T> {}
// SAFETY: as above; moving a PCB moves a `T`.
unsafe impl<T: Send> Send for Pcb<T> {}

impl<T> Pcb<T> {
    /// The pool's constructor: an unused PCB (dead, empty key).
    pub(crate) fn new() -> Pcb<T> {
        Pcb {
            key: TupleCell::new(Key::EMPTY),
            incarnation: TupleCell::new(0),
            links: [
                AtomicPtr::new(ptr::null_mut()),
                AtomicPtr::new(ptr::null_mut()),
            ],
            state: Mutex::new(State {
                conn: None,
                pins: 0,
            }),
        }
    }

    /// The pool's poison hook (feature `poison`): a PCB past its grace
    /// period gets a key no lookup asks for, so a reader that reached a
    /// recycled PCB would at least miss, and the pool flags its header.
    pub(crate) fn poison(pcb: &Pcb<T>) {
        // SAFETY: the hook runs once the PCB's grace period has passed: no
        // reader can reach it and no one has allocated it yet.
        unsafe { pcb.key.set(Key::POISON) };
    }

    /// The key.
    ///
    /// # Safety
    /// The caller found the PCB in a chain inside a read section that is
    /// still open, holds its stripe lock while it is linked, holds its live
    /// lock, or owns it (fresh from the pool, unpublished).
    #[inline(always)]
    pub(crate) unsafe fn key(&self) -> Key {
        // SAFETY: each case in the contract excludes a concurrent `set`.
        unsafe { self.key.get() }
    }

    /// The incarnation.
    ///
    /// # Safety
    /// As [`key`](Self::key).
    #[inline(always)]
    pub(crate) unsafe fn incarnation(&self) -> u64 {
        // SAFETY: as in `key`: the same contract excludes a concurrent `set`.
        unsafe { self.incarnation.get() }
    }
}

/// A PCB found by [`Table::lookup`], valid only inside the read section that
/// found it (`'g`). Reading its tuple needs no lock; anything else needs
/// [`lock`](Self::lock). `!Send`, like the section.
pub struct PcbRef<'t, 'g, T: Send + 'static> {
    pub(crate) table: &'t Table<T>,
    pub(crate) pcb: NonNull<Pcb<T>>,
    pub(crate) key: Key,
    /// The PCB's incarnation when it was found with `key`.
    pub(crate) incarnation: u64,
    pub(crate) _section: PhantomData<&'g ReadSection<'g>>,
}

impl<T: Send + 'static> Clone for PcbRef<'_, '_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Send + 'static> Copy for PcbRef<'_, '_, T> {}

impl<'t, 'g, T: Send + 'static> PcbRef<'t, 'g, T> {
    /// The connection's tuple (as it was when found; a PCB's tuple never
    /// changes while a section can see it).
    pub fn tuple(&self) -> FourTuple {
        self.key.tuple()
    }

    /// Lock the PCB and re-validate it: `None` if it was removed (or removed
    /// and reused for another connection) between the lookup and the lock.
    /// The guard may outlive the read section.
    ///
    /// Blocks on the PCB's lock inside the read section, which holds back
    /// reclamation while it waits. PCB lock holders are short and never wait
    /// for a grace period (`Domain::synchronize`, `PoolCache::barrier`), so
    /// this cannot deadlock; use [`try_lock`](Self::try_lock) where even that
    /// wait is unwelcome.
    pub fn lock(&self) -> Option<PcbGuard<'t, T>> {
        let pcb = self.pcb_ref();
        self.validate(pcb, lock(&pcb.state))
    }

    /// As [`lock`](Self::lock), but `Err(WouldBlock)` instead of waiting when
    /// another thread holds the PCB's lock.
    pub fn try_lock(&self) -> Result<Option<PcbGuard<'t, T>>, WouldBlock> {
        let pcb = self.pcb_ref();
        match crate::primitive::try_lock(&pcb.state) {
            Some(state) => Ok(self.validate(pcb, state)),
            None => Err(WouldBlock),
        }
    }

    fn pcb_ref(&self) -> &'t Pcb<T> {
        // SAFETY: `self` lives no longer than the section ('g) in which the
        // pointer was loaded from a chain, so the pool has not recycled the
        // PCB and its memory is a constructed `Pcb<T>` (type-stable). The
        // reference is handed on past 'g only inside a guard that found the
        // PCB live under its lock; a live, locked PCB cannot be retired (the
        // module invariant), so its memory stays in place for as long as the
        // guard exists, which is at most 't. The table owns the pool, and the
        // pool frees a chunk (`pool_reclaim_idle`, which runs through `&self`)
        // only when every slot in it is in the ready list, past its grace
        // period; a PCB behind a `PcbRef` (inside its section) or a
        // `PcbGuard` (live) is never in that list, so its chunk stays.
        unsafe { &*self.pcb.as_ptr() }
    }

    fn validate(
        &self,
        pcb: &'t Pcb<T>,
        state: MutexGuard<'t, State<T>>,
    ) -> Option<PcbGuard<'t, T>> {
        // Dead: removed (and perhaps reused) since the lookup.
        state.conn.as_ref()?;
        // Live, but perhaps another connection: reused for another tuple, or
        // for the same tuple (a TIME-WAIT reopen re-inserts it), which only
        // the incarnation tells apart. Within a correct grace period neither
        // can happen while the finding section is open (the pool reuses a
        // PCB only after it ends), so this is defence in depth.
        // SAFETY: we hold the PCB's lock and it is live: its key and
        // incarnation are only written while it is dead and unreachable.
        if unsafe { pcb.key() } != self.key || unsafe { pcb.incarnation() } != self.incarnation {
            return None;
        }
        Some(PcbGuard {
            table: self.table,
            pcb,
            state,
        })
    }
}

/// Another thread holds the PCB's lock (from [`PcbRef::try_lock`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WouldBlock;

/// A live connection, locked. Derefs to the stack's per-connection state.
/// The connection cannot be removed by anyone else while this exists; remove
/// it with [`remove`](Self::remove). `!Send` (it holds a mutex guard).
pub struct PcbGuard<'t, T: Send + 'static> {
    pub(crate) table: &'t Table<T>,
    pub(crate) pcb: &'t Pcb<T>,
    pub(crate) state: MutexGuard<'t, State<T>>,
}

impl<T: Send + 'static> PcbGuard<'_, T> {
    /// The connection's tuple.
    pub fn tuple(&self) -> FourTuple {
        // SAFETY: we hold the lock of a live PCB (module invariant).
        unsafe { self.pcb.key() }.tuple()
    }

    /// Which reuse of this PCB's memory this connection is (1 for the first).
    pub fn incarnation(&self) -> u64 {
        // SAFETY: we hold the lock of a live PCB (module invariant).
        unsafe { self.pcb.incarnation() }
    }

    /// A pin on this PCB: until it is given back with [`Table::unpin`], the
    /// PCB is not retired (a `remove` meanwhile unlinks it and marks it dead
    /// but leaves the retire to the last pin's holder), so the pin can be
    /// locked later with [`Table::lock_pinned`], from any thread, with no
    /// lookup and no read section. Counted under the lock we hold.
    ///
    /// # Panics
    /// If the PCB already has `u32::MAX` pins (a caller that leaks pins).
    pub fn pin(&mut self) -> PcbPin<T> {
        self.state.pins = self
            .state
            .pins
            .checked_add(1)
            .expect("pcb::PcbGuard::pin: pin count overflow (pins are leaked)");
        PcbPin {
            pcb: NonNull::from(self.pcb),
            table: NonNull::from(self.table).cast(),
            // SAFETY: we hold the lock of a live PCB (module invariant).
            incarnation: unsafe { self.pcb.incarnation() },
            #[cfg(feature = "poison")]
            generation: self.table.pool_generation(NonNull::from(self.pcb)),
        }
    }
}

/// A pin on a PCB (from [`PcbGuard::pin`]): keeps its memory out of the pool
/// until given back with [`Table::unpin`], so [`Table::lock_pinned`] reaches
/// it directly. Owned and `Send` (it names the PCB, it does not lock it),
/// neither `Clone` nor `Copy`: each pin is counted once and given back
/// once. Dropping one without `unpin` leaks the PCB's slot (it is never
/// retired); the table it came from must outlive it.
#[must_use = "a pin that is not given back with Table::unpin leaks its PCB"]
pub struct PcbPin<T> {
    pcb: NonNull<Pcb<T>>,
    /// The table the PCB belongs to (checked by `lock_pinned` and `unpin`).
    table: NonNull<()>,
    /// The incarnation when pinned (defence in depth: a pinned PCB is never
    /// reused, so it cannot change).
    incarnation: u64,
    /// The pool's generation of the PCB when pinned (feature `poison`):
    /// changes only on a retire or a reuse, which a pin must prevent.
    #[cfg(feature = "poison")]
    generation: u64,
}

// SAFETY: a pin is a pointer and a number; the PCB it names is reached only
// through the table's `lock_pinned`/`unpin`, which take its lock (`Pcb<T>`
// is `Sync` for `T: Send`).
unsafe impl<T: Send> Send for PcbPin<T> {}
// SAFETY: as above; `&PcbPin` gives nothing but `lock_pinned`.
unsafe impl<T: Send> Sync for PcbPin<T> {}

impl<T> core::fmt::Debug for PcbPin<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PcbPin")
            .field("pcb", &self.pcb)
            .field("incarnation", &self.incarnation)
            .finish()
    }
}

impl<T: Send + 'static> Table<T> {
    fn pinned<'t>(&'t self, pin: &PcbPin<T>) -> (&'t Pcb<T>, MutexGuard<'t, State<T>>) {
        assert!(
            pin.table == NonNull::from(self).cast(),
            "pcb::Table: a pin from another table"
        );
        // SAFETY: the pin is outstanding (not yet given back: `unpin`
        // consumes it), so its PCB has not been retired (module invariant)
        // and its chunk is not freed; the memory is a constructed `Pcb<T>`
        // of this table's pool (checked above), which outlives `'t`.
        let pcb: &'t Pcb<T> = unsafe { &*pin.pcb.as_ptr() };
        #[cfg(feature = "poison")]
        self.check_pin(pin.pcb, pin.generation);
        (pcb, lock(&pcb.state))
    }

    /// Lock a pinned PCB: `None` if its connection was removed since it was
    /// pinned. The pin stays outstanding. No lookup, no read section.
    ///
    /// # Panics
    /// If the pin came from another table.
    pub fn lock_pinned(&self, pin: &PcbPin<T>) -> Option<PcbGuard<'_, T>> {
        let (pcb, state) = self.pinned(pin);
        Self::live_guard(self, pcb, state, pin.incarnation)
    }

    /// Give a pin back; if the connection is still live, its guard (locked
    /// once for both). If it is dead and this was its last pin, the PCB is
    /// retired here, under the rule of the module docs.
    ///
    /// # Panics
    /// If the pin came from another table.
    pub fn unpin(&self, pin: PcbPin<T>) -> Option<PcbGuard<'_, T>> {
        let (pcb, mut state) = self.pinned(&pin);
        debug_assert!(state.pins > 0, "pcb::Table::unpin: no pin outstanding");
        state.pins -= 1;
        if state.conn.is_some() {
            return Self::live_guard(self, pcb, state, pin.incarnation);
        }
        let last = state.pins == 0;
        drop(state);
        if last {
            // SAFETY: dead (marked by its remover, who also unlinked it and
            // left the retire to us because pins were outstanding) and its
            // last pin is given back under its lock: no pin, guard or new
            // lookup can reach it, and no one else retires it (the remover
            // saw pins, the other pin holders saw pins left). Readers still
            // holding a pointer are inside sections the grace period covers.
            unsafe { self.pool_retire(NonNull::from(pcb)) };
        }
        None
    }

    fn live_guard<'t>(
        table: &'t Table<T>,
        pcb: &'t Pcb<T>,
        state: MutexGuard<'t, State<T>>,
        incarnation: u64,
    ) -> Option<PcbGuard<'t, T>> {
        state.conn.as_ref()?;
        // SAFETY: we hold the lock of a live PCB.
        if unsafe { pcb.incarnation() } != incarnation {
            // A pinned PCB is never reused, so this cannot happen.
            return None;
        }
        Some(PcbGuard { table, pcb, state })
    }
}

impl<T: Send + 'static> Deref for PcbGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.state
            .conn
            .as_ref()
            .expect("a guard exists only for a live PCB")
    }
}

impl<T: Send + 'static> DerefMut for PcbGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.state
            .conn
            .as_mut()
            .expect("a guard exists only for a live PCB")
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_pin;
