//! The listen table: where a SYN that matches no connection finds its
//! listener, by local port, a listener bound to the segment's local address
//! before a wildcard one; listeners sharing an address and port form a
//! load-balancing group (one per worker), and the flow's keyed hash picks the
//! member. Listeners drain in the spirit of NetBSD's `localcount_trydrain`.
//!
//! Invariant: **a listener is freed only after it is unpublished, a grace
//! period has passed, and its in-flight count is zero with new acquisitions
//! refused.** So a [`ListenRef`] (valid inside its read section) and an
//! [`InFlight`] (a counted reference, valid anywhere) never see it gone.
//!
//! Structure: `buckets[port % 256]` points to an immutable, sorted vector of
//! the listeners whose port falls there. Readers load the pointer (Acquire)
//! inside a read section and scan; writers, serialised by `writer`, build a
//! new vector, publish it (Release swap), wait a grace period
//! (`Domain::synchronize`) and free the old one. Listens and closes are rare
//! administrative events, so their grace-period wait is affordable and the
//! SYN path stays lock-free.
//!
//! Drain: each listener has one in-flight counter whose top bit is
//! `DRAINING`. The stack acquires a counted reference for every handshake it
//! completes and every connection waiting in the accept queue
//! ([`ListenRef::acquire`], inside the section that found the listener), and
//! drops it when the handshake fails or the connection is accepted. Acquire
//! is one `fetch_add`; if `DRAINING` was set it backs out and fails.
//! `try_close` sets `DRAINING` with one `fetch_or`; if the count it saw was
//! non-zero it clears the bit again and answers [`CloseError::Busy`] (the
//! listener was never unpublished and stays fully usable; a SYN that raced
//! the refused attempt may have been dropped, and its peer retransmits). If
//! the count was zero, no acquisition can succeed any more (every later
//! `fetch_add` sees the bit), so it unpublishes and succeeds. `close` sets the
//! bit, unpublishes, and waits for the count to reach zero. One counter per
//! listener, not per CPU as localcount has: listeners are few and the
//! counter is touched once per handshake, not per segment.

use crate::hash::FlowHash;
use crate::pcb::PcbRef;
use crate::table::Table;
use crate::tuple::{FourTuple, Key};
use smr::{Domain, ReadSection};
use std::fmt;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::ptr;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

const BUCKETS: usize = 256;
const DRAINING: usize = 1 << (usize::BITS - 1);

/// How a listener is bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenOptions {
    /// Join (or found) a load-balancing group with other listeners on the
    /// same address and port that also set this (`SO_REUSEPORT_LB`).
    pub lb_group: bool,
}

/// Why a listen was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenError {
    /// Another listener has this address and port, and not both are in a
    /// load-balancing group.
    AddrInUse { local: Option<IpAddr>, port: u16 },
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenError::AddrInUse { local, port } => {
                let addr = local.map_or_else(|| "*".to_owned(), |a| a.to_string());
                write!(
                    f,
                    "address {addr} port {port} already has a listener: close it first, or \
                     bind every listener on it with ListenOptions {{ lb_group: true }}"
                )
            }
        }
    }
}

impl std::error::Error for ListenError {}

/// Why a close was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseError {
    /// Handshakes or accepts are in flight; the listener is untouched and
    /// still listening. Retry later, or use `close` to wait for them.
    Busy { in_flight: usize },
    /// The listener is already closed.
    Closed,
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseError::Busy { in_flight } => write!(
                f,
                "listener busy: {in_flight} handshake(s) or accept(s) in flight; it is still \
                 listening. Retry later, or call close() to wait for them"
            ),
            CloseError::Closed => f.write_str("listener already closed"),
        }
    }
}

impl std::error::Error for CloseError {}

struct ListenerInner {
    id: u64,
    local: Option<IpAddr>,
    port: u16,
    lb_group: bool,
    /// In-flight count, top bit `DRAINING`.
    in_flight: AtomicUsize,
    closed: AtomicBool,
    /// Where `close` waits for the count to reach zero.
    drained: (Mutex<()>, Condvar),
}

impl ListenerInner {
    fn matches(&self, syn: &FourTuple) -> bool {
        self.port == syn.local.port && self.local.is_none_or(|a| a == syn.local.addr)
    }

    /// Sort order of a bucket: by port, bound before wildcard, then address
    /// and age, so the first match is the best and a group is contiguous.
    fn order(&self) -> (u16, bool, Option<IpAddr>, u64) {
        (self.port, self.local.is_none(), self.local, self.id)
    }

    fn same_group(&self, other: &ListenerInner) -> bool {
        self.port == other.port && self.local == other.local && self.lb_group && other.lb_group
    }

    fn release(&self) {
        // Release: the in-flight work happens before `close` sees zero
        // (pairs with its Acquire load).
        let prev = self.in_flight.fetch_sub(1, Release);
        if prev == DRAINING | 1 {
            // The last one out while draining: wake `close`. Taking the
            // mutex orders this after the waiter's check (no lost wakeup).
            let _g = self
                .drained
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.drained.1.notify_all();
        }
    }
}

