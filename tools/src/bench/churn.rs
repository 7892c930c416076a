//! The connection-table workload `bench pcb` and `bench reclaim` share:
//! readers look up uniformly random present tuples while at most one churner
//! inserts a fresh connection and removes the one it inserted
//! [`CHURN_WINDOW`] steps earlier, so the table size stays put.
//!
//! Every thread starts from one barrier and stops at one flag; each times
//! itself, so a rate is what that thread did over the time it ran. The
//! churner can be held to a target rate (steps per second) to sweep churn
//! from low to saturation, and reports its own CPU time so write-side cost
//! is not confused with time spent preempted or pacing.
//!
//! Every reader also times one lookup in [`LATENCY_EVERY`] on its own (into
//! an hdrhistogram, so the sampled percentiles cost no allocation in the
//! loop) and counts the lookups that missed: every tuple a reader asks for
//! is present for the whole run, so any miss is a table bug (or a resize
//! that lost a key), and the benchmarks report the count.

use hdrhistogram::Histogram;
use pcb::FourTuple;
use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

/// Churn connections live this many steps before their remove.
pub(crate) const CHURN_WINDOW: u32 = 64;

/// Readers time one lookup in this many (a power of two). The timed lookup
/// is bracketed by two clock reads, which also stop the CPU from overlapping
/// it with its neighbours: it is a latency, the others make the throughput.
pub(crate) const LATENCY_EVERY: u64 = 64;

/// The sampled lookups' latency histogram: 1 ns to 10 s, 3 digits.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("constant, valid bounds")
}

/// The benchmark's connection number `i` as a tuple: distinct for every `i`.
pub(crate) fn tuple(i: u32) -> FourTuple {
    let [a, b, c, d] = i.to_be_bytes();
    FourTuple::v4([10, a, 0, 1], 443, [172, b, c, d], 1024 + (i % 4096) as u16)
}

/// The shape of one timed run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Load {
    pub(crate) readers: usize,
    /// 0 or 1: churn keys are not partitioned between churners.
    pub(crate) churners: usize,
    /// Churn steps per second; `None` runs the churner flat out.
    pub(crate) rate: Option<f64>,
}

/// What one run did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sample {
    pub(crate) lookups_per_s: f64,
    /// One insert or one remove is one op.
    pub(crate) churn_ops_per_s: f64,
    /// Churn steps (inserts attempted) done, for cleanup.
    pub(crate) churn_steps: u32,
    /// CPU time the churner thread used while churning, in ns (0 without
    /// a churner; paced runs leave out the time between bursts).
    pub(crate) churn_cpu_ns: u64,
    /// Wall time the churner spent churning, in ns.
    pub(crate) churn_wall_ns: u64,
    /// Lookups done, over all readers.
    pub(crate) lookups: u64,
    /// Lookups of present tuples that found nothing (must be 0).
    pub(crate) lookup_misses: u64,
    /// Median and 99th percentile of the sampled lookups' latency, in ns
    /// (0 without readers).
    pub(crate) lookup_p50_ns: u64,
    pub(crate) lookup_p99_ns: u64,
}

