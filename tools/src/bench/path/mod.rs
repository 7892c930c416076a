//! `smrnet bench path`: the daemon's whole data path against the Linux
//! kernel's TCP, same client, same run, one JSON object.
//!
//! Each row is measured on two sides: smrnetd in a fresh lab (its TUN
//! device in a private namespace, see [`crate::lab`]) and the kernel's TCP
//! in a fresh pair of namespaces joined by a veth
//! ([`crate::load::compare::KernelPair`]: 198.19.0.1 to 198.19.0.2, with
//! echo, discard and an http server that runs the daemon's own http
//! responder code over kernel sockets, so both sides answer byte for byte
//! alike). The rows:
//!
//! - `stream-discard`, `stream-echo`: one kernel TCP socket writing 64 KiB
//!   at a time ([`stream`]); bytes/s until the server has taken (discard)
//!   or returned (echo, verified) every byte.
//! - `syn-<rate>`: `smrnet load syn --compare-kernel`'s own code: the same
//!   spoofed flood and legitimate probe, same seed, one sender thread;
//!   legitimate connections/s during the flood, and success.
//! - `churn`: `smrnet load churn -c 64`'s code; verified connections/s.
//! - `wrk`: `wrk -c 64 -t 2` keep-alive against the http service, when
//!   wrk is installed (otherwise the row is listed as skipped, with why).
//!
//! CPU, and what it can and cannot say: smrnetd's CPU is its own process's
//! user + system time (`daemon_cpu_*`), which includes the TUN system
//! calls its workers make. The kernel server's protocol work runs in
//! softirq context and is charged to no process, so no per-server figure
//! exists for that side; both sides therefore also report the whole
//! machine's busy CPU over the measurement (`machine_cpu_*`, from
//! /proc/stat), which includes the client's own work and anything else
//! running on the machine. On a shared machine that last figure is noisy.
//!
//! Runs are interleaved: run 1 of every row (kernel, then smrnetd), then
//! run 2, ..., and each figure is the median over runs; the ratio is
//! smrnetd's median over the kernel's. `--daemon-arg` passes flags to
//! every lab's daemon (e.g. an offload switch), so the same command
//! compares daemon configurations.
//!
//! Invariant: every namespace and daemon a measurement creates is removed
//! before the next measurement starts, on success, error or Ctrl-C (the
//! guards in [`measure`]); every client is bounded in bytes or time.

mod measure;
mod stream;
mod wrk;

use super::harness::Summary;
use measure::{Pair, Side};
use serde::Serialize;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;
use stream::Mode;

/// Run shape for `bench path`.
#[derive(Debug, clap::Args)]
pub struct PathArgs {
    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,

    /// Rows to run, comma-separated, from: discard, echo, syn, churn, wrk.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "discard,echo,syn,churn,wrk"
    )]
    rows: Vec<String>,

    /// Runs of every row, interleaved; the median is reported.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    runs: u32,

    /// Bytes of the discard stream (suffixes K, M, G: powers of 1000; KiB,
    /// MiB, GiB: of 1024).
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
    bytes: u64,

    /// Bytes of the echoed stream (same suffixes).
    #[arg(long, value_name = "SIZE", default_value = "300M", value_parser = parse_size)]
    echo_bytes: u64,

    /// The longest one stream may take, in seconds (a stalled stream fails
    /// within twice this).
    #[arg(long, value_name = "S", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    stream_timeout: u64,

    /// SYN flood rates, comma-separated SYN/s, `unlimited` for one sender
    /// thread as fast as it goes.
    #[arg(long, value_delimiter = ',', default_value = "50000,150000,unlimited",
          value_parser = parse_rate)]
    syn_rates: Vec<Rate>,

    /// Seconds of each flood (the probe first runs as long without it).
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    syn_seconds: f64,

    /// Flood seed; run k uses seed + k [default: from the clock].
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// Seconds of each churn run.
    #[arg(long, value_name = "S", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    churn_seconds: u64,

    /// Concurrent connections of the churn client.
    #[arg(long, value_name = "C", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    churn_concurrency: u64,

    /// Seconds of each wrk run.
    #[arg(long, value_name = "S", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    wrk_seconds: u64,

    /// Packet workers of each daemon [default: the daemon's, one per CPU].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,

    /// One more flag for every lab's smrnetd (repeatable), e.g.
    /// `--daemon-arg=--steering --daemon-arg=off`.
    #[arg(long = "daemon-arg", value_name = "ARG", allow_hyphen_values = true)]
    daemon_args: Vec<OsString>,

    /// The smrnetd binary [default: next to this smrnet, else from PATH].
    #[arg(long, value_name = "PATH")]
    daemon: Option<PathBuf>,
}

