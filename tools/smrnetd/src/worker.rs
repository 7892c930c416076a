//! A packet worker: one plain thread per TUN queue, the only driver of its
//! `netstack::Worker` and the only server of the connections homed on it.
//!
//! Each turn reads a batch of frames (non-blocking, at most [`BATCH`]),
//! feeds them to the stack, accepts and serves connections with events,
//! runs the timers, and writes everything `poll_transmit` yields back to the
//! same queue; then it parks (`netstack::Worker::park`) and sleeps in
//! poll(2) on its queue and its wake-up eventfd until a frame arrives,
//! another thread queues work for it (see [`super::wake`]), or the stack's
//! next deadline (at most [`MAX_SLEEP`]). The clock is read here and
//! nowhere below.
//!
//! Invariant: per-worker statistics have exactly one writer, this thread
//! (Relaxed load + store); the metrics task only reads them.

use std::fs::File;
use std::io::{self, BufWriter};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use netstack::Stack;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use tun_rs::SyncDevice;

use netstack::{TxFrame, TxOffload};

use super::offload::{self, VNET_HDR_LEN};
use super::pcap::PcapWriter;
use super::serve::Server;
use smrnet_tokio::Wakers;

/// Frames read per turn before the stack's output is written.
pub const BATCH: usize = 64;
/// The longest sleep in poll(2). Work another thread queues for this worker
/// wakes it through its eventfd, and so does the stop; this bounds what has
/// no wake-up (a reload's new services, the pool's idle reclaim).
pub const MAX_SLEEP: Duration = Duration::from_millis(10);
/// How long a stopping worker lets connections close gracefully before it
/// resets the rest.
pub const GRACEFUL_CLOSE: Duration = Duration::from_millis(700);
/// The least time between two idle reclaims of the pool.
pub const RECLAIM_EVERY: Duration = Duration::from_millis(100);

smr::counter_block! {
    /// One worker's daemon-level counters (one writer: the worker).
    pub struct WorkerCounters(AtomicU64);
    /// Plain values of [`WorkerCounters`].
    pub struct WorkerCountersSnapshot;
    /// The Prometheus names of the per-worker counters (labelled `worker`).
    pub mod worker_names;
    /// Frames read from the queue.
    packets_in
        => Counter Count WORKER_PACKETS_IN = "smrnet_worker_packets_in_total",
        "Frames read from the worker's TUN queue.";
    /// Frames written to the queue.
    packets_out
        => Counter Count WORKER_PACKETS_OUT = "smrnet_worker_packets_out_total",
        "Frames written to the worker's TUN queue.";
    /// Bytes read.
    bytes_in
        => Counter Bytes WORKER_RECEIVED_BYTES = "smrnet_worker_received_bytes_total",
        "Bytes read from the worker's TUN queue.";
    /// Bytes written.
    bytes_out
        => Counter Bytes WORKER_SENT_BYTES = "smrnet_worker_sent_bytes_total",
        "Bytes written to the worker's TUN queue.";
    /// Turns that read at least one frame.
    batches
        => Counter Count WORKER_BATCHES = "smrnet_worker_batches_total",
        "Worker turns that read at least one frame.";
    /// Nanoseconds spent working (not sleeping in poll); exported as
    /// float seconds, rendered by hand.
    busy_ns;
    /// Frames the device refused to take.
    write_errors
        => Counter Count WORKER_WRITE_ERRORS = "smrnet_worker_write_errors_total",
        "Frames the TUN queue refused.";
    /// Connections served (service sessions started).
    sessions
        => Counter Count WORKER_SESSIONS = "smrnet_worker_sessions_total",
        "Service sessions (echo, discard, http connections) started.";
    /// Sleeps ended by the wake-up eventfd (another thread queued work).
    wakeups
        => Counter Count WORKER_WAKEUPS_RECEIVED = "smrnet_worker_wakeups_received_total",
        "Sleeps the worker's wake-up eventfd ended.";
}

/// One worker's daemon-level statistics (one writer: the worker): its
/// counters (reached through `Deref`, e.g. `stats.packets_in`) and its
/// offload figures.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerStats {
    /// The exported per-worker counters.
    pub counters: WorkerCounters,
    /// Super-segments, their sizes, refused headers.
    pub offload: super::offload::OffloadStats,
}

impl std::ops::Deref for WorkerStats {
    type Target = WorkerCounters;
    fn deref(&self) -> &WorkerCounters {
        &self.counters
    }
}

/// A TUN queue as the worker uses it: one frame per call, non-blocking,
/// pollable. A trait so the worker loop can be tested on a socket pair.
pub trait FrameQueue: AsFd {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn send(&self, buf: &[u8]) -> io::Result<usize>;
}

