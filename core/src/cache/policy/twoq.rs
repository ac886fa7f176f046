//! 2Q (Johnson and Shasha, VLDB 1994), full version, with libCacheSim's sizes (its `TwoQ`,
//! `Ain-size-ratio=0.25,Aout-size-ratio=0.5`): new objects enter a FIFO `A1in` (a quarter of
//! the bytes); those evicted from it are remembered in the ghost FIFO `A1out` (at most half
//! the cache's bytes' worth); an object requested again while a ghost enters the LRU `Am`,
//! where hits count. Eviction takes from `A1in` while it holds more than its quarter, else
//! from `Am`. An object bigger than `A1in` is not admitted.
//!
//! As in libCacheSim, `Am` is held to the rest of the bytes (three quarters) on its own: an
//! object coming back from `A1out` may push out `Am`'s oldest even when the cache as a whole
//! has room.

use crate::cache::ghost::GhostList;
use crate::cache::slab::{Entry, List};
use crate::cache::table::hash_id;

const A1IN: u8 = 0;
const AM: u8 = 1;

#[derive(Debug)]
pub(crate) struct TwoQ {
    a1in: List,
    am: List,
    a1out: GhostList,
    a1in_target: u64,
    a1out_target: u64,
    am_target: u64,
    to_am: bool,
}

impl TwoQ {
    pub fn new(capacity: u64) -> Self {
        TwoQ {
            a1in: List::default(),
            am: List::default(),
            a1out: GhostList::default(),
            // Rounded as libCacheSim rounds them (a fraction of the size, truncated).
            a1in_target: (capacity as f64 * 0.25) as u64,
            a1out_target: (capacity as f64 * 0.5) as u64,
            am_target: capacity - (capacity as f64 * 0.25) as u64,
            to_am: false,
        }
    }
    /// Whether an object of `size` bytes may be cached at all.
    pub fn fits(&self, size: u64) -> bool {
        size <= self.a1in_target
    }
    pub fn is_empty(&self) -> bool {
        self.a1in.is_empty() && self.am.is_empty()
    }
    fn list(&mut self, tag: u8) -> &mut List {
        if tag == AM { &mut self.am } else { &mut self.a1in }
    }
    pub fn prefetch(&self, hash: u64) {
        self.a1out.prefetch(hash)
    }
    pub fn prepare(&mut self, hash: u64) {
        self.to_am = self.a1out.take(hash).is_some();
    }
    pub fn on_insert(&mut self, s: &mut [Entry], i: u32) {
        let tag = if std::mem::take(&mut self.to_am) { AM } else { A1IN };
        s[i as usize].list = tag;
        self.list(tag).push_front(s, i);
    }
    pub fn on_hit(&mut self, s: &mut [Entry], i: u32) {
        let e = &s[i as usize];
        if e.list == AM && e.attached() {
            self.am.move_to_front(s, i);
        }
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
        if !self.a1in.is_empty() && (self.a1in.bytes > self.a1in_target || self.am.is_empty()) {
            let t = self.a1in.pop_back(s)?;
            let e = &s[t as usize];
            self.a1out.push(hash_id(e.id), e.size);
            while self.a1out.bytes > self.a1out_target {
                self.a1out.pop_oldest();
            }
            return Some(t);
        }
        self.am.pop_back(s)
    }
    /// `Am`'s oldest while an object entering `Am` would take it over its share.
    pub fn own_victim(&mut self, s: &mut [Entry], size: u64) -> Option<u32> {
        if self.to_am && self.am.bytes + size > self.am_target { self.am.pop_back(s) } else { None }
    }
    pub fn memory_bytes(&self) -> usize {
        self.a1out.memory_bytes()
    }
}
