//! The two timed episodes of the study, for one scheme at a time: a churn
//! run (readers and a possibly paced churner, with pending memory sampled
//! every millisecond) and the stalled-reader episode. Both start from an
//! empty pending queue and leave the table as they found it.

use super::scheme::{Counters, Kind, Subject};
use super::table;
use super::{StallRow, Subjects};
use crate::bench::churn::{self, CHURN_WINDOW, Load, tuple};
use crate::bench::report::round;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

/// One churn run's raw figures.
#[derive(Default)]
pub(super) struct ChurnSample {
    pub(super) lookups_per_s: f64,
    pub(super) churn_ops_per_s: f64,
    pub(super) frees: u64,
    pub(super) advances: u64,
    pub(super) membarriers: u64,
    pub(super) grace_periods: Option<u64>,
    pub(super) exhausted: u64,
    pub(super) cpu_ns: u64,
    pub(super) wall_ns: u64,
    pub(super) peak_pending: u64,
    pub(super) avg_pending: f64,
    pub(super) violations: u64,
    /// Pending, and pooled free objects, when the run started (after
    /// `settle`).
    pub(super) start_pending: u64,
    pub(super) start_cached: u64,
}

/// The churn step: remove the connection inserted `CHURN_WINDOW` steps ago
/// (if its insert succeeded), insert connection `base + k`. `live[k %
/// window]` says whether step k's insert succeeded.
/// Returns the operations that succeeded (0 to 2).
pub(super) fn churn_step(subject: &dyn Subject, base: u32, k: u32, live: &mut [bool]) -> u32 {
    let slot = (k % CHURN_WINDOW) as usize;
    let mut ops = 0;
    if k >= CHURN_WINDOW && live[slot] {
        assert!(
            subject.remove(&tuple(base + k - CHURN_WINDOW)),
            "churn tuple vanished"
        );
        ops += 1;
    }
    live[slot] = subject.insert(&tuple(base + k), u64::from(k));
    ops + u32::from(live[slot])
}

/// Remove what a churn run of `steps` left behind.
pub(super) fn cleanup(subject: &dyn Subject, base: u32, steps: u32, live: &[bool]) {
    for k in steps.saturating_sub(CHURN_WINDOW)..steps {
        if live[(k % CHURN_WINDOW) as usize] {
            assert!(subject.remove(&tuple(base + k)), "churn tuple vanished");
        }
    }
}

fn delta(a: Counters, b: Counters) -> Counters {
    Counters {
        pending: b.pending,
        cached: b.cached,
        frees: b.frees - a.frees,
        advances: b.advances - a.advances,
        membarriers: b.membarriers - a.membarriers,
        grace_periods: a.grace_periods.zip(b.grace_periods).map(|(a, b)| b - a),
        exhausted: b.exhausted - a.exhausted,
    }
}

/// One churn run. `base` moves on past every key it used.
pub(super) fn churn_run(
    s: &Subjects,
    kind: Kind,
    readers: usize,
    rate: Option<f64>,
    budget: Duration,
    base: &mut u32,
    latency: &mut Option<Histogram<u64>>,
) -> ChurnSample {
    let subject = s.get(kind);
    // The pools reuse their pending FIFO oldest first and check goals only
    // when they need memory, so a queue that grew once keeps its length:
    // start every run from an empty one, and without the previous run's
    // backlog of reusable nodes (`Subject::settle`).
    subject.settle();
    let b = *base;
    let mut live = vec![false; CHURN_WINDOW as usize];
    let before = subject.counters();
    let v0 = subject.violations();
    subject.take_latency();
    let (mut peak, mut sum, mut n) = (0u64, 0u64, 0u64);
    let sample = churn::drive(
        Load {
            readers,
            churners: 1,
            rate,
        },
        &s.tuples,
        |t| subject.contains(t),
        |k| {
            churn_step(subject, b, k, &mut live);
        },
        |t0| {
            while t0.elapsed() < budget {
                let p = subject.counters().pending;
                peak = peak.max(p);
                sum += p;
                n += 1;
                thread::sleep(Duration::from_millis(1));
            }
        },
    );
    cleanup(subject, b, sample.churn_steps, &live);
    *base = b.wrapping_add(sample.churn_steps + CHURN_WINDOW);
    let d = delta(before, subject.counters());
    if let Some(h) = subject.take_latency() {
        match latency {
            Some(acc) => acc.add(&h).expect("same histogram shape"),
            None => *latency = Some(h),
        }
    }
    ChurnSample {
        lookups_per_s: sample.lookups_per_s,
        churn_ops_per_s: sample.churn_ops_per_s,
        frees: d.frees,
        advances: d.advances,
        membarriers: d.membarriers,
        grace_periods: d.grace_periods,
        exhausted: d.exhausted,
        cpu_ns: sample.churn_cpu_ns,
        wall_ns: sample.churn_wall_ns,
        peak_pending: peak,
        avg_pending: sum as f64 / n.max(1) as f64,
        violations: subject.violations() - v0,
        start_pending: before.pending,
        start_cached: before.cached,
    }
}

