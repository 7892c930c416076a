//! Property: any sequence of alloc / retire / flush / reclaim / barrier /
//! enter / leave, issued from several real threads in a deterministic order
//! (each op is sent to its thread and completes before the next is sent),
//! never hands out an object that is live, never hands out an object retired
//! while a section that was open at the retire is still open, and accounts
//! for every object after every step.
//!
//! `cargo test -p smr --release --test pool_proptest`
#![cfg(not(loom))]

use proptest::prelude::*;
use smr::{Domain, Exhausted, Mode, PoolCache, PoolConfig, PoolStats, Protection};
use std::collections::{HashMap, HashSet};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

const THREADS: usize = 3;

#[derive(Clone, Copy, Debug)]
enum Op {
    Alloc,
    /// Retire the `n % held`-th object this thread holds.
    Retire(usize),
    Flush,
    Reclaim,
    Barrier,
    Enter,
    Leave,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Alloc),
        6 => any::<usize>().prop_map(Op::Retire),
        1 => Just(Op::Flush),
        1 => Just(Op::Reclaim),
        1 => Just(Op::Barrier),
        1 => Just(Op::Enter),
        1 => Just(Op::Leave),
    ]
}

enum Reply {
    Alloc(Result<usize, Exhausted>),
    Retired(usize),
    Done,
}

type Node = AtomicU64;

/// One worker thread: runs the ops it is sent, one at a time.
fn worker(pool: Arc<PoolCache<Node>>, rx: Receiver<Op>, tx: Sender<Reply>) {
    let domain = pool.domain().unwrap().clone();
    let mut section = None;
    let mut held: Vec<NonNull<Node>> = Vec::new();
    for op in rx {
        let reply = match op {
            Op::Alloc => Reply::Alloc(pool.alloc_raw().map(|p| {
                held.push(p);
                p.as_ptr() as usize
            })),
            Op::Retire(n) if !held.is_empty() => {
                let p = held.swap_remove(n % held.len());
                // SAFETY: owned by this worker, never published.
                unsafe { pool.retire_raw(p) };
                Reply::Retired(p.as_ptr() as usize)
            }
            Op::Retire(_) => Reply::Done,
            Op::Flush => {
                pool.flush();
                Reply::Done
            }
            Op::Reclaim => {
                pool.reclaim();
                Reply::Done
            }
            Op::Barrier => {
                pool.barrier();
                Reply::Done
            }
            Op::Enter => {
                section.get_or_insert_with(|| domain.enter());
                Reply::Done
            }
            Op::Leave => {
                section = None;
                Reply::Done
            }
        };
        tx.send(reply).unwrap();
    }
    drop(section);
    for p in held {
        // SAFETY: owned by this worker.
        unsafe { pool.retire_raw(p) };
    }
}

fn accounted(s: &PoolStats) -> bool {
    s.live + s.cached + s.pending == s.allocated
}

fn run(ops: Vec<(usize, Op)>) -> Result<(), TestCaseError> {
    let cfg = PoolConfig {
        magazine_size: 4,
        chunk_objects: 4,
        max_objects: 48,
        expedite_timeout: Duration::from_micros(200),
        expedite_backoff: Duration::ZERO,
        latency_sample_every: 1,
    };
    let pool = Arc::new(PoolCache::with_config(
        Protection::Smr(Arc::new(Domain::new(Mode::Default))),
        cfg.clone(),
        || AtomicU64::new(0),
    ));
    let mut to = Vec::new();
    let mut from = Vec::new();
    let mut joins = Vec::new();
    for _ in 0..THREADS {
        let (otx, orx) = channel();
        let (rtx, rrx) = channel();
        let p = pool.clone();
        joins.push(std::thread::spawn(move || worker(p, orx, rtx)));
        to.push(otx);
        from.push(rrx);
    }
    // The model.
    let mut live: HashSet<usize> = HashSet::new();
    // Object -> step at which it was retired.
    let mut retired_at: HashMap<usize, usize> = HashMap::new();
    // Thread -> step at which its open section began.
    let mut open: HashMap<usize, usize> = HashMap::new();
    let mut result = Ok(());
    for (step, (t, mut op)) in ops.into_iter().enumerate() {
        // A barrier waits for every open section: only when none is open
        // (another thread's section would block it forever).
        if matches!(op, Op::Barrier) && !open.is_empty() {
            op = Op::Flush;
        }
        to[t].send(op).unwrap();
        match from[t].recv().unwrap() {
            Reply::Alloc(Ok(p)) => {
                if !live.insert(p) {
                    result = Err(TestCaseError::fail(format!(
                        "step {step}: {p:#x} handed out twice"
                    )));
                    break;
                }
                if let Some(r) = retired_at.remove(&p)
                    && let Some((reader, entered)) = open.iter().find(|&(_, &e)| e < r)
                {
                    result = Err(TestCaseError::fail(format!(
                        "step {step}: {p:#x} retired at step {r} reused while thread {reader}'s section from step {entered} is open"
                    )));
                    break;
                }
            }
            Reply::Alloc(Err(Exhausted)) => {
                let s = pool.stats();
                if s.allocated + cfg.chunk_objects as u64 <= s.max_objects {
                    result = Err(TestCaseError::fail(format!(
                        "step {step}: Exhausted below the cap: {s:?}"
                    )));
                    break;
                }
            }
            Reply::Retired(p) => {
                live.remove(&p);
                retired_at.insert(p, step);
            }
            Reply::Done => match op {
                Op::Enter => {
                    open.entry(t).or_insert(step);
                }
                Op::Leave => {
                    open.remove(&t);
                }
                _ => {}
            },
        }
        let s = pool.stats();
        if s.live != live.len() as u64 || !accounted(&s) || s.allocated > s.max_objects {
            result = Err(TestCaseError::fail(format!(
                "step {step}: books do not balance (model live {}): {s:?}",
                live.len()
            )));
            break;
        }
    }
    drop(to);
    for j in joins {
        j.join().unwrap();
    }
    result?;
    // Every worker has exited (flushing its magazines); all is retired.
    pool.barrier();
    let s = pool.stats();
    prop_assert_eq!(s.live, 0);
    prop_assert_eq!(s.pending, 0);
    prop_assert!(accounted(&s), "{:?}", s);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn pool_never_hands_out_an_object_twice_or_early_and_accounts_for_all(
        ops in prop::collection::vec((0..THREADS, op()), 1..160)
    ) {
        run(ops)?;
    }
}
