//! The SYN cache under attack: a seeded SYN flood with a legitimate peer mixed
//! in, and random segments from a proptest. Both check the bounds after every
//! step, not only at the end.

use core::net::{Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::tcp::mib::TcpMibSnapshot;

/// xorshift64*: a seeded, dependency-free source of spoofed addresses.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn segment(src: SocketAddr, dst: SocketAddr, seq: u32, flags: TcpFlags) -> TcpSegment<'static> {
    TcpSegment {
        header: TcpHeader {
            src_port: src.port(),
            dst_port: dst.port(),
            seq: SeqNum(seq),
            ack: SeqNum(0),
            flags,
            window: 65535,
            urgent: 0,
            options: TcpOptions::default(),
        },
        payload: &[],
    }
}

fn offer(bits: u64) -> TcpOptions {
    TcpOptions {
        mss: (bits & 1 != 0).then_some((bits >> 8) as u16),
        window_scale: (bits & 2 != 0).then_some((bits >> 24) as u8 % 15),
        sack_permitted: bits & 4 != 0,
        timestamps: (bits & 8 != 0).then_some(Timestamps {
            value: (bits >> 32) as u32,
            echo_reply: 0,
        }),
        ..TcpOptions::default()
    }
}

fn assert_bounded(c: &SynCache, config: &SynCacheConfig, listeners: &[u64]) {
    let per: Vec<usize> = listeners.iter().map(|&l| c.listener_len(l)).collect();
    assert!(
        c.len() <= config.max_entries,
        "len {} over the global cap",
        c.len()
    );
    for (l, n) in listeners.iter().zip(&per) {
        assert!(*n <= config.max_per_listener, "listener {l} holds {n}");
    }
    assert_eq!(per.iter().sum::<usize>(), c.len(), "the budget is exact");
    assert!(c.memory_bytes() <= config.memory_bound());
}

