//! The upstream HTTP server both arms of `bench forward` forward to: a small
//! kernel-socket server in this process, one listener on 127.0.0.1 in each
//! namespace it is given, each with its own accept counter.
//!
//! Why not nginx: the flood arm must count the connections the upstream
//! accepts, exactly, per arm; a counter beside `accept` is exact and needs
//! no log parsing, no package and no process to stop. The same code (and
//! the same runtime) serves both arms, so neither proxy gets a faster
//! upstream than the other.
//!
//! HTTP: requests are read up to their blank line (no bodies: `wrk` and the
//! flood arm send GETs), pipelined requests are answered in order, each with
//! a fixed body and `Content-Length`; `Connection: close` (or HTTP/1.0
//! without keep-alive) is answered with `Connection: close` and the socket
//! is closed after the answer. A request head larger than [`MAX_HEAD`] gets
//! a 431 and a close: hostile input is bounded, never a panic.
//!
//! Invariant: the server runs at most its `lifetime`, and dropping
//! [`Upstream`] stops it and closes every socket it holds (the runtime is
//! dropped with its tasks).

use crate::load::netns::NetnsFd;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The largest request head the upstream reads before answering 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Backlog of each listener: a close-mode run opens thousands a second.
const BACKLOG: i32 = 4096;

/// A running upstream; stopped on drop.
pub struct Upstream {
    stop: Arc<AtomicBool>,
    accepts: Vec<Arc<AtomicU64>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Upstream {
    /// Listen on 127.0.0.1:`port` in each of `netns` (names under
    /// /run/netns) and serve with `threads` runtime threads for at most
    /// `lifetime`. Returns once every listener is bound.
    pub fn start(
        netns: &[&str],
        port: u16,
        threads: usize,
        body_bytes: usize,
        lifetime: Duration,
    ) -> io::Result<Upstream> {
        let mut listeners = Vec::with_capacity(netns.len());
        for ns in netns {
            // A socket stays in the namespace it was created in, whichever
            // thread later uses it.
            let l = NetnsFd::open(ns)?.run(|| -> io::Result<std::net::TcpListener> {
                let l = std::net::TcpListener::bind(("127.0.0.1", port))?;
                // A second listen() only raises std's backlog of 128.
                rustix::net::listen(&l, BACKLOG)?;
                l.set_nonblocking(true)?;
                Ok(l)
            })?;
            listeners.push(l.map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("upstream: listen on 127.0.0.1:{port} in {ns}: {e}"),
                )
            })?);
        }
        let accepts: Vec<_> = listeners
            .iter()
            .map(|_| Arc::new(AtomicU64::new(0)))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("smrnet-fwd-upstream")
            .enable_all()
            .build()?;
        let (st, counts) = (stop.clone(), accepts.clone());
        let responses = Arc::new(Responses::new(body_bytes));
        let thread = std::thread::Builder::new()
            .name("smrnet-fwd-upstream".into())
            .spawn(move || {
                let deadline = Instant::now() + lifetime;
                rt.block_on(async move {
                    let mut loops = Vec::new();
                    for (l, count) in listeners.into_iter().zip(counts) {
                        let l = tokio::net::TcpListener::from_std(l)?;
                        let (st, responses) = (st.clone(), responses.clone());
                        loops.push(tokio::spawn(async move {
                            accept_loop(l, &count, &st, deadline, responses).await
                        }));
                    }
                    for l in loops {
                        l.await.map_err(io::Error::other)?;
                    }
                    Ok(())
                })
                // Dropping `rt` here cancels every connection task.
            })?;
        Ok(Upstream {
            stop,
            accepts,
            thread: Some(thread),
        })
    }

    /// Connections accepted so far by the listener in `netns[i]`.
    pub fn accepts(&self, i: usize) -> u64 {
        // Relaxed: a statistics counter, read after the traffic it counts.
        self.accepts[i].load(Ordering::Relaxed)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        // Relaxed: a stop flag polled by the accept loops; the join orders
        // everything after it.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(Err(e)) => eprintln!("bench forward: upstream: {e}"),
                Err(_) => eprintln!("bench forward: upstream thread panicked"),
                Ok(Ok(())) => {}
            }
        }
    }
}

