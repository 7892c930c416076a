//! Online resize of the exact table under SMR: grow and shrink while
//! lookups go on without blocking and without missing a present entry.
//!
//! The relativistic hash table (Triplett, McKenney, Walpole, USENIX ATC
//! 2011) resizes one chain set in place: unzip on grow, zip on shrink, a
//! grace period between steps, and one writer lock over the whole resize.
//! This table's writers hold only a stripe lock, so a resize that relinks
//! the readers' chains step by step would have to reason about inserts and
//! removes landing between its steps, and it would have to wait for grace
//! periods while writers queue. Instead each PCB has two links, and a resize
//! builds a second, complete set of chains through the other link while the
//! readers keep walking the first (the shape of Linux's `rhashtable`, whose
//! entries sit in the old and the new table at once during a rehash, bought
//! here with one more pointer per PCB):
//!
//! 1. **Start.** Allocate the new array (`link` = the other link), empty,
//!    and install it as `shadow` with every stripe lock held. From then on
//!    every insert and remove changes both arrays, under its stripe lock.
//! 2. **Copy, one stripe per step.** Under stripe `s`'s lock, empty the new
//!    array's buckets of stripe `s` and push into them every PCB of the
//!    readers' buckets of stripe `s`. Afterwards the stripe is kept equal in
//!    both by the writers (step 1). Both arrays have at least as many
//!    buckets as there are stripes, so a stripe's buckets in either array hold exactly the keys
//!    whose low hash bits are `s`. Bounded: one stripe (about len/256 PCBs).
//! 3. **Swap.** With every stripe lock held, `main` ← the new array (Release)
//!    and `shadow` ← null, then take a grace-period goal (`Domain::advance`,
//!    which never waits). The old array's chains are frozen from here: no
//!    writer can reach it, so a reader still walking it sees every PCB that
//!    was present at the swap, and a PCB removed later is retired with a
//!    goal after this one, so it is not reused while such a reader lasts.
//! 4. **Retire.** A later step that finds the goal passed (`Domain::poll`,
//!    never waits) frees the old array; only then may a new resize start,
//!    since it will write the old array's link in every PCB.
//!
//! Readers never see the shadow, and at every moment `main` holds every
//! present PCB (before the swap it is maintained by the writers, and after
//! it the new array is complete by steps 1-2), so no lookup misses a present
//! key. Work is done by writers (each insert or remove does at most one step
//! after releasing its locks, and only when the resizer's lock is free) or
//! by [`Table::resize_step`] from a maintenance thread; never by a reader,
//! and never waiting for one.
//!
//! Trigger, with hysteresis: grow when entries exceed buckets (load > 1) to
//! at least twice the buckets and a load ≤ 1/2; shrink when the load falls
//! under 1/8 (and the table is above its minimum) to a load in (1/4, 1/2].
//! A writer tests its own stripe's count against the per-stripe share of
//! the buckets (no shared counter on the insert path), and only past a
//! margin sums every stripe for the exact decision.
//!
//! Locking key for [`Resizer`]:
//! - `phase`: under its mutex (taken with `try_lock` by writers, so a writer
//!   never queues behind a resize step).
//! - `active`, `buckets`: written under the mutex, read Relaxed by writers
//!   as hints (a stale value costs one skipped or one extra `try_lock`).
//! - counters: Relaxed, statistics only.

use super::{Array, Table};
use crate::pcb::Pcb;
use crate::primitive::{Mutex, MutexGuard, lock, try_lock};
use smr::Goal;
use std::ptr;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::time::Instant;

/// The largest bucket array a resize makes (2^28 heads, 2 GiB).
const MAX_BUCKETS: usize = 1 << 28;

/// A bucket count: a power of two in [`stripes`, `MAX_BUCKETS`].
pub(crate) fn clamp_buckets(n: usize, stripes: usize) -> usize {
    n.clamp(stripes, MAX_BUCKETS).next_power_of_two()
}

/// What one [`Table::resize_step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeStep {
    /// No resize under way, and none needed.
    Idle,
    /// Another thread holds the resizer.
    Busy,
    /// A resize to this many buckets started.
    Started(usize),
    /// One stripe copied into the new array.
    Copied(usize),
    /// The new array replaced the readers' one.
    Swapped,
    /// The old array's grace period has not passed yet.
    Waiting,
    /// The old array was freed: the resize is complete.
    Finished,
}

/// The resizer's counters (see [`Table::resize_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ResizeStats {
    /// Buckets in the readers' array.
    pub buckets: usize,
    /// Entries (the stripe counts' sum).
    pub entries: usize,
    /// Entries over buckets.
    pub load_factor: f64,
    /// Completed grows.
    pub grows: u64,
    /// Completed shrinks.
    pub shrinks: u64,
    /// Nanoseconds from start to swap, summed over completed resizes (the
    /// time the table spent carrying two arrays' writes).
    pub resize_ns: u64,
    /// PCBs copied into new arrays, over all resizes.
    pub copied: u64,
    /// Whether a resize is under way (including the wait to free the old
    /// array).
    pub in_progress: bool,
}

