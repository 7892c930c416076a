//! A fixed amount of domain work, for counting instructions with
//! `valgrind --tool=callgrind` (stable under load, unlike wall-clock time):
//!
//! ```text
//! cargo build --release -p smr --example seq_ops
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/seq_ops default 100000
//! ```
//!
//! Per iteration: one read section entered and left, one `advance`, one
//! `poll` of the new goal (which scans), one `poll` of the same goal again
//! (the fast path).

use smr::{Domain, Mode};
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = match args.next().as_deref() {
        Some("lazy") => Mode::Lazy,
        Some("deferred") => Mode::Deferred,
        Some("default") | None => Mode::Default,
        Some(other) => {
            eprintln!("seq_ops: unknown mode {other:?} (default, lazy, deferred)");
            std::process::exit(2);
        }
    };
    let n: u64 = args
        .next()
        .map_or(100_000, |s| s.parse().expect("iterations"));
    let d = Domain::new(mode);
    let mut passed = 0u64;
    for _ in 0..n {
        drop(black_box(d.enter()));
        let g = d.advance();
        passed += u64::from(d.poll(g));
        passed += u64::from(d.poll(g));
    }
    println!("{} {n} iterations, {passed} polls passed", mode.name());
}
