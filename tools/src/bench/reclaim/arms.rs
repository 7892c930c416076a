//! The long-running-reader and spread-free arms, one scheme at a time.
//!
//! One reader looks up random present connections (one lookup in
//! [`LOOKUP_SAMPLE`] timed), one churner runs flat out (every step timed),
//! and pending memory is sampled every millisecond. In the long-reader arm
//! a second reader holds one read section after another, each `hold` long,
//! for the whole run (kaist-cp's smr-benchmark "long-running reader"): a
//! grace period then lasts until the section it began in ends, so pending
//! memory grows by about `hold` worth of frees before each release, and the
//! release is one large batch. Run without the long reader, the same arm is
//! the baseline it is compared with.
//!
//! What the long section holds differs by scheme, and the arm reports what
//! each does rather than forcing them alike: an SMR read section or an
//! epoch pin holds back reuse but never blocks the writer; a pserialize
//! section makes the writer's synchronous `perform()` wait; the rwlock's
//! read lock blocks every writer; dashmap's shard read lock blocks writers
//! of that shard.
//!
//! Like the churn episode, a run starts settled (nothing pending) and
//! leaves the table as it found it.

use super::Subjects;
use super::episode::{churn_step, cleanup};
use super::scheme::Kind;
use super::table::new_histogram;
use crate::bench::churn::CHURN_WINDOW;
use hdrhistogram::Histogram;
use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

/// One lookup in this many is timed (timing costs a clock read each side).
pub(super) const LOOKUP_SAMPLE: u64 = 8;

/// Long sections one run may hold at most (the run's time bounds it first).
const MAX_LONG_SECTIONS: u64 = 100_000;

/// One arm run's raw figures.
pub(super) struct ArmSample {
    pub(super) lookups_per_s: f64,
    /// Inserts and removes that succeeded, per second.
    pub(super) churn_ops_per_s: f64,
    pub(super) peak_pending: u64,
    pub(super) avg_pending: f64,
    /// Pending and pooled-free objects when the run started (after
    /// `settle`).
    pub(super) start_pending: u64,
    pub(super) start_cached: u64,
    /// Long sections the long reader completed.
    pub(super) long_sections: u64,
    pub(super) exhausted: u64,
    pub(super) violations: u64,
    /// ns per churn step (one insert and, after the window, one remove).
    pub(super) step_ns: Histogram<u64>,
    /// ns per sampled lookup.
    pub(super) lookup_ns: Histogram<u64>,
}

/// One run of the arm for `kind`; `hold` adds the long reader. `base`
/// moves on past every churn key used.
pub(super) fn arm_run(
    s: &Subjects,
    kind: Kind,
    hold: Option<Duration>,
    budget: Duration,
    base: &mut u32,
) -> ArmSample {
    let subject = s.get(kind);
    subject.settle();
    let start = subject.counters();
    let v0 = subject.violations();
    let b = *base;
    let tuples = &s.tuples;
    let n = tuples.len() as u64;
    let stop = AtomicBool::new(false);
    let go = Barrier::new(3 + usize::from(hold.is_some()));
    let (mut peak, mut sum, mut samples) = (0u64, 0u64, 0u64);
    let (reader, long_sections, churner) = thread::scope(|sc| {
        let (stop, go) = (&stop, &go);
        let reader = sc.spawn(move || {
            let mut hist = new_histogram();
            let mut rng = 0x2545_f491_4f6c_dd1d_u64;
            go.wait();
            let t0 = Instant::now();
            let mut ops = 0u64;
            // Relaxed: a stop flag with no data behind it.
            while !stop.load(Relaxed) {
                for i in 0..1024 {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let t = &tuples[(rng % n) as usize];
                    if i % LOOKUP_SAMPLE == 0 {
                        let at = Instant::now();
                        black_box(subject.contains(t));
                        hist.saturating_record(at.elapsed().as_nanos() as u64);
                    } else {
                        black_box(subject.contains(t));
                    }
                }
                ops += 1024;
            }
            (ops as f64 / t0.elapsed().as_secs_f64(), hist)
        });
        let long = hold.map(|d| {
            sc.spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
                let mut held = 0u64;
                go.wait();
                // Relaxed: as above.
                while !stop.load(Relaxed) && held < MAX_LONG_SECTIONS {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // A table connection the churner never removes: found.
                    subject.hold(&tuples[(rng % n) as usize], d);
                    held += 1;
                }
                held
            })
        });
        let churner = sc.spawn(move || {
            let mut live = vec![false; CHURN_WINDOW as usize];
            let mut hist = new_histogram();
            let (mut k, mut ops) = (0u32, 0u64);
            go.wait();
            let t0 = Instant::now();
            // Relaxed: as above.
            while !stop.load(Relaxed) {
                for _ in 0..64 {
                    let at = Instant::now();
                    ops += u64::from(churn_step(subject, b, k, &mut live));
                    hist.saturating_record(at.elapsed().as_nanos() as u64);
                    k += 1;
                }
            }
            (k, ops as f64 / t0.elapsed().as_secs_f64(), hist, live)
        });
        go.wait();
        let t0 = Instant::now();
        while t0.elapsed() < budget {
            let p = subject.counters().pending;
            peak = peak.max(p);
            sum += p;
            samples += 1;
            thread::sleep(Duration::from_millis(1));
        }
        // Relaxed: as above.
        stop.store(true, Relaxed);
        (
            reader.join().expect("reader"),
            long.map_or(0, |h| h.join().expect("long reader")),
            churner.join().expect("churner"),
        )
    });
    let (steps, churn_ops_per_s, step_ns, live) = churner;
    cleanup(subject, b, steps, &live);
    *base = b.wrapping_add(steps + CHURN_WINDOW);
    subject.take_latency();
    ArmSample {
        lookups_per_s: reader.0,
        churn_ops_per_s,
        peak_pending: peak,
        avg_pending: sum as f64 / samples.max(1) as f64,
        start_pending: start.pending,
        start_cached: start.cached,
        long_sections,
        exhausted: subject.counters().exhausted - start.exhausted,
        violations: subject.violations() - v0,
        step_ns,
        lookup_ns: reader.1,
    }
}