impl FrameQueue for SyncDevice {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        SyncDevice::recv(self, buf)
    }
    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        SyncDevice::send(self, buf)
    }
}

// The worker's statistics have one writer, the worker.
use smr::stat::add;

/// What every worker shares.
pub struct Shared {
    pub stack: Arc<Stack>,
    /// The listeners and their services; a SIGHUP swaps them.
    pub services: super::reload::Services,
    pub http_body_bytes: usize,
    pub stats: Box<[WorkerStats]>,
    pub pcap: Option<Mutex<PcapWriter<BufWriter<File>>>>,
    /// Set by the control plane to begin the shutdown. Release/Acquire:
    /// the listeners are closed before the store, so a worker that sees it
    /// sees no new connections.
    pub stop: AtomicBool,
    /// Where `netstack::Instant` zero is.
    pub epoch: std::time::Instant,
    pub mtu: usize,
    /// Device events, reloads and resource faults.
    pub faults: super::faults::Faults,
    /// Each worker's wake-up eventfd (the stack's waker writes them).
    pub wakers: Arc<Wakers>,
    /// Whether the eBPF steering program runs.
    pub steering: super::steering::Status,
    /// The forward service's side: the tokio API and its counters.
    pub forward: super::forward::Plane,
    /// Whether the queues carry the virtio-net header (TSO and checksum
    /// offload), see [`super::offload`].
    pub offload: super::offload::Status,
}

impl Shared {
    /// The stack's idea of now.
    pub fn now(&self) -> netstack::Instant {
        netstack::Instant::from_nanos(self.epoch.elapsed().as_nanos() as u64)
    }

    fn capture(&self, frame: &[u8]) {
        if let Some(p) = &self.pcap {
            let unix = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let mut w = p.lock().unwrap_or_else(PoisonError::into_inner);
            // The writer returns the error that stops it once, so this
            // warns once; a failing capture must not take the daemon down.
            if let Err(e) = w.record(unix, frame) {
                // Relaxed: statistics only (a gauge for the scraper).
                self.faults.pcap_stopped.store(true, Ordering::Relaxed);
                tracing::warn!(error = %e, "pcap write failed; capture stopped, serving on");
            }
        }
    }
}

/// Writes one frame, `buf[vnet..][..frame.len]`, to the device, with its
/// virtio-net header in `buf[..vnet]` when the queue has one (`vnet` is
/// [`VNET_HDR_LEN`] or zero), counting it (or its failure).
fn send(
    shared: &Shared,
    device: &impl FrameQueue,
    stats: &WorkerStats,
    index: usize,
    buf: &mut [u8],
    vnet: usize,
    frame: &TxFrame,
) {
    let Some(datagram) = buf.get(vnet..vnet + frame.len) else {
        add(&stats.write_errors, 1);
        return;
    };
    shared.capture(datagram);
    if vnet > 0 {
        offload::write(frame, buf);
        stats.offload.sent(frame);
    }
    match device.send(&buf[..vnet + frame.len]) {
        Ok(_) => add(&stats.bytes_out, frame.len as u64),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            add(&stats.write_errors, 1);
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            add(&stats.write_errors, 1);
        }
        Err(e) => {
            // The kernel refuses some frames (e.g. no route back); count
            // them, the stack retransmits what matters.
            add(&stats.write_errors, 1);
            tracing::debug!(worker = index, error = %e, "TUN write failed");
        }
    }
}

