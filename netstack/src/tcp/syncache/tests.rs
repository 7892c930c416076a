//! The handshake path one segment at a time: SYN-ACK options, duplicate SYNs,
//! the final ACK and what it hands over, bad ACKs and resets. The helpers here
//! are shared with `bound_tests`.

use core::net::SocketAddr;
use core::time::Duration;

use super::entry::{Entry, TupleKey};
use super::*;
use crate::tcp::handshake::Handshake;

pub(super) const KEY: SecretKey = SecretKey([0x5a; 16]);
pub(super) const LISTENER: u64 = 7;

pub(super) fn local() -> SocketAddr {
    "10.0.0.1:80".parse().unwrap()
}

pub(super) fn remote() -> SocketAddr {
    "10.0.0.2:40000".parse().unwrap()
}

pub(super) fn peer(n: u16) -> SocketAddr {
    SocketAddr::new("10.0.0.2".parse().unwrap(), 40000 + n)
}

pub(super) fn cache_with(config: SynCacheConfig) -> SynCache {
    SynCache::new(config, &TcpConfig::default(), KEY)
}

pub(super) fn cache() -> SynCache {
    cache_with(SynCacheConfig::default())
}

pub(super) fn t0() -> Instant {
    Instant::from_secs(1000)
}

/// A peer's options: everything offered, like Linux.
pub(super) fn full_offer() -> TcpOptions {
    TcpOptions {
        mss: Some(1400),
        window_scale: Some(9),
        sack_permitted: true,
        timestamps: Some(Timestamps {
            value: 4242,
            echo_reply: 0,
        }),
        ..TcpOptions::default()
    }
}

pub(super) fn syn(seq: u32, options: TcpOptions) -> TcpSegment<'static> {
    TcpSegment {
        header: TcpHeader {
            src_port: remote().port(),
            dst_port: local().port(),
            seq: SeqNum(seq),
            ack: SeqNum(0),
            flags: TcpFlags::SYN,
            window: 64240,
            urgent: 0,
            options,
        },
        payload: &[],
    }
}

/// The peer's final ACK answering `synack`, with a TSval of `tsval` if the
/// SYN-ACK carried timestamps.
pub(super) fn final_ack(synack: &TcpHeader, tsval: u32) -> TcpSegment<'static> {
    TcpSegment {
        header: TcpHeader {
            src_port: synack.dst_port,
            dst_port: synack.src_port,
            seq: synack.ack,
            ack: synack.seq + 1usize,
            flags: TcpFlags::ACK,
            window: 502,
            urgent: 0,
            options: TcpOptions {
                timestamps: synack.options.timestamps.map(|ts| Timestamps {
                    value: tsval,
                    echo_reply: ts.value,
                }),
                ..TcpOptions::default()
            },
        },
        payload: &[],
    }
}

pub(super) fn reply(d: SynDisposition) -> TcpHeader {
    match d {
        SynDisposition::Reply(h) => h,
        other => panic!("expected Reply, got {other:?}"),
    }
}

pub(super) fn cookie(d: SynDisposition) -> TcpHeader {
    match d {
        SynDisposition::Cookie(h) => h,
        other => panic!("expected Cookie, got {other:?}"),
    }
}

pub(super) fn established(d: HandshakeDisposition) -> Handshake {
    match d {
        HandshakeDisposition::Established(hs) => hs,
        other => panic!("expected Established, got {other:?}"),
    }
}

pub(super) fn our_iss(at: Instant) -> SeqNum {
    IsnGenerator::new(KEY).isn(local(), remote(), at)
}

#[test]
fn an_entry_and_its_key_fit_in_a_cache_line() {
    assert!(core::mem::size_of::<(TupleKey, Entry)>() <= 64);
}

#[test]
fn tuple_keys_give_back_the_addresses_of_both_families() {
    let v6_local: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
    let v6_remote: SocketAddr = "[2001:db8::2]:50000".parse().unwrap();
    let key = TupleKey::new(v6_local, v6_remote);
    assert_eq!((key.local(), key.remote()), (v6_local, v6_remote));
    let key = TupleKey::new(local(), remote());
    assert_eq!((key.local(), key.remote()), (local(), remote()));
}

