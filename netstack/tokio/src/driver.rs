//! [`Driver`]: a minimal packet worker for programs that use the API
//! without the daemon — one thread per frame queue, reading frames,
//! handing events to the [`Net`], writing the stack's output, and sleeping
//! in poll(2) on the queue and the worker's [`Wakers`] eventfd until a
//! frame, a wake-up, or the stack's next deadline.
//!
//! Wake-ups are the stack's own: the driver builds the stack with a
//! `StackConfig::waker` that writes the worker's eventfd, and brackets
//! every sleep with `Worker::park` / `Worker::unpark`.
//!
//! Invariant: a worker sleeps only after `park` returned `true` (nothing
//! was queued for it), so work queued before the sleep is never left
//! waiting, and work queued during it calls the waker, which makes the
//! poll return (see `netstack`'s `stack/wake.rs`).

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use netstack::{Instant, Stack, StackConfig, WorkerWaker};
use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::{Net, Wakers};

/// Frames read per turn before the output is written.
const BATCH: usize = 64;
/// The longest sleep, so a stop request is seen promptly.
const MAX_SLEEP: Duration = Duration::from_millis(100);
/// Events handed over per turn.
const EVENT_BUDGET: usize = 4096;

/// A non-blocking source and sink of IP frames (a TUN queue).
pub trait Frames: AsFd {
    /// One frame into `buf`; `WouldBlock` when none is waiting.
    fn recv_frame(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Sends one frame.
    fn send_frame(&self, frame: &[u8]) -> io::Result<()>;
}

/// Drives a stack's workers for a [`Net`] on the wall clock.
#[derive(Debug, Clone)]
pub struct Driver {
    net: Net,
    wakers: Arc<Wakers>,
    epoch: std::time::Instant,
}

impl Driver {
    /// A stack built from `cfg`, the async API over it, and the driver of
    /// its workers. The driver sets `cfg.waker` (to its eventfds): the stack
    /// must wake the driver's workers, and no one else's.
    pub fn new(mut cfg: StackConfig) -> io::Result<(Net, Driver)> {
        let wakers = Arc::new(Wakers::new(cfg.workers)?);
        let waking = Arc::clone(&wakers);
        cfg.waker = Some(WorkerWaker::new(move |w| waking.wake(w)));
        let stack = Arc::new(Stack::new(cfg));
        let epoch = std::time::Instant::now();
        let net = Net::new(stack, Arc::new(move || now(epoch)));
        Ok((net.clone(), Driver { net, wakers, epoch }))
    }

    /// Runs worker `index` on `frames` until `stop` is set (checked at
    /// least every 100 ms) or the device fails.
    pub fn run(&self, index: usize, frames: &impl Frames, stop: &AtomicBool) -> io::Result<()> {
        let stack = self.net.stack();
        let w = stack.worker(index);
        let mtu = 65536 + 64;
        let (mut frame, mut out) = (vec![0u8; mtu], vec![0u8; mtu]);
        // Relaxed: a stop flag; nothing is published with it.
        while !stop.load(Ordering::Relaxed) {
            let t = now(self.epoch);
            let mut n_in = 0;
            while n_in < BATCH {
                match frames.recv_frame(&mut frame) {
                    Ok(n) => {
                        n_in += 1;
                        if let Some(r) = w.handle(t, &frame[..n], &mut out) {
                            let _ = frames.send_frame(&out[..r]);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            w.handle_timeout(t);
            let events = self.net.dispatch(index, EVENT_BUDGET);
            while let Some(n) = w.poll_transmit(t, &mut out) {
                let _ = frames.send_frame(&out[..n]);
            }
            if n_in == BATCH || events == EVENT_BUDGET || !w.park() {
                continue;
            }
            // After `park`, so a deadline queued before it is seen.
            let sleep = w
                .poll_timeout()
                .map_or(MAX_SLEEP, |d| d.saturating_duration_since(now(self.epoch)))
                .min(MAX_SLEEP);
            if sleep.is_zero() {
                w.unpark();
                continue;
            }
            let ts = Timespec {
                tv_sec: sleep.as_secs() as _,
                tv_nsec: sleep.subsec_nanos() as _,
            };
            let wake = self.wakers.fd(index).unwrap_or(frames.as_fd());
            let mut fds = [
                PollFd::new(frames, PollFlags::IN),
                PollFd::new(&wake, PollFlags::IN),
            ];
            let polled = poll(&mut fds, Some(&ts));
            w.unpark();
            self.wakers.drain(index);
            match polled {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

fn now(epoch: std::time::Instant) -> Instant {
    Instant::from_nanos(u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
}
