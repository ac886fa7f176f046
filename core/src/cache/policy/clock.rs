//! CLOCK (second chance): a FIFO whose oldest object, if referenced since it last came round,
//! loses its reference bit and goes back to the head instead of leaving.

use crate::cache::slab::{Entry, List};

const REFERENCED: u8 = 1;

#[derive(Debug, Default)]
pub(crate) struct Clock {
    list: List,
}

impl Clock {
    pub fn next_victim(&self) -> Option<u32> {
        self.list.tail()
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    pub fn on_insert(&mut self, s: &mut [Entry], i: u32) {
        s[i as usize].flags = 0;
        self.list.push_front(s, i);
    }
    pub fn on_hit(&mut self, s: &mut [Entry], i: u32) {
        s[i as usize].flags |= REFERENCED;
    }
    pub fn reattach(&mut self, s: &mut [Entry], i: u32) {
        self.list.push_front(s, i);
    }
    pub fn detach(&mut self, s: &mut [Entry], i: u32) {
        self.list.unlink(s, i);
    }
    pub fn victim(&mut self, s: &mut [Entry]) -> Option<u32> {
        // Terminates: each pass clears one bit, so after one lap the tail is unreferenced.
        loop {
            let t = self.list.tail()?;
            let e = &mut s[t as usize];
            if e.flags & REFERENCED == 0 {
                self.list.unlink(s, t);
                return Some(t);
            }
            e.flags &= !REFERENCED;
            self.list.move_to_front(s, t);
        }
    }
}
