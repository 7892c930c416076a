//! Listener lookup order, load-balancing groups, and drain.
#![cfg(not(loom))]

use pcb::{CloseError, FlowHash, Found, FourTuple, ListenError, ListenOptions, ListenTable, Table};
use smr::{Domain, Mode};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

fn tables() -> (Table<u32>, ListenTable) {
    let d = Arc::new(Domain::new(Mode::Default));
    (
        Table::new(d.clone(), 16),
        ListenTable::new(d, FlowHash::with_seed(3)),
    )
}

const LOCAL: [u8; 4] = [10, 0, 0, 1];

fn syn(fport: u16) -> FourTuple {
    FourTuple::v4(LOCAL, 80, [192, 0, 2, 9], fport)
}

fn local() -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::from(LOCAL)))
}

fn found_listener(t: &Table<u32>, l: &ListenTable, s: &FourTuple) -> Option<u64> {
    let section = t.domain().enter();
    match l.find(t, &section, s, true) {
        Found::Listener(r) => Some(r.id()),
        _ => None,
    }
}

#[test]
fn syn_falls_back_to_a_bound_listener_before_a_wildcard_one() {
    let (t, l) = tables();
    let wild = l.listen(None, 80, ListenOptions::default()).unwrap();
    assert_eq!(found_listener(&t, &l, &syn(1)), Some(wild.id()));
    let bound = l.listen(local(), 80, ListenOptions::default()).unwrap();
    assert_eq!(found_listener(&t, &l, &syn(1)), Some(bound.id()));
    // Another local address only matches the wildcard.
    let other = FourTuple::v4([10, 0, 0, 2], 80, [192, 0, 2, 9], 1);
    assert_eq!(found_listener(&t, &l, &other), Some(wild.id()));
    // A connection with the exact tuple wins over both.
    t.insert(&syn(1), 7).unwrap();
    let section = t.domain().enter();
    assert!(matches!(
        l.find(&t, &section, &syn(1), true),
        Found::Connection(_)
    ));
    // Wrong port: nothing.
    let miss = FourTuple::v4(LOCAL, 81, [192, 0, 2, 9], 1);
    assert!(matches!(l.find(&t, &section, &miss, true), Found::Nothing));
}

#[test]
fn second_listener_on_a_port_is_refused_unless_both_join_a_group() {
    let (_t, l) = tables();
    let _a = l.listen(local(), 80, ListenOptions::default()).unwrap();
    let err = l
        .listen(local(), 80, ListenOptions { lb_group: true })
        .unwrap_err();
    assert_eq!(
        err,
        ListenError::AddrInUse {
            local: local(),
            port: 80
        }
    );
    assert!(err.to_string().contains("lb_group"));
}

#[test]
fn lb_group_spreads_flows_over_members_and_keeps_a_flow_on_one() {
    let (t, l) = tables();
    let lb = ListenOptions { lb_group: true };
    let members: Vec<_> = (0..4).map(|_| l.listen(local(), 80, lb).unwrap()).collect();
    let mut hits = std::collections::HashMap::new();
    for p in 0..400 {
        let id = found_listener(&t, &l, &syn(p)).unwrap();
        assert_eq!(
            found_listener(&t, &l, &syn(p)),
            Some(id),
            "a flow must stick"
        );
        *hits.entry(id).or_insert(0) += 1;
    }
    assert_eq!(hits.len(), 4, "every member gets flows: {hits:?}");
    assert!(hits.values().all(|&n| n > 50), "{hits:?}");
    for m in members {
        l.close(m).unwrap();
    }
    assert_eq!(found_listener(&t, &l, &syn(1)), None);
}

#[test]
fn try_close_is_busy_while_a_handshake_is_in_flight_then_succeeds() {
    let (t, l) = tables();
    let lst = l.listen(local(), 80, ListenOptions::default()).unwrap();
    let in_flight = {
        let section = t.domain().enter();
        l.lookup(&section, &syn(1)).unwrap().acquire().unwrap()
    };
    assert_eq!(l.try_close(&lst), Err(CloseError::Busy { in_flight: 1 }));
    // Still listening and usable.
    let second = {
        let section = t.domain().enter();
        l.lookup(&section, &syn(2)).unwrap().acquire()
    };
    assert!(second.is_some());
    drop(second);
    drop(in_flight);
    assert_eq!(l.try_close(&lst), Ok(()));
    assert_eq!(found_listener(&t, &l, &syn(1)), None);
    assert_eq!(l.try_close(&lst), Err(CloseError::Closed));
}

#[test]
fn close_waits_for_in_flight_accepts_and_refuses_new_ones() {
    let (t, l) = tables();
    let lst = l.listen(None, 80, ListenOptions::default()).unwrap();
    let in_flight = {
        let section = t.domain().enter();
        l.lookup(&section, &syn(1)).unwrap().acquire().unwrap()
    };
    std::thread::scope(|s| {
        let closer = s.spawn(|| l.close(lst));
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !closer.is_finished(),
            "close must wait for the accept in flight"
        );
        // Meanwhile nobody finds it.
        assert_eq!(found_listener(&t, &l, &syn(2)), None);
        drop(in_flight);
        assert_eq!(closer.join().unwrap(), Ok(()));
    });
    assert_eq!(found_listener(&t, &l, &syn(1)), None);
}

#[test]
fn no_lookup_finds_a_listener_after_a_successful_try_close_under_load() {
    let (t, l) = tables();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let lst = l.listen(local(), 80, ListenOptions::default()).unwrap();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut p = 0u16;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    p = p.wrapping_add(1);
                    let section = t.domain().enter();
                    if let Some(r) = l.lookup(&section, &syn(p)) {
                        let held = r.acquire();
                        drop(section);
                        std::hint::black_box(&held);
                    }
                }
            });
        }
        let mut tries = 0;
        while l.try_close(&lst).is_err() {
            tries += 1;
            assert!(tries < 1_000_000, "try_close never succeeded");
        }
        for p in 0..1000 {
            assert_eq!(found_listener(&t, &l, &syn(p)), None);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}
