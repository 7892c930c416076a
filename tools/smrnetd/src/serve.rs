//! The application half of a worker: accepts, and serves each connection
//! homed on this worker with its listener's service.
//!
//! A session starts on a connection's first event, on its home worker (the
//! only one that polls its events), so no service state crosses threads.
//! Connections with events are served inside the worker's turns
//! (`Worker::poll_events`): the turn holds the connection locked, so the
//! reads, writes and close of a visit cost no table lookup. Only a
//! connection carried over to the next call (its visit budget spent), and
//! stop/abort, go through its `ConnHandle`.
//! Invariant: the output a connection has queued and not yet sent is at
//! most one read's worth (echo) or the http high-water mark plus one
//! response; reading stops until it has been sent.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use netstack::{AppError, ConnError, ConnHandle, ConnTurn, Events, ListenerHandle, Stack, Worker};

use super::config::ListenSpec;
use super::services::{Next, Session};

/// Removed listener specs remembered for connections already accepted.
const RETIRED_SPECS: usize = 64;
/// Connections served per call before the worker goes back to the device.
const SERVE_BUDGET: usize = 1024;
/// Reads per connection per visit (fairness between connections).
const READS_PER_VISIT: usize = 16;
/// Bytes read from a connection at once.
const READ_CHUNK: usize = 16 * 1024;
/// Output buffers a worker keeps for reuse once their connection has sent
/// everything (the rest are freed), and the largest one it keeps.
const SPARE_OUTPUTS: usize = 64;
const SPARE_MAX_BYTES: usize = 4 * READ_CHUNK;

/// One connection being served. Every held connection has one (plus its
/// handle, as the key of the worker's map), so it stays small: an idle
/// connection holds no output buffer (`out` goes back to the worker's
/// spares once sent) and the http state is boxed. 32 bytes, where an inline
/// buffer and offset made 56: with the map's slots at 80 bytes instead of
/// 104, a million held connections cost about 50 MB less.
struct Served {
    session: Session,
    /// Output not yet taken by the stack; `None` while there is none.
    out: Option<Box<Pending>>,
    /// Close once `out` is sent.
    close_after_flush: bool,
    /// `close` has been called.
    closing: bool,
}

/// Output a connection has produced, from `off` on not yet taken by the
/// stack.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    off: usize,
}

enum Visit {
    /// Nothing more until the next event.
    Idle,
    /// More to do (budget spent): visit again next call.
    Again,
    /// The connection is gone: forget it.
    Gone,
}

/// The services of one worker.
pub struct Server {
    index: usize,
    specs: Vec<ListenSpec>,
    /// Specs a reload removed: connections their listener accepted before
    /// the swap are still served with them (at most [`RETIRED_SPECS`]).
    retired: Vec<ListenSpec>,
    http_body_bytes: usize,
    /// Keyed by flow with the tables' hash (peers choose the tuples), not
    /// std's SipHash: every event of every served connection looks here.
    served: HashMap<ConnHandle, Served, pcb::FlowBuildHasher>,
    again: Vec<ConnHandle>,
    scratch: Vec<u8>,
    /// Emptied output buffers for the next connection that answers (at most
    /// [`SPARE_OUTPUTS`]). Boxed because a connection holds its `Pending`
    /// by box: reusing the box saves an allocation per answer.
    #[expect(clippy::vec_box, reason = "the boxes are what is reused")]
    spare: Vec<Box<Pending>>,
    stopping: bool,
    /// The tokio API, once a forward listener exists: events of
    /// connections no session here serves go to it.
    forward: Option<smrnet_tokio::Net>,
}

impl Server {
    /// The server of worker `index`.
    pub fn new(index: usize, specs: Vec<ListenSpec>, http_body_bytes: usize) -> Server {
        Server {
            index,
            specs,
            retired: Vec::new(),
            http_body_bytes,
            served: HashMap::with_hasher(pcb::FlowBuildHasher(pcb::FlowHash::random())),
            again: Vec::new(),
            scratch: vec![0; READ_CHUNK],
            spare: Vec::new(),
            stopping: false,
            forward: None,
        }
    }

