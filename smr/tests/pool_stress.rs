//! Stress: reader threads traverse a table whose nodes come from the pool
//! while writer threads replace and retire nodes at full speed. A reader
//! that ever meets a node that has passed its grace period (poisoned header,
//! poisoned fields, torn fields) or that was reused under it (generation
//! jumped by more than the one retire) is a reclamation bug.
//!
//! `cargo test -p smr --release --test pool_stress` (about a second per
//! mode; `SMR_STRESS_MS` sets the duration).
#![cfg(not(loom))]

use smr::{
    Config, Domain, Mode, PoolCache, PoolConfig, PoolStats, Protection, Pserialize, Variant,
};
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64};
use std::time::Duration;

const SLOTS: usize = 64;
const READERS: usize = 2;
const WRITERS: usize = 2;
const POISON: u64 = 0x5050_5050_5050_5050;
/// How much longer than the planned run a stress may go on waiting for its
/// first reuse.
const REUSE_WAIT: Duration = Duration::from_secs(20);

struct Node {
    key: AtomicU64,
    /// Always `!key` while the node is published.
    check: AtomicU64,
}

fn new_node() -> Node {
    Node {
        key: AtomicU64::new(0),
        check: AtomicU64::new(!0),
    }
}

fn poison(n: &Node) {
    n.key.store(POISON, Relaxed);
    n.check.store(POISON, Relaxed);
}

