//! TCP input: which connection, listener or nobody a segment is for.
//!
//! RFC 9293 §3.10.7 decides by the state of the connection the segment names;
//! here that is, in order: a connection in the table (a live TCB or a compact
//! TIME-WAIT), else a listener on the local port (its SYN cache, then the
//! accept queue), else nobody (a reset, §3.10.7.1). The lookup happens inside
//! an SMR read section and leaves it with either a locked PCB or a listener's
//! id and whether it was open, so nothing that may wait (an insert into a
//! table at its cap, a lock) runs inside the section. A segment for a
//! listener writes nothing shared with other workers on the way: the
//! listener's in-flight count is taken only when a handshake completes (a
//! second, short lookup that re-finds the listener by id), so a SYN flood
//! only reads the listener. Stateless replies (SYN-ACKs, resets) go to the
//! caller's [`Reply`] sink: its buffer when it gave one, else the worker's
//! control queue. Invariant: every segment ends in exactly one disposition,
//! and each disposition that discards it is counted.

use core::net::{IpAddr, SocketAddr};

use pcb::{Found, FourTuple, InFlight, InsertError};

use super::conn::{Conn, ConnState};
use super::table::{ConnGuard, ConnTable};
use super::worker::{Reply, Worker, bump, count};
use super::{ConnHandle, Stack};
use crate::tcp::conn::{Tcb, TimeWaitDisposition, rst_for};
use crate::tcp::syncache::{HandshakeDisposition, SynDisposition};
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpSegment};

/// Where the lookup sent a segment.
enum Target<'t> {
    Connection(ConnGuard<'t>),
    /// A listener's id, and whether it was open (not closing) when found.
    /// No reference is held: see `Stack::acquire_listener`.
    Listener(u64, bool),
    Nobody,
}

impl Stack {
    fn find(&self, tuple: &FourTuple, skip_connections: bool) -> Target<'_> {
        if !skip_connections {
            self.count_lookup();
        }
        let section = match &self.table {
            ConnTable::Smr(table) => {
                let section = self.domain.enter();
                if !skip_connections
                    && let Found::Connection(pcb) =
                        self.listen_table.find(table, &section, tuple, false)
                    && let Some(guard) = pcb.lock()
                {
                    return Target::Connection(ConnGuard::smr(guard));
                }
                section
            }
            ConnTable::Slots(table) => {
                // A baseline's lookup is not under SMR: it needs no section.
                if !skip_connections && let Some(guard) = table.lock(tuple) {
                    return Target::Connection(ConnGuard::slot(guard));
                }
                self.domain.enter()
            }
        };
        match self.listen_table.lookup(&section, tuple) {
            Some(l) => Target::Listener(l.id(), !l.is_closing()),
            None => Target::Nobody,
        }
    }

    /// A counted reference on listener `id`, found again for `tuple`: taken
    /// once per completed handshake, not per segment. `None` if the listener
    /// is closing or gone (or the port now has another listener).
    fn acquire_listener(&self, id: u64, tuple: &FourTuple) -> Option<InFlight> {
        let section = self.domain.enter();
        let l = self.listen_table.lookup(&section, tuple)?;
        if l.id() != id {
            return None;
        }
        l.acquire()
    }
}