/// CPU time this thread has used, in ns.
pub(crate) fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Run `load`: readers call `lookup` on random members of `tuples`, the
/// churner calls `churn(k)` for k = 0, 1, 2, ... (each step one insert and,
/// after the window, one remove). `during` runs on the calling thread from
/// the common start and decides how long the run lasts (it gets the start
/// instant); `sleep_for(budget)` is the plain run.
pub(crate) fn drive(
    load: Load,
    tuples: &[FourTuple],
    lookup: impl Fn(&FourTuple) -> bool + Sync,
    churn: impl FnMut(u32) + Send,
    during: impl FnOnce(Instant),
) -> Sample {
    let Load {
        readers,
        churners,
        rate,
    } = load;
    assert!(churners <= 1, "one churner: churn keys are not partitioned");
    let stop = AtomicBool::new(false);
    let start = Barrier::new(readers + churners + 1);
    let mut churn = Some(churn);
    let (lookups, steps) = thread::scope(|s| {
        let rs: Vec<_> = (0..readers)
            .map(|r| {
                let (stop, start, lookup) = (&stop, &start, &lookup);
                s.spawn(move || {
                    let mut rng = 0x2545_f491_4f6c_dd1d_u64 ^ ((r as u64 + 1) * 0x9e37_79b9);
                    let n = tuples.len() as u64;
                    black_box(lookup(&tuples[0]));
                    start.wait();
                    let mut hist = latency_histogram();
                    let t0 = Instant::now();
                    let (mut ops, mut misses) = (0u64, 0u64);
                    // Relaxed: a stop flag with no data behind it.
                    while !stop.load(Relaxed) {
                        for i in 0..1024u64 {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            let t = &tuples[(rng % n) as usize];
                            let hit = if i % LATENCY_EVERY == 0 {
                                let l0 = Instant::now();
                                let hit = lookup(t);
                                let ns = l0.elapsed().as_nanos();
                                hist.saturating_record(u64::try_from(ns).unwrap_or(u64::MAX));
                                hit
                            } else {
                                lookup(t)
                            };
                            misses += u64::from(!black_box(hit));
                        }
                        ops += 1024;
                    }
                    (ops, t0.elapsed().as_secs_f64(), misses, hist)
                })
            })
            .collect();
        let cs: Vec<_> = (0..churners)
            .map(|_| {
                let (stop, start) = (&stop, &start);
                let mut churn = churn.take().expect("one churner");
                s.spawn(move || {
                    start.wait();
                    let t0 = Instant::now();
                    let cpu0 = thread_cpu_ns();
                    let mut k = 0u32;
                    match rate {
                        // Relaxed: as above.
                        None => {
                            while !stop.load(Relaxed) {
                                for _ in 0..64 {
                                    churn(k);
                                    k += 1;
                                }
                            }
                        }
                        // Paced: every millisecond, the steps now due, in
                        // one burst; CPU and wall time are taken around the
                        // bursts only, so pacing is not counted as work.
                        Some(r) => {
                            let (mut cpu, mut wall) = (0u64, Duration::ZERO);
                            while !stop.load(Relaxed) {
                                let due = (t0.elapsed().as_secs_f64() * r) as u32;
                                let (c0, w0) = (thread_cpu_ns(), Instant::now());
                                while k < due && !stop.load(Relaxed) {
                                    churn(k);
                                    k += 1;
                                }
                                cpu += thread_cpu_ns() - c0;
                                wall += w0.elapsed();
                                thread::sleep(Duration::from_millis(1));
                            }
                            return (k, t0.elapsed(), cpu, wall);
                        }
                    }
                    let wall = t0.elapsed();
                    (k, wall, thread_cpu_ns() - cpu0, wall)
                })
            })
            .collect();
        start.wait();
        during(Instant::now());
        stop.store(true, Relaxed);
        let r: Vec<(u64, f64, u64, Histogram<u64>)> =
            rs.into_iter().map(|h| h.join().expect("reader")).collect();
        let c: Vec<(u32, Duration, u64, Duration)> =
            cs.into_iter().map(|h| h.join().expect("churner")).collect();
        (r, c)
    });
    // Folded from +0.0: `sum` of no f64s is -0.0, which would print as such.
    let lookups_per_s = lookups
        .iter()
        .map(|&(n, t, _, _)| n as f64 / t)
        .fold(0.0, |a, b| a + b);
    let mut hist = latency_histogram();
    for (_, _, _, h) in &lookups {
        hist.add(h).expect("same bounds");
    }
    let quantile = |q: f64| {
        if hist.is_empty() {
            0
        } else {
            hist.value_at_quantile(q)
        }
    };
    let churn_ops_per_s = steps
        .iter()
        .map(|&(k, t, _, _)| {
            (2 * u64::from(k)).saturating_sub(u64::from(CHURN_WINDOW)) as f64 / t.as_secs_f64()
        })
        .fold(0.0, |a, b| a + b);
    Sample {
        lookups_per_s,
        churn_ops_per_s,
        churn_steps: steps.iter().map(|s| s.0).sum(),
        churn_cpu_ns: steps.iter().map(|s| s.2).sum(),
        churn_wall_ns: steps.iter().map(|s| s.3.as_nanos() as u64).sum(),
        lookups: lookups.iter().map(|l| l.0).sum(),
        lookup_misses: lookups.iter().map(|l| l.2).sum(),
        lookup_p50_ns: quantile(0.5),
        lookup_p99_ns: quantile(0.99),
    }
}
