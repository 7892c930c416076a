//! Unit tests that need to stop a poller inside `scan`.

use super::*;
use std::sync::mpsc;

pub(super) mod hooks {
    use std::cell::RefCell;

    std::thread_local! {
        static BEFORE_CAS: RefCell<Option<Box<dyn FnMut()>>> = const { RefCell::new(None) };
    }

    /// Called by `scan` between its snapshot and its read-hand CAS.
    pub(in crate::domain) fn before_read_hand_cas() {
        BEFORE_CAS.with(|h| {
            if let Some(f) = h.borrow_mut().as_mut() {
                f();
            }
        });
    }

    /// Run `f` at that point of every scan on the calling thread.
    pub(in crate::domain) fn set_before_read_hand_cas(f: impl FnMut() + 'static) {
        BEFORE_CAS.with(|h| *h.borrow_mut() = Some(Box::new(f)));
    }
}

/// A poller preempted between its snapshot and its read-hand CAS while
/// other threads move the sequences far on must not move the read hand back.
/// With 32-bit sequences and the old wrap-test step (2^32 / 10,000), 6,000
/// advances during the pause carried the sequences more than 2^31 on, the
/// stale candidate then looked *ahead* of the read hand in wrap order, the
/// CAS moved the read hand back across the wrap, and every fresh goal looked
/// passed. (The review reproduced it with real threads pinned to one CPU; here
/// the preemption is forced.) With 64-bit sequences the same pause would need
/// 2^62 advances.
#[test]
fn preempted_poller_never_moves_the_read_hand_back_across_the_wrap() {
    let d = Arc::new(Domain::with_config(Config::new(Mode::Default).wrap_test()));
    // A goal nobody has polled yet: the read hand is still at the start.
    let g0 = d.advance();

    // The poller snapshots, then parks before its CAS until released.
    let (parked_tx, parked_rx) = mpsc::channel();
    let (resume_tx, resume_rx) = mpsc::channel::<()>();
    let dp = d.clone();
    let poller = std::thread::spawn(move || {
        let mut once = Some((parked_tx, resume_rx));
        hooks::set_before_read_hand_cas(move || {
            if let Some((parked, resume)) = once.take() {
                parked.send(()).unwrap();
                let _ = resume.recv();
            }
        });
        dp.poll(g0);
    });
    parked_rx.recv().unwrap();
    // While it sleeps, other threads move both hands far on, crossing the
    // wrap point of the test sequence space.
    let start = d.stats().write_seq;
    for _ in 0..6_000 {
        let g = d.advance();
        assert!(d.poll(g));
    }
    // Raw integer order on purpose: past the wrap point the value is smaller.
    assert!(
        d.stats().write_seq < start,
        "the sequences crossed the wrap"
    );
    let before = d.stats().read_seq;
    drop(resume_tx);
    poller.join().unwrap();
    let after = d.stats().read_seq;
    assert!(
        leq(before, after),
        "read hand moved back: {before} -> {after}"
    );
    // And the property that matters: a fresh goal does not pass while a
    // section that entered before it is open.
    let s = d.enter();
    let g = d.advance();
    assert!(!d.poll(g), "a goal passed under an open section");
    drop(s);
    assert!(d.poll(g));
}
