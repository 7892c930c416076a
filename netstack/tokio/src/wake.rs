//! The driver's half of the wake-ups between workers: one eventfd per
//! worker, in that worker's poll set beside its frame queue. Used by
//! [`crate::Driver`] and by the daemon's packet workers alike.
//!
//! The engine calls [`Wakers::wake`] (through `StackConfig::waker`) when it
//! queued work for a worker that `park`ed: a segment that reached another
//! worker's queue, or an application call (a write, a read that opens the
//! window, a close) on one of its connections. The worker's poll returns,
//! it [`drain`](Wakers::drain)s the eventfd and runs a turn. Without this
//! that work waited for the sleeping worker's poll timeout.
//!
//! Invariant: an eventfd is written only by `wake` and read only by its own
//! worker, non-blocking both ways, so a wake-up never blocks the thread
//! that sends it (a counter already at its maximum just stays readable).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::event::{EventfdFlags, eventfd};

/// One eventfd per worker; empty (waking nobody) when built with `none`.
#[derive(Debug, Default)]
pub struct Wakers {
    fds: Box<[OwnedFd]>,
    /// Wake-ups whose eventfd write failed (never expected).
    pub failed: AtomicU64,
}

impl Wakers {
    /// An eventfd for each of `workers` workers.
    pub fn new(workers: usize) -> std::io::Result<Wakers> {
        let fds = (0..workers)
            .map(|_| eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC))
            .collect::<Result<Box<[_]>, _>>()?;
        Ok(Wakers {
            fds,
            failed: AtomicU64::new(0),
        })
    }

    /// Makes worker `worker`'s poll return (now, or at its next poll).
    pub fn wake(&self, worker: usize) {
        let Some(fd) = self.fds.get(worker) else {
            return;
        };
        match rustix::io::write(fd, &1u64.to_ne_bytes()) {
            // EAGAIN: the counter is saturated, so it is readable anyway.
            Ok(_) | Err(rustix::io::Errno::AGAIN) => {}
            Err(_) => {
                // Relaxed: statistics only.
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Every worker (a driver's stop).
    pub fn wake_all(&self) {
        for i in 0..self.fds.len() {
            self.wake(i);
        }
    }

    /// Worker `worker`'s eventfd, for its poll set.
    pub fn fd(&self, worker: usize) -> Option<BorrowedFd<'_>> {
        self.fds.get(worker).map(|f| f.as_fd())
    }

    /// Resets worker `worker`'s eventfd; returns whether it had been woken.
    pub fn drain(&self, worker: usize) -> bool {
        let Some(fd) = self.fds.get(worker) else {
            return false;
        };
        let mut buf = [0u8; 8];
        matches!(rustix::io::read(fd, &mut buf), Ok(8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_is_read_once_and_only_by_its_worker() {
        let w = Wakers::new(2).unwrap();
        assert!(!w.drain(0), "nothing sent yet");
        w.wake(1);
        w.wake(1);
        assert!(!w.drain(0));
        assert!(w.drain(1), "two wakes read as one");
        assert!(!w.drain(1));
        w.wake(7);
        w.wake_all();
        assert!(w.drain(0) && w.drain(1));
        assert!(Wakers::default().fd(0).is_none());
    }
}
