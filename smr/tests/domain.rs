//! Behaviour of the domain and the pserialize baseline, one property a test.
#![cfg(not(loom))]

use smr::{Config, Domain, Mode, Pserialize, Variant};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Run `f` on a named thread that holds a read section open until `release`
/// is set; returns once the section is open.
fn with_open_section<R>(d: &Domain, f: impl FnOnce(&AtomicBool) -> R) -> R {
    let release = AtomicBool::new(false);
    let entered = Barrier::new(2);
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("stalled-reader".into())
            .spawn_scoped(s, || {
                let _section = d.enter();
                entered.wait();
                while !release.load(Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
            .unwrap();
        entered.wait();
        let r = f(&release);
        release.store(true, Relaxed);
        r
    })
}

#[test]
fn goal_passes_at_once_without_readers() {
    for mode in [Mode::Default, Mode::Lazy, Mode::Deferred] {
        let d = Domain::new(mode);
        let g = d.advance();
        d.wait(g);
        assert!(d.poll(g), "{mode:?}");
        // Now cached: a second poll of the same goal needs no scan.
        let scans = d.stats().scans;
        assert!(d.poll(g));
        assert_eq!(d.stats().scans, scans, "{mode:?}: passed goal rescanned");
    }
}

#[test]
fn open_reader_holds_back_later_goals_and_is_named_as_blocker() {
    for mode in [Mode::Default, Mode::Lazy, Mode::Deferred] {
        let d = Domain::new(mode);
        let goal = with_open_section(&d, |_| {
            let goal = d.advance();
            assert!(!d.wait_timeout(goal, Duration::from_millis(20)), "{mode:?}");
            assert!(!d.poll(goal), "{mode:?}: poll passed an open reader");
            let blockers = d.blockers(goal);
            assert_eq!(blockers.len(), 1, "{mode:?}");
            assert_eq!(blockers[0].thread, "stalled-reader");
            std::thread::sleep(Duration::from_millis(5));
            let again = d.blockers(goal);
            assert!(again[0].open_for >= Duration::from_millis(5), "{again:?}");
            assert_eq!(d.open_sections().len(), 1);
            goal
        });
        d.wait(goal);
        assert!(d.poll(goal));
        assert!(d.blockers(goal).is_empty());
    }
}

#[test]
fn section_entered_after_the_goal_does_not_hold_it_back() {
    let d = Domain::new(Mode::Default);
    let goal = d.advance();
    with_open_section(&d, |_| {
        assert!(d.wait_timeout(goal, Duration::from_secs(5)));
    });
}

#[test]
fn nested_sections_keep_the_outer_sequence_until_the_last_exit() {
    let d = Domain::new(Mode::Default);
    let outer = d.enter();
    let seq = outer.seq();
    let goal = d.advance();
    let inner = d.enter();
    assert_eq!(inner.seq(), seq, "nested enter must not republish");
    // Out-of-order drop: the inner guard alone still protects.
    drop(outer);
    assert!(d.in_section());
    std::thread::scope(|s| {
        s.spawn(|| assert!(!d.poll(goal), "goal passed while a nested section was open"));
    });
    drop(inner);
    assert!(!d.in_section());
    d.wait(goal);
}

#[test]
#[should_panic(expected = "would never return")]
fn wait_inside_own_blocking_section_panics_instead_of_hanging() {
    let d = Domain::new(Mode::Default);
    let _s = d.enter();
    let g = d.advance();
    d.wait(g);
}

#[test]
fn wait_timeout_inside_own_blocking_section_returns_false_at_once() {
    let d = Domain::new(Mode::Default);
    let _s = d.enter();
    let g = d.advance();
    let t = Instant::now();
    assert!(!d.wait_timeout(g, Duration::from_secs(10)));
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[test]
fn deferred_goals_wait_for_a_real_advance_and_wait_forces_one() {
    let mut c = Config::new(Mode::Deferred);
    c.deferred_limit = 4;
    let d = Domain::with_config(c);
    let w0 = d.stats().write_seq;
    let g = d.advance();
    assert_eq!(
        d.stats().write_seq,
        w0,
        "a deferred advance touched the shared line"
    );
    assert!(!d.poll(g), "a future goal passed without an advance");
    // Three more advances on this thread: the fourth bumps for real.
    for _ in 0..3 {
        d.advance();
    }
    assert_ne!(d.stats().write_seq, w0);
    assert!(d.poll(g));
    // And a blocking wait forces the bump itself.
    let g2 = d.advance();
    d.wait(g2);
    assert!(d.poll(g2));
}

#[test]
fn lazy_polls_share_one_membarrier_per_interval() {
    let mut c = Config::new(Mode::Lazy);
    c.lazy_interval = Duration::from_millis(50);
    let d = Domain::with_config(c);
    if d.fallback_reason().is_some() {
        eprintln!("membarrier unavailable here: {:?}", d.fallback_reason());
        return;
    }
    // Many goals, polled in a tight loop for ~100 ms: at most a few barriers.
    let t = Instant::now();
    let mut goals = Vec::new();
    while t.elapsed() < Duration::from_millis(100) {
        goals.push(d.advance());
        d.poll(*goals.last().unwrap());
    }
    let st = d.stats();
    assert!(
        st.membarriers <= 4,
        "{} barriers for {} goals",
        st.membarriers,
        goals.len()
    );
    assert!(goals.len() > 100);
    // Blocking waits do not wait for the interval.
    let g = d.advance();
    let t = Instant::now();
    d.wait(g);
    assert!(t.elapsed() < Duration::from_millis(40));
    for g in goals {
        assert!(d.poll(g));
    }
}

#[test]
fn wrap_test_sequence_crosses_zero_and_catches_up_with_a_slow_reader() {
    let d = Domain::with_config(Config::new(Mode::Default).wrap_test());
    let start = d.stats().write_seq;
    let t = Instant::now();
    with_open_section(&d, |release| {
        // The reader lets go after 50 ms from another thread; advances past
        // the window must block on it (the forced catch-up), not run ahead.
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                release.store(true, Relaxed);
            });
            for _ in 0..100 {
                d.advance();
            }
        });
    });
    let st = d.stats();
    assert!(st.catchups > 0, "the window never forced a catch-up");
    assert!(t.elapsed() >= Duration::from_millis(45));
    assert!(st.write_seq < start, "the write sequence did not wrap");
    d.synchronize();
}

