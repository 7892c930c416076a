//! `smrnet bench pcb`: connection-table lookups, read-only and under churn,
//! for the SMR table and the baseline tables, all with the same keyed hash,
//! so every ratio is about synchronisation.
//!
//! Each implementation's table is filled once with `--entries` connections;
//! readers look up uniformly random present tuples (random hits); a churner
//! inserts a fresh connection and removes the one it inserted 64 steps
//! earlier, so the table size stays put. Configurations are interleaved run
//! by run, and the median run is reported.
//!
//! Two unsynchronised hashbrown baselines: `hashmap-unsync` stores the key
//! and a `u64` inline in the table, so a hit reads a control byte and one
//! slot and never touches a connection; `hashmap-unsync-pcb` stores a
//! pointer to a boxed connection block (its key and state, a PCB-sized
//! allocation) and a hit compares the key stored there, which is what the
//! SMR table's lookup does and what a stack that goes on to use the
//! connection pays anyway. The first is the physical limit for a map of
//! keys; the second is the like-for-like limit for a table of connections.
//!
//! Every row also reports the sampled lookup latency (p50, p99; one lookup
//! in 64 timed on its own) and the lookups of present tuples that missed,
//! which must be zero in every row (resizing included).
//!
//! Two layouts of the SMR table, in the same run: `smr` (bucket heads carry
//! their chain's tag summary, the default) and `smr-plain` (no summary:
//! every lookup walks its chain). The `-absent` rows look up tuples that are
//! never in the table (a new connection's first segment does this), where
//! the summary lets a lookup stop at the bucket word; their miss count is
//! the absent tuples that were found (also zero).
//!
//! `--only IMPL` runs one implementation's rows, so that a whole-process
//! counter (`perf stat`, `valgrind --tool=cachegrind`) sees that table
//! alone; the ratios that need a missing row are then null.
//!
//! The SMR table's domain is lazy (fence-free enter; writers pay with an
//! amortised membarrier), the mode a stack whose workers look up on every
//! segment would choose: the default mode's fenced enter is a full barrier
//! per lookup, which stops the CPU from overlapping one lookup's cache misses
//! with the next. `smr_mode` in the report says what the kernel allowed.

use super::churn::{self, CHURN_WINDOW, Load, Sample, tuple};
use super::harness::Summary;
use super::report::{self, Machine, round};
use pcb::{
    ConnTable, DashMapTable, FlowBuildHasher, FlowHash, FourTuple, Key, PapayaTable, RwLockTable,
    Table,
};
use serde::Serialize;
use smr::{Domain, Mode};
use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Lookup throughput of connection tables, read-only and under churn.
///
/// `smr-resizing`: the SMR table's reader while the churner thread resizes
/// the table without pause (its churn ops/s are resize steps/s).
///
/// Reports lookups/s summed over reader threads and churn ops/s (one insert
/// or one remove is one op) for smr, dashmap, rwlock (std RwLock<HashMap>),
/// papaya, and hashmap-unsync (std HashMap without any synchronisation,
/// read-only: the physical limit). Also the SMR table's memory per entry
/// beyond the PCB body.
#[derive(Debug, clap::Args)]
pub struct PcbArgs {
    /// Print exactly one JSON object on stdout instead of a table.
    ///
    /// `{"bench":"pcb","entries":N,"runs":K,"millis_per_run":MS,
    /// "results":[{"impl":..,"entries":N,"readers":R,"churners":C,
    /// "lookups_per_s":..,"churn_ops_per_s":..,"ns_per_lookup":..,
    /// "lookup_p50_ns":..,"lookup_p99_ns":..,"lookup_misses":..,"lookups":..}],
    /// "memory":{..},"ratios":{..}}`
    #[arg(long)]
    json: bool,

    /// Connections in every table.
    #[arg(long, value_name = "N", default_value_t = 100_000,
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    entries: u32,

    /// Timed runs of every configuration; the median is reported.
    #[arg(long, value_name = "K", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    runs: u32,

    /// Length of one timed run, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    millis_per_run: u64,

    /// Run only this implementation's rows (smr, smr-plain, dashmap,
    /// rwlock, papaya, hashmap-unsync, hashmap-unsync-pcb, smr-resizing,
    /// smr-absent, smr-plain-absent, hashmap-unsync-pcb-absent); repeatable.
    #[arg(long, value_name = "IMPL", value_parser = parse_impl)]
    only: Vec<Impl>,

