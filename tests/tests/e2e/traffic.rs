//! The daemon's services answer kernel sockets correctly.

use crate::clients::{connect, http_get_once, http_request, pattern};
use crate::names::{ECHO_REPLIES, OUT_RSTS, PASSIVE_OPENS, POOL_PENDING, TABLE_ENTRIES};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tests::{
    DAEMON_V4, DAEMON_V6, ECHO_PORT, HTTP_PORT, Outcome, have, lab, lab_with, ping, scrape,
};

pub fn ping_v4_and_v6_are_answered() -> Outcome {
    let lab = lab();
    let before = scrape(&lab).sum(ECHO_REPLIES);
    lab.in_netns(|| {
        for dst in [IpAddr::V4(DAEMON_V4), IpAddr::V6(DAEMON_V6)] {
            // Three tries: the first IPv6 packet can meet the link still settling.
            let mut last = None;
            for ident in 0x5eed..0x5eed + 3 {
                match ping(dst, ident, Duration::from_secs(2)) {
                    Ok(_) => {
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            if let Some(e) = last {
                panic!("ping {dst}: {e}");
            }
        }
    })
    .expect("enter the lab");
    let replies = scrape(&lab).sum(ECHO_REPLIES) - before;
    assert!(
        replies >= 2.0,
        "echo replies counted {replies}, expected at least 2"
    );
    Outcome::Passed
}

pub fn http_body_reaches_curl_and_a_std_client() -> Outcome {
    let lab = lab();
    let v4 = SocketAddr::new(IpAddr::V4(DAEMON_V4), HTTP_PORT);
    let v6 = SocketAddr::new(IpAddr::V6(DAEMON_V6), HTTP_PORT);
    let body = lab
        .in_netns(|| {
            // Two requests on one connection: keep-alive works.
            let mut s = connect(v4).expect("connect to http");
            let (status, first) = http_request(&mut s, "/").expect("first request");
            assert_eq!(status, 200);
            let (status, second) =
                http_request(&mut s, "/").expect("second request, same connection");
            assert_eq!(status, 200);
            assert_eq!(first, second);
            assert!(!first.is_empty(), "empty HTTP body");
            let over_v6 = http_get_once(v6).expect("GET over IPv6");
            assert_eq!(first, over_v6);
            first
        })
        .expect("enter the lab");
    if !have("curl") {
        return Outcome::Skipped(format!(
            "the std client got {} bytes, but curl is not installed (apt-get install curl)",
            body.len()
        ));
    }
    for url in [
        format!("http://{DAEMON_V4}/"),
        format!("http://[{DAEMON_V6}]/"),
    ] {
        let out = lab
            .command("curl")
            .args([
                "--silent",
                "--show-error",
                "--fail",
                "--max-time",
                "10",
                &url,
            ])
            .output()
            .expect("run curl");
        assert!(
            out.status.success(),
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, body, "curl {url} got a different body");
    }
    Outcome::Passed
}

pub fn echo_round_trips_1mib_on_100_parallel_connections() -> Outcome {
    const CONNS: u64 = 100;
    const BYTES: usize = 1 << 20;
    let lab = lab();
    let addr = SocketAddr::new(IpAddr::V4(DAEMON_V4), ECHO_PORT);
    let start = Instant::now();
    let failures: Vec<String> = lab
        .in_netns(|| {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..CONNS)
                    .map(|i| {
                        s.spawn(move || {
                            echo_one(addr, i, BYTES).map_err(|e| format!("connection {i}: {e}"))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().expect("echo thread panicked").err())
                    .collect()
            })
        })
        .expect("enter the lab");
    assert!(
        failures.is_empty(),
        "{} of {CONNS} echo connections failed, e.g. {}",
        failures.len(),
        failures[0]
    );
    eprintln!(
        "echo: {CONNS} x {BYTES} bytes each way in {:.2}s",
        start.elapsed().as_secs_f64()
    );
    Outcome::Passed
}

/// Write `len` bytes while reading the echo back on another thread, then
/// compare byte for byte.
fn echo_one(addr: SocketAddr, seed: u64, len: usize) -> io::Result<()> {
    let stream = connect(addr)?;
    let data = pattern(seed, len);
    let mut reader = stream.try_clone()?;
    let back = std::thread::scope(|s| {
        let r = s.spawn(move || {
            let mut back = vec![0u8; len];
            reader.read_exact(&mut back).map(|()| back)
        });
        let mut w = &stream;
        w.write_all(&data)?;
        r.join().expect("reader panicked")
    })?;
    if back != data {
        let at = back
            .iter()
            .zip(&data)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err(io::Error::other(format!("echo differs at byte {at}")));
    }
    Ok(())
}

pub fn ten_thousand_sequential_connections_leave_the_table_and_pool_empty() -> Outcome {
    const CONNS: usize = 10_000;
    let lab = lab_with(1, &[]);
    let before = scrape(&lab);
    let addr = SocketAddr::new(IpAddr::V4(DAEMON_V4), HTTP_PORT);
    let start = Instant::now();
    let (ok, first_error) = lab
        .in_netns(|| {
            let mut ok = 0;
            let mut first_error = None;
            for i in 0..CONNS {
                match http_get_once(addr) {
                    Ok(_) => ok += 1,
                    Err(e) => {
                        first_error.get_or_insert(format!("connection {i}: {e}"));
                    }
                }
                // Bounded in time too: 120 s is far beyond a healthy run.
                if start.elapsed() > Duration::from_secs(120) {
                    first_error.get_or_insert(format!("only {i} connections in 120 s"));
                    break;
                }
            }
            (ok, first_error)
        })
        .expect("enter the lab");
    eprintln!(
        "churn: {ok} of {CONNS} connections in {:.2}s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(ok, CONNS, "failures: first was {first_error:?}");

    // The client closes first, so the daemon's side ends in LAST_ACK and
    // leaves the table at the final ACK; retired blocks drain once their
    // grace period passes. Wait for both, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let m = scrape(&lab);
        let drained = m.sum(TABLE_ENTRIES) == 0.0 && m.sum(POOL_PENDING) == 0.0;
        if drained || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        after.sum(TABLE_ENTRIES),
        0.0,
        "connections left in the table"
    );
    assert_eq!(
        after.sum(POOL_PENDING),
        0.0,
        "pool objects still pending after 10 s"
    );
    let opened = after.sum(PASSIVE_OPENS) - before.sum(PASSIVE_OPENS);
    assert_eq!(opened, CONNS as f64, "passive opens counted");
    Outcome::Passed
}

pub fn port_without_listener_refuses_with_rst() -> Outcome {
    let lab = lab();
    let before = scrape(&lab);
    lab.in_netns(|| {
        for ip in [IpAddr::V4(DAEMON_V4), IpAddr::V6(DAEMON_V6)] {
            let addr = SocketAddr::new(ip, 1);
            let t0 = Instant::now();
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(e) => panic!("connect {addr}: expected refused (RST), got {e}"),
                Ok(_) => panic!("connect {addr}: succeeded, but nothing listens there"),
            }
            // A refusal, not a retransmission timeout: the RST came at once.
            assert!(
                t0.elapsed() < Duration::from_secs(1),
                "refusal took {:?}",
                t0.elapsed()
            );
        }
    })
    .expect("enter the lab");
    let rsts = scrape(&lab).sum(OUT_RSTS) - before.sum(OUT_RSTS);
    assert!(rsts >= 2.0, "RSTs sent counted {rsts}, expected at least 2");
    Outcome::Passed
}
