//! Per-thread reader slots.
//!
//! Invariant: a slot is owned by at most one live thread at a time. Readers
//! publish into their own slot with plain stores; a slot shared by two threads
//! would let the first one to leave clear the value the second still needs,
//! and the writer would reuse memory under it (the failure a FreeBSD-in-
//! userspace port hit by mapping "per-CPU" onto a slot several threads share).
//!
//! Slots live in a lock-free, append-only list owned by the [`Registry`]; a
//! thread claims a free slot (or appends one) on its first use of a registry,
//! keeps it in thread-local storage, and releases it when the thread exits, so
//! a scan visits at most as many slots as there have ever been threads alive
//! at the same time. Slots are freed only when the registry itself is dropped,
//! which the `Arc` held by every claiming thread delays until none is left.
//!
//! Two things this does not support:
//! - **No `fork()` without `exec`.** The child has only the forking thread;
//!   the slots (and pool caches) of every other parent thread stay owned
//!   forever, some perhaps with a section published (so a goal never passes
//!   and the pool runs dry), and a mutex another thread held at the fork
//!   (a slot's `name`, a pool's depot) stays locked. A child that only
//!   `exec`s (or touches nothing of this crate before it does) is fine.
//!   crossbeam-epoch has the same rule.
//! - **A thread's first section is not async-signal-safe.** The first use of
//!   a registry on a thread borrows the thread-local `HELD` (`RefCell`) and
//!   may allocate (a new slot, a longer `HELD` list), so a signal handler
//!   that enters a section must not run on a thread that has never entered
//!   one of that domain. Once the thread has its slot, enter and exit are
//!   plain loads and stores on the cached fast path, and a handler that
//!   enters and exits leaves the slot as it found it.
//!
//! Locking key: `value`, `sections` (c: owner thread writes, anyone reads);
//! `nested`, `deferred`, `stats` (o: owner thread only writes); `owned`
//! (claim/release by CAS); `next` (immutable once published); `name` (mutex).

use crate::primitive::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Mutex, lock};
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// Owner-written statistics, summed by whoever asks. Kept on their own cache
/// line so that writing them never disturbs the line scanners read. They are
/// `std` atomics even under loom: they order nothing, and modelling them
/// would multiply the interleavings loom explores for no property.
#[derive(Debug, Default)]
pub(crate) struct SlotStats {
    pub(crate) advances: StatCounter,
    pub(crate) polls: StatCounter,
    pub(crate) scans: StatCounter,
    pub(crate) waits: StatCounter,
    pub(crate) membarriers: StatCounter,
    pub(crate) catchups: StatCounter,
}

/// A statistics counter (never modelled by loom).
pub(crate) type StatCounter = std::sync::atomic::AtomicU64;

/// A word only the owning thread reads or writes (`nested`, `deferred`): an
/// atomic only so that the slot is `Sync`. A `std` atomic even under loom,
/// for the same reason as [`StatCounter`]: one thread's private counter
/// orders nothing and has no races to find.
type OwnerWord = std::sync::atomic::AtomicU32;

#[repr(C, align(128))]
pub(crate) struct Slot {
    // First line: what a reader writes on every section and a scan reads.
    /// The published reader value: a sequence for an SMR domain, a section
    /// number for pserialize; `0` when the owner is outside every section.
    pub(crate) value: AtomicU64,
    /// Sections the owner has open beyond the first (owner only). Touched
    /// only when sections actually nest, so the common enter/exit pair has
    /// no load-modify-store chain through memory.
    nested: OwnerWord,
    /// Outermost sections the owner has entered (pserialize only: its
    /// waiters use it to tell one section from the next).
    pub(crate) sections: AtomicU64,
    /// Advances the owner has deferred (SMR deferred mode, owner only).
    pub(crate) deferred: OwnerWord,
    owned: AtomicBool,
    next: *const Slot,
    index: usize,
    // Second line onwards: cold.
    pub(crate) stats: crate::primitive::CachePadded<SlotStats>,
    name: Mutex<String>,
}

// SAFETY: every field is an atomic, a mutex, or `next`/`index`, which are
// written once before the slot is published with a Release CAS and are
// immutable afterwards.
unsafe impl Sync for Slot {}
// SAFETY: as above; the raw `next` pointer is only a link to a sibling slot
// owned by the same registry.
unsafe impl Send for Slot {}