impl Worker<'_> {
    /// Delivers one validated segment from `src` to `dst` (an address of ours).
    pub(crate) fn tcp_input(
        &self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        seg: &TcpSegment<'_>,
        out: &mut Reply<'_>,
    ) {
        let local = SocketAddr::new(dst, seg.header.dst_port);
        let remote = SocketAddr::new(src, seg.header.src_port);
        let tuple = FourTuple::new(local, remote);
        let mut target = self.stack.find(&tuple, false);
        if let Target::Connection(mut guard) = target {
            if guard.home != self.index {
                bump(&self.stack_counters().foreign_segments);
            }
            if !self.connection_input(now, &mut guard, seg) {
                return;
            }
            // RFC 6191: a SYN may reuse a tuple in TIME-WAIT. The TIME-WAIT is
            // gone; hand the SYN to the listener as if it had never existed.
            drop(guard.remove());
            count(&self.stack_counters().time_wait_left);
            target = self.stack.find(&tuple, true);
        }
        match target {
            Target::Connection(_) => {}
            Target::Listener(id, open) => {
                self.listener_input(now, id, open, local, remote, seg, out);
            }
            Target::Nobody => self.reset_closed_port(src, dst, seg, out),
        }
    }

    /// A segment for a connection in the table. Returns `true` if the
    /// connection is a TIME-WAIT that a new SYN reopens.
    fn connection_input(
        &self,
        now: Instant,
        guard: &mut ConnGuard<'_>,
        seg: &TcpSegment<'_>,
    ) -> bool {
        let mib = self.mib();
        match &mut guard.state {
            ConnState::Reserved => {
                bump(&self.stack_counters().reserved_drops);
                return false;
            }
            ConnState::Tcb(tcb) => {
                // Each drop reason is counted inside `on_segment`
                // (`TcpMib::segment_drop`); nothing is left for us to do.
                let _ = tcb.on_segment(now, seg, mib);
            }
            ConnState::TimeWait(tw) => {
                if tw.on_segment(now, seg, mib) == TimeWaitDisposition::Reopen {
                    return true;
                }
            }
        }
        self.stack.touch(guard);
        false
    }

    /// A segment for a listening port and no connection.
    #[allow(clippy::too_many_arguments)]
    fn listener_input(
        &self,
        now: Instant,
        id: u64,
        open: bool,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &TcpSegment<'_>,
        out: &mut Reply<'_>,
    ) {
        let flags = seg.header.flags;
        let mib = self.mib();
        let syncache = &self.stack.syncache;
        let is_syn = flags.contains(TcpFlags::SYN)
            && !flags.intersects(TcpFlags::ACK | TcpFlags::RST | TcpFlags::FIN);
        if is_syn {
            if !open {
                // Closing: behave as if nobody listened.
                self.reset_closed_port(remote.ip(), local.ip(), seg, out);
                return;
            }
            match syncache.on_syn(now, id, local, remote, seg, mib) {
                SynDisposition::Reply(h)
                | SynDisposition::Cookie(h)
                | SynDisposition::Duplicate(h) => self.reply(local.ip(), remote.ip(), &h, out),
                SynDisposition::Dropped(_) => {}
            }
            return;
        }
        let state = if open {
            self.stack.listeners.get(id)
        } else {
            None
        };
        let Some(state) = state else {
            // The listener is closing: its handshakes are being forgotten.
            self.reset_closed_port(remote.ip(), local.ip(), seg, out);
            return;
        };
        #[cfg(test)]
        self.stack
            .hooks
            .at(super::test_hooks::Point::ListenerStateFetched);
        // The queue's lock is held from the fullness check to the push, so the
        // bound holds with several workers completing handshakes at once.
        let mut queue = state.queue();
        if queue.closed {
            // `close_listener` emptied the queue after we fetched its state
            // and then waits for every in-flight count: take none (the count
            // is taken below, under this lock, only while the queue is open)
            // and refuse the handshake.
            drop(queue);
            bump(&self.stack_counters().closed_listener_drops);
            self.reset_closed_port(remote.ip(), local.ip(), seg, out);
            return;
        }
        let disposition = if queue.waiting.len() >= self.stack.accept_queue_limit() {
            // The SYN cache keeps the entry and counts the overflow, so the
            // peer's next ACK can complete once `accept` made room.
            syncache.on_segment_queue_full(now, id, local, remote, seg, mib)
        } else {
            syncache.on_segment(now, id, local, remote, seg, mib)
        };
        match disposition {
            HandshakeDisposition::Established(hs) => {
                let tuple = FourTuple::new(local, remote);
                // The one in-flight count of this handshake, held by its
                // connection while it waits in the accept queue.
                let Some(in_flight) = self.stack.acquire_listener(id, &tuple) else {
                    drop(queue);
                    self.reset_closed_port(remote.ip(), local.ip(), seg, out);
                    return;
                };
                let tcb = Tcb::accept(&self.stack.cfg.tcp, &hs, seg, now, mib);
                let conn = Conn::new(
                    ConnState::Tcb(Box::new(tcb)),
                    self.stack.next_conn_id(),
                    self.index,
                );
                match self.stack.table.insert(&tuple, conn) {
                    Ok(()) => {
                        if !hs.from_cookie
                            && let Some(h) = self.stack.handshake_times.get(self.index)
                        {
                            h.record(now.saturating_duration_since(hs.syn_at));
                        }
                    }
                    Err(InsertError::Exhausted) => {
                        mib.pool_exhausted.bump();
                        return;
                    }
                    Err(InsertError::Duplicate(_)) => {
                        bump(&self.stack_counters().duplicate_connections);
                        return;
                    }
                }
                let Some(mut guard) = self.stack.lock_tuple(&tuple) else {
                    return;
                };
                let handle = ConnHandle {
                    tuple,
                    id: guard.id,
                };
                queue.waiting.push_back((handle, in_flight));
                drop(queue);
                self.stack.touch(&mut guard);
            }
            HandshakeDisposition::Reply(h) => {
                drop(queue);
                self.reply(local.ip(), remote.ip(), &h, out);
            }
            HandshakeDisposition::NotOurs => {
                drop(queue);
                self.reset_closed_port(remote.ip(), local.ip(), seg, out);
            }
            HandshakeDisposition::Reset | HandshakeDisposition::Dropped(_) => {
                bump(&self.stack_counters().handshake_drops);
            }
        }
    }

    /// RFC 9293 §3.10.7.1: a segment for no connection and no listener gets a
    /// reset (unless it is one).
    fn reset_closed_port(
        &self,
        src: IpAddr,
        dst: IpAddr,
        seg: &TcpSegment<'_>,
        out: &mut Reply<'_>,
    ) {
        let mib = self.mib();
        mib.no_port.bump();
        if let Some(rst) = rst_for(seg) {
            mib.out_rsts.bump();
            mib.out_segs.bump();
            self.reply(dst, src, &rst, out);
        }
    }
}
