//! An indexed binary min-heap of entries, for the priority policies (LFU-DA, GDSF, Belady).
//! Each entry's position lives in its `prev` field, so priorities change in O(log n) without a
//! search, and keys sit in the heap array itself so that sifting never touches the slab.

use super::slab::{Entry, NIL};

#[derive(Clone, Copy, Debug)]
struct Item {
    key: u64,
    /// Breaks ties between equal keys: the older (smaller) stamp goes first.
    tie: u32,
    idx: u32,
}

impl Item {
    fn before(&self, other: &Item) -> bool {
        (self.key, self.tie) < (other.key, other.tie)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Heap {
    items: Vec<Item>,
}

impl Heap {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The smallest key and its entry.
    pub fn peek(&self) -> Option<(u64, u32)> {
        self.items.first().map(|it| (it.key, it.idx))
    }

    pub fn push(&mut self, s: &mut [Entry], idx: u32, key: u64, tie: u32) {
        let pos = self.items.len();
        self.items.push(Item { key, tie, idx });
        self.sift_up(s, pos);
    }

    /// Changes the key of an entry already in the heap.
    pub fn update(&mut self, s: &mut [Entry], idx: u32, key: u64, tie: u32) {
        let pos = s[idx as usize].prev as usize;
        let old = self.items[pos];
        self.items[pos] = Item { key, tie, idx };
        if self.items[pos].before(&old) {
            self.sift_up(s, pos);
        } else {
            self.sift_down(s, pos);
        }
    }

    /// Removes an entry, returning its key.
    pub fn remove(&mut self, s: &mut [Entry], idx: u32) -> u64 {
        let pos = s[idx as usize].prev as usize;
        let key = self.items[pos].key;
        let last = self.items.len() - 1;
        self.items.swap(pos, last);
        self.items.pop();
        s[idx as usize].prev = NIL;
        if pos < last {
            s[self.items[pos].idx as usize].prev = pos as u32;
            self.sift_down(s, pos);
            self.sift_up(s, pos);
        }
        key
    }

    pub fn memory_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<Item>()
    }

    fn sift_up(&mut self, s: &mut [Entry], mut pos: usize) {
        let item = self.items[pos];
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if !item.before(&self.items[parent]) {
                break;
            }
            self.items[pos] = self.items[parent];
            s[self.items[pos].idx as usize].prev = pos as u32;
            pos = parent;
        }
        self.items[pos] = item;
        s[item.idx as usize].prev = pos as u32;
    }

    fn sift_down(&mut self, s: &mut [Entry], mut pos: usize) {
        let item = self.items[pos];
        let n = self.items.len();
        loop {
            let left = 2 * pos + 1;
            if left >= n {
                break;
            }
            let right = left + 1;
            let child = if right < n && self.items[right].before(&self.items[left]) { right } else { left };
            if !self.items[child].before(&item) {
                break;
            }
            self.items[pos] = self.items[child];
            s[self.items[pos].idx as usize].prev = pos as u32;
            pos = child;
        }
        self.items[pos] = item;
        s[item.idx as usize].prev = pos as u32;
    }
}