impl Slot {
    /// Owner only: whether a section is open (a value is published).
    #[inline(always)]
    pub(crate) fn active(&self) -> bool {
        // Relaxed: only the owner writes `value`, so it reads its own store.
        self.value.load(Relaxed) != 0
    }

    /// Owner only: enter a section while one is already open.
    #[inline(always)]
    pub(crate) fn nest(&self) {
        // Relaxed: owner-only field.
        self.nested.store(self.nested.load(Relaxed) + 1, Relaxed);
    }

    /// Owner only: leave a section; true if it was the last one open, and
    /// the caller must clear `value`. Guards may be dropped in any order:
    /// whichever drops last clears the slot.
    #[inline(always)]
    pub(crate) fn unnest(&self) -> bool {
        // Relaxed: owner-only field.
        let n = self.nested.load(Relaxed);
        if n == 0 {
            return true;
        }
        self.nested.store(n - 1, Relaxed);
        false
    }

    pub(crate) fn index(&self) -> usize {
        self.index
    }

    pub(crate) fn thread_name(&self) -> String {
        lock(&self.name).clone()
    }
}

static NEXT_REGISTRY_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The set of reader slots of one domain.
pub(crate) struct Registry {
    id: u64,
    head: AtomicPtr<Slot>,
    len: AtomicUsize,
}

impl Registry {
    pub(crate) fn new() -> Arc<Registry> {
        Arc::new(Registry {
            // Relaxed: only uniqueness matters.
            id: NEXT_REGISTRY_ID.fetch_add(1, Relaxed),
            head: AtomicPtr::new(ptr::null_mut()),
            len: AtomicUsize::new(0),
        })
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Number of slots ever created (claimed or free).
    pub(crate) fn len(&self) -> usize {
        // Relaxed: diagnostics only.
        self.len.load(Relaxed)
    }

    /// Every slot, claimed or not. Slots are never removed while the registry
    /// lives, so the iterator is safe against concurrent claims and appends
    /// (it may miss a slot appended after it started, which only a reader
    /// that entered after the scan began can own).
    pub(crate) fn iter(&self) -> SlotIter<'_> {
        SlotIter {
            // Acquire: pairs with the Release CAS in `claim` so the slot's
            // fields initialised before publication are visible.
            next: self.head.load(Acquire),
            _registry: std::marker::PhantomData,
        }
    }

    /// Claim a free slot or append a new one. The caller owns it until
    /// `release`.
    fn claim(&self) -> *const Slot {
        for slot in self.iter() {
            if Self::try_take(slot) {
                slot.set_name();
                return slot;
            }
        }
        let mut new = Box::new(Slot {
            value: AtomicU64::new(0),
            nested: OwnerWord::new(0),
            sections: AtomicU64::new(0),
            deferred: OwnerWord::new(0),
            owned: AtomicBool::new(true),
            next: ptr::null(),
            // Relaxed: only a label for diagnostics.
            index: self.len.fetch_add(1, Relaxed),
            stats: Default::default(),
            name: Mutex::new(String::new()),
        });
        new.set_name();
        let mut head = self.head.load(Relaxed);
        loop {
            new.next = head;
            let raw = Box::into_raw(new);
            // Release: publishes the initialised slot to `iter`.
            match self.head.compare_exchange_weak(head, raw, Release, Relaxed) {
                Ok(_) => return raw,
                Err(actual) => {
                    head = actual;
                    // SAFETY: `raw` came from `Box::into_raw` just above and
                    // was not published, so we still own it.
                    new = unsafe { Box::from_raw(raw) };
                }
            }
        }
    }

    /// Take a free slot: one CAS, so of two threads racing for it exactly
    /// one wins (the invariant at the top).
    #[cfg(not(smr_weakened = "claim"))]
    fn try_take(slot: &Slot) -> bool {
        // Acquire: pairs with the Release in `release`, so the previous
        // owner's last stores (its INVALID exit store) come before ours.
        !slot.owned.load(Relaxed)
            && slot
                .owned
                .compare_exchange(false, true, Acquire, Relaxed)
                .is_ok()
    }