/// A flood rate: SYN/s, or `None` for unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(Option<u64>);

fn parse_rate(s: &str) -> Result<Rate, String> {
    if s == "unlimited" {
        return Ok(Rate(None));
    }
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Rate(Some(n))),
        _ => Err(format!("{s:?}: a rate is a positive SYN/s or `unlimited`")),
    }
}

/// `1GiB`, `300M`, `4MiB`, `1000`: bytes, at least 1, at most 1 TiB.
fn parse_size(s: &str) -> Result<u64, String> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: a size is digits and an optional unit"))?;
    let mult: u64 = match unit {
        "" | "B" => 1,
        "K" | "KB" => 1_000,
        "M" | "MB" => 1_000_000,
        "G" | "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (K, M, G, KiB, MiB, GiB)"
            ));
        }
    };
    match n.checked_mul(mult) {
        Some(b) if (1..=1 << 40).contains(&b) => Ok(b),
        _ => Err(format!("{s:?}: must be from 1 byte to 1 TiB")),
    }
}

/// What a row measures, in the order rows run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Discard,
    Echo,
    Syn(Rate),
    Churn,
    Wrk,
}

impl Kind {
    fn name(self) -> String {
        match self {
            Kind::Discard => "stream-discard".into(),
            Kind::Echo => "stream-echo".into(),
            Kind::Syn(Rate(Some(r))) => format!("syn-{r}"),
            Kind::Syn(Rate(None)) => "syn-unlimited".into(),
            Kind::Churn => "churn".into(),
            Kind::Wrk => "wrk".into(),
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Kind::Discard | Kind::Echo => "bytes/s",
            Kind::Syn(_) => "legitimate conns/s under flood",
            Kind::Churn => "conns/s",
            Kind::Wrk => "requests/s",
        }
    }
}

/// One row: the medians of both sides and their ratio.
#[derive(Debug, Serialize)]
struct Row {
    row: String,
    unit: &'static str,
    kernel: f64,
    smrnetd: f64,
    /// smrnetd / kernel (higher is better for smrnetd).
    ratio: Option<f64>,
    /// Medians over runs, figure by figure.
    kernel_figures: BTreeMap<String, f64>,
    smrnetd_figures: BTreeMap<String, f64>,
    /// Every run, in order.
    samples: Vec<Pair>,
}

#[derive(Debug, Serialize)]
struct Skipped {
    row: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    runs: u32,
    discard_bytes: u64,
    echo_bytes: u64,
    write_size: usize,
    syn_seconds: f64,
    churn_seconds: u64,
    churn_concurrency: u64,
    wrk_seconds: u64,
    wrk_connections: u32,
    wrk_threads: u32,
    workers: Option<usize>,
    daemon_args: Vec<String>,
    rows: Vec<Row>,
    skipped: Vec<Skipped>,
}

