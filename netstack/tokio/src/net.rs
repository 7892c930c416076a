//! [`Net`]: a stack as the async API sees it — the stack, the clock and the
//! registry of waiting tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use netstack::{ConnHandle, Events, Instant, Stack};

use crate::registry::Registry;
use crate::relay::WakeRelay;

/// The stack's clock (what its driver passes as `now`).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// A stack shared with its packet workers, for [`crate::TcpListener`] and
/// [`crate::TcpStream`]. Cheap to clone.
///
/// The contract with the driver of worker `w`: every event it pops from
/// `Stack::poll_events(w)` goes to [`on_event`](Self::on_event) (or it calls
/// [`dispatch`](Self::dispatch), which pops them), and it drains
/// `Worker::poll_transmit` soon after the stack's `StackConfig::waker` is
/// called for `w` (or polls often enough without one): that is how work an
/// application call queues reaches the wire.
#[derive(Clone)]
pub struct Net {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) stack: Arc<Stack>,
    clock: Clock,
    pub(crate) registry: Registry,
    next_worker: AtomicUsize,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    events: AtomicU64,
    foreign_events: AtomicU64,
}

/// What the API has done, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetCounters {
    /// Events handed to the registry.
    pub events: u64,
    /// Of those, events for connections no stream or listener of this `Net`
    /// holds (returned `false` from `on_event`).
    pub foreign_events: u64,
    /// Streams open now.
    pub streams: usize,
    /// Task wake-ups handed to a [`WakeRelay`] (not woken from the
    /// worker's thread directly).
    pub relayed: u64,
    /// Times the relay task itself was woken: the wake-ups from outside
    /// the application's runtime that those cost.
    pub relay_wakes: u64,
}

impl core::fmt::Debug for Net {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Net")
            .field("stack", &self.inner.stack)
            .finish_non_exhaustive()
    }
}

impl Net {
    /// The async API over `stack`, whose driver reads `clock`.
    pub fn new(stack: Arc<Stack>, clock: Clock) -> Net {
        Net {
            inner: Arc::new(Inner {
                stack,
                clock,
                registry: Registry::new(),
                next_worker: AtomicUsize::new(0),
                counters: Counters::default(),
            }),
        }
    }

    /// The stack.
    pub fn stack(&self) -> &Arc<Stack> {
        &self.inner.stack
    }

    /// Hands an event popped from worker `_worker`'s list to the waiting
    /// task (which worker does not matter to the API: the stack wakes a
    /// connection's home worker itself). Returns whether a stream or
    /// listener of this `Net` owns the connection (else the caller may
    /// serve it itself).
    pub fn on_event(&self, _worker: usize, conn: ConnHandle, events: Events) -> bool {
        let c = &self.inner.counters;
        // Relaxed: statistics only.
        c.events.fetch_add(1, Ordering::Relaxed);
        let ours = self.inner.registry.on_event(&conn, events);
        if !ours {
            // Relaxed: statistics only.
            c.foreign_events.fetch_add(1, Ordering::Relaxed);
        }
        ours
    }

    /// Pops at most `budget` events from worker `worker`'s list and hands
    /// each to [`on_event`](Self::on_event); returns how many it popped. For
    /// a driver whose every connection belongs to this API.
    pub fn dispatch(&self, worker: usize, budget: usize) -> usize {
        let mut n = 0;
        while n < budget {
            let Some((conn, events)) = self.inner.stack.poll_events(worker) else {
                break;
            };
            self.on_event(worker, conn, events);
            n += 1;
        }
        n
    }

    /// A future that, spawned on the runtime whose tasks use this `Net`,
    /// batches their wake-ups: the registry then queues the wakers a
    /// worker's events release and wakes this one task, which wakes them on
    /// the runtime's own thread (see [`WakeRelay`]). `None` when a relay
    /// already exists. Worth it with a single-threaded runtime fed by other
    /// threads' events; without one, tasks are woken directly.
    pub fn wake_relay(&self) -> Option<WakeRelay> {
        crate::relay::Relay::start(&self.inner.registry.relay)
    }

    /// The API's counters.
    pub fn counters(&self) -> NetCounters {
        let c = &self.inner.counters;
        // Relaxed: statistics only.
        NetCounters {
            events: c.events.load(Ordering::Relaxed),
            foreign_events: c.foreign_events.load(Ordering::Relaxed),
            streams: self.inner.registry.streams(),
            relayed: self.inner.registry.relay.relayed.load(Ordering::Relaxed),
            relay_wakes: self
                .inner
                .registry
                .relay
                .relay_wakes
                .load(Ordering::Relaxed),
        }
    }

    pub(crate) fn now(&self) -> Instant {
        (self.inner.clock)()
    }

    /// The worker a new active open is homed on (round robin).
    pub(crate) fn pick_worker(&self) -> usize {
        let n = self.inner.stack.config().workers.max(1);
        // Relaxed: only spreads connections; no data is published.
        self.inner.next_worker.fetch_add(1, Ordering::Relaxed) % n
    }
}
