//! Every backend answers random insert/remove/lookup sequences exactly as a
//! `HashMap` model does, on a table small enough that chains are long; the
//! SMR table also while it resizes (its own and forced resizes, stepped
//! between the operations), finding every present key after every step.
#![cfg(not(loom))]

use pcb::{
    ConnTable, DashMapTable, FlowHash, FourTuple, InsertError, Layout, PapayaTable, RwLockTable,
    Table, TableConfig,
};
use proptest::prelude::*;
use smr::{Domain, Mode};
use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::Arc;

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u32),
    Remove(u8),
    Lookup(u8),
}

/// 24 tuples: IPv4 and IPv6, sharing addresses and ports so that keys differ
/// in one field at a time.
fn tuple(i: u8) -> FourTuple {
    let i = i % 24;
    let port = 1000 + u16::from(i % 3);
    match i / 12 {
        0 => FourTuple::v4([10, 0, 0, 1], 80, [192, 0, 2, i % 4], port),
        _ => FourTuple::v6(
            Ipv6Addr::LOCALHOST,
            80,
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(i % 4)),
            port,
        ),
    }
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            (any::<u8>(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            any::<u8>().prop_map(Op::Remove),
            any::<u8>().prop_map(Op::Lookup),
        ],
        0..200,
    )
}

fn check(table: &impl ConnTable<u32>, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model: HashMap<FourTuple, u32> = HashMap::new();
    for op in ops {
        match *op {
            Op::Insert(k, v) => {
                let t = tuple(k);
                let got = table.insert(&t, v);
                match model.entry(t) {
                    std::collections::hash_map::Entry::Occupied(_) => {
                        prop_assert_eq!(got, Err(InsertError::Duplicate(t)));
                    }
                    std::collections::hash_map::Entry::Vacant(e) => {
                        prop_assert_eq!(got, Ok(()));
                        e.insert(v);
                    }
                }
            }
            Op::Remove(k) => {
                let t = tuple(k);
                prop_assert_eq!(table.remove(&t), model.remove(&t).is_some());
            }
            Op::Lookup(k) => {
                let t = tuple(k);
                prop_assert_eq!(table.lookup_with(&t, |v| *v), model.get(&t).copied());
                prop_assert_eq!(table.contains(&t), model.contains_key(&t));
            }
        }
        prop_assert_eq!(table.len(), model.len());
    }
    for k in 0..24 {
        let t = tuple(k);
        prop_assert_eq!(table.lookup_with(&t, |v| *v), model.get(&t).copied());
    }
    Ok(())
}

/// One stripe and four buckets to start (min one): chains are long, and
/// the 24 tuples make the table grow and shrink on its own.
fn smr_table() -> Table<u32> {
    small_table(1)
}

fn small_table(stripes: usize) -> Table<u32> {
    small_table_with(stripes, Layout::Summary)
}

fn small_table_with(stripes: usize, layout: Layout) -> Table<u32> {
    let mut cfg = TableConfig::new(4);
    cfg.layout = layout;
    cfg.pool.magazine_size = 2;
    cfg.pool.chunk_objects = 4;
    cfg.stripes = stripes;
    cfg.min_buckets = Some(1);
    Table::with_config(Arc::new(Domain::new(Mode::Default)), cfg)
}

#[derive(Clone, Debug)]
enum ResizeOp {
    Op(Op),
    /// Start a resize to 2^(n % 6) buckets.
    ResizeTo(u8),
    /// Run this many resize steps.
    Step(u8),
}

fn resize_ops() -> impl Strategy<Value = Vec<ResizeOp>> {
    prop::collection::vec(
        prop_oneof![
            4 => (any::<u8>(), any::<u32>()).prop_map(|(k, v)| ResizeOp::Op(Op::Insert(k, v))),
            3 => any::<u8>().prop_map(|k| ResizeOp::Op(Op::Remove(k))),
            1 => any::<u8>().prop_map(|k| ResizeOp::Op(Op::Lookup(k))),
            1 => any::<u8>().prop_map(ResizeOp::ResizeTo),
            2 => (0u8..6).prop_map(ResizeOp::Step),
        ],
        0..300,
    )
}

