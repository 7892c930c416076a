//! `smrnet bench reclaim`: the reclamation study. One connection-table
//! workload (the `bench pcb` churn: random hits from readers, one churner
//! inserting and removing) run under every scheme side by side in one
//! process: the SMR modes, both pserialize variants, crossbeam-epoch, a
//! reader/writer lock and dashmap. It measures what each scheme costs
//! readers, what it costs writers, how long freed memory waits before reuse,
//! how much waits, how often a grace period is paid for, and what one
//! reader stalled inside its section does to all of that. Two arms follow
//! the literature: a long-running reader (what pending memory and churn do
//! while one reader holds section after long section), and spread frees
//! (crossbeam-epoch freeing a released batch a few nodes per operation
//! instead of all at once), each judged on operation latency tails.
//!
//! Every run is bounded in time; configurations are interleaved run by run
//! so load from elsewhere hits every scheme alike.

mod arms;
mod episode;
mod plot;
mod scheme;
mod table;
#[cfg(test)]
mod tests;
mod text;

use super::churn::{self, Load, tuple};
use super::harness::{self, Summary};
use super::report::{self, Machine, round};
use arms::{ArmSample, arm_run};
use episode::{ChurnSample, churn_run, stall_run};
use hdrhistogram::Histogram;
use pcb::{FlowHash, FourTuple};
use scheme::{Kind, Sizing, Subject};
use serde::Serialize;
use std::io;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

/// Reclamation schemes compared on one connection-table workload.
///
/// Schemes: smr, smr-lazy, smr-deferred, pserialize (naive),
/// pserialize-coalesced, epoch (crossbeam-epoch), rwlock, dashmap; plus
/// `none` (no protection) in the read-only runs. The JSON schema is
/// described in docs/reclaim-study.md.
#[derive(Debug, clap::Args)]
pub struct ReclaimArgs {
    /// Print exactly one JSON object on stdout instead of tables.
    #[arg(long)]
    json: bool,

    /// The CI variant: a smaller table, fewer and shorter runs (< 1 minute).
    #[arg(long)]
    quick: bool,

    /// Write SVG and PNG charts into this directory (created if missing).
    #[arg(long, value_name = "DIR")]
    plots: Option<PathBuf>,

    /// Reader thread counts, comma-separated (default: 1 up to the number
    /// of CPUs).
    #[arg(
        long,
        value_name = "N,M,...",
        value_delimiter = ',',
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256),
    )]
    threads: Vec<usize>,

    /// Connections in every table (default 100000; 20000 with --quick).
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1000..=2_000_000))]
    entries: Option<u32>,

    /// Timed runs of every configuration; the median is reported (default
    /// 5; 1 with --quick).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: Option<u32>,

    /// Length of one timed run in ms (default 300; 100 with --quick).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(10..=10_000))]
    millis_per_run: Option<u64>,

    /// How long the stalled reader sleeps inside its section, in ms
    /// (default 1000; 200 with --quick).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(10..=10_000))]
    stall_ms: Option<u64>,

    /// Length of each of the long-running reader's sections, in ms
    /// (default 50; 20 with --quick).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=1_000))]
    long_reader_ms: Option<u64>,
}

/// Connections in the cache-resident read-only working set.
const HOT_SET: usize = 1024;

/// The run shape after defaults.
#[derive(Clone, Debug, Serialize)]
struct Plan {
    quick: bool,
    entries: u32,
    runs: u32,
    millis_per_run: u64,
    stall_ms: u64,
    /// The long-running reader's section length.
    long_reader_ms: u64,
    /// Length of one run of the long-reader and spread-free arms, and runs
    /// of each configuration there.
    arm_ms: u64,
    arm_runs: u32,
    readers: Vec<usize>,
    /// Churn targets in frees (remove+insert steps) per second; `null` is
    /// flat out (saturation).
    churn_rates: Vec<Option<f64>>,
    /// Pool cap for the pooled schemes: entries plus this headroom.
    pool_cap: u64,
}