    /// A reload's new listener specs; connections already served keep the
    /// service they started with.
    pub fn set_specs(&mut self, specs: Vec<ListenSpec>) {
        let old = core::mem::replace(&mut self.specs, specs);
        for spec in old {
            if !self.specs.contains(&spec) && !self.retired.contains(&spec) {
                if self.retired.len() == RETIRED_SPECS {
                    self.retired.remove(0);
                }
                self.retired.push(spec);
            }
        }
    }

    /// From now on, hands the events of connections no session serves
    /// to `net` (the forward service's streams and listeners).
    pub fn set_forward(&mut self, net: smrnet_tokio::Net) {
        self.forward = Some(net);
    }

    /// Connections being served.
    pub fn len(&self) -> usize {
        self.served.len()
    }

    /// Whether no connection is being served.
    pub fn is_empty(&self) -> bool {
        self.served.is_empty()
    }

    /// Accepts what the listeners completed and serves every connection with
    /// an event (in the worker's turns); returns the number of sessions
    /// started, and whether work is left for the next call.
    pub fn serve(&mut self, worker: &Worker<'_>, listeners: &[ListenerHandle]) -> (u64, bool) {
        assert_eq!(worker.index(), self.index, "a server serves its own worker");
        let stack = worker.stack();
        if !self.stopping {
            for l in listeners {
                while stack.accept(l).is_some() {}
            }
        }
        let mut started = 0;
        for conn in core::mem::take(&mut self.again) {
            self.visit_and_track(&mut ByHandle(stack, conn), conn);
        }
        let turns = worker.poll_events(SERVE_BUDGET, |turn, events| {
            started += self.on_events(turn, events);
        });
        (started, turns == SERVE_BUDGET || !self.again.is_empty())
    }

    /// One connection's turn: start its session on its first event, forget
    /// it once it closed, else visit it. Returns the sessions started.
    fn on_events(&mut self, turn: &mut ConnTurn<'_>, events: Events) -> u64 {
        let conn = turn.handle();
        let mut started = 0;
        if let Entry::Vacant(slot) = self.served.entry(conn) {
            if let Some(net) = &self.forward
                && net.on_event(self.index, conn, events)
            {
                return 0;
            }
            if events.contains(Events::CLOSED) || events.contains(Events::RESET) {
                return 0;
            }
            let serves = |s: &&ListenSpec| {
                s.addr.port() == conn.local().port()
                    && (s.addr.ip().is_unspecified() || s.addr.ip() == conn.local().ip())
            };
            let Some(spec) = self
                .specs
                .iter()
                .find(serves)
                .or_else(|| self.retired.iter().find(serves))
            else {
                return 0;
            };
            // A forward connection the forward thread has not accepted
            // yet: its accept finds it in the queue.
            let Some(session) = Session::new(spec.service, self.http_body_bytes) else {
                return 0;
            };
            started = 1;
            slot.insert(Served {
                session,
                out: None,
                close_after_flush: self.stopping,
                closing: false,
            });
        }
        if events.contains(Events::RESET) || events.contains(Events::CLOSED) {
            self.served.remove(&conn);
            return started;
        }
        self.visit_and_track(turn, conn);
        started
    }

    /// Stops accepting and closes every connection once its output is sent.
    pub fn stop(&mut self, stack: &Stack) {
        self.stopping = true;
        for (conn, s) in self.served.iter_mut() {
            s.close_after_flush = true;
            if s.out.is_none() && !s.closing {
                let _ = stack.close(conn);
                s.closing = true;
            }
        }
    }

    /// Resets every connection still served.
    pub fn abort_all(&mut self, stack: &Stack) {
        for conn in self.served.keys() {
            let _ = stack.abort(conn);
        }
        self.served.clear();
        self.again.clear();
    }

