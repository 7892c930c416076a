//! What to send: the SYN, data under the windows and Nagle, FIN, ACKs.

use super::*;

impl Tcb {
    /// The next segment to send, if any; call until `None`.
    pub fn poll_transmit(&mut self, now: Instant, mib: &TcpMib) -> Option<Transmit<'_>> {
        let _ = (now, mib);
        None
    }

    pub(super) fn advertised_window_field(&self) -> u16 {
        0
    }

    pub(super) fn maybe_window_update(&mut self) {}
}