enum Phase<T> {
    Idle,
    Copying {
        next: usize,
        started: Instant,
        grow: bool,
    },
    Retiring {
        old: *mut Array<T>,
        goal: Goal,
    },
}

struct State<T> {
    phase: Phase<T>,
    /// Poison builds keep retired arrays (poisoned) until the table drops.
    #[cfg(all(feature = "poison", not(loom)))]
    graveyard: Vec<*mut Array<T>>,
}

/// The resize state machine of one table (see the module docs).
pub(crate) struct Resizer<T> {
    state: Mutex<State<T>>,
    active: AtomicBool,
    buckets: AtomicUsize,
    auto: bool,
    min: usize,
    grows: AtomicU64,
    shrinks: AtomicU64,
    resize_ns: AtomicU64,
    copied: AtomicU64,
}

impl<T: Send + 'static> Resizer<T> {
    pub(crate) fn new(auto: bool, min: usize, buckets: usize) -> Resizer<T> {
        Resizer {
            state: Mutex::new(State {
                phase: Phase::Idle,
                #[cfg(all(feature = "poison", not(loom)))]
                graveyard: Vec::new(),
            }),
            active: AtomicBool::new(false),
            buckets: AtomicUsize::new(buckets),
            auto,
            min,
            grows: AtomicU64::new(0),
            shrinks: AtomicU64::new(0),
            resize_ns: AtomicU64::new(0),
            copied: AtomicU64::new(0),
        }
    }

    /// After an insert that left `count` entries in its stripe: a step if a
    /// resize is under way, or a grow check if the stripe looks overfull.
    #[inline]
    pub(crate) fn after_insert(&self, table: &Table<T>, count: usize) {
        if !self.auto {
            return;
        }
        // Relaxed: hints (see the locking key).
        if self.active.load(Relaxed) {
            self.step(table, false);
            return;
        }
        let share = self.buckets.load(Relaxed) / table.stripes.len();
        if count > share + share / 8 + 2 {
            self.step(table, true);
        }
    }

    /// After a remove that left `count` entries in its stripe: a step if a
    /// resize is under way, or a shrink check if the stripe looks sparse.
    #[inline]
    pub(crate) fn after_remove(&self, table: &Table<T>, count: usize) {
        if !self.auto {
            return;
        }
        // Relaxed: hints.
        if self.active.load(Relaxed) {
            self.step(table, false);
            return;
        }
        let buckets = self.buckets.load(Relaxed);
        if buckets > self.min && count.saturating_mul(8 * table.stripes.len()) < buckets {
            self.step(table, true);
        }
    }

    /// The bucket count the load calls for, if not the current one.
    fn wanted(&self, table: &Table<T>) -> Option<usize> {
        let len = table.len();
        let stripes = table.stripes.len();
        // Relaxed: written only under the state lock, which the caller holds.
        let buckets = self.buckets.load(Relaxed);
        let target = if len > buckets {
            clamp_buckets(len, stripes).max(buckets.saturating_mul(2))
        } else if buckets > self.min && len.saturating_mul(8) < buckets {
            clamp_buckets(len.saturating_mul(2), stripes).max(self.min)
        } else {
            return None;
        };
        let target = clamp_buckets(target, stripes);
        (target != buckets).then_some(target)
    }

    /// Start a resize to `n` buckets; whether one started.
    pub(crate) fn start(&self, table: &Table<T>, n: usize) -> bool {
        let mut st = lock(&self.state);
        self.start_locked(table, &mut st, n)
    }

    fn start_locked(&self, table: &Table<T>, st: &mut State<T>, n: usize) -> bool {
        if !matches!(st.phase, Phase::Idle) {
            return false;
        }
        // Relaxed: `main` changes only under this state lock, which we hold.
        // SAFETY: never null; only this (locked) resizer frees arrays.
        let main = unsafe { &*table.main.load(Relaxed) };
        if n == main.len() {
            return false;
        }
        let new = Array::alloc(n, 1 - main.link(), main.layout());
        let guards = lock_all(table);
        // Relaxed: writers read it under their stripe lock, which we hold.
        table.shadow.store(new, Relaxed);
        drop(guards);
        st.phase = Phase::Copying {
            next: 0,
            started: Instant::now(),
            grow: n > main.len(),
        };
        // Relaxed: a hint (see the locking key).
        self.active.store(true, Relaxed);
        true
    }

    /// One bounded step; `check`: with none under way, test the load and
    /// start one if needed.
    pub(crate) fn step(&self, table: &Table<T>, check: bool) -> ResizeStep {
        let Some(mut st) = try_lock(&self.state) else {
            return ResizeStep::Busy;
        };
        match st.phase {
            Phase::Idle => {
                if check
                    && self.auto
                    && let Some(n) = self.wanted(table)
                    && self.start_locked(table, &mut st, n)
                {
                    return ResizeStep::Started(n);
                }
                ResizeStep::Idle
            }
            Phase::Copying {
                next,
                started,
                grow,
            } if next < table.stripes.len() => {
                self.copy_stripe(table, next);
                st.phase = Phase::Copying {
                    next: next + 1,
                    started,
                    grow,
                };
                ResizeStep::Copied(next)
            }
            Phase::Copying { started, grow, .. } => {
                let guards = lock_all(table);
                // Relaxed: only the locked resizer writes `main`.
                let old = table.main.load(Relaxed);
                // Relaxed: as in `start_locked`.
                let new = table.shadow.load(Relaxed);
                // Release: pairs with the readers' Acquire load of `main`,
                // so they see every head and link the copy and the writers
                // stored into the new array before this point.
                table.main.store(new, Release);
                // Relaxed: as in `start_locked`.
                table.shadow.store(ptr::null_mut(), Relaxed);
                drop(guards);
                // SAFETY: just published, never null.
                let n = unsafe { &*new }.len();
                // Relaxed: a hint.
                self.buckets.store(n, Relaxed);
                // Never waits: the old array is freed by a later step.
                let goal = table.domain.advance();
                st.phase = Phase::Retiring { old, goal };
                let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                // Relaxed: statistics only.
                self.resize_ns.fetch_add(ns, Relaxed);
                if grow { &self.grows } else { &self.shrinks }.fetch_add(1, Relaxed);
                ResizeStep::Swapped
            }
            Phase::Retiring { old, goal } => {
                // The negative control `smr_weakened="resize_grace"` frees
                // the old array without its grace period: the loom models
                // must then see a reader race the free.
                #[cfg(not(all(loom, smr_weakened = "resize_grace")))]
                if !table.domain.poll(goal) {
                    return ResizeStep::Waiting;
                }
                #[cfg(all(loom, smr_weakened = "resize_grace"))]
                let _ = goal;
                // SAFETY: replaced by the swap (with every stripe lock held,
                // so no writer holds it), and every section that could have
                // loaded it has ended (the goal passed).
                #[cfg(all(feature = "poison", not(loom)))]
                unsafe {
                    Array::poison(old);
                    st.graveyard.push(old);
                }
                #[cfg(not(all(feature = "poison", not(loom))))]
                // SAFETY: as above.
                unsafe {
                    Array::free(old)
                };
                st.phase = Phase::Idle;
                // Relaxed: a hint.
                self.active.store(false, Relaxed);
                ResizeStep::Finished
            }
        }
    }

    /// Copy stripe `s` of the readers' array into the shadow.
    fn copy_stripe(&self, table: &Table<T>, s: usize) {
        let _held = lock(&table.stripes[s].lock);
        // Relaxed: both change only under the state lock, which we hold.
        // SAFETY: never null while we hold the state lock (see `start_locked`).
        let main = unsafe { &*table.main.load(Relaxed) };
        // SAFETY: non-null in the copying phase, which we are in.
        let shadow = unsafe { &*table.shadow.load(Relaxed) };
        let mut copied = 0u64;
        // SAFETY: we hold stripe `s`'s lock; the shadow is not published.
        unsafe {
            let stripes = table.stripes.len();
            shadow.clear_stripe_locked(s, stripes);
            for i in (s..main.len()).step_by(stripes) {
                main.for_each_locked(i, |nn: std::ptr::NonNull<Pcb<T>>| {
                    // SAFETY: linked, and we hold its stripe lock.
                    let h = table.hash_of(&nn.as_ref().key());
                    // SAFETY: stripe lock held; the PCB is linked in `main`
                    // through the other link, which this does not touch.
                    shadow.push_locked(h, nn);
                    copied += 1;
                });
            }
        }
        // Relaxed: statistics only.
        self.copied.fetch_add(copied, Relaxed);
    }

    pub(crate) fn stats(&self, table: &Table<T>) -> ResizeStats {
        // Relaxed: statistics only.
        let buckets = self.buckets.load(Relaxed);
        let entries = table.len();
        ResizeStats {
            buckets,
            entries,
            load_factor: entries as f64 / buckets.max(1) as f64,
            grows: self.grows.load(Relaxed),
            shrinks: self.shrinks.load(Relaxed),
            resize_ns: self.resize_ns.load(Relaxed),
            copied: self.copied.load(Relaxed),
            in_progress: self.active.load(Relaxed),
        }
    }
}

impl<T> Drop for Resizer<T> {
    fn drop(&mut self) {
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        if let Phase::Retiring { old, .. } = st.phase {
            // SAFETY: the table is being dropped: no reader or writer is left.
            unsafe { Array::free(old) };
        }
        #[cfg(all(feature = "poison", not(loom)))]
        for a in st.graveyard.drain(..) {
            // SAFETY: as above.
            unsafe { Array::free(a) };
        }
    }
}

/// Every stripe lock, in index order (the resizer's lock order).
fn lock_all<T: Send + 'static>(table: &Table<T>) -> Vec<MutexGuard<'_, ()>> {
    table.stripes.iter().map(|s| lock(&s.lock)).collect()
}
