//! Model-checked: lookups racing inserts and removes in the same bucket.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target-loom cargo test -p pcb --release --test loom`
//!
//! Every model uses a one-bucket table, so every PCB shares one chain, and a
//! pool with one-object magazines and chunks and a tight cap, so a removed
//! PCB is reused by the very next insert whenever its grace period allows.
//! The PCB's tuple lives in a `loom::cell::UnsafeCell`: if a reader could
//! read a PCB while the pool handed it to a new connection (whose insert
//! rewrites the tuple), loom reports the race. The reader asserts that it
//! finds every entry present for its whole section, that what it finds
//! carries the tuple it asked for, and that `lock` either fails or yields
//! that very connection.
//!
//! Each model runs once per domain mode (`in_every_mode!` at the end): the
//! table's correctness rests on the pool's grace periods, which each mode
//! reaches differently (a deferred goal passes only once the sequence has
//! moved on). `loom::thread::yield_now()` marks the race points — between
//! a reader's lookups, and between a writer's remove and the insert that
//! would reuse the memory — because loom's bounded search can miss an
//! interleaving it is not nudged towards.
#![cfg(loom)]

use pcb::{FlowHash, FourTuple, InsertError, Table, TableConfig};
use smr::{Domain, Mode, PoolConfig};
use std::sync::Arc;
use std::time::Duration;

fn t(n: u8) -> FourTuple {
    FourTuple::v4([10, 0, 0, 1], 80, [192, 0, 2, n], 1000)
}

fn table(mode: Mode, cap: usize) -> Arc<Table<u8>> {
    let cfg = TableConfig {
        expected: 1,
        pool: PoolConfig {
            magazine_size: 1,
            chunk_objects: 1,
            max_objects: cap,
            expedite_timeout: Duration::ZERO,
            expedite_backoff: Duration::ZERO,
            latency_sample_every: 1 << 30,
        },
        hash: Some(FlowHash::with_seed(1)),
        auto_resize: false,
        min_buckets: None,
        stripes: 1,
        layout: pcb::Layout::Summary,
    };
    // A zero lazy interval: a barrier on every poll that needs one, so the
    // lazy models do not depend on how much real time an execution takes.
    let mut dc = smr::Config::new(mode);
    dc.lazy_interval = Duration::ZERO;
    Arc::new(Table::with_config(Arc::new(Domain::with_config(dc)), cfg))
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(f);
}

/// The reader's checks for one tuple: a hit carries the tuple, and locking
/// it yields that connection (value = last octet) or nothing.
fn check_hit(table: &Table<u8>, section: &smr::ReadSection<'_>, n: u8) -> bool {
    match table.lookup(section, &t(n)) {
        None => false,
        Some(r) => {
            assert_eq!(r.tuple(), t(n));
            if let Some(g) = r.lock() {
                assert_eq!((g.tuple(), *g), (t(n), n));
            }
            true
        }
    }
}

fn lookup_racing_remove_and_reuse_never_sees_a_recycled_pcb(mode: Mode) {
    model(move || {
        // A stays; C (in front of A) is removed and its memory offered to D.
        let table = table(mode, 2);
        table.insert(&t(1), 1).unwrap();
        table.insert(&t(3), 3).unwrap();
        let reader = {
            let table = table.clone();
            loom::thread::spawn(move || {
                let section = table.domain().enter();
                check_hit(&table, &section, 3);
                loom::thread::yield_now();
                check_hit(&table, &section, 4);
                assert!(check_hit(&table, &section, 1), "A was present throughout");
            })
        };
        assert_eq!(table.remove(&t(3)), Some(3));
        loom::thread::yield_now();
        match table.insert(&t(4), 4) {
            Ok(()) | Err(InsertError::Exhausted) => {}
            Err(e) => panic!("{e}"),
        }
        reader.join().unwrap();
        assert!(table.contains(&t(1)));
    });
}