pub fn run(args: &PathArgs) -> io::Result<()> {
    let (kinds, mut skipped, wrk) = plan(args)?;
    crate::lab::preflight().map_err(|e| io::Error::other(e.to_string()))?;
    let stop = crate::load::stop_on_signal()?;
    let mut cfg = crate::lab::LabConfig::new(
        args.daemon
            .clone()
            .unwrap_or_else(crate::lab::default_daemon),
    );
    cfg.workers = args.workers;
    cfg.extra_args = args.daemon_args.clone();
    let timeout = Duration::from_secs(args.stream_timeout);
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_secs())
    });
    let mut samples: Vec<Vec<Pair>> = kinds.iter().map(|_| Vec::new()).collect();
    for run in 0..args.runs {
        for (i, &kind) in kinds.iter().enumerate() {
            eprintln!(
                "smrnet bench path: run {}/{}: {}",
                run + 1,
                args.runs,
                kind.name()
            );
            let pair = match kind {
                Kind::Discard => measure::stream(&cfg, Mode::Discard, args.bytes, timeout, stop),
                Kind::Echo => measure::stream(&cfg, Mode::Echo, args.echo_bytes, timeout, stop),
                Kind::Syn(Rate(rate)) => measure::syn_flood(
                    &cfg,
                    rate,
                    args.syn_seconds,
                    seed.wrapping_add(u64::from(run)),
                    stop,
                ),
                Kind::Churn => measure::churn(
                    &cfg,
                    usize::try_from(args.churn_concurrency).unwrap_or(usize::MAX),
                    args.churn_seconds,
                    stop,
                ),
                Kind::Wrk => match &wrk {
                    Some(path) => measure::wrk(&cfg, path, args.wrk_seconds, stop),
                    None => unreachable!("the plan leaves wrk out when it is missing"),
                },
            };
            samples[i].push(pair.map_err(|e| {
                io::Error::new(e.kind(), format!("{} (run {}): {e}", kind.name(), run + 1))
            })?);
        }
    }
    let rows = kinds.iter().zip(samples).map(|(&k, s)| row(k, s)).collect();
    skipped.sort_by(|a: &Skipped, b| a.row.cmp(&b.row));
    let report = Report {
        bench: "path",
        runs: args.runs,
        discard_bytes: args.bytes,
        echo_bytes: args.echo_bytes,
        write_size: stream::WRITE_SIZE,
        syn_seconds: args.syn_seconds,
        churn_seconds: args.churn_seconds,
        churn_concurrency: args.churn_concurrency,
        wrk_seconds: args.wrk_seconds,
        wrk_connections: wrk::CONNECTIONS,
        wrk_threads: wrk::THREADS,
        workers: args.workers,
        daemon_args: args
            .daemon_args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        rows,
        skipped,
    };
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)
    } else {
        print_table(&mut out, &report)
    }
}

