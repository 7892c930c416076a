//! Our RFC 7323 timestamp clock: milliseconds, offset per connection.
//!
//! A passive connection inherits whatever TSval the SYN cache (or a SYN cookie)
//! put on the SYN-ACK, so each connection keeps an offset that makes its clock
//! continue from the value the peer echoed; TSvals then never go backwards.

use crate::time::Instant;

/// The TSval to send at `now` for a connection whose clock is offset by `offset`.
pub(crate) fn ts_clock(now: Instant, offset: u32) -> u32 {
    ((now.as_nanos() / 1_000_000) as u32).wrapping_add(offset)
}

/// The offset that makes [`ts_clock`] read `value` at `now`.
pub(crate) fn ts_offset_for(now: Instant, value: u32) -> u32 {
    value.wrapping_sub(ts_clock(now, 0))
}
