//! SIEVE (NSDI 2024): a FIFO with a "visited" bit and a hand that sweeps from the tail towards the
//! head. Visited objects keep their place (lose the bit); the first unvisited one leaves.

use crate::cache::slab::{Entry, List, NIL};

const VISITED: u8 = 1;

#[derive(Debug)]
pub(crate) struct Sieve {
    list: List,
    /// Where the next sweep starts; `NIL` means the tail.
    hand: u32,
}

impl Default for Sieve {
    fn default() -> Self {
        Sieve { list: List::default(), hand: NIL }
    }
}

impl Sieve {
    pub fn next_victim(&self) -> Option<u32> {
        if self.hand == NIL { self.list.tail() } else { Some(self.hand) }
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    pub fn on_insert(&mut self, s: &mut [Entry], i: u32) {
        s[i as usize].flags = 0;
        self.list.push_front(s, i);
    }
    pub fn on_hit(&mut self, s: &mut [Entry], i: u32) {
        s[i as usize].flags |= VISITED;
    }
    pub fn reattach(&mut self, s: &mut [Entry], i: u32) {
        self.list.push_front(s, i);
    }
    pub fn detach(&mut self, s: &mut [Entry], i: u32) {
        if self.hand == i {
            self.hand = s[i as usize].prev;
        }
        self.list.unlink(s, i);
    }
    pub fn victim(&mut self, s: &mut [Entry]) -> Option<u32> {
        let tail = self.list.tail()?;
        let mut o = if self.hand == NIL { tail } else { self.hand };
        while s[o as usize].flags & VISITED != 0 {
            s[o as usize].flags &= !VISITED;
            o = s[o as usize].prev;
            if o == NIL {
                o = tail;
            }
        }
        self.hand = s[o as usize].prev;
        self.list.unlink(s, o);
        Some(o)
    }
}