type Bucket = Vec<Arc<ListenerInner>>;

/// The listen table. See the module docs.
pub struct ListenTable {
    domain: Arc<Domain>,
    hash: FlowHash,
    buckets: Box<[AtomicPtr<Bucket>]>,
    /// Serialises writers (listen, close).
    writer: Mutex<()>,
    next_id: AtomicU64,
}

impl fmt::Debug for ListenTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenTable").finish_non_exhaustive()
    }
}

/// A bound listener: the handle the socket layer keeps. Close it with
/// [`ListenTable::close`] or [`ListenTable::try_close`]; dropping the handle
/// leaves it listening.
#[derive(Debug)]
#[must_use = "a listener stays in the table until closed"]
pub struct Listener {
    inner: Arc<ListenerInner>,
}

impl fmt::Debug for ListenerInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("id", &self.id)
            .field("local", &self.local)
            .field("port", &self.port)
            .finish()
    }
}

impl Listener {
    /// The listener's identity (what the stack maps to its socket).
    pub fn id(&self) -> u64 {
        self.inner.id
    }
}

/// A listener found inside a read section (`'g`).
pub struct ListenRef<'g> {
    inner: &'g Arc<ListenerInner>,
    _section: PhantomData<&'g ReadSection<'g>>,
}

impl ListenRef<'_> {
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Whether the listener has started closing (new acquisitions fail).
    /// A plain load, for a caller that need not hold the listener (a SYN
    /// answered from the SYN cache or with a cookie): it writes nothing, so
    /// a flood of such callers shares the counter's line read-only.
    pub fn is_closing(&self) -> bool {
        // Relaxed: advisory. A caller that misses a concurrent close acts as
        // if it had run just before it; nothing it does depends on the
        // listener staying alive (it holds no reference beyond the section).
        self.inner.in_flight.load(Relaxed) & DRAINING != 0
    }

    /// Count a handshake or accept in flight on this listener; `None` if it
    /// is closing. The reference may leave the section and the thread.
    pub fn acquire(&self) -> Option<InFlight> {
        // Acquire: pairs with nothing the acquirer needs; one RMW on the
        // counter orders us against `try_close`'s `fetch_or` either way
        // (all RMWs on one atomic are totally ordered).
        let prev = self.inner.in_flight.fetch_add(1, Acquire);
        if prev & DRAINING != 0 {
            self.inner.release();
            return None;
        }
        Some(InFlight {
            inner: self.inner.clone(),
        })
    }
}

/// A counted reference to a listener: one handshake or accept in flight.
/// `try_close` answers `Busy` while any exists; `close` waits for all.
#[derive(Debug)]
pub struct InFlight {
    inner: Arc<ListenerInner>,
}

impl InFlight {
    pub fn listener_id(&self) -> u64 {
        self.inner.id
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.inner.release();
    }
}

/// What a segment's lookup found.
pub enum Found<'t, 'g, T: Send + 'static> {
    /// An established (or synchronising) connection.
    Connection(PcbRef<'t, 'g, T>),
    /// No connection; a listener on the local port.
    Listener(ListenRef<'g>),
    /// Neither.
    Nothing,
}

impl ListenTable {
    /// An empty listen table whose readers enter `domain` (the exact
    /// table's), choosing LB-group members with `hash`.
    pub fn new(domain: Arc<Domain>, hash: FlowHash) -> ListenTable {
        ListenTable {
            domain,
            hash,
            buckets: (0..BUCKETS)
                .map(|_| AtomicPtr::new(Box::into_raw(Box::default())))
                .collect(),
            writer: Mutex::new(()),
            next_id: AtomicU64::new(1),
        }
    }

    fn bucket(&self, port: u16) -> &AtomicPtr<Bucket> {
        &self.buckets[usize::from(port) % BUCKETS]
    }

    /// Bind a listener on `local` (`None`: every local address) and `port`.
    pub fn listen(
        &self,
        local: Option<IpAddr>,
        port: u16,
        opts: ListenOptions,
    ) -> Result<Listener, ListenError> {
        let _w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let inner = Arc::new(ListenerInner {
            // Relaxed: a unique number, nothing published with it.
            id: self.next_id.fetch_add(1, Relaxed),
            local,
            port,
            lb_group: opts.lb_group,
            in_flight: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            drained: (Mutex::new(()), Condvar::new()),
        });
        let slot = self.bucket(port);
        // Relaxed: we are the only writer (the writer lock).
        // SAFETY: bucket pointers always point to a live vector, freed only
        // by writers, and we are the writer.
        let cur = unsafe { &*slot.load(Relaxed) };
        if cur
            .iter()
            .any(|l| l.port == port && l.local == local && !l.same_group(&inner))
        {
            return Err(ListenError::AddrInUse { local, port });
        }
        let mut next = cur.clone();
        next.push(inner.clone());
        next.sort_by_key(|l| l.order());
        self.replace(slot, next);
        Ok(Listener { inner })
    }

