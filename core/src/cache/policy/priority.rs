//! The priority policies, one indexed min-heap each: the lowest priority leaves first, ties go
//! to the least recently used. (Plain LFU has lists per count instead: `lfu.rs`.)
//!
//! - LFU with dynamic aging (LFU-DA, Arlitt et al. 2000): priority = L + hits, where L is the
//!   priority of the last victim, so objects that were popular long ago age out. Deliberately
//!   not libCacheSim's `LFUDA`, which adds the current L to the object's previous priority on
//!   every hit (priorities compound with age instead of being recomputed), and which on some
//!   traces with objects near the cache's size does not finish (benches/crosscheck).
//! - GDSF (Greedy-Dual-Size-Frequency): priority = L + hits * cost / size with cost 1, which
//!   favours small popular objects (it maximises the object hit ratio). As in libCacheSim's
//!   `GDSF`, a new object's priority is set with L as it is before the evictions that make
//!   room for it, and the new object takes part in them: if it would be the lowest, it is
//!   the one that leaves (it is not admitted, and L becomes its priority). So a big object
//!   worth less than what is cached does not flush the cache for nothing.
//! - Belady: the object whose next access is farthest leaves; a new object that is needed later
//!   than everything cached is not admitted at all (MIN with bypass: optimal for equal sizes).
//!   libCacheSim's `Belady` always admits and evicts the farthest cached object instead, so
//!   Reef misses a little less; with varied sizes neither is optimal (that problem is NP-hard).

use crate::cache::heap::Heap;
use crate::cache::slab::Entry;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    LfuAging,
    Gdsf,
    Belady,
}

#[derive(Debug)]
pub(crate) struct Priority {
    rule: Rule,
    heap: Heap,
    /// LFU-DA and GDSF's inflation value L (GDSF's is an f64 in its bit pattern).
    age: u64,
    /// Recency stamp for tie-breaking (wrapping: only orders equal priorities).
    stamp: u32,
    /// GDSF: the priority of the object about to be inserted (see the module).
    newcomer: Option<u64>,
}

/// Order-preserving encoding of a non-negative f64 as a u64.
fn f64_key(x: f64) -> u64 {
    x.max(0.0).to_bits()
}

impl Priority {
    pub fn new(rule: Rule) -> Self {
        Priority { rule, heap: Heap::default(), age: 0, stamp: 0, newcomer: None }
    }
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The entry's priority after an access; `next` is Belady's next access time.
    fn key(&self, e: &Entry, next: u64) -> u64 {
        match self.rule {
            Rule::LfuAging => self.age + u64::from(e.freq),
            Rule::Gdsf => {
                let l = f64::from_bits(self.age);
                f64_key(l + f64::from(e.freq) / e.size.max(1) as f64)
            }
            // Farthest next access = smallest key.
            Rule::Belady => !next,
        }
    }

    fn tick(&mut self) -> u32 {
        self.stamp = self.stamp.wrapping_add(1);
        self.stamp
    }

    /// An object of `size` bytes is about to be inserted (GDSF sets its priority now).
    pub fn prepare(&mut self, size: u64) {
        if self.rule == Rule::Gdsf {
            let l = f64::from_bits(self.age);
            self.newcomer = Some(f64_key(l + 1.0 / size.max(1) as f64));
        }
    }

    /// Whether the object about to be inserted is worth less than every cached one, so that it
    /// is the next to leave; if so it is dropped (and L becomes its priority).
    pub fn newcomer_leaves(&mut self) -> bool {
        let lowest = self.heap.peek().map(|(key, _)| key);
        match (self.newcomer, lowest) {
            (Some(newcomer), Some(lowest)) if newcomer < lowest => {
                self.age = newcomer;
                self.newcomer = None;
                true
            }
            _ => false,
        }
    }

    pub fn on_insert(&mut self, s: &mut [Entry], i: u32, next: u64) {
        s[i as usize].freq = 1;
        let key = self.newcomer.take().unwrap_or_else(|| self.key(&s[i as usize], next));
        let tie = self.tick();
        self.heap.push(s, i, key, tie);
    }

    pub fn on_hit(&mut self, s: &mut [Entry], i: u32, next: u64) {
        let e = &mut s[i as usize];
        e.freq = e.freq.saturating_add(1);
        let key = self.key(e, next);
        if e.attached() {
            let tie = self.tick();
            self.heap.update(s, i, key, tie);
        } else {
            e.park_key(key);
        }
    }

    pub fn detach(&mut self, s: &mut [Entry], i: u32) {
        let key = self.heap.remove(s, i);
        s[i as usize].park_key(key);
    }

    pub fn reattach(&mut self, s: &mut [Entry], i: u32) {
        let key = s[i as usize].parked_key();
        let tie = self.tick();
        self.heap.push(s, i, key, tie);
    }

    pub fn admits(&self, next: u64) -> bool {
        match (self.rule, self.heap.peek()) {
            (Rule::Belady, Some((farthest, _))) => next < !farthest,
            _ => true,
        }
    }

    pub fn victim(&mut self, s: &mut [Entry]) -> Option<u32> {
        let (key, i) = self.heap.peek()?;
        self.heap.remove(s, i);
        if self.rule != Rule::Belady {
            self.age = key;
        }
        Some(i)
    }

    pub fn memory_bytes(&self) -> usize {
        self.heap.memory_bytes()
    }
}
