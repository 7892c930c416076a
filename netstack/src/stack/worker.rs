//! One worker's view of the stack: the sans-IO entry points, its queues and its
//! timer heap.
//!
//! A worker owns four lists, behind one lock that only it and application
//! calls for its own connections take: control frames already built (resets,
//! SYN-ACKs, echo replies; bounded in frames and octets), the connections that
//! may have something to send (the ready list: at most one live entry per
//! connection, by its `queued` flag), the connections' deadlines (a min-heap
//! with lazy deletion: an entry counts only if it matches the connection's
//! `armed` deadline), and the connections with events for the application
//! (bounded; overflow is counted). Lock order: a PCB lock may be held while
//! taking the worker lock, never the other way round.
//!
//! The ready and event lists hold pins ([`ConnRef`]), not tuples: popping an
//! entry locks its connection directly (no lookup, no read section), and an
//! entry whose connection was removed meanwhile is found dead and skipped
//! (its pin given back, which retires the PCB if it was the last). Each
//! connection has at most one pin on each list (its `queued` and
//! `event_queued` flags), so the pins outstanding are bounded by the lists'
//! bounds. Timer entries stay tuples: a deadline may sit in the heap for
//! minutes, and a pin there would hold a removed PCB's memory as long.
//!
//! A [`Worker`] is a token: at most one exists per index at a time
//! ([`Stack::worker`] panics on a second, [`Stack::try_worker`] says `None`),
//! so one thread at a time drives a worker index, which is what its
//! single-writer counters and its turns rely on.

use core::cmp::Ordering;
use core::net::IpAddr;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};

use pcb::FourTuple;

use super::table::{ConnGuard, ConnRef};

use super::conn::ConnState;
use super::offload::{TxFrame, TxOffload};
use super::{ConnHandle, Stack};
use crate::counters::WorkerCounters;
use crate::tcp::conn::{Events, Transmit};
use crate::tcp::mib::TcpMib;
use crate::time::Instant;
use crate::wire::{
    DEFAULT_HOP_LIMIT, EchoKind, TcpHeader, Transport, emit_echo, emit_tcp, parse_with,
};

/// Room for any control segment: IPv6 header, TCP header, 40 octets of options.
const CONTROL_FRAME_LEN: usize = 40 + 20 + 40;

/// The control queue's octet budget per frame slot: a full-size frame on a
/// 1500-octet link. Small control segments leave room for a few large echoes.
const CONTROL_BYTES_PER_FRAME: usize = 1500;

/// A deadline in the timer heap; ordered by time, then by insertion.
#[derive(Debug)]
struct TimerEntry {
    at: Instant,
    order: u64,
    tuple: FourTuple,
}

impl PartialEq for TimerEntry {
    fn eq(&self, other: &TimerEntry) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}

impl Eq for TimerEntry {}

impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, other: &TimerEntry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TimerEntry {
    /// Reversed, so `BinaryHeap` (a max-heap) pops the earliest deadline.
    fn cmp(&self, other: &TimerEntry) -> Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

/// Where the stateless reply to an input frame goes.
pub(crate) enum Reply<'b> {
    /// The worker's control queue (`handle_frame`).
    Queue,
    /// The caller's buffer (`Worker::handle`); `len` is set once it holds a
    /// reply.
    Buffer {
        buf: &'b mut [u8],
        len: Option<usize>,
    },
}

/// The lists one worker owns (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Queues {
    pub(crate) control: VecDeque<Vec<u8>>,
    /// Octets held in `control`: echo replies can be large, so the queue is
    /// bounded in octets as well as in frames.
    control_bytes: usize,
    pub(crate) ready: VecDeque<ConnRef>,
    timers: BinaryHeap<TimerEntry>,
    timer_order: u64,
    /// Connections with events for the application.
    pub(crate) events: VecDeque<EventEntry>,
    /// Spent frame buffers, reused for the next control frame.
    spare: Vec<Vec<u8>>,
}

/// An entry of a worker's event list.
#[derive(Debug)]
pub(crate) enum EventEntry {
    /// A connection in the table (its pin; its events are in its `Conn`).
    Live(ConnHandle, ConnRef),
    /// The final events of a connection already removed from the table.
    Final(ConnHandle, Events),
}

/// A worker's mutable state.
#[derive(Debug, Default)]
pub(crate) struct WorkerState {
    pub(crate) queues: Mutex<Queues>,
    /// A [`Worker`] for this index exists.
    pub(crate) claimed: AtomicBool,
}