    /// Run only the rows with one reader and no churner (with `--only`, a
    /// whole-process counter then sees one table's lookups alone).
    #[arg(long)]
    one_reader: bool,
}

fn parse_impl(s: &str) -> Result<Impl, String> {
    Impl::ALL
        .into_iter()
        .find(|i| i.name() == s)
        .ok_or_else(|| {
            let names: Vec<_> = Impl::ALL.iter().map(|i| i.name()).collect();
            format!("unknown implementation {s:?}: one of {}", names.join(", "))
        })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    Smr,
    /// The SMR table with `Layout::Plain` (no tag summary in the heads).
    SmrPlain,
    DashMap,
    RwLock,
    Papaya,
    Unsync,
    /// std HashMap from key to a boxed connection block, unsynchronised,
    /// read-only; a hit reads the block's key.
    UnsyncPcb,
    /// The SMR table while a churner thread resizes it without pause
    /// (between its start size and four times that, one step per call).
    SmrResizing,
    /// Lookups of tuples never in the table, for smr, smr-plain and
    /// hashmap-unsync-pcb.
    SmrAbsent,
    SmrPlainAbsent,
    UnsyncPcbAbsent,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Smr => "smr",
            Impl::SmrPlain => "smr-plain",
            Impl::DashMap => "dashmap",
            Impl::RwLock => "rwlock",
            Impl::Papaya => "papaya",
            Impl::Unsync => "hashmap-unsync",
            Impl::UnsyncPcb => "hashmap-unsync-pcb",
            Impl::SmrResizing => "smr-resizing",
            Impl::SmrAbsent => "smr-absent",
            Impl::SmrPlainAbsent => "smr-plain-absent",
            Impl::UnsyncPcbAbsent => "hashmap-unsync-pcb-absent",
        }
    }

    const ALL: [Impl; 11] = [
        Impl::Smr,
        Impl::SmrPlain,
        Impl::DashMap,
        Impl::RwLock,
        Impl::Papaya,
        Impl::Unsync,
        Impl::UnsyncPcb,
        Impl::SmrResizing,
        Impl::SmrAbsent,
        Impl::SmrPlainAbsent,
        Impl::UnsyncPcbAbsent,
    ];
}

/// The benchmark's absent tuple `i`: never inserted (its local address is
/// one no table tuple, churn tuple included, uses).
fn absent_tuple(i: u32) -> FourTuple {
    let [a, b, c, d] = i.to_be_bytes();
    FourTuple::v4([10, a, 0, 2], 443, [172, b, c, d], 1024 + (i % 4096) as u16)
}

/// The `hashmap-unsync-pcb` baseline's connection block: the key and the
/// state, padded to the SMR table's PCB size class (its key sits in the
/// first line, as the SMR PCB's does).
#[repr(C, align(64))]
struct BoxedPcb {
    key: Key,
    conn: u64,
    _rest: [u64; 8],
}

/// (impl, readers, churners)
const CONFIGS: [(Impl, usize, usize); 23] = [
    (Impl::Smr, 1, 0),
    (Impl::SmrPlain, 1, 0),
    (Impl::DashMap, 1, 0),
    (Impl::RwLock, 1, 0),
    (Impl::Papaya, 1, 0),
    (Impl::Unsync, 1, 0),
    (Impl::UnsyncPcb, 1, 0),
    (Impl::Smr, 2, 0),
    (Impl::SmrPlain, 2, 0),
    (Impl::DashMap, 2, 0),
    (Impl::RwLock, 2, 0),
    (Impl::Papaya, 2, 0),
    (Impl::Unsync, 2, 0),
    (Impl::UnsyncPcb, 2, 0),
    (Impl::Smr, 1, 1),
    (Impl::SmrPlain, 1, 1),
    (Impl::DashMap, 1, 1),
    (Impl::RwLock, 1, 1),
    (Impl::Papaya, 1, 1),
    (Impl::SmrResizing, 1, 1),
    (Impl::SmrAbsent, 1, 0),
    (Impl::SmrPlainAbsent, 1, 0),
    (Impl::UnsyncPcbAbsent, 1, 0),
];

struct Subjects {
    smr: Table<u64>,
    smr_plain: Table<u64>,
    dashmap: DashMapTable<u64>,
    rwlock: RwLockTable<u64>,
    papaya: PapayaTable<u64>,
    unsync: HashMap<Key, u64, FlowBuildHasher>,
    unsync_pcb: HashMap<Key, Box<BoxedPcb>, FlowBuildHasher>,
    tuples: Vec<FourTuple>,
    absent: Vec<FourTuple>,
}

