//! Pause points for unit tests that need one exact interleaving of a worker
//! and an application call (compiled only under `cfg(test)`).
//!
//! A test installs one callback per stack; the code calls it at each named
//! [`Point`], on whichever thread reaches it, so the callback can park that
//! thread until the test lets it go. Production builds have no field and no
//! call.

use std::sync::OnceLock;

/// Where the stack calls the hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Point {
    /// `listener_input` holds the listener's state and is about to lock its
    /// accept queue.
    ListenerStateFetched,
    /// `close_listener` has emptied the accept queue and is about to drain
    /// the SYN cache and close the listener.
    AcceptQueueDrained,
}

type Hook = Box<dyn Fn(Point) + Send + Sync>;

/// The stack's hook, installed at most once.
#[derive(Default)]
pub(crate) struct Hooks(OnceLock<Hook>);

impl Hooks {
    /// Installs `hook`. Panics if one is installed already.
    pub(crate) fn install(&self, hook: impl Fn(Point) + Send + Sync + 'static) {
        assert!(
            self.0.set(Box::new(hook)).is_ok(),
            "a test hook is installed already"
        );
    }

    pub(crate) fn at(&self, point: Point) {
        if let Some(h) = self.0.get() {
            h(point);
        }
    }
}
