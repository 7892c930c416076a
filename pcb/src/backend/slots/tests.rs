//! A slot found before its connection was removed never validates as the
//! next connection on the same tuple.

use super::*;

fn tuple() -> FourTuple {
    FourTuple::new(
        "10.0.0.1:80".parse::<std::net::SocketAddr>().unwrap(),
        "10.0.0.2:40000".parse::<std::net::SocketAddr>().unwrap(),
    )
}

#[test]
fn a_stale_slot_never_validates_as_the_next_connection_on_its_tuple() {
    for backend in [Backend::DashMap, Backend::RwLock, Backend::Papaya] {
        let table = SlotTable::new(backend, 16, 16, FlowHash::with_seed(1));
        let t = tuple();
        table.insert(&t, 1u32).unwrap();
        // A lookup that cloned the `Arc` and was then preempted before the
        // slot's lock.
        let stale = table.map.get(&Key::from(&t)).unwrap();
        assert_eq!(table.lock(&t).unwrap().remove(), 1);
        table.insert(&t, 2).unwrap();
        assert!(
            table.validate(stale, |s| Some(lock(s))).is_none(),
            "{backend:?}: the old slot locked as the new connection"
        );
        assert_eq!(*table.lock(&t).unwrap(), 2, "{backend:?}");
    }
}
