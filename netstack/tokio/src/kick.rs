//! Waking a packet worker that sleeps in poll(2) when the application has
//! queued work for it: one eventfd per worker, written at most once per
//! sleep.
//!
//! Invariant: **after [`Kicker::kick`] returns, the worker either has not yet
//! run [`Kicker::take`] for this round (and will see the work when it does)
//! or its eventfd is readable.** The `pending` flag only saves syscalls: a
//! kick writes the eventfd when it turns the flag from false to true; the
//! worker clears the flag (and drains the eventfd) before it drains its
//! ready list, so a kick after the clear writes again.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustix::event::{EventfdFlags, eventfd};

struct Slot {
    fd: OwnedFd,
    /// A kick is written and not yet taken. AcqRel swaps on both sides: the
    /// worker's swap in `take` reads the value of the latest kick's swap, so
    /// the ready-list push before that kick happens before the worker's
    /// drain after `take`.
    pending: AtomicBool,
}

/// One eventfd per packet worker. See the module docs.
pub struct Kicker {
    slots: Box<[Slot]>,
    /// Eventfd writes (Relaxed: statistics only).
    writes: AtomicU64,
}

impl core::fmt::Debug for Kicker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Kicker")
            .field("workers", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Kicker {
    /// A kicker for `workers` workers.
    pub fn new(workers: usize) -> io::Result<Kicker> {
        let slots = (0..workers)
            .map(|_| {
                let fd = eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?;
                Ok(Slot {
                    fd,
                    pending: AtomicBool::new(false),
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Kicker {
            slots: slots.into_boxed_slice(),
            writes: AtomicU64::new(0),
        })
    }

    /// Tells worker `worker` it has work; a worker index out of range is
    /// ignored.
    pub fn kick(&self, worker: usize) {
        let Some(slot) = self.slots.get(worker) else {
            return;
        };
        // AcqRel: see `Slot::pending`.
        if !slot.pending.swap(true, Ordering::AcqRel) {
            // Relaxed: statistics only.
            self.writes.fetch_add(1, Ordering::Relaxed);
            // The counter cannot overflow (u64, drained by every take); a
            // failed write leaves the worker to its poll timeout.
            let _ = rustix::io::write(&slot.fd, &1u64.to_ne_bytes());
        }
    }

    /// For worker `worker`, before it drains its ready list: clears the
    /// pending kick and drains the eventfd.
    pub fn take(&self, worker: usize) {
        let Some(slot) = self.slots.get(worker) else {
            return;
        };
        // AcqRel: see `Slot::pending`.
        if slot.pending.swap(false, Ordering::AcqRel) {
            let mut buf = [0u8; 8];
            let _ = rustix::io::read(&slot.fd, &mut buf);
        }
    }

    /// The eventfd worker `worker` adds to its poll(2) set (readable: kicked).
    ///
    /// # Panics
    /// If `worker` is out of range.
    pub fn fd(&self, worker: usize) -> BorrowedFd<'_> {
        self.slots[worker].fd.as_fd()
    }

    /// Eventfd writes so far (one per kick that found the worker not yet
    /// kicked).
    pub fn writes(&self) -> u64 {
        // Relaxed: statistics only.
        self.writes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::{PollFd, PollFlags, Timespec, poll};

    fn readable(k: &Kicker, w: usize) -> bool {
        let fd = k.fd(w);
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        poll(&mut fds, Some(&zero)).unwrap() == 1
    }

    #[test]
    fn a_kick_makes_the_workers_eventfd_readable_once_until_taken() {
        let k = Kicker::new(2).unwrap();
        assert!(!readable(&k, 0));
        k.kick(0);
        k.kick(0);
        assert!(readable(&k, 0));
        assert!(!readable(&k, 1), "only the kicked worker wakes");
        assert_eq!(k.writes(), 1, "a second kick before take writes nothing");
        k.take(0);
        assert!(!readable(&k, 0));
        k.kick(0);
        assert!(readable(&k, 0), "a kick after take wakes again");
        assert_eq!(k.writes(), 2);
        k.kick(7);
    }
}