#[test]
fn a_syn_flood_never_stops_a_legitimate_handshake() {
    const SYNS: u32 = 100_000;
    const LEGIT_EVERY: u32 = 3_000;
    let config = SynCacheConfig::default();
    let cache = SynCache::new(config, &TcpConfig::default(), SecretKey([3; 16]));
    let mib = TcpMib::default();
    let listener = 1;
    let local: SocketAddr = "10.0.0.1:443".parse().unwrap();
    let mut rng = Rng(0x5eed_f00d);
    let mut now = Instant::from_secs(50);
    let step = Duration::from_micros(300);
    let mut retransmitted = 0u64;
    let (mut legit, mut from_cache, mut from_cookie) = (0u32, 0u32, 0u32);

    for i in 0..SYNS {
        now = now + step;
        let r = rng.next();
        let spoofed = SocketAddr::new(Ipv4Addr::from(r as u32).into(), (r >> 32) as u16);
        let syn = TcpSegment {
            header: TcpHeader {
                options: offer(rng.next()),
                ..segment(spoofed, local, (r >> 16) as u32, TcpFlags::SYN).header
            },
            payload: &[],
        };
        match cache.on_syn(now, listener, local, spoofed, &syn, &mib) {
            SynDisposition::Reply(_) | SynDisposition::Cookie(_) => {}
            SynDisposition::Duplicate(_) => {}
            SynDisposition::Dropped(why) => panic!("flood SYN dropped: {why:?}"),
        }
        assert!(cache.len() <= config.max_per_listener);

        if i % 1_000 == 0 {
            cache.on_timeout(now, &mib, |_, _, _| retransmitted += 1);
            assert_bounded(&cache, &config, &[listener]);
        }
        if i % LEGIT_EVERY == LEGIT_EVERY / 2 {
            // The real peer: SYN, our SYN-ACK, its ACK a few milliseconds later.
            let me = SocketAddr::new(
                Ipv4Addr::new(192, 0, 2, 1).into(),
                20_000 + i as u16 % 9_000,
            );
            let isn = 0x1000_0000 ^ i;
            let syn = TcpSegment {
                header: TcpHeader {
                    options: offer(1 | 2 | 4 | 8 | (1460 << 8) | (7 << 24) | (12_345 << 32)),
                    ..segment(me, local, isn, TcpFlags::SYN).header
                },
                payload: &[],
            };
            let synack = match cache.on_syn(now, listener, local, me, &syn, &mib) {
                SynDisposition::Reply(h) | SynDisposition::Cookie(h) => h,
                other => panic!("legitimate SYN got {other:?}"),
            };
            let mut ack = segment(me, local, isn.wrapping_add(1), TcpFlags::ACK);
            ack.header.ack = synack.seq + 1usize;
            ack.header.options.timestamps = synack.options.timestamps.map(|ts| Timestamps {
                value: 12_350,
                echo_reply: ts.value,
            });
            let later = now + Duration::from_millis(3);
            let hs = match cache.on_segment(later, listener, local, me, &ack, &mib) {
                HandshakeDisposition::Established(hs) => hs,
                other => panic!("legitimate ACK {i} got {other:?}"),
            };
            assert_eq!((hs.remote, hs.irs, hs.iss), (me, SeqNum(isn), synack.seq));
            assert_eq!(hs.peer_mss, 1460);
            assert_eq!(hs.window_scale, Some((7, 7)));
            assert!(hs.sack_permitted);
            assert_eq!(hs.ts_recent, Some(12_350));
            legit += 1;
            if hs.from_cookie {
                from_cookie += 1;
            } else {
                from_cache += 1;
            }
        }
    }

    let m = mib.snapshot();
    assert_eq!(legit, SYNS / LEGIT_EVERY);
    assert!(
        from_cookie > 0 && from_cache > 0,
        "{from_cache} / {from_cookie}"
    );
    assert_eq!(m.syncookies_recv, u64::from(from_cookie));
    assert_eq!(m.syncache_completed, u64::from(from_cache));
    assert!(m.syncookies_sent > 50_000, "{m:?}");
    assert!(m.syncache_expired > 0 && m.syncache_retransmits > 0);
    assert_eq!(m.syncache_retransmits, retransmitted);
    assert_eq!(m.listen_syns, u64::from(SYNS + legit));
    assert_bounded(&cache, &config, &[listener]);
}

/// One step of a random conversation with a small cache.
#[derive(Clone, Debug)]
enum Op {
    Syn {
        peer: u8,
        listener: u8,
        seq: u32,
        options: u64,
        fin: bool,
    },
    Segment {
        peer: u8,
        flags: u8,
        seq_off: u32,
        ack: Option<u32>,
        ts: Option<(u32, u32)>,
        full: bool,
    },
    Advance(u32),
    Timeout,
    Drain(u8),
    Remove(u8),
}

fn syn_op() -> impl Strategy<Value = Op> {
    (0..12u8, 0..3u8, any::<u32>(), any::<u64>(), any::<bool>()).prop_map(
        |(peer, listener, seq, options, fin)| Op::Syn {
            peer,
            listener,
            seq,
            options,
            fin,
        },
    )
}

fn segment_op() -> impl Strategy<Value = Op> {
    // Mostly well-formed final ACKs (so handshakes do complete), often not.
    let flags = prop_oneof![2 => Just(TcpFlags::ACK.0), 1 => any::<u8>()];
    let ack = proptest::option::weighted(0.3, any::<u32>());
    let ts = proptest::option::weighted(0.2, any::<(u32, u32)>());
    let full = proptest::bool::weighted(0.2);
    (0..12u8, flags, 0..3u32, ack, ts, full).prop_map(|(peer, flags, seq_off, ack, ts, full)| {
        Op::Segment {
            peer,
            flags,
            seq_off,
            ack,
            ts,
            full,
        }
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => syn_op(),
        4 => segment_op(),
        2 => (0..6_000u32).prop_map(Op::Advance),
        1 => Just(Op::Timeout),
        1 => (0..3u8).prop_map(Op::Drain),
        1 => (0..12u8).prop_map(Op::Remove),
    ]
}

fn prop_peer(n: u8) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::new(10, 1, 0, n).into(), 1000 + u16::from(n))
}

