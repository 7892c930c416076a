//! The application side: connect, read, write, close, abort, events.
//!
//! A [`ConnHandle`] names a connection by its 4-tuple and a stack-wide
//! connection number, never by pointer: a handle
//! to a connection that has since closed (and whose tuple may have been
//! reused) fails with [`AppError::Gone`] instead of reaching the newcomer.
//! Every call locks the PCB, acts on the TCB, and then does what the input
//! path does after a segment (events, timer, ready list), so output the call
//! causes leaves through the connection's home worker. Inside a worker's
//! turn, [`ConnTurn`](super::ConnTurn) (`turn.rs`) does the same on the
//! connection it holds locked, without the lookup.

use core::fmt;
use core::net::{IpAddr, SocketAddr};

use pcb::{FourTuple, InsertError, PortError};

use super::Stack;
use super::conn::{Conn, ConnState};
use super::table::ConnGuard;
use super::worker::EventEntry;
use crate::tcp::conn::{ConnError, Events, State, Tcb};
use crate::time::Instant;

/// A connection, as the application names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnHandle {
    pub(crate) tuple: FourTuple,
    pub(crate) id: u64,
}

impl ConnHandle {
    /// Our address and port.
    pub fn local(&self) -> SocketAddr {
        SocketAddr::new(self.tuple.local.addr, self.tuple.local.port)
    }

    /// The peer's address and port.
    pub fn remote(&self) -> SocketAddr {
        SocketAddr::new(self.tuple.foreign.addr, self.tuple.foreign.port)
    }
}

/// Why an application call on a connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppError {
    /// The connection refused the call (would block, reset, closed, ...).
    Conn(ConnError),
    /// The connection no longer exists: it closed and was reaped, or is in
    /// TIME-WAIT, or the handle names an earlier connection on this tuple.
    Gone,
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Conn(e) => e.fmt(f),
            AppError::Gone => f.write_str(
                "the connection no longer exists (closed and reaped, or the handle is stale); \
                 drop the handle",
            ),
        }
    }
}

impl std::error::Error for AppError {}

impl From<ConnError> for AppError {
    fn from(e: ConnError) -> AppError {
        AppError::Conn(e)
    }
}

/// Why `connect` failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// We own no address of the remote's family (or `local` is not ours).
    NoLocalAddress(SocketAddr),
    /// No worker with this index.
    NoSuchWorker(usize),
    /// No ephemeral port is free towards this destination.
    Ports(PortError),
    /// `connect_from`: this exact connection already exists.
    AddrInUse(SocketAddr),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::NoLocalAddress(r) => write!(
                f,
                "no local address of this stack can reach {r}: add an address of its family \
                 or pass one the stack owns"
            ),
            ConnectError::NoSuchWorker(w) => {
                write!(
                    f,
                    "worker {w} does not exist: use an index below StackConfig::workers"
                )
            }
            ConnectError::Ports(e) => e.fmt(f),
            ConnectError::AddrInUse(l) => write!(
                f,
                "a connection from {l} to that peer already exists: use another local port"
            ),
        }
    }
}

impl std::error::Error for ConnectError {}

impl Stack {
    /// Opens a connection to `remote` from `local` (or the stack's first
    /// address of the same family), on an RFC 6056 ephemeral port. Worker
    /// `worker` becomes its home: its `poll_transmit` sends the SYN.
    pub fn connect(
        &self,
        now: Instant,
        worker: usize,
        local: Option<IpAddr>,
        remote: SocketAddr,
    ) -> Result<ConnHandle, ConnectError> {
        if worker >= self.workers.len() {
            return Err(ConnectError::NoSuchWorker(worker));
        }
        let local_ip = match local {
            Some(ip) if self.owns(ip) && ip.is_ipv4() == remote.is_ipv4() => ip,
            Some(_) => return Err(ConnectError::NoLocalAddress(remote)),
            None => *self
                .cfg
                .addresses
                .iter()
                .find(|a| a.is_ipv4() == remote.is_ipv4())
                .ok_or(ConnectError::NoLocalAddress(remote))?,
        };
        let tuple = self
            .table
            .connect(
                &self.ports,
                local_ip,
                remote.into(),
                Conn::new(ConnState::Reserved, self.next_conn_id(), worker),
            )
            .map_err(ConnectError::Ports)?;
        self.start_connect(now, worker, tuple)
    }

