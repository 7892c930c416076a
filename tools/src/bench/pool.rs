//! `smrnet bench pool`: what allocating and retiring one 256-byte connection
//! block costs, from the SMR pool cache against malloc and the epoch-based
//! reclaimers.
//!
//! One operation is a pair: allocate an object, write to it, and give it back
//! for deferred reuse (retire, `defer_destroy`, `retire`), or free it at once
//! (`box-malloc`, which needs no grace period and is the floor a deferred
//! scheme competes with). Each pool is built once and shared by every thread,
//! as the stack shares its one PCB pool; its batching counters are read after
//! all runs.

use super::harness;
use super::report::{self, Machine, RunArgs, round};
use serde::Serialize;
use smr::{Domain, Mode, PoolCache, PoolConfig, PoolStats, Protection, Pserialize, Variant};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Cost of one alloc+retire pair of a 256-byte object, per thread, side by
/// side: pool-smr, pool-smr-lazy, pool-smr-deferred, pool-pserialize,
/// box-malloc (Box::new + drop), crossbeam-epoch (pin, Owned::new,
/// defer_destroy) and seize (Box::new + retire). Pool rows also report how
/// many frees each grace period covered and the peak number of objects that
/// waited for one. Ratios are against box-malloc at the same thread count.
#[derive(Debug, clap::Args)]
pub struct PoolArgs {
    // With --json: `{"bench":"pool","machine":{..},"runs":K,
    // "millis_per_run":MS,"object_bytes":256,"cap":N,"results":[{"impl":..,
    // "threads":N,"ns_per_pair":..,"min":..,"max":..,"frees_per_advance":..,
    // "peak_pending":..,"exhausted":..}],"ratios":{"<impl>/box-malloc@<N>":..}}`.
    #[command(flatten)]
    run: RunArgs,
}

/// The object: the size of a connection block.
struct Block([AtomicU64; 32]);

impl Block {
    fn new() -> Block {
        Block(std::array::from_fn(|_| AtomicU64::new(0)))
    }

    /// What an owner does with a fresh block: write it.
    #[inline(always)]
    fn touch(&self) {
        self.0[0].store(1, Relaxed);
    }
}

/// The pools' cap: far above what the benchmark keeps pending, so reaching it
/// would be a finding, reported in the `exhausted` column.
const CAP: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    PoolSmr,
    PoolSmrLazy,
    PoolSmrDeferred,
    PoolPserialize,
    BoxMalloc,
    CrossbeamEpoch,
    Seize,
}

const IMPLS: [Impl; 7] = [
    Impl::PoolSmr,
    Impl::PoolSmrLazy,
    Impl::PoolSmrDeferred,
    Impl::PoolPserialize,
    Impl::BoxMalloc,
    Impl::CrossbeamEpoch,
    Impl::Seize,
];

const BASELINE: Impl = Impl::BoxMalloc;

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::PoolSmr => "pool-smr",
            Impl::PoolSmrLazy => "pool-smr-lazy",
            Impl::PoolSmrDeferred => "pool-smr-deferred",
            Impl::PoolPserialize => "pool-pserialize",
            Impl::BoxMalloc => "box-malloc",
            Impl::CrossbeamEpoch => "crossbeam-epoch",
            Impl::Seize => "seize",
        }
    }
}

struct Subjects {
    smr: PoolCache<Block>,
    smr_lazy: PoolCache<Block>,
    smr_deferred: PoolCache<Block>,
    pserialize: PoolCache<Block>,
    seize: seize::Collector,
}

fn pool(protection: Protection) -> PoolCache<Block> {
    let config = PoolConfig {
        max_objects: CAP,
        ..PoolConfig::default()
    };
    PoolCache::with_config(protection, config, Block::new)
}

impl Subjects {
    fn new() -> Subjects {
        let smr = |mode| Protection::Smr(Arc::new(Domain::new(mode)));
        Subjects {
            smr: pool(smr(Mode::Default)),
            smr_lazy: pool(smr(Mode::Lazy)),
            smr_deferred: pool(smr(Mode::Deferred)),
            pserialize: pool(Protection::Pserialize(Arc::new(Pserialize::new(
                Variant::Naive,
            )))),
            seize: seize::Collector::new(),
        }
    }

    fn pool(&self, imp: Impl) -> Option<&PoolCache<Block>> {
        match imp {
            Impl::PoolSmr => Some(&self.smr),
            Impl::PoolSmrLazy => Some(&self.smr_lazy),
            Impl::PoolSmrDeferred => Some(&self.smr_deferred),
            Impl::PoolPserialize => Some(&self.pserialize),
            _ => None,
        }
    }

