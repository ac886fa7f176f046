//! LRU and FIFO: one list, newest at the head; LRU moves an object to the head on every hit.

use crate::cache::slab::{Entry, List};

#[derive(Debug, Default)]
pub(crate) struct Recency {
    list: List,
    /// LRU when true, FIFO when false.
    promote_on_hit: bool,
}

impl Recency {
    pub fn new(promote_on_hit: bool) -> Self {
        Recency { list: List::default(), promote_on_hit }
    }
    pub fn next_victim(&self) -> Option<u32> {
        self.list.tail()
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    pub fn on_insert(&mut self, s: &mut [Entry], i: u32) {
        self.list.push_front(s, i);
    }
    pub fn on_hit(&mut self, s: &mut [Entry], i: u32) {
        if self.promote_on_hit && s[i as usize].attached() {
            self.list.move_to_front(s, i);
        }
    }
    pub fn reattach(&mut self, s: &mut [Entry], i: u32) {
        self.list.push_front(s, i);
    }
    pub fn detach(&mut self, s: &mut [Entry], i: u32) {
        self.list.unlink(s, i);
    }
    pub fn victim(&mut self, s: &mut [Entry]) -> Option<u32> {
        self.list.pop_back(s)
    }
}
