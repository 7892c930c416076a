//! Timers: retransmission, persist, delayed ACK, keepalive, TIME-WAIT, FIN-WAIT-2.

use super::*;

impl Tcb {
    /// The earliest armed deadline.
    pub fn poll_at(&self) -> Option<Instant> {
        None
    }

    /// Runs every timer that is due at `now`.
    pub fn on_timeout(&mut self, now: Instant, mib: &TcpMib) {
        let _ = (now, mib);
    }
}
