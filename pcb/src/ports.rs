//! Ephemeral ports for active opens: RFC 6056 §3.3.4, Algorithm 4
//! ("double-hash port selection"), checked against the exact table.
//!
//! Invariant: **a port is handed out only together with the insert of its
//! connection**, under the bucket lock's duplicate check, so two concurrent
//! connects cannot both get the same 4-tuple, and a local port is reused for
//! different destinations as freely as uniqueness of the 4-tuple allows.
//!
//! RFC 6056, Algorithm 4:
//!
//! > offset = F(local_IP, remote_IP, remote_port, secret_key1);
//! > index = G(local_IP, remote_IP, remote_port, secret_key2);
//! > count = num_ephemeral;
//! > do {
//! >     next_ephemeral = (offset + table[index]) % num_ephemeral;
//! >     table[index]++;
//! >     port = min_ephemeral + next_ephemeral;
//! >     if (check_suitable_port(port)) return port;
//! >     count--;
//! > } while (count > 0);
//!
//! F gives every destination its own permutation start; the perturbation
//! table (indexed by G) makes successive connections to one destination walk
//! on, so they do not collide with their own TIME_WAIT predecessors, while
//! an observer of one destination learns nothing about another's sequence.

use crate::hash::FlowHash;
use crate::table::{InsertError, Table};
use crate::tuple::{Endpoint, FourTuple, Key};
use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::atomic::AtomicU16;
use std::sync::atomic::Ordering::Relaxed;

fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Perturbation table entries (RFC 6056 suggests a small table).
const TABLE_LENGTH: usize = 256;

/// Why no ephemeral port was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortError {
    /// Every port in the range is already used towards this destination.
    Exhausted {
        range: RangeInclusive<u16>,
        foreign: Endpoint,
    },
    /// No PCB could be allocated (see [`InsertError::Exhausted`]).
    NoPcb,
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortError::Exhausted { range, foreign } => write!(
                f,
                "no ephemeral port left in {}..={} towards {foreign}: every one is in use \
                 (including TIME_WAIT); widen the range, add a local address, or close \
                 connections",
                range.start(),
                range.end()
            ),
            PortError::NoPcb => InsertError::Exhausted.fmt(f),
        }
    }
}

impl std::error::Error for PortError {}

/// What a table answered when [`EphemeralPorts::connect_with`] offered it
/// a tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The connection is now in the table under this tuple.
    Claimed,
    /// The tuple is taken: try the next candidate.
    InUse,
    /// The table cannot take any connection (its cap): stop searching.
    NoPcb,
}

/// The ephemeral port allocator for one range.
pub struct EphemeralPorts {
    range: RangeInclusive<u16>,
    /// F, keyed with secret 1.
    offset: FlowHash,
    /// G, keyed with secret 2.
    index: FlowHash,
    /// Relaxed counters: a lost increment only repeats a candidate, which
    /// the insert's duplicate check rejects.
    table: Box<[AtomicU16]>,
}

impl fmt::Debug for EphemeralPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EphemeralPorts")
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl EphemeralPorts {
    /// An allocator over `range` with fresh random secrets.
    ///
    /// # Panics
    /// If the range is empty.
    pub fn new(range: RangeInclusive<u16>) -> EphemeralPorts {
        EphemeralPorts::with_hashes(range, FlowHash::random(), FlowHash::random())
    }

    /// As [`new`](Self::new), with the two keyed hashes given (tests).
    pub fn with_hashes(range: RangeInclusive<u16>, f: FlowHash, g: FlowHash) -> EphemeralPorts {
        assert!(!range.is_empty(), "pcb::EphemeralPorts: empty port range");
        let table = (0..TABLE_LENGTH as u64)
            .map(|i| AtomicU16::new(g.words(&[u64::MAX, i]) as u16))
            .collect();
        EphemeralPorts {
            range,
            offset: f,
            index: g,
            table,
        }
    }

    /// Connect: choose a local port on `local` towards `foreign` and insert
    /// the connection with state `value`, in one step. Returns the tuple.
    pub fn connect<T: Send + 'static>(
        &self,
        table: &Table<T>,
        local: IpAddr,
        foreign: Endpoint,
        value: T,
    ) -> Result<FourTuple, PortError> {
        let pcb = table.prepare(value).map_err(|_| PortError::NoPcb)?;
        let mut pending = Some(pcb);
        self.connect_with(local, foreign, |tuple| {
            let Some(pcb) = pending.take() else {
                return Claim::InUse;
            };
            match table.publish(pcb, Key::from(tuple)) {
                Ok(()) => Claim::Claimed,
                Err(back) => {
                    pending = Some(back);
                    Claim::InUse
                }
            }
        })
    }

    /// Connect on any table: walk the RFC 6056 candidates for `local` →
    /// `foreign` and offer each tuple to `claim`, which inserts the
    /// connection under that tuple if it is free (the table's own duplicate
    /// check, so the invariant above holds for every backend). Returns the
    /// first tuple claimed.
    pub fn connect_with(
        &self,
        local: IpAddr,
        foreign: Endpoint,
        mut claim: impl FnMut(&FourTuple) -> Claim,
    ) -> Result<FourTuple, PortError> {
        let (l, f) = (addr_bits(local), addr_bits(foreign.addr));
        let dest = [
            l as u64,
            (l >> 64) as u64,
            f as u64,
            (f >> 64) as u64,
            u64::from(foreign.port),
        ];
        let offset = self.offset.words(&dest);
        let index = self.index.words(&dest) as usize % TABLE_LENGTH;
        let first = u64::from(*self.range.start());
        let num = u64::from(*self.range.end()) - first + 1;
        // Relaxed: see the field's docs.
        let base = u64::from(self.table[index].load(Relaxed));
        // The RFC's `table[index]++` per candidate, applied once at the end:
        // a local count cannot wrap mid-search and skip candidates.
        for tried in 1..=num {
            let next = (offset % num + base + tried - 1) % num;
            let tuple = FourTuple::new(Endpoint::new(local, (first + next) as u16), foreign);
            match claim(&tuple) {
                Claim::Claimed => {
                    // Relaxed: see the field's docs.
                    self.table[index].fetch_add(tried as u16, Relaxed);
                    return Ok(tuple);
                }
                Claim::InUse => {}
                Claim::NoPcb => return Err(PortError::NoPcb),
            }
        }
        Err(PortError::Exhausted {
            range: self.range.clone(),
            foreign,
        })
    }
}
