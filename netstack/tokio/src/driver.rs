//! [`Driver`]: a minimal packet worker for programs that use the API
//! without the daemon — one thread per frame queue, reading frames,
//! handing events to the [`Net`], writing the stack's output, and sleeping
//! in poll(2) on the queue and the worker's [`Kicker`] eventfd until a
//! frame, a kick, or the stack's next deadline.
//!
//! Invariant: the kick is taken before the output is drained, so work an
//! application call queues after the drain wakes the next poll (see
//! [`Kicker`]).

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use netstack::{Instant, Stack};
use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::{Kicker, Net};

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
    kicker: Arc<Kicker>,
    epoch: std::time::Instant,
}

impl Driver {
    /// The async API over `stack` and the driver of its workers.
    pub fn new(stack: Arc<Stack>) -> io::Result<(Net, Driver)> {
        let kicker = Arc::new(Kicker::new(stack.config().workers)?);
        let epoch = std::time::Instant::now();
        let k = Arc::clone(&kicker);
        let net = Net::new(
            stack,
            Arc::new(move || now(epoch)),
            Arc::new(move |w| k.kick(w)),
        );
        Ok((net.clone(), Driver { net, kicker, epoch }))
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
            self.kicker.take(index);
            while let Some(n) = w.poll_transmit(t, &mut out) {
                let _ = frames.send_frame(&out[..n]);
            }
            if n_in == BATCH || events == EVENT_BUDGET {
                continue;
            }
            let sleep = w
                .poll_timeout()
                .map_or(MAX_SLEEP, |d| d.saturating_duration_since(now(self.epoch)))
                .min(MAX_SLEEP);
            if sleep.is_zero() {
                continue;
            }
            let ts = Timespec {
                tv_sec: sleep.as_secs() as _,
                tv_nsec: sleep.subsec_nanos() as _,
            };
            let kick = self.kicker.fd(index);
            let mut fds = [
                PollFd::new(frames, PollFlags::IN),
                PollFd::new(&kick, PollFlags::IN),
            ];
            match poll(&mut fds, Some(&ts)) {
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
