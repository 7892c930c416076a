//! [`TcpStream`]: one connection as `AsyncRead` + `AsyncWrite`.
//!
//! Every poll tries the stack call first; only when it would block does the
//! task store its waker (under the stream's registry lock) and try once
//! more, returning `Pending` only if still blocked (the crate's no-lost-
//! wake-up invariant). Each `Ready` carries the whole effect of the call,
//! so a dropped read or write future moved no byte.

use core::net::SocketAddr;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use netstack::{AppError, ConnError, ConnHandle, State};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::{conn_error, connect_error, ended_with};
use crate::net::Net;
use crate::registry::ConnSlot;

/// A TCP connection on the stack. Dropping it closes the connection (FIN
/// after the queued data); [`abort`](Self::abort) resets it instead.
#[derive(Debug)]
pub struct TcpStream {
    net: Net,
    conn: ConnHandle,
    slot: Arc<ConnSlot>,
    nodelay: bool,
    /// `close` or `abort` has been called. Relaxed everywhere: it only keeps
    /// this stream from closing twice; the stack orders the calls.
    finished: AtomicBool,
}

/// Which waker a blocked call stores.
#[derive(Clone, Copy)]
enum Dir {
    Read,
    Write,
}

impl TcpStream {
    pub(crate) fn new(net: Net, conn: ConnHandle) -> TcpStream {
        let slot = net.inner.registry.insert(conn);
        TcpStream {
            net,
            conn,
            slot,
            nodelay: false,
            finished: AtomicBool::new(false),
        }
    }

    /// Opens a connection to `addr` from the stack's first address of its
    /// family. Fails with `ConnectionRefused` (RST in answer), `TimedOut`
    /// (SYN retries exhausted) or `AddrNotAvailable` (no address or port).
    /// Dropping the future abandons the attempt.
    pub async fn connect(net: &Net, addr: SocketAddr) -> io::Result<TcpStream> {
        let worker = net.pick_worker();
        let conn = net
            .stack()
            .connect(net.now(), worker, None, addr)
            .map_err(connect_error)?;
        let stream = TcpStream::new(net.clone(), conn);
        core::future::poll_fn(|cx| stream.poll_connected(cx)).await?;
        Ok(stream)
    }

    fn poll_connected(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut registered = false;
        loop {
            match self.net.stack().state_of(&self.conn) {
                Some(State::SynSent | State::SynReceived) => {}
                Some(State::Closed) | None => return Poll::Ready(Err(self.ended_error())),
                Some(_) => return Poll::Ready(Ok(())),
            }
            if registered {
                return Poll::Pending;
            }
            self.register(Dir::Write, cx);
            registered = true;
        }
    }

    /// Our address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.conn.local())
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.conn.remote())
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    pub fn set_nodelay(&mut self, nodelay: bool) -> io::Result<()> {
        self.net
            .stack()
            .set_nagle(&self.conn, !nodelay)
            .map_err(|e| self.app_error(e))?;
        self.nodelay = nodelay;
        Ok(())
    }

    /// Whether Nagle's algorithm is off (as last set here).
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.nodelay)
    }

    /// Resets the connection (RST), dropping whatever is queued both ways.
    pub fn abort(self) {
        let _ = self.net.stack().abort(&self.conn);
        // Relaxed: see `finished`.
        self.finished.store(true, Ordering::Relaxed);
    }

    /// The stack's name for this connection.
    pub fn handle(&self) -> ConnHandle {
        self.conn
    }

    fn register(&self, dir: Dir, cx: &mut Context<'_>) {
        let mut w = self.slot.lock();
        let waker = match dir {
            Dir::Read => &mut w.read,
            Dir::Write => &mut w.write,
        };
        match waker {
            Some(old) if old.will_wake(cx.waker()) => {}
            _ => *waker = Some(cx.waker().clone()),
        }
    }

    /// Why the connection ended, once the stack has reaped it.
    fn ended_error(&self) -> io::Error {
        let ended = self.slot.lock().ended;
        match ended_with(ended) {
            Some(e) => conn_error(e),
            None => match self.net.stack().error_of(&self.conn) {
                Some(e) => conn_error(e),
                None => io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the connection is closed and gone from the stack",
                ),
            },
        }
    }

    fn app_error(&self, e: AppError) -> io::Error {
        match e {
            AppError::Conn(c) => conn_error(c),
            AppError::Gone => self.ended_error(),
        }
    }
}

impl TcpStream {
    fn read_inner(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let this = self;
        let mut registered = false;
        loop {
            match this.net.stack().read(&this.conn, buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(AppError::Conn(ConnError::WouldBlock)) => {}
                Err(AppError::Gone) => {
                    // Reaped: either it ended in error (say which) or in
                    // order, after everything was read (end of stream).
                    let ended = this.slot.lock().ended;
                    return Poll::Ready(match ended_with(ended) {
                        Some(e) => Err(conn_error(e)),
                        None => Ok(()),
                    });
                }
                Err(AppError::Conn(e)) => return Poll::Ready(Err(conn_error(e))),
            }
            if registered {
                return Poll::Pending;
            }
            this.register(Dir::Read, cx);
            registered = true;
        }
    }

    fn write_inner(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = self;
        let mut registered = false;
        loop {
            match this.net.stack().write(&this.conn, data) {
                Ok(0) | Err(AppError::Conn(ConnError::WouldBlock)) => {}
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(AppError::Gone) => {
                    let ended = this.slot.lock().ended;
                    return Poll::Ready(Err(match ended_with(ended) {
                        Some(e) => conn_error(e),
                        None => conn_error(ConnError::Closed),
                    }));
                }
                Err(AppError::Conn(e)) => return Poll::Ready(Err(conn_error(e))),
            }
            if registered {
                return Poll::Pending;
            }
            this.register(Dir::Write, cx);
            registered = true;
        }
    }

    /// Sends FIN after the queued data (std's `shutdown(Write)`); reading
    /// goes on. Idempotent.
    fn shutdown_inner(&self) -> Poll<io::Result<()>> {
        // Relaxed: see `finished`.
        if !self.finished.swap(true, Ordering::Relaxed) {
            match self.net.stack().close(&self.conn) {
                Ok(()) | Err(AppError::Gone) => {}
                Err(AppError::Conn(e)) => return Poll::Ready(Err(conn_error(e))),
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Both `TcpStream` and `&TcpStream` read and write (as std's do), so one
/// task can pump both directions of a stream without splitting it.
macro_rules! async_io {
    ($t:ty) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                self.read_inner(cx, buf)
            }
        }

        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                data: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.write_inner(cx, data)
            }

            /// Queued data is the stack's to send: nothing to flush.
            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.shutdown_inner()
            }
        }
    };
}

async_io!(TcpStream);
async_io!(&TcpStream);

impl Drop for TcpStream {
    fn drop(&mut self) {
        // Relaxed: see `finished`.
        if !self.finished.load(Ordering::Relaxed) {
            let _ = self.net.stack().close(&self.conn);
        }
        self.net.inner.registry.remove(&self.conn);
    }
}