    /// Negative control for `tests/loom_registry.rs`: a check-then-set
    /// claim, so two threads can take one slot. Never built otherwise.
    #[cfg(smr_weakened = "claim")]
    fn try_take(slot: &Slot) -> bool {
        // Acquire: as in the real `try_take`.
        if slot.owned.load(Acquire) {
            return false;
        }
        // Widen the window between the check and the set (a preemption).
        #[cfg(loom)]
        loom::thread::yield_now();
        #[cfg(not(loom))]
        std::thread::yield_now();
        // Relaxed: the bug under test is the missing RMW, not the ordering.
        slot.owned.store(true, Relaxed);
        true
    }

    /// Give a slot back for another thread to claim.
    fn release(slot: &Slot) {
        if slot.active() {
            // A section was leaked (`mem::forget` on a guard). Keeping the
            // slot owned forever stalls reclamation, which is safe; handing
            // it to another thread would not be.
            return;
        }
        // Release: the next owner's Acquire claim sees our final stores.
        slot.owned.store(false, Release);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Relaxed: `&mut self` means no other thread can reach the list.
        let mut p = self.head.load(Relaxed);
        while !p.is_null() {
            // SAFETY: every slot in the list was created by `Box::into_raw` in
            // `claim`; we have exclusive access (`&mut self`, and every
            // thread that claimed a slot holds an `Arc` to us, so none is
            // left), and each slot is visited once.
            let slot = unsafe { Box::from_raw(p) };
            p = slot.next as *mut Slot;
        }
    }
}

impl Slot {
    fn set_name(&self) {
        let t = std::thread::current();
        let name = match t.name() {
            Some(n) => n.to_owned(),
            None => format!("{:?}", t.id()),
        };
        *lock(&self.name) = name;
    }
}

pub(crate) struct SlotIter<'a> {
    next: *const Slot,
    _registry: std::marker::PhantomData<&'a Registry>,
}

impl<'a> Iterator for SlotIter<'a> {
    type Item = &'a Slot;
    fn next(&mut self) -> Option<&'a Slot> {
        // SAFETY: slots are published with a Release CAS that `iter`'s
        // Acquire load (or the immutable `next` link) observed, and are only
        // freed when the registry is dropped, which the `'a` borrow prevents.
        let slot = unsafe { self.next.as_ref()? };
        self.next = slot.next;
        Some(slot)
    }
}

/// A slot the current thread may write to: either its cached slot for this
/// registry (held until the thread exits) or, when thread-local storage is
/// already being torn down, a slot claimed for one section and released after.
pub(crate) struct LocalSlot {
    slot: *const Slot,
    temporary: bool,
}

impl LocalSlot {
    #[inline(always)]
    pub(crate) fn get(&self) -> &Slot {
        // SAFETY: `slot` is owned by this thread (claimed in `local_slot` and
        // not released while this `LocalSlot` or the thread-local holder
        // lives), and the registry outlives both because the caller holds an
        // `Arc<Registry>` for at least as long.
        unsafe { &*self.slot }
    }
}

impl Drop for LocalSlot {
    /// A temporary slot goes back to the registry; a cached one stays with
    /// its thread.
    #[inline(always)]
    fn drop(&mut self) {
        if self.temporary {
            Registry::release(self.get());
        }
    }
}

/// The slots this thread holds, released when it exits.
struct Held(Vec<(Arc<Registry>, *const Slot)>);

impl Drop for Held {
    fn drop(&mut self) {
        #[cfg(not(loom))]
        CACHE.set((0, ptr::null()));
        for (_, slot) in self.0.drain(..) {
            // SAFETY: the paired `Arc<Registry>` keeps the slot allocated
            // until the end of this iteration.
            Registry::release(unsafe { &*slot });
        }
    }
}

#[cfg(not(loom))]
thread_local! {
    /// One-entry cache for the hot path: (registry id, slot). No destructor,
    /// so reading it is a plain thread-local load. Cleared before `HELD`
    /// releases the slot it points to.
    static CACHE: std::cell::Cell<(u64, *const Slot)> = const { std::cell::Cell::new((0, ptr::null())) };
    static HELD: std::cell::RefCell<Held> = const { std::cell::RefCell::new(Held(Vec::new())) };
}

