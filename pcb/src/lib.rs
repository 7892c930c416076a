//! The connection table (the BSD `in_pcb` hash), read lock-free under SMR.
//!
//! Every incoming segment finds its connection with [`Table::lookup`] inside
//! an SMR read section: no locks, no reference counts, no stores to shared
//! memory. A hit is a [`PcbRef`] bound to the section; [`PcbRef::lock`] takes
//! the connection's own lock and re-validates it (FreeBSD's `inp_smr_lock`),
//! giving a [`PcbGuard`] that may outlive the section. Inserts and removes
//! take a per-bucket lock; removed PCBs go back to an [`smr::PoolCache`] and
//! are reused only after every reader that could still see them has left.
//!
//! Around it: the listen table with load-balancing groups and listener drain
//! ([`ListenTable`]), keyed flow hashing ([`FlowHash`]), RFC 6056 ephemeral
//! ports ([`EphemeralPorts`]), the baseline tables behind one trait
//! ([`ConnTable`]) for comparison, and the same baselines as reference-counted
//! slots ([`SlotTable`]) for a stack to run on instead of the SMR table.

mod backend;
mod hash;
mod listen;
mod pcb;
mod ports;
mod primitive;
mod stats;
mod table;
mod tuple;

pub use backend::{Backend, ConnTable, UnknownBackend};
#[cfg(not(loom))]
pub use backend::{
    DashMapTable, LOOKUP_ATTEMPTS, PapayaTable, RwLockTable, SlotGuard, SlotPin, SlotStats,
    SlotTable,
};
pub use hash::{FlowBuildHasher, FlowHash};
pub use listen::{
    CloseError, Found, InFlight, ListenError, ListenOptions, ListenRef, ListenTable, Listener,
};
pub use pcb::{Pcb, PcbGuard, PcbPin, PcbRef, WouldBlock};
pub use ports::{Claim, EphemeralPorts, PortError};
pub use stats::{ChainStats, SAMPLE_BUCKETS};
pub use table::{InsertError, Layout, ResizeStats, ResizeStep, STRIPES, Table, TableConfig};
pub use tuple::{Endpoint, FourTuple, Key};
