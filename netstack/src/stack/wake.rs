//! Wake-ups between workers: a sleeping worker is told at once when another
//! thread queues work for one of its connections.
//!
//! A connection's output, events and timers live on its home worker's
//! queues, but any thread may put them there: another worker whose queue
//! received one of its segments, or an application call. The engine stays
//! sans-IO, so it cannot wake a thread itself; instead the driver gives it a
//! [`WorkerWaker`] (in `StackConfig::waker`), a callback that makes worker N
//! return from its sleep (the daemon writes N's eventfd), and brackets every
//! sleep with [`Worker::park`] and [`Worker::unpark`].
//!
//! Invariant: **work queued for a worker after its `park` returned `true`
//! and before its `unpark` calls the waker exactly once per park, and work
//! queued before `park` makes `park` return `false`**, so a worker never
//! sleeps on queued work and a busy worker costs its peers one atomic load
//! per push, never a system call.
//!
//! Why this is enough: `park` stores the flag and then looks at the queues
//! under the worker's queue lock; a pusher pushes under that same lock and
//! then looks at the flag. Either `park`'s look comes after the push (it
//! sees the work and does not sleep) or the pusher's lock comes after
//! `park`'s (the unlock there makes the flag store visible to the pusher,
//! which then wakes the worker). The flag is taken back with a
//! compare-exchange, so of many pushers one calls the waker.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{Stack, Worker};

/// Tells the driver that worker `N` has new work and must leave its sleep.
/// Called from any thread, at most once per park of that worker; must not
/// block and must not call back into the stack.
#[derive(Clone)]
pub struct WorkerWaker(Arc<dyn Fn(usize) + Send + Sync>);

impl WorkerWaker {
    /// A waker that runs `wake(worker)`.
    pub fn new(wake: impl Fn(usize) + Send + Sync + 'static) -> WorkerWaker {
        WorkerWaker(Arc::new(wake))
    }
}

impl fmt::Debug for WorkerWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WorkerWaker")
    }
}

/// One worker's sleep flag and wake-up count.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Parked {
    /// Set by `park`, taken back by `unpark` or by the one pusher that wakes.
    asleep: AtomicBool,
    /// Wake-ups sent to this worker (many writers: any pushing thread).
    wakes: AtomicU64,
}

impl Stack {
    /// After work was queued on `home`'s queues (and their lock released):
    /// wake `home` if it is parked.
    pub(crate) fn notify(&self, home: usize) {
        let Some(p) = self.parked.get(home) else {
            return;
        };
        // Relaxed first look: the common case (the worker is awake) stays a
        // plain load. The queue lock the caller just released orders it
        // after `park`'s Release store (see the module docs).
        if !p.asleep.load(Ordering::Relaxed) {
            return;
        }
        // Acquire; pairs with the Release store in `park`. Only the pusher
        // that takes the flag back calls the waker.
        if p.asleep
            .compare_exchange(true, false, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // Relaxed: statistics only (many writers, so an atomic add).
            p.wakes.fetch_add(1, Ordering::Relaxed);
            if let Some(waker) = &self.cfg.waker {
                (waker.0)(home);
            }
        }
    }

    /// Wake-ups sent to worker `worker` since the stack started.
    pub fn wakes_sent(&self, worker: usize) -> u64 {
        // Relaxed: statistics only.
        self.parked
            .get(worker)
            .map_or(0, |p| p.wakes.load(Ordering::Relaxed))
    }
}

impl Worker<'_> {
    /// Before the driver sleeps: marks this worker asleep and returns `true`
    /// if it may sleep, `false` (and stays awake) if work is already queued
    /// for it. After `true`, work queued by any thread calls the waker for
    /// this worker; call [`poll_timeout`](Self::poll_timeout) after `park`,
    /// so a deadline queued before it is seen, and [`unpark`](Self::unpark)
    /// when the sleep ends, however it ends.
    pub fn park(&self) -> bool {
        let p = &self.stack.parked[self.index];
        // Release; pairs with the Acquire compare-exchange in `notify`. The
        // queue lock below orders this store before any later push's look
        // at the flag.
        p.asleep.store(true, Ordering::Release);
        let q = self.stack.queues(self.index);
        let idle = q.control.is_empty() && q.ready.is_empty() && q.events.is_empty();
        drop(q);
        if !idle {
            self.unpark();
        }
        idle
    }

    /// The sleep is over: pushes stop waking this worker.
    pub fn unpark(&self) {
        // Relaxed: only this worker's own later `park` reads it back in an
        // order that matters, and a pusher that still saw `true` merely
        // sends one spurious wake-up.
        self.stack.parked[self.index]
            .asleep
            .store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
