//! `PcbRef::lock` against a PCB whose memory a new connection on the same
//! tuple took over (the TIME-WAIT reopen path re-inserts the same 4-tuple).
//! A correct grace period never lets that happen under a read section; these
//! tests break that on purpose with an `Immediate` pool, so that the
//! incarnation check is shown to be the defence it claims to be.

use crate::table::{Table, TableConfig};
use crate::tuple::FourTuple;
use smr::{Domain, Mode, Protection};
use std::sync::Arc;

fn tuple() -> FourTuple {
    FourTuple::new(
        "10.0.0.1:80".parse::<std::net::SocketAddr>().unwrap(),
        "10.0.0.2:40000".parse::<std::net::SocketAddr>().unwrap(),
    )
}

/// A table whose pool hands a removed PCB straight to the next insert.
fn reusing_table(domain: &Arc<Domain>) -> Table<u32> {
    Table::with_protection(domain.clone(), TableConfig::new(16), Protection::Immediate)
}

#[test]
fn lock_refuses_a_pcb_reused_by_a_new_connection_on_the_same_tuple() {
    let domain = Arc::new(Domain::new(Mode::Default));
    let table = reusing_table(&domain);
    let t = tuple();
    table.insert(&t, 1).unwrap();
    let section = domain.enter();
    let stale = table.lookup(&section, &t).unwrap();
    assert_eq!(table.remove(&t), Some(1));
    table.insert(&t, 2).unwrap();
    let fresh = table.lookup(&section, &t).unwrap();
    assert_eq!(
        fresh.pcb, stale.pcb,
        "the test needs the new connection in the old PCB's memory"
    );
    assert!(
        stale.lock().is_none(),
        "a lookup of the old connection locked the new one"
    );
    assert!(matches!(stale.try_lock(), Ok(None)));
    let guard = fresh.lock().expect("the new connection locks");
    assert_eq!(*guard, 2);
    assert_eq!(guard.incarnation(), 2);
}

#[test]
fn lock_accepts_the_connection_it_found() {
    let domain = Arc::new(Domain::new(Mode::Default));
    let table = reusing_table(&domain);
    let t = tuple();
    table.insert(&t, 7).unwrap();
    let section = domain.enter();
    let found = table.lookup(&section, &t).unwrap();
    assert_eq!(*found.lock().unwrap(), 7);
    let mut seen = 0;
    table.for_each(&section, |r| {
        seen += 1;
        assert_eq!(*r.lock().unwrap(), 7);
    });
    assert_eq!(seen, 1);
}
