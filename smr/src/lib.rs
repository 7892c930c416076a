//! Safe memory reclamation for lock-free readers, after FreeBSD's smr(9).
//!
//! Readers bracket their accesses to a shared structure with a read section
//! ([`Domain::enter`]); writers unlink an object, take a [`Goal`] with
//! [`Domain::advance`], and reuse the object's memory only once
//! [`Domain::poll`] says the goal has passed, that is, once every section that
//! could still hold a pointer to it has ended. The one invariant everything
//! else rests on: **memory is reused only after `poll(goal)` holds for a goal
//! taken after it was unlinked.**
//!
//! The crate also holds the NetBSD [`pserialize`](Pserialize) design as a
//! baseline: fence-free readers, a synchronous `perform()` per grace period.
//!
//! [`PoolCache`] builds on either: a type-stable pool cache whose retired
//! objects are reused, in batches stamped with one goal, only after readers
//! have passed.
//!
//! See `domain.rs` for the theory and the ordering argument, `registry.rs` for
//! why every thread has its own slot.

mod backoff;
mod domain;
mod membarrier;
mod pool;
mod primitive;
mod pserialize;
mod registry;
pub mod rng;
mod seq;
pub mod stat;

pub use domain::{Blocker, Config, Domain, DomainStats, Mode, ReadSection};
#[doc(hidden)]
pub use membarrier::fault_injection;
pub use pool::{
    Exhausted, LATENCY_BUCKETS, PoolCache, PoolConfig, PoolMode, PoolStats, Pooled, Protection,
    Reclaimed,
};
pub use pserialize::{PsReadSection, Pserialize, PserializeStats, Variant};
pub use seq::{Goal, INVALID, Seq, SeqParams};

/// Wrap-safe sequence comparisons, for callers that keep raw sequences.
pub mod seq_order {
    pub use crate::seq::{delta, leq, lt, min};
}
