//! The end-to-end suite's runner. libtest has no "skipped" result: a test
//! that returns early when it cannot run is reported as passed. This runner
//! reports and counts skips, runs a bounded number of tests at a time (each
//! starts its own daemon), and accepts the usual `cargo test -- FILTER`,
//! `--exact`, `--list` and `--test-threads N`; other libtest flags are ignored.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How a test ended, other than by panicking (which is a failure).
#[derive(Debug)]
pub enum Outcome {
    Passed,
    Skipped(String),
}

/// A named test.
pub struct Test {
    pub name: &'static str,
    pub run: fn() -> Outcome,
}

enum Verdict {
    Passed,
    Skipped(String),
    Failed,
}

/// Run `tests` as selected by the command line and exit: status 0 when
/// nothing failed, 101 (libtest's) when something did.
pub fn run_main(tests: &[Test]) -> ! {
    let mut args = std::env::args().skip(1);
    let mut filters = Vec::new();
    let (mut exact, mut list) = (false, false);
    let mut jobs: usize = std::env::var("RUST_TEST_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--exact" => exact = true,
            "--list" => list = true,
            "--test-threads" => jobs = args.next().and_then(|v| v.parse().ok()).unwrap_or(jobs),
            s if s.starts_with("--test-threads=") => {
                jobs = s["--test-threads=".len()..].parse().unwrap_or(jobs)
            }
            s if s.starts_with('-') => {}
            s => filters.push(s.to_string()),
        }
    }
    let selected: Vec<&Test> = tests
        .iter()
        .filter(|t| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    if exact {
                        t.name == f
                    } else {
                        t.name.contains(f.as_str())
                    }
                })
        })
        .collect();
    if list {
        for t in &selected {
            println!("{}: test", t.name);
        }
        std::process::exit(0);
    }

    println!(
        "\nrunning {} end-to-end tests, {} at a time",
        selected.len(),
        jobs.max(1)
    );
    let start = Instant::now();
    let missing = super::missing_prerequisite();
    let results: Mutex<Vec<(&str, Verdict, Duration)>> = Mutex::new(Vec::new());
    if let Some(why) = &missing {
        let required = super::prerequisites_required();
        for t in &selected {
            let r = if required {
                Verdict::Failed
            } else {
                Verdict::Skipped(why.clone())
            };
            report(t.name, &r, Duration::ZERO);
            results.lock().unwrap().push((t.name, r, Duration::ZERO));
        }
        if required {
            println!("SMRNET_E2E_REQUIRE=1, but the suite cannot run here: {why}");
        }
    } else {
        // Ctrl-C removes every lab still up instead of leaving namespaces.
        if let Err(e) = tools::lab::remove_labs_on_signal() {
            println!("e2e: cannot catch Ctrl-C ({e}); an interrupted run may leave labs behind");
        }
        // Build the daemon before the clock of any test starts.
        super::daemon_binary();
        let next = Mutex::new(selected.iter());
        std::thread::scope(|s| {
            for _ in 0..jobs.clamp(1, 8) {
                s.spawn(|| {
                    loop {
                        let Some(t) = next.lock().unwrap().next() else {
                            break;
                        };
                        let t0 = Instant::now();
                        let r = match std::thread::Builder::new()
                            .name(t.name.to_string())
                            .spawn(t.run)
                            .expect("spawn a test thread")
                            .join()
                        {
                            Ok(Outcome::Passed) => Verdict::Passed,
                            Ok(Outcome::Skipped(why)) => Verdict::Skipped(why),
                            Err(_) => Verdict::Failed,
                        };
                        report(t.name, &r, t0.elapsed());
                        results.lock().unwrap().push((t.name, r, t0.elapsed()));
                    }
                });
            }
        });
    }

    let results = results.into_inner().unwrap();
    let count = |f: fn(&Verdict) -> bool| results.iter().filter(|(_, r, _)| f(r)).count();
    let passed = count(|r| matches!(r, Verdict::Passed));
    let skipped = count(|r| matches!(r, Verdict::Skipped(_)));
    let failed = count(|r| matches!(r, Verdict::Failed));
    if failed > 0 {
        println!("\nfailures:");
        for (name, _, _) in results
            .iter()
            .filter(|(_, r, _)| matches!(r, Verdict::Failed))
        {
            println!("    {name}");
        }
    }
    println!(
        "\ne2e result: {}. {passed} passed; {failed} failed; {skipped} skipped; finished in {:.2}s\n",
        if failed == 0 { "ok" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    std::process::exit(if failed == 0 { 0 } else { 101 });
}

fn report(name: &str, r: &Verdict, took: Duration) {
    match r {
        Verdict::Passed => println!("test {name} ... ok ({:.1}s)", took.as_secs_f64()),
        Verdict::Skipped(why) => println!("test {name} ... SKIPPED: {why}"),
        Verdict::Failed => println!("test {name} ... FAILED ({:.1}s)", took.as_secs_f64()),
    }
}
