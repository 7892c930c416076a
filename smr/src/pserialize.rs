//! The NetBSD pserialize(9) design, as a baseline for SMR.
//!
//! Invariant: when `perform()` returns, every read section that was open when
//! it was called has ended.
//!
//! Readers pay almost nothing: entering stores a per-thread "inside" flag and a
//! section number with plain stores and no fence instruction. The writer pays
//! for everyone: `perform()` issues one `membarrier(2)` (NetBSD's broadcast
//! cross-call) so every reader's flag is visible or its loads see the unlink,
//! then waits for each reader it found inside to leave (its section number
//! changes or its flag clears).
//!
//! Two variants:
//! - `Naive`: each `perform` runs its own grace period, one after another
//!   (NetBSD serialises callers on a global lock).
//! - `Coalesced`: callers that arrive while a grace period is in flight share
//!   the next one, so N concurrent callers cost at most two grace periods.
//!
//! When the kernel refuses `membarrier`, readers fall back to a fenced enter
//! and the writer to a plain `fence(SeqCst)`, which is correct but slower.

use crate::backoff::Backoff;
use crate::membarrier;
use crate::primitive::{AtomicU64, Condvar, Mutex, fence, light_fence, lock, publish_fenced};
use crate::registry::{self, LocalSlot, Registry};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

/// How concurrent `perform` calls share grace periods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// One grace period per call.
    Naive,
    /// Callers arriving during a grace period share the next one.
    Coalesced,
}

/// Counters of a [`Pserialize`] domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PserializeStats {
    /// Grace periods run (each one membarrier plus a scan).
    pub grace_periods: u64,
    /// `perform` calls that returned.
    pub callers_served: u64,
    /// `membarrier(2)` calls issued.
    pub membarriers: u64,
    /// `membarrier(2)` calls that failed (ENOMEM) and were retried.
    pub membarrier_failures: u64,
}

#[derive(Default)]
struct Sequencer {
    started: u64,
    completed: u64,
    in_flight: bool,
}

/// A pserialize domain.
pub struct Pserialize {
    registry: Arc<Registry>,
    registry_id: u64,
    variant: Variant,
    /// Readers must fence themselves: membarrier is unavailable.
    fenced_readers: bool,
    seq: Mutex<Sequencer>,
    done: Condvar,
    grace_periods: AtomicU64,
    callers_served: AtomicU64,
    membarriers: AtomicU64,
    membarrier_failures: AtomicU64,
}

