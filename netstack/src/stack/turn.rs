//! The application's turn on a connection: [`Worker::poll_events`] pops the
//! next connection with events from the worker's event list, locks it
//! through the entry's pin (no table lookup, no read section), and hands the
//! application a [`ConnTurn`] for the duration of one closure call. Read,
//! write and close inside the turn act on the locked connection directly;
//! the after-touch work (events, timer, ready list) runs once, when the turn
//! ends. A connection that was removed before its turn gets a turn with no
//! connection: its final events, and [`AppError::Gone`] from every call.
//!
//! What a turn holds, and for how long: the PCB's own lock (or a baseline
//! slot's), from the pop until the closure returns, and nothing else — no
//! read section is open during the closure, so a slow application holds
//! back this one connection's input (another worker's segment for it waits
//! on the lock), never the reclamation of any PCB. The turn cannot outlive
//! the closure (the closure gets `&mut ConnTurn<'_>` for any lifetime, and
//! a `ConnTurn` is `!Send`), so no lock survives across turns or into a
//! blocking call the application makes after the closure.
//!
//! Rules for the closure (each would wait on a lock the turn holds): do not
//! call the `ConnHandle` methods of `Stack` (`read`, `write`, ...) for the
//! turn's own connection, and do not drive the worker (`poll_transmit`,
//! `handle_frame`, another `poll_events`: a nested `poll_events` panics).
//! Calls on other connections' handles are fine.
//!
//! Invariant: a connection's events are handed out at most once per event
//! entry, and a turn that called into the connection ends with the same
//! `touch` an application call outside a turn does, so the stack's
//! invariant (everything a connection wants to do is on its worker's lists)
//! holds after every turn.

use core::net::SocketAddr;

use super::conn::ConnState;
use super::table::ConnGuard;
use super::worker::{EventEntry, Worker};
use super::{AppError, ConnHandle, Stack};
use crate::tcp::conn::{ConnError, Events, State, Tcb};

/// One connection, locked for one application turn. See the module docs.
pub struct ConnTurn<'a> {
    stack: &'a Stack,
    handle: ConnHandle,
    /// `None`: the connection was removed before its turn.
    guard: Option<ConnGuard<'a>>,
    /// A call reached the TCB: run the after-touch work when the turn ends.
    touched: bool,
}

impl core::fmt::Debug for ConnTurn<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ConnTurn")
            .field("handle", &self.handle)
            .field("live", &self.guard.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for ConnTurn<'_> {
    fn drop(&mut self) {
        if self.touched
            && let Some(guard) = self.guard.as_mut()
        {
            self.stack.touch(guard);
        }
    }
}

impl ConnTurn<'_> {
    /// The connection's handle, for calls outside a turn (and to key the
    /// application's own state).
    pub fn handle(&self) -> ConnHandle {
        self.handle
    }

    /// Our address and port.
    pub fn local(&self) -> SocketAddr {
        self.handle.local()
    }

    /// The peer's address and port.
    pub fn remote(&self) -> SocketAddr {
        self.handle.remote()
    }

    /// Whether the connection is still in the table (a turn for a removed
    /// connection carries its final events only).
    pub fn is_live(&self) -> bool {
        self.guard.is_some()
    }

    fn with_tcb<R>(
        &mut self,
        f: impl FnOnce(&mut Tcb) -> Result<R, ConnError>,
    ) -> Result<R, AppError> {
        let Some(guard) = self.guard.as_mut() else {
            return Err(AppError::Gone);
        };
        let ConnState::Tcb(tcb) = &mut guard.state else {
            return Err(AppError::Gone);
        };
        self.touched = true;
        Ok(f(tcb)?)
    }

    /// Reads received data; `Ok(0)` is end of stream (the peer closed).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, AppError> {
        self.with_tcb(|tcb| tcb.recv(buf))
    }

    /// Queues data to send; returns how much fit in the send buffer.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, AppError> {
        self.with_tcb(|tcb| tcb.send(data))
    }

    /// Closes our sending side: FIN after the queued data.
    pub fn close(&mut self) -> Result<(), AppError> {
        self.with_tcb(|tcb| {
            tcb.close();
            Ok(())
        })
    }

    /// Resets the connection.
    pub fn abort(&mut self) -> Result<(), AppError> {
        self.with_tcb(|tcb| {
            tcb.abort();
            Ok(())
        })
    }

    /// Turns Nagle's algorithm on or off for this connection.
    pub fn set_nagle(&mut self, on: bool) -> Result<(), AppError> {
        self.with_tcb(|tcb| {
            tcb.set_nagle(on);
            Ok(())
        })
    }

    /// Turns keepalive probing on or off for this connection.
    pub fn set_keepalive(&mut self, on: bool) -> Result<(), AppError> {
        self.with_tcb(|tcb| {
            tcb.set_keepalive(on);
            Ok(())
        })
    }

    /// The connection's RFC 9293 state; `None` once it is gone.
    pub fn state(&self) -> Option<State> {
        match &self.guard.as_ref()?.state {
            ConnState::Reserved => Some(State::Closed),
            ConnState::Tcb(tcb) => Some(tcb.state()),
            ConnState::TimeWait(_) => Some(State::TimeWait),
        }
    }

    /// The error that ended the connection, if it is still in the table.
    pub fn error(&self) -> Option<ConnError> {
        match &self.guard.as_ref()?.state {
            ConnState::Tcb(tcb) => tcb.error(),
            _ => None,
        }
    }
}

impl Worker<'_> {
    /// Runs `turn` for each of this worker's connections with events, at
    /// most `max` of them, handing it the connection locked for the call
    /// and the events (cleared by this call); returns the turns taken. No
    /// table lookup: the event list's entries reach their PCBs directly.
    /// See the module docs for what the closure must not do.
    ///
    /// # Panics
    /// If called from inside a turn of this worker.
    pub fn poll_events(
        &self,
        max: usize,
        mut turn: impl FnMut(&mut ConnTurn<'_>, Events),
    ) -> usize {
        assert!(
            !self.in_turn.replace(true),
            "Worker::poll_events called inside a turn: finish the turn first"
        );
        let _reset = ResetOnDrop(&self.in_turn);
        let stack = self.stack;
        let mut turns = 0;
        while turns < max {
            let Some(entry) = stack.queues(self.index).events.pop_front() else {
                break;
            };
            let (handle, guard, events) = match entry {
                EventEntry::Final(handle, events) => (handle, None, events),
                EventEntry::Live(handle, pin) => {
                    let Some(mut guard) = stack.table.unpin(pin) else {
                        continue;
                    };
                    guard.event_queued = false;
                    let events = core::mem::take(&mut guard.events);
                    if events.is_empty() {
                        continue;
                    }
                    (handle, Some(guard), events)
                }
            };
            turns += 1;
            let mut conn = ConnTurn {
                stack,
                handle,
                guard,
                touched: false,
            };
            turn(&mut conn, events);
        }
        turns
    }
}

/// Clears the worker's in-turn flag however `poll_events` ends.
struct ResetOnDrop<'a>(&'a core::cell::Cell<bool>);

impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}
