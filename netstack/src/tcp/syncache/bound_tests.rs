//! The SYN cache's bounds and its behaviour at them: limits, cookies when
//! full, memory, the retransmit timer.

use core::net::SocketAddr;
use core::time::Duration;

use super::entry::{Entry, TupleKey};
use super::tests::{
    LISTENER, cache, cache_with, cookie, established, final_ack, full_offer, local, peer, remote,
    reply, syn, t0,
};
use super::*;
use crate::tcp::cookie::DEFAULT_PERIOD;
use crate::tcp::handshake::Handshake;

#[test]
fn synacks_are_retransmitted_with_backoff_then_the_entry_expires() {
    let c = cache();
    let mib = TcpMib::default();
    let h = reply(c.on_syn(
        t0(),
        LISTENER,
        local(),
        remote(),
        &syn(1, full_offer()),
        &mib,
    ));
    let secs = |s: u64| t0() + Duration::from_secs(s);
    assert_eq!(c.poll_at(), Some(secs(1)));

    let mut sent = Vec::new();
    let run = |at: Instant, sent: &mut Vec<(Instant, TcpHeader)>| {
        c.on_timeout(at, &mib, |l, r, hdr| {
            assert_eq!((l, r), (local(), remote()));
            sent.push((at, hdr));
        });
    };
    run(t0() + Duration::from_nanos(999_999_999), &mut sent);
    assert!(sent.is_empty(), "nothing is due before the first RTO");
    for (at, next) in [(1, 3), (3, 7), (7, 15)] {
        run(secs(at), &mut sent);
        assert_eq!(c.poll_at(), Some(secs(next)));
    }
    assert_eq!(sent.len(), 3);
    for (at, hdr) in &sent {
        assert_eq!((hdr.seq, hdr.ack, hdr.flags), (h.seq, h.ack, h.flags));
        assert_eq!(
            hdr.options.timestamps.map(|ts| ts.value),
            Some(timestamp_clock(*at))
        );
    }
    assert_eq!(mib.syncache_retransmits.get(), 3);
    assert_eq!(c.len(), 1);
    run(secs(15), &mut sent);
    assert_eq!(sent.len(), 3, "no SYN-ACK at expiry");
    assert_eq!((c.len(), c.poll_at()), (0, None));
    assert_eq!(mib.syncache_expired.get(), 1);
}

#[test]
fn a_late_timer_sends_one_synack_not_a_burst() {
    let c = cache();
    let mib = TcpMib::default();
    reply(c.on_syn(
        t0(),
        LISTENER,
        local(),
        remote(),
        &syn(1, full_offer()),
        &mib,
    ));
    let mut count = 0;
    c.on_timeout(t0() + Duration::from_secs(5), &mib, |_, _, _| count += 1);
    assert_eq!(count, 1);
    assert_eq!(c.poll_at(), Some(t0() + Duration::from_secs(7)));
    c.on_timeout(t0() + Duration::from_secs(100), &mib, |_, _, _| count += 1);
    assert_eq!((count, c.len()), (1, 0));
}

