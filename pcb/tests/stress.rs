//! Real threads: lookups under insert/remove churn on a 100k-entry table,
//! with the pool poisoning PCBs that pass their grace period.
//!
//! The second test does the same while a thread resizes the table without
//! pause, between 256 and 2^19 buckets (retired bucket arrays are poisoned
//! too).
//!
//! Bounded: ~2 s each in release (`cargo test -p pcb --release --test stress`),
//! a smaller, shorter run in debug builds.
#![cfg(not(loom))]

use pcb::{FourTuple, Table, TableConfig};
use smr::{Domain, Mode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[cfg(debug_assertions)]
const STABLE: u32 = 10_000;
#[cfg(not(debug_assertions))]
const STABLE: u32 = 100_000;
#[cfg(debug_assertions)]
const RUN: Duration = Duration::from_millis(300);
#[cfg(not(debug_assertions))]
const RUN: Duration = Duration::from_secs(2);
/// Keys the churners cycle through (never among the stable ones).
const CHURN_KEYS: u32 = 4096;

fn tuple(i: u32) -> FourTuple {
    let [a, b, c, d] = i.to_be_bytes();
    FourTuple::v4([10, a, 0, 1], 80, [192, b, c, d], 1024 + (i % 7) as u16)
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[test]
fn lookups_under_churn_find_every_stable_key_and_never_a_recycled_pcb() {
    let table: Table<u32> = Table::new(Arc::new(Domain::new(Mode::Default)), STABLE as usize);
    for i in 0..STABLE {
        table.insert(&tuple(i), i).unwrap();
    }
    let stop = AtomicBool::new(false);
    let (lookups, churns, churn_hits) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for r in 0..2u64 {
            let (table, stop, lookups, churn_hits) = (&table, &stop, &lookups, &churn_hits);
            s.spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15 ^ r;
                let (mut n, mut hits) = (0u64, 0u64);
                while !stop.load(Relaxed) {
                    for _ in 0..256 {
                        let x = xorshift(&mut rng);
                        let i = (x % u64::from(STABLE)) as u32;
                        let section = table.domain().enter();
                        let hit = table.lookup(&section, &tuple(i));
                        let hit = hit.unwrap_or_else(|| panic!("stable key {i} not found"));
                        assert_eq!(hit.tuple(), tuple(i));
                        if x & 7 == 0 {
                            let g = hit.lock().expect("a stable key is never removed");
                            assert_eq!(*g, i);
                        }
                        // A churning key: present or not, but never another's.
                        let c = STABLE + (x >> 32) as u32 % CHURN_KEYS;
                        if let Some(h) = table.lookup(&section, &tuple(c)) {
                            assert_eq!(h.tuple(), tuple(c));
                            if let Some(g) = h.lock() {
                                assert_eq!(*g, c, "locked a PCB that is another connection");
                                hits += 1;
                            }
                        }
                        n += 1;
                    }
                }
                lookups.fetch_add(n, Relaxed);
                churn_hits.fetch_add(hits, Relaxed);
            });
        }
        {
            let (table, stop, churns) = (&table, &stop, &churns);
            s.spawn(move || {
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    for k in 0..CHURN_KEYS {
                        let c = STABLE + k;
                        table.insert(&tuple(c), c).unwrap();
                        if k >= 64 {
                            let old = STABLE + k - 64;
                            assert_eq!(table.remove(&tuple(old)), Some(old));
                        }
                        n += 1;
                    }
                    for k in CHURN_KEYS - 64..CHURN_KEYS {
                        assert_eq!(table.remove(&tuple(STABLE + k)), Some(STABLE + k));
                    }
                }
                churns.fetch_add(n, Relaxed);
            });
        }
        std::thread::sleep(RUN);
        stop.store(true, Relaxed);
    });
    assert!(t0.elapsed() < RUN * 10, "the run overstayed its bound");
    assert_eq!(
        table.poison_hits(),
        0,
        "a lookup walked over a reclaimed PCB"
    );
    assert_eq!(table.len(), STABLE as usize);
    let pool = table.pool_stats();
    println!(
        "lookups {} churn inserts {} churn hits locked {} pool {:?}",
        lookups.load(Relaxed),
        churns.load(Relaxed),
        churn_hits.load(Relaxed),
        pool
    );
    assert!(churns.load(Relaxed) > 1000 && lookups.load(Relaxed) > 1000);
}

#[cfg(debug_assertions)]
const RESIZE_STABLE: u32 = 5_000;
#[cfg(not(debug_assertions))]
const RESIZE_STABLE: u32 = 50_000;

