//! `smrnet bench read`: what entering and leaving an empty read section costs
//! one thread, for the SMR domain's three modes and the schemes it is weighed
//! against.
//!
//! Every implementation is measured in the same process and interleaved run by
//! run, so a ratio between two of them compares runs taken seconds apart under
//! the same machine load. Each subject is built once and shared by all threads,
//! as a stack would share its one domain.

use super::harness;
use super::report::{self, Machine, RunArgs, round};
use serde::Serialize;
use smr::{Domain, Mode, Pserialize, Variant};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::{self, Write};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

/// Cost of one empty read section (enter + exit) per thread, side by side.
///
/// Measures smr-default, smr-lazy, smr-deferred, pserialize, crossbeam-epoch,
/// seize, rwlock-std (one `std::sync::RwLock` read-locked by every thread) and
/// none (the bare loop). A run lasts --millis-per-run; its cost is the
/// threads' summed time over the pairs they completed, the nanoseconds one
/// pair costs one thread. Reported: the median run, and its ratio to
/// crossbeam-epoch at the same thread count. Implementations are interleaved
/// run by run, so load from elsewhere on the machine hits all of them alike.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// With --json: `{"bench":"read","machine":{..},"runs":K,
    /// "millis_per_run":MS,"results":[{"impl":..,"threads":N,"ns_per_op":..,
    /// "min":..,"max":..,"runs":K,"note":..}],
    /// "ratios":{"<impl>/crossbeam-epoch@<N>":..}}`; `note` appears only when
    /// an implementation is not what its name says (smr-lazy without
    /// membarrier).
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    SmrDefault,
    SmrLazy,
    SmrDeferred,
    Pserialize,
    CrossbeamEpoch,
    Seize,
    RwLockStd,
    Empty,
}

const IMPLS: [Impl; 8] = [
    Impl::SmrDefault,
    Impl::SmrLazy,
    Impl::SmrDeferred,
    Impl::Pserialize,
    Impl::CrossbeamEpoch,
    Impl::Seize,
    Impl::RwLockStd,
    Impl::Empty,
];

/// Every ratio is taken against this one.
const BASELINE: Impl = Impl::CrossbeamEpoch;

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::SmrDefault => "smr-default",
            Impl::SmrLazy => "smr-lazy",
            Impl::SmrDeferred => "smr-deferred",
            Impl::Pserialize => "pserialize",
            Impl::CrossbeamEpoch => "crossbeam-epoch",
            Impl::Seize => "seize",
            Impl::RwLockStd => "rwlock-std",
            Impl::Empty => "none",
        }
    }
}

/// The shared state each implementation's readers enter. crossbeam-epoch
/// uses its global collector, as `crossbeam_epoch::pin()` callers do.
struct Subjects {
    smr_default: Domain,
    smr_lazy: Domain,
    smr_deferred: Domain,
    pserialize: Pserialize,
    seize: seize::Collector,
    rwlock: RwLock<()>,
}

impl Subjects {
    fn new() -> Subjects {
        Subjects {
            smr_default: Domain::new(Mode::Default),
            smr_lazy: Domain::new(Mode::Lazy),
            smr_deferred: Domain::new(Mode::Deferred),
            pserialize: Pserialize::new(Variant::Naive),
            seize: seize::Collector::new(),
            rwlock: RwLock::new(()),
        }
    }

    /// Why `smr-lazy` is not what its name says, if it is not.
    fn note(&self, imp: Impl) -> Option<String> {
        let reason = self
            .smr_lazy
            .fallback_reason()
            .filter(|_| imp == Impl::SmrLazy)?;
        Some(format!("fell back to the default (fenced) mode: {reason}"))
    }