smr::counter_block! {
    /// Stack-level counters of one worker (single writer, Relaxed).
    pub struct StackCounters(AtomicU64);
    /// Plain values of [`StackCounters`].
    pub struct StackCountersSnapshot;
    /// The Prometheus names of the stack counters the daemon exports.
    pub mod stack_names;
    /// Parsed datagrams addressed to an address this stack does not own.
    not_our_address
        => Counter Count IP_NOT_OUR_ADDRESS = "smrnet_ip_not_our_address_total",
        "Datagrams addressed to an address the stack does not own.";
    /// ICMP/ICMPv6 echo replies queued.
    echo_replies
        => Counter Count ICMP_OUT_ECHO_REPLIES = "smrnet_icmp_out_echo_replies_total",
        "ICMP/ICMPv6 echo replies queued.";
    /// Control frames dropped because the worker's control queue was full.
    control_queue_full
        => Counter Count STACK_CONTROL_QUEUE_FULL = "smrnet_stack_control_queue_full_total",
        "Control frames dropped because a worker's control queue was full.";
    /// Segments that could not be built (the caller's buffer was too small).
    emit_errors
        => Counter Count STACK_EMIT_ERRORS = "smrnet_stack_emit_errors_total",
        "Segments that could not be built.";
    /// Segments that raced a `connect` before its TCB existed.
    reserved_drops;
    /// Final ACKs whose completed handshake found the tuple already taken.
    duplicate_connections
        => Counter Count STACK_DUPLICATE_CONNECTIONS = "smrnet_stack_duplicate_connections_total",
        "Completed handshakes whose tuple was already taken.";
    /// Application events dropped because nobody polled them.
    events_dropped
        => Counter Count STACK_EVENTS_DROPPED = "smrnet_stack_events_dropped_total",
        "Application events dropped because nobody polled them.";
    /// Non-SYN segments for a listener whose SYN cache answer was "drop".
    handshake_drops
        => Counter Count STACK_HANDSHAKE_DROPS = "smrnet_stack_handshake_drops_total",
        "Non-SYN segments for a listener dropped by the SYN cache.";
    /// Final ACKs that completed a handshake on a listener being closed
    /// (after its accept queue was emptied): answered with a reset.
    closed_listener_drops
        => Counter Count STACK_CLOSED_LISTENER_DROPS = "smrnet_stack_closed_listener_drops_total",
        "Handshakes completed on a listener being closed, answered with a reset.";
    /// Segments for a connection homed on another worker (steered to the
    /// wrong queue: the home worker is woken to send what they caused).
    foreign_segments
        => Counter Count STACK_FOREIGN_SEGMENTS = "smrnet_stack_foreign_segments_total",
        "Segments that reached a worker other than their connection's home.";
    /// Connections that entered TIME-WAIT (counted with [`count`], since
    /// any thread that settles a connection may write it).
    time_wait_entered;
    /// TIME-WAIT entries that left the table: expired, or reopened by a new
    /// SYN (counted with [`count`]). `entered - left` is the TIME-WAIT
    /// gauge, read in O(workers) rather than by walking the table.
    time_wait_left;
}

/// Adds one to a single-writer statistic.
pub(crate) use smr::stat::bump;

/// Adds one to a statistic that several threads may write (an atomic
/// add, so none is lost: a gauge is derived from two of these).
pub(crate) fn count(c: &AtomicU64) {
    // Relaxed: statistics only; the add itself is atomic.
    c.fetch_add(1, AtomicOrdering::Relaxed);
}

/// The handle a worker thread drives the stack with: quinn-style inputs
/// (`handle_*`), outputs (`poll_transmit`), deadline (`poll_timeout`) and
/// the application's turns (`poll_events`). A token: at most one per index
/// exists at a time (see the module docs); dropping it frees the index.
#[derive(Debug)]
pub struct Worker<'s> {
    pub(crate) stack: &'s Stack,
    pub(crate) index: usize,
    /// Inside `poll_events`' closure (nesting would lock a second PCB while
    /// holding one). Makes the token `!Sync`: it belongs to one thread.
    pub(crate) in_turn: core::cell::Cell<bool>,
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        // Release: pairs with the Acquire swap in `claim`, so the next
        // holder of this index sees everything this one wrote.
        self.stack.workers[self.index]
            .claimed
            .store(false, AtomicOrdering::Release);
    }
}

