//! The protected object the loom models share: reachable through `ptr`
//! (1 = reachable, 0 = unlinked), its contents a `loom::cell::UnsafeCell`.
//! The writer poisons it once `poll` passes; a reader reads it inside its
//! section if it found it reachable. Loom reports any read and poison not
//! ordered by happens-before, so a model fails both when a reader could
//! reach reused memory and when its exit is not ordered before the reuse.

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Release};

const LIVE: u64 = 1;
const POISON: u64 = 0xdead;

pub struct Shared {
    ptr: AtomicUsize,
    obj: UnsafeCell<u64>,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            ptr: AtomicUsize::new(1),
            obj: UnsafeCell::new(LIVE),
        })
    }

    /// Reader: inside a section, follow the pointer and read the object.
    pub fn read(&self) {
        if self.ptr.load(Acquire) == 1 {
            // SAFETY: loom checks this access against `poison`'s write.
            let v = self.obj.with(|p| unsafe { *p });
            assert_eq!(v, LIVE, "reader saw reused memory");
        }
    }

    pub fn unlink(&self) {
        self.ptr.store(0, Release);
    }

    pub fn poison(&self) {
        // SAFETY: loom checks this access against every `read`.
        self.obj.with_mut(|p| unsafe { *p = POISON });
    }
}
