//! LFU in O(1): one list per access count (hits while cached, 1 on insert), the least recently
//! used at each list's tail; the victim is the tail of the lowest non-empty list. This is
//! libCacheSim's `LFU` order (its lowest frequency list, oldest first) without a heap: a hit
//! moves an entry from its count's list to the head of the next one, so it touches the entry
//! and its neighbours only, where a heap re-sorts a path of entries.
//!
//! Counts saturate at `u16::MAX` (an entry there stays in the last list, by recency).

use crate::cache::slab::{Entry, List};

#[derive(Debug, Default)]
pub(crate) struct Lfu {
    /// `by_count[c]`: the tracked entries accessed `c` times, newest first.
    by_count: Vec<List>,
    /// Every list below this one is empty (a lower bound of the lowest non-empty list).
    lowest: usize,
    len: u32,
}

impl Lfu {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, s: &mut [Entry], i: u32) {
        let count = usize::from(s[i as usize].freq);
        if self.by_count.len() <= count {
            self.by_count.resize(count + 1, List::default());
        }
        self.by_count[count].push_front(s, i);
        self.lowest = self.lowest.min(count);
        self.len += 1;
    }

    fn unlink(&mut self, s: &mut [Entry], i: u32) {
        self.by_count[usize::from(s[i as usize].freq)].unlink(s, i);
        self.len -= 1;
    }

    pub fn on_insert(&mut self, s: &mut [Entry], i: u32) {
        s[i as usize].freq = 1;
        self.push(s, i);
    }

    pub fn on_hit(&mut self, s: &mut [Entry], i: u32) {
        let attached = s[i as usize].attached();
        if attached {
            self.unlink(s, i);
        }
        let e = &mut s[i as usize];
        e.freq = e.freq.saturating_add(1);
        if attached {
            self.push(s, i);
        }
    }

    pub fn detach(&mut self, s: &mut [Entry], i: u32) {
        self.unlink(s, i);
    }

    pub fn reattach(&mut self, s: &mut [Entry], i: u32) {
        self.push(s, i);
    }

    pub fn victim(&mut self, s: &mut [Entry]) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        while self.by_count[self.lowest].is_empty() {
            self.lowest += 1;
        }
        let victim = self.by_count[self.lowest].pop_back(s)?;
        self.len -= 1;
        Some(victim)
    }

    pub fn memory_bytes(&self) -> usize {
        self.by_count.capacity() * std::mem::size_of::<List>()
    }
}
