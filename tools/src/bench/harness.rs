//! The timing loop every micro-benchmark shares: run one operation on T
//! threads for a bounded time and report what one operation cost one thread.
//!
//! Each thread runs the operation in fixed batches and looks at a shared stop
//! flag only between batches, so the flag costs nothing per operation. Every
//! thread times itself from a common start (a barrier) to the moment it sees
//! the flag; the cost of a run is the sum of those thread times divided by the
//! operations all threads completed. When the threads share CPUs, with each
//! other or with anything else on the machine, that figure includes time
//! spent preempted: it is what a thread of the stack would see.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

/// Operations between two looks at the stop flag: a few microseconds for the
/// cheapest operations, short enough that stopping is prompt.
const BATCH: u64 = 1024;

/// One timed run on some number of threads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Run {
    /// Operations completed, summed over the threads.
    pub(crate) ops: u64,
    /// Nanoseconds the threads spent in the timed loop, summed.
    pub(crate) thread_ns: u128,
}

impl Run {
    /// Cost of one operation on one thread.
    pub(crate) fn ns_per_op(self) -> f64 {
        self.thread_ns as f64 / self.ops as f64
    }
}

/// Run `op` on `threads` threads for about `budget`. Each thread calls it once
/// before the clock starts, so first-use costs (thread registration, slot
/// claims, cold caches) stay out of the figure.
pub(crate) fn run<F: Fn() + Sync>(threads: usize, budget: Duration, op: F) -> Run {
    let stop = AtomicBool::new(false);
    // The threads and this one: the clock starts only once all are warm.
    let start = Barrier::new(threads + 1);
    let per_thread = thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    op();
                    start.wait();
                    let t0 = Instant::now();
                    let mut ops = 0u64;
                    loop {
                        for _ in 0..BATCH {
                            op();
                        }
                        ops += BATCH;
                        // Relaxed: a flag with no data behind it; seeing it
                        // one batch late only lengthens the run a little.
                        if stop.load(Relaxed) {
                            break;
                        }
                    }
                    Run {
                        ops,
                        thread_ns: t0.elapsed().as_nanos(),
                    }
                })
            })
            .collect();
        start.wait();
        thread::sleep(budget);
        stop.store(true, Relaxed);
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<Vec<_>>()
    });
    Run {
        ops: per_thread.iter().map(|r| r.ops).sum(),
        thread_ns: per_thread.iter().map(|r| r.thread_ns).sum(),
    }
}

/// Median, minimum and maximum of the per-run costs of one configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Summary {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Summary {
    /// # Panics
    /// If `samples` is empty or holds a NaN: both are bugs in the caller.
    pub(crate) fn of(samples: &[f64]) -> Summary {
        assert!(!samples.is_empty(), "no runs to summarise");
        let mut v = samples.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).expect("ns/op is never NaN"));
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Summary {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = Summary::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Summary::of(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
    }

    #[test]
    fn every_thread_runs_and_the_run_is_bounded() {
        let calls = std::sync::atomic::AtomicU64::new(0);
        let t0 = Instant::now();
        let r = run(2, Duration::from_millis(5), || {
            calls.fetch_add(1, Relaxed);
        });
        assert!(t0.elapsed() < Duration::from_secs(5));
        // The two warm-up calls are not counted.
        assert_eq!(calls.into_inner(), r.ops + 2);
        assert!(r.ops >= 2 * BATCH && r.ns_per_op() > 0.0);
    }
}
