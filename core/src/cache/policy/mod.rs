//! Eviction policies. Each works on entry indices in the shared slab; `Policy` dispatches over
//! them with a `match` (no trait objects on the hot path).
//!
//! The contract every policy keeps: it tracks exactly the unpinned entries of its partition
//! (`detach` on pin, `reattach` on unpin); `victim` unlinks and returns the entry to evict,
//! possibly reordering others first (CLOCK's second chances, S3-FIFO's promotions).

mod arc;
mod clock;
mod lfu;
mod lru;
mod priority;
mod s3fifo;
mod sieve;
mod twoq;
mod wtinylfu;

use super::PolicyKind;
use super::slab::Entry;
use super::table::fingerprint;
use priority::{Priority, Rule};

#[derive(Debug)]
pub(crate) enum Policy {
    Recency(lru::Recency),
    Clock(clock::Clock),
    Sieve(sieve::Sieve),
    Lfu(lfu::Lfu),
    Priority(Priority),
    S3Fifo(s3fifo::S3Fifo),
    TwoQ(twoq::TwoQ),
    Arc(arc::Arc),
    WTinyLfu(wtinylfu::WTinyLfu),
}

macro_rules! dispatch {
    ($self:expr, $p:ident => $body:expr) => {
        match $self {
            Policy::Recency($p) => $body,
            Policy::Clock($p) => $body,
            Policy::Sieve($p) => $body,
            Policy::Lfu($p) => $body,
            Policy::Priority($p) => $body,
            Policy::S3Fifo($p) => $body,
            Policy::TwoQ($p) => $body,
            Policy::Arc($p) => $body,
            Policy::WTinyLfu($p) => $body,
        }
    };
}

impl Policy {
    /// A policy managing `capacity` bytes (the size-relative targets of S3-FIFO, 2Q, ARC and
    /// W-TinyLFU derive from it).
    pub fn new(kind: PolicyKind, capacity: u64) -> Policy {
        match kind {
            PolicyKind::Lru => Policy::Recency(lru::Recency::new(true)),
            PolicyKind::Fifo => Policy::Recency(lru::Recency::new(false)),
            PolicyKind::Clock => Policy::Clock(clock::Clock::default()),
            PolicyKind::Sieve => Policy::Sieve(sieve::Sieve::default()),
            PolicyKind::Lfu => Policy::Lfu(lfu::Lfu::default()),
            PolicyKind::LfuDa => Policy::Priority(Priority::new(Rule::LfuAging)),
            PolicyKind::Gdsf => Policy::Priority(Priority::new(Rule::Gdsf)),
            PolicyKind::Belady => Policy::Priority(Priority::new(Rule::Belady)),
            PolicyKind::S3Fifo => Policy::S3Fifo(s3fifo::S3Fifo::new(capacity)),
            PolicyKind::TwoQ => Policy::TwoQ(twoq::TwoQ::new(capacity)),
            PolicyKind::Arc => Policy::Arc(arc::Arc::new(capacity)),
            PolicyKind::WTinyLfu => Policy::WTinyLfu(wtinylfu::WTinyLfu::new(capacity)),
        }
    }

    /// Whether there is anything to evict.
    pub fn is_empty(&self) -> bool {
        dispatch!(self, p => p.is_empty())
    }

