//! S3-FIFO (SOSP 2023): a small FIFO (10% of the bytes) that filters one-hit wonders, a main
//! FIFO with lazy reinsertion, and a ghost FIFO of objects recently evicted from the small one.
//! An object accessed while in the small queue moves to main instead of leaving; a ghost hit
//! goes straight to main. Access counts are capped at 3.

use crate::cache::ghost::GhostList;
use crate::cache::slab::{Entry, List};
use crate::cache::table::{fingerprint, hash_id};

const SMALL: u8 = 0;
const MAIN: u8 = 1;
const MAX_FREQ: u16 = 3;

#[derive(Debug)]
pub(crate) struct S3Fifo {
    small: List,
    main: List,
    ghost: GhostList,
    small_target: u64,
    /// Set by `prepare` when the object about to be inserted was a ghost.
    to_main: bool,
}

impl S3Fifo {
    pub fn new(capacity: u64) -> Self {
        S3Fifo {
            small: List::default(),
            main: List::default(),
            ghost: GhostList::default(),
            small_target: capacity / 10,
            to_main: false,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.small.is_empty() && self.main.is_empty()
    }
    fn list(&mut self, tag: u8) -> &mut List {
        if tag == MAIN { &mut self.main } else { &mut self.small }
    }
    pub fn warm(&self, fp: u32) -> u64 {
        self.ghost.warm(fp)
    }
    pub fn prepare(&mut self, fp: u32) {
        self.to_main = self.ghost.take(fp).is_some();
    }
    pub fn on_insert(&mut self, s: &mut [Entry], i: u32) {
        let tag = if std::mem::take(&mut self.to_main) { MAIN } else { SMALL };
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
        loop {
            if !self.small.is_empty() && (self.small.bytes >= self.small_target || self.main.is_empty()) {
                let t = self.small.pop_back(s)?;
                let e = &mut s[t as usize];
                if e.freq > 0 {
                    e.freq = 0;
                    e.list = MAIN;
                    self.main.push_front(s, t);
                    continue;
                }
                self.ghost.push(fingerprint(hash_id(e.id)), e.size);
                while self.ghost.len() > (self.main.len as usize).max(1) {
                    self.ghost.pop_oldest();
                }
                return Some(t);
            }
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