async fn accept_loop(
    l: tokio::net::TcpListener,
    count: &AtomicU64,
    stop: &AtomicBool,
    deadline: Instant,
    responses: Arc<Responses>,
) {
    // Relaxed: see `Drop`.
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let Ok(Ok((sock, _))) = tokio::time::timeout(Duration::from_millis(100), l.accept()).await
        else {
            continue;
        };
        // Relaxed: see `accepts`.
        count.fetch_add(1, Ordering::Relaxed);
        let _ = sock.set_nodelay(true);
        tokio::spawn(serve(sock, responses.clone()));
    }
}

/// The three answers the server ever sends, built once.
struct Responses {
    keep_alive: Vec<u8>,
    close: Vec<u8>,
    too_large: Vec<u8>,
}

impl Responses {
    fn new(body_bytes: usize) -> Responses {
        let body = "x".repeat(body_bytes);
        let head = |extra: &str| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body_bytes}\r\n\
                 {extra}\r\n{body}"
            )
            .into_bytes()
        };
        Responses {
            keep_alive: head(""),
            close: head("Connection: close\r\n"),
            too_large: b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
                         Content-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec(),
        }
    }
}

async fn serve(mut s: tokio::net::TcpStream, r: Arc<Responses>) {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut have = 0;
    loop {
        while let Some(req) = next_request(&buf[..have]) {
            let answer = if req.close { &r.close } else { &r.keep_alive };
            if s.write_all(answer).await.is_err() {
                return;
            }
            if req.close {
                let _ = s.shutdown().await;
                return;
            }
            buf.copy_within(req.len..have, 0);
            have -= req.len;
        }
        if have == buf.len() {
            let _ = s.write_all(&r.too_large).await;
            let _ = s.shutdown().await;
            return;
        }
        match s.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
    }
}

/// One complete request head at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    /// Bytes of the head, blank line included.
    len: usize,
    /// The client asked for the connection to close after the answer.
    close: bool,
}

/// The first complete request head in `buf`, if there is one.
fn next_request(buf: &[u8]) -> Option<Request> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = &buf[..end];
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.trim_ascii());
    let request_line = lines.next().unwrap_or_default();
    let http10 = request_line.ends_with(b"HTTP/1.0");
    let mut close = None;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"connection")
        {
            let value = line[colon + 1..].to_ascii_lowercase();
            if contains(&value, b"close") {
                close = Some(true);
            } else if contains(&value, b"keep-alive") {
                close.get_or_insert(false);
            }
        }
    }
    Some(Request {
        len: end + 4,
        close: close.unwrap_or(http10),
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_complete_only_at_its_blank_line() {
        assert_eq!(next_request(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
        assert_eq!(
            next_request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2"),
            Some(Request {
                len: 27,
                close: false
            })
        );
    }

    #[test]
    fn connection_close_in_any_case_closes_and_http10_closes_by_default() {
        let close = |req: &[u8]| next_request(req).map(|r| r.close);
        assert_eq!(
            close(b"GET / HTTP/1.1\r\nconnection:  Close\r\n\r\n"),
            Some(true)
        );
        assert_eq!(close(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), Some(false));
        assert_eq!(close(b"GET / HTTP/1.0\r\n\r\n"), Some(true));
        assert_eq!(
            close(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
            Some(false)
        );
        // A header merely mentioning close elsewhere does not count.
        assert_eq!(
            close(b"GET / HTTP/1.1\r\nX-Note: close\r\n\r\n"),
            Some(false)
        );
    }

    #[test]
    fn garbage_never_panics() {
        for junk in [
            &b"\r\n\r\n"[..],
            b":\r\n\r\n",
            b"\n:\n\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
        ] {
            assert!(next_request(junk).is_some());
        }
    }

    #[test]
    fn the_answers_carry_their_length_and_close_only_when_asked() {
        let r = Responses::new(5);
        let ka = String::from_utf8(r.keep_alive).unwrap();
        assert!(ka.starts_with("HTTP/1.1 200 OK\r\n") && ka.ends_with("\r\n\r\nxxxxx"));
        assert!(ka.contains("Content-Length: 5\r\n") && !ka.contains("close"));
        assert!(
            String::from_utf8(r.close)
                .unwrap()
                .contains("Connection: close\r\n")
        );
    }
}