impl Plan {
    fn of(args: &ReclaimArgs) -> Plan {
        let q = args.quick;
        let entries = args.entries.unwrap_or(if q { 20_000 } else { 100_000 });
        let mut readers = if args.threads.is_empty() {
            (1..=Machine::this().cpus().max(2)).collect()
        } else {
            args.threads.clone()
        };
        readers.sort_unstable();
        readers.dedup();
        let churn_rates = if q {
            vec![Some(50_000.0), None]
        } else {
            vec![Some(10_000.0), Some(100_000.0), Some(400_000.0), None]
        };
        let headroom: u64 = if q { 16_384 } else { 65_536 };
        let runs = args.runs.unwrap_or(if q { 1 } else { 5 });
        Plan {
            quick: q,
            entries,
            runs,
            millis_per_run: args.millis_per_run.unwrap_or(if q { 100 } else { 300 }),
            stall_ms: args.stall_ms.unwrap_or(if q { 200 } else { 1000 }),
            long_reader_ms: args.long_reader_ms.unwrap_or(if q { 20 } else { 50 }),
            arm_ms: if q { 200 } else { 1000 },
            arm_runs: runs.min(3),
            readers,
            churn_rates,
            pool_cap: u64::from(entries) + headroom,
        }
    }

    fn budget(&self) -> Duration {
        Duration::from_millis(self.millis_per_run)
    }
}

#[derive(Serialize)]
struct Report {
    bench: &'static str,
    plan: Plan,
    machine: Machine,
    /// Requested SMR mode → mode in effect.
    smr_modes: Vec<(&'static str, &'static str)>,
    schemes: Vec<&'static str>,
    /// Bytes of one table node (the `pending_bytes` unit).
    node_bytes: usize,
    section_cost: Vec<SectionRow>,
    read_only: Vec<ReadRow>,
    churn: Vec<ChurnRow>,
    stall: Vec<StallRow>,
    /// The long-running-reader and spread-free arms: every scheme with and
    /// without the long reader.
    long_reader: Vec<ArmRow>,
    targets: Targets,
}

#[derive(Serialize)]
struct SectionRow {
    scheme: &'static str,
    threads: usize,
    /// Enter+exit of an empty section, per thread.
    ns_per_section: f64,
}

#[derive(Serialize)]
struct ReadRow {
    scheme: &'static str,
    /// `own`: the scheme's own table. `shared`: the unprotected table's
    /// memory, looked up inside this scheme's section, so the only
    /// difference between schemes is the section (dashmap has none).
    table: &'static str,
    /// Distinct connections the readers look up: the whole table (memory
    /// bound), or `HOT_SET` of them (cache-resident, where the section's
    /// own cost shows).
    working_set: usize,
    readers: usize,
    lookups_per_s: f64,
    ns_per_lookup: f64,
    /// Over `none` at the same reader count.
    vs_unprotected: f64,
}

#[derive(Serialize, Default)]
struct LatencyNs {
    samples: u64,
    p50: Option<u64>,
    p99: Option<u64>,
    max: Option<u64>,
    /// `[quantile, ns]` at 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.
    cdf: Vec<[f64; 2]>,
}

impl LatencyNs {
    fn of(h: Option<&Histogram<u64>>) -> LatencyNs {
        match h {
            Some(h) if !h.is_empty() => LatencyNs {
                samples: h.len(),
                p50: Some(h.value_at_quantile(0.5)),
                p99: Some(h.value_at_quantile(0.99)),
                max: Some(h.max()),
                cdf: [0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0]
                    .map(|q| [q, h.value_at_quantile(q) as f64])
                    .to_vec(),
            },
            _ => LatencyNs::default(),
        }
    }
}

