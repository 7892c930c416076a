//! Magazines (Bonwick): fixed-capacity stacks of free slots, the unit in which
//! memory moves between a thread and the shared depot.
//!
//! Invariant: every slot in one magazine is in the same state (reusable, or
//! retired and waiting for the same goal), so a whole magazine changes state
//! with one goal and one lock round-trip.

use super::slab::SlotPtr;

pub(crate) struct Magazine<T> {
    items: Vec<SlotPtr<T>>,
}

// SAFETY: a magazine only holds pointers to pool slots; the pool requires
// `T: Send + Sync`, and a magazine is only touched by whoever owns it (a
// thread's cache, or the depot under its mutex).
unsafe impl<T: Send + Sync> Send for Magazine<T> {}

impl<T> Magazine<T> {
    /// An empty magazine that can hold `cap` slots without reallocating.
    pub(crate) fn with_capacity(cap: usize) -> Magazine<T> {
        Magazine {
            items: Vec::with_capacity(cap),
        }
    }

    #[inline(always)]
    pub(crate) fn pop(&mut self) -> Option<SlotPtr<T>> {
        self.items.pop()
    }

    /// Push a slot; the caller keeps `len() <= cap` (checked in debug builds).
    #[inline(always)]
    pub(crate) fn push(&mut self, slot: SlotPtr<T>) {
        debug_assert!(self.items.len() < self.items.capacity());
        self.items.push(slot);
    }

    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = SlotPtr<T>> + '_ {
        self.items.iter().copied()
    }

    /// Keep only the slots `keep` accepts.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&SlotPtr<T>) -> bool) {
        self.items.retain(keep);
    }
}
