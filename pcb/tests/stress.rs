//! Real threads: lookups under insert/remove churn on a 100k-entry table,
//! with the pool poisoning PCBs that pass their grace period.
//!
//! Bounded: ~2 s in release (`cargo test -p pcb --release --test stress`),
//! a smaller, shorter run in debug builds.
#![cfg(not(loom))]

use pcb::{FourTuple, Table};
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
