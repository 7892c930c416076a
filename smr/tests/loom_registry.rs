//! Model checks of the reader-slot registry's thread-exit paths: a slot given
//! back by an exiting thread and claimed by another, and the temporary slot
//! a section uses when it starts inside a thread-local destructor (after the
//! thread's slot list is gone).
//!
//! Run:      RUSTFLAGS="--cfg loom" cargo test -p smr --release --test loom_registry
//!
//! Negative control (`.ci/run` runs it): built with
//! `--cfg smr_weakened="claim"`, a free slot is claimed by a load and a store
//! instead of a CAS, so two threads can take one slot; the first to leave
//! its section then clears the value the other still needs, and the models
//! below must catch that as a causality violation on the protected object.
//!
//! Why these are not `exited_thread_slot_is_recycled` (`loom.rs`, ignored):
//! loom runs a thread's thread-local destructors *after* the point its join
//! synchronises with, so "the joined thread's slot is free" is not ordered
//! before the joiner and a slot count cannot be asserted. These models
//! assert what matters instead — no reader's section is ever cut short by
//! another thread sharing its slot — and let loom explore the release
//! racing the claims, which is exactly what that ordering makes possible.
//!
//! Each model uses the protected-object pattern of `loom.rs`: the writer
//! poisons a `loom::cell::UnsafeCell` once `poll` passes; a reader reads it
//! inside its section. Loom reports any read and poison not ordered by
//! happens-before.
#![cfg(loom)]

use loom::thread;
use smr::{Config, Domain, Mode};
use std::cell::RefCell;
use std::sync::Arc;

#[path = "support/loom_object.rs"]
mod loom_object;
use loom_object::Shared;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(f);
}

fn domain() -> Arc<Domain> {
    Arc::new(Domain::with_config(Config::new(Mode::Default)))
}

/// The writer's half: unlink, one goal, poison only if it passed.
fn unlink_and_free_if_passed(d: &Domain, s: &Shared) {
    s.unlink();
    let goal = d.advance();
    if d.poll(goal) {
        s.poison();
    }
}

/// A thread exits and gives its slot back while two new readers claim
/// slots: whichever of them gets the freed slot has it alone, so neither's
/// exit clears the other's published sequence.
#[test]
fn a_freed_slot_goes_to_one_new_thread_at_a_time() {
    model(|| {
        let d = domain();
        let s = Shared::new();
        // Leaves a free slot behind (its release races what follows: loom
        // drops thread-locals after the join's synchronisation point).
        let d1 = d.clone();
        thread::spawn(move || drop(d1.enter())).join().unwrap();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (d, s) = (d.clone(), s.clone());
                thread::spawn(move || {
                    let _section = d.enter();
                    thread::yield_now();
                    s.read();
                })
            })
            .collect();
        unlink_and_free_if_passed(&d, &s);
        for r in readers {
            r.join().unwrap();
        }
    });
}

/// A thread-local whose destructor opens a section. Loom takes every value
/// of a finishing thread's thread-locals out before dropping any, so by then
/// the thread's slot list is gone and the section runs on a temporary slot.
struct LateReader(RefCell<Option<(Arc<Domain>, Arc<Shared>)>>);

impl Drop for LateReader {
    fn drop(&mut self) {
        if let Some((d, s)) = self.0.borrow_mut().take() {
            let _section = d.enter();
            // `in_section` cannot see the slot list any more: this section
            // took the temporary-slot path.
            assert!(!d.in_section(), "the thread's slot list is still alive");
            thread::yield_now();
            s.read();
        }
    }
}

loom::thread_local! {
    static LATE: LateReader = LateReader(RefCell::new(None));
}

/// A section opened during thread-local teardown (on a temporary slot)
/// holds back `poll` like any other, while another reader races it for the
/// slot an exited thread gave back.
///
/// Loom drops a thread's thread-locals in hash-map order, which differs from
/// one execution to the next; a model is only deterministic if at most one
/// of them does anything observable when dropped. So the exiting thread
/// touches its slot list without claiming a slot (`in_section`): the list
/// exists, and is destroyed, but its destructor has nothing to release.
#[test]
fn a_section_in_a_thread_local_destructor_holds_back_poll() {
    model(|| {
        let d = domain();
        let s = Shared::new();
        let d1 = d.clone();
        thread::spawn(move || drop(d1.enter())).join().unwrap();
        let exiting = {
            let (d, s) = (d.clone(), s.clone());
            thread::spawn(move || {
                assert!(!d.in_section());
                LATE.with(|l| *l.0.borrow_mut() = Some((d, s)));
            })
        };
        let other = {
            let (d, s) = (d.clone(), s.clone());
            thread::spawn(move || {
                let _section = d.enter();
                s.read();
            })
        };
        unlink_and_free_if_passed(&d, &s);
        exiting.join().unwrap();
        other.join().unwrap();
    });
}
