//! Type-stable slab chunks: the only place pool memory comes from.
//!
//! Invariant: a slot's `T` is constructed once, when its chunk is created, and
//! dropped only when the whole chunk is freed; in between it is only ever
//! handed out as that same `T`. A reader holding a stale pointer inside its
//! read section therefore always finds a constructed `T` (its locks intact),
//! and a chunk is freed only when every one of its slots has passed a grace
//! period, so no section can still hold a pointer into it.
//!
//! The pool never writes free-list links into objects (magazines are arrays
//! of pointers, NetBSD's `PR_NOTOUCH`); the only words it writes are in the
//! slot header in front of the object.
//!
//! Locking key: `Slabs::chunks` (mutex); `Header::generation` (w: the thread
//! that owns the object, r: anyone holding a pointer); `Header::poison`
//! (w: the thread moving a batch to the reusable state or allocating it);
//! `Header::retired_ns` (w: owner, statistics); `Header::chunk` (constant).

use crate::primitive::{AtomicU64, Mutex, lock};
use std::mem::offset_of;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// The poison word of a slot that has passed its grace period and sits free.
#[cfg(feature = "poison")]
pub(crate) const POISONED: u64 = 0xdead_f00d_dead_f00d;
/// The poison word of a slot that is live or still waiting for readers.
#[cfg(feature = "poison")]
pub(crate) const CLEAN: u64 = 0;

/// The words the pool keeps in front of every object.
#[repr(C)]
pub(crate) struct Header {
    /// Bumped on every alloc and every retire: odd while allocated, even
    /// while free. Lets a reader that kept a pointer tell a reused object
    /// from the one it found.
    generation: AtomicU64,
    /// `POISONED` from the moment the slot becomes reusable until it is
    /// handed out again.
    #[cfg(feature = "poison")]
    poison: AtomicU64,
    /// Nanoseconds since the pool's birth at a sampled retire, else 0.
    /// Statistics only, so a std atomic even under loom.
    retired_ns: std::sync::atomic::AtomicU64,
    chunk: u32,
}

/// One pool object and its header. `repr(C)` so the header can be found from
/// a pointer to the value.
#[repr(C)]
pub(crate) struct Slot<T> {
    header: Header,
    value: T,
}

/// A pointer to a slot. Plain data: what it may be used for is decided by
/// which magazine or batch holds it.
pub(crate) type SlotPtr<T> = NonNull<Slot<T>>;

impl<T> Slot<T> {
    /// The object inside the slot.
    pub(crate) fn value_ptr(slot: SlotPtr<T>) -> NonNull<T> {
        // SAFETY: `slot` points into a resident chunk (every `SlotPtr` the
        // pool holds does), so the field projection stays in bounds.
        unsafe { NonNull::new_unchecked(&raw mut (*slot.as_ptr()).value) }
    }

    /// The slot holding `value`.
    ///
    /// # Safety
    /// `value` must point to the `value` field of a `Slot<T>` (it came from
    /// `value_ptr`).
    pub(crate) unsafe fn from_value(value: NonNull<T>) -> SlotPtr<T> {
        // SAFETY: by the caller's guarantee the slot starts `offset` bytes
        // before `value`, inside the same allocation.
        unsafe { value.byte_sub(offset_of!(Slot<T>, value)).cast() }
    }

    /// The header of a resident slot.
    ///
    /// # Safety
    /// `slot` must point into a chunk that has not been freed.
    pub(crate) unsafe fn header<'a>(slot: SlotPtr<T>) -> &'a Header {
        // SAFETY: the chunk is resident (caller), and the header is only
        // accessed through atomics and the constant `chunk`.
        unsafe { &(*slot.as_ptr()).header }
    }

    /// The constructed object of a resident slot, for the poison hook.
    ///
    /// # Safety
    /// `slot` must point into a chunk that has not been freed, and nobody may
    /// hold `&mut T` to it.
    #[cfg(feature = "poison")]
    pub(crate) unsafe fn value_ref<'a>(slot: SlotPtr<T>) -> &'a T {
        // SAFETY: caller.
        unsafe { &(*slot.as_ptr()).value }
    }
}

impl Header {
    fn new(chunk: u32) -> Header {
        Header {
            generation: AtomicU64::new(0),
            #[cfg(feature = "poison")]
            poison: AtomicU64::new(CLEAN),
            retired_ns: std::sync::atomic::AtomicU64::new(0),
            chunk,
        }
    }

    /// The chunk the slot belongs to.
    pub(crate) fn chunk(&self) -> u32 {
        self.chunk
    }

    /// Bump the generation. Only the thread that owns the object calls this
    /// (the allocator before handing it out, the owner when retiring it), so
    /// a load and a store suffice.
    #[inline(always)]
    pub(crate) fn bump_generation(&self) -> u64 {
        // Relaxed load: we are the only writer.
        let g = self.generation.load(Relaxed).wrapping_add(1);
        // Release: pairs with the Acquire in `generation`; a reader that sees
        // the new value also sees every write the owner made before it
        // (before a retire: the object's last state; before an alloc: the
        // poison being cleared).
        self.generation.store(g, Release);
        g
    }