impl<'s> Worker<'s> {
    /// The token for `index`, unless one exists already.
    pub(crate) fn claim(stack: &'s Stack, index: usize) -> Option<Worker<'s>> {
        // Acquire: pairs with the Release store in `drop`.
        let taken = stack.workers[index]
            .claimed
            .swap(true, AtomicOrdering::Acquire);
        (!taken).then(|| Worker {
            stack,
            index,
            in_turn: core::cell::Cell::new(false),
        })
    }

    /// The stack this worker drives.
    pub fn stack(&self) -> &'s Stack {
        self.stack
    }

    /// This worker's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// This worker's wire counters.
    pub fn counters(&self) -> &'s WorkerCounters {
        &self.stack.counters[self.index]
    }

    /// This worker's TCP counters.
    pub fn mib(&self) -> &'s TcpMib {
        &self.stack.mibs[self.index]
    }

    pub(crate) fn stack_counters(&self) -> &'s StackCounters {
        &self.stack.stack_counters[self.index]
    }

    /// Takes one frame from the network. Never panics, whatever `frame` holds;
    /// every frame not delivered is counted once. Any reply goes out through
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn handle_frame(&self, now: Instant, frame: &[u8]) {
        self.input(now, frame, false, &mut Reply::Queue);
    }

    /// As [`handle_frame`](Self::handle_frame), and a stateless reply to
    /// `frame` — a SYN-ACK (from the SYN cache or with a cookie) or a reset —
    /// is written straight into `reply`, its length returned, for the caller
    /// to send now: no queue, no copy, no lock (quinn's `Endpoint::handle`
    /// shape). `None`: no stateless reply (anything else the frame calls for,
    /// and a reply that did not fit `reply`, goes out through
    /// `poll_transmit` as usual). A frame has at most one stateless reply.
    pub fn handle(&self, now: Instant, frame: &[u8], reply: &mut [u8]) -> Option<usize> {
        let mut out = Reply::Buffer {
            buf: reply,
            len: None,
        };
        self.input(now, frame, false, &mut out);
        match out {
            Reply::Buffer { len, .. } => len,
            Reply::Queue => None,
        }
    }

    pub(crate) fn input(
        &self,
        now: Instant,
        frame: &[u8],
        tcp_checksum_trusted: bool,
        out: &mut Reply<'_>,
    ) {
        let parsed = parse_with(frame, tcp_checksum_trusted);
        self.counters().record(&parsed);
        let Ok(datagram) = parsed else { return };
        if !self.stack.owns(datagram.dst) {
            bump(&self.stack_counters().not_our_address);
            return;
        }
        match datagram.transport {
            Transport::EchoRequest(echo) => {
                let mut frame = self.spare_buffer(CONTROL_FRAME_LEN + echo.data.len());
                match emit_echo(
                    datagram.dst,
                    datagram.src,
                    DEFAULT_HOP_LIMIT,
                    EchoKind::Reply,
                    &echo,
                    &mut frame,
                ) {
                    Ok(n) => {
                        frame.truncate(n);
                        if self.push_control(frame) {
                            bump(&self.stack_counters().echo_replies);
                        }
                    }
                    Err(_) => bump(&self.stack_counters().emit_errors),
                }
            }
            Transport::Tcp(segment) => {
                self.tcp_input(now, datagram.src, datagram.dst, &segment, out);
            }
        }
    }

    /// Runs every timer due at `now`: connection timers, TIME-WAIT expiry and
    /// (on worker 0) the SYN cache's retransmits and expiry.
    pub fn handle_timeout(&self, now: Instant) {
        if self.index == 0 {
            let mut out: Vec<(IpAddr, IpAddr, TcpHeader)> = Vec::new();
            self.stack
                .syncache
                .on_timeout(now, self.mib(), |local, remote, header| {
                    out.push((local.ip(), remote.ip(), header));
                });
            for (src, dst, header) in out {
                self.push_segment(src, dst, &header);
            }
        }
        loop {
            let entry = {
                let mut q = self.stack.queues(self.index);
                match q.timers.peek() {
                    Some(top) if top.at <= now => q.timers.pop(),
                    _ => None,
                }
            };
            let Some(entry) = entry else { break };
            let Some(mut guard) = self.stack.lock_tuple(&entry.tuple) else {
                continue;
            };
            if guard.armed != Some(entry.at) {
                continue;
            }
            guard.armed = None;
            let mib = self.mib();
            match &mut guard.state {
                ConnState::Reserved => {}
                ConnState::Tcb(tcb) => tcb.on_timeout(now, mib),
                ConnState::TimeWait(tw) => {
                    if tw.is_expired(now) {
                        guard.remove();
                        count(&self.stack_counters().time_wait_left);
                        continue;
                    }
                }
            }
            self.stack.touch(&mut guard);
        }
    }

    /// Entries in this worker's timer heap, stale ones included (a
    /// diagnostic: one live entry per connection plus those left behind when a
    /// deadline moved earlier, dropped as they come due).
    pub fn timer_entries(&self) -> usize {
        self.stack.queues(self.index).timers.len()
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout)
    /// has work, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = self.stack.queues(self.index).timers.peek().map(|e| e.at);
        let syncache = if self.index == 0 {
            self.stack.syncache.poll_at()
        } else {
            None
        };
        match (own, syncache) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Writes the next outbound frame into `buf` and returns its length; `None`
    /// when there is nothing to send. `buf` should hold the largest segment
    /// (MSS + 100 octets); a segment that does not fit is counted and lost
    /// (TCP retransmits it).
    pub fn poll_transmit(&self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.poll_transmit_with(now, buf, TxOffload::NONE)
            .map(|f| f.len)
    }

    /// As [`poll_transmit`](Self::poll_transmit), for a link that does what
    /// `tx` says (see [`TxOffload`]): the frame's [`TxFrame`] tells the
    /// driver what is left for the link to do with it. With
    /// [`TxOffload::NONE`] the frames are exactly `poll_transmit`'s.
    pub fn poll_transmit_with(
        &self,
        now: Instant,
        buf: &mut [u8],
        tx: TxOffload,
    ) -> Option<TxFrame> {
        loop {
            let pin = {
                let mut q = self.stack.queues(self.index);
                if let Some(frame) = q.control.pop_front() {
                    q.control_bytes = q.control_bytes.saturating_sub(frame.len());
                    let n = frame.len();
                    let copied = buf.get_mut(..n).map(|dst| dst.copy_from_slice(&frame));
                    q.spare.push(frame);
                    if q.spare.len() > 64 {
                        q.spare.truncate(64);
                    }
                    match copied {
                        Some(()) => return Some(TxFrame::plain(n)),
                        None => {
                            bump(&self.stack_counters().emit_errors);
                            continue;
                        }
                    }
                }
                q.ready.pop_front()?
            };
            // No lookup: the entry's pin reaches the PCB. A connection
            // removed since it was queued is dead, and its pin goes back.
            let Some(mut guard) = self.stack.table.unpin(pin) else {
                continue;
            };
            match self.transmit_one(&mut guard, now, buf, tx) {
                Some(Ok(n)) => {
                    let pin = guard.pin();
                    self.stack.queues(guard.home).ready.push_back(pin);
                    return Some(n);
                }
                Some(Err(())) => {
                    bump(&self.stack_counters().emit_errors);
                    let pin = guard.pin();
                    self.stack.queues(guard.home).ready.push_back(pin);
                }
                None => {
                    guard.queued = false;
                    self.stack.settle(guard);
                }
            }
        }
    }

    /// One segment from this connection, emitted into `buf`.
    fn transmit_one(
        &self,
        guard: &mut ConnGuard<'_>,
        now: Instant,
        buf: &mut [u8],
        tx: TxOffload,
    ) -> Option<Result<TxFrame, ()>> {
        let tuple = guard.tuple();
        let mib = self.mib();
        let t: Transmit<'_> = match &mut guard.state {
            ConnState::Reserved => return None,
            ConnState::Tcb(tcb) => {
                tcb.poll_transmit_limited(now, mib, tx.payload_limit(buf.len()))?
            }
            ConnState::TimeWait(tw) => tw.poll_transmit(now, mib)?,
        };
        Some(super::offload::emit(
            tuple.local.addr,
            tuple.foreign.addr,
            &t,
            tx,
            buf,
        ))
    }

    fn spare_buffer(&self, len: usize) -> Vec<u8> {
        let mut frame = self
            .stack
            .queues(self.index)
            .spare
            .pop()
            .unwrap_or_default();
        frame.clear();
        frame.resize(len, 0);
        frame
    }

    /// Queues a built frame, or counts it dropped when the queue is full;
    /// returns whether it was queued.
    pub(crate) fn push_control(&self, frame: Vec<u8>) -> bool {
        let mut q = self.stack.queues(self.index);
        let max_bytes = self
            .stack
            .cfg
            .control_queue
            .saturating_mul(CONTROL_BYTES_PER_FRAME);
        if q.control.len() >= self.stack.cfg.control_queue
            || q.control_bytes.saturating_add(frame.len()) > max_bytes
        {
            drop(q);
            bump(&self.stack_counters().control_queue_full);
            return false;
        }
        q.control_bytes = q.control_bytes.saturating_add(frame.len());
        q.control.push_back(frame);
        true
    }

    /// Sends a header-only stateless reply through `out`: into the caller's
    /// buffer if it has one still empty and the segment fits, else queued.
    pub(crate) fn reply(&self, src: IpAddr, dst: IpAddr, header: &TcpHeader, out: &mut Reply<'_>) {
        if let Reply::Buffer {
            buf,
            len: len @ None,
        } = out
            && let Ok(n) = emit_tcp(src, dst, DEFAULT_HOP_LIMIT, header, &[], buf)
        {
            *len = Some(n);
            return;
        }
        self.push_segment(src, dst, header);
    }

    /// Builds a header-only segment and queues it.
    pub(crate) fn push_segment(&self, src: IpAddr, dst: IpAddr, header: &TcpHeader) {
        let mut frame = self.spare_buffer(CONTROL_FRAME_LEN);
        match emit_tcp(src, dst, DEFAULT_HOP_LIMIT, header, &[], &mut frame) {
            Ok(n) => {
                frame.truncate(n);
                let _ = self.push_control(frame);
            }
            Err(_) => bump(&self.stack_counters().emit_errors),
        }
    }
}

