//! The shared depot: reusable magazines, and the FIFO of retired batches
//! waiting for readers, each stamped with one goal.
//!
//! Invariant: a magazine in `ready` holds only slots that no read section can
//! reach (fresh from a chunk, or past the goal of their batch); a batch in
//! `pending` holds slots retired before its stamp was taken, and `pending` is
//! sorted by stamp, oldest first, so if the head has not passed, nothing
//! behind it has either.
//!
//! Locking key: everything here is protected by the pool's depot mutex
//! (`Shared::depot`); the depot does no locking and no waiting itself.

use super::magazine::Magazine;
use crate::seq::{Goal, lt};
use std::collections::VecDeque;
use std::time::Instant;

/// What a pending batch waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stamp {
    /// An SMR goal from one `advance()` for the whole batch.
    Goal(Goal),
    /// Pserialize: the number of the first `perform()` that started after
    /// the batch was queued; the batch is reusable once it has completed.
    Perform(u64),
}

impl Stamp {
    /// Whether `self` is strictly older than `other` (same kind).
    fn older_than(self, other: Stamp) -> bool {
        match (self, other) {
            (Stamp::Goal(a), Stamp::Goal(b)) => lt(a.seq(), b.seq()),
            (Stamp::Perform(a), Stamp::Perform(b)) => a < b,
            _ => false,
        }
    }
}

pub(crate) struct Batch<T> {
    pub(crate) id: u64,
    pub(crate) stamp: Stamp,
    pub(crate) mag: Magazine<T>,
}

/// Spare empty magazines kept for reuse; beyond this they are freed.
const MAX_EMPTY: usize = 64;

pub(crate) struct Depot<T> {
    ready: Vec<Magazine<T>>,
    pending: VecDeque<Batch<T>>,
    empty: Vec<Magazine<T>>,
    mag_cap: usize,
    next_batch: u64,
    /// Objects in `ready`.
    pub(crate) ready_objects: usize,
    /// Objects in `pending`.
    pub(crate) pending_objects: usize,
    /// The most objects `pending` has held.
    pub(crate) pending_peak: usize,
    /// Slots in resident chunks, plus any reserved by a growth in progress.
    pub(crate) allocated: usize,
    /// Pserialize: performs started and the newest one completed.
    pub(crate) performs_started: u64,
    pub(crate) performs_done: u64,
    /// The last goal an expedited wait gave up on, and when.
    pub(crate) expedite_failed: Option<(Goal, Instant)>,
}

impl<T> Depot<T> {
    pub(crate) fn new(mag_cap: usize) -> Depot<T> {
        Depot {
            ready: Vec::new(),
            pending: VecDeque::new(),
            empty: Vec::new(),
            mag_cap,
            next_batch: 0,
            ready_objects: 0,
            pending_objects: 0,
            pending_peak: 0,
            allocated: 0,
            performs_started: 0,
            performs_done: 0,
            expedite_failed: None,
        }
    }

    /// An empty magazine, recycled if possible.
    pub(crate) fn take_empty(&mut self) -> Magazine<T> {
        self.empty
            .pop()
            .unwrap_or_else(|| Magazine::with_capacity(self.mag_cap))
    }

    pub(crate) fn put_empty(&mut self, mag: Magazine<T>) {
        debug_assert!(mag.is_empty());
        if self.empty.len() < MAX_EMPTY {
            self.empty.push(mag);
        }
    }

    /// Add a magazine of reusable slots (an empty one is kept as a spare).
    pub(crate) fn push_ready(&mut self, mag: Magazine<T>) {
        if mag.is_empty() {
            self.put_empty(mag);
        } else {
            self.ready_objects += mag.len();
            self.ready.push(mag);
        }
    }

    /// Take a magazine of reusable slots, the fullest first.
    pub(crate) fn pop_ready(&mut self) -> Option<Magazine<T>> {
        let mag = self.ready.pop()?;
        self.ready_objects -= mag.len();
        Some(mag)
    }

    /// Queue a retired batch behind every older stamp.
    pub(crate) fn push_pending(&mut self, stamp: Stamp, mag: Magazine<T>) {
        if mag.is_empty() {
            return self.put_empty(mag);
        }
        self.pending_objects += mag.len();
        self.pending_peak = self.pending_peak.max(self.pending_objects);
        let id = self.next_batch;
        self.next_batch += 1;
        // Stamps taken by different threads can arrive out of order; they are
        // almost always near the tail, so search from the back.
        let at = self
            .pending
            .iter()
            .rposition(|b| !stamp.older_than(b.stamp))
            .map_or(0, |i| i + 1);
        self.pending.insert(at, Batch { id, stamp, mag });
    }

    /// The oldest pending batch: its id and stamp.
    pub(crate) fn head(&self) -> Option<(u64, Stamp)> {
        self.pending.front().map(|b| (b.id, b.stamp))
    }

    /// Remove the oldest pending batch if it is still batch `id`.
    pub(crate) fn pop_head_if(&mut self, id: u64) -> Option<Magazine<T>> {
        if self.pending.front()?.id != id {
            return None;
        }
        let b = self.pending.pop_front()?;
        self.pending_objects -= b.mag.len();
        Some(b.mag)
    }

    /// Remove every pending batch from the front whose stamp `passed`
    /// accepts, oldest first.
    pub(crate) fn pop_passed(&mut self, mut passed: impl FnMut(Stamp) -> bool) -> Vec<Magazine<T>> {
        let mut out = Vec::new();
        while let Some(b) = self.pending.front() {
            if !passed(b.stamp) {
                break;
            }
            let b = self.pending.pop_front().expect("front exists");
            self.pending_objects -= b.mag.len();
            out.push(b.mag);
        }
        out
    }

    /// The reusable magazines, for the shrinker.
    pub(crate) fn ready_mut(&mut self) -> &mut Vec<Magazine<T>> {
        &mut self.ready
    }

    /// Recount `ready_objects` after the shrinker edited `ready`, and drop
    /// magazines it emptied.
    pub(crate) fn recount_ready(&mut self) {
        let (full, empty): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ready)
            .into_iter()
            .partition(|m| !m.is_empty());
        self.ready = full;
        self.ready_objects = self.ready.iter().map(Magazine::len).sum();
        for m in empty {
            self.put_empty(m);
        }
    }

    pub(crate) fn pending_batches(&self) -> usize {
        self.pending.len()
    }
}
