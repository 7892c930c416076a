//! One bucket array of the exact table: a power-of-two run of 8-byte chain
//! heads, and which of the PCB's two links its chains use.
//!
//! Invariant: **an array's chains are changed only under the stripe lock of
//! the bucket (`index & (stripes-1)`), and only through the link `link`.**
//! Two arrays with different `link` can therefore hold the same PCB at once
//! (the readers' array and the one a resize is building) without one's
//! writes disturbing the other's readers.
//!
//! Locking key for [`Array`]:
//! - `heads[i]`, and `links[link]` of every PCB in chain `i`: written under
//!   the stripe lock of `i`; readers load them with Acquire inside a read
//!   section, pairing with the Release stores here.
//! - `mask`: written at creation, and (loom and poison builds) once more
//!   when the array is retired, after its grace period; a reader that could
//!   still read it then is a reclamation bug that loom reports as a race.
//! - `link`: constant.

use crate::pcb::Pcb;
use crate::primitive::{AtomicPtr, TupleCell};
use crate::tuple::Key;
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// A bucket array (see the module docs).
pub(crate) struct Array<T> {
    mask: TupleCell<usize>,
    link: usize,
    heads: Box<[AtomicPtr<Pcb<T>>]>,
    /// Set when the resizer retired it (poison builds keep retired arrays
    /// until the table drops, so a late reader reads this, not freed memory).
    #[cfg(all(feature = "poison", not(loom)))]
    retired: std::sync::atomic::AtomicBool,
}

