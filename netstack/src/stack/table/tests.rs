//! The table layer under concurrent churn: every guard is the connection it
//! was looked up by, on every backend.

use core::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Relaxed, SeqCst},
};
use std::thread;
use std::time::{Duration, Instant};

use pcb::{Backend, Endpoint, EphemeralPorts, FlowHash, FourTuple, InsertError, PortError};

use super::{ConnGuard, ConnTable};
use crate::stack::conn::{Conn, ConnState};

const US: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const CHURNERS: u16 = 3;
/// Local ports each churner inserts explicitly (its own range).
const PORTS_EACH: u16 = 8;
const FIRST_PORT: u16 = 1000;

fn table(backend: Backend, cap: usize) -> ConnTable {
    match backend {
        Backend::Smr => ConnTable::Smr(pcb::Table::with_config(
            Arc::new(smr::Domain::new(smr::Mode::Default)),
            pcb::TableConfig {
                expected: 64,
                // The pool's cap also counts PCBs waiting for readers, and
                // must hold a chunk: the tests' caps are for the baselines.
                pool: smr::PoolConfig {
                    max_objects: cap.max(1 << 20),
                    ..smr::PoolConfig::default()
                },
                hash: Some(FlowHash::with_seed(1)),
                auto_resize: true,
                min_buckets: None,
                stripes: pcb::STRIPES,
                layout: pcb::Layout::default(),
            },
        )),
        b => ConnTable::Slots(pcb::SlotTable::new(b, 64, cap, FlowHash::with_seed(1))),
    }
}

fn tuple(port: u16) -> FourTuple {
    FourTuple::new(Endpoint::new(US, port), Endpoint::new(PEER, 80))
}

/// A connection id that names the local port it was inserted under.
fn id_for(port: u16, seq: u64) -> u64 {
    u64::from(port) << 40 | seq
}

fn conn(id: u64) -> Conn {
    Conn::new(ConnState::Reserved, id, 0)
}

/// The newest sequence number removed on each explicit port, stored after
/// the remove: a guard holds its connection in the table, so while it exists
/// its own removal cannot have been recorded.
struct Removed([AtomicU64; (CHURNERS * PORTS_EACH) as usize]);

impl Removed {
    fn new() -> Removed {
        Removed(std::array::from_fn(|_| AtomicU64::new(0)))
    }

    fn slot(&self, port: u16) -> &AtomicU64 {
        &self.0[usize::from(port - FIRST_PORT)]
    }
}

fn check(guard: &ConnGuard<'_>, asked: &FourTuple, removed: &Removed) {
    assert_eq!(guard.tuple(), *asked, "a guard for another tuple");
    let port = guard.id >> 40;
    if port != 0 {
        assert_eq!(
            port,
            u64::from(asked.local.port),
            "a stale slot: id {:#x} found under port {}",
            guard.id,
            asked.local.port
        );
        let seq = guard.id & ((1 << 40) - 1);
        // SeqCst: pairs with the store after the remove (a test; simplest).
        let gone = removed.slot(asked.local.port).load(SeqCst);
        assert!(
            gone < seq,
            "a removed connection (seq {seq}, removed up to {gone}) still found on port {}",
            asked.local.port
        );
    }
}