    /// Opens a connection from exactly `local` (address and port) to `remote`,
    /// as a simultaneous open or a reconnect from a known port needs.
    pub fn connect_from(
        &self,
        now: Instant,
        worker: usize,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<ConnHandle, ConnectError> {
        if worker >= self.workers.len() {
            return Err(ConnectError::NoSuchWorker(worker));
        }
        if !self.owns(local.ip()) || local.is_ipv4() != remote.is_ipv4() || local.port() == 0 {
            return Err(ConnectError::NoLocalAddress(remote));
        }
        let tuple = FourTuple::new(local, remote);
        match self.table.insert(
            &tuple,
            Conn::new(ConnState::Reserved, self.next_conn_id(), worker),
        ) {
            Ok(()) => self.start_connect(now, worker, tuple),
            Err(InsertError::Duplicate(_)) => Err(ConnectError::AddrInUse(local)),
            Err(InsertError::Exhausted) => Err(ConnectError::Ports(PortError::NoPcb)),
        }
    }

    /// Turns a reserved tuple into a TCB in SYN-SENT.
    fn start_connect(
        &self,
        now: Instant,
        worker: usize,
        tuple: FourTuple,
    ) -> Result<ConnHandle, ConnectError> {
        let local = SocketAddr::new(tuple.local.addr, tuple.local.port);
        let remote = SocketAddr::new(tuple.foreign.addr, tuple.foreign.port);
        let mib = self.mib_of(worker);
        let Some(mut guard) = self.lock_tuple(&tuple) else {
            // Only a concurrent abort of a handle nobody has yet could do this.
            return Err(ConnectError::Ports(PortError::NoPcb));
        };
        let iss = self.isn.isn(local, remote, now);
        let tcb = Tcb::connect(&self.cfg.tcp, local, remote, iss, now, mib);
        guard.state = ConnState::Tcb(Box::new(tcb));
        let handle = ConnHandle {
            tuple,
            id: guard.id,
        };
        self.touch(&mut guard);
        Ok(handle)
    }

    /// Locks the handle's connection if it is still the same one.
    fn lock_handle(&self, handle: &ConnHandle) -> Option<ConnGuard<'_>> {
        let guard = self.lock_tuple(&handle.tuple)?;
        (guard.id == handle.id).then_some(guard)
    }

    /// Runs `f` on the handle's TCB and then does the after-touch work.
    fn with_tcb<R>(
        &self,
        handle: &ConnHandle,
        f: impl FnOnce(&mut Tcb) -> Result<R, ConnError>,
    ) -> Result<R, AppError> {
        let mut guard = self.lock_handle(handle).ok_or(AppError::Gone)?;
        let ConnState::Tcb(tcb) = &mut guard.state else {
            return Err(AppError::Gone);
        };
        let out = f(tcb);
        self.touch(&mut guard);
        Ok(out?)
    }

    /// Reads received data; `Ok(0)` is end of stream (the peer closed).
    pub fn read(&self, handle: &ConnHandle, buf: &mut [u8]) -> Result<usize, AppError> {
        self.with_tcb(handle, |tcb| tcb.recv(buf))
    }

    /// Queues data to send; returns how much fit in the send buffer.
    pub fn write(&self, handle: &ConnHandle, data: &[u8]) -> Result<usize, AppError> {
        self.with_tcb(handle, |tcb| tcb.send(data))
    }

    /// Closes our sending side: FIN after the queued data.
    pub fn close(&self, handle: &ConnHandle) -> Result<(), AppError> {
        self.with_tcb(handle, |tcb| {
            tcb.close();
            Ok(())
        })
    }

    /// Resets the connection.
    pub fn abort(&self, handle: &ConnHandle) -> Result<(), AppError> {
        self.with_tcb(handle, |tcb| {
            tcb.abort();
            Ok(())
        })
    }

    /// Turns Nagle's algorithm on or off for this connection.
    pub fn set_nagle(&self, handle: &ConnHandle, on: bool) -> Result<(), AppError> {
        self.with_tcb(handle, |tcb| {
            tcb.set_nagle(on);
            Ok(())
        })
    }

    /// Turns keepalive probing on or off for this connection.
    pub fn set_keepalive(&self, handle: &ConnHandle, on: bool) -> Result<(), AppError> {
        self.with_tcb(handle, |tcb| {
            tcb.set_keepalive(on);
            Ok(())
        })
    }

    /// The connection's RFC 9293 state; `None` once it is gone.
    pub fn state_of(&self, handle: &ConnHandle) -> Option<State> {
        let guard = self.lock_handle(handle)?;
        match &guard.state {
            ConnState::Reserved => Some(State::Closed),
            ConnState::Tcb(tcb) => Some(tcb.state()),
            ConnState::TimeWait(_) => Some(State::TimeWait),
        }
    }

    /// The error that ended the connection, if it is still in the table.
    pub fn error_of(&self, handle: &ConnHandle) -> Option<ConnError> {
        let guard = self.lock_handle(handle)?;
        match &guard.state {
            ConnState::Tcb(tcb) => tcb.error(),
            _ => None,
        }
    }

    /// The next connection of worker `worker`'s with events for the
    /// application, and the events (cleared by this call). Outside a turn:
    /// each call on the handle afterwards looks the connection up again;
    /// a worker's own thread does better with [`Worker::poll_events`].
    pub fn poll_events(&self, worker: usize) -> Option<(ConnHandle, Events)> {
        loop {
            let entry = self.queues(worker).events.pop_front()?;
            let (handle, pin) = match entry {
                EventEntry::Final(handle, events) => return Some((handle, events)),
                EventEntry::Live(handle, pin) => (handle, pin),
            };
            let Some(mut guard) = self.table.unpin(pin) else {
                continue;
            };
            guard.event_queued = false;
            let events = core::mem::take(&mut guard.events);
            if !events.is_empty() {
                return Some((handle, events));
            }
        }
    }
}
