//! [`TcpListener`]: a listening socket whose `accept` waits for the
//! stack's completed handshakes.

use core::net::SocketAddr;
use core::task::{Context, Poll};
use std::io;
use std::sync::Arc;

use netstack::ListenerHandle;

use crate::error::listen_error;
use crate::net::Net;
use crate::registry::ListenSlot;
use crate::stream::TcpStream;

/// A listener on the stack. Dropping it stops listening (connections not
/// yet accepted are reset), unless it was made with
/// [`from_handle`](Self::from_handle).
#[derive(Debug)]
pub struct TcpListener {
    net: Net,
    handle: ListenerHandle,
    slot: Arc<ListenSlot>,
    owned: bool,
}

/// Distinguishes listeners in the registry (a `ListenerHandle`'s id is
/// private to the stack).
fn listener_key(h: &ListenerHandle) -> u64 {
    use core::hash::{Hash, Hasher};
    let mut s = std::hash::DefaultHasher::new();
    h.hash(&mut s);
    s.finish()
}

impl TcpListener {
    /// Listens on `addr` (an address of the stack, or unspecified for all).
    pub fn bind(net: &Net, addr: SocketAddr) -> io::Result<TcpListener> {
        let handle = net.stack().listen(addr).map_err(listen_error)?;
        Ok(TcpListener::with(net, handle, true))
    }

    /// Accepts from a listener someone else opened and will close (the
    /// daemon's configured listeners).
    pub fn from_handle(net: &Net, handle: ListenerHandle) -> TcpListener {
        TcpListener::with(net, handle, false)
    }

    fn with(net: &Net, handle: ListenerHandle, owned: bool) -> TcpListener {
        let slot = net
            .inner
            .registry
            .add_listener(handle.local(), listener_key(&handle));
        TcpListener {
            net: net.clone(),
            handle,
            slot,
            owned,
        }
    }

    /// The next connection and its peer's address. Cancel-safe: a dropped
    /// `accept` future has taken nothing from the queue.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        core::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next connection. One waker per listener: with several
    /// tasks accepting on it, the last to poll is woken.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let mut registered = false;
        loop {
            if let Some(conn) = self.net.stack().accept(&self.handle) {
                let stream = TcpStream::new(self.net.clone(), conn);
                return Poll::Ready(Ok((stream, conn.remote())));
            }
            if registered {
                return Poll::Pending;
            }
            let mut w = self.slot.lock();
            match &*w {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => *w = Some(cx.waker().clone()),
            }
            drop(w);
            registered = true;
        }
    }

    /// The address listened on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.handle.local())
    }

    /// The stack's handle of this listener.
    pub fn handle(&self) -> ListenerHandle {
        self.handle
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        self.net.inner.registry.remove_listener(self.slot.id);
        if self.owned {
            self.net.stack().close_listener(self.handle);
        }
    }
}
