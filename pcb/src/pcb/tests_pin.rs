//! Pins (`PcbGuard::pin`, `Table::lock_pinned`, `Table::unpin`): a pinned
//! PCB is never retired, so its memory cannot pass to another connection,
//! and the last pin given back retires a removed one exactly once. The
//! tables here use an `Immediate` pool, which hands a retired PCB straight
//! to the next insert: a pin that failed to hold its PCB would show at once
//! as the new connection landing in the pinned memory.

use crate::table::{Table, TableConfig};
use crate::tuple::FourTuple;
use smr::{Domain, Mode, Protection};
use std::sync::Arc;

fn tuple(port: u16) -> FourTuple {
    FourTuple::new(
        "10.0.0.1:80".parse::<std::net::SocketAddr>().unwrap(),
        std::net::SocketAddr::new("10.0.0.2".parse().unwrap(), port),
    )
}

fn reusing_table() -> Table<u32> {
    let domain = Arc::new(Domain::new(Mode::Default));
    Table::with_protection(domain, TableConfig::new(16), Protection::Immediate)
}

#[test]
fn a_pin_reaches_its_live_connection_without_a_lookup() {
    let table = reusing_table();
    let t = tuple(40_000);
    table.insert(&t, 7).unwrap();
    let pin = table.lock(&t).unwrap().pin();
    *table.lock_pinned(&pin).expect("live") += 1;
    let guard = table.unpin(pin).expect("still live");
    assert_eq!(*guard, 8);
    assert_eq!(guard.state.pins, 0, "the count is back to zero");
    drop(guard);
    assert_eq!(table.remove(&t), Some(8));
    assert_eq!(
        table.pool_stats().live,
        0,
        "unpinned: retired by its remover"
    );
}

#[test]
fn a_removed_pinned_pcb_is_not_reused_until_its_last_pin_is_given_back() {
    let table = reusing_table();
    let t = tuple(40_000);
    table.insert(&t, 1).unwrap();
    let (first, second) = {
        let mut guard = table.lock(&t).unwrap();
        (guard.pin(), guard.pin())
    };
    assert_eq!(table.remove(&t), Some(1));
    // The same tuple again: it must land in other memory.
    table.insert(&t, 2).unwrap();
    let fresh = table.lock(&t).unwrap();
    assert_ne!(
        core::ptr::from_ref(fresh.pcb),
        first.pcb.as_ptr().cast_const(),
        "a new connection took over a pinned PCB"
    );
    drop(fresh);
    assert_eq!(
        table.pool_stats().live,
        2,
        "the dead PCB is held by its pins"
    );
    assert!(
        table.lock_pinned(&first).is_none(),
        "a pin of a removed connection"
    );
    assert!(table.unpin(first).is_none());
    assert_eq!(table.pool_stats().live, 2, "one pin left: not retired yet");
    assert!(table.unpin(second).is_none());
    assert_eq!(table.pool_stats().live, 1, "the last pin retired it");
    assert_eq!(table.poison_hits(), 0);
    // The retired memory is the next insert's (Immediate pool), and that
    // connection is the table's, not the old pins'.
    table.insert(&tuple(40_001), 3).unwrap();
    assert_eq!(*table.lock(&tuple(40_001)).unwrap(), 3);
    assert_eq!(*table.lock(&t).unwrap(), 2);
}

#[test]
fn a_pin_and_a_live_pcb_race_nothing_when_the_pin_is_given_back_first() {
    let table = reusing_table();
    let t = tuple(40_000);
    table.insert(&t, 1).unwrap();
    let pin = table.lock(&t).unwrap().pin();
    let guard = table.unpin(pin).expect("live");
    // Removed by the holder of the lock the unpin returned: no pin left, so
    // the remover retires it at once.
    assert_eq!(guard.remove(), 1);
    assert_eq!(table.pool_stats().live, 0);
}
