//! Behaviour of the study's own machinery (not of the schemes' speed): runs
//! start settled, the arms report sane figures, spread frees are bounded
//! per operation.

use super::arms::arm_run;
use super::episode::churn_run;
use super::scheme::{self, Kind, SPREAD_PER_OP, Sizing};
use super::{Subjects, arm_kinds};
use crate::bench::churn::tuple;
use pcb::{FlowHash, FourTuple};
use std::time::Duration;

/// Small tables of `kinds`, filled with `entries` connections.
fn subjects(entries: u32, kinds: &[Kind]) -> Subjects {
    let hash = FlowHash::random();
    let sizing = Sizing {
        entries: entries as usize,
        pool_cap: entries as usize + 16_384,
    };
    let tuples: Vec<FourTuple> = (0..entries).map(tuple).collect();
    let tables = kinds
        .iter()
        .map(|&k| {
            let t = scheme::build(k, sizing, &hash);
            for (i, tu) in tuples.iter().enumerate() {
                assert!(t.insert(tu, i as u64));
            }
            (k, t)
        })
        .collect();
    Subjects { tables, tuples }
}

#[test]
fn a_settled_pool_has_nothing_pending_and_no_backlog_of_free_nodes() {
    let kinds = [Kind::Smr, Kind::SmrLazy, Kind::Pserialize];
    let s = subjects(2_000, &kinds);
    let mut base = 1 << 20;
    for k in kinds {
        let mut lat = None;
        let run = churn_run(
            &s,
            k,
            1,
            None,
            Duration::from_millis(100),
            &mut base,
            &mut lat,
        );
        assert!(run.frees > 1_000, "{}: too little churn to judge", k.name());
        let t = s.get(k);
        t.settle();
        let c = t.counters();
        assert_eq!(c.pending, 0, "{}: pending after settle", k.name());
        // `barrier()` alone leaves every node the run freed in the ready
        // list; `reclaim()` frees the chunks they fill, leaving at most the
        // free nodes of chunks that also hold live connections.
        assert!(
            c.cached < 1_000,
            "{}: {} free nodes kept after {} frees",
            k.name(),
            c.cached,
            run.frees
        );
        // The next run reports the same start.
        let next = churn_run(
            &s,
            k,
            1,
            None,
            Duration::from_millis(20),
            &mut base,
            &mut lat,
        );
        assert_eq!(next.start_pending, 0, "{}", k.name());
    }
}

#[test]
fn every_arm_produces_sane_figures_with_and_without_the_long_reader() {
    let kinds = arm_kinds();
    assert!(kinds.contains(&Kind::EpochSpread));
    let s = subjects(2_000, &kinds);
    let mut base = 1 << 20;
    for k in kinds {
        for hold in [None, Some(Duration::from_millis(10))] {
            let a = arm_run(&s, k, hold, Duration::from_millis(60), &mut base);
            let name = k.name();
            assert!(a.lookups_per_s > 0.0, "{name} {hold:?}");
            assert!(!a.lookup_ns.is_empty(), "{name} {hold:?}");
            assert!(!a.step_ns.is_empty(), "{name} {hold:?}");
            assert!(a.avg_pending <= a.peak_pending as f64, "{name} {hold:?}");
            // crossbeam-epoch's collector is one per process, and other
            // tests pin it in parallel, so an epoch table may not settle
            // fully here; the bench runs alone (`tests/bench_reclaim.rs`
            // checks its start_pending_max for every scheme).
            if k != Kind::Epoch && k != Kind::EpochSpread {
                assert_eq!(a.start_pending, 0, "{name} {hold:?}");
            }
            assert_eq!(a.violations, 0, "{name} {hold:?}");
            match hold {
                None => {
                    assert_eq!(a.long_sections, 0);
                    assert!(a.churn_ops_per_s > 0.0, "{name}");
                }
                // At least one section, however loaded the machine (a
                // preempted sampler can stretch the run, so no upper bound).
                Some(_) => assert!(a.long_sections >= 1, "{name}: {}", a.long_sections),
            }
            if k == Kind::RwLock || k == Kind::DashMap {
                assert_eq!(a.peak_pending, 0, "{name}: frees inside the remove");
            }
        }
    }
}

#[test]
fn the_long_reader_holds_epoch_memory_back_and_smr_memory_under_its_cap() {
    let kinds = [Kind::Smr, Kind::Epoch];
    let s = subjects(2_000, &kinds);
    let mut base = 1 << 20;
    let hold = Some(Duration::from_millis(30));
    for k in kinds {
        let with = arm_run(&s, k, hold, Duration::from_millis(200), &mut base);
        // 30 ms of flat-out churn retires thousands of nodes that wait for
        // the section to end.
        assert!(
            with.peak_pending > 500,
            "{}: peak {}",
            k.name(),
            with.peak_pending
        );
        if k == Kind::Smr {
            assert!(with.peak_pending <= 2_000 + 16_384, "under the pool cap");
        }
    }
}

#[test]
fn spread_frees_release_at_most_a_few_nodes_per_insert() {
    let s = subjects(1_000, &[Kind::EpochSpread]);
    let t = s.get(Kind::EpochSpread);
    // Retire 1,000 nodes (removes allocate nothing, so nothing is freed
    // yet), then let every grace period pass: the spread scheme's
    // destructors only list them, so they stay pending.
    for i in 0..1_000 {
        assert!(t.remove(&tuple(i)));
    }
    for _ in 0..10_000 {
        crossbeam_epoch::pin().flush();
    }
    let listed = t.counters().pending;
    assert!(listed >= 1_000, "{listed} pending");
    // One insert frees at most SPREAD_PER_OP of them.
    assert!(t.insert(&tuple(2_000_000), 0));
    let after = t.counters().pending;
    assert!(
        listed - after <= SPREAD_PER_OP as u64 && listed > after,
        "one insert freed {} nodes",
        listed - after
    );
    // Settling frees the rest.
    t.settle();
    assert_eq!(t.counters().pending, 0);
}
