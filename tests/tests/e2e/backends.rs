//! `smrnetd --pcb-backend NAME` serves on every connection-table backend: the
//! SMR table and the refcounted-slot baselines (dashmap, rwlock, papaya).
//! Each backend gets its own lab, 100 parallel echo connections and 2,000
//! sequential short ones with no failure, and an empty table afterwards.

use crate::clients::{connect, pattern};
use crate::names::{PASSIVE_OPENS, SYNCACHE_ENTRIES, TABLE_BUCKETS, TABLE_ENTRIES};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tests::{DAEMON_V4, ECHO_PORT, Lab, Metrics, Outcome, lab_with, scrape};

const BACKENDS: [&str; 4] = ["smr", "dashmap", "rwlock", "papaya"];
const PARALLEL: u64 = 100;
/// Octets each parallel connection echoes.
const PARALLEL_BYTES: usize = 16 << 10;
const SEQUENTIAL: u64 = 2_000;
/// Whole test, all four backends: far beyond a healthy run (~10 s).
const BUDGET: Duration = Duration::from_secs(90);

pub fn every_pcb_backend_serves_parallel_and_sequential_echo_and_drains() -> Outcome {
    let start = Instant::now();
    for backend in BACKENDS {
        serve_on(backend, start);
    }
    eprintln!(
        "backends: {} x ({PARALLEL} parallel + {SEQUENTIAL} sequential echo connections) in {:.2}s",
        BACKENDS.len(),
        start.elapsed().as_secs_f64()
    );
    Outcome::Passed
}

fn serve_on(backend: &str, start: Instant) {
    let lab = lab_with(2, &["--pcb-backend", backend]);
    let before = settled(&lab, backend);
    // The flag took effect: only the SMR table has buckets to report.
    let buckets = before.sum(TABLE_BUCKETS);
    if backend == "smr" {
        assert!(buckets > 0.0, "smr: {TABLE_BUCKETS} is {buckets}");
    } else {
        assert_eq!(buckets, 0.0, "{backend}: a baseline reports no buckets");
    }
    let addr = SocketAddr::new(IpAddr::V4(DAEMON_V4), ECHO_PORT);
    let failures: Vec<String> = lab
        .in_netns(|| {
            let mut failures: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..PARALLEL)
                    .map(|i| s.spawn(move || echo(addr, i, PARALLEL_BYTES)))
                    .collect();
                handles
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, h)| {
                        let r = h.join().expect("echo thread panicked");
                        r.err().map(|e| format!("parallel connection {i}: {e}"))
                    })
                    .collect()
            });
            for i in 0..SEQUENTIAL {
                if let Err(e) = echo(addr, PARALLEL + i, 64) {
                    failures.push(format!("sequential connection {i}: {e}"));
                }
                if start.elapsed() > BUDGET {
                    failures.push(format!("out of time after {i} sequential connections"));
                    break;
                }
            }
            failures
        })
        .expect("enter the lab");
    assert!(
        failures.is_empty(),
        "{backend}: {} failures, first: {}",
        failures.len(),
        failures[0]
    );
    // The client closes first: the daemon's side leaves the table at the
    // final ACK. Wait for it, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let m = scrape(&lab);
        if m.sum(TABLE_ENTRIES) == 0.0 || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        after.sum(TABLE_ENTRIES),
        0.0,
        "{backend}: connections left in the table"
    );
    let opened = after.sum(PASSIVE_OPENS) - before.sum(PASSIVE_OPENS);
    assert_eq!(
        opened,
        (PARALLEL + SEQUENTIAL) as f64,
        "{backend}: passive opens counted"
    );
}

/// The metrics once `lab up`'s readiness probe (one connection) is counted
/// and gone: its final ACK can reach the daemon after `lab up` returned.
fn settled(lab: &Lab, backend: &str) -> Metrics {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = scrape(lab);
        let quiet = m.sum(TABLE_ENTRIES) == 0.0 && m.sum(SYNCACHE_ENTRIES) == 0.0;
        if quiet && m.sum(PASSIVE_OPENS) >= 1.0 {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{backend}: the readiness probe's connection did not finish in 5 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One connection: write `len` octets, read the echo back, compare, close
/// (the client closes first). `len` stays far below the kernel's socket
/// buffers, so writing everything before reading cannot stall.
fn echo(addr: SocketAddr, seed: u64, len: usize) -> io::Result<()> {
    let mut stream = connect(addr)?;
    let data = pattern(seed, len);
    stream.write_all(&data)?;
    let mut back = vec![0u8; len];
    stream.read_exact(&mut back)?;
    if back != data {
        return Err(io::Error::other("the echo differs from what was sent"));
    }
    Ok(())
}
