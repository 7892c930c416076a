//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`: a full memory barrier on
//! every running thread of this process, issued by one thread. It turns the
//! readers' compiler-only fences into real ones after the fact, which is what
//! lets lazy SMR and pserialize readers run without a fence instruction.
//!
//! Under loom the barrier is modelled as described on [`model_reader_point`].
//!
//! The barrier can fail after a successful registration: Linux's
//! `membarrier_private_expedited` returns `ENOMEM` when it cannot allocate
//! its cpumask. Every caller must then stay safe and count the failure
//! (`Local::try_steal`, `Pserialize::grace_period`, `Domain::lazy_cover`);
//! [`fault_injection`] makes such failures happen on demand in tests.

#[cfg(not(loom))]
mod imp {
    use rustix::thread::{MembarrierCommand, membarrier};
    use std::sync::OnceLock;

    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();

    /// Register this process for private expedited barriers (once; the
    /// kernel refuses the command with EPERM until registered).
    pub(crate) fn register() -> Result<(), String> {
        REGISTERED
            .get_or_init(|| {
                membarrier(MembarrierCommand::RegisterPrivateExpedited)
                    .map_err(|e| format!("membarrier(REGISTER_PRIVATE_EXPEDITED) failed: {e}"))
            })
            .clone()
    }

    /// Issue the barrier. Only valid after a successful `register`; can
    /// still fail (ENOMEM).
    pub(crate) fn barrier() -> Result<(), String> {
        membarrier(MembarrierCommand::PrivateExpedited)
            .map_err(|e| format!("membarrier(PRIVATE_EXPEDITED) failed: {e}"))
    }
}

/// The loom model of `membarrier(2)` and of the readers it serves.
///
/// What the system call guarantees: when it returns, every thread of the
/// process that was running has executed a full barrier at some instant
/// between the call's start and its return, and the caller's own accesses
/// before the call are ordered before everything after that instant. For a
/// reader that publishes with a plain store and a compiler fence, the one
/// instant that matters is where that barrier lands relative to its
/// publishing store and its later loads: after the store (the store is then
/// visible to the caller's scan once the call returns), or before it (then
/// the reader's later loads come after the caller's earlier stores).
///
/// The model gives each such reader one decision point, at its
/// `light_fence()`, and the barrier one in-progress window:
/// - the barrier: `swap(1)` (Acquire+Release) of every thread's word, the
///   caller's `fence(SeqCst)`, then `store(0)` (Release) of each;
/// - the reader point: an RMW of its own thread's word that changes nothing.
///
/// RMWs on one word are totally ordered. A reader point ordered before the
/// barrier's swap of its word releases the reader's publishing store to the barrier
/// (the swap acquires it): the barrier landed after the store, and the
/// caller's scan sees it. A reader point ordered after the swap acquires
/// from the barrier: the barrier landed before the reader's loads, which see
/// the caller's earlier stores. Loom explores both orders. What the model
/// does not do is give a reader a fence when no barrier runs: then the
/// reader has only its plain store, exactly as on hardware (store
/// buffering). Each thread has a word of its own, and the barrier swaps
/// every word: with one shared word two threads' points would synchronise
/// with each other, which the hardware's compiler fences never do, and a
/// reader's point released its slot store to a pool owner's point on the
/// writer thread, hiding a removed barrier from the pool and table models.
///
/// `--cfg smr_weakened="membarrier"` makes the barrier a no-op: the negative
/// control under which every lazy-mode and pserialize model must fail.
#[cfg(loom)]
mod imp {
    use crate::primitive::AtomicU32;
    use std::cell::Cell;
    use std::sync::atomic::Ordering::AcqRel;

    /// More than loom's thread limit.
    const THREADS: usize = 8;

    loom::lazy_static! {
        /// One decision word per model thread, so that two threads'
        /// decision points never synchronise with each other.
        static ref WORDS: Vec<AtomicU32> = (0..THREADS).map(|_| AtomicU32::new(0)).collect();
        /// Hands out word indices; not modelled (only the order of first
        /// use, fixed by the schedule, decides them).
        static ref NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    }

    loom::thread_local! {
        static INDEX: Cell<usize> = Cell::new(usize::MAX);
    }

