//! A stalled reader must cost bounded memory, not correctness and not an
//! unbounded wait: one reader enters and sleeps while churn continues;
//! pending memory rises to the cap and stops there, `alloc` returns
//! `Exhausted` (counted) instead of growing, no object retired during the
//! stall is handed out while the reader is inside, and after the reader
//! leaves the pool recovers and the pending count drains.
//!
//! Uses the default sequence space: the wrap-test space forces blocking
//! catch-ups in `advance` while a reader stalls, which is a different test.
//!
//! `cargo test -p smr --release --test pool_stalled_reader`
#![cfg(not(loom))]

use smr::{Domain, Exhausted, Mode, PoolCache, PoolConfig, Protection};
use std::collections::HashSet;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const POISON: u64 = 0xfeed_face;
const CAP: usize = 1024;

struct Node {
    key: AtomicU64,
}

#[test]
fn stalled_reader_bounds_pending_memory_and_alloc_fails_fast_at_the_cap() {
    let domain = Arc::new(Domain::new(Mode::Default));
    let cfg = PoolConfig {
        magazine_size: 16,
        chunk_objects: 16,
        max_objects: CAP,
        expedite_timeout: Duration::from_millis(2),
        expedite_backoff: Duration::from_millis(20),
        latency_sample_every: 1,
    };
    let pool = Arc::new(PoolCache::with_poison_hook(
        Protection::Smr(domain.clone()),
        cfg.clone(),
        || Node {
            key: AtomicU64::new(0),
        },
        |n| n.key.store(POISON, Relaxed),
    ));

    // Objects the reader will be holding when it stalls.
    let held: Vec<NonNull<Node>> = (0..16).map(|_| pool.alloc_raw().unwrap()).collect();
    for (i, p) in held.iter().enumerate() {
        // SAFETY: we own it.
        unsafe { p.as_ref() }.key.store(i as u64 + 1, Relaxed);
    }
    let held_addrs: Vec<usize> = held.iter().map(|p| p.as_ptr() as usize).collect();

    let (entered_tx, entered_rx) = mpsc::channel();
    let (wake_tx, wake_rx) = mpsc::channel::<()>();
    let reader = {
        let (domain, pool) = (domain.clone(), pool.clone());
        let addrs = held_addrs.clone();
        std::thread::spawn(move || {
            let guard = domain.enter();
            let ptrs: Vec<NonNull<Node>> = addrs
                .iter()
                .map(|&a| NonNull::new(a as *mut Node).unwrap())
                // SAFETY: resident, and this section began before any retire.
                .map(|p| (p, unsafe { pool.generation(p) }))
                .map(|(p, g)| {
                    assert_eq!(g % 2, 1, "held objects are live when the reader enters");
                    p
                })
                .collect();
            let gens: Vec<u64> = ptrs
                .iter()
                // SAFETY: as above.
                .map(|&p| unsafe { pool.generation(p) })
                .collect();
            entered_tx.send(()).unwrap();
            wake_rx.recv().unwrap(); // the stall
            for (i, (&p, g)) in ptrs.iter().zip(gens).enumerate() {
                // SAFETY: still inside the section that began before the
                // objects were retired.
                let (key, poisoned, g2) = unsafe {
                    (
                        p.as_ref().key.load(Relaxed),
                        pool.is_poisoned(p),
                        pool.generation(p),
                    )
                };
                assert!(
                    !poisoned,
                    "object {i} was reclaimed under the stalled reader"
                );
                assert_eq!(key, i as u64 + 1, "object {i} was reused under the reader");
                assert_eq!(g2, g + 1, "object {i}: exactly one retire, no reuse");
            }
            drop(guard);
        })
    };
    entered_rx.recv().unwrap();

    // Retire what the reader holds, then churn while it sleeps.
    let mut retired_during_stall: HashSet<usize> = held_addrs.iter().copied().collect();
    for p in held {
        // SAFETY: "unlinked" (the reader found it before); we own it.
        unsafe { pool.retire_raw(p) };
    }
    let mut exhausted = 0u64;
    let mut slowest_failure = Duration::ZERO;
    let started = Instant::now();
    let mut live: Vec<NonNull<Node>> = Vec::new();
    while exhausted < 200 && started.elapsed() < Duration::from_secs(10) {
        let t = Instant::now();
        match pool.alloc_raw() {
            Ok(p) => {
                assert!(
                    !retired_during_stall.contains(&(p.as_ptr() as usize)),
                    "an object retired during the stall was reused while the reader is inside"
                );
                live.push(p);
                if live.len() > 8 {
                    let old = live.remove(0);
                    retired_during_stall.insert(old.as_ptr() as usize);
                    // SAFETY: never published; we own it.
                    unsafe { pool.retire_raw(old) };
                }
            }
            Err(Exhausted) => {
                exhausted += 1;
                slowest_failure = slowest_failure.max(t.elapsed());
            }
        }
        let s = pool.stats();
        assert!(s.allocated <= CAP as u64, "grew past the cap: {s:?}");
    }
    let s = pool.stats();
    println!("at the cap: {s:?}");
    assert_eq!(exhausted, 200, "churn never hit the cap: {s:?}");
    assert_eq!(
        s.allocated, CAP as u64,
        "pending rises to the cap and stops there"
    );
    assert!(s.exhausted >= 200, "Exhausted is counted: {s:?}");
    assert!(
        s.pending + 8 + cfg.magazine_size as u64 * 2 >= CAP as u64,
        "nearly everything is pending behind the reader: {s:?}"
    );
    assert_eq!(s.live + s.cached + s.pending, s.allocated, "{s:?}");
    assert!(
        slowest_failure < Duration::from_millis(200),
        "alloc at the cap must fail fast (expedite is bounded), took {slowest_failure:?}"
    );
    assert!(
        s.sync_wait_failures >= 1,
        "the cap path expedited first: {s:?}"
    );

    // The reader wakes, checks its objects, and leaves.
    wake_tx.send(()).unwrap();
    reader.join().unwrap();

    // Recovery: allocation succeeds again (first miss polls the oldest batch).
    for _ in 0..4 * CAP {
        let p = pool
            .alloc_raw()
            .expect("the pool recovers once the reader has left");
        // SAFETY: never published; we own it.
        unsafe { pool.retire_raw(p) };
    }
    for p in live.drain(..) {
        // SAFETY: never published; we own it.
        unsafe { pool.retire_raw(p) };
    }
    let r = pool.reclaim();
    let s = pool.stats();
    println!("after recovery: {r:?} {s:?}");
    assert!(
        s.pending < cfg.magazine_size as u64,
        "pending drains to at most this thread's partial magazine: {s:?}"
    );
    pool.barrier();
    let s = pool.stats();
    assert_eq!((s.live, s.pending), (0, 0), "{s:?}");
    assert_eq!(s.cached, s.allocated);
}
