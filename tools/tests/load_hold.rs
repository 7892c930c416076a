//! `smrnet load hold` against loopback echo servers (no root needed): every
//! connection is set up, held with keepalive echoes, and lost ones are
//! counted; a hold split over processes adds up.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tools::load::hold::{HoldOpts, Holder};

/// A loopback server that echoes (or, with `close_after_first`, echoes one
/// read and then closes); it stops when the runtime is dropped.
fn server(close_after_first: bool) -> (SocketAddr, tokio::runtime::Runtime) {
    let (rt, listener, addr) = common::loopback_listener();
    rt.spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                loop {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if sock.write_all(&buf[..n]).await.is_err() || close_after_first {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, rt)
}

fn opts(target: SocketAddr, n: usize) -> HoldOpts {
    let mut o = HoldOpts::new(target);
    o.connections = n;
    o.setup_concurrency = 16;
    o.duration = Duration::from_millis(450);
    o.keepalive_interval = Some(Duration::from_millis(100));
    o.threads = 1;
    o
}

#[test]
fn every_connection_is_set_up_held_and_echoes_keepalives() {
    let (addr, _rt) = server(false);
    let stop = AtomicBool::new(false);
    let mut h = Holder::open(&opts(addr, 300), &stop).unwrap();
    assert_eq!(h.open_count(), 300);
    assert_eq!(h.stats().established, 300);
    assert_eq!(h.stats().setup_errors.total(), 0);
    assert_eq!(h.stats().connect_latency.count, 300);
    h.hold(&stop);
    let s = h.close();
    assert!(s.keepalive_rounds >= 3, "{s:?}");
    assert_eq!(s.keepalive_failures, 0, "{s:?}");
    assert_eq!(s.open_at_end, 300);
    assert!(s.held_secs >= 0.45 && s.held_secs < 5.0, "{s:?}");
}

#[test]
fn connections_the_server_closes_are_lost_at_the_second_keepalive() {
    let (addr, _rt) = server(true);
    let stop = AtomicBool::new(false);
    let mut h = Holder::open(&opts(addr, 50), &stop).unwrap();
    h.hold(&stop);
    let s = h.close();
    // The first keepalive is echoed, then the server closes: the next fails.
    assert_eq!(s.keepalive_failures, 50, "{s:?}");
    assert_eq!(s.open_at_end, 0, "{s:?}");
}

#[test]
fn a_closed_port_fails_setup_as_refused() {
    let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stop = AtomicBool::new(false);
    let h = Holder::open(
        &opts(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), 20),
        &stop,
    )
    .unwrap();
    assert_eq!(h.stats().established, 0);
    assert_eq!(h.stats().setup_errors.refused, 20);
}

#[test]
fn cli_hold_split_over_processes_adds_up() {
    let (addr, _rt) = server(false);
    let target = addr.to_string();
    let v = common::run_json(&[
        "load",
        "hold",
        "--target",
        &target,
        "--connections",
        "301",
        "--processes",
        "3",
        "--duration",
        "300ms",
        "--keepalive-interval",
        "100ms",
        "--no-metrics",
        "--json",
    ]);
    assert_eq!(v["processes"], 3, "{v:#}");
    assert_eq!(v["requested"], 301, "{v:#}");
    assert_eq!(v["established"], 301, "{v:#}");
    assert_eq!(v["open_at_end"], 301, "{v:#}");
    assert_eq!(v["keepalive_failures"], 0, "{v:#}");
    assert!(v["keepalive_rounds"].as_u64().unwrap() >= 1, "{v:#}");
    assert!(
        v["daemon"]["drained"].is_null(),
        "no metrics, no drain verdict: {v:#}"
    );
}
