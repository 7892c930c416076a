//! What the connection table holds for one 4-tuple: a live TCB, a compact
//! TIME-WAIT, or a port reserved by `connect` for the instant before its TCB
//! exists; plus the Stack's own bookkeeping for it.
//!
//! Invariant: every field here is read and written only under the PCB's lock
//! (the table's `PcbGuard`), so the bookkeeping always agrees with the state.

use crate::tcp::conn::{Events, Tcb, TimeWait};
use crate::time::Instant;

/// One connection's protocol state.
#[derive(Debug)]
pub(crate) enum ConnState {
    /// `connect` inserted the tuple to claim its ephemeral port; the TCB is
    /// built once the port (and with it the ISN) is known. Segments that race
    /// this instant are dropped; the peer cannot know the tuple yet.
    Reserved,
    /// A live connection. Boxed so that a TIME-WAIT entry stays small.
    Tcb(Box<Tcb>),
    /// TIME-WAIT without buffers.
    TimeWait(TimeWait),
}

/// The table's value: the state plus the Stack's bookkeeping.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) state: ConnState,
    /// Stack-wide unique number of this connection (what handles carry; a
    /// PCB's incarnation would not do: a new connection on the same tuple may
    /// land in a different PCB with the same incarnation).
    pub(crate) id: u64,
    /// The worker whose timer heap and ready list carry this connection.
    pub(crate) home: usize,
    /// The deadline this connection's newest timer-heap entry is for; entries
    /// for other instants are stale and skipped.
    pub(crate) armed: Option<Instant>,
    /// On the home worker's ready list.
    pub(crate) queued: bool,
    /// Events not yet handed to the application.
    pub(crate) events: Events,
    /// On the home worker's event list.
    pub(crate) event_queued: bool,
}

impl Conn {
    pub(crate) fn new(state: ConnState, id: u64, home: usize) -> Conn {
        Conn {
            state,
            id,
            home,
            armed: None,
            queued: false,
            events: Events::NONE,
            event_queued: false,
        }
    }

    /// When this connection next needs `handle_timeout`.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.state {
            ConnState::Reserved => None,
            ConnState::Tcb(tcb) => tcb.poll_at(),
            ConnState::TimeWait(tw) => Some(tw.expires_at()),
        }
    }
}