impl Subjects {
    fn new(entries: u32) -> Subjects {
        let hash = FlowHash::random();
        let n = entries as usize;
        let smr = |layout| {
            Table::with_config(Arc::new(Domain::new(Mode::Lazy)), {
                let mut c = pcb::TableConfig::new(n);
                c.hash = Some(hash.clone());
                c.layout = layout;
                c
            })
        };
        let s = Subjects {
            smr: smr(pcb::Layout::Summary),
            smr_plain: smr(pcb::Layout::Plain),
            dashmap: DashMapTable::new(n, hash.clone()),
            rwlock: RwLockTable::new(n, hash.clone()),
            papaya: PapayaTable::new(n, hash.clone()),
            unsync: HashMap::with_capacity_and_hasher(n, FlowBuildHasher(hash.clone())),
            unsync_pcb: HashMap::with_capacity_and_hasher(n, FlowBuildHasher(hash)),
            tuples: (0..entries).map(tuple).collect(),
            absent: (0..entries).map(absent_tuple).collect(),
        };
        let (mut unsync, mut unsync_pcb) = (s.unsync, s.unsync_pcb);
        for (i, t) in s.tuples.iter().enumerate() {
            let v = i as u64;
            s.smr.insert(t, v).expect("fresh tuple");
            s.smr_plain.insert(t, v).expect("fresh tuple");
            ConnTable::insert(&s.dashmap, t, v).expect("fresh tuple");
            ConnTable::insert(&s.rwlock, t, v).expect("fresh tuple");
            ConnTable::insert(&s.papaya, t, v).expect("fresh tuple");
            unsync.insert(Key::from(t), v);
            let key = Key::from(t);
            unsync_pcb.insert(
                key,
                Box::new(BoxedPcb {
                    key,
                    conn: v,
                    _rest: [0; 8],
                }),
            );
        }
        Subjects {
            unsync,
            unsync_pcb,
            ..s
        }
    }

    fn measure(
        &self,
        imp: Impl,
        readers: usize,
        churners: usize,
        budget: Duration,
        base: u32,
    ) -> Sample {
        match imp {
            Impl::Smr => self.run(&self.smr, readers, churners, budget, base),
            Impl::SmrPlain => self.run(&self.smr_plain, readers, churners, budget, base),
            Impl::SmrAbsent => self.absent(|t| self.smr.contains(t), readers, budget),
            Impl::SmrPlainAbsent => self.absent(|t| self.smr_plain.contains(t), readers, budget),
            Impl::UnsyncPcbAbsent => {
                let map = &self.unsync_pcb;
                self.absent(|t| map.contains_key(&Key::from(t)), readers, budget)
            }
            Impl::DashMap => self.run(&self.dashmap, readers, churners, budget, base),
            Impl::RwLock => self.run(&self.rwlock, readers, churners, budget, base),
            Impl::Papaya => self.run(&self.papaya, readers, churners, budget, base),
            Impl::SmrResizing => {
                let (table, small) = (&self.smr, self.smr.buckets());
                let mut grow = true;
                let sample = timed(
                    readers,
                    churners,
                    budget,
                    &self.tuples,
                    |t| table.contains(t),
                    |_: u32| match table.resize_step() {
                        pcb::ResizeStep::Idle => {
                            table.resize_to(if grow { small * 4 } else { small });
                            grow = !grow;
                        }
                        pcb::ResizeStep::Waiting => thread::yield_now(),
                        _ => {}
                    },
                );
                self.settle(small);
                sample
            }
            Impl::Unsync => {
                assert_eq!(churners, 0, "hashmap-unsync is read-only");
                let map = &self.unsync;
                timed(
                    readers,
                    0,
                    budget,
                    &self.tuples,
                    |t| map.contains_key(&Key::from(t)),
                    |_: u32| {},
                )
            }
            Impl::UnsyncPcb => {
                assert_eq!(churners, 0, "hashmap-unsync-pcb is read-only");
                let map = &self.unsync_pcb;
                timed(
                    readers,
                    0,
                    budget,
                    &self.tuples,
                    |t| {
                        let key = Key::from(t);
                        map.get(&key).is_some_and(|b| b.key == key)
                    },
                    |_: u32| {},
                )
            }
        }
    }

    /// Read-only lookups of absent tuples: a "hit" of the run is a lookup
    /// that rightly found nothing.
    fn absent(
        &self,
        contains: impl Fn(&FourTuple) -> bool + Sync,
        readers: usize,
        budget: Duration,
    ) -> Sample {
        timed(
            readers,
            0,
            budget,
            &self.absent,
            |t| !contains(t),
            |_: u32| {},
        )
    }

