//! Real-thread stress: readers walk a linked list inside read sections while a
//! writer unlinks nodes, waits for their grace period, poisons them, parks
//! them in a FIFO free list (so they stay poisoned for a while) and links them
//! back in later. A reader that ever sees poison has touched memory the
//! writer believed unreachable: a use-after-free in a real allocator.
//!
//! Each scheme runs for a bounded time. The negative control reuses nodes
//! without waiting and must be caught, which shows the test can fail.
#![cfg(not(loom))]

use smr::{Config, Domain, Mode, Pserialize, Variant};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::time::{Duration, Instant};

const NODES: usize = 64;
const LINKED: usize = 32;
const LIVE: u64 = 0x11fe;
const POISON: u64 = 0xdead_beef;

struct Node {
    value: AtomicU64,
    /// Index + 1 of the next node; 0 ends the list.
    next: AtomicUsize,
}

struct List {
    head: AtomicUsize,
    nodes: Vec<Node>,
}

impl List {
    fn new() -> List {
        let nodes: Vec<Node> = (0..NODES)
            .map(|_| Node {
                value: AtomicU64::new(POISON),
                next: AtomicUsize::new(0),
            })
            .collect();
        for (i, node) in nodes.iter().enumerate().take(LINKED) {
            node.value.store(LIVE, Relaxed);
            node.next
                .store(if i + 1 < LINKED { i + 2 } else { 0 }, Relaxed);
        }
        List {
            head: AtomicUsize::new(1),
            nodes,
        }
    }

    /// Walk the list; return how many poisoned nodes were seen.
    fn walk(&self) -> u64 {
        let mut hits = 0;
        let mut cur = self.head.load(Acquire);
        let mut steps = 0;
        while cur != 0 && steps < 2 * NODES {
            let node = &self.nodes[cur - 1];
            if node.value.load(Relaxed) != LIVE {
                hits += 1;
            }
            cur = node.next.load(Acquire);
            steps += 1;
        }
        hits
    }
}

/// How the writer waits before reusing a node.
enum Scheme {
    Smr(Box<Domain>),
    Pserialize(Pserialize),
    /// No waiting at all: the negative control.
    Unsafe,
}

impl Scheme {
    fn read(&self, list: &List) -> u64 {
        match self {
            Scheme::Smr(d) => {
                let _s = d.enter();
                list.walk()
            }
            Scheme::Pserialize(p) => {
                let _s = p.read_enter();
                list.walk()
            }
            Scheme::Unsafe => list.walk(),
        }
    }
}

struct Outcome {
    poison_hits: u64,
    walks: u64,
    recycled: u64,
}

/// The single writer: its own shadow of the list order, the nodes waiting for
/// a grace period, and the poisoned free list.
fn churn(scheme: &Scheme, list: &List, stop: &AtomicBool, progress: &AtomicU64) -> u64 {
    let mut order: Vec<usize> = (1..=LINKED).collect();
    let mut free: VecDeque<usize> = (LINKED + 1..=NODES).collect();
    let mut waiting: VecDeque<(Option<smr::Goal>, usize)> = VecDeque::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut recycled = 0;
    let free_node = |idx: usize, free: &mut VecDeque<usize>| {
        list.nodes[idx - 1].value.store(POISON, Relaxed);
        free.push_back(idx);
    };
    while !stop.load(Relaxed) {
        // Unlink a random node (never the last one).
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let k = (rng as usize) % (order.len() - 1);
        let victim = order.remove(k);
        let after = order.get(k).copied().unwrap_or(0);
        if k == 0 {
            list.head.store(after, Release);
        } else {
            list.nodes[order[k - 1] - 1].next.store(after, Release);
        }
        match scheme {
            Scheme::Smr(d) => {
                waiting.push_back((Some(d.advance()), victim));
                // Reuse what has passed; block only when too much waits.
                while let Some(&(Some(goal), idx)) = waiting.front() {
                    if d.poll(goal) {
                    } else if waiting.len() > 16 {
                        d.wait(goal);
                    } else {
                        break;
                    }
                    waiting.pop_front();
                    free_node(idx, &mut free);
                }
            }
            Scheme::Pserialize(p) => {
                p.perform();
                free_node(victim, &mut free);
            }
            Scheme::Unsafe => free_node(victim, &mut free),
        }
        // Link the oldest free node back in at the head.
        if let Some(idx) = free.pop_front() {
            let node = &list.nodes[idx - 1];
            node.value.store(LIVE, Relaxed);
            node.next
                .store(order.first().copied().unwrap_or(0), Relaxed);
            list.head.store(idx, Release);
            order.insert(0, idx);
            recycled += 1;
            progress.store(recycled, Relaxed);
        }
    }
    recycled
}

