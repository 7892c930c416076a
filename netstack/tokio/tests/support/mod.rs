//! Drives two stacks on the engine's fake network (`netstack/tests/support`)
//! under a current-thread tokio runtime: between network steps the runtime
//! runs the application tasks, and every event the stacks raise goes
//! through `Net::dispatch`, as a packet worker would hand it over.

#![allow(dead_code)]

#[path = "../../../tests/support/mod.rs"]
pub mod fakenet;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use netstack::{Instant, StackConfig};
use smrnet_tokio::Net;

pub use fakenet::{A4, B4, FakeNet, NetConfig};

/// Steps a test may take before it is declared hung.
pub const MAX_STEPS: usize = 2_000_000;

/// Two stacks (A at 10.0.0.1, B at 10.0.0.2) and their async APIs.
pub struct Lab {
    pub net: FakeNet,
    pub a: Net,
    pub b: Net,
    clock: Arc<AtomicU64>,
}

impl Lab {
    pub fn new(cfg: NetConfig) -> Lab {
        Lab::with(cfg, |_| {})
    }

    pub fn with(cfg: NetConfig, tweak: impl Fn(&mut StackConfig)) -> Lab {
        let net = FakeNet::pair_with(cfg, tweak);
        let clock = Arc::new(AtomicU64::new(0));
        // The fake network drains every worker each step, so it needs no
        // waker.
        let make = |i: usize| {
            let c = Arc::clone(&clock);
            Net::new(
                Arc::clone(&net.stacks[i]),
                // Relaxed: the fake clock is only a number, written by the
                // driver between steps.
                Arc::new(move || Instant::from_nanos(c.load(Ordering::Relaxed))),
            )
        };
        let (a, b) = (make(0), make(1));
        Lab { net, a, b, clock }
    }

    /// Hands every pending event of both stacks to their APIs.
    fn dispatch(&self) {
        for net in [&self.a, &self.b] {
            for w in 0..net.stack().config().workers {
                net.dispatch(w, usize::MAX);
            }
        }
    }

    /// One network step, then the events it raised.
    pub fn turn(&mut self) {
        self.net.step();
        // Relaxed: see `with`.
        self.clock
            .store(self.net.now().as_nanos(), Ordering::Relaxed);
        self.dispatch();
    }

    /// Runs `task` (spawned on the current-thread runtime) while stepping
    /// the network, until it finishes; panics if it does not within
    /// [`MAX_STEPS`].
    pub async fn run<T: Send + 'static>(
        &mut self,
        task: impl Future<Output = T> + Send + 'static,
    ) -> T {
        let handle = tokio::spawn(task);
        for _ in 0..MAX_STEPS {
            if handle.is_finished() {
                return handle.await.expect("task panicked");
            }
            self.dispatch();
            tokio::task::yield_now().await;
            self.turn();
            tokio::task::yield_now().await;
        }
        panic!("the task did not finish in {MAX_STEPS} network steps");
    }

    /// Steps the network `n` times, letting tasks run between steps.
    pub async fn steps(&mut self, n: usize) {
        for _ in 0..n {
            self.dispatch();
            tokio::task::yield_now().await;
            self.turn();
            tokio::task::yield_now().await;
        }
    }
}

/// `len` bytes of a pattern that differs per `seed` and never repeats
/// within a TCP window.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = fakenet::Rng::new(seed);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}
