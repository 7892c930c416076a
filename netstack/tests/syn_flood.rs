//! A SYN flood from spoofed sources while legitimate peers connect.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use netstack::{
    CookiePolicy, SeqNum, State, SynCacheConfig, TcpFlags, TcpHeader, TcpOptions, emit_tcp,
};
use support::{B4, FakeNet, NetConfig, Rng};

const FLOOD: usize = 100_000;
const LEGIT: usize = 10;
const CACHE: usize = 512;

fn spoofed_syn(rng: &mut Rng, dst: SocketAddr, buf: &mut [u8]) -> usize {
    let r = rng.next_u64();
    let src = IpAddr::V4(Ipv4Addr::new(198, 18, (r >> 8) as u8, (r >> 16) as u8 | 1));
    let header = TcpHeader {
        src_port: ((r >> 24) as u16) | 1024,
        dst_port: dst.port(),
        seq: SeqNum((r >> 32) as u32),
        flags: TcpFlags::SYN,
        window: 65535,
        options: TcpOptions {
            mss: Some(1460),
            ..TcpOptions::default()
        },
        ..TcpHeader::default()
    };
    emit_tcp(src, dst.ip(), 64, &header, &[], buf).unwrap()
}

#[test]
fn syn_flood_legitimate_peers_complete_and_state_stays_bounded() {
    let mut net = FakeNet::pair_with(NetConfig::default(), |c| {
        c.syncache = SynCacheConfig {
            max_entries: CACHE,
            max_per_listener: CACHE,
            shards: 8,
            cookies: CookiePolicy::WhenFull,
            ..SynCacheConfig::default()
        };
    });
    // SYN-ACKs to spoofed sources go nowhere.
    net.keep_stray = false;
    let server = SocketAddr::new(B4, 80);
    let listener = net.b().listen(server).unwrap();
    let mut rng = Rng::new(0xf100d);
    let mut buf = [0u8; 128];
    let mut clients = Vec::new();
    let mut accepted = 0;
    let mut max_cache = 0;
    let mut max_pcbs = 0;
    for i in 0..FLOOD {
        let n = spoofed_syn(&mut rng, server, &mut buf);
        net.b().worker(0).handle_frame(net.now(), &buf[..n]);
        if i % (FLOOD / LEGIT) == FLOOD / LEGIT / 2 {
            clients.push(net.a().connect(net.now(), 0, None, server).unwrap());
        }
        if i % 100 == 0 {
            net.clock.sleep(Duration::from_micros(500));
            net.step();
            while net.b().accept(&listener).is_some() {
                accepted += 1;
            }
            max_cache = max_cache.max(net.b().syncache_len());
            max_pcbs = max_pcbs.max(net.b().connections());
        }
    }
    assert!(net.run_until(100_000, |n| {
        while n.b().accept(&listener).is_some() {
            accepted += 1;
        }
        accepted == LEGIT
    }));
    for c in &clients {
        assert_eq!(net.a().state_of(c), Some(State::Established));
    }
    let mib = net.b().mib();
    assert!(max_cache <= CACHE, "SYN cache grew to {max_cache}");
    assert!(
        max_pcbs <= LEGIT,
        "{max_pcbs} PCBs for {LEGIT} real connections"
    );
    assert!(
        mib.syncookies_sent > 0,
        "the full cache should answer with cookies"
    );
    assert!(
        mib.syncookies_recv > 0,
        "legitimate peers should complete via cookies"
    );
    assert!(mib.listen_syns >= FLOOD as u64);
    eprintln!(
        "flood: cache max {max_cache}, pcbs max {max_pcbs}, cookies sent {} validated {}, \
         syncache memory {} B",
        mib.syncookies_sent,
        mib.syncookies_recv,
        net.b().syncache_memory_bytes()
    );
}
