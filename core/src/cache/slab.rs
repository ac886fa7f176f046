//! Entry storage: a slab of fixed-size entries addressed by `u32`, and intrusive doubly-linked
//! lists threaded through the entries, so that moving an object between lists never allocates.

use crate::ids::{NamespaceId, ObjectId};

/// "No entry": the end of a list, or an empty slot.
pub(crate) const NIL: u32 = u32::MAX;

/// One cached object. 32 bytes: the index's memory budget per object is 64 bytes in all.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub id: ObjectId,
    pub size: u64,
    /// Towards the list head (newer); for heap policies, the position in the heap.
    pub prev: u32,
    /// Towards the list tail (older); the free-list link while the slot is unused.
    pub next: u32,
    /// Access count, saturating; policies that cap it (S3-FIFO) do so themselves.
    pub freq: u16,
    pub namespace: NamespaceId,
    pub pins: u16,
    /// Which of the policy's lists holds the entry.
    pub list: u8,
    /// Policy bits (CLOCK's reference bit, SIEVE's visited bit).
    pub flags: u8,
}

impl Entry {
    /// Whether the policy tracks the entry (pinned entries are detached from it).
    pub fn attached(&self) -> bool {
        self.pins == 0
    }

    /// A heap policy's key, kept in the link fields while the entry is out of the heap (pinned),
    /// where neither link is in use.
    pub fn parked_key(&self) -> u64 {
        (u64::from(self.prev) << 32) | u64::from(self.next)
    }
    pub fn park_key(&mut self, key: u64) {
        self.prev = (key >> 32) as u32;
        self.next = key as u32;
    }
}

/// The entries of one cache, with a free list of unused slots.
#[derive(Debug, Default)]
pub(crate) struct Slab {
    pub entries: Vec<Entry>,
    free: Option<u32>,
}

impl Slab {
    pub fn alloc(&mut self, id: ObjectId, size: u64, namespace: NamespaceId) -> u32 {
        let entry = Entry { id, size, prev: NIL, next: NIL, freq: 0, namespace, pins: 0, list: 0, flags: 0 };
        match self.free {
            Some(i) => {
                let slot = &mut self.entries[i as usize];
                self.free = (slot.next != NIL).then_some(slot.next);
                *slot = entry;
                i
            }
            None => {
                // Grow by an eighth, not double: the slab is most of the index's memory.
                if self.entries.len() == self.entries.capacity() {
                    self.entries.reserve_exact((self.entries.len() / 8).max(64));
                }
                let i = u32::try_from(self.entries.len())
                    .ok()
                    .filter(|&i| i != NIL)
                    .expect("more than 2^32 - 1 cached objects");
                self.entries.push(entry);
                i
            }
        }
    }

    pub fn release(&mut self, i: u32) {
        self.entries[i as usize].next = self.free.unwrap_or(NIL);
        self.free = Some(i);
    }

    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
    }
}

/// A doubly-linked list of entries: head is the newest, tail the oldest.
#[derive(Clone, Copy, Debug)]
pub(crate) struct List {
    head: u32,
    tail: u32,
    pub len: u32,
    pub bytes: u64,
}

impl Default for List {
    fn default() -> Self {
        List { head: NIL, tail: NIL, len: 0, bytes: 0 }
    }
}

impl List {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn head(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }
    pub fn tail(&self) -> Option<u32> {
        (self.tail != NIL).then_some(self.tail)
    }

    pub fn push_front(&mut self, s: &mut [Entry], i: u32) {
        let e = &mut s[i as usize];
        e.prev = NIL;
        e.next = self.head;
        if self.head != NIL {
            s[self.head as usize].prev = i;
        } else {
            self.tail = i;
        }
        self.head = i;
        self.len += 1;
        self.bytes += s[i as usize].size;
    }

    pub fn unlink(&mut self, s: &mut [Entry], i: u32) {
        let (prev, next, size) = {
            let e = &s[i as usize];
            (e.prev, e.next, e.size)
        };
        if prev != NIL {
            s[prev as usize].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            s[next as usize].prev = prev;
        } else {
            self.tail = prev;
        }
        self.len -= 1;
        self.bytes -= size;
    }

    pub fn move_to_front(&mut self, s: &mut [Entry], i: u32) {
        if self.head != i {
            self.unlink(s, i);
            self.push_front(s, i);
        }
    }

    /// Unlinks and returns the oldest entry.
    pub fn pop_back(&mut self, s: &mut [Entry]) -> Option<u32> {
        let t = self.tail()?;
        self.unlink(s, t);
        Some(t)
    }
}

#[cfg(test)]
mod size_tests {
    use super::Entry;

    #[test]
    fn an_entry_is_32_bytes() {
        // The documented index cost per object (ARCHITECTURE.md, cache module docs).
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }
}
