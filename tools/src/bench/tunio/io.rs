//! The two ways of moving frames through one TUN queue that `bench tunio`
//! compares: one `read`/`write` system call per frame (as smrnetd's
//! workers do today: non-blocking reads until `EAGAIN`, then `poll`), and
//! io_uring with `batch` requests in flight per queue, submitted and
//! reaped together.
//!
//! Invariant (memory): a buffer handed to the kernel in a submission is
//! neither moved nor freed until its completion has been reaped. Reads
//! still in flight when a receive loop stops are cancelled and awaited for
//! up to [`CANCEL_WAIT`]; any still not completed then keep their buffers
//! (leaked) rather than free memory the kernel may yet write.

use io_uring::{IoUring, opcode, types};
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a stopping receive loop waits for its cancelled reads.
const CANCEL_WAIT: Duration = Duration::from_secs(1);
/// Poll / wait granularity of the receive loops, so they see `done`.
const TICK: Duration = Duration::from_millis(20);
/// The largest frame a receive buffer holds (the device's MTU is 1500).
pub const BUF: usize = 2048;

/// Frames moved and errors met by one queue's loop.
#[derive(Debug, Default, Clone, Copy)]
pub struct Count {
    pub frames: u64,
    /// Per-frame failures (e.g. a write the kernel refused).
    pub errors: u64,
    /// System calls made (read/write/poll, or io_uring_enter).
    pub syscalls: u64,
}

/// An io_uring of `entries`, or why not. `refuse` forces the refusal, so
/// the fallback path can be exercised on a kernel that would accept.
pub fn open_ring(entries: u32, refuse: bool) -> Result<IoUring, String> {
    if refuse {
        return Err("refused by --refuse-uring".into());
    }
    IoUring::new(entries).map_err(|e| format!("io_uring_setup: {e}"))
}

fn errno() -> io::Error {
    io::Error::last_os_error()
}

/// Writes `frame` `n` times, one `write` each.
pub fn tx_per_frame(fd: RawFd, frame: &[u8], n: u64) -> Count {
    let mut c = Count::default();
    for _ in 0..n {
        // SAFETY: `frame` is a live slice for the duration of the call and
        // `fd` is an open TUN queue owned by the caller.
        let r = unsafe { libc::write(fd, frame.as_ptr().cast(), frame.len()) };
        c.syscalls += 1;
        if r == frame.len() as isize {
            c.frames += 1;
        } else {
            c.errors += 1;
        }
    }
    c
}

/// Writes `frame` `n` times, `batch` writes per `io_uring_enter`.
pub fn tx_uring(
    ring: &mut IoUring,
    fd: RawFd,
    frame: &[u8],
    n: u64,
    batch: u32,
) -> io::Result<Count> {
    let mut c = Count::default();
    let mut left = n;
    while left > 0 {
        let k = left.min(u64::from(batch)) as u32;
        for i in 0..k {
            let sqe = opcode::Write::new(types::Fd(fd), frame.as_ptr(), frame.len() as u32)
                .build()
                .user_data(u64::from(i));
            // SAFETY: `frame` outlives the batch: this function waits below
            // for all `k` completions before it returns or reuses anything.
            unsafe { ring.submission().push(&sqe) }
                .map_err(|_| io::Error::other("submission queue full"))?;
        }
        ring.submit_and_wait(k as usize)?;
        c.syscalls += 1;
        let mut reaped = 0;
        for cqe in ring.completion() {
            reaped += 1;
            if cqe.result() == frame.len() as i32 {
                c.frames += 1;
            } else {
                c.errors += 1;
            }
        }
        if reaped != k {
            return Err(io::Error::other(format!(
                "{reaped} of {k} writes completed"
            )));
        }
        left -= u64::from(k);
    }
    Ok(c)
}

