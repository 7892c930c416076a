//! `membarrier(2)` can fail after registration (ENOMEM). Every path that
//! issues it must stay safe and keep its promise: a pool cache steal gives
//! up (never touches a cache the barrier did not cover), `reclaim` skips
//! that cache, `barrier` retries it; pserialize and the lazy domain retry the
//! barrier, and every failure is counted. Failures are injected with the
//! thread-local hook `smr::fault_injection`, so tests in this binary cannot
//! disturb one another.
#![cfg(not(loom))]

use smr::fault_injection::{fail_next_barriers, pending_barrier_failures, refuse_registration};
use smr::{Config, Domain, Mode, PoolCache, PoolConfig, Protection, Pserialize, Variant};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

/// Whether this kernel grants private expedited barriers at all; without
/// them every path under test falls back to real fences and never issues
/// the barrier.
fn membarrier_available() -> bool {
    let d = Domain::new(Mode::Lazy);
    if let Some(reason) = d.fallback_reason() {
        eprintln!("membarrier unavailable here, test skipped: {reason}");
        return false;
    }
    true
}

#[test]
fn pserialize_perform_retries_a_failed_membarrier_and_still_waits_for_readers() {
    if !membarrier_available() {
        return;
    }
    let ps = Arc::new(Pserialize::new(Variant::Naive));
    let (entered_tx, entered_rx) = mpsc::channel();
    let leave = Arc::new(AtomicBool::new(false));
    let reader = {
        let (ps, leave) = (ps.clone(), leave.clone());
        std::thread::spawn(move || {
            let _s = ps.read_enter();
            entered_tx.send(()).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            // Acquire: pairs with the Release store below.
            while !leave.load(Acquire) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    entered_rx.recv().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let writer = {
        let ps = ps.clone();
        std::thread::spawn(move || {
            fail_next_barriers(3);
            ps.perform();
            done_tx.send(pending_barrier_failures()).unwrap();
        })
    };
    // The reader is still inside: perform must not return, failures or not.
    assert!(
        done_rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "perform returned while a reader it must wait for was inside"
    );
    // Release: pairs with the reader's Acquire load.
    leave.store(true, Release);
    let left = done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("perform never returned after the reader left");
    writer
        .join()
        .expect("perform panicked on a failed membarrier");
    reader.join().unwrap();
    assert_eq!(left, 0, "every injected failure was hit");
    let st = ps.stats();
    assert_eq!(st.membarrier_failures, 3);
    assert_eq!(st.membarriers, 4, "three failed barriers and one that ran");
}

#[test]
fn lazy_domain_never_passes_an_uncovered_goal_and_wait_retries_the_barrier() {
    if !membarrier_available() {
        return;
    }
    let mut cfg = Config::new(Mode::Lazy);
    cfg.lazy_interval = Duration::ZERO;
    let d = Domain::with_config(cfg);
    let goal = d.advance();
    fail_next_barriers(4);
    // Each poll tries a barrier (interval zero) and it fails: the goal must
    // not pass, since no barrier covers it.
    for _ in 0..2 {
        assert!(!d.poll(goal), "a goal passed with no barrier after it");
    }
    assert_eq!(pending_barrier_failures(), 2);
    assert_eq!(d.stats().membarrier_failures, 2);
    // `wait` retries with backoff through the remaining failures.
    let start = Instant::now();
    assert!(d.wait_timeout(goal, Duration::from_secs(10)));
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(pending_barrier_failures(), 0);
    let st = d.stats();
    assert_eq!(st.membarrier_failures, 4);
    assert!(d.poll(goal));
}

struct Obj {
    /// The id of the owner that holds it; 0 while free.
    owner: AtomicU64,
}

fn small() -> PoolConfig {
    PoolConfig {
        magazine_size: 8,
        chunk_objects: 8,
        max_objects: 8,
        expedite_timeout: Duration::ZERO,
        expedite_backoff: Duration::ZERO,
        latency_sample_every: 1 << 20,
    }
}

/// Fails without the fix: the old steal went on after a failed barrier (with
/// a thief-side fence only) and moved the owner's reusable magazine to the
/// depot, where this thread could then allocate from it.
#[test]
fn reclaim_leaves_a_cache_alone_when_its_steal_barrier_fails() {
    if !membarrier_available() {
        return;
    }
    let pool = Arc::new(PoolCache::with_config(
        Protection::Immediate,
        small(),
        || Obj {
            owner: AtomicU64::new(0),
        },
    ));
    // The owner grows the only chunk (cap 8), retires all eight (one full
    // batch, reusable at once), then takes them back into its own alloc
    // magazine with one alloc, retires that one, and parks alive.
    let (ready_tx, ready_rx) = mpsc::channel();
    let (exit_tx, exit_rx) = mpsc::channel::<()>();
    let owner = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let objs: Vec<_> = (0..8).map(|_| pool.alloc().expect("cap 8")).collect();
            for o in objs {
                o.retire();
            }
            pool.alloc().expect("from the depot").retire();
            ready_tx.send(()).unwrap();
            let _ = exit_rx.recv_timeout(Duration::from_secs(10));
        })
    };
    ready_rx.recv().unwrap();
    // Seven reusable slots sit in the owner's alloc magazine, one in its
    // retire magazine: nothing for us.
    assert!(pool.alloc().is_err(), "the owner's cache holds every slot");

    fail_next_barriers(1);
    pool.reclaim();
    assert_eq!(pending_barrier_failures(), 0, "the steal issued a barrier");
    assert!(
        pool.alloc().is_err(),
        "reclaim took a cache whose owner no barrier had covered"
    );
    assert_eq!(pool.stats().membarrier_failures, 1);

    // With a working barrier the same reclaim takes the owner's magazines.
    pool.reclaim();
    let got = pool.alloc().expect("reclaim moved the owner's slots");
    got.retire();
    drop(exit_tx);
    owner.join().unwrap();
}