/// The stalled-reader episode for one scheme: one reader looking up, the
/// churner flat out, and after a quarter of the run a second reader that
/// finds a fresh churn connection (about to be removed) and sleeps inside
/// its section for `stall`.
pub(super) fn stall_run(s: &Subjects, kind: Kind, stall: Duration, base: &mut u32) -> StallRow {
    let subject = s.get(kind);
    subject.settle();
    let b = *base;
    let pre = stall / 2;
    let post = stall / 2 + Duration::from_millis(100);
    let mut live = vec![false; CHURN_WINDOW as usize];
    let before = subject.counters();
    let v0 = subject.violations();
    let progress = AtomicU32::new(0);
    let done_ops = AtomicU64::new(0);
    let mut steps_hist = table::new_histogram();
    let mut series = Vec::new();
    let mut window = [0.0; 2];
    let mut intact = None;
    let (mut rate_before, mut rate_during) = (0.0, 0.0);
    let mut peak = 0;
    let sample = churn::drive(
        Load {
            readers: 1,
            churners: 1,
            rate: None,
        },
        &s.tuples,
        |t| subject.contains(t),
        |k| {
            let t = Instant::now();
            let ops = churn_step(subject, b, k, &mut live);
            steps_hist.saturating_record(t.elapsed().as_nanos() as u64);
            // Relaxed: a progress figure for the sampler only.
            done_ops.fetch_add(u64::from(ops), Relaxed);
            // Relaxed: a progress figure for the sampler only.
            progress.store(k + 1, Relaxed);
        },
        |t0| {
            let ms = |t: Instant| (t - t0).as_secs_f64() * 1e3;
            thread::scope(|sc| {
                let mut stalled = None;
                let mut marks = [(t0, 0u64); 3];
                while t0.elapsed() < pre + stall + post {
                    let now = Instant::now();
                    if stalled.is_none() && now - t0 >= pre {
                        // Relaxed: as above.
                        marks[1] = (now, done_ops.load(Relaxed));
                        stalled = Some(sc.spawn(|| {
                            // A connection the churner inserted just now and
                            // removes within CHURN_WINDOW steps. Bounded tries.
                            for _ in 0..1000 {
                                // Relaxed: as above.
                                let k = progress.load(Relaxed);
                                if k > 0
                                    && let Some(ok) = subject.hold(&tuple(b + k - 1), stall)
                                {
                                    // Relaxed: as above.
                                    return (Some(ok), (Instant::now(), done_ops.load(Relaxed)));
                                }
                                thread::yield_now();
                            }
                            // Relaxed: as above.
                            (None, (Instant::now(), done_ops.load(Relaxed)))
                        }));
                    }
                    let p = subject.counters().pending;
                    peak = peak.max(p);
                    series.push([round(ms(now)), p as f64]);
                    thread::sleep(Duration::from_millis(2));
                }
                if let Some(h) = stalled {
                    let (ok, end) = h.join().expect("stalled reader");
                    intact = ok;
                    marks[2] = end;
                    window = [round(ms(marks[1].0)), round(ms(end.0))];
                    let rate = |a: (Instant, u64), b: (Instant, u64)| {
                        b.1.saturating_sub(a.1) as f64 / (b.0 - a.0).as_secs_f64()
                    };
                    rate_before = rate(marks[0], marks[1]);
                    rate_during = rate(marks[1], marks[2]);
                }
            });
        },
    );
    cleanup(subject, b, sample.churn_steps, &live);
    *base = b.wrapping_add(sample.churn_steps + CHURN_WINDOW);
    let after = subject.counters();
    let d = delta(before, after);
    subject.take_latency();
    let bytes = std::mem::size_of::<table::Node>() as u64;
    StallRow {
        scheme: kind.name(),
        stall_ms: stall.as_millis() as u64,
        stall_window_ms: window,
        pool_cap: subject.cap(),
        peak_pending: peak,
        peak_pending_bytes: peak * bytes,
        start_pending: before.pending,
        final_pending: after.pending,
        churn_ops_per_s_before: rate_before.round(),
        churn_ops_per_s_during: rate_during.round(),
        writer_step_p99_us: round(steps_hist.value_at_quantile(0.99) as f64 / 1e3),
        writer_step_max_us: round(steps_hist.max() as f64 / 1e3),
        exhausted: d.exhausted,
        held_node_intact: intact,
        reuse_violations: subject.violations() - v0,
        series,
    }
}
