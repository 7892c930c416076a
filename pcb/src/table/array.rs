//! One bucket array of the exact table: a power-of-two run of 8-byte chain
//! heads, and which of the PCB's two links its chains use.
//!
//! Invariant: **an array's chains are changed only under the stripe lock of
//! the bucket (`index & (stripes-1)`), and only through the link `link`.**
//! Two arrays with different `link` can therefore hold the same PCB at once
//! (the readers' array and the one a resize is building) without one's
//! writes disturbing the other's readers.
//!
//! The head word. A head is one 64-bit atomic word: the first PCB's address
//! in the low 48 bits (x86_64 and aarch64 user addresses fit; `push_locked`
//! checks) and, in the top 16, the chain's **tag summary**: bit `tag(h)` set
//! for the hash `h` of every PCB in the chain, where `tag(h)` is the top
//! four hash bits (never index bits). Invariant: **the summary a head word
//! holds covers every PCB in its chain**. A lookup whose tag bit is clear
//! returns "absent" after reading the head word alone, without touching a
//! PCB; one whose bit is set walks the chain as before. Address and summary
//! are written together in one atomic store, so a reader sees a summary and
//! the chain it describes at once, and the summary adds no ordering of its
//! own: every head store is the Release store that publishes the chain, and
//! every head load the Acquire load that reads it. A push ORs the new PCB's
//! bit in; an unlink recomputes the summary of the chain that is left
//! (rehashing its keys, under the stripe lock), so churn does not saturate
//! it. A reader holding an older, wider summary only walks more; one
//! holding the new, narrower one may miss only the PCB being unlinked, whose
//! removal has already begun (the linearisation point of a remove is its
//! unlink). [`Layout::Plain`] arrays keep every summary bit set, so their
//! lookups always walk: the layout before the summary, kept to measure it.
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

#[cfg(not(target_pointer_width = "64"))]
compile_error!("pcb's bucket head word packs a 16-bit tag summary above a 48-bit address");

/// Low bits of a head word: the address.
const ADDR_MASK: usize = (1 << 48) - 1;
/// High bits of a head word: the tag summary.
const SUMMARY_MASK: usize = !ADDR_MASK;

/// How a bucket array's head words are used (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// Each head carries its chain's tag summary: a lookup of an absent
    /// tuple whose tag is not in the summary reads no PCB.
    #[default]
    Summary,
    /// Every summary bit is always set: every lookup walks its chain (the
    /// layout without the summary, kept for the benchmark's comparison).
    Plain,
}

/// The address in a head word (null for an empty chain).
#[inline(always)]
fn addr_of<T>(word: *mut Pcb<T>) -> *mut Pcb<T> {
    word.map_addr(|a| a & ADDR_MASK)
}

