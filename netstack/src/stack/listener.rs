//! Listeners and their bounded accept queues.
//!
//! The listen table (`pcb::ListenTable`) finds a listener for a segment; this
//! module keeps what the Stack adds to it: the accept queue of completed
//! connections waiting for `accept`, bounded by one limit for every listener
//! that an operator may move while running ([`Stack::set_accept_queue_limit`]).
//! Each queued connection holds an
//! [`InFlight`] count on its listener, so the listener cannot finish closing
//! under it. Invariant: **a connection is pushed only onto a queue holding
//! fewer than the limit in force (so a queue is over the limit only after the
//! limit was lowered, and then only shrinks); a final ACK that finds it full
//! is dropped before the SYN cache sees it**, so the
//! SYN-cache entry survives, the SYN-ACK is retransmitted, and the peer's next
//! ACK completes the handshake once `accept` has made room (Linux's
//! behaviour: nothing is lost, only delayed). And: **once `close_listener`
//! has emptied a queue, nothing is pushed into it again** — the queue is
//! marked closed under its own lock, so a worker that fetched the state
//! before the close (and so still holds an in-flight count) drops that count
//! and resets the peer instead of parking it where nobody would ever release
//! it (which would hang `ListenTable::close`, waiting for that count).

use core::fmt;
use core::net::{IpAddr, SocketAddr};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use pcb::{InFlight, ListenOptions, Listener};

use super::{ConnHandle, Stack};

/// A listening socket, as the application holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerHandle {
    id: u64,
    local: SocketAddr,
}

impl ListenerHandle {
    /// The address and port listened on (unspecified address: every address).
    pub fn local(&self) -> SocketAddr {
        self.local
    }
}

/// Why `listen` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenError {
    /// The address is neither unspecified nor one this stack owns.
    AddrNotAvailable(IpAddr),
    /// Port zero cannot be listened on.
    PortZero,
    /// Another listener has this address and port.
    AddrInUse(SocketAddr),
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenError::AddrNotAvailable(a) => write!(
                f,
                "{a} is not an address of this stack: listen on one of its addresses or on \
                 the unspecified address"
            ),
            ListenError::PortZero => f.write_str("cannot listen on port 0: choose a port"),
            ListenError::AddrInUse(a) => {
                write!(f, "{a} already has a listener: close it first")
            }
        }
    }
}

impl std::error::Error for ListenError {}

/// One listener's state beside the listen table.
#[derive(Debug)]
pub(crate) struct ListenerState {
    /// Taken by `close_listener`.
    listener: Mutex<Option<Listener>>,
    /// Completed connections, each holding an in-flight count on the listener.
    pub(crate) queue: Mutex<AcceptQueue>,
}

/// The accept queue and whether `close_listener` has emptied it for good.
#[derive(Debug, Default)]
pub(crate) struct AcceptQueue {
    pub(crate) waiting: VecDeque<(ConnHandle, InFlight)>,
    /// Set by `close_listener` in the same critical section that empties
    /// `waiting`; a worker holding the lock checks it before pushing.
    pub(crate) closed: bool,
}

impl ListenerState {
    pub(crate) fn queue(&self) -> MutexGuard<'_, AcceptQueue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Listener id to its state.
#[derive(Debug, Default)]
pub(crate) struct Listeners {
    map: RwLock<HashMap<u64, Arc<ListenerState>, IdHash>>,
}

/// The hash of a listener id: a multiply by 2^64/φ (Fibonacci hashing), so
/// sequential ids spread over the whole word. Every final ACK looks its
/// listener up here, so std's SipHash would be a keyed hash on the input
/// path for nothing: ids are handed out by the listen table, not chosen by
/// peers.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdHash;

/// The [`Hasher`](core::hash::Hasher) of [`IdHash`]: takes one `u64`.
#[derive(Debug, Default)]
pub(crate) struct IdHasher(u64);

impl core::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `u64` keys; kept correct for any other key anyway.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0 ^ id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl core::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

impl Listeners {
    pub(crate) fn get(&self, id: u64) -> Option<Arc<ListenerState>> {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }
}

impl Stack {
    /// Listens on `addr` (an address of ours, or unspecified for all of them).
    pub fn listen(&self, addr: SocketAddr) -> Result<ListenerHandle, ListenError> {
        if addr.port() == 0 {
            return Err(ListenError::PortZero);
        }
        let local = if addr.ip().is_unspecified() {
            None
        } else if self.owns(addr.ip()) {
            Some(addr.ip())
        } else {
            return Err(ListenError::AddrNotAvailable(addr.ip()));
        };
        let listener = self
            .listen_table
            .listen(local, addr.port(), ListenOptions::default())
            .map_err(|_| ListenError::AddrInUse(addr))?;
        let id = listener.id();
        let state = Arc::new(ListenerState {
            listener: Mutex::new(Some(listener)),
            queue: Mutex::new(AcceptQueue::default()),
        });
        self.listeners
            .map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, state);
        Ok(ListenerHandle { id, local: addr })
    }

    /// The next completed connection on `listener`, if any.
    pub fn accept(&self, listener: &ListenerHandle) -> Option<ConnHandle> {
        let state = self.listeners.get(listener.id)?;
        loop {
            let (handle, in_flight) = state.queue().waiting.pop_front()?;
            drop(in_flight);
            // A connection reset while it waited is gone; skip it.
            if self.state_of(&handle).is_some() {
                return Some(handle);
            }
        }
    }

    /// Completed handshakes each listener may queue for `accept`, now.
    pub fn accept_queue_limit(&self) -> usize {
        // Relaxed: the limit guards no data; the queue's lock orders each
        // fullness check with its push, and a final ACK racing a change may
        // be judged by either value.
        self.accept_queue_limit.load(Ordering::Relaxed)
    }

    /// Moves every listener's accept-queue limit while running (zero is
    /// taken as one). Raised: the next final ACK may queue. Lowered: the
    /// connections already queued over it stay until `accept` takes them
    /// (none is reset); until the queue is below the new limit each final
    /// ACK is dropped and counted (`listen_queue_overflow`), its SYN-cache
    /// entry kept so the peer's retransmission completes it later.
    pub fn set_accept_queue_limit(&self, limit: usize) {
        // Relaxed: see `accept_queue_limit`.
        self.accept_queue_limit
            .store(limit.max(1), Ordering::Relaxed);
    }

    /// Completed connections waiting on `listener`.
    pub fn accept_queue_len(&self, listener: &ListenerHandle) -> usize {
        self.listeners
            .get(listener.id)
            .map_or(0, |s| s.queue().waiting.len())
    }

    /// Stops listening: resets the connections nobody accepted, forgets the
    /// half-open handshakes, and unpublishes the listener.
    pub fn close_listener(&self, listener: ListenerHandle) {
        let Some(state) = self
            .listeners
            .map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&listener.id)
        else {
            return;
        };
        let waiting: Vec<_> = {
            let mut queue = state.queue();
            queue.closed = true;
            queue.waiting.drain(..).collect()
        };
        for (handle, in_flight) in waiting {
            let _ = self.abort(&handle);
            drop(in_flight);
        }
        #[cfg(test)]
        self.hooks.at(super::test_hooks::Point::AcceptQueueDrained);
        self.syncache.drain_listener(listener.id);
        let pcb_listener = state
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(l) = pcb_listener {
            // `close` waits for in-flight handshakes; ours are all released.
            let _ = self.listen_table.close(l);
        }
    }
}
