//! One bulk TCP stream from one kernel socket: the client of `bench path`'s
//! discard and echo rows, the same code against smrnetd and the kernel.
//!
//! The client writes `bytes` in 64 KiB `write`s, then shuts its sending
//! side. Against discard it then waits for the server's FIN: the server
//! closes only after it has read everything, so the clock stops when every
//! byte has been delivered, not when the last one entered the local send
//! buffer. Against echo a second thread reads every byte back and checks it
//! against the pattern that was sent (a 65,537-byte block, prime, so no
//! 64 KiB write lines up with it), then waits for the FIN.
//!
//! Invariant: bounded in bytes and in time. Every read and write has a
//! socket timeout of `timeout` and the loop checks a deadline of `timeout`
//! after each call, so a run ends (with an error saying how far it got)
//! within twice `timeout`.

use serde::Serialize;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Bytes per `write`.
pub const WRITE_SIZE: usize = 64 << 10;
/// The pattern's period: prime and larger than one write.
const PERIOD: usize = 65_537;

/// What the server does with the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Discard,
    Echo,
}

/// One completed stream.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StreamResult {
    pub bytes: u64,
    pub seconds: f64,
    pub bytes_per_sec: f64,
}

/// The byte stream sent: a pseudo-random block repeated. `window(off, n)`
/// is the stream's bytes `off..off + n` (n at most one write).
struct Pattern(Vec<u8>);

impl Pattern {
    fn new() -> Pattern {
        // SplitMix64-style mixing; any fixed bytes would do, these have no
        // short period of their own.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let block: Vec<u8> = (0..PERIOD)
            .map(|_| {
                x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                (z ^ (z >> 31)) as u8
            })
            .collect();
        // Twice over, so every window of up to one period is contiguous.
        Pattern(block.repeat(2))
    }

    fn window(&self, off: u64, n: usize) -> &[u8] {
        debug_assert!(n <= PERIOD);
        let start = (off % PERIOD as u64) as usize;
        &self.0[start..start + n]
    }
}

/// Send `bytes` to `target` and, for echo, read them back verified.
pub fn run(
    target: SocketAddr,
    mode: Mode,
    bytes: u64,
    timeout: Duration,
) -> io::Result<StreamResult> {
    let pattern = Pattern::new();
    let start = Instant::now();
    let deadline = start + timeout;
    let sock = TcpStream::connect_timeout(&target, timeout)?;
    sock.set_read_timeout(Some(timeout))?;
    sock.set_write_timeout(Some(timeout))?;
    let reader = sock.try_clone()?;
    std::thread::scope(|s| {
        let echoed =
            (mode == Mode::Echo).then(|| s.spawn(|| read_back(reader, &pattern, bytes, deadline)));
        let sent = send(&sock, &pattern, bytes, deadline);
        let shut = sock.shutdown(Shutdown::Write);
        let received = match echoed {
            Some(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            None => Ok(()),
        };
        sent?;
        shut?;
        received?;
        if mode == Mode::Discard {
            wait_for_fin(&sock, deadline)?;
        }
        Ok::<(), io::Error>(())
    })?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(StreamResult {
        bytes,
        seconds,
        bytes_per_sec: bytes as f64 / seconds.max(1e-9),
    })
}

fn past(deadline: Instant, what: impl FnOnce() -> String) -> io::Result<()> {
    if Instant::now() > deadline {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("stream timed out: {}", what()),
        ));
    }
    Ok(())
}

fn send(mut sock: &TcpStream, pattern: &Pattern, bytes: u64, deadline: Instant) -> io::Result<()> {
    let mut sent = 0u64;
    while sent < bytes {
        past(deadline, || format!("sent {sent} of {bytes} bytes"))?;
        let n = (bytes - sent).min(WRITE_SIZE as u64) as usize;
        let w = sock
            .write(pattern.window(sent, n))
            .map_err(|e| io::Error::new(e.kind(), format!("write after {sent} bytes: {e}")))?;
        if w == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the peer stopped reading",
            ));
        }
        sent += w as u64;
    }
    Ok(())
}