    /// Publish `next` in `slot`, wait for readers of the old vector, free it.
    /// Caller holds the writer lock.
    fn replace(&self, slot: &AtomicPtr<Bucket>, next: Bucket) {
        // Release: pairs with the Acquire load in `lookup`, so readers see
        // the vector's contents.
        let old = slot.swap(Box::into_raw(Box::new(next)), Release);
        self.domain.synchronize();
        // SAFETY: `old` came from `Box::into_raw` and is unreachable: it was
        // swapped out before the grace period that just passed, so no
        // section that could have loaded it is still open.
        drop(unsafe { Box::from_raw(old) });
    }

    fn unpublish(&self, l: &ListenerInner) {
        let slot = self.bucket(l.port);
        // Relaxed / SAFETY: as in `listen`, we hold the writer lock.
        let cur = unsafe { &*slot.load(Relaxed) };
        let next: Bucket = cur.iter().filter(|x| x.id != l.id).cloned().collect();
        self.replace(slot, next);
    }

    /// The listener for a SYN with this tuple: bound to its local address
    /// before wildcard; within a load-balancing group, the member chosen by
    /// the flow's keyed hash. Lock-free, no stores.
    pub fn lookup<'g>(
        &self,
        section: &'g ReadSection<'_>,
        syn: &FourTuple,
    ) -> Option<ListenRef<'g>> {
        assert!(
            ptr::eq(section.domain(), &*self.domain),
            "pcb::ListenTable: the read section belongs to another SMR domain"
        );
        // Acquire: pairs with the Release swap in `replace`.
        let p = self.bucket(syn.local.port).load(Acquire);
        // SAFETY: loaded inside `section`; a vector is freed only after a
        // grace period that began after it was swapped out, so it outlives
        // this section ('g).
        let listeners: &'g Bucket = unsafe { &*p };
        let first = listeners.iter().position(|l| l.matches(syn))?;
        let head = &listeners[first];
        let group = listeners[first..]
            .iter()
            .take_while(|l| l.id == head.id || l.same_group(head))
            .count();
        let pick = if group > 1 {
            (self.hash.key(&Key::from(syn)) % group as u64) as usize
        } else {
            0
        };
        Some(ListenRef {
            inner: &listeners[first + pick],
            _section: PhantomData,
        })
    }

    /// A segment's whole lookup: the exact table, then (for a SYN) the
    /// listeners.
    pub fn find<'t, 'g, T: Send + 'static>(
        &self,
        exact: &'t Table<T>,
        section: &'g ReadSection<'_>,
        tuple: &FourTuple,
        syn: bool,
    ) -> Found<'t, 'g, T> {
        if let Some(c) = exact.lookup(section, tuple) {
            return Found::Connection(c);
        }
        match syn.then(|| self.lookup(section, tuple)).flatten() {
            Some(l) => Found::Listener(l),
            None => Found::Nothing,
        }
    }

    /// Close the listener if nothing is in flight on it; otherwise leave it
    /// listening and answer `Busy`.
    pub fn try_close(&self, listener: &Listener) -> Result<(), CloseError> {
        let _w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let l = &listener.inner;
        // Relaxed: written only under the writer lock we hold.
        if l.closed.load(Relaxed) {
            return Err(CloseError::Closed);
        }
        // AcqRel: from here on every acquire sees DRAINING; Acquire pairs
        // with the releases' Release so their work happened before.
        let prev = l.in_flight.fetch_or(DRAINING, AcqRel);
        if prev != 0 {
            // Undo: the listener stays published and usable.
            l.in_flight.fetch_and(!DRAINING, AcqRel);
            return Err(CloseError::Busy { in_flight: prev });
        }
        self.unpublish(l);
        // Relaxed: read only under the writer lock.
        l.closed.store(true, Relaxed);
        Ok(())
    }

    /// Close the listener: refuse new handshakes at once, unpublish it, and
    /// wait until every in-flight handshake and accept has finished.
    pub fn close(&self, listener: Listener) -> Result<(), CloseError> {
        let _w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let l = &listener.inner;
        // Relaxed: as in `try_close`.
        if l.closed.load(Relaxed) {
            return Err(CloseError::Closed);
        }
        // AcqRel: as in `try_close`.
        l.in_flight.fetch_or(DRAINING, AcqRel);
        self.unpublish(l);
        // Relaxed: as in `try_close`.
        l.closed.store(true, Relaxed);
        // Other listens and closes need not wait for our stragglers.
        drop(_w);
        let (m, cv) = &l.drained;
        let mut g = m.lock().unwrap_or_else(PoisonError::into_inner);
        // Acquire: pairs with the Release decrement in `release`.
        while l.in_flight.load(Acquire) != DRAINING {
            g = cv.wait(g).unwrap_or_else(PoisonError::into_inner);
        }
        Ok(())
    }
}

impl Drop for ListenTable {
    fn drop(&mut self) {
        for b in self.buckets.iter() {
            // SAFETY: `&mut self`: no reader is left; each pointer came from
            // `Box::into_raw`.
            drop(unsafe { Box::from_raw(b.load(Relaxed)) });
        }
    }
}
