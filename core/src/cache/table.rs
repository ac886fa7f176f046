//! A compact open-addressing hash table keyed by 32-bit hash fingerprints.
//!
//! Each slot is one `u64`: the fingerprint in the high half, a payload (a slab index, a ghost
//! sequence number) in the low half. Linear probing keeps a probe within one or two cache lines,
//! deletion shifts entries back (no tombstones), and the whole table costs 8 bytes per slot at a
//! load of at most 3/4: far less than a general map of `ObjectId -> u32`.

use crate::ids::ObjectId;
use std::hash::BuildHasher;

const EMPTY: u64 = u64::MAX;

/// A fixed seed: ids are often sequential integers, so they need real mixing, and runs must be
/// reproducible.
const HASHER: foldhash::quality::FixedState = foldhash::quality::FixedState::with_seed(0x2eef);

/// The 64-bit hash of an object id.
pub(crate) fn hash_id(id: ObjectId) -> u64 {
    HASHER.hash_one(id.0)
}

/// The fingerprint tables are keyed by.
pub(crate) fn fingerprint(hash: u64) -> u32 {
    (hash >> 32) as u32
}

#[derive(Debug, Clone)]
pub(crate) struct FpTable {
    slots: Vec<u64>,
    len: usize,
}

impl Default for FpTable {
    fn default() -> Self {
        FpTable { slots: vec![EMPTY; 16], len: 0 }
    }
}

impl FpTable {
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }
    fn home(&self, fp: u32) -> usize {
        fp as usize & self.mask()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The position of the first slot with fingerprint `fp` whose payload satisfies `eq`.
    #[inline]
    pub fn find(&self, fp: u32, mut eq: impl FnMut(u32) -> bool) -> Option<usize> {
        let mask = self.mask();
        let mut i = self.home(fp);
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            if (s >> 32) as u32 == fp && eq(s as u32) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The payload in `fp`'s home slot if its fingerprint matches (a hint: no probing).
    #[inline]
    pub fn home_payload(&self, fp: u32) -> Option<u32> {
        let s = self.slots[self.home(fp)];
        ((s >> 32) as u32 == fp && s != EMPTY).then_some(s as u32)
    }

    /// Hints `fp`'s home slot (see `prefetch`).
    #[inline]
    pub fn prefetch_home(&self, fp: u32) {
        super::prefetch::hint(&self.slots[self.home(fp)]);
    }

    pub fn payload(&self, pos: usize) -> u32 {
        self.slots[pos] as u32
    }

    pub fn insert(&mut self, fp: u32, payload: u32) {
        debug_assert!(payload != u32::MAX, "reserved payload");
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        self.place(fp, payload);
        self.len += 1;
    }

    fn place(&mut self, fp: u32, payload: u32) {
        let mask = self.mask();
        let mut i = self.home(fp);
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = (u64::from(fp) << 32) | u64::from(payload);
    }

    fn grow(&mut self) {
        let doubled = vec![EMPTY; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        for s in old.into_iter().filter(|&s| s != EMPTY) {
            self.place((s >> 32) as u32, s as u32);
        }
    }

    /// Removes the slot at `pos`, shifting later members of its probe run back into the hole.
    pub fn remove_at(&mut self, pos: usize) {
        let mask = self.mask();
        let mut hole = pos;
        let mut j = pos;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if s == EMPTY {
                break;
            }
            let home = self.home((s >> 32) as u32);
            // `s` may fill the hole only if the hole lies on its probe path (home ..= j).
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
    }

    /// Empties the table, keeping its memory.
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = EMPTY);
        self.len = 0;
    }

    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_remove_with_colliding_fingerprints() {
        let mut t = FpTable::default();
        // Many equal fingerprints and homes: probe runs wrap and shift back on removal.
        for p in 0..200u32 {
            t.insert(p % 7 * 16 + 15, p);
        }
        assert_eq!(t.len(), 200);
        for p in (0..200u32).step_by(3) {
            let pos = t.find(p % 7 * 16 + 15, |q| q == p).expect("present");
            t.remove_at(pos);
        }
        for p in 0..200u32 {
            let found = t.find(p % 7 * 16 + 15, |q| q == p).is_some();
            assert_eq!(found, p % 3 != 0, "payload {p}");
        }
    }
}