/// A bucket array (see the module docs).
pub(crate) struct Array<T> {
    mask: TupleCell<usize>,
    link: usize,
    layout: Layout,
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
    pub(crate) fn alloc(n: usize, link: usize, layout: Layout) -> *mut Array<T> {
        debug_assert!(n.is_power_of_two() && link < 2);
        Box::into_raw(Box::new(Array {
            mask: TupleCell::new(n - 1),
            link,
            layout,
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

    /// How this array's head words are used.
    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    /// The summary bit of hash `h`: one of the top 16 bits of a head word,
    /// chosen by the hash's top four bits (the index uses the low ones).
    /// All of them in a plain array, so that every lookup walks.
    #[inline(always)]
    fn tag(&self, h: usize) -> usize {
        match self.layout {
            Layout::Summary => 1 << (48 + (h >> 60)),
            Layout::Plain => SUMMARY_MASK,
        }
    }

    /// A head word: `p` with `summary`, or null for an empty chain.
    fn pack(p: *mut Pcb<T>, summary: usize) -> *mut Pcb<T> {
        if p.is_null() {
            return p;
        }
        assert_eq!(
            p.addr() & SUMMARY_MASK,
            0,
            "pcb::Table: a PCB address above 2^48 does not fit a bucket head word"
        );
        p.map_addr(|a| a | (summary & SUMMARY_MASK))
    }

    /// The summary bits of the chain from `p` (its PCBs' tags). The caller
    /// holds the chain's stripe lock; `hash_of` is the table's key hash.
    fn summary_from(&self, mut p: *mut Pcb<T>, hash_of: &impl Fn(&Key) -> usize) -> usize {
        if self.layout == Layout::Plain {
            return SUMMARY_MASK;
        }
        let mut summary = 0;
        while let Some(nn) = NonNull::new(p) {
            // SAFETY: linked PCBs are not retired while linked, and the
            // caller holds the stripe lock (so the key is not written).
            let pcb = unsafe { nn.as_ref() };
            // SAFETY: as above.
            summary |= self.tag(hash_of(&unsafe { pcb.key() }));
            // Relaxed: under the stripe lock (see `for_each_locked`).
            p = pcb.links[self.link].load(Relaxed);
        }
        summary
    }

    /// The summary bits in bucket `i`'s head word (tests).
    #[cfg(test)]
    pub(crate) fn summary_bits(&self, i: usize) -> usize {
        // Relaxed: tests call it with the table quiescent.
        self.heads[i].load(Relaxed).addr() >> 48
    }

    #[inline(always)]
    fn index(&self, h: usize) -> usize {
        // SAFETY: `mask` is written only at creation and when the array is
        // freed, after every section and lock holder that could reach it.
        h & unsafe { self.mask.get() }
    }

    /// The first PCB of the chain for hash `h`, and the link to follow from
    /// there; null when the chain's summary excludes `h`'s tag (no PCB in it
    /// can have this hash). For readers inside a read section.
    #[inline(always)]
    pub(crate) fn head(&self, h: usize) -> (*mut Pcb<T>, usize) {
        // Acquire: pairs with the Release store in `push_locked` /
        // `unlink_locked` that made this word current, so the PCB's key and
        // link written before publication are visible. The summary came in
        // the same word (see the module docs).
        let word = self.heads[self.index(h)].load(Acquire);
        if word.addr() & self.tag(h) == 0 {
            return (ptr::null_mut(), self.link);
        }
        (addr_of(word), self.link)
    }

    /// Walk chain `i`, calling `f` with each PCB and its key.
    ///
    /// Only called with a read section of the table's domain open (for_each,
    /// chain_stats), which is what makes the dereferences sound.
    pub(crate) fn walk(&self, i: usize, mut f: impl FnMut(NonNull<Pcb<T>>, Key)) {
        // Acquire: as in `head`.
        let mut p = addr_of(self.heads[i].load(Acquire));
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
        let mut p = addr_of(self.heads[self.index(h)].load(Relaxed));
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
        let mut p = addr_of(self.heads[i].load(Relaxed));
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
        // Relaxed: under the stripe lock (see `for_each_locked`).
        let old = head.load(Relaxed);
        // Relaxed: published by the Release store below.
        pcb.links[self.link].store(addr_of(old), Relaxed);
        // The old summary covers the old chain; add `new`'s tag.
        let word = Self::pack(new.as_ptr(), old.addr() | self.tag(h));
        // Release: pairs with the Acquire loads in `head`/`walk`/`lookup`,
        // so a reader that sees `new` sees its key, its link and its state
        // (and the summary that covers it, in the same word).
        head.store(word, Release);
    }

    /// Splice `victim` out of the chain of hash `h` and narrow the chain's
    /// summary to what is left (`hash_of`: the table's key hash); whether
    /// it was there. Its own link is left intact, so a reader standing on
    /// it walks on.
    ///
    /// # Safety
    /// The caller holds the stripe lock of `h`.
    pub(crate) unsafe fn unlink_locked(
        &self,
        h: usize,
        victim: NonNull<Pcb<T>>,
        hash_of: impl Fn(&Key) -> usize,
    ) -> bool {
        let head = &self.heads[self.index(h)];
        // Relaxed: under the stripe lock.
        let old = head.load(Relaxed);
        let first = addr_of(old);
        let mut link: Option<&AtomicPtr<Pcb<T>>> = None;
        let mut p = first;
        let rest = loop {
            let Some(nn) = NonNull::new(p) else {
                return false;
            };
            // SAFETY: linked, so not retired.
            let pcb = unsafe { nn.as_ref() };
            // Relaxed: under the stripe lock.
            let next = pcb.links[self.link].load(Relaxed);
            if nn == victim {
                break next;
            }
            link = Some(&pcb.links[self.link]);
            p = next;
        };
        // The chain without the victim starts at `new_first`.
        let new_first = match link {
            // Release: the successor was published by an earlier Release
            // store; this one carries that to readers that load the new
            // pointer from the predecessor's link with Acquire.
            Some(pred) => {
                pred.store(rest, Release);
                first
            }
            None => rest,
        };
        let word = Self::pack(new_first, self.summary_from(new_first, &hash_of));
        if word != old {
            // Release: as above when the victim was first (this store is
            // the splice); otherwise it only narrows the summary, after the
            // splice, so a reader that sees the narrow summary walks a chain
            // without the victim (and one that sees the old summary only
            // walks more).
            head.store(word, Release);
        }
        true
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
