//! S3-FIFO (Yang et al., SOSP 2023) with libCacheSim's rules and defaults (its `S3FIFO`,
//! `small-size-ratio=0.10,ghost-size-ratio=0.90,move-to-main-threshold=2`):
//!
//! - a small FIFO of 10% of the bytes, a main FIFO of the rest, and a ghost FIFO of objects
//!   evicted from the small one, holding at most 90% of the bytes' worth of them;
//! - a new object enters the small queue; a ghost enters main; so does any object while the
//!   cache has never evicted and the small queue is full; an object at least as big as the
//!   small queue is not admitted (it would flush the whole queue);
//! - eviction takes from main if main holds more than its share or the small queue is empty,
//!   else from the small queue: there an object hit at least twice moves to main (counts
//!   reset), any other leaves and becomes a ghost; in main an object hit since it was last
//!   passed goes round again with its count (capped at 3) less one, any other leaves.

use crate::cache::ghost::GhostList;
use crate::cache::slab::{Entry, List};
use crate::cache::table::hash_id;

const SMALL: u8 = 0;
const MAIN: u8 = 1;
const MAX_FREQ: u16 = 3;
/// Hits in the small queue that earn a move to main.
const MOVE_TO_MAIN: u16 = 2;

#[derive(Debug)]
pub(crate) struct S3Fifo {
    small: List,
    main: List,
    ghost: GhostList,
    small_target: u64,
    main_target: u64,
    ghost_target: u64,
    /// Set by `prepare` when the object about to be inserted was a ghost.
    to_main: bool,
    evicted_once: bool,
}

impl S3Fifo {
    pub fn new(capacity: u64) -> Self {
        // Rounded as libCacheSim rounds them (a fraction of the size, truncated).
        let small_target = (capacity as f64 * 0.1) as u64;
        S3Fifo {
            small: List::default(),
            main: List::default(),
            ghost: GhostList::default(),
            small_target,
            main_target: capacity - small_target,
            ghost_target: (capacity as f64 * 0.9) as u64,
            to_main: false,
            evicted_once: false,
        }
    }
    /// Whether an object of `size` bytes may be cached at all.
    pub fn fits(&self, size: u64) -> bool {
        size < self.small_target
    }
    pub fn is_empty(&self) -> bool {
        self.small.is_empty() && self.main.is_empty()
    }
    fn list(&mut self, tag: u8) -> &mut List {
        if tag == MAIN { &mut self.main } else { &mut self.small }
    }
    pub fn prefetch(&self, hash: u64) {
        self.ghost.prefetch(hash)
    }
    pub fn prepare(&mut self, hash: u64) {
        self.to_main = self.ghost.take(hash).is_some();
    }
    pub fn on_insert(&mut self, s: &mut [Entry], i: u32) {
        let filling = !self.evicted_once && self.small.bytes >= self.small_target;
        let tag = if std::mem::take(&mut self.to_main) || filling { MAIN } else { SMALL };
        s[i as usize].list = tag;
        s[i as usize].freq = 0;
        self.list(tag).push_front(s, i);
    }
    pub fn on_hit(&mut self, s: &mut [Entry], i: u32) {
        let e = &mut s[i as usize];
        e.freq = (e.freq + 1).min(MAX_FREQ);
    }
    pub fn detach(&mut self, s: &mut [Entry], i: u32) {
        let tag = s[i as usize].list;
        self.list(tag).unlink(s, i);
    }
    pub fn reattach(&mut self, s: &mut [Entry], i: u32) {
        let tag = s[i as usize].list;
        self.list(tag).push_front(s, i);
    }
    pub fn victim(&mut self, s: &mut [Entry]) -> Option<u32> {
        self.evicted_once = true;
        // The queue is chosen once: promotions out of the small queue do not send this
        // eviction to main (only one that empties the small queue does).
        if self.main.bytes <= self.main_target {
            while let Some(t) = self.small.pop_back(s) {
                let e = &mut s[t as usize];
                if e.freq >= MOVE_TO_MAIN {
                    e.freq = 0;
                    e.list = MAIN;
                    self.main.push_front(s, t);
                    continue;
                }
                self.ghost.push(hash_id(e.id), e.size);
                while self.ghost.bytes > self.ghost_target {
                    self.ghost.pop_oldest();
                }
                return Some(t);
            }
        }
        loop {
            let t = self.main.tail()?;
            let e = &mut s[t as usize];
            if e.freq > 0 {
                e.freq -= 1;
                self.main.move_to_front(s, t);
            } else {
                self.main.unlink(s, t);
                return Some(t);
            }
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.ghost.memory_bytes()
    }
}
