//! Running load inside an existing network namespace while the daemon's
//! metrics are read from another: the daemon's namespace helper
//! ([`smrnetd::netns`]), shared rather than copied.

pub use smrnetd::netns::{NetnsFd, run_in};
