//! A tokio API over the sans-IO smrnet stack: [`TcpListener`], [`TcpStream`]
//! (`AsyncRead` + `AsyncWrite`), the way quinn wraps quinn-proto.
//!
//! The engine ([`netstack::Stack`]) stays runtime-free. Something else drives
//! its packet workers (the daemon's worker threads in production, a fake
//! network in tests); this crate only adds the application half:
//!
//! - **Readiness comes from the stack's events.** Whoever drives worker `w`
//!   hands every event it pops (`Stack::poll_events(w)`) to
//!   [`Net::on_event`] (or lets [`Net::dispatch`] pop them), which wakes the
//!   task waiting on that connection or, for a connection nobody has
//!   accepted yet, on its listener. No polling loop, no thread or channel
//!   per connection: one registry entry (two `Waker`s) per open stream.
//! - **Work the application queues reaches the wire through the stack's
//!   own wake-up.** A write, read (window update), shutdown, abort or
//!   connect puts the connection on its home worker's ready list, and the
//!   stack calls its `StackConfig::waker` for that worker if it is parked
//!   (`Worker::park`), so a worker asleep in poll(2) wakes at once. This
//!   crate adds no wake-up path of its own; [`Wakers`] is one eventfd per
//!   worker for a driver's poll set.
//! - **Wake-ups from the workers can be batched.** Spawned on the
//!   application's runtime, [`Net::wake_relay`] receives the wakers the
//!   events release and wakes them from that runtime's own thread: one wake
//!   from outside the runtime (tokio's eventfd write) per batch instead of
//!   one per task.
//! - **Backpressure is the stack's.** `poll_read` takes only what the task
//!   asks for, so a task that does not read leaves the receive buffer full
//!   and the advertised window shrinks; `poll_write` returns `Pending` while
//!   the send buffer is full, and the peer's ACKs (a `WRITABLE` event) wake it.
//!
//! Invariant (no lost wake-up): **a task returns `Pending` only after it
//! stored its waker under the connection's registry lock and then retried
//! the operation and saw it still blocked.** An event is queued by the stack
//! after the state change it reports and is looked up under the same lock,
//! so either the retry sees the change or the dispatch finds the waker.
//!
//! Outside the daemon, [`Driver`] is a ready-made packet worker for any
//! non-blocking frame queue ([`Frames`], e.g. a TUN device; see
//! `examples/tun_echo.rs`).
//!
//! Every future here is cancel-safe: `accept`, `read` and `write` finish
//! their effect in the same poll that returns `Ready`, so a future dropped
//! while `Pending` has taken no connection and moved no byte.

mod driver;
mod error;
mod listener;
mod net;
mod registry;
mod relay;
mod stream;
mod wake;

pub use self::driver::{Driver, Frames};
pub use self::listener::TcpListener;
pub use self::net::{Clock, Net, NetCounters};
pub use self::relay::WakeRelay;
pub use self::stream::TcpStream;
pub use self::wake::Wakers;
