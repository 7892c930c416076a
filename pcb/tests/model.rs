//! Every backend answers random insert/remove/lookup sequences exactly as a
//! `HashMap` model does, on a table small enough that chains are long.
#![cfg(not(loom))]

use pcb::{
    ConnTable, DashMapTable, FlowHash, FourTuple, InsertError, PapayaTable, RwLockTable, Table,
    TableConfig,
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

fn smr_table() -> Table<u32> {
    let mut cfg = TableConfig::new(4);
    cfg.pool.magazine_size = 2;
    cfg.pool.chunk_objects = 4;
    Table::with_config(Arc::new(Domain::new(Mode::Default)), cfg)
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
