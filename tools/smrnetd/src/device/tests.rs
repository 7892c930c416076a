use super::*;

const V4: (IpAddr, u8) = (IpAddr::V4(core::net::Ipv4Addr::new(198, 18, 0, 1)), 24);

fn v6() -> (IpAddr, u8) {
    ("fd00:5eed::1".parse().unwrap(), 64)
}

fn link(index: u32, up: bool, mtu: u32) -> Msg {
    Msg::Link {
        deleted: false,
        index,
        flags: if up { IFF_UP } else { 0 },
        name: Some("smr0".into()),
        mtu: Some(mtu),
    }
}

fn addr(deleted: bool, (addr, prefix): (IpAddr, u8)) -> Msg {
    Msg::Addr {
        deleted,
        index: 4,
        addr,
        prefix,
    }
}

/// A follower synced to an up device with both addresses and MTU 1500.
fn synced(restore: bool) -> Follower {
    let mut f = Follower::new(Wanted {
        name: "smr0".into(),
        addresses: if restore { vec![V4, v6()] } else { vec![] },
        mtu: restore.then_some(1500),
    });
    f.on(&link(4, true, 1500));
    f.on(&addr(false, V4));
    f.on(&addr(false, v6()));
    assert_eq!(f.end_sync(), Outcome::default());
    f
}

fn kinds(o: &Outcome) -> Vec<Kind> {
    o.events.iter().map(|(k, _)| *k).collect()
}

#[test]
fn v6_address_lost_on_link_down_is_restored_on_link_up() {
    let mut f = synced(true);
    let down = f.on(&link(4, false, 1500));
    assert_eq!(kinds(&down), [Kind::LinkDown]);
    assert!(down.actions.is_empty(), "the link state is the operator's");
    let gone = f.on(&addr(true, v6()));
    assert_eq!(kinds(&gone), [Kind::AddressRemoved]);
    assert!(gone.actions.is_empty(), "nothing is added to a down link");
    let up = f.on(&link(4, true, 1500));
    assert_eq!(kinds(&up), [Kind::LinkUp]);
    assert_eq!(up.actions, [Action::AddAddress(v6().0, 64)]);
    f.sent(9, up.actions[0]);
    assert_eq!(
        kinds(&f.on(&Msg::Ack { seq: 9, errno: 0 })),
        [Kind::AddressRestored]
    );
    // The kernel's own notice of the re-added address changes nothing more.
    assert_eq!(f.on(&addr(false, v6())), Outcome::default());
}

#[test]
fn address_deleted_on_an_up_link_is_added_back_once() {
    let mut f = synced(true);
    let o = f.on(&addr(true, V4));
    assert_eq!(kinds(&o), [Kind::AddressRemoved]);
    assert_eq!(o.actions, [Action::AddAddress(V4.0, 24)]);
    assert_eq!(
        f.on(&addr(true, V4)),
        Outcome::default(),
        "a repeated notice is not a second event"
    );
}

#[test]
fn refused_restore_is_one_failure_event() {
    let mut f = synced(true);
    let o = f.on(&addr(true, V4));
    f.sent(3, o.actions[0]);
    let o = f.on(&Msg::Ack { seq: 3, errno: 1 });
    assert_eq!(kinds(&o), [Kind::RestoreFailed]);
    assert!(o.events[0].1.contains("198.18.0.1/24"), "{:?}", o.events);
    assert_eq!(f.on(&Msg::Ack { seq: 3, errno: 1 }), Outcome::default());
}

#[test]
fn mtu_changed_away_from_the_configured_one_is_set_back() {
    let mut f = synced(true);
    let o = f.on(&link(4, true, 9000));
    assert_eq!(kinds(&o), [Kind::MtuChanged]);
    assert_eq!(o.actions, [Action::SetMtu(1500)]);
    f.sent(5, Action::SetMtu(1500));
    let back = f.on(&link(4, true, 1500));
    assert_eq!(kinds(&back), [Kind::MtuChanged], "the change back is seen");
    assert!(back.actions.is_empty());
    assert_eq!(
        kinds(&f.on(&Msg::Ack { seq: 5, errno: 0 })),
        [Kind::MtuRestored]
    );
}

#[test]
fn attached_device_is_watched_but_never_changed() {
    let mut f = synced(false);
    assert!(f.on(&link(4, false, 1500)).actions.is_empty());
    assert!(
        f.on(&addr(true, V4)).events.is_empty(),
        "not ours to follow"
    );
    let up = f.on(&link(4, true, 9000));
    assert_eq!(kinds(&up), [Kind::LinkUp, Kind::MtuChanged]);
    assert!(up.actions.is_empty());
}

#[test]
fn deleted_device_stops_with_its_name() {
    let mut f = synced(true);
    let o = f.on(&Msg::Link {
        deleted: true,
        index: 4,
        flags: 0,
        name: Some("smr0".into()),
        mtu: None,
    });
    assert_eq!(o.stop.as_deref(), Some("TUN device smr0 was deleted"));
}

#[test]
fn other_devices_are_ignored() {
    let mut f = synced(true);
    let mut other = link(5, false, 1280);
    if let Msg::Link { name, .. } = &mut other {
        *name = Some("eth0".into());
    }
    assert_eq!(f.on(&other), Outcome::default());
    assert_eq!(
        f.on(&Msg::Addr {
            deleted: true,
            index: 5,
            addr: V4.0,
            prefix: 24
        }),
        Outcome::default()
    );
}

#[test]
fn sync_restores_what_went_missing_while_unread() {
    let mut f = synced(true);
    f.begin_sync();
    f.on(&link(4, true, 1400));
    f.on(&addr(false, V4));
    let o = f.end_sync();
    assert!(o.events.is_empty());
    assert_eq!(
        o.actions,
        [Action::AddAddress(v6().0, 64), Action::SetMtu(1500)]
    );
}

#[test]
fn sync_without_the_device_stops() {
    let mut f = Follower::new(Wanted {
        name: "smr0".into(),
        addresses: vec![V4],
        mtu: Some(1500),
    });
    assert!(f.end_sync().stop.is_some());
}