fn lookup_racing_insert_finds_old_entries_and_whole_new_ones(mode: Mode) {
    model(move || {
        let table = table(mode, 3);
        table.insert(&t(1), 1).unwrap();
        let reader = {
            let table = table.clone();
            loom::thread::spawn(move || {
                let section = table.domain().enter();
                check_hit(&table, &section, 2);
                loom::thread::yield_now();
                assert!(check_hit(&table, &section, 1), "A was present throughout");
            })
        };
        table.insert(&t(2), 2).unwrap();
        assert_eq!(table.remove(&t(2)), Some(2));
        reader.join().unwrap();
    });
}

fn locked_guard_outlives_the_section_and_blocks_removal(mode: Mode) {
    model(move || {
        let table = table(mode, 2);
        table.insert(&t(1), 1).unwrap();
        let holder = {
            let table = table.clone();
            loom::thread::spawn(move || {
                let guard = {
                    let section = table.domain().enter();
                    table.lookup(&section, &t(1)).and_then(|r| r.lock())
                };
                // The section is over; the guard still holds connection 1.
                if let Some(g) = guard {
                    assert_eq!((g.tuple(), *g), (t(1), 1));
                }
            })
        };
        assert_eq!(table.remove(&t(1)), Some(1));
        loom::thread::yield_now();
        // Reuse the memory for another connection.
        let _ = table.insert(&t(2), 2);
        holder.join().unwrap();
    });
}

/// A pin handed to another thread keeps its PCB out of the pool while the
/// owner removes the connection and inserts another: the pin's holder locks
/// it without a lookup or a section and finds connection 1 or nothing,
/// never a newcomer in its memory (the pool holds one PCB, so a newcomer
/// could only be in that memory: its insert is refused while the pin is
/// out; a reuse would rewrite the tuple and incarnation cells the lock
/// reads, and loom would report the race). The
/// pin comes back to the owner, whose `unpin` retires the dead PCB for the
/// next insert to reuse. (The holder gives nothing back to the pool itself:
/// a retire from a spawned thread is flushed by its thread-exit hook, which
/// loom cannot replay deterministically.)
fn pin_keeps_a_removed_pcb_from_reuse_until_given_back(mode: Mode) {
    model(move || {
        let table = table(mode, 1);
        table.insert(&t(1), 1).unwrap();
        let pin = table.lock(&t(1)).unwrap().pin();
        let holder = {
            let table = table.clone();
            loom::thread::spawn(move || {
                loom::thread::yield_now();
                if let Some(g) = table.lock_pinned(&pin) {
                    assert_eq!((g.tuple(), *g), (t(1), 1));
                }
                pin
            })
        };
        assert_eq!(table.remove(&t(1)), Some(1));
        loom::thread::yield_now();
        // Another connection, in a pool capped at one PCB: the pinned one
        // is not retired, so there is none to give it.
        assert_eq!(table.insert(&t(2), 2), Err(InsertError::Exhausted));
        let pin = holder.join().unwrap();
        assert!(table.unpin(pin).is_none(), "removed");
        match table.insert(&t(3), 3) {
            Ok(()) | Err(InsertError::Exhausted) => {}
            Err(e) => panic!("{e}"),
        }
    });
}

/// One `#[test]` per model and mode, named `<model>::<mode>`. Adding a mode
/// is one line per arm below; `Mode::Lazy` joins once loom models a lazy
/// reader faithfully (a compiler fence, with the membarrier where it runs):
/// until then a lazy model is the default-mode model again.
macro_rules! in_every_mode {
    ($($model:ident),* $(,)?) => {$(
        mod $model {
            #[test]
            fn default() {
                super::$model(smr::Mode::Default);
            }
            #[test]
            fn deferred() {
                super::$model(smr::Mode::Deferred);
            }
            #[test]
            fn lazy() {
                super::$model(smr::Mode::Lazy);
            }
        }
    )*};
}

in_every_mode!(
    lookup_racing_remove_and_reuse_never_sees_a_recycled_pcb,
    lookup_racing_insert_finds_old_entries_and_whole_new_ones,
    locked_guard_outlives_the_section_and_blocks_removal,
    pin_keeps_a_removed_pcb_from_reuse_until_given_back,
);