/// Runs `ops` against a cache with room for six entries, four per listener,
/// checking the bounds after each.
fn run_ops(ops: Vec<Op>) -> Result<TcpMibSnapshot, TestCaseError> {
    let config = SynCacheConfig {
        max_entries: 6,
        max_per_listener: 4,
        shards: 2,
        synack_retries: 2,
        cookies: CookiePolicy::WhenFull,
    };
    let cache = SynCache::new(config, &TcpConfig::default(), SecretKey([9; 16]));
    let mib = TcpMib::default();
    let local: SocketAddr = "10.0.0.1:80".parse().unwrap();
    let listeners = [0u64, 1, 2];
    let mut now = Instant::from_secs(10);
    // The last SYN-ACK each peer saw, so ACKs can be right as well as wrong.
    let mut synacks: HashMap<u8, TcpHeader> = HashMap::new();
    for op in ops {
        match op {
            Op::Syn {
                peer,
                listener,
                seq,
                options,
                fin,
            } => {
                let flags = if fin {
                    TcpFlags::SYN | TcpFlags::FIN
                } else {
                    TcpFlags::SYN
                };
                let mut seg = segment(prop_peer(peer), local, seq, flags);
                seg.header.options = offer(options);
                let remote = prop_peer(peer);
                match cache.on_syn(now, u64::from(listener), local, remote, &seg, &mib) {
                    SynDisposition::Reply(h)
                    | SynDisposition::Cookie(h)
                    | SynDisposition::Duplicate(h) => {
                        prop_assert_eq!(h.ack, SeqNum(seq) + 1usize);
                        synacks.insert(peer, h);
                    }
                    SynDisposition::Dropped(why) => prop_assert!(fin, "{:?}", why),
                }
            }
            Op::Segment {
                peer,
                flags,
                seq_off,
                ack,
                ts,
                full,
            } => {
                let known = synacks.get(&peer);
                let seq = known.map_or(0, |h| h.ack.0).wrapping_add(seq_off);
                let mut seg = segment(prop_peer(peer), local, seq, TcpFlags(flags));
                let right_ack = known.map_or(SeqNum(0), |h| h.seq + 1usize);
                seg.header.ack = ack.map_or(right_ack, SeqNum);
                let echo = known
                    .and_then(|h| h.options.timestamps)
                    .map(|t| Timestamps {
                        value: t.echo_reply.wrapping_add(1),
                        echo_reply: t.value,
                    });
                seg.header.options.timestamps = ts
                    .map(|(value, echo_reply)| Timestamps { value, echo_reply })
                    .or(echo);
                let remote = prop_peer(peer);
                let d = if full {
                    cache.on_segment_queue_full(now, 0, local, remote, &seg, &mib)
                } else {
                    cache.on_segment(now, 0, local, remote, &seg, &mib)
                };
                if let HandshakeDisposition::Established(hs) = d {
                    prop_assert!(!full);
                    prop_assert_eq!(hs.iss + 1usize, seg.header.ack);
                    prop_assert_eq!(hs.remote, remote);
                    prop_assert!(hs.peer_mss >= MIN_PEER_MSS);
                }
            }
            Op::Advance(ms) => now = now + Duration::from_millis(u64::from(ms)),
            Op::Timeout => {
                cache.on_timeout(now, &mib, |l, r, h| {
                    assert_eq!(l, local);
                    assert_eq!((h.src_port, h.dst_port), (l.port(), r.port()));
                });
                if let Some(at) = cache.poll_at() {
                    prop_assert!(at > now, "on_timeout left due work behind");
                }
            }
            Op::Drain(l) => {
                cache.drain_listener(u64::from(l));
                prop_assert_eq!(cache.listener_len(u64::from(l)), 0);
            }
            Op::Remove(p) => {
                cache.remove(local, prop_peer(p));
            }
        }
        assert_bounded(&cache, &config, &listeners);
    }
    Ok(mib.snapshot())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_segments_never_panic_or_break_a_bound(
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        run_ops(ops)?;
    }
}