    fn run<C: ConnTable<u64>>(
        &self,
        table: &C,
        readers: usize,
        churners: usize,
        budget: Duration,
        base: u32,
    ) -> Sample {
        timed(
            readers,
            churners,
            budget,
            &self.tuples,
            |t| table.contains(t),
            |k| {
                let k = base + k;
                table
                    .insert(&tuple(k), u64::from(k))
                    .expect("churn tuples are fresh");
                if let Some(old) = k.checked_sub(CHURN_WINDOW).filter(|&o| o >= base) {
                    assert!(table.remove(&tuple(old)), "churn tuple {old} vanished");
                }
            },
        )
    }

    /// Bring the SMR table back to `buckets` with no resize under way, so
    /// the other arms measure the table they always do. Bounded (2 s).
    fn settle(&self, buckets: usize) {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_secs(2) {
            match self.smr.resize_step() {
                pcb::ResizeStep::Idle if self.smr.buckets() == buckets => return,
                pcb::ResizeStep::Idle => {
                    self.smr.resize_to(buckets);
                }
                pcb::ResizeStep::Waiting | pcb::ResizeStep::Busy => {
                    thread::sleep(Duration::from_millis(1))
                }
                _ => {}
            }
        }
    }

    /// Remove what a churn run left behind.
    fn cleanup(&self, base: u32, inserted: u32) {
        for k in inserted.saturating_sub(CHURN_WINDOW)..inserted {
            let t = tuple(base + k);
            self.smr.remove(&t);
            self.smr_plain.remove(&t);
            ConnTable::remove(&self.dashmap, &t);
            ConnTable::remove(&self.rwlock, &t);
            ConnTable::remove(&self.papaya, &t);
        }
    }
}

/// The plain run: `churn::drive` for `budget`, at full churn speed.
fn timed(
    readers: usize,
    churners: usize,
    budget: Duration,
    tuples: &[FourTuple],
    lookup: impl Fn(&FourTuple) -> bool + Sync,
    churn: impl FnMut(u32) + Send,
) -> Sample {
    let load = Load {
        readers,
        churners,
        rate: None,
    };
    churn::drive(load, tuples, lookup, churn, |_| thread::sleep(budget))
}

#[derive(Serialize)]
struct Report {
    bench: &'static str,
    entries: u32,
    runs: u32,
    millis_per_run: u64,
    machine: Machine,
    /// The SMR domain's mode in effect (lazy falls back to default when the
    /// kernel refuses membarrier).
    smr_mode: &'static str,
    /// Resizes the SMR table completed over the whole bench (the
    /// `smr-resizing` arm's, and any the load triggered).
    smr_resizes: u64,
    results: Vec<Row>,
    memory: Memory,
    ratios: Ratios,
}

#[derive(Serialize)]
struct Row {
    #[serde(rename = "impl")]
    imp: &'static str,
    entries: u32,
    readers: usize,
    churners: usize,
    lookups_per_s: f64,
    churn_ops_per_s: f64,
    ns_per_lookup: f64,
    /// Sampled lookup latency (one lookup in 64 timed alone), median over
    /// runs of each run's percentile.
    lookup_p50_ns: f64,
    lookup_p99_ns: f64,
    /// Lookups of present tuples that found nothing, over all runs.
    lookup_misses: u64,
    /// Lookups done, over all runs.
    lookups: u64,
}

#[derive(Serialize)]
struct Memory {
    /// Bucket array and count stripes over entries, plus the chain link.
    smr_table_bytes_per_entry: f64,
    buckets: usize,
    /// The PCB body (`Pcb<u64>`), not counted above.
    pcb_bytes: usize,
}

