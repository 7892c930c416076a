//! Running load inside an existing network namespace while the daemon's
//! metrics are read from another: the daemon's namespace helper
//! ([`crate::daemon::netns`]), shared rather than copied.

pub use crate::daemon::netns::{NetnsFd, run_in};