#[test]
fn advance_inside_own_section_skips_the_catch_up_instead_of_deadlocking() {
    let d = Domain::with_config(Config::new(Mode::Default).wrap_test());
    let s = d.enter();
    for _ in 0..100 {
        d.advance();
    }
    drop(s);
    assert!(d.stats().catchups > 0);
    d.synchronize();
}

#[test]
fn exited_threads_give_their_slots_back() {
    let d = Domain::new(Mode::Default);
    for _ in 0..50 {
        std::thread::scope(|s| {
            s.spawn(|| drop(d.enter()));
        });
    }
    assert!(
        d.stats().slots <= 2,
        "{} slots for one live thread at a time",
        d.stats().slots
    );
}

#[test]
fn stats_count_what_happened() {
    let d = Domain::new(Mode::Default);
    for _ in 0..10 {
        let g = d.advance();
        d.poll(g);
    }
    d.synchronize();
    let st = d.stats();
    assert_eq!(st.advances, 11);
    assert!(st.polls >= 11);
    assert!(st.waits >= 1);
    assert_eq!(st.lag, 0);
    assert_eq!(st.write_seq, st.read_seq);
}

#[test]
fn pserialize_perform_waits_for_open_readers_only() {
    for variant in [Variant::Naive, Variant::Coalesced] {
        let p = Pserialize::new(variant);
        let release = AtomicBool::new(false);
        let entered = Barrier::new(2);
        std::thread::scope(|s| {
            s.spawn(|| {
                let _r = p.read_enter();
                entered.wait();
                std::thread::sleep(Duration::from_millis(50));
                release.store(true, Relaxed);
            });
            entered.wait();
            p.perform();
            assert!(
                release.load(Relaxed),
                "{variant:?}: perform returned before the reader left"
            );
        });
        // No readers: returns promptly.
        let t = Instant::now();
        p.perform();
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}

#[test]
fn pserialize_coalesced_callers_share_grace_periods() {
    let p = Pserialize::new(Variant::Coalesced);
    let entered = Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            let _r = p.read_enter();
            entered.wait();
            std::thread::sleep(Duration::from_millis(50));
        });
        entered.wait();
        for _ in 0..8 {
            s.spawn(|| p.perform());
        }
    });
    let st = p.stats();
    assert_eq!(st.callers_served, 8);
    assert!(st.grace_periods < 8, "{st:?}: no coalescing");
}

#[test]
#[should_panic(expected = "inside a read section")]
fn pserialize_perform_inside_a_section_panics_instead_of_hanging() {
    let p = Pserialize::new(Variant::Naive);
    let _r = p.read_enter();
    p.perform();
}