/// Each is null when `--only` left out a row it needs.
#[derive(Serialize)]
struct Ratios {
    /// Under churn: smr lookups/s over dashmap's (target ≥ 2).
    churn_lookups_smr_over_dashmap: Option<f64>,
    /// Under churn: smr churn ops/s over dashmap's (target ≥ 1).
    churn_ops_smr_over_dashmap: Option<f64>,
    /// Read-only, 1 reader: smr over hashmap-unsync (target ≥ 0.9).
    read_smr_over_unsync_1: Option<f64>,
    /// Read-only, 2 readers.
    read_smr_over_unsync_2: Option<f64>,
    /// Read-only, 1 reader: smr over hashmap-unsync-pcb (the baseline that
    /// reads the connection block it finds, as smr does).
    read_smr_over_unsync_pcb_1: Option<f64>,
    /// Read-only, 2 readers.
    read_smr_over_unsync_pcb_2: Option<f64>,
    /// 1 reader while the table resizes without pause, over the same reader
    /// on the steady table (target ≥ 0.8).
    resizing_lookups_over_steady: Option<f64>,
    /// Sampled p99 lookup latency while resizing over the steady table's
    /// (target ≤ 2).
    resizing_p99_over_steady: Option<f64>,
    /// The same over the steady table with a churner beside the reader
    /// (the resizing arm also has a writer thread beside its reader).
    resizing_p99_over_churn: Option<f64>,
    /// Lookups of present tuples that missed while resizing, over all runs
    /// (must be 0).
    resizing_lookup_misses: Option<u64>,
    /// The tag-summary layout over the plain one: read-only lookups at 1
    /// and 2 readers, lookups and churn ops under churn, absent lookups.
    layout_read_smr_over_plain_1: Option<f64>,
    layout_read_smr_over_plain_2: Option<f64>,
    layout_churn_lookups_smr_over_plain: Option<f64>,
    layout_churn_ops_smr_over_plain: Option<f64>,
    layout_absent_smr_over_plain: Option<f64>,
    /// Absent lookups, smr over hashmap-unsync-pcb.
    absent_smr_over_unsync_pcb: Option<f64>,
    /// Wrong answers over every row and run (present tuples not found,
    /// absent ones found): must be 0.
    lookup_misses: u64,
}