impl<T> Array<T> {
    /// A new empty array of `n` buckets (a power of two, at least the
    /// table's stripes) whose chains use link `link`, owned by the caller as
    /// a raw pointer.
    pub(crate) fn alloc(n: usize, link: usize) -> *mut Array<T> {
        debug_assert!(n.is_power_of_two() && link < 2);
        Box::into_raw(Box::new(Array {
            mask: TupleCell::new(n - 1),
            link,
            heads: (0..n).map(|_| AtomicPtr::new(ptr::null_mut())).collect(),
            #[cfg(all(feature = "poison", not(loom)))]
            retired: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Free an array.
    ///
    /// # Safety
    /// `arr` came from [`alloc`](Self::alloc), and no thread can reach it:
    /// it is no longer published and every section and stripe-lock holder
    /// that could have loaded it has finished.
    pub(crate) unsafe fn free(arr: *mut Array<T>) {
        // SAFETY: the caller's contract: ours alone.
        let b = unsafe { Box::from_raw(arr) };
        // The loom build writes the mask once more, so that a reader still
        // reading it (a grace period that ended too early) is a reported race.
        #[cfg(loom)]
        // SAFETY: as above (if it is not, loom reports it).
        unsafe {
            b.mask.set(usize::MAX)
        };
        drop(b);
    }

    /// Poison builds: mark a retired array and empty its chains, instead of
    /// freeing it. A reader that loads it after its grace period counts a
    /// poison hit and misses every key.
    ///
    /// # Safety
    /// As [`free`](Self::free), except that the memory stays valid.
    #[cfg(all(feature = "poison", not(loom)))]
    pub(crate) unsafe fn poison(arr: *mut Array<T>) {
        // SAFETY: the memory is valid (the caller keeps it); only atomics are
        // written, so even a buggy concurrent reader is no data race.
        let a = unsafe { &*arr };
        // Relaxed: the reader's check is statistics; the nulled heads below
        // are what make a late reader miss.
        a.retired.store(true, Relaxed);
        for h in a.heads.iter() {
            h.store(ptr::null_mut(), Relaxed);
        }
    }

    /// Whether the resizer retired this array (poison builds).
    #[cfg(all(feature = "poison", not(loom)))]
    pub(crate) fn is_retired(&self) -> bool {
        // Relaxed: statistics only.
        self.retired.load(Relaxed)
    }

    /// Number of buckets.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.heads.len()
    }

    /// Which of the PCB's links this array's chains use.
    pub(crate) fn link(&self) -> usize {
        self.link
    }

    #[inline(always)]
    fn index(&self, h: usize) -> usize {
        // SAFETY: `mask` is written only at creation and when the array is
        // freed, after every section and lock holder that could reach it.
        h & unsafe { self.mask.get() }
    }

    /// The first PCB of the chain for hash `h`, and the link to follow from
    /// there. For readers inside a read section.
    #[inline(always)]
    pub(crate) fn head(&self, h: usize) -> (*mut Pcb<T>, usize) {
        // Acquire: pairs with the Release store in `push_locked` /
        // `unlink_locked` that made this pointer current, so the PCB's key
        // and link written before publication are visible.
        (self.heads[self.index(h)].load(Acquire), self.link)
    }

    /// Walk chain `i`, calling `f` with each PCB and its key.
    ///
    /// Only called with a read section of the table's domain open (for_each,
    /// chain_stats), which is what makes the dereferences sound.
    pub(crate) fn walk(&self, i: usize, mut f: impl FnMut(NonNull<Pcb<T>>, Key)) {
        // Acquire: as in `head`.
        let mut p = self.heads[i].load(Acquire);
        while let Some(nn) = NonNull::new(p) {
            // SAFETY: the caller holds a read section (see above): a PCB
            // reachable in it is constructed and its key is not written.
            let pcb = unsafe { nn.as_ref() };
            // SAFETY: as above.
            f(nn, unsafe { pcb.key() });
            // Acquire: as in `head`.
            p = pcb.links[self.link].load(Acquire);
        }
    }

    /// The linked PCB with `key` in the chain of hash `h`. The caller holds
    /// the stripe lock of `h`.
    pub(crate) fn find_locked(&self, h: usize, key: &Key) -> Option<NonNull<Pcb<T>>> {
        // Relaxed loads: as in `for_each_locked`.
        let mut p = self.heads[self.index(h)].load(Relaxed);
        while let Some(nn) = NonNull::new(p) {
            // SAFETY: linked PCBs are not retired while linked, and the
            // caller holds the stripe lock (so the key is not written).
            let pcb = unsafe { nn.as_ref() };
            // SAFETY: as above.
            if unsafe { pcb.key() } == *key {
                return Some(nn);
            }
            p = pcb.links[self.link].load(Relaxed);
        }
        None
    }

    /// Call `f` on every PCB of chain `i` (it may relink the PCB in another
    /// array: the next pointer is read before `f` runs).
    ///
    /// # Safety
    /// The caller holds the stripe lock of `i`.
    pub(crate) unsafe fn for_each_locked(&self, i: usize, mut f: impl FnMut(NonNull<Pcb<T>>)) {
        // Relaxed loads: every store to this chain happens under the stripe
        // lock the caller holds, whose acquisition orders them before us.
        let mut p = self.heads[i].load(Relaxed);
        while let Some(nn) = NonNull::new(p) {
            // SAFETY: linked PCBs are not retired while linked (the table's
            // invariant), and the caller holds the stripe lock.
            p = unsafe { nn.as_ref() }.links[self.link].load(Relaxed);
            f(nn);
        }
    }

    /// Link `new` at the head of the chain of hash `h`.
    ///
    /// # Safety
    /// The caller holds the stripe lock of `h`; `new` is constructed and not
    /// linked in this array.
    pub(crate) unsafe fn push_locked(&self, h: usize, new: NonNull<Pcb<T>>) {
        // SAFETY: the caller's contract.
        let pcb = unsafe { new.as_ref() };
        let head = &self.heads[self.index(h)];
        // Relaxed: under the stripe lock (see `for_each_locked`); published
        // by the Release store below.
        pcb.links[self.link].store(head.load(Relaxed), Relaxed);
        // Release: pairs with the Acquire loads in `head`/`walk`/`lookup`,
        // so a reader that sees `new` sees its key, its link and its state.
        head.store(new.as_ptr(), Release);
    }

    /// Splice `victim` out of the chain of hash `h`; whether it was there.
    /// Its own link is left intact, so a reader standing on it walks on.
    ///
    /// # Safety
    /// The caller holds the stripe lock of `h`.
    pub(crate) unsafe fn unlink_locked(&self, h: usize, victim: NonNull<Pcb<T>>) -> bool {
        let mut link: &AtomicPtr<Pcb<T>> = &self.heads[self.index(h)];
        loop {
            // Relaxed: under the stripe lock.
            let p = link.load(Relaxed);
            let Some(nn) = NonNull::new(p) else {
                return false;
            };
            // SAFETY: linked, so not retired.
            let pcb = unsafe { nn.as_ref() };
            if nn == victim {
                // Release: the successor was published by an earlier Release
                // store; this one carries that to readers that load the new
                // pointer from `link` with Acquire.
                link.store(pcb.links[self.link].load(Relaxed), Release);
                return true;
            }
            link = &pcb.links[self.link];
        }
    }

    /// Empty every chain of stripe `s` (no PCB is touched). For an array no
    /// reader can load yet.
    ///
    /// # Safety
    /// The caller holds the stripe lock of `s`, and the array is not
    /// published to readers.
    pub(crate) unsafe fn clear_stripe_locked(&self, s: usize, stripes: usize) {
        for i in (s..self.len()).step_by(stripes) {
            // Relaxed: unpublished; the swap's Release store publishes it.
            self.heads[i].store(ptr::null_mut(), Relaxed);
        }
    }
}