#[derive(Serialize)]
struct ChurnRow {
    scheme: &'static str,
    readers: usize,
    /// Target frees/s; `null` = flat out.
    target_frees_per_s: Option<f64>,
    lookups_per_s: f64,
    /// Inserts + removes per second.
    churn_ops_per_s: f64,
    /// The slowest and fastest of the runs (the two figures above are
    /// medians), so a ratio can be judged against the spread.
    lookups_per_s_range: [f64; 2],
    churn_ops_per_s_range: [f64; 2],
    frees: u64,
    /// Retire→reuse (pools) or retire→free (epoch); `null` quantiles for
    /// rwlock and dashmap, which free inside the remove.
    reuse_latency_ns: LatencyNs,
    peak_pending: u64,
    avg_pending: f64,
    peak_pending_bytes: u64,
    avg_pending_bytes: f64,
    advances_per_1000_frees: f64,
    /// membarrier(2) calls: the userspace xcall.
    xcalls_per_1000_frees: f64,
    /// `null` where the scheme does not expose them (epoch) or has none
    /// (the locks).
    grace_periods_per_1000_frees: Option<f64>,
    /// Churner thread CPU time per free (one insert + one remove + the
    /// scheme's reclamation work).
    write_cpu_ns_per_free: f64,
    write_wall_ns_per_free: f64,
    exhausted: u64,
    reuse_violations: u64,
    /// The most objects pending, and pooled free, at the start of any of
    /// the runs (after `barrier()` and `reclaim()`): pending should be ~0.
    start_pending_max: u64,
    start_cached_max: u64,
}