fn duration() -> Duration {
    let ms = std::env::var("SMR_STRESS_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(800);
    Duration::from_millis(ms)
}

enum Reader {
    Smr(Arc<Domain>),
    Ps(Arc<Pserialize>),
}

#[derive(Default, Debug)]
struct Outcome {
    reads: u64,
    poison_hits: u64,
    reuse_hits: u64,
}

fn read_pass(pool: &PoolCache<Node>, table: &[AtomicPtr<Node>], out: &mut Outcome) {
    for slot in table {
        // Acquire: pairs with the writer's publishing swap.
        let Some(p) = NonNull::new(slot.load(Acquire)) else {
            continue;
        };
        // SAFETY: loaded inside a read section of the pool's domain, before
        // any retire of `p` that this section could miss.
        let g1 = unsafe { pool.generation(p) };
        // SAFETY: as above; the pool never hands out `&mut Node`.
        let n = unsafe { p.as_ref() };
        let key = n.key.load(Relaxed);
        let check = n.check.load(Relaxed);
        // SAFETY: as above.
        let poisoned = unsafe { pool.is_poisoned(p) };
        // SAFETY: as above.
        let g2 = unsafe { pool.generation(p) };
        out.reads += 1;
        if poisoned || key == POISON || check != !key {
            out.poison_hits += 1;
        }
        if g2.wrapping_sub(g1) > 1 {
            out.reuse_hits += 1;
        }
    }
}

fn stress(protection: Protection, reader: Reader) -> (Outcome, PoolStats) {
    let cfg = PoolConfig {
        max_objects: 1 << 16,
        ..PoolConfig::default()
    };
    let pool = PoolCache::with_poison_hook(protection, cfg, new_node, poison);
    let table: Vec<AtomicPtr<Node>> = (0..SLOTS)
        .map(|_| AtomicPtr::new(ptr::null_mut()))
        .collect();
    let stop = AtomicBool::new(false);
    let total = std::thread::scope(|s| {
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Outcome::default();
                    // Relaxed: a stop flag, nothing is published through it.
                    while !stop.load(Relaxed) {
                        match &reader {
                            Reader::Smr(d) => {
                                let _g = d.enter();
                                read_pass(&pool, &table, &mut out);
                            }
                            Reader::Ps(p) => {
                                let _g = p.read_enter();
                                read_pass(&pool, &table, &mut out);
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        for w in 0..WRITERS {
            let (pool, table, stop) = (&pool, &table, &stop);
            s.spawn(move || {
                let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ w as u64;
                while !stop.load(Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let Ok(p) = pool.alloc_raw() else {
                        std::thread::yield_now();
                        continue;
                    };
                    // SAFETY: we own `p`.
                    let n = unsafe { p.as_ref() };
                    let key = x >> 1;
                    n.key.store(key, Relaxed);
                    n.check.store(!key, Relaxed);
                    // AcqRel: Release publishes the fields; Acquire makes the
                    // previous owner's writes to `old` happen before our retire.
                    let old = table[(x as usize) % SLOTS].swap(p.as_ptr(), AcqRel);
                    if let Some(old) = NonNull::new(old) {
                        // SAFETY: unlinked by the swap; only readers that
                        // loaded it before are still looking at it.
                        unsafe { pool.retire_raw(old) };
                    }
                }
            });
        }
        std::thread::sleep(duration());
        // The test means something only once memory was reused; on a loaded
        // machine (or in lazy mode, whose read hand moves with the clock)
        // that can take longer than the planned run, so go on until it has
        // happened, within a bound (the check below fails past it).
        let deadline = std::time::Instant::now() + REUSE_WAIT;
        while std::time::Instant::now() < deadline {
            let st = pool.stats();
            if st.allocated < st.allocs {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Relaxed);
        readers
            .into_iter()
            .map(|r| r.join().unwrap())
            .fold(Outcome::default(), |a, b| Outcome {
                reads: a.reads + b.reads,
                poison_hits: a.poison_hits + b.poison_hits,
                reuse_hits: a.reuse_hits + b.reuse_hits,
            })
    });
    for slot in &table {
        if let Some(p) = NonNull::new(slot.swap(ptr::null_mut(), AcqRel)) {
            // SAFETY: unlinked; every reader has exited.
            unsafe { pool.retire_raw(p) };
        }
    }
    pool.barrier();
    (total, pool.stats())
}

fn check(name: &str, (out, s): (Outcome, PoolStats)) {
    println!(
        "{name}: {} reads, {} allocs, {} objects allocated, {:.1} frees/advance, peak pending {}, p50 reuse <= {:?} ns",
        out.reads,
        s.allocs,
        s.allocated,
        s.frees_per_advance,
        s.peak_pending,
        s.latency_quantile_ns(0.5)
    );
    println!(
        "{name}: polls {} sync waits {} ({} timed out) exhausted {} advances {}",
        s.polls, s.sync_waits, s.sync_wait_failures, s.exhausted, s.advances
    );
    assert_eq!(
        out.poison_hits, 0,
        "{name}: readers met reclaimed memory: {out:?}"
    );
    assert_eq!(
        out.reuse_hits, 0,
        "{name}: readers met reused memory: {out:?}"
    );
    assert!(
        out.reads > 0 && s.allocs > 1000,
        "{name}: the stress did not run: {out:?} {s:?}"
    );
    assert!(
        s.allocated < s.allocs,
        "{name}: memory was never reused, so reuse was not tested: {s:?}"
    );
    assert_eq!((s.live, s.pending), (0, 0), "{name}: {s:?}");
    assert_eq!(s.live + s.cached + s.pending, s.allocated, "{name}: {s:?}");
}

fn smr(config: Config) -> (Protection, Reader) {
    let d = Arc::new(Domain::with_config(config));
    (Protection::Smr(d.clone()), Reader::Smr(d))
}

fn run_smr(name: &str, config: Config) {
    let (p, r) = smr(config);
    check(name, stress(p, r));
}

#[test]
fn readers_never_meet_reclaimed_nodes_smr_default() {
    run_smr("smr", Config::new(Mode::Default));
}

#[test]
fn readers_never_meet_reclaimed_nodes_smr_lazy() {
    run_smr("smr-lazy", Config::new(Mode::Lazy));
}

#[test]
fn readers_never_meet_reclaimed_nodes_smr_deferred() {
    run_smr("smr-deferred", Config::new(Mode::Deferred));
}

#[test]
fn readers_never_meet_reclaimed_nodes_across_the_sequence_wrap_default() {
    run_smr("smr wrap", Config::new(Mode::Default).wrap_test());
}

#[test]
fn readers_never_meet_reclaimed_nodes_across_the_sequence_wrap_lazy() {
    run_smr("smr-lazy wrap", Config::new(Mode::Lazy).wrap_test());
}

#[test]
fn readers_never_meet_reclaimed_nodes_across_the_sequence_wrap_deferred() {
    run_smr("smr-deferred wrap", Config::new(Mode::Deferred).wrap_test());
}

#[test]
fn readers_never_meet_reclaimed_nodes_pserialize() {
    let ps = Arc::new(Pserialize::new(Variant::Coalesced));
    check(
        "pserialize",
        stress(Protection::Pserialize(ps.clone()), Reader::Ps(ps)),
    );
}

#[test]
fn wrap_test_stress_crosses_the_wrap_point() {
    // The wrap tests above are only meaningful if the write sequence really
    // goes around: with the wrap-test space that takes 40 advances.
    let (p, r) = smr(Config::new(Mode::Default).wrap_test());
    let Protection::Smr(d) = &p else {
        unreachable!()
    };
    let d = d.clone();
    let (out, s) = stress(p, r);
    assert!(s.advances > 40, "{s:?}");
    let ds = d.stats();
    // The space starts 40 increments below the wrap point, so more than 40
    // advances (plus forced increments) carried the write sequence across.
    assert!(ds.advances > 40, "{ds:?}");
    assert_eq!(out.poison_hits + out.reuse_hits, 0);
}
