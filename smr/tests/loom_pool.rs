//! Model-checked: an object retired while a reader may hold it is not handed
//! out again by `alloc` until that reader has left, in every protection mode
//! that claims it; and `Immediate` (the negative control) does hand it out.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target-loom cargo test -p smr --release --test loom_pool`
//!
//! The model: one writer (the model's main thread) allocates node A, writes
//! 1 into it and publishes it; a reader enters a section, loads the pointer
//! and reads the node. The writer unlinks A, retires it (magazine size 1, so
//! the batch closes at once) and allocates again with a cap of one object, so
//! the only way `alloc` can succeed is by reusing A; on reuse the poison hook
//! and the new owner overwrite the value. The reader asserts it only ever
//! sees 1 and never a poisoned header.
#![cfg(loom)]

use loom::sync::atomic::{AtomicPtr, AtomicU64};
use smr::{Config, Domain, Mode, PoolCache, PoolConfig, Protection, Pserialize, Variant};
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::Duration;

struct Node {
    val: AtomicU64,
}

const POISON: u64 = 0xdead;

fn poison(n: &Node) {
    n.val.store(POISON, Relaxed);
}

fn tiny() -> PoolConfig {
    PoolConfig {
        magazine_size: 1,
        chunk_objects: 1,
        max_objects: 1,
        // Zero: one poll and no clock-dependent looping, so every execution
        // is deterministic for the model checker.
        expedite_timeout: Duration::ZERO,
        expedite_backoff: Duration::ZERO,
        latency_sample_every: 1 << 30,
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Smr(Mode),
    Pserialize,
    Immediate,
}

/// Runs the model; returns whether any execution let the reader see a reused
/// or poisoned object. With `must_be_safe`, such an execution panics at once
/// (with the failing schedule); the negative control collects instead,
/// because a panic on a loom thread under `should_panic` aborts the process
/// while loom unwinds.
fn model(kind: Kind, must_be_safe: bool) -> bool {
    let saw = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let saw_outer = saw.clone();
    // Executions, and those in which the writer's alloc reused the object
    // (so the model does exercise reuse, not only exhaustion).
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (runs_outer, reused_outer) = (runs.clone(), reused.clone());
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(move || {
        let (protection, domain, ps) = match kind {
            Kind::Smr(mode) => {
                let mut cfg = Config::new(mode);
                cfg.lazy_interval = Duration::ZERO;
                cfg.deferred_limit = 2;
                let d = Arc::new(Domain::with_config(cfg));
                (Protection::Smr(d.clone()), Some(d), None)
            }
            Kind::Pserialize => {
                let p = Arc::new(Pserialize::new(Variant::Naive));
                (Protection::Pserialize(p.clone()), None, Some(p))
            }
            Kind::Immediate => (
                Protection::Immediate,
                Some(Arc::new(Domain::new(Mode::Default))),
                None,
            ),
        };
        let pool = Arc::new(PoolCache::with_poison_hook(
            protection,
            tiny(),
            || Node {
                val: AtomicU64::new(0),
            },
            poison,
        ));
        let head = Arc::new(AtomicPtr::<Node>::new(ptr::null_mut()));

        let a = pool.alloc_raw().expect("first alloc grows the only chunk");
        // SAFETY: we own `a`; the pool never hands out `&mut`.
        unsafe { a.as_ref() }.val.store(1, Relaxed);
        // Release: pairs with the reader's Acquire load.
        head.store(a.as_ptr(), Release);

        let reader = {
            let (pool, head, saw) = (pool.clone(), head.clone(), saw.clone());
            loom::thread::spawn(move || {
                let _smr = domain.as_ref().map(|d| d.enter());
                let _ps = ps.as_ref().map(|p| p.read_enter());
                let p = head.load(Acquire);
                if let Some(p) = NonNull::new(p) {
                    // SAFETY: loaded inside a section that began before the
                    // writer retired it, so it is resident.
                    let v = unsafe { p.as_ref() }.val.load(Relaxed);
                    // SAFETY: as above.
                    let poisoned = unsafe { pool.is_poisoned(p) };
                    if v != 1 || poisoned {
                        assert!(
                            !must_be_safe,
                            "reader saw a reused or poisoned object (value {v}, poisoned {poisoned})"
                        );
                        // Relaxed: read after `check` returns.
                        saw.store(true, Relaxed);
                    }
                }
            })
        };

        // Unlink, retire (the batch of one closes and is stamped), reuse.
        head.store(ptr::null_mut(), Release);
        // SAFETY: unlinked above; readers that still hold it are inside a
        // section entered before the unlink.
        unsafe { pool.retire_raw(a) };
        // Relaxed: counters read after `check` returns.
        runs.fetch_add(1, Relaxed);
        if let Ok(b) = pool.alloc_raw() {
            reused.fetch_add(1, Relaxed);
            assert_eq!(b, a, "the cap is one object");
            // SAFETY: we own `b`.
            unsafe { b.as_ref() }.val.store(2, Relaxed);
        }
        reader.join().unwrap();
    });
    let (runs, reused) = (runs_outer.load(Relaxed), reused_outer.load(Relaxed));
    println!("{runs} executions, {reused} reused the object");
    assert!(
        reused > 0,
        "no execution reused the object: the model is vacuous"
    );
    if matches!(kind, Kind::Smr(_)) {
        // SMR never blocks alloc, so some schedules must find the reader
        // still inside and refuse.
        assert!(
            reused < runs,
            "every execution reused: the reader never held it"
        );
    }
    saw_outer.load(Relaxed)
}

#[test]
fn smr_default_never_reuses_under_a_reader() {
    assert!(!model(Kind::Smr(Mode::Default), true));
}

#[test]
fn smr_lazy_never_reuses_under_a_reader() {
    assert!(!model(Kind::Smr(Mode::Lazy), true));
}

#[test]
fn smr_deferred_never_reuses_under_a_reader() {
    assert!(!model(Kind::Smr(Mode::Deferred), true));
}

#[test]
fn pserialize_never_reuses_under_a_reader() {
    assert!(!model(Kind::Pserialize, true));
}

/// Negative control: without protection the same model must find an
/// execution where the reader meets the reused object, or it could not see
/// the bug it is meant to catch.
#[test]
fn immediate_reuses_under_a_reader() {
    assert!(
        model(Kind::Immediate, false),
        "the model never caught immediate reuse: it cannot see the bug"
    );
}