#[cfg(loom)]
loom::thread_local! {
    static HELD: std::cell::RefCell<Held> = std::cell::RefCell::new(Held(Vec::new()));
}

/// The calling thread's slot in `registry`, whose id is `id`.
#[inline(always)]
pub(crate) fn local_slot(id: u64, registry: &Arc<Registry>) -> LocalSlot {
    debug_assert_eq!(id, registry.id);
    #[cfg(not(loom))]
    {
        let (cached, slot) = CACHE.get();
        if cached == id {
            return LocalSlot {
                slot,
                temporary: false,
            };
        }
    }
    local_slot_slow(registry)
}

#[cold]
fn local_slot_slow(registry: &Arc<Registry>) -> LocalSlot {
    let held = HELD.try_with(|held| {
        let mut held = held.borrow_mut();
        // Give back slots of registries whose domain is gone (we hold the
        // last reference), so a long-lived thread that used many short-lived
        // domains does not keep one slot per dead domain.
        held.0.retain(|(r, slot)| {
            let dead = Arc::strong_count(r) == 1;
            if dead {
                // SAFETY: `r` keeps the slot allocated for this call.
                Registry::release(unsafe { &**slot });
            }
            !dead
        });
        let slot = match held.0.iter().find(|(r, _)| r.id == registry.id) {
            Some(&(_, slot)) => slot,
            None => {
                let slot = registry.claim();
                held.0.push((Arc::clone(registry), slot));
                slot
            }
        };
        #[cfg(not(loom))]
        CACHE.set((registry.id, slot));
        slot
    });
    match held {
        Ok(slot) => LocalSlot {
            slot,
            temporary: false,
        },
        // Thread-local storage is being destroyed (a destructor entered a
        // section): use a slot for this one section only.
        Err(_) => LocalSlot {
            slot: registry.claim(),
            temporary: true,
        },
    }
}

/// Whether the calling thread is inside a section of `registry`, without
/// claiming a slot if it has none.
pub(crate) fn in_section(registry: &Arc<Registry>) -> bool {
    HELD.try_with(|held| {
        held.borrow()
            .0
            .iter()
            .find(|(r, _)| r.id == registry.id)
            // SAFETY: the held `Arc` keeps the slot allocated.
            .map(|&(_, slot)| unsafe { &*slot }.active())
            .unwrap_or(false)
    })
    .unwrap_or(false)
}

