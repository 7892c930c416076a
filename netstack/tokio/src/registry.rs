//! Who waits on what: the wakers of open streams, by connection, and of
//! listeners, by address.
//!
//! Locking: a shard lock is held only to find or insert a stream's
//! [`ConnSlot`]; wakers are stored and taken under the slot's own lock and
//! woken after it is released. Bounded: one slot per open [`TcpStream`]
//! (removed on drop), one entry per open [`TcpListener`].
//!
//! [`TcpStream`]: crate::TcpStream
//! [`TcpListener`]: crate::TcpListener

use core::net::SocketAddr;
use core::task::Waker;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use netstack::{ConnHandle, Events};

use crate::relay::Relay;

const SHARDS: usize = 16;

/// Events that can unblock a reader / a writer.
const READ_EVENTS: u8 = Events::READABLE.bits()
    | Events::PEER_CLOSED.bits()
    | Events::CLOSED.bits()
    | Events::RESET.bits();
const WRITE_EVENTS: u8 = Events::WRITABLE.bits()
    | Events::CONNECTED.bits()
    | Events::CLOSED.bits()
    | Events::RESET.bits();

/// What one stream's tasks wait on.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    pub(crate) read: Option<Waker>,
    pub(crate) write: Option<Waker>,
    /// The CLOSED/RESET/REFUSED/TIMED_OUT bits seen: why the connection
    /// ended, kept for after the stack has reaped it.
    pub(crate) ended: Events,
}

/// One open stream's entry.
#[derive(Debug, Default)]
pub(crate) struct ConnSlot {
    waiters: Mutex<Waiters>,
}

impl ConnSlot {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One open listener's entry.
#[derive(Debug)]
pub(crate) struct ListenSlot {
    pub(crate) local: SocketAddr,
    pub(crate) id: u64,
    accept: Mutex<Option<Waker>>,
}

impl ListenSlot {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Option<Waker>> {
        self.accept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn serves(&self, local: SocketAddr) -> bool {
        self.local.port() == local.port()
            && (self.local.ip().is_unspecified() || self.local.ip() == local.ip())
    }
}

/// Open streams by connection, one shard of them.
type Shard = Mutex<HashMap<ConnHandle, Arc<ConnSlot>>>;

/// Every waiter of one [`crate::Net`].
#[derive(Debug)]
pub(crate) struct Registry {
    shards: Box<[Shard]>,
    listeners: Mutex<Vec<Arc<ListenSlot>>>,
    /// Where the wakers taken here go (direct unless a relay runs).
    pub(crate) relay: Arc<Relay>,
}

fn shard_of(conn: &ConnHandle) -> usize {
    let (l, r) = (conn.local().port(), conn.remote().port());
    usize::from(l ^ r.rotate_left(7)) % SHARDS
}

impl Registry {
    pub(crate) fn new() -> Registry {
        Registry {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            listeners: Mutex::default(),
            relay: Arc::default(),
        }
    }

    fn shard(&self, conn: &ConnHandle) -> MutexGuard<'_, HashMap<ConnHandle, Arc<ConnSlot>>> {
        self.shards[shard_of(conn)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, conn: ConnHandle) -> Arc<ConnSlot> {
        let slot = Arc::new(ConnSlot::default());
        self.shard(&conn).insert(conn, Arc::clone(&slot));
        slot
    }

    pub(crate) fn remove(&self, conn: &ConnHandle) {
        self.shard(conn).remove(conn);
    }

    pub(crate) fn streams(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    pub(crate) fn add_listener(&self, local: SocketAddr, id: u64) -> Arc<ListenSlot> {
        let slot = Arc::new(ListenSlot {
            local,
            id,
            accept: Mutex::new(None),
        });
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&slot));
        slot
    }

    pub(crate) fn remove_listener(&self, id: u64) {
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|l| l.id != id);
    }

    /// Wakes whoever `events` on `conn` may unblock. Returns whether a
    /// stream or listener of this registry owns the connection.
    pub(crate) fn on_event(&self, conn: &ConnHandle, events: Events) -> bool {
        let slot = self.shard(conn).get(conn).cloned();
        let Some(slot) = slot else {
            return self.wake_listener(conn);
        };
        let bits = events.bits();
        let (read, write) = {
            let mut w = slot.lock();
            if events.contains(Events::CLOSED) || events.contains(Events::RESET) {
                w.ended |= events;
            }
            let read = if bits & READ_EVENTS != 0 {
                w.read.take()
            } else {
                None
            };
            let write = if bits & WRITE_EVENTS != 0 {
                w.write.take()
            } else {
                None
            };
            (read, write)
        };
        if let Some(r) = read {
            self.relay.wake(r);
        }
        if let Some(w) = write {
            self.relay.wake(w);
        }
        true
    }

    /// An event on a connection no stream holds yet: it may be one a
    /// listener has queued for `accept`.
    fn wake_listener(&self, conn: &ConnHandle) -> bool {
        let local = conn.local();
        let found = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|l| l.serves(local))
            .cloned();
        let Some(listener) = found else {
            return false;
        };
        let waker = listener.lock().take();
        if let Some(w) = waker {
            self.relay.wake(w);
        }
        true
    }
}
