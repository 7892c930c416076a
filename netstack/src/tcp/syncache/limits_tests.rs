//! The SYN cache's limits moved while it runs: raised, lowered below the
//! entries it holds, and refused above the capacity allocated at start.

use core::time::Duration;

use super::tests::{LISTENER, cache_with, cookie, full_offer, local, peer, reply, syn, t0};
use super::*;

fn small() -> SynCacheConfig {
    SynCacheConfig {
        max_entries: 8,
        max_per_listener: 8,
        shards: 1,
        ..SynCacheConfig::default()
    }
}

/// Sends a SYN from peer `n`; whether it got an entry (else a cookie).
fn syn_from(c: &SynCache, n: u16, mib: &TcpMib) -> bool {
    match c.on_syn(t0(), LISTENER, local(), peer(n), &syn(1, full_offer()), mib) {
        SynDisposition::Reply(_) => true,
        d @ SynDisposition::Cookie(_) => {
            cookie(d);
            false
        }
        other => panic!("peer {n}: {other:?}"),
    }
}

#[test]
fn a_lowered_limit_keeps_the_entries_over_it_and_gives_new_syns_cookies() {
    let c = cache_with(small());
    let mib = TcpMib::default();
    for n in 0..6 {
        assert!(syn_from(&c, n, &mib));
    }
    c.set_limits(2, 8).unwrap();
    assert_eq!(c.limits(), (2, 8));
    assert_eq!(c.len(), 6, "the entries over the new limit are kept");
    for n in 6..10 {
        assert!(
            !syn_from(&c, n, &mib),
            "peer {n} got an entry over the limit"
        );
    }
    assert_eq!(
        mib.syncache_overflow.get(),
        4,
        "each refused SYN is counted"
    );
    assert_eq!(c.len(), 6);
    // The kept entries leave by themselves (expiry after their retries),
    // and then the new limit is the bound.
    c.on_timeout(t0() + Duration::from_secs(100), &mib, |_, _, _| {});
    assert!(c.is_empty());
    let admitted = (10..20).filter(|&n| syn_from(&c, n, &mib)).count();
    assert_eq!(admitted, 2);
}

#[test]
fn a_lowered_per_listener_limit_applies_to_new_entries() {
    let c = cache_with(small());
    let mib = TcpMib::default();
    for n in 0..4 {
        assert!(syn_from(&c, n, &mib));
    }
    c.set_limits(8, 1).unwrap();
    assert!(!syn_from(&c, 4, &mib));
    assert_eq!(c.listener_len(LISTENER), 4);
}

#[test]
fn a_raised_limit_admits_the_next_syn() {
    let c = cache_with(small());
    let mib = TcpMib::default();
    c.set_limits(1, 1).unwrap();
    assert!(syn_from(&c, 0, &mib));
    assert!(!syn_from(&c, 1, &mib));
    c.set_limits(8, 8).unwrap();
    for n in 2..9 {
        assert!(syn_from(&c, n, &mib), "peer {n} after the raise");
    }
    assert_eq!(c.len(), 8);
    assert!(!syn_from(&c, 9, &mib), "the raised limit is still a bound");
}

#[test]
fn a_limit_above_the_allocated_capacity_is_refused_and_changes_nothing() {
    let c = cache_with(small());
    c.set_limits(4, 2).unwrap();
    let e = c.set_limits(9, 9).unwrap_err();
    assert_eq!((e.asked, e.capacity), (9, 8));
    assert!(e.to_string().contains("restart"), "{e}");
    assert_eq!(c.limits(), (4, 2), "nothing changed");
    assert_eq!(c.capacity(), 8);
    let mib = TcpMib::default();
    let h = reply(c.on_syn(
        t0(),
        LISTENER,
        local(),
        peer(0),
        &syn(1, full_offer()),
        &mib,
    ));
    assert!(h.flags.contains(TcpFlags::SYN));
}