/// Sum one statistic over every slot.
pub(crate) fn sum(registry: &Registry, f: impl Fn(&SlotStats) -> &StatCounter) -> u64 {
    registry
        .iter()
        // Relaxed: statistics only.
        .map(|s| f(&s.stats).load(Relaxed))
        .fold(0u64, u64::wrapping_add)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn each_thread_gets_its_own_slot_and_exited_threads_give_theirs_back() {
        let reg = Registry::new();
        let a = local_slot(reg.id(), &reg).get() as *const Slot as usize;
        let b = std::thread::scope(|s| {
            s.spawn(|| local_slot(reg.id(), &reg).get() as *const Slot as usize)
                .join()
                .unwrap()
        });
        assert_ne!(a, b, "two live threads must never share a slot");
        assert_eq!(reg.len(), 2);
        // The second thread has exited: its slot is reused, not a new one.
        for _ in 0..8 {
            let c = std::thread::scope(|s| {
                s.spawn(|| local_slot(reg.id(), &reg).get() as *const Slot as usize)
                    .join()
                    .unwrap()
            });
            assert_eq!(c, b);
        }
        assert_eq!(reg.len(), 2);
    }

    #[test]
    fn slot_with_a_leaked_section_is_never_handed_out_again() {
        let reg = Registry::new();
        let leaked = std::thread::scope(|s| {
            s.spawn(|| {
                let slot = local_slot(reg.id(), &reg);
                slot.get().value.store(7, Relaxed);
                slot.get() as *const Slot as usize
            })
            .join()
            .unwrap()
        });
        let next = std::thread::scope(|s| {
            s.spawn(|| local_slot(reg.id(), &reg).get() as *const Slot as usize)
                .join()
                .unwrap()
        });
        assert_ne!(leaked, next);
    }

    #[test]
    fn a_thread_does_not_keep_slots_of_dropped_registries() {
        for _ in 0..100 {
            let reg = Registry::new();
            let _ = local_slot(reg.id(), &reg);
        }
        let held = HELD.with(|h| h.borrow().0.len());
        assert!(held <= 1, "{held} registries kept alive by one thread");
    }

    /// Each live thread stamps its slot with its own tag, lets the others
    /// run, and checks the tag is still there: a slot handed to two live
    /// threads (a claim racing a release, or a temporary slot claimed during
    /// thread-local teardown) shows up as a foreign tag. Bounded: `ROUNDS`
    /// waves of `THREADS` threads, each thread a few section-like stamps.
    #[test]
    fn concurrent_exits_and_claims_never_share_a_slot() {
        const THREADS: u32 = 8;
        const ROUNDS: u32 = 60;
        const STAMPS: u32 = 20;

        /// Stamps and checks `slot` with `tag`, leaving it idle (0).
        fn stamp(slot: &Slot, tag: u32) {
            for _ in 0..STAMPS {
                assert_eq!(slot.value.load(Relaxed), 0, "a claimed slot was busy");
                slot.value.store(u64::from(tag), Relaxed);
                std::thread::yield_now();
                assert_eq!(
                    slot.value.load(Relaxed),
                    u64::from(tag),
                    "two live threads share slot {}",
                    slot.index()
                );
                slot.value.store(0, Relaxed);
            }
        }

        /// Claims a slot from its destructor, after `HELD` may be gone.
        struct Late(Option<(Arc<Registry>, u32)>);
        impl Drop for Late {
            fn drop(&mut self) {
                if let Some((reg, tag)) = self.0.take() {
                    let slot = local_slot(reg.id(), &reg);
                    if slot.temporary {
                        TEMPORARY.fetch_add(1, Relaxed);
                    }
                    stamp(slot.get(), tag);
                }
            }
        }
        thread_local! {
            static LATE: std::cell::RefCell<Late> = const { std::cell::RefCell::new(Late(None)) };
        }

        /// Sections that ran on a temporary slot (in `Late::drop`).
        static TEMPORARY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

        let reg = Registry::new();
        for round in 0..ROUNDS {
            // Joined one by one: a join (pthread_join) returns only after
            // the thread's thread-local destructors ran, so each wave starts
            // with every slot given back; the scope's own wait does not.
            std::thread::scope(|s| {
                let wave: Vec<_> = (0..THREADS)
                    .map(|i| {
                        let reg = &reg;
                        s.spawn(move || {
                            let tag = 1 + round * 2 * THREADS + 2 * i;
                            // `LATE` first used before `HELD` in half the
                            // threads, after it in the other half.
                            if i % 2 == 0 {
                                LATE.with(|l| l.borrow_mut().0 = Some((Arc::clone(reg), tag + 1)));
                            }
                            stamp(local_slot(reg.id(), reg).get(), tag);
                            if i % 2 == 1 {
                                LATE.with(|l| l.borrow_mut().0 = Some((Arc::clone(reg), tag + 1)));
                            }
                        })
                    })
                    .collect();
                for t in wave {
                    t.join().unwrap();
                }
            });
        }
        // Every thread has exited and given its slots back (the temporary
        // ones included): as many slots as were ever live at once, at most
        // two per thread of one wave (its own and a temporary one).
        assert!(
            reg.len() <= 2 * THREADS as usize,
            "{} slots for {THREADS} threads at a time",
            reg.len()
        );
        assert!(reg.iter().all(|s| !s.owned.load(Relaxed) && !s.active()));
        // Thread-locals are destroyed in reverse order of first use, so
        // where `LATE` came first its destructor ran after `HELD`'s and its
        // section took the temporary path.
        assert!(
            TEMPORARY.load(Relaxed) >= u64::from(ROUNDS * THREADS / 2),
            "only {} sections on a temporary slot",
            TEMPORARY.load(Relaxed)
        );
    }

    #[test]
    fn dropping_a_registry_while_a_thread_holds_a_slot_is_safe() {
        let reg = Registry::new();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let r2 = Arc::clone(&reg);
        let h = std::thread::spawn(move || {
            let _ = local_slot(r2.id(), &r2);
            drop(r2);
            rx.recv().unwrap();
        });
        drop(reg);
        tx.send(()).unwrap();
        h.join().unwrap();
    }
}