/// The proptest above is only as good as the paths it reaches: 200 seeded
/// conversations must complete handshakes both ways, and see resets, expiry,
/// overflow and refused ACKs.
#[test]
fn random_conversations_reach_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let mut total = TcpMibSnapshot::default();
    let ops = proptest::collection::vec(op(), 60..120);
    for _ in 0..200 {
        let tree = ops.new_tree(&mut runner).unwrap();
        total.add(&run_ops(tree.current()).unwrap());
    }
    assert!(total.syncache_completed > 0, "{total:?}");
    assert!(total.syncookies_recv > 0, "{total:?}");
    assert!(total.syncookies_failed > 0, "{total:?}");
    assert!(total.in_rsts > 0, "{total:?}");
    assert!(total.syncache_expired > 0, "{total:?}");
    assert!(total.syncache_overflow > 0, "{total:?}");
    assert!(total.listen_queue_overflow > 0, "{total:?}");
}

#[test]
fn the_cache_can_be_shared_by_workers() {
    fn shared<T: Send + Sync>() {}
    shared::<SynCache>();
}

/// Workers share one cache: each floods its own spoofed tuples and completes
/// its own real handshakes while another runs the timer and drains a second
/// listener; the budget must still match the tables exactly.
#[test]
fn concurrent_workers_keep_the_budget_exact() {
    let config = SynCacheConfig {
        max_entries: 2048,
        max_per_listener: 1024,
        shards: 8,
        ..SynCacheConfig::default()
    };
    let cache = SynCache::new(config, &TcpConfig::default(), SecretKey([4; 16]));
    let local: SocketAddr = "10.0.0.1:443".parse().unwrap();
    let start = Instant::from_secs(100);
    std::thread::scope(|s| {
        for worker in 0..2u8 {
            let cache = &cache;
            s.spawn(move || {
                let mib = TcpMib::default();
                let mut rng = Rng(0x1234 + u64::from(worker));
                for i in 0..20_000u32 {
                    let now = start + Duration::from_micros(u64::from(i) * 500);
                    let r = rng.next();
                    let spoofed =
                        SocketAddr::new(Ipv4Addr::from(r as u32).into(), 1 + worker as u16);
                    let syn = segment(spoofed, local, r as u32, TcpFlags::SYN);
                    let listener = u64::from(i % 2);
                    cache.on_syn(now, listener, local, spoofed, &syn, &mib);
                    if i % 500 == 0 {
                        let me = SocketAddr::new(Ipv4Addr::new(192, 0, 2, worker).into(), 3000);
                        let syn = segment(me, local, i, TcpFlags::SYN);
                        let synack = match cache.on_syn(now, 0, local, me, &syn, &mib) {
                            SynDisposition::Reply(h) | SynDisposition::Cookie(h) => h,
                            other => panic!("{other:?}"),
                        };
                        let mut ack = segment(me, local, i.wrapping_add(1), TcpFlags::ACK);
                        ack.header.ack = synack.seq + 1usize;
                        let d = cache.on_segment(now, 0, local, me, &ack, &mib);
                        assert!(matches!(d, HandshakeDisposition::Established(_)), "{d:?}");
                    }
                }
            });
        }
        s.spawn(|| {
            let mib = TcpMib::default();
            for i in 0..400u64 {
                let now = start + Duration::from_millis(i * 25);
                cache.on_timeout(now, &mib, |_, _, _| {});
                if i % 50 == 0 {
                    cache.drain_listener(1);
                }
                assert!(cache.len() <= config.max_entries);
            }
        });
    });
    assert_bounded(&cache, &config, &[0, 1]);
}