/// The model check with resizes in between, and after every operation and
/// every step: each present key found, each absent one not, the count and
/// the readers' walk agreeing with the model.
fn check_resizing(table: &Table<u32>, ops: &[ResizeOp]) -> Result<(), TestCaseError> {
    let mut model: HashMap<FourTuple, u32> = HashMap::new();
    for op in ops {
        match *op {
            ResizeOp::Op(Op::Insert(k, v)) => {
                let t = tuple(k);
                let fresh = !model.contains_key(&t);
                prop_assert_eq!(table.insert(&t, v).is_ok(), fresh);
                if fresh {
                    model.insert(t, v);
                }
            }
            ResizeOp::Op(Op::Remove(k)) => {
                let t = tuple(k);
                prop_assert_eq!(table.remove(&t), model.remove(&t));
            }
            ResizeOp::Op(Op::Lookup(k)) => {
                let t = tuple(k);
                prop_assert_eq!(table.lookup_with(&t, |v| *v), model.get(&t).copied());
            }
            ResizeOp::ResizeTo(n) => {
                table.resize_to(1 << (n % 6));
            }
            ResizeOp::Step(n) => {
                for _ in 0..n {
                    table.resize_step();
                }
            }
        }
        for k in 0..24 {
            let t = tuple(k);
            prop_assert_eq!(
                table.lookup_with(&t, |v| *v),
                model.get(&t).copied(),
                "{} after {:?} ({:?})",
                t,
                op,
                table.resize_stats()
            );
        }
        prop_assert_eq!(table.len(), model.len());
        prop_assert_eq!(table.chain_stats().entries, model.len());
    }
    Ok(())
}

#[test]
fn smr_table_grows_and_shrinks_on_its_own() {
    let table = small_table(2);
    for k in 0..24 {
        table.insert(&tuple(k), u32::from(k)).unwrap();
    }
    // Finish whatever the inserts left under way (a step per write).
    for _ in 0..64 {
        table.resize_step();
    }
    let grown = table.resize_stats();
    assert!(grown.grows >= 1, "{grown:?}");
    assert!(grown.buckets >= 24, "{grown:?}");
    assert!(grown.load_factor <= 1.0, "{grown:?}");
    for k in 0..24 {
        assert_eq!(table.remove(&tuple(k)), Some(u32::from(k)));
    }
    for _ in 0..64 {
        table.resize_step();
    }
    let shrunk = table.resize_stats();
    assert!(shrunk.shrinks >= 1, "{shrunk:?}");
    assert!(shrunk.buckets < grown.buckets, "{shrunk:?}");
    assert!(!shrunk.in_progress, "{shrunk:?}");
}

proptest! {
    #[test]
    fn smr_table_agrees_with_a_hashmap(ops in ops()) {
        let table = smr_table();
        check(&table, &ops)?;
        // The SMR table's own walk agrees with its count.
        let stats = table.chain_stats();
        prop_assert_eq!(stats.entries, table.len());
        let section = table.domain().enter();
        let mut seen = 0;
        table.for_each(&section, |r| {
            seen += 1;
            assert!(table.lookup(&section, &r.tuple()).is_some());
        });
        prop_assert_eq!(seen, table.len());
    }

    #[test]
    fn smr_table_agrees_with_a_hashmap_across_resizes(ops in resize_ops()) {
        for stripes in [1, 2] {
            check_resizing(&small_table(stripes), &ops)?;
        }
    }

    #[test]
    fn smr_plain_layout_agrees_with_a_hashmap_across_resizes(ops in resize_ops()) {
        for stripes in [1, 2] {
            check_resizing(&small_table_with(stripes, Layout::Plain), &ops)?;
        }
    }

    #[test]
    fn dashmap_table_agrees_with_a_hashmap(ops in ops()) {
        check(&DashMapTable::new(4, FlowHash::with_seed(7)), &ops)?;
    }

    #[test]
    fn rwlock_table_agrees_with_a_hashmap(ops in ops()) {
        check(&RwLockTable::new(4, FlowHash::with_seed(7)), &ops)?;
    }

    #[test]
    fn papaya_table_agrees_with_a_hashmap(ops in ops()) {
        check(&PapayaTable::new(4, FlowHash::with_seed(7)), &ops)?;
    }
}