#[test]
fn the_per_listener_bound_holds_and_overflow_gets_cookies() {
    let config = SynCacheConfig {
        max_entries: 100,
        max_per_listener: 10,
        ..SynCacheConfig::default()
    };
    let c = cache_with(config);
    let mib = TcpMib::default();
    let mut cookies = 0;
    for n in 0..30 {
        match c.on_syn(
            t0(),
            LISTENER,
            local(),
            peer(n),
            &syn(1, full_offer()),
            &mib,
        ) {
            SynDisposition::Reply(_) => {}
            SynDisposition::Cookie(_) => cookies += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((c.len(), c.listener_len(LISTENER), cookies), (10, 10, 20));
    assert_eq!(mib.syncache_overflow.get(), 20);
    assert_eq!(mib.syncookies_sent.get(), 20);
    // Another listener still gets entries.
    reply(c.on_syn(
        t0(),
        LISTENER + 1,
        local(),
        peer(99),
        &syn(1, full_offer()),
        &mib,
    ));
    assert_eq!(c.listener_len(LISTENER + 1), 1);
}

#[test]
fn the_global_bound_holds_across_listeners() {
    let config = SynCacheConfig {
        max_entries: 16,
        max_per_listener: 16,
        shards: 1,
        cookies: CookiePolicy::Off,
        ..SynCacheConfig::default()
    };
    let c = cache_with(config);
    let mib = TcpMib::default();
    let mut dropped = 0;
    for n in 0..40u16 {
        let d = c.on_syn(
            t0(),
            u64::from(n % 4),
            local(),
            peer(n),
            &syn(1, full_offer()),
            &mib,
        );
        if d == SynDisposition::Dropped(SynDrop::CacheFull) {
            dropped += 1;
        }
    }
    assert_eq!((c.len(), dropped), (16, 24));
    assert_eq!((0..4).map(|l| c.listener_len(l)).sum::<usize>(), 16);
    assert_eq!(mib.syncache_overflow.get(), 24);
    assert_eq!(mib.syncookies_sent.get(), 0);
    assert!(c.memory_bytes() <= config.memory_bound());
}

/// A cache with room for one entry, already taken by `peer(1000)`.
fn full_cache() -> (SynCache, TcpMib) {
    let config = SynCacheConfig {
        max_entries: 1,
        ..SynCacheConfig::default()
    };
    let c = cache_with(config);
    let mib = TcpMib::default();
    reply(c.on_syn(
        t0(),
        LISTENER,
        local(),
        peer(1000),
        &syn(1, full_offer()),
        &mib,
    ));
    (c, mib)
}

#[test]
fn a_cookie_ack_completes_with_the_options_the_cookie_carried() {
    let (c, mib) = full_cache();
    let h = cookie(c.on_syn(
        t0(),
        LISTENER,
        local(),
        remote(),
        &syn(500, full_offer()),
        &mib,
    ));
    assert_eq!(h.ack, SeqNum(501));
    assert_eq!(h.options.mss, Some(1460));
    assert_eq!(h.options.window_scale, Some(7));
    assert!(h.options.sack_permitted);
    let ts = h.options.timestamps.unwrap();
    assert_eq!(ts.echo_reply, 4242);
    assert!(SeqNum(ts.value).le(SeqNum(timestamp_clock(t0()))));
    assert_eq!(c.len(), 1, "a cookie keeps no state");

    let at = t0() + Duration::from_millis(40);
    let hs = established(c.on_segment(at, LISTENER, local(), remote(), &final_ack(&h, 4300), &mib));
    assert_eq!(
        hs,
        Handshake {
            local: local(),
            remote: remote(),
            iss: h.seq,
            irs: SeqNum(500),
            peer_mss: 1380,
            window_scale: Some((9, 7)),
            ts_recent: Some(4300),
            sack_permitted: true,
            syn_at: at,
            from_cookie: true,
        }
    );
    assert_eq!(mib.syncookies_recv.get(), 1);
}

#[test]
fn without_timestamps_a_cookie_offers_neither_scaling_nor_sack() {
    let (c, mib) = full_cache();
    let offer = TcpOptions {
        timestamps: None,
        ..full_offer()
    };
    let h = cookie(c.on_syn(t0(), LISTENER, local(), remote(), &syn(500, offer), &mib));
    assert_eq!(h.options.window_scale, None);
    assert!(!h.options.sack_permitted);
    assert_eq!(h.options.timestamps, None);
    let hs = established(c.on_segment(t0(), LISTENER, local(), remote(), &final_ack(&h, 0), &mib));
    assert_eq!(
        (hs.window_scale, hs.sack_permitted, hs.ts_recent),
        (None, false, None)
    );
    assert_eq!(hs.peer_mss, 1380);
}

#[test]
fn forged_and_stale_cookies_fail_and_are_counted() {
    let (c, mib) = full_cache();
    let h = cookie(c.on_syn(
        t0(),
        LISTENER,
        local(),
        remote(),
        &syn(500, full_offer()),
        &mib,
    ));
    let mut forged = final_ack(&h, 4300);
    forged.header.ack += 16usize;
    let d = c.on_segment(t0(), LISTENER, local(), remote(), &forged, &mib);
    assert_eq!(d, HandshakeDisposition::NotOurs);
    let other_port = c.on_segment(t0(), LISTENER, local(), peer(1), &final_ack(&h, 4300), &mib);
    assert_eq!(other_port, HandshakeDisposition::NotOurs);
    let stale = t0() + DEFAULT_PERIOD * 3;
    let d = c.on_segment(
        stale,
        LISTENER,
        local(),
        remote(),
        &final_ack(&h, 4300),
        &mib,
    );
    assert_eq!(d, HandshakeDisposition::NotOurs);
    assert_eq!(mib.syncookies_failed.get(), 3);
    assert_eq!(mib.syncookies_recv.get(), 0);
}

#[test]
fn new_syns_get_entries_again_once_there_is_room() {
    let (c, mib) = full_cache();
    cookie(c.on_syn(
        t0(),
        LISTENER,
        local(),
        remote(),
        &syn(1, full_offer()),
        &mib,
    ));
    assert!(c.remove(local(), peer(1000)));
    assert!(!c.remove(local(), peer(1000)));
    reply(c.on_syn(
        t0(),
        LISTENER,
        local(),
        peer(1),
        &syn(1, full_offer()),
        &mib,
    ));
    cookie(c.on_syn(
        t0(),
        LISTENER,
        local(),
        peer(2),
        &syn(1, full_offer()),
        &mib,
    ));
    // Expiry makes room too.
    c.on_timeout(t0() + Duration::from_secs(15), &mib, |_, _, _| {});
    assert!(c.is_empty());
    reply(c.on_syn(
        t0(),
        LISTENER,
        local(),
        peer(3),
        &syn(1, full_offer()),
        &mib,
    ));
}

#[test]
fn cookie_policy_off_drops_and_always_keeps_nothing() {
    let (c, mib) = {
        let config = SynCacheConfig {
            max_entries: 0,
            cookies: CookiePolicy::Off,
            ..SynCacheConfig::default()
        };
        (cache_with(config), TcpMib::default())
    };
    let d = c.on_syn(
        t0(),
        LISTENER,
        local(),
        remote(),
        &syn(1, full_offer()),
        &mib,
    );
    assert_eq!(d, SynDisposition::Dropped(SynDrop::CacheFull));
    // With cookies off an ACK is not even checked as one.
    let ack = final_ack(
        &reply(cache().on_syn(t0(), 1, local(), remote(), &syn(1, full_offer()), &mib)),
        1,
    );
    assert_eq!(
        c.on_segment(t0(), LISTENER, local(), remote(), &ack, &mib),
        HandshakeDisposition::NotOurs
    );
    assert_eq!(mib.syncookies_failed.get(), 0);

    let c = cache_with(SynCacheConfig {
        cookies: CookiePolicy::Always,
        ..SynCacheConfig::default()
    });
    let h = cookie(c.on_syn(
        t0(),
        LISTENER,
        local(),
        remote(),
        &syn(1, full_offer()),
        &mib,
    ));
    assert!(c.is_empty());
    established(c.on_segment(
        t0(),
        LISTENER,
        local(),
        remote(),
        &final_ack(&h, 4300),
        &mib,
    ));
}

#[test]
fn a_full_accept_queue_keeps_the_entry_for_the_next_ack() {
    let c = cache();
    let mib = TcpMib::default();
    let h = reply(c.on_syn(
        t0(),
        LISTENER,
        local(),
        remote(),
        &syn(1, full_offer()),
        &mib,
    ));
    let ack = final_ack(&h, 4300);
    let d = c.on_segment_queue_full(t0(), LISTENER, local(), remote(), &ack, &mib);
    assert_eq!(
        d,
        HandshakeDisposition::Dropped(HandshakeDrop::AcceptQueueFull)
    );
    assert_eq!((c.len(), mib.listen_queue_overflow.get()), (1, 1));
    established(c.on_segment(t0(), LISTENER, local(), remote(), &ack, &mib));

    let (c, mib) = full_cache();
    let h = cookie(c.on_syn(
        t0(),
        LISTENER,
        local(),
        remote(),
        &syn(1, full_offer()),
        &mib,
    ));
    let ack = final_ack(&h, 4300);
    let d = c.on_segment_queue_full(t0(), LISTENER, local(), remote(), &ack, &mib);
    assert_eq!(
        d,
        HandshakeDisposition::Dropped(HandshakeDrop::AcceptQueueFull)
    );
    established(c.on_segment(t0(), LISTENER, local(), remote(), &ack, &mib));
}

#[test]
fn draining_a_listener_removes_only_its_entries() {
    let c = cache();
    let mib = TcpMib::default();
    for n in 0..50u16 {
        reply(c.on_syn(
            t0(),
            u64::from(n % 2),
            local(),
            peer(n),
            &syn(1, full_offer()),
            &mib,
        ));
    }
    assert_eq!(c.drain_listener(0), 25);
    assert_eq!((c.len(), c.listener_len(0), c.listener_len(1)), (25, 0, 25));
    assert_eq!(c.drain_listener(0), 0);
    assert_eq!(c.drain_listener(1), 25);
    assert!(c.is_empty());
}

#[test]
fn memory_stays_under_the_configured_bound() {
    let config = SynCacheConfig::default();
    let c = cache_with(config);
    let mib = TcpMib::default();
    let empty = c.memory_bytes();
    assert!(empty <= config.memory_bound());
    for n in 0..5000u32 {
        let r = SocketAddr::new(std::net::Ipv4Addr::from(0x0b00_0000 + n).into(), 1234);
        c.on_syn(t0(), LISTENER, local(), r, &syn(1, full_offer()), &mib);
    }
    assert_eq!(c.len(), config.max_per_listener);
    assert_eq!(
        c.memory_bytes(),
        empty,
        "the tables were allocated up front"
    );
    assert!(c.memory_bytes() <= config.memory_bound());
}

#[test]
fn no_shard_holds_more_than_its_capacity() {
    let config = SynCacheConfig {
        max_entries: 64,
        max_per_listener: 64,
        shards: 32,
        cookies: CookiePolicy::Off,
        ..SynCacheConfig::default()
    };
    let c = cache_with(config);
    let mib = TcpMib::default();
    // Tuples that all fall in one shard (found through the keyed hash, as
    // only someone holding the key could), one more than it may hold.
    let target = c.shard(local(), peer(0)) as *const _;
    let same: Vec<u16> = (0..20_000)
        .filter(|&n| core::ptr::eq(c.shard(local(), peer(n)), target))
        .take(config.shard_capacity() + 1)
        .collect();
    assert_eq!(same.len(), config.shard_capacity() + 1);
    let mut full = 0;
    for &n in &same {
        let d = c.on_syn(
            t0(),
            LISTENER,
            local(),
            peer(n),
            &syn(1, full_offer()),
            &mib,
        );
        if d == SynDisposition::Dropped(SynDrop::CacheFull) {
            full += 1;
        }
    }
    assert_eq!(full, 1, "the shard bound refuses exactly the one too many");
    for shard in c.shards.iter() {
        assert!(lock(&shard.map).entries.len() <= config.shard_capacity());
    }
    assert_eq!(c.len(), config.shard_capacity());
}

#[test]
fn memory_accounting_matches_the_std_table_layout() {
    use super::table::{Buckets, buckets_for, usable};
    for n in [0, 1, 3, 4, 7, 8, 14, 15, 100, 512, 768, 1000, 4096] {
        let map: std::collections::HashMap<TupleKey, Entry> =
            std::collections::HashMap::with_capacity(n);
        assert_eq!(usable(buckets_for(n)), map.capacity(), "request {n}");
    }
    // A resize shows up right after the insert that caused it.
    let mut map = std::collections::HashMap::with_capacity(7);
    let mut buckets = Buckets::for_request(7);
    for n in 0..1000u32 {
        map.insert(n, ());
        buckets.observe(map.capacity());
    }
    assert_eq!(format!("{buckets:?}"), "Buckets(2048)");
}

#[test]
fn churn_never_grows_a_shard() {
    // One shard kept full while its entries are replaced one by one: every
    // deletion leaves a tombstone, which must never make std grow the table.
    let config = SynCacheConfig {
        max_entries: 256,
        max_per_listener: 256,
        shards: 1,
        cookies: CookiePolicy::Off,
        ..SynCacheConfig::default()
    };
    let c = cache_with(config);
    let mib = TcpMib::default();
    let allocated = c.memory_bytes();
    let tuple = |n: u32| SocketAddr::new(std::net::Ipv4Addr::from(0x0c00_0000 + n).into(), 4000);
    for n in 0..20_000u32 {
        if n >= 256 {
            assert!(c.remove(local(), tuple(n - 256)));
        }
        reply(c.on_syn(
            t0(),
            LISTENER,
            local(),
            tuple(n),
            &syn(1, full_offer()),
            &mib,
        ));
    }
    assert_eq!(c.len(), 256);
    assert_eq!(c.memory_bytes(), allocated);
    assert!(allocated <= config.memory_bound());
}

#[test]
#[ignore = "prints the figures for the default configuration"]
fn print_default_memory_figures() {
    let config = SynCacheConfig::default();
    let c = cache_with(config);
    println!(
        "entry {} B, memory_bytes {} B, memory_bound {} B",
        core::mem::size_of::<(TupleKey, Entry)>(),
        c.memory_bytes(),
        config.memory_bound()
    );
}

#[test]
fn timer_deadlines_round_up_to_the_tick() {
    let c = cache();
    let mib = TcpMib::default();
    let at = t0() + Duration::from_millis(7);
    reply(c.on_syn(at, LISTENER, local(), remote(), &syn(1, full_offer()), &mib));
    let due = t0() + Duration::from_secs(1) + TIMER_TICK;
    assert_eq!(c.poll_at(), Some(due));
    let mut sent = 0;
    let early = t0() + Duration::from_millis(1_049);
    c.on_timeout(early, &mib, |_, _, _| sent += 1);
    assert_eq!(sent, 0, "a shard is not scanned before its tick");
    c.on_timeout(due, &mib, |_, _, _| sent += 1);
    assert_eq!(sent, 1);
}

#[test]
fn absurd_settings_are_clamped_not_obeyed() {
    let huge = SynCacheConfig {
        max_entries: usize::MAX,
        max_per_listener: usize::MAX,
        shards: usize::MAX,
        synack_retries: u8::MAX,
        cookies: CookiePolicy::WhenFull,
    };
    assert!(huge.memory_bound() < 400 << 20, "{}", huge.memory_bound());
    // Endless retries are cut at the counter's width; the entry still expires.
    let c = cache_with(SynCacheConfig {
        max_entries: 4,
        synack_retries: u8::MAX,
        ..SynCacheConfig::default()
    });
    let mib = TcpMib::default();
    reply(c.on_syn(
        t0(),
        LISTENER,
        local(),
        remote(),
        &syn(1, full_offer()),
        &mib,
    ));
    let mut at = t0();
    while !c.is_empty() {
        at = c.poll_at().unwrap();
        c.on_timeout(at, &mib, |_, _, _| {});
    }
    assert_eq!(mib.syncache_retransmits.get(), 62);
    assert!(at <= t0() + Duration::from_secs(62 * 60 + 1));
}

/// Two takers that both passed the read-only check before either counted
/// (the race a flood makes likely): the second one to count backs out, for
/// the global bound and for the listener's, so the counts never pass either
/// bound. Played deterministically through the two halves of `take`.
#[test]
fn a_take_that_lost_the_race_backs_out() {
    use super::table::{Budget, Full};
    let b = Budget::new();
    // Global bound: room for one more, two takers saw it.
    b.take(1, 2, 10).unwrap();
    assert_eq!(b.check(2, 2, 10), Ok(()));
    assert_eq!(b.check(3, 2, 10), Ok(()));
    assert_eq!(b.reserve(2, 2, 10), Ok(()));
    assert_eq!(b.reserve(3, 2, 10), Err(Full::Global));
    assert_eq!((b.total(), b.of(1), b.of(2), b.of(3)), (2, 1, 1, 0));
    // Listener bound: likewise, with room overall.
    let b = Budget::new();
    b.take(7, 10, 2).unwrap();
    assert_eq!(b.check(7, 10, 2), Ok(()));
    assert_eq!(b.check(7, 10, 2), Ok(()));
    assert_eq!(b.reserve(7, 10, 2), Ok(()));
    assert_eq!(b.reserve(7, 10, 2), Err(Full::Listener));
    assert_eq!((b.total(), b.of(7)), (2, 2));
    b.give_back(7, 2);
    assert_eq!((b.total(), b.of(7)), (0, 0));
}