impl Stack {
    /// After anything touched a connection: hand its events to the
    /// application, arm its timer, and put it on its home worker's ready list.
    pub(crate) fn touch(&self, guard: &mut ConnGuard<'_>) {
        self.touch_with(guard, true);
    }

    /// [`touch`](Self::touch), putting the connection on the ready list only if
    /// `ready` (the transmit path, which just found it has nothing to send,
    /// passes `false`).
    fn touch_with(&self, guard: &mut ConnGuard<'_>, ready: bool) {
        let tuple = guard.tuple();
        let handle = ConnHandle {
            tuple,
            id: guard.id,
        };
        if let ConnState::Tcb(tcb) = &mut guard.state {
            let ev = tcb.take_events();
            guard.events |= ev;
        }
        let deadline = guard.deadline();
        let cap = self.event_cap();
        let mut q = self.queues(guard.home);
        // A pin writes the PCB's own count, under the PCB lock we hold.
        if !guard.events.is_empty() && !guard.event_queued {
            if q.events.len() < cap {
                q.events.push_back(EventEntry::Live(handle, guard.pin()));
                guard.event_queued = true;
            } else {
                bump(&self.stack_counters[guard.home].events_dropped);
            }
        }
        if let Some(at) = deadline
            && guard.armed.is_none_or(|armed| at < armed)
        {
            q.timer_order = q.timer_order.wrapping_add(1);
            let order = q.timer_order;
            q.timers.push(TimerEntry { at, order, tuple });
            guard.armed = Some(at);
        }
        if ready && !guard.queued {
            q.ready.push_back(guard.pin());
            guard.queued = true;
        }
        drop(q);
        self.notify(guard.home);
    }