/// `barrier()` promises that everything retired before it is reusable when
/// it returns; a failed steal must not break that.
#[test]
fn pool_barrier_retries_a_cache_whose_steal_barrier_failed() {
    if !membarrier_available() {
        return;
    }
    let domain = Arc::new(Domain::new(Mode::Default));
    let mut cfg = small();
    cfg.max_objects = 64;
    let pool = Arc::new(PoolCache::with_config(Protection::Smr(domain), cfg, || {
        Obj {
            owner: AtomicU64::new(0),
        }
    }));
    let (ready_tx, ready_rx) = mpsc::channel();
    let (exit_tx, exit_rx) = mpsc::channel::<()>();
    let owner = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            // Three retired objects in a partial retire magazine.
            let objs: Vec<_> = (0..3).map(|_| pool.alloc().unwrap()).collect();
            for o in objs {
                o.retire();
            }
            ready_tx.send(()).unwrap();
            let _ = exit_rx.recv_timeout(Duration::from_secs(10));
        })
    };
    ready_rx.recv().unwrap();
    assert_eq!(pool.stats().pending, 3);
    fail_next_barriers(3);
    pool.barrier();
    assert_eq!(pending_barrier_failures(), 0);
    let st = pool.stats();
    assert_eq!(st.membarrier_failures, 3);
    assert_eq!(st.pending, 0, "barrier() left retired objects pending");
    drop(exit_tx);
    owner.join().unwrap();
}

/// Stress: two owners allocate and retire while a thief runs `reclaim` and
/// `barrier` with barriers failing now and then. Each object records its
/// holder; an object handed to a second holder while the first still has it
/// is a double hand-out. The owners run until the thief has done `ROUNDS`
/// rounds (so the two overlap even when the machine runs them in turns);
/// everything is also bounded by `OPS` operations per owner and `BUDGET`.
fn steal_stress(fenced: bool) {
    const OPS: usize = 20_000_000;
    const ROUNDS: u32 = 3_000;
    const BUDGET: Duration = Duration::from_secs(3);
    refuse_registration(fenced);
    let pool = Arc::new(PoolCache::with_config(
        Protection::Immediate,
        PoolConfig {
            magazine_size: 4,
            chunk_objects: 16,
            max_objects: 64,
            ..small()
        },
        || Obj {
            owner: AtomicU64::new(0),
        },
    ));
    refuse_registration(false);
    let doubles = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(3));
    // Owners that have claimed their caches (done one operation).
    let claimed = Arc::new(AtomicUsize::new(0));
    let owners: Vec<_> = (1..=2u64)
        .map(|id| {
            let (pool, doubles, stop, start, claimed) = (
                pool.clone(),
                doubles.clone(),
                stop.clone(),
                start.clone(),
                claimed.clone(),
            );
            std::thread::spawn(move || {
                start.wait();
                let deadline = Instant::now() + BUDGET;
                let mut held = Vec::with_capacity(8);
                for i in 0..OPS {
                    // Acquire: pairs with the thief's Release store.
                    if i % 1024 == 0 && (stop.load(Acquire) || Instant::now() > deadline) {
                        break;
                    }
                    if held.len() < 6 && i % 3 != 2 {
                        if let Ok(o) = pool.alloc() {
                            if i == 0 {
                                // Release: pairs with the thief's Acquire.
                                claimed.fetch_add(1, Release);
                            }
                            // Relaxed: the pool's hand-out orders the slot;
                            // this only detects a second holder.
                            if o.owner.swap(id, Relaxed) != 0 {
                                doubles.fetch_add(1, Relaxed);
                            }
                            held.push(o);
                        }
                    } else if let Some(o) = held.pop() {
                        // Relaxed: as above.
                        if o.owner.swap(0, Relaxed) != id {
                            doubles.fetch_add(1, Relaxed);
                        }
                        o.retire();
                    }
                }
                for o in held {
                    o.owner.store(0, Relaxed);
                    o.retire();
                }
            })
        })
        .collect();
    let thief = {
        let (pool, stop) = (pool.clone(), stop.clone());
        let claimed = claimed.clone();
        std::thread::spawn(move || {
            start.wait();
            let deadline = Instant::now() + BUDGET;
            // Acquire: pairs with the owners' Release increments.
            while claimed.load(Acquire) < 2 && Instant::now() < deadline {
                std::thread::yield_now();
            }
            let mut i = 0u32;
            while i < ROUNDS && Instant::now() < deadline {
                fail_next_barriers(i % 3);
                if i % 4 == 3 {
                    pool.barrier();
                } else {
                    pool.reclaim();
                }
                i += 1;
            }
            // Release: pairs with the owners' Acquire load.
            stop.store(true, Release);
            i
        })
    };
    let rounds = thief.join().unwrap();
    for o in owners {
        o.join().unwrap();
    }
    let st = pool.stats();
    eprintln!(
        "fenced {fenced}: {rounds} thief rounds, {} allocs, {} steal barrier failures",
        st.allocs, st.membarrier_failures
    );
    assert_eq!(doubles.load(Relaxed), 0, "an object had two holders");
    if fenced {
        assert_eq!(st.membarrier_failures, 0, "fenced owners need no barrier");
    } else if rounds > 3 {
        assert!(st.membarrier_failures > 0, "no injected failure was hit");
    }
}

#[test]
fn steal_with_failing_membarrier_never_hands_an_object_to_two_holders() {
    if !membarrier_available() {
        return;
    }
    steal_stress(false);
}

#[test]
fn steal_from_fenced_owners_never_hands_an_object_to_two_holders() {
    steal_stress(true);
}
