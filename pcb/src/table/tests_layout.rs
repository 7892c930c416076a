//! The bucket head's tag summary (`array.rs`): it covers every PCB in its
//! chain, lets a lookup of a tuple whose tag it lacks stop at the head
//! word, and narrows again when PCBs leave, so churn does not saturate it.

use super::{Layout, Table, TableConfig};
use crate::tuple::{FourTuple, Key};
use smr::{Domain, Mode};
use std::sync::Arc;

/// A table with one stripe and one bucket: every PCB in one chain.
fn one_chain(layout: Layout) -> Table<u32> {
    let mut cfg = TableConfig::new(1);
    cfg.stripes = 1;
    cfg.min_buckets = Some(1);
    cfg.auto_resize = false;
    cfg.layout = layout;
    cfg.hash = Some(crate::FlowHash::with_seed(7));
    Table::with_config(Arc::new(Domain::new(Mode::Default)), cfg)
}

fn t(i: u32) -> FourTuple {
    let [a, b, c, d] = i.to_be_bytes();
    FourTuple::v4([10, a, 0, 1], 80, [192, b, c, d], 1000)
}

/// The summary bit (0..16) of a tuple in `table`.
fn tag(table: &Table<u32>, tuple: &FourTuple) -> usize {
    table.hash_of(&Key::from(tuple)) >> 60
}

/// The first tuple from `from` on whose tag satisfies `f`.
fn find(table: &Table<u32>, from: u32, f: impl Fn(usize) -> bool) -> FourTuple {
    (from..from + 10_000)
        .map(t)
        .find(|x| f(tag(table, x)))
        .expect("16 tags: one turns up within 10k tuples")
}

fn summary(table: &Table<u32>) -> usize {
    let _section = table.domain().enter();
    table.main().summary_bits(0)
}

#[test]
fn summary_covers_every_pcb_in_the_chain() {
    let table = one_chain(Layout::Summary);
    let mut want = 0;
    for i in 0..40 {
        table.insert(&t(i), i).unwrap();
        want |= 1 << tag(&table, &t(i));
        assert_eq!(summary(&table), want, "after inserting {i}");
    }
}

#[test]
fn absent_lookup_whose_tag_is_not_in_the_summary_stops_at_the_head_word() {
    let table = one_chain(Layout::Summary);
    let present = t(0);
    table.insert(&present, 0).unwrap();
    let other = tag(&table, &present);
    let absent = find(&table, 1, |x| x != other);
    let section = table.domain().enter();
    let arr = table.main();
    // The chain is not empty, but the head word says no PCB in it can be
    // `absent`: the lookup gets no PCB to read.
    assert!(arr.head(table.hash_of(&Key::from(&absent))).0.is_null());
    assert!(!arr.head(table.hash_of(&Key::from(&present))).0.is_null());
    assert!(table.lookup(&section, &absent).is_none());
    assert!(table.lookup(&section, &present).is_some());
}

#[test]
fn absent_lookup_with_a_tag_in_the_summary_walks_and_misses() {
    let table = one_chain(Layout::Summary);
    let present = t(0);
    table.insert(&present, 0).unwrap();
    let same = tag(&table, &present);
    let absent = find(&table, 1, |x| x == same);
    let section = table.domain().enter();
    assert!(
        !table
            .main()
            .head(table.hash_of(&Key::from(&absent)))
            .0
            .is_null()
    );
    assert!(table.lookup(&section, &absent).is_none());
}

#[test]
fn removes_narrow_the_summary_to_the_pcbs_left() {
    let table = one_chain(Layout::Summary);
    // Many tags in the chain, then remove all but one PCB, from the head,
    // the middle and the tail: the summary must come back to its tag alone.
    for i in 0..40 {
        table.insert(&t(i), i).unwrap();
    }
    let keep = 17;
    // Evens from the oldest (the tail) up, then odds from the newest (the
    // head) down: the victim is the tail, in the middle, and the head.
    let order = (0..40).step_by(2).chain((1..40).step_by(2).rev());
    let mut present: std::collections::BTreeSet<u32> = (0..40).collect();
    for i in order.filter(|&i| i != keep) {
        assert_eq!(table.remove(&t(i)), Some(i));
        present.remove(&i);
        let section = table.domain().enter();
        for &j in &present {
            assert!(
                table.lookup(&section, &t(j)).is_some(),
                "{j} lost after removing {i}"
            );
        }
        let want = present.iter().fold(0, |w, j| w | 1 << tag(&table, &t(*j)));
        assert_eq!(table.main().summary_bits(0), want, "after removing {i}");
    }
    assert_eq!(summary(&table), 1 << tag(&table, &t(keep)));
    assert_eq!(table.remove(&t(keep)), Some(keep));
    assert_eq!(summary(&table), 0, "an empty chain's head word is null");
}

#[test]
fn plain_layout_walks_every_lookup() {
    let table = one_chain(Layout::Plain);
    let present = t(0);
    table.insert(&present, 0).unwrap();
    let other = tag(&table, &present);
    let absent = find(&table, 1, |x| x != other);
    let section = table.domain().enter();
    assert_eq!(summary(&table), 0xffff);
    assert!(
        !table
            .main()
            .head(table.hash_of(&Key::from(&absent)))
            .0
            .is_null()
    );
    assert!(table.lookup(&section, &absent).is_none());
    assert!(table.lookup(&section, &present).is_some());
}

#[test]
fn a_resize_keeps_the_layout_and_every_summary() {
    let table = one_chain(Layout::Summary);
    for i in 0..64 {
        table.insert(&t(i), i).unwrap();
    }
    assert!(table.resize_to(16));
    let finished = (0..10_000).any(|_| table.resize_step() == super::ResizeStep::Finished);
    assert!(finished, "the resize did not finish in 10k steps");
    let section = table.domain().enter();
    let arr = table.main();
    assert_eq!(arr.layout(), Layout::Summary);
    for i in 0..64 {
        assert!(
            table.lookup(&section, &t(i)).is_some(),
            "{i} lost by the resize"
        );
    }
    for b in 0..16 {
        let mut want = 0;
        arr.walk(b, |_, k| want |= 1 << (table.hash_of(&k) >> 60));
        assert_eq!(arr.summary_bits(b), want, "bucket {b}");
    }
}
