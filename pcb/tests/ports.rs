//! RFC 6056 ephemeral ports against the table.
#![cfg(not(loom))]

use pcb::{Endpoint, EphemeralPorts, FlowHash, PortError, Table};
use smr::{Domain, Mode};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

fn table() -> Table<u32> {
    Table::new(Arc::new(Domain::new(Mode::Default)), 64)
}

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

fn dest(last: u8) -> Endpoint {
    Endpoint::new(Ipv4Addr::new(192, 0, 2, last), 443)
}

#[test]
fn small_range_is_exhausted_with_a_clear_error() {
    let t = table();
    let ports = EphemeralPorts::with_hashes(
        40000..=40004,
        FlowHash::with_seed(1),
        FlowHash::with_seed(2),
    );
    let mut got = HashSet::new();
    for i in 0..5 {
        let tuple = ports.connect(&t, LOCAL, dest(1), i).unwrap();
        assert!((40000..=40004).contains(&tuple.local.port));
        assert!(got.insert(tuple.local.port), "port handed out twice");
        assert!(t.contains(&tuple));
    }
    let err = ports.connect(&t, LOCAL, dest(1), 9).unwrap_err();
    assert_eq!(
        err,
        PortError::Exhausted {
            range: 40000..=40004,
            foreign: dest(1)
        }
    );
    assert!(err.to_string().contains("widen the range"));
    assert_eq!(t.len(), 5);
    // Freeing one makes exactly that one available again.
    let freed = t.remove(&pcb::FourTuple::new(Endpoint::new(LOCAL, 40002), dest(1)));
    assert!(freed.is_some());
    let again = ports.connect(&t, LOCAL, dest(1), 10).unwrap();
    assert_eq!(again.local.port, 40002);
}

#[test]
fn the_same_local_port_is_reused_for_different_destinations() {
    let t = table();
    let ports = EphemeralPorts::new(50000..=50000);
    let a = ports.connect(&t, LOCAL, dest(1), 1).unwrap();
    let b = ports.connect(&t, LOCAL, dest(2), 2).unwrap();
    assert_eq!((a.local.port, b.local.port), (50000, 50000));
    assert!(ports.connect(&t, LOCAL, dest(1), 3).is_err());
}

#[test]
fn destinations_start_at_different_points_of_the_range() {
    let t = table();
    let ports = EphemeralPorts::new(10000..=60000);
    let starts: HashSet<u16> = (1..=32)
        .map(|d| ports.connect(&t, LOCAL, dest(d), 0).unwrap().local.port)
        .collect();
    assert!(
        starts.len() >= 30,
        "first ports of 32 destinations: {starts:?}"
    );
}