/// Walks and recycled nodes a run must reach before it counts.
const MIN_WORK: u64 = 100;

/// No run goes on longer than this, however little it got done.
const HARD_LIMIT: Duration = Duration::from_secs(20);

fn run(scheme: Scheme, duration: Duration, stop_on_first_hit: bool) -> Outcome {
    let list = List::new();
    let stop = AtomicBool::new(false);
    let hits = AtomicU64::new(0);
    let walks = AtomicU64::new(0);
    let progress = AtomicU64::new(0);
    let recycled = std::thread::scope(|s| {
        for i in 0..2 {
            let (scheme, list, stop, hits, walks) = (&scheme, &list, &stop, &hits, &walks);
            std::thread::Builder::new()
                .name(format!("reader-{i}"))
                .spawn_scoped(s, move || {
                    while !stop.load(Relaxed) {
                        let h = scheme.read(list);
                        walks.fetch_add(1, Relaxed);
                        if h > 0 {
                            hits.fetch_add(h, Relaxed);
                            if stop_on_first_hit {
                                stop.store(true, Relaxed);
                            }
                        }
                    }
                })
                .unwrap();
        }
        let writer = s.spawn(|| churn(&scheme, &list, &stop, &progress));
        // Run for `duration`, and on (up to a hard limit) until enough has
        // happened to mean something: on a loaded 2-CPU machine a blocking
        // grace period can take most of a scheduler slice.
        let start = Instant::now();
        loop {
            let elapsed = start.elapsed();
            let enough = walks.load(Relaxed) > MIN_WORK && progress.load(Relaxed) > MIN_WORK;
            if stop.load(Relaxed) || (elapsed >= duration && (enough || elapsed >= HARD_LIMIT)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Relaxed);
        writer.join().unwrap()
    });
    Outcome {
        poison_hits: hits.load(Relaxed),
        walks: walks.load(Relaxed),
        recycled,
    }
}

fn assert_safe(name: &str, scheme: Scheme) {
    let o = run(scheme, Duration::from_millis(800), false);
    eprintln!(
        "{name}: {} walks, {} nodes recycled, {} poison hits",
        o.walks, o.recycled, o.poison_hits
    );
    assert_eq!(o.poison_hits, 0, "{name}: a reader saw reused memory");
    assert!(
        o.walks > MIN_WORK && o.recycled > MIN_WORK,
        "{name}: the stress did not run"
    );
}

#[test]
fn smr_default_readers_never_see_recycled_nodes() {
    assert_safe(
        "smr-default",
        Scheme::Smr(Box::new(Domain::new(Mode::Default))),
    );
}

#[test]
fn smr_lazy_readers_never_see_recycled_nodes() {
    assert_safe("smr-lazy", Scheme::Smr(Box::new(Domain::new(Mode::Lazy))));
}

#[test]
fn smr_deferred_readers_never_see_recycled_nodes() {
    assert_safe(
        "smr-deferred",
        Scheme::Smr(Box::new(Domain::new(Mode::Deferred))),
    );
}

#[test]
fn smr_readers_never_see_recycled_nodes_across_sequence_wrap() {
    for mode in [Mode::Default, Mode::Lazy, Mode::Deferred] {
        let d = Domain::with_config(Config::new(mode).wrap_test());
        assert_safe(
            &format!("smr-{}-wrap", mode.name()),
            Scheme::Smr(Box::new(d)),
        );
    }
}

#[test]
fn pserialize_naive_readers_never_see_recycled_nodes() {
    assert_safe(
        "pserialize-naive",
        Scheme::Pserialize(Pserialize::new(Variant::Naive)),
    );
}

#[test]
fn pserialize_coalesced_readers_never_see_recycled_nodes() {
    assert_safe(
        "pserialize-coalesced",
        Scheme::Pserialize(Pserialize::new(Variant::Coalesced)),
    );
}

/// The negative control: reuse without a grace period is caught.
#[test]
fn reuse_without_grace_period_is_caught() {
    let o = run(Scheme::Unsafe, Duration::from_secs(5), true);
    assert!(
        o.poison_hits > 0,
        "the stress harness failed to catch unprotected reuse ({} walks, {} recycled)",
        o.walks,
        o.recycled
    );
}