/// Reads frames from a non-blocking `fd` until `done` and no frame came
/// for `idle`, or `deadline`.
pub fn rx_per_frame(fd: RawFd, done: &AtomicBool, idle: Duration, deadline: Instant) -> Count {
    let mut c = Count::default();
    let mut buf = vec![0u8; BUF];
    let mut last = Instant::now();
    loop {
        // SAFETY: `buf` is live and BUF bytes long; `fd` is an open queue.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        c.syscalls += 1;
        if r > 0 {
            c.frames += 1;
            last = Instant::now();
            continue;
        }
        if r < 0 && errno().kind() != io::ErrorKind::WouldBlock {
            c.errors += 1;
        }
        if stop_now(done, last, idle, deadline) {
            return c;
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        unsafe { libc::poll(&mut pfd, 1, TICK.as_millis() as i32) };
        c.syscalls += 1;
    }
}

fn stop_now(done: &AtomicBool, last: Instant, idle: Duration, deadline: Instant) -> bool {
    // Acquire: pairs with the sender's Release store after its last send.
    (done.load(Ordering::Acquire) && last.elapsed() >= idle) || Instant::now() >= deadline
}

/// Reads frames from a blocking `fd` with `batch` reads always in flight.
pub fn rx_uring(
    ring: &mut IoUring,
    fd: RawFd,
    batch: u32,
    done: &AtomicBool,
    idle: Duration,
    deadline: Instant,
) -> io::Result<Count> {
    let mut c = Count::default();
    let mut bufs: Vec<Vec<u8>> = (0..batch).map(|_| vec![0u8; BUF]).collect();
    let read = |bufs: &mut Vec<Vec<u8>>, i: usize| {
        opcode::Read::new(types::Fd(fd), bufs[i].as_mut_ptr(), BUF as u32)
            .build()
            .user_data(i as u64)
    };
    for i in 0..bufs.len() {
        let sqe = read(&mut bufs, i);
        // SAFETY: bufs[i] stays allocated and unmoved until its completion
        // is reaped (module invariant; see the cancel path below).
        unsafe { ring.submission().push(&sqe) }
            .map_err(|_| io::Error::other("submission queue full"))?;
    }
    let mut in_flight = bufs.len();
    let mut last = Instant::now();
    let ts = types::Timespec::from(TICK);
    let result = loop {
        let args = types::SubmitArgs::new().timespec(&ts);
        match ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
        c.syscalls += 1;
        let done_now: Vec<(usize, i32)> = ring
            .completion()
            .map(|cqe| (cqe.user_data() as usize, cqe.result()))
            .collect();
        in_flight -= done_now.len();
        for (i, res) in done_now {
            if res > 0 {
                c.frames += 1;
                last = Instant::now();
            } else if res != -libc::EAGAIN {
                c.errors += 1;
            }
            let sqe = read(&mut bufs, i);
            // SAFETY: as above; bufs[i]'s previous read has completed.
            if unsafe { ring.submission().push(&sqe) }.is_ok() {
                in_flight += 1;
            }
        }
        if stop_now(done, last, idle, deadline) {
            break Ok(c);
        }
    };
    // Cancel what is still in flight and wait for it, bounded.
    for i in 0..bufs.len() {
        let sqe = opcode::AsyncCancel::new(i as u64)
            .build()
            .user_data(u64::MAX);
        // SAFETY: a cancel request refers to no memory of ours.
        let _ = unsafe { ring.submission().push(&sqe) };
    }
    let _ = ring.submit();
    let until = Instant::now() + CANCEL_WAIT;
    while in_flight > 0 && Instant::now() < until {
        let args = types::SubmitArgs::new().timespec(&ts);
        let _ = ring.submitter().submit_with_args(1, &args);
        for cqe in ring.completion() {
            if cqe.user_data() != u64::MAX {
                in_flight -= 1;
            }
        }
    }
    if in_flight > 0 {
        // The kernel may still write into them: never free these.
        std::mem::forget(bufs);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forced_refusal_is_reported_as_such_without_trying() {
        let e = open_ring(8, true).err().expect("refused");
        assert!(e.contains("--refuse-uring"), "{e}");
    }

    #[test]
    fn uring_writes_to_a_pipe_move_every_frame_in_batches() {
        let Ok(mut ring) = open_ring(64, false) else {
            eprintln!("io_uring unavailable here; covered by the refusal test");
            return;
        };
        let mut fds = [0; 2];
        // SAFETY: fds is a two-element array, as pipe(2) needs.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let frame = [7u8; 100];
        let c = tx_uring(&mut ring, fds[1], &frame, 100, 32).unwrap();
        assert_eq!((c.frames, c.errors), (100, 0));
        // ceil(100 / 32) submissions.
        assert_eq!(c.syscalls, 4);
        let mut buf = vec![0u8; 10_000];
        // SAFETY: buf is live; fds[0] is the pipe's read end.
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(n, 10_000);
        // SAFETY: both ends are ours and closed once.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }
}