pub(super) fn run(args: &PcbArgs) -> io::Result<()> {
    let subjects = Subjects::new(args.entries);
    let budget = Duration::from_millis(args.millis_per_run);
    let configs: Vec<(Impl, usize, usize)> = CONFIGS
        .into_iter()
        .filter(|(imp, _, _)| args.only.is_empty() || args.only.contains(imp))
        .filter(|&(_, r, c)| !args.one_reader || (r, c) == (1, 0))
        .collect();
    let mut samples = vec![Vec::new(); configs.len()];
    // Churn keys start above the table's and move on every run.
    let mut base = args.entries.saturating_add(1 << 20);
    for _ in 0..args.runs {
        for (&(imp, r, c), s) in configs.iter().zip(&mut samples) {
            let sample = subjects.measure(imp, r, c, budget, base);
            subjects.cleanup(base, sample.churn_steps);
            base = base.wrapping_add(sample.churn_steps + CHURN_WINDOW);
            s.push(sample);
        }
    }
    let results: Vec<Row> = configs
        .iter()
        .zip(&samples)
        .map(|(&(imp, readers, churners), s)| {
            let median =
                |f: fn(&Sample) -> f64| Summary::of(&s.iter().map(f).collect::<Vec<_>>()).median;
            let lookups = median(|x| x.lookups_per_s);
            Row {
                imp: imp.name(),
                entries: args.entries,
                readers,
                churners,
                lookups_per_s: lookups.round(),
                churn_ops_per_s: Summary::of(
                    &s.iter().map(|x| x.churn_ops_per_s).collect::<Vec<_>>(),
                )
                .median
                .round(),
                ns_per_lookup: ((readers as f64 * 1e9 / lookups) * 100.0).round() / 100.0,
                lookup_p50_ns: median(|x| x.lookup_p50_ns as f64),
                lookup_p99_ns: median(|x| x.lookup_p99_ns as f64),
                lookup_misses: s.iter().map(|x| x.lookup_misses).sum(),
                lookups: s.iter().map(|x| x.lookups).sum(),
            }
        })
        .collect();
    let find = |imp: Impl, r: usize, c: usize| {
        results
            .iter()
            .find(|x| x.imp == imp.name() && x.readers == r && x.churners == c)
    };
    // The ratio of `f` over rows a and b, when both were measured.
    let ratio = |a: (Impl, usize, usize), b: (Impl, usize, usize), f: fn(&Row) -> f64| {
        Some(round(f(find(a.0, a.1, a.2)?) / f(find(b.0, b.1, b.2)?)))
    };
    let lookups: fn(&Row) -> f64 = |r| r.lookups_per_s;
    let ops: fn(&Row) -> f64 = |r| r.churn_ops_per_s;
    let p99: fn(&Row) -> f64 = |r| r.lookup_p99_ns;
    let resizing = (Impl::SmrResizing, 1, 1);
    let ratios = Ratios {
        churn_lookups_smr_over_dashmap: ratio((Impl::Smr, 1, 1), (Impl::DashMap, 1, 1), lookups),
        churn_ops_smr_over_dashmap: ratio((Impl::Smr, 1, 1), (Impl::DashMap, 1, 1), ops),
        read_smr_over_unsync_1: ratio((Impl::Smr, 1, 0), (Impl::Unsync, 1, 0), lookups),
        read_smr_over_unsync_2: ratio((Impl::Smr, 2, 0), (Impl::Unsync, 2, 0), lookups),
        read_smr_over_unsync_pcb_1: ratio((Impl::Smr, 1, 0), (Impl::UnsyncPcb, 1, 0), lookups),
        read_smr_over_unsync_pcb_2: ratio((Impl::Smr, 2, 0), (Impl::UnsyncPcb, 2, 0), lookups),
        resizing_lookups_over_steady: ratio(resizing, (Impl::Smr, 1, 0), lookups),
        resizing_p99_over_steady: ratio(resizing, (Impl::Smr, 1, 0), p99),
        resizing_p99_over_churn: ratio(resizing, (Impl::Smr, 1, 1), p99),
        resizing_lookup_misses: find(resizing.0, resizing.1, resizing.2).map(|r| r.lookup_misses),
        layout_read_smr_over_plain_1: ratio((Impl::Smr, 1, 0), (Impl::SmrPlain, 1, 0), lookups),
        layout_read_smr_over_plain_2: ratio((Impl::Smr, 2, 0), (Impl::SmrPlain, 2, 0), lookups),
        layout_churn_lookups_smr_over_plain: ratio(
            (Impl::Smr, 1, 1),
            (Impl::SmrPlain, 1, 1),
            lookups,
        ),
        layout_churn_ops_smr_over_plain: ratio((Impl::Smr, 1, 1), (Impl::SmrPlain, 1, 1), ops),
        layout_absent_smr_over_plain: ratio(
            (Impl::SmrAbsent, 1, 0),
            (Impl::SmrPlainAbsent, 1, 0),
            lookups,
        ),
        absent_smr_over_unsync_pcb: ratio(
            (Impl::SmrAbsent, 1, 0),
            (Impl::UnsyncPcbAbsent, 1, 0),
            lookups,
        ),
        lookup_misses: results.iter().map(|r| r.lookup_misses).sum(),
    };
    let report = Report {
        bench: "pcb",
        entries: args.entries,
        runs: args.runs,
        millis_per_run: args.millis_per_run,
        machine: Machine::this(),
        smr_mode: subjects.smr.domain().mode().name(),
        smr_resizes: {
            let r = subjects.smr.resize_stats();
            r.grows + r.shrinks
        },
        memory: Memory {
            smr_table_bytes_per_entry: (subjects.smr.overhead_per_entry(args.entries as usize)
                * 100.0)
                .round()
                / 100.0,
            buckets: subjects.smr.buckets(),
            pcb_bytes: std::mem::size_of::<pcb::Pcb<u64>>(),
        },
        ratios,
        results,
    };
    report::emit(args.json, &report, write_table)
}

fn write_table(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    writeln!(
        out,
        "connection table, {} entries, random hits: median of {} runs x {} ms ({} cpus, smr {})",
        report.entries,
        report.runs,
        report.millis_per_run,
        report.machine.cpus(),
        report.smr_mode
    )?;
    writeln!(
        out,
        "{:<18} {:>7} {:>8} {:>14} {:>14} {:>9} {:>7} {:>7} {:>6}",
        "impl",
        "readers",
        "churners",
        "lookups/s",
        "churn ops/s",
        "ns/lookup",
        "p50 ns",
        "p99 ns",
        "misses"
    )?;
    for r in &report.results {
        writeln!(
            out,
            "{:<18} {:>7} {:>8} {:>14.0} {:>14.0} {:>9.2} {:>7.0} {:>7.0} {:>6}",
            r.imp,
            r.readers,
            r.churners,
            r.lookups_per_s,
            r.churn_ops_per_s,
            r.ns_per_lookup,
            r.lookup_p50_ns,
            r.lookup_p99_ns,
            r.lookup_misses
        )?;
    }
    let m = &report.memory;
    writeln!(
        out,
        "smr table overhead: {:.2} bytes/entry ({} buckets); PCB body {} bytes",
        m.smr_table_bytes_per_entry, m.buckets, m.pcb_bytes
    )?;
    writeln!(
        out,
        "{}",
        serde_json::to_string(&report.ratios).map_err(io::Error::other)?
    )
}
