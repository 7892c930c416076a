//! RFC 6056 ephemeral ports against the table.
#![cfg(not(loom))]

use pcb::{Backend, Endpoint, EphemeralPorts, FlowHash, PortError, SlotTable, Table};
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

#[test]
fn every_slot_backend_picks_the_same_ports_as_the_smr_table() {
    let hashes = || (FlowHash::with_seed(5), FlowHash::with_seed(6));
    let smr_ports = {
        let (f, g) = hashes();
        EphemeralPorts::with_hashes(40000..=40015, f, g)
    };
    let t = table();
    let want: Vec<u16> = (0..16)
        .map(|i| smr_ports.connect(&t, LOCAL, dest(3), i).unwrap().local.port)
        .collect();
    for backend in [Backend::DashMap, Backend::RwLock, Backend::Papaya] {
        let (f, g) = hashes();
        let ports = EphemeralPorts::with_hashes(40000..=40015, f, g);
        let slots = SlotTable::new(backend, 16, 64, FlowHash::with_seed(7));
        let got: Vec<u16> = (0..16)
            .map(|i| slots.connect(&ports, LOCAL, dest(3), i).unwrap().local.port)
            .collect();
        assert_eq!(got, want, "{backend}");
        assert_eq!(
            slots.connect(&ports, LOCAL, dest(3), 99),
            Err(PortError::Exhausted {
                range: 40000..=40015,
                foreign: dest(3)
            }),
            "{backend}"
        );
        assert_eq!(slots.len(), 16, "{backend}: a failed connect left an entry");
        // Freeing one makes exactly that one available again.
        let tuple = pcb::FourTuple::new(Endpoint::new(LOCAL, want[7]), dest(3));
        assert_eq!(slots.lock(&tuple).map(|g| g.remove()), Some(7));
        let again = slots.connect(&ports, LOCAL, dest(3), 100).unwrap();
        assert_eq!(again, tuple, "{backend}");
    }
}

#[test]
fn a_slot_table_at_its_cap_refuses_connect_without_searching() {
    let ports = EphemeralPorts::new(40000..=40100);
    let slots = SlotTable::new(Backend::DashMap, 4, 1, FlowHash::with_seed(1));
    slots.connect(&ports, LOCAL, dest(1), 1).unwrap();
    assert_eq!(
        slots.connect(&ports, LOCAL, dest(2), 2),
        Err(PortError::NoPcb)
    );
    assert_eq!(slots.stats().exhausted, 1);
    assert_eq!(slots.len(), 1);
}