/// Operation latency quantiles, ns.
#[derive(Serialize, Default)]
struct OpLatencyNs {
    samples: u64,
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

impl OpLatencyNs {
    fn of(h: &Histogram<u64>) -> OpLatencyNs {
        if h.is_empty() {
            return OpLatencyNs::default();
        }
        OpLatencyNs {
            samples: h.len(),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

#[derive(Serialize)]
struct ArmRow {
    scheme: &'static str,
    /// Length of each long section; `null`: no long reader (the baseline).
    long_reader_ms: Option<u64>,
    /// Long sections completed, over all runs.
    long_sections: u64,
    /// Medians over the runs (one reader, one churner flat out).
    lookups_per_s: f64,
    churn_ops_per_s: f64,
    churn_ops_per_s_range: [f64; 2],
    /// Pending objects sampled every ms: the highest sample of any run, and
    /// the mean of the runs' means.
    peak_pending: u64,
    avg_pending: f64,
    peak_pending_bytes: u64,
    avg_pending_bytes: f64,
    start_pending_max: u64,
    start_cached_max: u64,
    /// Every churn step (insert + remove), all runs.
    churn_step_ns: OpLatencyNs,
    /// One lookup in `LOOKUP_SAMPLE`, all runs.
    lookup_ns: OpLatencyNs,
    exhausted: u64,
    reuse_violations: u64,
}

#[derive(Serialize)]
struct StallRow {
    scheme: &'static str,
    stall_ms: u64,
    /// `[start, end]` of the stall, ms from the run's start.
    stall_window_ms: [f64; 2],
    /// `null` when unbounded.
    pool_cap: Option<u64>,
    peak_pending: u64,
    peak_pending_bytes: u64,
    /// Pending when the run started (after `barrier()` and `reclaim()`).
    start_pending: u64,
    /// Pending when the run ended (after the reader left).
    final_pending: u64,
    /// Inserts and removes that succeeded per second, before the reader
    /// stalled and while it slept.
    churn_ops_per_s_before: f64,
    churn_ops_per_s_during: f64,
    writer_step_p99_us: f64,
    writer_step_max_us: f64,
    exhausted: u64,
    /// The stalled reader's node still held its connection when it woke
    /// (`null` if it found nothing to hold).
    held_node_intact: Option<bool>,
    reuse_violations: u64,
    /// `[ms, pending objects]` samples.
    series: Vec<[f64; 2]>,
}

#[derive(Serialize)]
struct Targets {
    /// ns/lookup of each SMR mode over `none`, read-only, as
    /// `["<mode>:<table>@<working set>", readers, ratio]` (target ≤ 1.2).
    /// `smr_read_within_1_2` judges smr-lazy, the mode the stack's lookups
    /// use, in the shared table over all entries; `..._hot` over the hot
    /// set.
    smr_read_over_unprotected: Vec<(String, usize, f64)>,
    smr_read_within_1_2: bool,
    smr_read_within_1_2_hot: bool,
    /// Naive pserialize's grace periods per 1,000 frees over smr-lazy's at
    /// saturation, per reader count (target ≥ 10).
    pserialize_over_lazy_grace_periods: Vec<(usize, Option<f64>)>,
    lazy_10x_fewer_grace_periods: bool,
    /// smr churn ops/s over rwlock's at saturation with 2 readers
    /// (target ≥ 2); `null` if 2 readers were not measured.
    smr_churn_over_rwlock_2_readers: Option<f64>,
    smr_churn_2x_rwlock: bool,
    /// The SMR schemes' peak pending under the stalled reader stayed under
    /// the pool cap.
    smr_stall_bounded_by_cap: bool,
}

fn all_kinds() -> Vec<Kind> {
    let mut k = Kind::STUDIED.to_vec();
    k.push(Kind::None);
    k
}

struct Subjects {
    tables: Vec<(Kind, Box<dyn Subject>)>,
    tuples: Vec<FourTuple>,
}

impl Subjects {
    fn new(plan: &Plan) -> Subjects {
        let hash = FlowHash::random();
        let sizing = Sizing {
            entries: plan.entries as usize,
            pool_cap: plan.pool_cap as usize,
        };
        let tuples: Vec<FourTuple> = (0..plan.entries).map(tuple).collect();
        let tables = all_kinds()
            .into_iter()
            .chain([Kind::EpochSpread])
            .map(|k| {
                let t = scheme::build(k, sizing, &hash);
                for (i, tu) in tuples.iter().enumerate() {
                    assert!(t.insert(tu, i as u64), "{}: fill refused", k.name());
                }
                (k, t)
            })
            .collect();
        Subjects { tables, tuples }
    }

    fn get(&self, kind: Kind) -> &dyn Subject {
        &*self
            .tables
            .iter()
            .find(|(k, _)| *k == kind)
            .expect("every kind is built")
            .1
    }
}

fn median(xs: impl Iterator<Item = f64>) -> f64 {
    Summary::of(&xs.collect::<Vec<_>>()).median
}

fn spread(xs: impl Iterator<Item = f64>) -> [f64; 2] {
    let s = Summary::of(&xs.collect::<Vec<_>>());
    [s.min.round(), s.max.round()]
}

fn per_1000(x: u64, frees: u64) -> f64 {
    round(x as f64 * 1000.0 / frees.max(1) as f64)
}

pub(super) fn run(args: &ReclaimArgs) -> io::Result<()> {
    let plan = Plan::of(args);
    let budget = plan.budget();
    let subjects = Subjects::new(&plan);
    let node_bytes = std::mem::size_of::<table::Node>();

    // 1. The read section alone.
    let section_kinds: Vec<Kind> = all_kinds()
        .into_iter()
        .filter(|&k| subjects.get(k).empty_section())
        .collect();
    let run_args = report::RunArgs {
        json: args.json,
        threads: plan.readers.clone(),
        runs: plan.runs,
        millis_per_run: (plan.millis_per_run / 3).max(10),
    };
    let section_cost = report::interleave(&run_args, &section_kinds, |k, t, d| {
        let subject = subjects.get(k);
        harness::run(t, d, || {
            subject.empty_section();
        })
        .ns_per_op()
    })
    .into_iter()
    .map(|m| SectionRow {
        scheme: m.imp.name(),
        threads: m.threads,
        ns_per_section: round(m.summary.median),
    })
    .collect();

    // 2. Read-only lookups. Own tables over the whole table; then the
    // unprotected table's memory read inside each scheme's section, over
    // the whole table and over a hot set. Whole-table reads are
    // memory-bound at 100k entries, hence noisy: twice the runs.
    let hot = HOT_SET.min(subjects.tuples.len());
    let n = subjects.tuples.len();
    let shared_kinds: Vec<Kind> = all_kinds()
        .into_iter()
        .filter(|&k| subjects.get(k).in_section(&|| true).is_some())
        .collect();
    let none = subjects.get(Kind::None);
    let mut read_only = Vec::new();
    for (table, set, runs, kinds) in [
        ("own", n, plan.runs * 2, all_kinds()),
        ("shared", n, plan.runs * 2, shared_kinds.clone()),
        ("shared", hot, plan.runs, shared_kinds),
    ] {
        let tuples = &subjects.tuples[..set];
        let mut read_args = run_args_with(&run_args, plan.millis_per_run);
        read_args.runs = runs;
        let measured = report::interleave(&read_args, &kinds, |k, r, d| {
            let subject = subjects.get(k);
            let load = Load {
                readers: r,
                churners: 0,
                rate: None,
            };
            let sleep = |_| thread::sleep(d);
            if table == "own" {
                churn::drive(load, tuples, |t| subject.contains(t), |_| {}, sleep)
            } else {
                let lookup = |t: &FourTuple| {
                    subject
                        .in_section(&|| none.contains(t))
                        .expect("only schemes with a section")
                };
                churn::drive(load, tuples, lookup, |_| {}, sleep)
            }
            .lookups_per_s
        });
        read_only.extend(measured.iter().map(|m| {
            let base = report::baseline_median(&measured, Kind::None, m.threads);
            ReadRow {
                scheme: m.imp.name(),
                table,
                working_set: set,
                readers: m.threads,
                lookups_per_s: m.summary.median.round(),
                ns_per_lookup: round(m.threads as f64 * 1e9 / m.summary.median),
                vs_unprotected: round(base / m.summary.median),
            }
        }));
    }

    // 3. The churn sweep, interleaved run by run.
    let configs: Vec<(Kind, usize, Option<f64>)> = plan
        .readers
        .iter()
        .flat_map(|&r| {
            plan.churn_rates
                .iter()
                .flat_map(move |&rate| Kind::STUDIED.map(|k| (k, r, rate)))
        })
        .collect();
    let mut base = plan.entries.saturating_add(1 << 20);
    let mut samples: Vec<Vec<ChurnSample>> = configs.iter().map(|_| Vec::new()).collect();
    let mut latencies: Vec<Option<Histogram<u64>>> = configs.iter().map(|_| None).collect();
    for _ in 0..plan.runs {
        for (i, &(k, r, rate)) in configs.iter().enumerate() {
            let s = churn_run(&subjects, k, r, rate, budget, &mut base, &mut latencies[i]);
            samples[i].push(s);
        }
    }
    let churn: Vec<ChurnRow> = configs
        .iter()
        .zip(&samples)
        .zip(&latencies)
        .map(|((&(k, r, rate), s), lat)| {
            let frees: u64 = s.iter().map(|x| x.frees).sum();
            let sum = |f: fn(&ChurnSample) -> u64| s.iter().map(f).sum::<u64>();
            let peak = s.iter().map(|x| x.peak_pending).max().unwrap_or(0);
            let avg = s.iter().map(|x| x.avg_pending).sum::<f64>() / s.len() as f64;
            ChurnRow {
                scheme: k.name(),
                readers: r,
                target_frees_per_s: rate,
                lookups_per_s: median(s.iter().map(|x| x.lookups_per_s)).round(),
                churn_ops_per_s: median(s.iter().map(|x| x.churn_ops_per_s)).round(),
                lookups_per_s_range: spread(s.iter().map(|x| x.lookups_per_s)),
                churn_ops_per_s_range: spread(s.iter().map(|x| x.churn_ops_per_s)),
                frees,
                reuse_latency_ns: LatencyNs::of(lat.as_ref()),
                peak_pending: peak,
                avg_pending: round(avg),
                peak_pending_bytes: peak * node_bytes as u64,
                avg_pending_bytes: round(avg * node_bytes as f64),
                advances_per_1000_frees: per_1000(sum(|x| x.advances), frees),
                xcalls_per_1000_frees: per_1000(sum(|x| x.membarriers), frees),
                grace_periods_per_1000_frees: s
                    .iter()
                    .map(|x| x.grace_periods)
                    .sum::<Option<u64>>()
                    .map(|g| per_1000(g, frees)),
                write_cpu_ns_per_free: round(sum(|x| x.cpu_ns) as f64 / frees.max(1) as f64),
                write_wall_ns_per_free: round(sum(|x| x.wall_ns) as f64 / frees.max(1) as f64),
                exhausted: sum(|x| x.exhausted),
                reuse_violations: sum(|x| x.violations),
                start_pending_max: s.iter().map(|x| x.start_pending).max().unwrap_or(0),
                start_cached_max: s.iter().map(|x| x.start_cached).max().unwrap_or(0),
            }
        })
        .collect();

    // 4. The stalled reader.
    let stall_d = Duration::from_millis(plan.stall_ms);
    let stall: Vec<StallRow> = Kind::STUDIED
        .iter()
        .map(|&k| stall_run(&subjects, k, stall_d, &mut base))
        .collect();

    // 5. The long-running reader and spread frees, interleaved run by run.
    let long_reader = arm_rows(&subjects, &plan, &mut base, node_bytes as u64);

    let targets = targets(&read_only, &churn, &stall, &plan);
    let report = Report {
        bench: "reclaim",
        machine: Machine::this(),
        smr_modes: scheme::smr_modes().to_vec(),
        schemes: Kind::STUDIED.iter().map(|k| k.name()).collect(),
        node_bytes,
        section_cost,
        read_only,
        churn,
        stall,
        long_reader,
        targets,
        plan,
    };
    if let Some(dir) = &args.plots {
        plot::write_all(dir, &report).map_err(|e| io::Error::other(format!("plots: {e}")))?;
    }
    report::emit(args.json, &report, text::write_tables)
}

/// The schemes of the arms: every studied one, and epoch with spread frees.
fn arm_kinds() -> Vec<Kind> {
    let mut k = Kind::STUDIED.to_vec();
    k.insert(
        k.iter()
            .position(|&k| k == Kind::Epoch)
            .expect("epoch is studied")
            + 1,
        Kind::EpochSpread,
    );
    k
}

fn arm_rows(subjects: &Subjects, plan: &Plan, base: &mut u32, node_bytes: u64) -> Vec<ArmRow> {
    let hold = Duration::from_millis(plan.long_reader_ms);
    let budget = Duration::from_millis(plan.arm_ms);
    let configs: Vec<(Kind, Option<Duration>)> = [None, Some(hold)]
        .into_iter()
        .flat_map(|h| arm_kinds().into_iter().map(move |k| (k, h)))
        .collect();
    let mut samples: Vec<Vec<ArmSample>> = configs.iter().map(|_| Vec::new()).collect();
    for _ in 0..plan.arm_runs {
        for (i, &(k, h)) in configs.iter().enumerate() {
            samples[i].push(arm_run(subjects, k, h, budget, base));
        }
    }
    configs
        .iter()
        .zip(&samples)
        .map(|(&(k, h), s)| {
            let merged = |f: fn(&ArmSample) -> &Histogram<u64>| {
                let mut acc = table::new_histogram();
                for x in s {
                    acc.add(f(x)).expect("same histogram shape");
                }
                OpLatencyNs::of(&acc)
            };
            let peak = s.iter().map(|x| x.peak_pending).max().unwrap_or(0);
            let avg = s.iter().map(|x| x.avg_pending).sum::<f64>() / s.len().max(1) as f64;
            ArmRow {
                scheme: k.name(),
                long_reader_ms: h.map(|d| d.as_millis() as u64),
                long_sections: s.iter().map(|x| x.long_sections).sum(),
                lookups_per_s: median(s.iter().map(|x| x.lookups_per_s)).round(),
                churn_ops_per_s: median(s.iter().map(|x| x.churn_ops_per_s)).round(),
                churn_ops_per_s_range: spread(s.iter().map(|x| x.churn_ops_per_s)),
                peak_pending: peak,
                avg_pending: round(avg),
                peak_pending_bytes: peak * node_bytes,
                avg_pending_bytes: round(avg * node_bytes as f64),
                start_pending_max: s.iter().map(|x| x.start_pending).max().unwrap_or(0),
                start_cached_max: s.iter().map(|x| x.start_cached).max().unwrap_or(0),
                churn_step_ns: merged(|x| &x.step_ns),
                lookup_ns: merged(|x| &x.lookup_ns),
                exhausted: s.iter().map(|x| x.exhausted).sum(),
                reuse_violations: s.iter().map(|x| x.violations).sum(),
            }
        })
        .collect()
}

fn run_args_with(a: &report::RunArgs, millis: u64) -> report::RunArgs {
    report::RunArgs {
        json: a.json,
        threads: a.threads.clone(),
        runs: a.runs,
        millis_per_run: millis,
    }
}

fn targets(read: &[ReadRow], churn: &[ChurnRow], stall: &[StallRow], plan: &Plan) -> Targets {
    let smr_kinds = ["smr", "smr-lazy", "smr-deferred"];
    let smr_read_over_unprotected: Vec<(String, usize, f64)> = read
        .iter()
        .filter(|r| smr_kinds.contains(&r.scheme))
        .map(|r| {
            (
                format!("{}:{}@{}", r.scheme, r.table, r.working_set),
                r.readers,
                r.vs_unprotected,
            )
        })
        .collect();
    let sat = |scheme: &str, readers: usize| {
        churn
            .iter()
            .find(|c| c.scheme == scheme && c.readers == readers && c.target_frees_per_s.is_none())
    };
    let gp: Vec<(usize, Option<f64>)> = plan
        .readers
        .iter()
        .map(|&r| {
            let ps = sat("pserialize", r).and_then(|c| c.grace_periods_per_1000_frees);
            let lazy = sat("smr-lazy", r).and_then(|c| c.grace_periods_per_1000_frees);
            (r, ps.zip(lazy).map(|(p, l)| round(p / l.max(1e-9))))
        })
        .collect();
    let churn2 = sat("smr", 2)
        .zip(sat("rwlock", 2))
        .map(|(s, r)| round(s.churn_ops_per_s / r.churn_ops_per_s.max(1.0)));
    Targets {
        smr_read_within_1_2: read
            .iter()
            .filter(|r| r.scheme == "smr-lazy" && r.table == "shared" && r.working_set != HOT_SET)
            .all(|r| r.vs_unprotected <= 1.2),
        smr_read_within_1_2_hot: read
            .iter()
            .filter(|r| r.scheme == "smr-lazy" && r.table == "shared" && r.working_set == HOT_SET)
            .all(|r| r.vs_unprotected <= 1.2),
        smr_read_over_unprotected,
        lazy_10x_fewer_grace_periods: gp.iter().all(|(_, x)| x.is_some_and(|x| x >= 10.0)),
        pserialize_over_lazy_grace_periods: gp,
        smr_churn_2x_rwlock: churn2.is_some_and(|x| x >= 2.0),
        smr_churn_over_rwlock_2_readers: churn2,
        smr_stall_bounded_by_cap: stall
            .iter()
            .filter(|s| s.scheme.starts_with("smr"))
            .all(|s| s.pool_cap.is_some_and(|c| s.peak_pending <= c)),
    }
}
