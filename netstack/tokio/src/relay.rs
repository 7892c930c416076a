//! [`WakeRelay`]: hands the wake-ups a packet worker produces to the
//! application's runtime in batches.
//!
//! Why: a task is woken from the worker's thread, outside its runtime, and
//! tokio answers every such wake with a write to the runtime's eventfd (a
//! system call, and an epoll event on the runtime's side) even when the
//! runtime is awake and about to run the task anyway. With one request per
//! event that is one extra system call per request on the worker.
//!
//! How: while a relay runs (an application spawned [`crate::Net::wake_relay`]
//! on its runtime), the registry does not wake tasks itself; it queues their
//! `Waker`s here and wakes the relay task only if the relay has not been
//! woken since it last ran. The relay, running on the runtime's own thread,
//! wakes the queued tasks there: tokio schedules those locally, without a
//! system call. A worker turn that wakes many tasks pays for one remote wake,
//! and a turn that finds the relay already woken pays for none.
//!
//! Invariants:
//! - **No lost wake-up.** A waker queued here is woken by the relay's next
//!   run: the queue is swapped out under the same lock that marks the relay
//!   un-woken, so a waker queued after the swap finds the relay un-woken and
//!   wakes it. A relay dropped (runtime shut down) wakes what is queued and
//!   turns the relay off, so later wakes are direct again.
//! - **Bounded.** The registry hands a waker over only after taking it from
//!   its stream's or listener's slot, so the queue holds at most two wakers
//!   per open stream plus one per listener.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The registry's side: the queue and whether a relay runs.
#[derive(Debug, Default)]
pub(crate) struct Relay {
    state: Mutex<State>,
    /// Times the relay task was woken (each one a wake from outside the
    /// runtime), for [`crate::NetCounters`].
    pub(crate) relay_wakes: AtomicU64,
    /// Task wake-ups handed over through the relay.
    pub(crate) relayed: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// A relay future exists.
    active: bool,
    /// The relay has been woken and has not run since.
    woken: bool,
    /// The relay task's waker (from its last poll).
    relay: Option<Waker>,
    /// Tasks to wake on the relay's next run.
    queued: Vec<Waker>,
}

impl Relay {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes `task`: through the relay when one runs, else at once.
    pub(crate) fn wake(&self, task: Waker) {
        let mut s = self.lock();
        if !s.active {
            drop(s);
            task.wake();
            return;
        }
        s.queued.push(task);
        let relay = if s.woken {
            None
        } else {
            s.woken = true;
            s.relay.clone()
        };
        drop(s);
        // Relaxed: statistics only.
        self.relayed.fetch_add(1, Ordering::Relaxed);
        if let Some(r) = relay {
            self.relay_wakes.fetch_add(1, Ordering::Relaxed);
            r.wake();
        }
    }

    /// Makes a relay future, or `None` when one already exists.
    pub(crate) fn start(relay: &std::sync::Arc<Relay>) -> Option<WakeRelay> {
        let mut s = relay.lock();
        if s.active {
            return None;
        }
        s.active = true;
        s.woken = false;
        Some(WakeRelay {
            relay: std::sync::Arc::clone(relay),
            batch: Vec::new(),
        })
    }
}

/// The future that relays wake-ups; see the module documentation. Spawn it
/// on the runtime whose tasks use the [`crate::Net`]; it never completes
/// (drop or abort it to stop relaying; wakes are direct again from then on).
#[derive(Debug)]
#[must_use = "a relay does nothing unless spawned"]
pub struct WakeRelay {
    relay: std::sync::Arc<Relay>,
    /// The batch being woken (kept to reuse its allocation).
    batch: Vec<Waker>,
}

impl Future for WakeRelay {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        {
            let mut s = this.relay.lock();
            match &s.relay {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => s.relay = Some(cx.waker().clone()),
            }
            s.woken = false;
            core::mem::swap(&mut s.queued, &mut this.batch);
        }
        for task in this.batch.drain(..) {
            task.wake();
        }
        Poll::Pending
    }
}

impl Drop for WakeRelay {
    fn drop(&mut self) {
        let queued = {
            let mut s = self.relay.lock();
            s.active = false;
            s.woken = false;
            s.relay = None;
            core::mem::take(&mut s.queued)
        };
        for task in queued.into_iter().chain(self.batch.drain(..)) {
            task.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn n(c: &Count) -> usize {
        c.0.load(Ordering::SeqCst)
    }

    #[test]
    fn many_wakes_in_one_batch_wake_the_relay_once_and_every_task_on_its_run() {
        let relay = Arc::new(Relay::default());
        let (relay_task, tasks) = (
            Arc::new(Count::default()),
            (0..10)
                .map(|_| Arc::new(Count::default()))
                .collect::<Vec<_>>(),
        );
        // No relay: direct.
        relay.wake(Waker::from(Arc::clone(&tasks[0])));
        assert_eq!(n(&tasks[0]), 1);

        let mut fut = Relay::start(&relay).expect("the first relay");
        assert!(Relay::start(&relay).is_none(), "one relay at a time");
        let waker = Waker::from(Arc::clone(&relay_task));
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());

        for t in &tasks {
            relay.wake(Waker::from(Arc::clone(t)));
        }
        assert_eq!(n(&relay_task), 1, "one remote wake for the batch");
        assert_eq!(n(&tasks[1]), 0, "tasks wait for the relay's run");
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        assert_eq!(n(&tasks[0]), 2);
        assert!(tasks[1..].iter().all(|t| n(t) == 1));

        // The next batch wakes the relay again.
        relay.wake(Waker::from(Arc::clone(&tasks[1])));
        assert_eq!(n(&relay_task), 2);
        assert_eq!(relay.relay_wakes.load(Ordering::Relaxed), 2);
        assert_eq!(relay.relayed.load(Ordering::Relaxed), 11);

        // Dropped with a wake queued: it is delivered, and wakes are direct.
        drop(fut);
        assert_eq!(n(&tasks[1]), 2);
        relay.wake(Waker::from(Arc::clone(&tasks[2])));
        assert_eq!(n(&tasks[2]), 2);
        assert_eq!(n(&relay_task), 2);
        assert!(Relay::start(&relay).is_some(), "a new relay may start");
    }
}