    /// One timed run. Each arm hands the harness its own closure, so every
    /// implementation's loop is compiled and inlined on its own.
    fn measure(&self, imp: Impl, threads: usize, budget: Duration) -> f64 {
        let run = match imp {
            Impl::SmrDefault => harness::run(threads, budget, || {
                pair(&self.smr_default, Domain::enter);
            }),
            Impl::SmrLazy => harness::run(threads, budget, || {
                pair(&self.smr_lazy, Domain::enter);
            }),
            Impl::SmrDeferred => harness::run(threads, budget, || {
                pair(&self.smr_deferred, Domain::enter);
            }),
            Impl::Pserialize => harness::run(threads, budget, || {
                pair(&self.pserialize, Pserialize::read_enter);
            }),
            Impl::CrossbeamEpoch => harness::run(threads, budget, || {
                pair(&(), |_| crossbeam_epoch::pin());
            }),
            Impl::Seize => harness::run(threads, budget, || {
                pair(&self.seize, seize::Collector::enter);
            }),
            Impl::RwLockStd => harness::run(threads, budget, || {
                pair(&self.rwlock, |l| {
                    l.read().unwrap_or_else(PoisonError::into_inner)
                });
            }),
            Impl::Empty => harness::run(threads, budget, || pair(&(), |_| ())),
        };
        run.ns_per_op()
    }
}

/// Enter, and leave at once by dropping the guard. `black_box` on the way in
/// stops the compiler from hoisting per-subject work out of the loop, and on
/// the guard it stops the pair from being elided; `none` pays the same two.
#[inline(always)]
fn pair<'s, S, G>(subject: &'s S, enter: impl Fn(&'s S) -> G) {
    let guard = enter(black_box(subject));
    black_box(&guard);
}

#[derive(Serialize)]
struct Report {
    bench: &'static str,
    machine: Machine,
    runs: u32,
    millis_per_run: u64,
    results: Vec<Row>,
    /// `"<impl>/crossbeam-epoch@<threads>"`: ratio of the medians.
    ratios: BTreeMap<String, f64>,
}

#[derive(Serialize)]
struct Row {
    #[serde(rename = "impl")]
    imp: &'static str,
    threads: usize,
    /// Median over runs of (thread time / operations).
    ns_per_op: f64,
    min: f64,
    max: f64,
    runs: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    /// Median over the baseline's median at the same thread count; published
    /// in `Report::ratios`.
    #[serde(skip)]
    ratio: f64,
}

pub(super) fn run(args: &ReadArgs) -> io::Result<()> {
    let args = &args.run;
    let subjects = Subjects::new();
    if let Some(note) = subjects.note(Impl::SmrLazy) {
        eprintln!("smrnet bench read: smr-lazy {note}");
    }
    let measured = report::interleave(args, &IMPLS, |imp, t, budget| {
        subjects.measure(imp, t, budget)
    });
    let results: Vec<Row> = measured
        .iter()
        .map(|m| Row {
            imp: m.imp.name(),
            threads: m.threads,
            ns_per_op: round(m.summary.median),
            min: round(m.summary.min),
            max: round(m.summary.max),
            runs: args.runs,
            note: subjects.note(m.imp),
            ratio: round(
                m.summary.median / report::baseline_median(&measured, BASELINE, m.threads),
            ),
        })
        .collect();
    let report = Report {
        bench: "read",
        machine: Machine::this(),
        runs: args.runs,
        millis_per_run: args.millis_per_run,
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
        "enter+exit of an empty read section: ns per op per thread, \
         median of {} runs x {} ms ({} cpus)",
        r.runs,
        r.millis_per_run,
        r.machine.cpus()
    )?;
    let vs = format!("vs {}", BASELINE.name());
    writeln!(
        out,
        "{:<16} {:>7} {:>9} {:>9} {:>9}  {vs}",
        "impl", "threads", "ns/op", "min", "max"
    )?;
    for row in &r.results {
        write!(
            out,
            "{:<16} {:>7} {:>9.2} {:>9.2} {:>9.2}  {:>5.2}",
            row.imp, row.threads, row.ns_per_op, row.min, row.max, row.ratio
        )?;
        match &row.note {
            Some(note) => writeln!(out, "  ({note})")?,
            None => writeln!(out)?,
        }
    }
    Ok(())
}