    fn my_word() -> &'static AtomicU32 {
        let i = INDEX.with(|i| {
            if i.get() == usize::MAX {
                i.set(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            }
            i.get()
        });
        &WORDS[i]
    }

    pub(crate) fn register() -> Result<(), String> {
        Ok(())
    }

    pub(crate) fn barrier() -> Result<(), String> {
        #[cfg(not(smr_weakened = "membarrier"))]
        {
            // Every word, also those of threads with no decision point yet:
            // a thread whose first point comes after this barrier's swap of
            // its word acquires what the caller did before the barrier.
            // 1: a barrier is in progress.
            for w in WORDS.iter() {
                w.swap(1, AcqRel);
            }
            crate::primitive::fence(std::sync::atomic::Ordering::SeqCst);
            for w in WORDS.iter() {
                w.store(0, std::sync::atomic::Ordering::Release);
            }
        }
        Ok(())
    }

    /// The reader's decision point: see the module docs above.
    pub(crate) fn model_reader_point() {
        // AcqRel: Release hands this thread's publishing store to a barrier
        // whose swap of our word comes later; Acquire takes a completed
        // barrier's caller-side stores into our later loads.
        my_word().fetch_add(0, AcqRel);
    }
}

#[cfg(loom)]
pub(crate) use imp::model_reader_point;

/// Register this process for private expedited barriers; `Err` means callers
/// must fence for real.
pub(crate) fn register() -> Result<(), String> {
    if fault_injection::registration_refused() {
        return Err("membarrier(REGISTER_PRIVATE_EXPEDITED): refused by fault injection".into());
    }
    imp::register()
}

/// Issue the barrier. `Err` means no barrier ran on the other threads: the
/// caller must not rely on it and must not treat the error as impossible.
pub(crate) fn barrier() -> Result<(), String> {
    if fault_injection::take_barrier_failure() {
        return Err("membarrier(PRIVATE_EXPEDITED): ENOMEM injected by fault injection".into());
    }
    imp::barrier()
}

/// Test hooks that make `membarrier(2)` fail, so the error paths can be
/// tested (and, under loom, model-checked). Not part of the API.
///
/// Why a hidden public module rather than a cargo feature: both settings are
/// thread-local, so tests running in parallel in one process cannot disturb
/// one another, and code that never calls them pays one thread-local load
/// per barrier next to a system call that costs microseconds (and one per
/// domain or pool creation). A feature would be unified into every build of
/// the workspace that `cargo test` makes anyway, and would add a build
/// configuration that could rot; this code is always compiled.
#[doc(hidden)]
pub mod fault_injection {
    use std::cell::Cell;

    #[cfg(not(loom))]
    std::thread_local! {
        static FAIL_BARRIERS: Cell<u32> = const { Cell::new(0) };
        static REFUSE_REGISTRATION: Cell<bool> = const { Cell::new(false) };
    }
    // Under loom, per model thread and reset for every execution.
    #[cfg(loom)]
    loom::thread_local! {
        static FAIL_BARRIERS: Cell<u32> = Cell::new(0);
        static REFUSE_REGISTRATION: Cell<bool> = Cell::new(false);
    }

    /// Make the next `n` barriers issued by the calling thread fail, as
    /// `membarrier(2)` does with ENOMEM.
    pub fn fail_next_barriers(n: u32) {
        FAIL_BARRIERS.with(|c| c.set(n));
    }

    /// Injected barrier failures the calling thread has not yet hit.
    pub fn pending_barrier_failures() -> u32 {
        FAIL_BARRIERS.with(|c| c.get())
    }

    /// While set, domains and pools created by the calling thread see the
    /// kernel refuse registration, as on a kernel without `membarrier(2)`
    /// (their readers and cache owners fence for real).
    pub fn refuse_registration(refuse: bool) {
        REFUSE_REGISTRATION.with(|c| c.set(refuse));
    }

    pub(crate) fn take_barrier_failure() -> bool {
        // A thread being torn down has no injected failures.
        FAIL_BARRIERS
            .try_with(|c| {
                let n = c.get();
                if n > 0 {
                    c.set(n - 1);
                }
                n > 0
            })
            .unwrap_or(false)
    }

    pub(crate) fn registration_refused() -> bool {
        REFUSE_REGISTRATION.try_with(|c| c.get()).unwrap_or(false)
    }
}
