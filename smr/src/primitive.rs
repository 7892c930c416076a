//! The synchronisation primitives the crate is built from, switched between
//! `std` and `loom` so that the model checker sees every atomic access and
//! fence the real code performs.
//!
//! Two things cannot be modelled literally and are substituted under loom:
//! - `membarrier(2)`: modelled as `fence(SeqCst)` on the writer side, and the
//!   reader-side `light_fence()` becomes a real `fence(SeqCst)`, which is what
//!   the system call forces on every running thread of the process.
//! - the x86 "locked instruction is a full fence" publish in `publish_fenced`:
//!   modelled as a relaxed store followed by `fence(SeqCst)`.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize};
// loom has no `compiler_fence` (it models no compiler reordering); under loom
// every place that uses one for ordering uses a real `fence` instead.
#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::atomic::fence;
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use std::sync::atomic::compiler_fence;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{compiler_fence, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

use std::sync::atomic::Ordering::{Relaxed, SeqCst};

/// Lock a mutex, ignoring poisoning: every critical section in this crate
/// leaves its data consistent before anything in it can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Store `value` into a reader slot and order every later load of protected
/// data after that store becomes visible (StoreLoad).
///
/// On x86-64 a locked read-modify-write is a full barrier in hardware and
/// costs less than `mfence`; FreeBSD's amd64 `smr_enter` relies on the same
/// property. The `compiler_fence` keeps the compiler from hoisting the
/// protected loads above the exchange. Everywhere else (and under loom) it is
/// a relaxed store followed by `fence(SeqCst)`, the portable form whose
/// argument the loom models check.
#[inline(always)]
pub(crate) fn publish_fenced(slot: &AtomicU32, value: u32) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    {
        slot.swap(value, SeqCst);
        compiler_fence(SeqCst);
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    {
        slot.store(value, Relaxed);
        fence(SeqCst);
    }
}

/// The reader half of an asymmetric fence: free at run time (only the compiler
/// is stopped from reordering), because the writer's `membarrier` forces a
/// full barrier on this thread whenever it matters. Under loom it is a real
/// `fence(SeqCst)`, the model of that forced barrier.
#[inline(always)]
pub(crate) fn light_fence() {
    #[cfg(loom)]
    fence(SeqCst);
    #[cfg(not(loom))]
    compiler_fence(SeqCst);
}

/// Relaxed increment of a counter that only its owning thread writes: a load
/// and a store, no locked instruction. Readers of the sum may see a slightly
/// stale value, which is all statistics promise.
#[inline(always)]
pub(crate) fn bump(counter: &AtomicU64) {
    // Relaxed: statistics only, single writer.
    counter.store(counter.load(Relaxed).wrapping_add(1), Relaxed);
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