    /// A connection with nothing left to send: trade a TCB in TIME-WAIT for
    /// its compact form, and take a closed one out of the table.
    pub(crate) fn settle(&self, mut guard: ConnGuard<'_>) {
        let ConnState::Tcb(tcb) = &mut guard.state else {
            self.touch_with(&mut guard, false);
            return;
        };
        if let Some(tw) = tcb.time_wait() {
            let ev = tcb.take_events();
            guard.events |= ev;
            guard.state = ConnState::TimeWait(tw);
            guard.armed = None;
            count(&self.stack_counters[guard.home].time_wait_entered);
            self.touch(&mut guard);
            return;
        }
        if tcb.is_closed() {
            let ev = tcb.take_events();
            let events = guard.events | ev;
            let handle = ConnHandle {
                tuple: guard.tuple(),
                id: guard.id,
            };
            let home = guard.home;
            drop(guard.remove());
            let cap = self.event_cap();
            let mut q = self.queues(home);
            if q.events.len() < cap {
                q.events.push_back(EventEntry::Final(handle, events));
            } else {
                bump(&self.stack_counters[home].events_dropped);
            }
            drop(q);
            self.notify(home);
            return;
        }
        self.touch_with(&mut guard, false);
    }

    fn event_cap(&self) -> usize {
        self.cfg.table_capacity.max(1024).saturating_mul(2)
    }
}