    /// Hints the policy state (ghosts, sketch) a coming access of the id with hash `hash` will
    /// read (see `Cache::prefetch_slot`).
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        match self {
            Policy::S3Fifo(p) => p.prefetch(hash),
            Policy::TwoQ(p) => p.prefetch(hash),
            Policy::Arc(p) => p.prefetch(hash),
            Policy::WTinyLfu(p) => p.prefetch(fingerprint(hash)),
            _ => {}
        }
    }

    /// The entry the next eviction will most likely take, where a list's end tells it (a hint
    /// for prefetching: see `Cache::prefetch_next_victim`).
    #[inline]
    pub fn next_victim(&self) -> Option<u32> {
        match self {
            Policy::Recency(p) => p.next_victim(),
            Policy::Clock(p) => p.next_victim(),
            Policy::Sieve(p) => p.next_victim(),
            _ => None,
        }
    }

    /// A lookup missed (W-TinyLFU counts every request, hit or miss).
    #[inline]
    pub fn on_miss(&mut self, fp: u32) {
        if let Policy::WTinyLfu(p) = self {
            p.on_miss(fp);
        }
    }

    /// An object whose id hashes to `hash` is about to be inserted: ghost-based policies look
    /// it up now, before the evictions that make room for it.
    pub fn prepare(&mut self, hash: u64, size: u64) {
        match self {
            Policy::Priority(p) => p.prepare(size),
            Policy::S3Fifo(p) => p.prepare(hash),
            Policy::TwoQ(p) => p.prepare(hash),
            Policy::Arc(p) => p.prepare(hash, size),
            _ => {}
        }
    }

    /// Whether the object about to be inserted would itself be the next victim, in which case
    /// it is dropped instead (GDSF, see `priority.rs`).
    pub fn newcomer_leaves(&mut self) -> bool {
        match self {
            Policy::Priority(p) => p.newcomer_leaves(),
            _ => false,
        }
    }

    /// Whether an object of `size` bytes may be cached at all (S3-FIFO refuses those as big as
    /// its small queue, 2Q those bigger than its `A1in`).
    pub fn fits(&self, size: u64) -> bool {
        match self {
            Policy::S3Fifo(p) => p.fits(size),
            Policy::TwoQ(p) => p.fits(size),
            _ => true,
        }
    }

    /// Whether an object next needed at `next` is worth caching at the price of an eviction
    /// (only Belady declines).
    pub fn admits(&self, next: u64) -> bool {
        match self {
            Policy::Priority(p) => p.admits(next),
            _ => true,
        }
    }

    pub fn on_insert(&mut self, s: &mut [Entry], i: u32, next: u64) {
        match self {
            Policy::Priority(p) => p.on_insert(s, i, next),
            Policy::Recency(p) => p.on_insert(s, i),
            Policy::Clock(p) => p.on_insert(s, i),
            Policy::Sieve(p) => p.on_insert(s, i),
            Policy::Lfu(p) => p.on_insert(s, i),
            Policy::S3Fifo(p) => p.on_insert(s, i),
            Policy::TwoQ(p) => p.on_insert(s, i),
            Policy::Arc(p) => p.on_insert(s, i),
            Policy::WTinyLfu(p) => p.on_insert(s, i),
        }
    }

    /// A hit on entry `i` (which may be pinned, hence detached: policies then only count it).
    #[inline]
    pub fn on_hit(&mut self, s: &mut [Entry], i: u32, next: u64) {
        match self {
            Policy::Priority(p) => p.on_hit(s, i, next),
            Policy::Recency(p) => p.on_hit(s, i),
            Policy::Clock(p) => p.on_hit(s, i),
            Policy::Sieve(p) => p.on_hit(s, i),
            Policy::Lfu(p) => p.on_hit(s, i),
            Policy::S3Fifo(p) => p.on_hit(s, i),
            Policy::TwoQ(p) => p.on_hit(s, i),
            Policy::Arc(p) => p.on_hit(s, i),
            Policy::WTinyLfu(p) => p.on_hit(s, i),
        }
    }

    pub fn detach(&mut self, s: &mut [Entry], i: u32) {
        dispatch!(self, p => p.detach(s, i))
    }

    pub fn reattach(&mut self, s: &mut [Entry], i: u32) {
        dispatch!(self, p => p.reattach(s, i))
    }

    pub fn victim(&mut self, s: &mut [Entry]) -> Option<u32> {
        dispatch!(self, p => p.victim(s))
    }

    /// Once the cache has room, what the policy evicts on its own to take in an object of
    /// `size` bytes (2Q's `Am` is held to its own share, as in libCacheSim).
    pub fn own_victim(&mut self, s: &mut [Entry], size: u64) -> Option<u32> {
        match self {
            Policy::TwoQ(p) => p.own_victim(s, size),
            _ => None,
        }
    }

    /// Memory the policy keeps besides the entries (heaps, ghosts, sketches).
    pub fn memory_bytes(&self) -> usize {
        match self {
            Policy::Priority(p) => p.memory_bytes(),
            Policy::S3Fifo(p) => p.memory_bytes(),
            Policy::TwoQ(p) => p.memory_bytes(),
            Policy::Arc(p) => p.memory_bytes(),
            Policy::WTinyLfu(p) => p.memory_bytes(),
            Policy::Lfu(p) => p.memory_bytes(),
            Policy::Recency(_) | Policy::Clock(_) | Policy::Sieve(_) => 0,
        }
    }
}
