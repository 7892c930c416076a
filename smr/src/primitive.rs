//! The synchronisation primitives the crate is built from, switched between
//! `std` and `loom` so that the model checker sees every atomic access and
//! fence the real code performs.
//!
//! Two things cannot be modelled literally and are substituted under loom:
//! - `membarrier(2)` and the compiler-only fence it pairs with (`light_fence`);
//!   see [`light_fence`] and `membarrier.rs` for the model and why it is
//!   faithful. The reader side is *not* a fence under loom: a model in which
//!   no barrier runs sees a lazy reader exactly as weak as it is.
//! - the x86 "locked instruction is a full fence" publish in `publish_fenced`:
//!   modelled as a relaxed store followed by `fence(SeqCst)`.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::fence;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

#[cfg(not(loom))]
use std::sync::atomic::compiler_fence;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::fence;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

use std::sync::atomic::Ordering::{Release, SeqCst};

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
/// a Release store followed by `fence(SeqCst)`, the portable form whose
/// argument the loom models check.
///
/// Why Release and not Relaxed: a thread that leaves a section (a Release
/// store of `INVALID`) and enters the next one at once overwrites its exit
/// before a scan may read it. The scan then reads only the new sequence, and
/// under the language's memory model a later Relaxed store does not carry
/// the exit's release (release sequences are made of read-modify-writes
/// only), so nothing would order the first section's loads before the
/// writer's free. The Release store carries it. It costs nothing on x86
/// (every store is a release there) and is the same `stlr` an exit already
/// pays on arm64. `--cfg smr_weakened="enter_relaxed"` restores the Relaxed
/// store under loom: the back-to-back models must catch it.
#[inline(always)]
pub(crate) fn publish_fenced<A: Publish>(slot: &A, value: A::Value) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    {
        slot.swap_seqcst(value);
        compiler_fence(SeqCst);
    }
    #[cfg(all(
        not(all(target_arch = "x86_64", not(loom))),
        not(smr_weakened = "reader")
    ))]
    {
        slot.store_release(value);
        fence(SeqCst);
    }
    // Negative control for the loom suite: an acquire fence does not order
    // the slot store before later loads (FreeBSD's arm64 bug, PR 265974).
    #[cfg(all(loom, smr_weakened = "reader"))]
    {
        slot.store_release(value);
        fence(std::sync::atomic::Ordering::Acquire);
    }
}

/// Store `value` into a reader slot with no StoreLoad fence (the lazy
/// domain's enter: the writer's membarrier supplies it). Release for the
/// reason given at [`publish_fenced`]; then the reader's decision point.
#[inline(always)]
pub(crate) fn publish_light<A: Publish>(slot: &A, value: A::Value) {
    slot.store_release(value);
    light_fence();
}

/// The atomics `publish_fenced` stores into: reader slots (`AtomicU64`) and
/// the pool's per-thread `busy` words (`AtomicU32`).
pub(crate) trait Publish {
    type Value;
    fn store_release(&self, value: Self::Value);
    #[cfg_attr(not(all(target_arch = "x86_64", not(loom))), allow(dead_code))]
    fn swap_seqcst(&self, value: Self::Value);
}

macro_rules! publish_for {
    ($atomic:ty, $value:ty) => {
        impl Publish for $atomic {
            type Value = $value;
            #[inline(always)]
            fn store_release(&self, value: $value) {
                // Release: see `publish_fenced`. The negative control
                // `enter_relaxed` weakens it under loom.
                #[cfg(not(all(loom, smr_weakened = "enter_relaxed")))]
                self.store(value, Release);
                #[cfg(all(loom, smr_weakened = "enter_relaxed"))]
                self.store(value, std::sync::atomic::Ordering::Relaxed);
            }
            #[inline(always)]
            fn swap_seqcst(&self, value: $value) {
                self.swap(value, SeqCst);
            }
        }
    };
}
publish_for!(AtomicU32, u32);
publish_for!(AtomicU64, u64);

/// The writer's StoreLoad fence (between an unlink and the slot scan).
/// `--cfg smr_weakened="writer"` downgrades it to Release under loom, which
/// the loom suite must catch: a release fence orders nothing after it.
#[inline(always)]
pub(crate) fn writer_fence() {
    #[cfg(not(all(loom, smr_weakened = "writer")))]
    fence(SeqCst);
    #[cfg(all(loom, smr_weakened = "writer"))]
    fence(std::sync::atomic::Ordering::Release);
}

/// The reader half of an asymmetric fence: free at run time (only the compiler
/// is stopped from reordering), because the writer's `membarrier` forces a
/// full barrier on this thread whenever it matters.
///
/// Under loom it is the reader's side of the membarrier model
/// (`membarrier::model_reader_point`): no fence, only a point at which the
/// model decides whether this reader's stores so far were forced out by a
/// barrier in progress, or whether this reader comes after a barrier that
/// already completed. A model in which no barrier runs sees the reader with
/// no fence at all, as the hardware may.
#[inline(always)]
pub(crate) fn light_fence() {
    #[cfg(loom)]
    crate::membarrier::model_reader_point();
    #[cfg(not(loom))]
    compiler_fence(SeqCst);
}

pub(crate) use crate::stat::bump;

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