/// The rows to run, the rows skipped (with why), and wrk's path.
fn plan(args: &PathArgs) -> io::Result<(Vec<Kind>, Vec<Skipped>, Option<PathBuf>)> {
    if !(args.syn_seconds > 0.0 && args.syn_seconds <= 300.0) {
        return Err(invalid(format!(
            "--syn-seconds {}: must be more than 0 and at most 300",
            args.syn_seconds
        )));
    }
    let mut kinds = Vec::new();
    let mut skipped = Vec::new();
    let mut wrk_path = None;
    for name in &args.rows {
        let add: Vec<Kind> = match name.as_str() {
            "discard" => vec![Kind::Discard],
            "echo" => vec![Kind::Echo],
            "syn" => args.syn_rates.iter().map(|&r| Kind::Syn(r)).collect(),
            "churn" => vec![Kind::Churn],
            "wrk" => match wrk::find() {
                Ok(p) => {
                    wrk_path = Some(p);
                    vec![Kind::Wrk]
                }
                Err(reason) => {
                    skipped.push(Skipped {
                        row: Kind::Wrk.name(),
                        reason,
                    });
                    vec![]
                }
            },
            other => {
                return Err(invalid(format!(
                    "--rows: unknown row {other:?}: use discard, echo, syn, churn or wrk"
                )));
            }
        };
        for k in add {
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
    }
    if kinds.is_empty() {
        return Err(invalid("no row to run".into()));
    }
    Ok((kinds, skipped, wrk_path))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Medians over runs, figure by figure (a figure missing from a run is
/// left out of that figure's median).
fn medians(sides: &[&Side]) -> (f64, BTreeMap<String, f64>) {
    let value = Summary::of(&sides.iter().map(|s| s.value).collect::<Vec<_>>()).median;
    let mut figures: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for s in sides {
        for (k, v) in &s.figures {
            figures.entry(k.clone()).or_default().push(*v);
        }
    }
    let figures = figures
        .into_iter()
        .map(|(k, v)| (k, Summary::of(&v).median))
        .collect();
    (value, figures)
}

fn row(kind: Kind, samples: Vec<Pair>) -> Row {
    let (kernel, kernel_figures) = medians(&samples.iter().map(|p| &p.kernel).collect::<Vec<_>>());
    let (smrnetd, smrnetd_figures) =
        medians(&samples.iter().map(|p| &p.smrnetd).collect::<Vec<_>>());
    Row {
        row: kind.name(),
        unit: kind.unit(),
        kernel,
        smrnetd,
        ratio: (kernel > 0.0).then(|| smrnetd / kernel),
        kernel_figures,
        smrnetd_figures,
        samples,
    }
}

/// The headline figure, scaled for reading.
fn human(unit: &str, v: f64) -> String {
    if unit == "bytes/s" {
        format!("{:.2} Gbit/s", v * 8.0 / 1e9)
    } else {
        format!("{v:.0}")
    }
}

fn print_table(out: &mut impl Write, r: &Report) -> io::Result<()> {
    writeln!(
        out,
        "bench path: smrnetd (lab, TUN) vs kernel TCP (veth), median of {} run(s)",
        r.runs
    )?;
    writeln!(
        out,
        "{:<16} {:>16} {:>16} {:>7}  unit",
        "row", "kernel", "smrnetd", "ratio"
    )?;
    for row in &r.rows {
        writeln!(
            out,
            "{:<16} {:>16} {:>16} {:>7}  {}",
            row.row,
            human(row.unit, row.kernel),
            human(row.unit, row.smrnetd),
            row.ratio.map_or_else(|| "-".into(), |x| format!("{x:.2}x")),
            row.unit
        )?;
        for (side, figs) in [
            ("kernel", &row.kernel_figures),
            ("smrnetd", &row.smrnetd_figures),
        ] {
            let text: Vec<String> = figs.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
            writeln!(out, "    {side}: {}", text.join(", "))?;
        }
    }
    for s in &r.skipped {
        writeln!(out, "{}: skipped: {}", s.row, s.reason)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_decimal_and_binary_units_and_refuse_zero_and_garbage() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("300M"), Ok(300_000_000));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        for bad in [
            "0",
            "",
            "M",
            "1.5G",
            "12X",
            "-1",
            "99999999999999999999",
            "2000GiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_are_positive_or_unlimited() {
        assert_eq!(parse_rate("unlimited"), Ok(Rate(None)));
        assert_eq!(parse_rate("50000"), Ok(Rate(Some(50_000))));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn medians_are_taken_figure_by_figure_and_the_ratio_is_smrnetd_over_kernel() {
        let side = |v: f64, cpu: f64| Side {
            value: v,
            figures: BTreeMap::from([("cpu".to_string(), cpu)]),
        };
        let samples = vec![
            Pair {
                kernel: side(10.0, 1.0),
                smrnetd: side(5.0, 9.0),
            },
            Pair {
                kernel: side(30.0, 3.0),
                smrnetd: side(15.0, 7.0),
            },
            Pair {
                kernel: side(20.0, 2.0),
                smrnetd: side(10.0, 8.0),
            },
        ];
        let r = row(Kind::Churn, samples);
        assert_eq!((r.kernel, r.smrnetd), (20.0, 10.0));
        assert_eq!(r.ratio, Some(0.5));
        assert_eq!(r.kernel_figures["cpu"], 2.0);
        assert_eq!(r.smrnetd_figures["cpu"], 8.0);
        assert_eq!(r.samples.len(), 3);
    }

    #[test]
    fn syn_rows_are_named_by_rate() {
        assert_eq!(Kind::Syn(Rate(Some(50_000))).name(), "syn-50000");
        assert_eq!(Kind::Syn(Rate(None)).name(), "syn-unlimited");
    }
}
