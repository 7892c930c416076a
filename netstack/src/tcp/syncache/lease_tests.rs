//! The shards' leases of the budget: adding and removing entries leaves the
//! shared counts alone most of the time, and the counts stay exact.

use core::net::SocketAddr;
use core::sync::atomic::Ordering;

use super::tests::{LISTENER, cache, established, final_ack, full_offer, local, reply, syn, t0};
use super::*;

fn client(n: u32) -> SocketAddr {
    SocketAddr::new(
        core::net::Ipv4Addr::from_bits(0x0a00_0000 | (n >> 12)).into(),
        1024 + (n & 0xfff) as u16,
    )
}

fn shared_writes(c: &SynCache) -> usize {
    c.budget.shared_writes.load(Ordering::Relaxed)
}

/// Handshakes a few at a time, as a busy listener sees them: each SYN adds
/// an entry, each final ACK removes it. Without leases that is two writes
/// of the shared counts per handshake; with them, a fraction of that.
#[test]
fn churn_through_one_listener_rarely_writes_the_shared_counts() {
    let c = cache();
    assert!(c.lease_batch(c.limits()) > 1, "the defaults lease");
    let mib = TcpMib::default();
    let rounds = 500u32;
    let in_flight = 64u32;
    for round in 0..rounds {
        let synacks: Vec<(SocketAddr, TcpHeader)> = (0..in_flight)
            .map(|i| {
                let peer = client(round * in_flight + i);
                let h = reply(c.on_syn(t0(), LISTENER, local(), peer, &syn(i, full_offer()), &mib));
                (peer, h)
            })
            .collect();
        assert_eq!(
            c.len(),
            in_flight as usize,
            "len counts entries, not leases"
        );
        assert_eq!(c.listener_len(LISTENER), in_flight as usize);
        for (peer, h) in &synacks {
            established(c.on_segment(t0(), LISTENER, local(), *peer, &final_ack(h, 4243), &mib));
        }
        assert_eq!(c.len(), 0);
        assert_eq!(c.listener_len(LISTENER), 0);
    }
    let handshakes = (rounds * in_flight) as usize;
    let writes = shared_writes(&c);
    assert!(
        writes * 8 < handshakes,
        "{writes} writes of the shared counts for {handshakes} handshakes"
    );
    // Closing the listener hands every lease back: nothing stays counted.
    c.drain_listener(LISTENER);
    assert_eq!(c.budget.total(), 0);
    assert_eq!(c.budget.of(LISTENER), 0);
}

/// A limit lowered under leased units: new SYNs get cookies, and the
/// leases go back, so the counts drain to the entries.
#[test]
fn a_lowered_limit_refuses_leased_units_and_takes_them_back() {
    let c = cache();
    let mib = TcpMib::default();
    for i in 0..256 {
        reply(c.on_syn(
            t0(),
            LISTENER,
            local(),
            client(i),
            &syn(i, full_offer()),
            &mib,
        ));
    }
    assert_eq!(c.len(), 256);
    c.set_limits(100, 100).unwrap();
    for i in 256..4096 {
        match c.on_syn(
            t0(),
            LISTENER,
            local(),
            client(i),
            &syn(i, full_offer()),
            &mib,
        ) {
            SynDisposition::Cookie(_) => {}
            other => panic!("SYN {i} over the lowered limit: {other:?}"),
        }
    }
    assert_eq!(c.len(), 256);
    assert_eq!(
        c.budget.total(),
        256 + c.shards.iter().map(|s| s.lease.get().1).sum::<usize>()
    );
}

/// Another listener's SYN in a shard holding a lease: the lease goes back
/// and the per-listener counts stay exact for both.
#[test]
fn leases_follow_the_listener() {
    let c = cache();
    let mib = TcpMib::default();
    let other = LISTENER + 1;
    for i in 0..2000 {
        let l = if i % 3 == 0 { other } else { LISTENER };
        reply(c.on_syn(t0(), l, local(), client(i), &syn(i, full_offer()), &mib));
    }
    assert_eq!(c.listener_len(other), 667);
    assert_eq!(c.listener_len(LISTENER), 1333);
    assert_eq!(c.len(), 2000);
    assert_eq!(c.drain_listener(other), 667);
    assert_eq!(c.listener_len(other), 0);
    assert_eq!(c.budget.of(other), 0);
    assert_eq!(c.len(), 1333);
}