/// Drive one resize to `buckets` to completion (bounded in steps and time).
fn resize_fully(table: &Table<u32>, buckets: usize, stop: &AtomicBool) -> bool {
    if !table.resize_to(buckets) {
        return false;
    }
    let t0 = Instant::now();
    loop {
        match table.resize_step() {
            pcb::ResizeStep::Finished => return true,
            pcb::ResizeStep::Waiting | pcb::ResizeStep::Busy => std::thread::yield_now(),
            _ => {}
        }
        // A stuck grace period would be a bug elsewhere; don't spin forever.
        assert!(t0.elapsed() < RUN * 5, "a resize did not finish");
        if stop.load(Relaxed) && t0.elapsed() > RUN {
            return false;
        }
    }
}

#[test]
fn lookups_during_continuous_grow_and_shrink_never_miss_a_present_key() {
    let mut cfg = TableConfig::new(RESIZE_STABLE as usize);
    // Forced resizes only, so the test decides the sizes (the writers'
    // own steps still run the resizes it starts: auto_resize off only stops
    // them starting one).
    cfg.auto_resize = false;
    let table: Table<u32> = Table::with_config(Arc::new(Domain::new(Mode::Default)), cfg);
    for i in 0..RESIZE_STABLE {
        table.insert(&tuple(i), i).unwrap();
    }
    let stop = AtomicBool::new(false);
    let (lookups, churns, resizes) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for r in 0..2u64 {
            let (table, stop, lookups) = (&table, &stop, &lookups);
            s.spawn(move || {
                let mut rng = 0x2545_f491_4f6c_dd1d ^ r;
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    for _ in 0..256 {
                        let x = xorshift(&mut rng);
                        let i = (x % u64::from(RESIZE_STABLE)) as u32;
                        let section = table.domain().enter();
                        let hit = table
                            .lookup(&section, &tuple(i))
                            .unwrap_or_else(|| panic!("stable key {i} not found"));
                        assert_eq!(hit.tuple(), tuple(i));
                        if x & 15 == 0 {
                            assert_eq!(*hit.lock().expect("stable keys stay"), i);
                        }
                        n += 1;
                    }
                }
                lookups.fetch_add(n, Relaxed);
            });
        }
        {
            let (table, stop, churns) = (&table, &stop, &churns);
            s.spawn(move || {
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    for k in 0..CHURN_KEYS {
                        let c = RESIZE_STABLE + k;
                        table.insert(&tuple(c), c).unwrap();
                        if k >= 64 {
                            let old = c - 64;
                            assert_eq!(table.remove(&tuple(old)), Some(old));
                        }
                        n += 1;
                    }
                    for k in CHURN_KEYS - 64..CHURN_KEYS {
                        let c = RESIZE_STABLE + k;
                        assert_eq!(table.remove(&tuple(c)), Some(c));
                    }
                }
                churns.fetch_add(n, Relaxed);
            });
        }
        {
            let (table, stop, resizes) = (&table, &stop, &resizes);
            s.spawn(move || {
                // Between a table at load ~16 and one at load ~1/8.
                let sizes = [1 << 12, 1 << 19, 1 << 8, 1 << 16];
                let mut k = 0;
                while !stop.load(Relaxed) {
                    if resize_fully(table, sizes[k % sizes.len()], stop) {
                        resizes.fetch_add(1, Relaxed);
                    }
                    k += 1;
                }
            });
        }
        std::thread::sleep(RUN);
        stop.store(true, Relaxed);
    });
    assert!(t0.elapsed() < RUN * 10, "the run overstayed its bound");
    assert_eq!(
        table.poison_hits(),
        0,
        "a lookup walked over a reclaimed PCB or a retired bucket array"
    );
    assert_eq!(table.len(), RESIZE_STABLE as usize);
    assert_eq!(table.chain_stats().entries, RESIZE_STABLE as usize);
    let stats = table.resize_stats();
    println!(
        "lookups {} churn inserts {} resizes {} {:?}",
        lookups.load(Relaxed),
        churns.load(Relaxed),
        resizes.load(Relaxed),
        stats
    );
    assert!(
        resizes.load(Relaxed) >= 4,
        "too few resizes to mean anything"
    );
    assert_eq!(stats.grows + stats.shrinks, resizes.load(Relaxed));
    assert!(churns.load(Relaxed) > 1000 && lookups.load(Relaxed) > 1000);
}
