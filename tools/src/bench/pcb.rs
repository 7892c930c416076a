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
    /// "lookups_per_s":..,"churn_ops_per_s":..,"ns_per_lookup":..}],
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    Smr,
    DashMap,
    RwLock,
    Papaya,
    Unsync,
    /// The SMR table while a churner thread resizes it without pause
    /// (between its start size and four times that, one step per call).
    SmrResizing,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Smr => "smr",
            Impl::DashMap => "dashmap",
            Impl::RwLock => "rwlock",
            Impl::Papaya => "papaya",
            Impl::Unsync => "hashmap-unsync",
            Impl::SmrResizing => "smr-resizing",
        }
    }
}

/// (impl, readers, churners)
const CONFIGS: [(Impl, usize, usize); 15] = [
    (Impl::Smr, 1, 0),
    (Impl::DashMap, 1, 0),
    (Impl::RwLock, 1, 0),
    (Impl::Papaya, 1, 0),
    (Impl::Unsync, 1, 0),
    (Impl::Smr, 2, 0),
    (Impl::DashMap, 2, 0),
    (Impl::RwLock, 2, 0),
    (Impl::Papaya, 2, 0),
    (Impl::Unsync, 2, 0),
    (Impl::Smr, 1, 1),
    (Impl::DashMap, 1, 1),
    (Impl::RwLock, 1, 1),
    (Impl::Papaya, 1, 1),
    (Impl::SmrResizing, 1, 1),
];

struct Subjects {
    smr: Table<u64>,
    dashmap: DashMapTable<u64>,
    rwlock: RwLockTable<u64>,
    papaya: PapayaTable<u64>,
    unsync: HashMap<Key, u64, FlowBuildHasher>,
    tuples: Vec<FourTuple>,
}

impl Subjects {
    fn new(entries: u32) -> Subjects {
        let hash = FlowHash::random();
        let n = entries as usize;
        let s = Subjects {
            smr: Table::with_config(Arc::new(Domain::new(Mode::Lazy)), {
                let mut c = pcb::TableConfig::new(n);
                c.hash = Some(hash.clone());
                c
            }),
            dashmap: DashMapTable::new(n, hash.clone()),
            rwlock: RwLockTable::new(n, hash.clone()),
            papaya: PapayaTable::new(n, hash.clone()),
            unsync: HashMap::with_capacity_and_hasher(n, FlowBuildHasher(hash)),
            tuples: (0..entries).map(tuple).collect(),
        };
        let mut unsync = s.unsync;
        for (i, t) in s.tuples.iter().enumerate() {
            let v = i as u64;
            s.smr.insert(t, v).expect("fresh tuple");
            ConnTable::insert(&s.dashmap, t, v).expect("fresh tuple");
            ConnTable::insert(&s.rwlock, t, v).expect("fresh tuple");
            ConnTable::insert(&s.papaya, t, v).expect("fresh tuple");
            unsync.insert(Key::from(t), v);
        }
        Subjects { unsync, ..s }
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
        }
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
}

#[derive(Serialize)]
struct Memory {
    /// Bucket array and count stripes over entries, plus the chain link.
    smr_table_bytes_per_entry: f64,
    buckets: usize,
    /// The PCB body (`Pcb<u64>`), not counted above.
    pcb_bytes: usize,
}

#[derive(Serialize)]
struct Ratios {
    /// Under churn: smr lookups/s over dashmap's (target ≥ 2).
    churn_lookups_smr_over_dashmap: f64,
    /// Under churn: smr churn ops/s over dashmap's (target ≥ 1).
    churn_ops_smr_over_dashmap: f64,
    /// Read-only, 1 reader: smr over hashmap-unsync (target ≥ 0.9).
    read_smr_over_unsync_1: f64,
    /// Read-only, 2 readers.
    read_smr_over_unsync_2: f64,
    /// 1 reader while the table resizes without pause, over the same reader
    /// on the steady table (target ≥ 0.8).
    resizing_lookups_over_steady: f64,
}

pub(super) fn run(args: &PcbArgs) -> io::Result<()> {
    let subjects = Subjects::new(args.entries);
    let budget = Duration::from_millis(args.millis_per_run);
    let mut samples = vec![Vec::new(); CONFIGS.len()];
    // Churn keys start above the table's and move on every run.
    let mut base = args.entries.saturating_add(1 << 20);
    for _ in 0..args.runs {
        for (&(imp, r, c), s) in CONFIGS.iter().zip(&mut samples) {
            let sample = subjects.measure(imp, r, c, budget, base);
            subjects.cleanup(base, sample.churn_steps);
            base = base.wrapping_add(sample.churn_steps + CHURN_WINDOW);
            s.push(sample);
        }
    }
    let results: Vec<Row> = CONFIGS
        .iter()
        .zip(&samples)
        .map(|(&(imp, readers, churners), s)| {
            let lookups =
                Summary::of(&s.iter().map(|x| x.lookups_per_s).collect::<Vec<_>>()).median;
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
            }
        })
        .collect();
    let find = |imp: Impl, r: usize, c: usize| {
        results
            .iter()
            .find(|x| x.imp == imp.name() && x.readers == r && x.churners == c)
            .expect("every configuration is measured")
    };
    let ratio = |a: f64, b: f64| round(a / b);
    let ratios = Ratios {
        churn_lookups_smr_over_dashmap: ratio(
            find(Impl::Smr, 1, 1).lookups_per_s,
            find(Impl::DashMap, 1, 1).lookups_per_s,
        ),
        churn_ops_smr_over_dashmap: ratio(
            find(Impl::Smr, 1, 1).churn_ops_per_s,
            find(Impl::DashMap, 1, 1).churn_ops_per_s,
        ),
        read_smr_over_unsync_1: ratio(
            find(Impl::Smr, 1, 0).lookups_per_s,
            find(Impl::Unsync, 1, 0).lookups_per_s,
        ),
        read_smr_over_unsync_2: ratio(
            find(Impl::Smr, 2, 0).lookups_per_s,
            find(Impl::Unsync, 2, 0).lookups_per_s,
        ),
        resizing_lookups_over_steady: ratio(
            find(Impl::SmrResizing, 1, 1).lookups_per_s,
            find(Impl::Smr, 1, 0).lookups_per_s,
        ),
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
        "{:<15} {:>7} {:>8} {:>14} {:>14} {:>9}",
        "impl", "readers", "churners", "lookups/s", "churn ops/s", "ns/lookup"
    )?;
    for r in &report.results {
        writeln!(
            out,
            "{:<15} {:>7} {:>8} {:>14.0} {:>14.0} {:>9.2}",
            r.imp, r.readers, r.churners, r.lookups_per_s, r.churn_ops_per_s, r.ns_per_lookup
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