    fn measure(&self, imp: Impl, threads: usize, budget: Duration) -> f64 {
        let run = match self.pool(imp) {
            Some(pool) => harness::run(threads, budget, || {
                // The cap is far away; an `Exhausted` here is counted by the
                // pool and shows in the report.
                if let Ok(block) = pool.alloc() {
                    block.touch();
                    black_box(&*block);
                }
            }),
            None => match imp {
                Impl::BoxMalloc => harness::run(threads, budget, || {
                    let block = Box::new(Block::new());
                    block.touch();
                    drop(black_box(block));
                }),
                Impl::CrossbeamEpoch => harness::run(threads, budget, || {
                    let guard = crossbeam_epoch::pin();
                    let block = crossbeam_epoch::Owned::new(Block::new()).into_shared(&guard);
                    // SAFETY: `block` was never published, so no other
                    // thread can hold it; it is destroyed once, after the
                    // guard's epoch has passed.
                    unsafe {
                        block.deref().touch();
                        guard.defer_destroy(black_box(block));
                    }
                }),
                Impl::Seize => harness::run(threads, budget, || {
                    let block = Box::into_raw(Box::new(Block::new()));
                    // SAFETY: `block` comes from `Box::into_raw` just above,
                    // was never published, and is retired exactly once with
                    // the matching `boxed` reclaimer.
                    unsafe {
                        (*block).touch();
                        self.seize.retire(black_box(block), seize::reclaim::boxed);
                    }
                }),
                _ => unreachable!("pool impls are handled above"),
            },
        };
        run.ns_per_op()
    }
}

#[derive(Serialize)]
struct Report {
    bench: &'static str,
    machine: Machine,
    runs: u32,
    millis_per_run: u64,
    object_bytes: usize,
    cap: usize,
    results: Vec<Row>,
    ratios: BTreeMap<String, f64>,
}

#[derive(Serialize)]
struct Row {
    #[serde(rename = "impl")]
    imp: &'static str,
    threads: usize,
    ns_per_pair: f64,
    min: f64,
    max: f64,
    /// Pool rows: frees covered by one grace period (advance or perform),
    /// over the whole benchmark.
    #[serde(skip_serializing_if = "Option::is_none")]
    frees_per_advance: Option<f64>,
    /// Pool rows: the most objects that waited for readers at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_pending: Option<u64>,
    /// Pool rows: allocations refused at the cap (expected 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    exhausted: Option<u64>,
    #[serde(skip)]
    ratio: f64,
}

pub(super) fn run(args: &PoolArgs) -> io::Result<()> {
    let args = &args.run;
    let subjects = Subjects::new();
    let measured = report::interleave(args, &IMPLS, |imp, t, budget| {
        subjects.measure(imp, t, budget)
    });
    let stats: Vec<Option<PoolStats>> = IMPLS
        .iter()
        .map(|&imp| subjects.pool(imp).map(PoolCache::stats))
        .collect();
    let results: Vec<Row> = measured
        .iter()
        .map(|m| {
            let st = IMPLS
                .iter()
                .position(|&i| i == m.imp)
                .and_then(|i| stats[i].as_ref());
            Row {
                imp: m.imp.name(),
                threads: m.threads,
                ns_per_pair: round(m.summary.median),
                min: round(m.summary.min),
                max: round(m.summary.max),
                frees_per_advance: st.map(|s| round(s.frees_per_advance)),
                peak_pending: st.map(|s| s.peak_pending),
                exhausted: st.map(|s| s.exhausted),
                ratio: round(
                    m.summary.median / report::baseline_median(&measured, BASELINE, m.threads),
                ),
            }
        })
        .collect();
    let report = Report {
        bench: "pool",
        machine: Machine::this(),
        runs: args.runs,
        millis_per_run: args.millis_per_run,
        object_bytes: std::mem::size_of::<Block>(),
        cap: CAP,
        ratios: report::ratios(
            results.iter().map(|r| (r.imp, r.threads, r.ratio)),
            BASELINE.name(),
        ),
        results,
    };
    report::emit(args.json, &report, write_table)
}

fn write_table(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    writeln!(
        out,
        "alloc+retire of a {}-byte object: ns per pair per thread, median of {} runs x {} ms ({} cpus)",
        r.object_bytes,
        r.runs,
        r.millis_per_run,
        r.machine.cpus()
    )?;
    let vs = format!("vs {}", BASELINE.name());
    writeln!(
        out,
        "{:<18} {:>7} {:>9} {:>9} {:>9} {:>8}  {:>13} {:>12} {:>9}",
        "impl",
        "threads",
        "ns/pair",
        "min",
        "max",
        vs,
        "frees/advance",
        "peak pending",
        "exhausted"
    )?;
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for row in &r.results {
        writeln!(
            out,
            "{:<18} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>8.2}  {:>13} {:>12} {:>9}",
            row.imp,
            row.threads,
            row.ns_per_pair,
            row.min,
            row.max,
            row.ratio,
            opt(row.frees_per_advance.map(|f| format!("{f:.1}"))),
            opt(row.peak_pending.map(|p| p.to_string())),
            opt(row.exhausted.map(|e| e.to_string())),
        )?;
    }
    Ok(())
}
