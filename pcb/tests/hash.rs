//! Tuples built to collide under an unkeyed hash spread out under the keyed
//! one.
#![cfg(not(loom))]

use pcb::{FourTuple, Table};
use smr::{Domain, Mode};
use std::sync::Arc;

/// FreeBSD's connection hash without its seed: foreign address XOR ports.
fn unkeyed(t: &FourTuple, mask: u32) -> u32 {
    let std::net::IpAddr::V4(f) = t.foreign.addr else {
        unreachable!()
    };
    (u32::from(f) ^ u32::from(t.local.port ^ t.foreign.port)) & mask
}

#[test]
fn tuples_that_collide_unkeyed_do_not_pile_into_one_chain() {
    // The attacker varies the low 16 bits of its address and sets the
    // foreign port to match, so address XOR ports is constant.
    let tuples: Vec<FourTuple> = (0..4096u32)
        .map(|i| {
            let (hi, lo) = ((i >> 8) as u8, i as u8);
            let fport = u16::from_be_bytes([hi, lo]) ^ 80;
            FourTuple::v4([10, 0, 0, 1], 80, [198, 18, hi, lo], fport)
        })
        .collect();
    let table: Table<()> = Table::new(Arc::new(Domain::new(Mode::Default)), 4096);
    let mask = table.buckets() as u32 - 1;
    let b0 = unkeyed(&tuples[0], mask);
    assert!(
        tuples.iter().all(|t| unkeyed(t, mask) == b0),
        "the attack set is not colliding"
    );
    for t in &tuples {
        table.insert(t, ()).unwrap();
    }
    let stats = table.chain_stats();
    assert_eq!(stats.entries, 4096);
    // 4096 balls in 4096 bins: the longest chain is ~6-7 by chance.
    assert!(
        stats.max_chain <= 12,
        "keyed hash still piles up: {stats:?}"
    );
    assert!(stats.nonempty > 2000, "{stats:?}");
}
