//! One small trait over the SMR table and the baseline tables, so the daemon
//! and the benchmarks can swap them with a flag. Every backend hashes with
//! the same [`FlowHash`](crate::FlowHash), so a comparison between them is
//! about synchronisation only.
//!
//! Invariant: every backend answers a sequence of operations as a `HashMap`
//! would (checked by the model test in `pcb/tests/model.rs`).

#[cfg(not(loom))]
mod dashmap;
#[cfg(not(loom))]
mod papaya;
#[cfg(not(loom))]
mod rwlock;
#[cfg(not(loom))]
mod slots;

#[cfg(not(loom))]
pub use self::dashmap::DashMapTable;
#[cfg(not(loom))]
pub use self::papaya::PapayaTable;
#[cfg(not(loom))]
pub use self::rwlock::RwLockTable;
#[cfg(not(loom))]
pub use self::slots::{LOOKUP_ATTEMPTS, SlotGuard, SlotPin, SlotStats, SlotTable};

use crate::table::{InsertError, Table};
use crate::tuple::FourTuple;
use std::fmt;
use std::str::FromStr;

/// A concurrent connection table.
pub trait ConnTable<T>: Send + Sync {
    /// Insert, refusing a tuple already present.
    fn insert(&self, tuple: &FourTuple, value: T) -> Result<(), InsertError>;
    /// Remove; whether the tuple was present.
    fn remove(&self, tuple: &FourTuple) -> bool;
    /// Run `f` on the connection's state, with whatever the backend needs
    /// to make that safe held (SMR: a read section and the PCB's lock).
    fn lookup_with<R>(&self, tuple: &FourTuple, f: impl FnOnce(&T) -> R) -> Option<R>;
    /// Whether the tuple is present: the bare lookup (SMR: a read section
    /// and the chain walk, no lock).
    fn contains(&self, tuple: &FourTuple) -> bool;
    /// Entries (exact when quiescent).
    fn len(&self) -> usize;
    /// Whether there are no entries.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Send + 'static> ConnTable<T> for Table<T> {
    fn insert(&self, tuple: &FourTuple, value: T) -> Result<(), InsertError> {
        Table::insert(self, tuple, value)
    }
    fn remove(&self, tuple: &FourTuple) -> bool {
        Table::remove(self, tuple).is_some()
    }
    fn lookup_with<R>(&self, tuple: &FourTuple, f: impl FnOnce(&T) -> R) -> Option<R> {
        let guard = self.lock(tuple)?;
        Some(f(&guard))
    }
    #[inline]
    fn contains(&self, tuple: &FourTuple) -> bool {
        Table::contains(self, tuple)
    }
    fn len(&self) -> usize {
        Table::len(self)
    }
}

/// The backends, by the names the command line uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    Smr,
    DashMap,
    RwLock,
    Papaya,
}

impl Backend {
    pub const ALL: [Backend; 4] = [
        Backend::Smr,
        Backend::DashMap,
        Backend::RwLock,
        Backend::Papaya,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Smr => "smr",
            Backend::DashMap => "dashmap",
            Backend::RwLock => "rwlock",
            Backend::Papaya => "papaya",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown backend name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownBackend(pub String);

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown connection-table backend {:?}: use one of smr, dashmap, rwlock, papaya",
            self.0
        )
    }
}

impl std::error::Error for UnknownBackend {}

impl FromStr for Backend {
    type Err = UnknownBackend;
    fn from_str(s: &str) -> Result<Backend, UnknownBackend> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| UnknownBackend(s.to_owned()))
    }
}