    fn visit_and_track(&mut self, ops: &mut impl ConnOps, conn: ConnHandle) {
        let Some(s) = self.served.get_mut(&conn) else {
            return;
        };
        match visit(ops, s, &mut self.scratch, &mut self.spare) {
            Visit::Idle => {}
            Visit::Again => {
                if !self.again.contains(&conn) {
                    self.again.push(conn);
                }
            }
            Visit::Gone => {
                self.served.remove(&conn);
            }
        }
    }
}

/// What a visit does to a connection: inside a turn ([`ConnTurn`], no
/// lookup) or by handle ([`ByHandle`], one lookup per call).
trait ConnOps {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, AppError>;
    fn write(&mut self, data: &[u8]) -> Result<usize, AppError>;
    fn close(&mut self) -> Result<(), AppError>;
}

impl ConnOps for ConnTurn<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, AppError> {
        ConnTurn::read(self, buf)
    }
    fn write(&mut self, data: &[u8]) -> Result<usize, AppError> {
        ConnTurn::write(self, data)
    }
    fn close(&mut self) -> Result<(), AppError> {
        ConnTurn::close(self)
    }
}

/// A connection outside a turn, by its handle.
struct ByHandle<'s>(&'s Stack, ConnHandle);

impl ConnOps for ByHandle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, AppError> {
        self.0.read(&self.1, buf)
    }
    fn write(&mut self, data: &[u8]) -> Result<usize, AppError> {
        self.0.write(&self.1, data)
    }
    fn close(&mut self) -> Result<(), AppError> {
        self.0.close(&self.1)
    }
}

/// Moves one connection along: send what is queued, then read and answer,
/// until it would block or the per-visit budget is spent.
#[expect(clippy::vec_box, reason = "the boxes are what is reused")]
fn visit(
    ops: &mut impl ConnOps,
    s: &mut Served,
    scratch: &mut [u8],
    spare: &mut Vec<Box<Pending>>,
) -> Visit {
    let mut out = s
        .out
        .take()
        .unwrap_or_else(|| spare.pop().unwrap_or_default());
    let visit = visit_with_buffer(ops, s, &mut out, scratch);
    // An idle connection keeps no buffer: a held connection costs only its
    // `Served`.
    if out.off < out.buf.len() {
        s.out = Some(out);
    } else if spare.len() < SPARE_OUTPUTS && out.buf.capacity() <= SPARE_MAX_BYTES {
        out.buf.clear();
        out.off = 0;
        spare.push(out);
    }
    visit
}

fn visit_with_buffer(
    ops: &mut impl ConnOps,
    s: &mut Served,
    out: &mut Pending,
    scratch: &mut [u8],
) -> Visit {
    for _ in 0..READS_PER_VISIT {
        while out.off < out.buf.len() {
            match ops.write(&out.buf[out.off..]) {
                Ok(0) | Err(AppError::Conn(ConnError::WouldBlock)) => return Visit::Idle,
                Ok(n) => out.off += n,
                Err(_) => return Visit::Gone,
            }
        }
        out.buf.clear();
        out.off = 0;
        if s.closing {
            return Visit::Idle;
        }
        if s.session.has_backlog() && s.session.resume(&mut out.buf) == Next::Close {
            s.close_after_flush = true;
        }
        if !out.buf.is_empty() {
            continue;
        }
        if s.close_after_flush {
            return match ops.close() {
                Ok(()) => {
                    s.closing = true;
                    Visit::Idle
                }
                Err(_) => Visit::Gone,
            };
        }
        match ops.read(scratch) {
            Ok(0) => s.close_after_flush = true,
            Ok(n) => {
                if s.session.on_data(&scratch[..n], &mut out.buf) == Next::Close {
                    s.close_after_flush = true;
                }
            }
            Err(AppError::Conn(ConnError::WouldBlock)) => return Visit::Idle,
            Err(_) => return Visit::Gone,
        }
    }
    Visit::Again
}

#[cfg(test)]
mod tests;
