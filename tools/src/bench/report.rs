//! What every micro-benchmark shares: its run-shape flags, the interleaved
//! side-by-side measurement loop, and the machine description in its report.

use super::harness::Summary;
use serde::Serialize;
use std::time::Duration;

/// How long and at which thread counts a benchmark runs, and how it prints.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    pub(crate) json: bool,

    /// Thread counts to measure at, comma-separated (each 1..=1024).
    #[arg(
        long,
        value_name = "N,M,...",
        value_delimiter = ',',
        default_value = "1,2",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024),
    )]
    pub(crate) threads: Vec<usize>,

    /// Timed runs of every implementation at every thread count; the median
    /// run is reported.
    #[arg(long, value_name = "K", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) runs: u32,

    /// Length of one timed run, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub(crate) millis_per_run: u64,
}

impl RunArgs {
    /// The thread counts, sorted and without repeats.
    pub(crate) fn thread_counts(&self) -> Vec<usize> {
        let mut t = self.threads.clone();
        t.sort_unstable();
        t.dedup();
        t
    }

    pub(crate) fn budget(&self) -> Duration {
        Duration::from_millis(self.millis_per_run)
    }
}

/// One configuration's summary over its runs.
pub(crate) struct Measured<I> {
    pub(crate) imp: I,
    pub(crate) threads: usize,
    pub(crate) summary: Summary,
}

/// Measure every implementation at every thread count, interleaved run by
/// run (run 1 of everything, then run 2 of everything, ...), so load from
/// elsewhere on the machine hits all of them alike and ratios are taken
/// between runs seconds apart.
pub(crate) fn interleave<I: Copy>(
    args: &RunArgs,
    impls: &[I],
    mut measure: impl FnMut(I, usize, Duration) -> f64,
) -> Vec<Measured<I>> {
    let configs: Vec<(usize, I)> = args
        .thread_counts()
        .into_iter()
        .flat_map(|t| impls.iter().map(move |&imp| (t, imp)))
        .collect();
    let mut samples = vec![Vec::with_capacity(args.runs as usize); configs.len()];
    for _ in 0..args.runs {
        for (&(t, imp), s) in configs.iter().zip(&mut samples) {
            s.push(measure(imp, t, args.budget()));
        }
    }
    configs
        .into_iter()
        .zip(samples)
        .map(|((threads, imp), s)| Measured {
            imp,
            threads,
            summary: Summary::of(&s),
        })
        .collect()
}

/// The median of `baseline` at `threads`.
pub(crate) fn baseline_median<I: PartialEq + Copy>(
    measured: &[Measured<I>],
    baseline: I,
    threads: usize,
) -> f64 {
    measured
        .iter()
        .find(|m| m.imp == baseline && m.threads == threads)
        .expect("the baseline is measured at every thread count")
        .summary
        .median
}

#[derive(Serialize)]
pub(crate) struct Machine {
    cpus: usize,
    arch: &'static str,
    os: &'static str,
}

impl Machine {
    pub(crate) fn this() -> Machine {
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            arch: std::env::consts::ARCH,
            os: std::env::consts::OS,
        }
    }

    pub(crate) fn cpus(&self) -> usize {
        self.cpus
    }
}

/// Three decimals: well below the run-to-run noise of a nanosecond loop.
pub(crate) fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `"<impl>/<baseline>@<threads>"` for every row but the baseline's: the
/// ratio of each median to the baseline's at the same thread count.
pub(crate) fn ratios<'a>(
    rows: impl IntoIterator<Item = (&'a str, usize, f64)>,
    baseline: &str,
) -> std::collections::BTreeMap<String, f64> {
    rows.into_iter()
        .filter(|&(imp, _, _)| imp != baseline)
        .map(|(imp, threads, ratio)| (format!("{imp}/{baseline}@{threads}"), ratio))
        .collect()
}

/// Print `report` as one JSON object, or as the table `table` writes.
pub(crate) fn emit<R: Serialize>(
    json: bool,
    report: &R,
    table: impl FnOnce(&mut dyn std::io::Write, &R) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, report)?;
        writeln!(out)?;
    } else {
        table(&mut out, report)?;
    }
    out.flush()
}
