//! Segment arrival (RFC 9293 §3.10.7).

use super::*;

impl Tcb {
    /// Processes one segment for this connection.
    pub fn on_segment(
        &mut self,
        now: Instant,
        seg: &TcpSegment<'_>,
        mib: &TcpMib,
    ) -> SegmentDisposition {
        let _ = (now, seg, mib);
        SegmentDisposition::Dropped(SegmentDrop::Closed)
    }
}