    /// The current generation (odd = allocated).
    #[inline(always)]
    pub(crate) fn generation(&self) -> u64 {
        // Acquire: pairs with the Release in `bump_generation`.
        self.generation.load(Acquire)
    }

    #[cfg(feature = "poison")]
    pub(crate) fn set_poison(&self, poisoned: bool) {
        // Relaxed: a diagnostic word; a reader that can see it at all is
        // already the bug the poison exists to catch, and the alloc that
        // clears it is published to readers by the owner's own Release.
        self.poison
            .store(if poisoned { POISONED } else { CLEAN }, Relaxed);
    }

    #[cfg(feature = "poison")]
    pub(crate) fn is_poisoned(&self) -> bool {
        // Relaxed: diagnostics, see `set_poison`.
        self.poison.load(Relaxed) == POISONED
    }

    /// Record a sampled retire time.
    pub(crate) fn set_retired_ns(&self, ns: u64) {
        // Relaxed: statistics only.
        self.retired_ns.store(ns.max(1), Relaxed);
    }

    /// Take a sampled retire time, if any.
    pub(crate) fn take_retired_ns(&self) -> Option<u64> {
        // Relaxed: statistics only (the slot moved to us through the depot
        // mutex or our own magazine, which orders it anyway).
        let ns = self.retired_ns.load(Relaxed);
        (ns != 0).then(|| {
            self.retired_ns.store(0, Relaxed);
            ns
        })
    }
}

/// A raw chunk: a leaked boxed slice, so moving the bookkeeping around never
/// retags the memory readers point into.
struct Chunk<T>(NonNull<[Slot<T>]>);

/// Every chunk of one pool, indexed by chunk id.
pub(crate) struct Slabs<T> {
    chunks: Mutex<Vec<Option<Chunk<T>>>>,
}

// SAFETY: the chunks hold `T`s that are shared between threads (`T: Send +
// Sync` is required by the pool), and the bookkeeping is behind a mutex.
unsafe impl<T: Send + Sync> Send for Slabs<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Slabs<T> {}

impl<T> Slabs<T> {
    pub(crate) fn new() -> Slabs<T> {
        Slabs {
            chunks: Mutex::new(Vec::new()),
        }
    }

    /// Construct a chunk of `n` objects with `init` and return its slots.
    /// `init` runs outside every pool lock.
    pub(crate) fn grow(&self, n: usize, init: &dyn Fn() -> T) -> Vec<SlotPtr<T>> {
        // Reserve an id first so the headers can name their chunk.
        let id = {
            let mut chunks = lock(&self.chunks);
            match chunks.iter().position(Option::is_none) {
                Some(i) => i,
                None => {
                    chunks.push(None);
                    chunks.len() - 1
                }
            }
        };
        let slots: Box<[Slot<T>]> = (0..n)
            .map(|_| Slot {
                header: Header::new(id as u32),
                value: init(),
            })
            .collect();
        let raw = NonNull::from(Box::leak(slots));
        let base: NonNull<Slot<T>> = raw.cast();
        // SAFETY: `i < n`, the length of the slice `base` starts.
        let out = (0..n).map(|i| unsafe { base.add(i) }).collect();
        lock(&self.chunks)[id] = Some(Chunk(raw));
        out
    }

    /// Free chunk `id` and drop its objects.
    ///
    /// # Safety
    /// Every slot of the chunk must be free and past its grace period, and
    /// the caller must have removed every pointer to it from the pool.
    pub(crate) unsafe fn free(&self, id: u32) {
        let chunk = lock(&self.chunks)[id as usize].take();
        if let Some(Chunk(raw)) = chunk {
            // SAFETY: `raw` came from `Box::leak` in `grow` and was taken
            // out of the table just above, so it is freed once; no reader
            // can hold a pointer into it (caller).
            drop(unsafe { Box::from_raw(raw.as_ptr()) });
        }
    }

    /// The number of objects in chunk `id` (0 if freed).
    pub(crate) fn chunk_len(&self, id: u32) -> usize {
        lock(&self.chunks)
            .get(id as usize)
            .and_then(|c| c.as_ref())
            .map_or(0, |c| c.0.len())
    }

    /// Resident chunks.
    pub(crate) fn resident(&self) -> usize {
        lock(&self.chunks).iter().filter(|c| c.is_some()).count()
    }
}

impl<T> Drop for Slabs<T> {
    fn drop(&mut self) {
        let chunks = std::mem::take(&mut *lock(&self.chunks));
        for Chunk(raw) in chunks.into_iter().flatten() {
            // SAFETY: the pool is gone, so no magazine, batch or caller can
            // still use the memory (raw pointers are valid only while the
            // pool lives, as `alloc_raw` documents).
            drop(unsafe { Box::from_raw(raw.as_ptr()) });
        }
    }
}