impl std::fmt::Debug for Pserialize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pserialize")
            .field("variant", &self.variant)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Pserialize {
    /// A new domain. Registers the process for `membarrier(2)`; if the kernel
    /// refuses, readers fence (logged once).
    pub fn new(variant: Variant) -> Pserialize {
        let fenced_readers = match membarrier::register() {
            Ok(()) => false,
            Err(reason) => {
                tracing::warn!(%reason, "pserialize: no membarrier, readers will fence");
                true
            }
        };
        let registry = Registry::new();
        Pserialize {
            registry_id: registry.id(),
            registry,
            variant,
            fenced_readers,
            seq: Mutex::new(Sequencer::default()),
            done: Condvar::new(),
            grace_periods: AtomicU64::new(0),
            callers_served: AtomicU64::new(0),
            membarriers: AtomicU64::new(0),
            membarrier_failures: AtomicU64::new(0),
        }
    }

    /// The variant chosen at creation.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// Whether the calling thread is inside a read section of this domain
    /// (so `perform` would panic).
    pub fn in_section(&self) -> bool {
        registry::in_section(&self.registry)
    }

    /// Enter a read section (`pserialize_read_enter`). Nests.
    #[inline]
    pub fn read_enter(&self) -> PsReadSection<'_> {
        let local = registry::local_slot(self.registry_id, &self.registry);
        let slot = local.get();
        if slot.active() {
            slot.nest();
        } else {
            // Release: a waiter that sees the new section number (Acquire)
            // also sees our previous exit, so it may stop waiting for it.
            slot.sections
                .store(slot.sections.load(Relaxed).wrapping_add(1), Release);
            if self.fenced_readers {
                publish_fenced(&slot.value, 1);
            } else {
                slot.value.store(1, Relaxed);
                light_fence();
            }
        }
        PsReadSection {
            slot: local,
            _domain: PhantomData,
            _not_send: PhantomData,
        }
    }

    /// Wait until every read section open at the time of the call has ended
    /// (`pserialize_perform`). Blocks; must not be called inside a section
    /// of this domain.
    ///
    /// # Panics
    /// If the calling thread is inside a read section of this domain.
    pub fn perform(&self) {
        assert!(
            !registry::in_section(&self.registry),
            "pserialize: perform() inside a read section would never return"
        );
        match self.variant {
            Variant::Naive => {
                let _serial = lock(&self.seq);
                self.grace_period();
            }
            Variant::Coalesced => self.perform_coalesced(),
        }
        // Relaxed: statistics only.
        self.callers_served.fetch_add(1, Relaxed);
    }

    fn perform_coalesced(&self) {
        let mut s = lock(&self.seq);
        // We need a grace period that starts after our arrival: the next one
        // to start, whether or not one is in flight now.
        let need = s.started + 1;
        while s.completed < need {
            if s.in_flight {
                s = self.done.wait(s).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            s.in_flight = true;
            s.started += 1;
            let n = s.started;
            drop(s);
            self.grace_period();
            s = lock(&self.seq);
            s.completed = n;
            s.in_flight = false;
            self.done.notify_all();
        }
    }

    /// One grace period: barrier, then wait out every reader seen inside.
    fn grace_period(&self) {
        // Relaxed: statistics only.
        self.grace_periods.fetch_add(1, Relaxed);
        // SeqCst: the caller's unlink comes before the barrier.
        fence(SeqCst);
        if !self.fenced_readers {
            self.barrier_until_done();
        }
        // SeqCst: pairs with the readers' fence (real, or forced by the
        // barrier): each reader's flag store is visible below, or its loads
        // see the unlink.
        fence(SeqCst);
        for slot in self.registry.iter() {
            // Acquire: pairs with the Release exit store / section bump.
            if slot.value.load(Acquire) == 0 {
                continue;
            }
            let section = slot.sections.load(Acquire);
            let mut backoff = Backoff::new();
            while slot.value.load(Acquire) != 0 && slot.sections.load(Acquire) == section {
                backoff.snooze();
            }
        }
        // Acquire: the exits observed above happen before the caller frees.
        fence(Acquire);
    }

    /// Issue `membarrier(2)` until it succeeds. It can fail after
    /// registration (ENOMEM). Without it the readers' flag stores may still
    /// be in their store buffers, so the scan below could miss a reader and
    /// nothing short of the barrier makes them visible: retry with backoff
    /// (spin, yield, then sleep up to 1 ms), count every failure, and log
    /// the 1st, 2nd, 4th, 8th... so a persistent failure is visible.
    fn barrier_until_done(&self) {
        let mut backoff = Backoff::new();
        loop {
            // Relaxed: statistics only.
            self.membarriers.fetch_add(1, Relaxed);
            let Err(reason) = membarrier::barrier() else {
                return;
            };
            // Relaxed: statistics only.
            let n = self.membarrier_failures.fetch_add(1, Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::error!(%reason, failures = n, "pserialize: membarrier failed; retrying");
            }
            backoff.snooze();
        }
    }

    /// Counters.
    pub fn stats(&self) -> PserializeStats {
        // Relaxed: statistics only.
        PserializeStats {
            grace_periods: self.grace_periods.load(Relaxed),
            callers_served: self.callers_served.load(Relaxed),
            membarriers: self.membarriers.load(Relaxed),
            membarrier_failures: self.membarrier_failures.load(Relaxed),
        }
    }
}

/// An open pserialize read section; leaving it is dropping it. `!Send`.
#[must_use = "a read section ends as soon as its guard is dropped"]
pub struct PsReadSection<'d> {
    slot: LocalSlot,
    _domain: PhantomData<&'d Pserialize>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for PsReadSection<'_> {
    #[inline]
    fn drop(&mut self) {
        let slot = self.slot.get();
        if slot.unnest() {
            // Release: the section's loads happen before a grace period that
            // observes the flag clear.
            slot.value.store(0, Release);
        }
    }
}
