//! The SYN cache's entry limits, changeable while the cache runs.
//!
//! The cache's tables are allocated once, for `SynCacheConfig::max_entries`
//! (its *capacity*); the limits a SYN is checked against live here and may
//! be moved anywhere from zero up to that capacity at any time (an operator's
//! reload). A raised limit takes effect with the next SYN. A lowered one
//! takes effect for new entries only: entries already over it are kept until
//! they leave by themselves (completed, expired after their SYN-ACK retries,
//! or drained with their listener), never dropped by the change; while the
//! cache is over the new limit every new SYN counts as a SYN-cache overflow
//! and is answered with a cookie (or dropped if cookies are off), exactly as
//! at a full cache. So the limit bounds what is *added*, and the entries
//! drain below it within one entry lifetime.
//!
//! Orderings: Relaxed throughout. A limit guards no data, only the decision
//! whether one more entry may be counted, and a SYN racing a change may be
//! judged by either value (both are valid limits).

use core::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The limits a new entry is checked against.
#[derive(Debug)]
pub(super) struct Limits {
    /// Entries over all listeners.
    max_entries: AtomicUsize,
    /// Entries for one listener.
    max_per_listener: AtomicUsize,
    /// What the tables were allocated for; `max_entries` never exceeds it.
    capacity: usize,
}

/// Why [`SynCache::set_limits`](super::SynCache::set_limits) refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitAboveCapacity {
    /// The limit asked for.
    pub asked: usize,
    /// The most the cache's tables were allocated for.
    pub capacity: usize,
}

impl fmt::Display for LimitAboveCapacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a SYN-cache limit of {} entries is above the {} its tables were allocated for \
             at start; restart to raise it further",
            self.asked, self.capacity
        )
    }
}

impl std::error::Error for LimitAboveCapacity {}

impl Limits {
    /// Limits equal to the configuration's, `capacity` being the clamped
    /// `max_entries` the tables were sized for.
    pub(super) fn new(capacity: usize, max_per_listener: usize) -> Limits {
        Limits {
            max_entries: AtomicUsize::new(capacity),
            max_per_listener: AtomicUsize::new(max_per_listener),
            capacity,
        }
    }

    /// `(max_entries, max_per_listener)` now.
    pub(super) fn get(&self) -> (usize, usize) {
        // Relaxed: see the module docs.
        (
            self.max_entries.load(Ordering::Relaxed),
            self.max_per_listener.load(Ordering::Relaxed),
        )
    }

    /// Moves both limits, or neither if `max_entries` is above the capacity.
    pub(super) fn set(
        &self,
        max_entries: usize,
        max_per_listener: usize,
    ) -> Result<(), LimitAboveCapacity> {
        if max_entries > self.capacity {
            return Err(LimitAboveCapacity {
                asked: max_entries,
                capacity: self.capacity,
            });
        }
        // Relaxed: see the module docs.
        self.max_entries.store(max_entries, Ordering::Relaxed);
        self.max_per_listener
            .store(max_per_listener, Ordering::Relaxed);
        Ok(())
    }

    /// The most `max_entries` can be set to.
    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }
}