#[test]
fn synack_offers_exactly_what_the_peer_offered_and_we_support() {
    let cfg = TcpConfig::default();
    for bits in 0..16u8 {
        let offer = TcpOptions {
            mss: (bits & 1 != 0).then_some(1200),
            window_scale: (bits & 2 != 0).then_some(5),
            sack_permitted: bits & 4 != 0,
            timestamps: (bits & 8 != 0).then_some(Timestamps {
                value: 99,
                echo_reply: 0,
            }),
            ..TcpOptions::default()
        };
        let c = cache();
        let mib = TcpMib::default();
        let h = reply(c.on_syn(t0(), LISTENER, local(), remote(), &syn(5000, offer), &mib));
        assert_eq!((h.src_port, h.dst_port), (80, 40000));
        assert_eq!(h.flags, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(h.seq, our_iss(t0()));
        assert_eq!(h.ack, SeqNum(5001));
        assert_eq!(h.window, 65535, "recv_buffer 64 KiB, unscaled on a SYN-ACK");
        assert_eq!(h.options.mss, Some(cfg.mss));
        assert_eq!(
            h.options.window_scale,
            offer.window_scale.map(|_| cfg.window_scale)
        );
        assert_eq!(h.options.sack_permitted, offer.sack_permitted);
        assert_eq!(
            h.options.timestamps,
            offer.timestamps.map(|_| Timestamps {
                value: timestamp_clock(t0()),
                echo_reply: 99,
            })
        );
        assert!(h.options.sack_blocks.is_empty());
        assert_eq!(mib.listen_syns.get(), 1);
        assert_eq!(mib.syncache_added.get(), 1);
        assert_eq!(c.len(), 1);
    }
}

#[test]
fn options_we_turned_off_are_never_offered() {
    let tcp = TcpConfig {
        sack: false,
        timestamps: false,
        ..TcpConfig::default()
    };
    let c = SynCache::new(SynCacheConfig::default(), &tcp, KEY);
    let mib = TcpMib::default();
    let h = reply(c.on_syn(
        t0(),
        LISTENER,
        local(),
        remote(),
        &syn(1, full_offer()),
        &mib,
    ));
    assert!(!h.options.sack_permitted);
    assert_eq!(h.options.timestamps, None);
    assert_eq!(h.options.window_scale, Some(tcp.window_scale));
    let hs = established(c.on_segment(t0(), LISTENER, local(), remote(), &final_ack(&h, 0), &mib));
    assert_eq!(hs.ts_recent, None);
    assert!(!hs.sack_permitted);
}

#[test]
fn a_retransmitted_syn_gets_the_same_synack_again() {
    let c = cache();
    let mib = TcpMib::default();
    let first = reply(c.on_syn(
        t0(),
        LISTENER,
        local(),
        remote(),
        &syn(1, full_offer()),
        &mib,
    ));
    let later = t0() + Duration::from_millis(500);
    let again = match c.on_syn(
        later,
        LISTENER,
        local(),
        remote(),
        &syn(1, full_offer()),
        &mib,
    ) {
        SynDisposition::Duplicate(h) => h,
        other => panic!("expected Duplicate, got {other:?}"),
    };
    assert_eq!(again.seq, first.seq);
    assert_eq!(again.ack, first.ack);
    assert_eq!(again.options.mss, first.options.mss);
    assert_eq!(
        again.options.timestamps.map(|ts| ts.value),
        Some(timestamp_clock(later))
    );
    assert_eq!(c.len(), 1);
    assert_eq!(mib.syncache_added.get(), 1);
}

#[test]
fn a_syn_with_a_new_isn_restarts_the_entry_under_the_same_iss() {
    let c = cache();
    let mib = TcpMib::default();
    let first = reply(c.on_syn(
        t0(),
        LISTENER,
        local(),
        remote(),
        &syn(1, full_offer()),
        &mib,
    ));
    let offer = TcpOptions {
        sack_permitted: false,
        ..full_offer()
    };
    let again = match c.on_syn(t0(), LISTENER, local(), remote(), &syn(900, offer), &mib) {
        SynDisposition::Duplicate(h) => h,
        other => panic!("expected Duplicate, got {other:?}"),
    };
    assert_eq!(again.seq, first.seq);
    assert_eq!(again.ack, SeqNum(901));
    assert!(!again.options.sack_permitted);
    // The first attempt's ACK no longer fits; the new one completes.
    let old = c.on_segment(
        t0(),
        LISTENER,
        local(),
        remote(),
        &final_ack(&first, 5000),
        &mib,
    );
    assert_eq!(
        old,
        HandshakeDisposition::Dropped(HandshakeDrop::OutOfWindow)
    );
    let hs = established(c.on_segment(
        t0(),
        LISTENER,
        local(),
        remote(),
        &final_ack(&again, 5000),
        &mib,
    ));
    assert_eq!(hs.irs, SeqNum(900));
    assert!(!hs.sack_permitted);
}

#[test]
fn the_final_ack_hands_over_exactly_what_was_negotiated() {
    let c = cache();
    let mib = TcpMib::default();
    let h = reply(c.on_syn(
        t0(),
        LISTENER,
        local(),
        remote(),
        &syn(77, full_offer()),
        &mib,
    ));
    let at = t0() + Duration::from_millis(30);
    let hs = established(c.on_segment(at, LISTENER, local(), remote(), &final_ack(&h, 4250), &mib));
    assert_eq!(
        hs,
        Handshake {
            local: local(),
            remote: remote(),
            iss: our_iss(t0()),
            irs: SeqNum(77),
            peer_mss: 1400,
            window_scale: Some((9, TcpConfig::default().window_scale)),
            ts_recent: Some(4250),
            sack_permitted: true,
            syn_at: t0(),
            from_cookie: false,
        }
    );
    assert_eq!(c.len(), 0);
    assert_eq!(mib.syncache_completed.get(), 1);
    // The entry is gone: the same ACK again is no longer a handshake.
    let again = c.on_segment(at, LISTENER, local(), remote(), &final_ack(&h, 4250), &mib);
    assert_eq!(again, HandshakeDisposition::NotOurs);
    assert_eq!(mib.syncookies_failed.get(), 1);
}

#[test]
fn a_syn_without_options_gets_the_default_mss_and_nothing_else() {
    let c = cache();
    let mib = TcpMib::default();
    let h = reply(c.on_syn(
        t0(),
        LISTENER,
        local(),
        remote(),
        &syn(1, TcpOptions::default()),
        &mib,
    ));
    let hs = established(c.on_segment(t0(), LISTENER, local(), remote(), &final_ack(&h, 0), &mib));
    assert_eq!(hs.peer_mss, DEFAULT_PEER_MSS);
    assert_eq!(
        (hs.window_scale, hs.ts_recent, hs.sack_permitted),
        (None, None, false)
    );
}

#[test]
fn a_tiny_peer_mss_is_raised_to_the_floor() {
    let c = cache();
    let mib = TcpMib::default();
    let offer = TcpOptions {
        mss: Some(1),
        ..TcpOptions::default()
    };
    let h = reply(c.on_syn(t0(), LISTENER, local(), remote(), &syn(1, offer), &mib));
    let hs = established(c.on_segment(t0(), LISTENER, local(), remote(), &final_ack(&h, 0), &mib));
    assert_eq!(hs.peer_mss, MIN_PEER_MSS);
}

#[test]
fn an_ack_for_another_iss_is_answered_with_a_reset_and_the_entry_stays() {
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
    let mut bad = final_ack(&h, 4300);
    bad.header.ack = h.seq + 1000usize;
    let rst = match c.on_segment(t0(), LISTENER, local(), remote(), &bad, &mib) {
        HandshakeDisposition::Reply(rst) => rst,
        other => panic!("expected Reply(RST), got {other:?}"),
    };
    assert_eq!(rst.flags, TcpFlags::RST);
    assert_eq!(rst.seq, bad.header.ack);
    assert_eq!((rst.src_port, rst.dst_port), (80, 40000));
    assert_eq!(c.len(), 1);
    assert_eq!(mib.syncache_drops.get(), 1);
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
fn segments_that_fail_a_check_are_dropped_with_their_reason() {
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
    let ok = final_ack(&h, 4300);

    let mut no_ts = ok;
    no_ts.header.options.timestamps = None;
    let mut old_ts = ok;
    if let Some(ts) = old_ts.header.options.timestamps.as_mut() {
        ts.value = 4000;
    }
    let mut out_of_window = ok;
    out_of_window.header.seq = ok.header.seq + 70_000usize;
    let mut no_ack = ok;
    no_ack.header.flags = TcpFlags::PSH;
    let mut syn_ack = ok;
    syn_ack.header.flags = TcpFlags::SYN | TcpFlags::ACK;

    for (seg, why) in [
        (no_ts, HandshakeDrop::MissingTimestamp),
        (old_ts, HandshakeDrop::Paws),
        (out_of_window, HandshakeDrop::OutOfWindow),
        (no_ack, HandshakeDrop::NoAck),
        (syn_ack, HandshakeDrop::UnexpectedSyn),
    ] {
        let d = c.on_segment(t0(), LISTENER, local(), remote(), &seg, &mib);
        assert_eq!(d, HandshakeDisposition::Dropped(why));
        assert_eq!(c.len(), 1, "{why:?} must not remove the entry");
    }
    assert_eq!(mib.paws_drops.get(), 1);
    assert_eq!(mib.out_of_window.get(), 1);
    established(c.on_segment(t0(), LISTENER, local(), remote(), &ok, &mib));
}

#[test]
fn only_an_exact_reset_removes_the_entry() {
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
    let mut rst = final_ack(&h, 0);
    rst.header.flags = TcpFlags::RST;
    rst.header.options.timestamps = None;

    let mut in_window = rst;
    in_window.header.seq = rst.header.seq + 100usize;
    let mut outside = rst;
    outside.header.seq = rst.header.seq + 100_000usize;
    let d = c.on_segment(t0(), LISTENER, local(), remote(), &in_window, &mib);
    assert_eq!(d, HandshakeDisposition::Dropped(HandshakeDrop::RstInWindow));
    let d = c.on_segment(t0(), LISTENER, local(), remote(), &outside, &mib);
    assert_eq!(
        d,
        HandshakeDisposition::Dropped(HandshakeDrop::RstOutOfWindow)
    );
    assert_eq!((c.len(), mib.rsts_ignored.get()), (1, 2));

    let d = c.on_segment(t0(), LISTENER, local(), remote(), &rst, &mib);
    assert_eq!(d, HandshakeDisposition::Reset);
    assert_eq!((c.len(), c.listener_len(LISTENER)), (0, 0));
    assert_eq!(mib.in_rsts.get(), 1);
    // With the entry gone a reset is never answered.
    let d = c.on_segment(t0(), LISTENER, local(), remote(), &rst, &mib);
    assert_eq!(d, HandshakeDisposition::Dropped(HandshakeDrop::RstNoEntry));
}

#[test]
fn segments_that_are_not_a_handshake_are_sorted_out() {
    let c = cache();
    let mib = TcpMib::default();
    let mut syn_fin = syn(1, full_offer());
    syn_fin.header.flags = TcpFlags::SYN | TcpFlags::FIN;
    let d = c.on_syn(t0(), LISTENER, local(), remote(), &syn_fin, &mib);
    assert_eq!(d, SynDisposition::Dropped(SynDrop::SynFin));
    assert_eq!((mib.syncache_drops.get(), mib.listen_syns.get()), (1, 0));
    for flags in [
        TcpFlags::SYN | TcpFlags::ACK,
        TcpFlags::SYN | TcpFlags::RST,
        TcpFlags::ACK,
    ] {
        let mut seg = syn(1, full_offer());
        seg.header.flags = flags;
        let d = c.on_syn(t0(), LISTENER, local(), remote(), &seg, &mib);
        assert_eq!(d, SynDisposition::Dropped(SynDrop::NotASyn));
    }
    // No entry: a bare ACK is no cookie, a SYN-ACK is answered as by LISTEN.
    let mut ack = syn(1, TcpOptions::default());
    ack.header.flags = TcpFlags::ACK;
    assert_eq!(
        c.on_segment(t0(), LISTENER, local(), remote(), &ack, &mib),
        HandshakeDisposition::NotOurs
    );
    ack.header.flags = TcpFlags::SYN | TcpFlags::ACK;
    assert_eq!(
        c.on_segment(t0(), LISTENER, local(), remote(), &ack, &mib),
        HandshakeDisposition::NotOurs
    );
    ack.header.flags = TcpFlags::FIN;
    assert_eq!(
        c.on_segment(t0(), LISTENER, local(), remote(), &ack, &mib),
        HandshakeDisposition::Dropped(HandshakeDrop::NoAck)
    );
    assert!(c.is_empty());
}

#[test]
fn ipv6_handshakes_complete_and_retransmit_to_the_right_addresses() {
    let c = cache();
    let mib = TcpMib::default();
    let l: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
    let r: SocketAddr = "[2001:db8::2]:50000".parse().unwrap();
    let mut s = syn(1, full_offer());
    (s.header.src_port, s.header.dst_port) = (r.port(), l.port());
    let h = reply(c.on_syn(t0(), LISTENER, l, r, &s, &mib));
    let mut seen = Vec::new();
    c.on_timeout(t0() + Duration::from_secs(1), &mib, |a, b, _| {
        seen.push((a, b))
    });
    assert_eq!(seen, [(l, r)]);
    let hs = established(c.on_segment(t0(), LISTENER, l, r, &final_ack(&h, 4300), &mib));
    assert_eq!((hs.local, hs.remote), (l, r));
}
