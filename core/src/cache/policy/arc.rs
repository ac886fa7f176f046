//! ARC (Megiddo and Modha, FAST 2003), in bytes: `T1` holds objects seen once recently, `T2`
//! objects seen at least twice; the ghosts `B1`/`B2` remember what each evicted. A ghost hit in
//! `B1` grows the byte target `p` of `T1`, one in `B2` shrinks it; eviction takes from `T1` when
//! it is above its target.

use crate::cache::ghost::GhostList;
use crate::cache::slab::{Entry, List};
use crate::cache::table::{fingerprint, hash_id};

const T1: u8 = 0;
const T2: u8 = 1;

#[derive(Debug)]
pub(crate) struct Arc {
    t1: List,
    t2: List,
    b1: GhostList,
    b2: GhostList,
    /// Target bytes for `T1`.
    p: u64,
    capacity: u64,
    to_t2: bool,
}

impl Arc {
    pub fn new(capacity: u64) -> Self {
        Arc {
            t1: List::default(),
            t2: List::default(),
            b1: GhostList::default(),
            b2: GhostList::default(),
            p: 0,
            capacity,
            to_t2: false,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.t1.is_empty() && self.t2.is_empty()
    }
    fn list(&mut self, tag: u8) -> &mut List {
        if tag == T2 { &mut self.t2 } else { &mut self.t1 }
    }
    pub fn warm(&self, fp: u32) -> u64 {
        self.b1.warm(fp) ^ self.b2.warm(fp)
    }
    /// Adapts `p` on a ghost hit, before the evictions that make room for the object.
    pub fn prepare(&mut self, fp: u32) {
        let (b1, b2) = (self.b1.bytes, self.b2.bytes);
        if let Some(size) = self.b1.take(fp) {
            let delta = (b2 / b1.max(1)).max(1).saturating_mul(size);
            self.p = self.p.saturating_add(delta).min(self.capacity);
            self.to_t2 = true;
        } else if let Some(size) = self.b2.take(fp) {
            let delta = (b1 / b2.max(1)).max(1).saturating_mul(size);
            self.p = self.p.saturating_sub(delta);
            self.to_t2 = true;
        } else {
            self.to_t2 = false;
        }
    }
    pub fn on_insert(&mut self, s: &mut [Entry], i: u32) {
        let tag = if std::mem::take(&mut self.to_t2) { T2 } else { T1 };
        s[i as usize].list = tag;
        self.list(tag).push_front(s, i);
        // Directory bounds: |T1| + |B1| <= c and everything together <= 2c (in bytes).
        while self.t1.bytes + self.b1.bytes > self.capacity && self.b1.pop_oldest() {}
        while self.t1.bytes + self.t2.bytes + self.b1.bytes + self.b2.bytes > 2 * self.capacity
            && (self.b2.pop_oldest() || self.b1.pop_oldest())
        {}
    }
    pub fn on_hit(&mut self, s: &mut [Entry], i: u32) {
        let e = &mut s[i as usize];
        if !e.attached() {
            e.list = T2;
            return;
        }
        let tag = e.list;
        self.list(tag).unlink(s, i);
        s[i as usize].list = T2;
        self.t2.push_front(s, i);
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
        let from_t1 = !self.t1.is_empty() && (self.t1.bytes > self.p || self.t2.is_empty());
        let (t, ghosts) =
            if from_t1 { (self.t1.pop_back(s)?, &mut self.b1) } else { (self.t2.pop_back(s)?, &mut self.b2) };
        let e = &s[t as usize];
        ghosts.push(fingerprint(hash_id(e.id)), e.size);
        Some(t)
    }
    pub fn memory_bytes(&self) -> usize {
        self.b1.memory_bytes() + self.b2.memory_bytes()
    }
}
