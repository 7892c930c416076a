//! The synchronisation primitives the table is built from, switched between
//! `std` and `loom` (as in `smr`), so the model checker sees every atomic
//! access, lock and tuple read the real code performs.
//!
//! [`TupleCell`] is the one non-atomic shared field: under loom it is a
//! `loom::cell::UnsafeCell`, so a tuple write that races a reader's tuple read
//! (a PCB reused while a reader can still see it) fails the model.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicPtr, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Lock a mutex, ignoring poisoning: every critical section in this crate
/// leaves its data consistent before anything in it can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Try to lock a mutex without blocking (poisoning ignored as in [`lock`]).
pub(crate) fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// A `Copy` value that is written only while no other thread can read it and
/// read concurrently otherwise (the PCB's tuple; see `pcb.rs` for why that
/// holds).
pub(crate) struct TupleCell<V: Copy> {
    #[cfg(not(loom))]
    v: std::cell::UnsafeCell<V>,
    #[cfg(loom)]
    v: loom::cell::UnsafeCell<V>,
}

impl<V: Copy> TupleCell<V> {
    pub(crate) fn new(v: V) -> Self {
        TupleCell {
            #[cfg(not(loom))]
            v: std::cell::UnsafeCell::new(v),
            #[cfg(loom)]
            v: loom::cell::UnsafeCell::new(v),
        }
    }

    /// # Safety
    /// No thread writes the cell concurrently: every `set` happens before
    /// this read, or after it.
    #[inline(always)]
    pub(crate) unsafe fn get(&self) -> V {
        #[cfg(not(loom))]
        // SAFETY: the caller excludes concurrent writes.
        return unsafe { *self.v.get() };
        #[cfg(loom)]
        // SAFETY: the caller excludes concurrent writes (loom checks it).
        return self.v.with(|p| unsafe { *p });
    }

    /// # Safety
    /// No other thread reads or writes the cell concurrently.
    #[inline(always)]
    pub(crate) unsafe fn set(&self, v: V) {
        #[cfg(not(loom))]
        // SAFETY: the caller guarantees exclusive access.
        unsafe {
            *self.v.get() = v
        };
        #[cfg(loom)]
        // SAFETY: the caller guarantees exclusive access (loom checks it).
        self.v.with_mut(|p| unsafe { *p = v });
    }
}

/// Cache-line padding. 128 bytes because x86 prefetches lines in pairs.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
