//! Blocking waits: spin briefly, then yield, then sleep with exponential
//! backoff, so a short grace period costs little latency and a long one
//! (a stalled reader) costs no CPU.

use std::time::Duration;

pub(crate) struct Backoff {
    step: u32,
}

#[cfg(not(loom))]
const SPINS: u32 = 64;
#[cfg(not(loom))]
const YIELDS: u32 = 16;
#[cfg(not(loom))]
const MIN_SLEEP: Duration = Duration::from_micros(10);
#[cfg(not(loom))]
const MAX_SLEEP: Duration = Duration::from_millis(1);

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff { step: 0 }
    }

    pub(crate) fn snooze(&mut self) {
        #[cfg(loom)]
        {
            loom::thread::yield_now();
        }
        #[cfg(not(loom))]
        {
            if self.step < SPINS {
                std::hint::spin_loop();
            } else if self.step < SPINS + YIELDS {
                std::thread::yield_now();
            } else {
                let doublings = (self.step - SPINS - YIELDS).min(7);
                std::thread::sleep((MIN_SLEEP * (1 << doublings)).min(MAX_SLEEP));
            }
        }
        self.step = self.step.saturating_add(1);
    }
}
