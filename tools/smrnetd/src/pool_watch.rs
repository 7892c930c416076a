//! The pool cap in the log: once a second the control plane compares the
//! pool's refused-allocation count with the last second's, and logs one
//! warning when refusals start (with how long the oldest read section has
//! been open: a stalled reader holding reclamation back shows there) and one
//! line when a whole second passes without a refusal (the cap cleared, e.g.
//! because the reader left). The counts themselves are in the metrics
//! (`smrnet_pool_exhausted_total`, `smrnet_tcp_pool_exhausted_drops_total`,
//! `smrnet_smr_oldest_read_section_seconds`); this only says when an episode
//! begins and ends, so a long one costs two log lines, not one per refusal.

use core::time::Duration;

/// What a tick found worth a log line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event {
    /// Allocations were refused in the last tick, none in the one before.
    CapReached {
        refused: u64,
        oldest_section: Option<Duration>,
    },
    /// A tick without a refusal after an episode of `refused` refusals.
    Cleared { refused: u64 },
}

/// The watcher's memory between ticks.
#[derive(Debug, Default)]
pub struct PoolWatch {
    last: Option<u64>,
    /// Refusals in the current episode, if one is under way.
    episode: Option<u64>,
}

impl PoolWatch {
    /// One tick: the pool's refused-allocation count now (monotonic) and
    /// the oldest open read section's age.
    pub fn observe(&mut self, exhausted: u64, oldest_section: Option<Duration>) -> Option<Event> {
        let Some(last) = self.last.replace(exhausted) else {
            // The first tick only sets the baseline.
            return None;
        };
        let new = exhausted.saturating_sub(last);
        match (self.episode, new) {
            (None, 0) => None,
            (None, n) => {
                self.episode = Some(n);
                Some(Event::CapReached {
                    refused: n,
                    oldest_section,
                })
            }
            (Some(total), 0) => {
                self.episode = None;
                Some(Event::Cleared { refused: total })
            }
            (Some(total), n) => {
                self.episode = Some(total.saturating_add(n));
                None
            }
        }
    }
}

/// Logs `event`.
pub fn log(event: Event) {
    match event {
        Event::CapReached {
            refused,
            oldest_section,
        } => tracing::warn!(
            refused,
            oldest_read_section_secs = oldest_section.map_or(0.0, |d| d.as_secs_f64()),
            "connection pool at its cap: new connections are refused until retired blocks \
             pass their grace period (a long-open read section is a stalled reader)"
        ),
        Event::Cleared { refused } => tracing::info!(
            refused,
            "connection pool below its cap again: allocations succeed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_episode_is_one_warning_and_one_clearing_line() {
        let mut w = PoolWatch::default();
        let stalled = Some(Duration::from_secs(3));
        assert_eq!(w.observe(5, None), None, "the first tick is the baseline");
        assert_eq!(w.observe(5, None), None);
        assert_eq!(
            w.observe(9, stalled),
            Some(Event::CapReached {
                refused: 4,
                oldest_section: stalled
            })
        );
        assert_eq!(
            w.observe(20, stalled),
            None,
            "still at the cap: no new line"
        );
        assert_eq!(w.observe(20, None), Some(Event::Cleared { refused: 15 }));
        assert_eq!(w.observe(20, None), None);
        assert!(matches!(
            w.observe(21, None),
            Some(Event::CapReached { refused: 1, .. })
        ));
    }

    #[test]
    fn refusals_before_the_daemon_watched_are_not_an_episode() {
        let mut w = PoolWatch::default();
        assert_eq!(w.observe(1000, None), None);
        assert_eq!(w.observe(1000, None), None);
    }
}