/// Churners insert, look up and remove connections on their own ports (ids
/// naming the port) and connect on ephemeral ports (ids naming none), while
/// readers lock random tuples and check each guard against the tuple asked.
fn churn_with_lookups(backend: Backend) {
    let table = Arc::new(table(backend, 4096));
    let ports = Arc::new(EphemeralPorts::with_hashes(
        40000..=40063,
        FlowHash::with_seed(2),
        FlowHash::with_seed(3),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let found = Arc::new(AtomicU64::new(0));
    let removed = Arc::new(Removed::new());
    let deadline = Instant::now() + Duration::from_millis(400);
    // On a loaded machine the readers may not have run by the deadline: churn
    // on until one has found a connection, for at most 20 s.
    let hard_deadline = Instant::now() + Duration::from_secs(20);
    let mut threads = Vec::new();
    for t in 0..CHURNERS {
        let (table, ports, removed, found) =
            (table.clone(), ports.clone(), removed.clone(), found.clone());
        threads.push(thread::spawn(move || {
            let mine = FIRST_PORT + t * PORTS_EACH;
            let mut seq = 0u64;
            let mut rounds = 0u64;
            let go_on = |now: Instant| {
                // Relaxed: a progress check only.
                now < deadline || (found.load(Relaxed) == 0 && now < hard_deadline)
            };
            while go_on(Instant::now()) && rounds < 1_000_000 {
                rounds += 1;
                seq += 1;
                let port = mine + (seq % u64::from(PORTS_EACH)) as u16;
                let want = tuple(port);
                match table.insert(&want, conn(id_for(port, seq))) {
                    Ok(()) => {}
                    // The SMR pool may refuse while retired PCBs wait for
                    // readers (its documented policy); a baseline never
                    // reaches its cap here.
                    Err(InsertError::Exhausted) if backend == Backend::Smr => continue,
                    Err(e) => panic!("{backend}: {e}"),
                }
                let guard = table.lock(&want).expect("our own connection vanished");
                check(&guard, &want, &removed);
                assert_eq!(guard.id, id_for(port, seq));
                drop(guard.remove());
                // SeqCst: see `check`.
                removed.slot(port).store(seq, SeqCst);
                let connected = match table.connect(&ports, US, Endpoint::new(PEER, 80), conn(seq))
                {
                    Ok(t) => t,
                    Err(PortError::NoPcb) if backend == Backend::Smr => continue,
                    Err(e) => panic!("{backend}: {e}"),
                };
                let guard = table.lock(&connected).expect("our connect vanished");
                check(&guard, &connected, &removed);
                assert_eq!(guard.id, seq);
                drop(guard.remove());
            }
            rounds
        }));
    }
    let mut readers = Vec::new();
    for r in 0..2u64 {
        let (table, stop, found, removed) =
            (table.clone(), stop.clone(), found.clone(), removed.clone());
        readers.push(thread::spawn(move || {
            let mut x = r + 1;
            let span = CHURNERS * PORTS_EACH;
            while !stop.load(Relaxed) {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let port = if x >> 63 == 0 {
                    FIRST_PORT + (x >> 33) as u16 % span
                } else {
                    40000 + (x >> 33) as u16 % 64
                };
                let asked = tuple(port);
                if let Some(guard) = table.lock(&asked) {
                    check(&guard, &asked, &removed);
                    // Relaxed: statistics only.
                    found.fetch_add(1, Relaxed);
                }
            }
        }));
    }
    let rounds: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    // Relaxed: a stop flag; the join below orders the rest.
    stop.store(true, Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert!(rounds > 100, "{backend}: only {rounds} rounds");
    assert!(
        found.load(Relaxed) > 0,
        "{backend}: readers never found one"
    );
    assert_eq!(table.len(), 0, "{backend}");
    assert_eq!(table.count_unlocked(|_| true), 0, "{backend}");
}

#[test]
fn guards_match_their_tuple_under_churn_on_dashmap() {
    churn_with_lookups(Backend::DashMap);
}

#[test]
fn guards_match_their_tuple_under_churn_on_rwlock() {
    churn_with_lookups(Backend::RwLock);
}

#[test]
fn guards_match_their_tuple_under_churn_on_papaya() {
    churn_with_lookups(Backend::Papaya);
}

#[test]
fn guards_match_their_tuple_under_churn_on_smr() {
    churn_with_lookups(Backend::Smr);
}

#[test]
fn a_baseline_refuses_inserts_beyond_its_cap_and_counts_them() {
    for backend in [Backend::DashMap, Backend::RwLock, Backend::Papaya] {
        let table = table(backend, 2);
        table.insert(&tuple(1), conn(1)).unwrap();
        assert_eq!(
            table.insert(&tuple(1), conn(2)),
            Err(InsertError::Duplicate(tuple(1)))
        );
        table.insert(&tuple(2), conn(3)).unwrap();
        assert_eq!(
            table.insert(&tuple(3), conn(4)),
            Err(InsertError::Exhausted),
            "{backend}"
        );
        let ports = EphemeralPorts::new(40000..=40010);
        assert_eq!(
            table.connect(&ports, US, Endpoint::new(PEER, 80), conn(5)),
            Err(PortError::NoPcb),
            "{backend}"
        );
        assert_eq!(table.pool_stats().exhausted, 2, "{backend}");
        assert_eq!(table.pool_stats().max_objects, 2, "{backend}");
        assert_eq!(table.pool_stats().live, 2, "{backend}");
        assert_eq!(table.chain_stats().entries, 2, "{backend}");
        drop(table.lock(&tuple(1)).unwrap().remove());
        table.insert(&tuple(3), conn(6)).unwrap();
        assert_eq!(table.len(), 2, "{backend}");
    }
}

#[test]
fn count_unlocked_skips_a_connection_someone_holds() {
    for backend in Backend::ALL {
        let table = table(backend, 16);
        table.insert(&tuple(1), conn(1)).unwrap();
        table.insert(&tuple(2), conn(2)).unwrap();
        assert_eq!(table.count_unlocked(|_| true), 2, "{backend}");
        let held = table.lock(&tuple(1)).unwrap();
        assert_eq!(table.count_unlocked(|_| true), 1, "{backend}");
        assert_eq!(table.count_unlocked(|c| c.id == 2), 1, "{backend}");
        drop(held);
    }
}

#[test]
fn a_guard_stays_small_because_the_stack_moves_it_by_value() {
    // A guard travels by value through lookups and dispositions; a large
    // one (an inline tuple made it 88 bytes) costs the SMR path measurably.
    assert!(
        core::mem::size_of::<ConnGuard<'_>>() <= 6 * core::mem::size_of::<usize>(),
        "ConnGuard is {} bytes",
        core::mem::size_of::<ConnGuard<'_>>()
    );
}