/// Runs worker `index` until stopped; returns an error if the device fails.
pub fn run(index: usize, shared: Arc<Shared>, device: impl FrameQueue) -> io::Result<()> {
    let stack = &*shared.stack;
    let w = stack.worker(index);
    let stats = &shared.stats[index];
    // With offload, a frame is the virtio-net header and up to 64 KiB.
    let (vnet, buf_len, tx) = if shared.offload.enabled {
        let tx = TxOffload {
            max_payload: netstack::MAX_OFFLOAD_PAYLOAD,
            checksum: true,
        };
        (VNET_HDR_LEN, offload::MAX_FRAME, tx)
    } else {
        (0, shared.mtu.max(1500) + 64, TxOffload::NONE)
    };
    let mut frame = vec![0u8; buf_len];
    let mut out = vec![0u8; buf_len];
    let mut services = shared.services.current();
    let mut generation = 0;
    let mut listeners = services.served_handles();
    let mut server = Server::new(index, services.specs(), shared.http_body_bytes);
    let forward = &shared.forward;
    if services.has_forward() {
        server.set_forward(forward.net.clone());
    }
    let mut stop_deadline: Option<std::time::Instant> = None;
    let mut last_reclaim = std::time::Instant::now();
    tracing::debug!(worker = index, "worker started");
    loop {
        let started = std::time::Instant::now();
        let now = shared.now();

        // Stop: close every connection we serve, then wait for them to go.
        // Acquire: pairs with the Release store in the control plane.
        if stop_deadline.is_none() && shared.stop.load(Ordering::Acquire) {
            stop_deadline = Some(started + GRACEFUL_CLOSE);
            server.stop(stack);
        }

        // Read a batch.
        let mut n_in = 0;
        let mut n_direct = 0;
        while n_in < BATCH {
            match device.recv(&mut frame) {
                Ok(n) => {
                    n_in += 1;
                    let got = frame.get(..n).unwrap_or(&frame);
                    let (datagram, trusted) = if vnet == 0 {
                        (got, false)
                    } else {
                        match offload::parse(got) {
                            Ok(r) => {
                                stats.offload.received(&r);
                                (r.datagram, r.checksum_trusted)
                            }
                            Err(why) => {
                                stats.offload.reject(why);
                                add(&stats.bytes_in, n as u64);
                                continue;
                            }
                        }
                    };
                    add(&stats.bytes_in, datagram.len() as u64);
                    shared.capture(datagram);
                    // A stateless reply (SYN-ACK, reset) goes out at once,
                    // from our buffer: no queue, no copy.
                    if let Some(r) = w.handle_with(now, datagram, trusted, &mut out[vnet..]) {
                        n_direct += 1;
                        let f = TxFrame::plain(r);
                        send(&shared, &device, stats, index, &mut out, vnet, &f);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io::Error::new(e.kind(), format!("TUN read: {e}"))),
            }
        }
        if n_in > 0 {
            add(&stats.packets_in, n_in as u64);
            add(&stats.batches, 1);
        }

        if let Some(next) = shared.services.changed(&mut generation) {
            services = next;
            listeners = services.served_handles();
            server.set_specs(services.specs());
            if services.has_forward() {
                server.set_forward(forward.net.clone());
            }
        }
        let (started_sessions, more) = server.serve(&w, &listeners);
        add(&stats.sessions, started_sessions);

        // Past the graceful period: reset what is left, then leave once the
        // resets are written. The forward thread closes its own streams.
        let finishing = stop_deadline.is_some_and(|d| started >= d)
            || (stop_deadline.is_some()
                && server.is_empty()
                && forward.net.counters().streams == 0);
        if finishing {
            server.abort_all(stack);
        }

        w.handle_timeout(now);
        let mut n_out = n_direct;
        while let Some(f) = w.poll_transmit_with(now, &mut out[vnet..], tx) {
            n_out += 1;
            send(&shared, &device, stats, index, &mut out, vnet, &f);
        }
        add(&stats.packets_out, n_out);
        // A quiet turn: recycle what this thread retired, so the pool's
        // pending count drains between bursts (at most every RECLAIM_EVERY).
        if n_in == 0 && started.duration_since(last_reclaim) >= RECLAIM_EVERY {
            stack.reclaim_idle();
            last_reclaim = started;
        }
        add(&stats.busy_ns, started.elapsed().as_nanos() as u64);

        if finishing {
            if let Some(p) = &shared.pcap {
                let _ = p.lock().unwrap_or_else(PoisonError::into_inner).flush();
            }
            tracing::debug!(worker = index, "worker stopped");
            return Ok(());
        }

        // Sleep until a frame, a wake-up, the next deadline, or MAX_SLEEP.
        // Parked first, so work queued from now on wakes us and the
        // deadline read below includes any queued before.
        let busy = n_in == BATCH || more;
        if !busy && w.park() {
            let slept = sleep(&shared, &w, index, &device);
            w.unpark();
            if shared.wakers.drain(index) {
                add(&stats.wakeups, 1);
            }
            slept?;
        }
    }
}

/// One sleep in poll(2) on the queue and the wake-up eventfd.
fn sleep(
    shared: &Shared,
    w: &netstack::Worker<'_>,
    index: usize,
    device: &impl FrameQueue,
) -> io::Result<()> {
    let now = shared.now();
    let sleep = w
        .poll_timeout()
        .map_or(MAX_SLEEP, |t| t.saturating_duration_since(now))
        .min(MAX_SLEEP);
    if sleep.is_zero() {
        return Ok(());
    }
    let ts = Timespec {
        tv_sec: sleep.as_secs() as _,
        tv_nsec: sleep.subsec_nanos() as _,
    };
    let mut fds = [
        PollFd::new(device, PollFlags::IN),
        PollFd::from_borrowed_fd(
            shared.wakers.fd(index).unwrap_or(device.as_fd()),
            PollFlags::IN,
        ),
    ];
    match poll(&mut fds, Some(&ts)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(io::Error::other(format!("poll on TUN queue: {e}"))),
    }
}

#[cfg(test)]
mod tests;