fn read_back(
    mut sock: TcpStream,
    pattern: &Pattern,
    bytes: u64,
    deadline: Instant,
) -> io::Result<()> {
    let mut buf = vec![0u8; WRITE_SIZE];
    let mut got = 0u64;
    while got < bytes {
        past(deadline, || format!("{got} of {bytes} bytes echoed"))?;
        let want = (bytes - got).min(WRITE_SIZE as u64) as usize;
        let n = sock
            .read(&mut buf[..want])
            .map_err(|e| io::Error::new(e.kind(), format!("read after {got} echoed bytes: {e}")))?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the server closed after echoing {got} of {bytes} bytes"),
            ));
        }
        if buf[..n] != *pattern.window(got, n) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "echoed bytes differ from those sent, within {got}..{}",
                    got + n as u64
                ),
            ));
        }
        got += n as u64;
    }
    wait_for_fin(&sock, deadline)
}

/// Reads until the server's FIN; any byte before it is an error.
fn wait_for_fin(mut sock: &TcpStream, deadline: Instant) -> io::Result<()> {
    let mut b = [0u8; 1];
    loop {
        past(deadline, || "waiting for the server's close".to_string())?;
        match sock.read(&mut b) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the server sent bytes it was not asked for",
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("waiting for the server's FIN: {e}"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn pattern_windows_are_one_continuous_stream() {
        let p = Pattern::new();
        let whole: Vec<u8> = (0..3 * PERIOD as u64).map(|i| p.window(i, 1)[0]).collect();
        for off in [0u64, 1, 65_535, 65_536, 65_537, 131_000] {
            assert_eq!(
                p.window(off, WRITE_SIZE),
                &whole[off as usize..off as usize + WRITE_SIZE]
            );
        }
        // Not constant: a stuck or zeroed echo would not pass for it.
        assert!(whole[..64].iter().any(|&b| b != whole[0]));
    }

    /// A loopback server running `serve` on one connection.
    fn one_shot(serve: fn(TcpStream)) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((s, _)) = l.accept() {
                serve(s);
            }
        });
        addr
    }

    #[test]
    fn echo_of_every_byte_completes_and_counts_them() {
        let addr = one_shot(|mut s| {
            let mut r = s.try_clone().unwrap();
            let _ = io::copy(&mut r, &mut s);
        });
        let r = run(addr, Mode::Echo, 1_000_003, Duration::from_secs(20)).unwrap();
        assert_eq!(r.bytes, 1_000_003);
        assert!(r.bytes_per_sec > 0.0);
    }

    #[test]
    fn a_corrupted_echo_is_refused() {
        let addr = one_shot(|mut s| {
            let mut buf = vec![0u8; 4096];
            let mut first = true;
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if first {
                    buf[0] ^= 1;
                    first = false;
                }
                if s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let e = run(addr, Mode::Echo, 300_000, Duration::from_secs(20)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }

    #[test]
    fn discard_waits_for_the_server_to_read_everything_and_close() {
        let addr = one_shot(|mut s| {
            let _ = io::copy(&mut s, &mut io::sink());
        });
        let r = run(addr, Mode::Discard, 5_000_000, Duration::from_secs(20)).unwrap();
        assert_eq!(r.bytes, 5_000_000);
    }

    #[test]
    fn a_server_that_never_closes_times_out_instead_of_hanging() {
        let addr = one_shot(|mut s| {
            let _ = io::copy(&mut s, &mut io::sink());
            // Read to EOF but keep the connection open past the timeout.
            std::thread::sleep(Duration::from_secs(3));
        });
        let t = Instant::now();
        let e = run(addr, Mode::Discard, 100_000, Duration::from_millis(500)).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            "{e}"
        );
    }
}
