//! Model-checked: lookups racing each step of an online resize (start, copy,
//! swap, retire), and writers racing the copy.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target-loom cargo test -p pcb --release --test loom_resize`
//!
//! Every model uses a table with one lock stripe, so the copy is one step
//! and every PCB shares one chain per array; resizes are forced
//! (`auto_resize` off) and stepped by the writer thread, so the race points
//! are the resize's own. A bucket array's mask lives in a
//! `loom::cell::UnsafeCell` that the array's free writes once more: if the
//! resizer freed an array a reader could still be walking (its grace period
//! ended too early), loom reports the race. The reader asserts that it finds
//! every entry present for its whole section, whichever array it walks.
//!
//! Each model runs once per domain mode, as in `loom.rs`.
#![cfg(loom)]

use pcb::{FlowHash, FourTuple, ResizeStep, Table, TableConfig};
use smr::{Domain, Mode, PoolConfig};
use std::sync::Arc;
use std::time::Duration;

fn t(n: u8) -> FourTuple {
    FourTuple::v4([10, 0, 0, 1], 80, [192, 0, 2, n], 1000)
}

fn table(mode: Mode, buckets: usize) -> Arc<Table<u8>> {
    let cfg = TableConfig {
        expected: buckets,
        pool: PoolConfig {
            magazine_size: 1,
            chunk_objects: 1,
            max_objects: 4,
            expedite_timeout: Duration::ZERO,
            expedite_backoff: Duration::ZERO,
            latency_sample_every: 1 << 30,
        },
        hash: Some(FlowHash::with_seed(1)),
        auto_resize: false,
        min_buckets: Some(1),
        stripes: 1,
        layout: pcb::Layout::Summary,
    };
    let mut dc = smr::Config::new(mode);
    dc.lazy_interval = Duration::ZERO;
    Arc::new(Table::with_config(Arc::new(Domain::with_config(dc)), cfg))
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(f);
}

/// Resize to `buckets` and step it through the copy and the swap, then
/// poll a bounded number of times for the old array's grace period (a
/// reader may hold it back past the model's end: the table's drop frees it).
fn resize(table: &Table<u8>, buckets: usize) {
    assert!(table.resize_to(buckets));
    assert_eq!(table.resize_step(), ResizeStep::Copied(0));
    loom::thread::yield_now();
    assert_eq!(table.resize_step(), ResizeStep::Swapped);
    for _ in 0..2 {
        loom::thread::yield_now();
        if table.resize_step() == ResizeStep::Finished {
            return;
        }
    }
}

/// A reader's section looks up A, then B, with a resize from `from` to `to`
/// buckets racing it: both were present throughout, so both are found.
fn reader_finds_both_across_a_resize(mode: Mode, from: usize, to: usize) {
    model(move || {
        let table = table(mode, from);
        table.insert(&t(1), 1).unwrap();
        table.insert(&t(2), 2).unwrap();
        let reader = {
            let table = table.clone();
            loom::thread::spawn(move || {
                let section = table.domain().enter();
                let a = table
                    .lookup(&section, &t(1))
                    .expect("A was present throughout");
                assert_eq!(a.tuple(), t(1));
                loom::thread::yield_now();
                let b = table
                    .lookup(&section, &t(2))
                    .expect("B was present throughout");
                assert_eq!(b.tuple(), t(2));
            })
        };
        resize(&table, to);
        reader.join().unwrap();
        assert_eq!(table.buckets(), to);
        assert!(table.contains(&t(1)) && table.contains(&t(2)));
    });
}

fn lookup_racing_a_grow_finds_every_present_key(mode: Mode) {
    reader_finds_both_across_a_resize(mode, 1, 2);
}

fn lookup_racing_a_shrink_finds_every_present_key(mode: Mode) {
    reader_finds_both_across_a_resize(mode, 2, 1);
}

/// Two sections in a row on one reader thread, while the writer swaps and
/// then retires the old array: the second section must not be held back
/// by, nor read, the freed array. The scan may see only the second
/// section's published sequence, so this model needs the enter's publishing
/// store to be a Release store (see `smr`'s `publish_fenced`); with it
/// Relaxed, loom reports the first section's read of the old array's mask
/// as racing the free in the lazy mode (in the fenced modes the table's own
/// synchronisation happens to order it here; `smr`'s `loom.rs` has the
/// domain-level model, which catches it in the default mode too).
fn lookup_after_the_swap_never_reads_the_retired_array(mode: Mode) {
    model(move || {
        let table = table(mode, 1);
        table.insert(&t(1), 1).unwrap();
        let reader = {
            let table = table.clone();
            loom::thread::spawn(move || {
                for _ in 0..2 {
                    let section = table.domain().enter();
                    assert!(table.lookup(&section, &t(1)).is_some(), "A was present");
                    drop(section);
                    loom::thread::yield_now();
                }
            })
        };
        resize(&table, 2);
        reader.join().unwrap();
    });
}

/// An insert, or a remove, races the copy and the swap: afterwards the new
/// array holds exactly what is present. The resize runs on a spawned thread
/// and the insert or remove on the model's main thread (the pool's retire
/// keeps per-thread state that a spawned loom thread does not reset
/// between executions).
fn writer_racing_the_copy_leaves_the_new_array_complete(mode: Mode, insert: bool) {
    model(move || {
        let table = table(mode, 1);
        table.insert(&t(1), 1).unwrap();
        table.insert(&t(2), 2).unwrap();
        let resizer = {
            let table = table.clone();
            loom::thread::spawn(move || resize(&table, 2))
        };
        if insert {
            table.insert(&t(3), 3).unwrap();
        } else {
            assert_eq!(table.remove(&t(1)), Some(1));
        }
        resizer.join().unwrap();
        assert_eq!(table.buckets(), 2);
        assert_eq!(table.contains(&t(1)), insert);
        assert!(table.contains(&t(2)));
        assert_eq!(table.contains(&t(3)), insert);
        assert_eq!(table.chain_stats().entries, table.len());
        assert_eq!(table.len(), if insert { 3 } else { 1 });
    });
}

fn insert_racing_the_copy_lands_in_the_new_array(mode: Mode) {
    writer_racing_the_copy_leaves_the_new_array_complete(mode, true);
}

fn remove_racing_the_copy_leaves_the_new_array(mode: Mode) {
    writer_racing_the_copy_leaves_the_new_array_complete(mode, false);
}

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
    lookup_racing_a_grow_finds_every_present_key,
    lookup_racing_a_shrink_finds_every_present_key,
    insert_racing_the_copy_lands_in_the_new_array,
    remove_racing_the_copy_leaves_the_new_array,
    lookup_after_the_swap_never_reads_the_retired_array,
);
