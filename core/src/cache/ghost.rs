//! Ghost lists: recently evicted objects remembered by id hash and size only, oldest first, for
//! the policies that learn from them (S3-FIFO, 2Q, ARC).
//!
//! A ghost is matched on the full 64-bit hash of its id, not only the table's 32-bit
//! fingerprint: with tens of thousands of ghosts and a million lookups, fingerprints alone
//! would give a handful of false ghost hits per run, and the policies are checked request for
//! request against libCacheSim, which compares ids.

use super::table::{FpTable, fingerprint};
use std::collections::VecDeque;

/// Sequence numbers are kept to 31 bits so that a payload never equals the table's empty mark.
const SEQ_MASK: u32 = 0x7fff_ffff;

/// The size of a ghost that was taken or popped (its slot waits for compaction).
const DEAD: u64 = u64::MAX;

#[derive(Clone, Copy, Debug)]
struct Ghost {
    hash: u64,
    /// `DEAD` once forgotten.
    size: u64,
}

impl Ghost {
    fn alive(&self) -> bool {
        self.size != DEAD
    }
}

#[derive(Debug, Default)]
pub(crate) struct GhostList {
    ring: VecDeque<Ghost>,
    /// Sequence number of `ring[0]`.
    head_seq: u32,
    /// Fingerprint -> sequence number of its live ghost.
    table: FpTable,
    live: usize,
    pub bytes: u64,
}

impl GhostList {
    /// Hints the table slots a coming lookup of the id with hash `hash`, and the next
    /// `pop_oldest`, will read.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        self.table.prefetch_home(fingerprint(hash));
        if let Some(oldest) = self.ring.front() {
            self.table.prefetch_home(fingerprint(oldest.hash));
        }
    }

    /// Remembers the id with hash `hash` (of `size` bytes, less than `u64::MAX`) as the newest.
    pub fn push(&mut self, hash: u64, size: u64) {
        debug_assert!(size != DEAD, "reserved size");
        self.take(hash);
        let seq = self.head_seq.wrapping_add(self.ring.len() as u32) & SEQ_MASK;
        self.ring.push_back(Ghost { hash, size });
        self.table.insert(fingerprint(hash), seq);
        self.live += 1;
        self.bytes += size;
    }

    fn offset(&self, seq: u32) -> usize {
        (seq.wrapping_sub(self.head_seq) & SEQ_MASK) as usize
    }

    /// Forgets the ghost of the id with hash `hash` if there is one, returning its size.
    pub fn take(&mut self, hash: u64) -> Option<u64> {
        let pos = self.table.find(fingerprint(hash), |seq| self.ring[self.offset(seq)].hash == hash)?;
        let offset = self.offset(self.table.payload(pos));
        self.table.remove_at(pos);
        let g = &mut self.ring[offset];
        let size = std::mem::replace(&mut g.size, DEAD);
        self.live -= 1;
        self.bytes -= size;
        self.compact_if_sparse();
        Some(size)
    }

    /// Forgets the oldest live ghost; false if there is none.
    pub fn pop_oldest(&mut self) -> bool {
        while let Some(g) = self.ring.pop_front() {
            let seq = self.head_seq;
            self.head_seq = self.head_seq.wrapping_add(1) & SEQ_MASK;
            if g.alive() {
                if let Some(pos) = self.table.find(fingerprint(g.hash), |p| p == seq) {
                    self.table.remove_at(pos);
                }
                self.live -= 1;
                self.bytes -= g.size;
                return true;
            }
        }
        false
    }

    /// Drops dead ghosts once they outnumber the live ones, so the ring stays proportional to
    /// what it remembers (amortised O(1)).
    fn compact_if_sparse(&mut self) {
        if self.ring.len() <= 2 * self.live + 1024 {
            return;
        }
        self.ring.retain(Ghost::alive);
        self.head_seq = 0;
        self.table.clear();
        for (seq, g) in self.ring.iter().enumerate() {
            self.table.insert(fingerprint(g.hash), seq as u32);
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.ring.capacity() * std::mem::size_of::<Ghost>() + self.table.memory_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_take_and_compaction() {
        let mut g = GhostList::default();
        for h in 0..5000u64 {
            g.push(h, h);
        }
        for h in (0..5000u64).filter(|h| h % 2 == 1) {
            assert_eq!(g.take(h), Some(h));
        }
        assert_eq!(g.take(1), None);
        assert_eq!(g.live, 2500);
        assert!(g.pop_oldest());
        assert_eq!(g.take(0), None, "the oldest went first");
        assert_eq!(g.take(2), Some(2));
        g.push(7, 70);
        assert_eq!(g.bytes, (4..5000).step_by(2).sum::<u64>() + 70);
    }

    #[test]
    fn equal_fingerprints_are_told_apart_by_the_full_hash() {
        let mut g = GhostList::default();
        // Same high 32 bits (the fingerprint), different ids.
        let (a, b) = ((7u64 << 32) | 1, (7u64 << 32) | 2);
        g.push(a, 10);
        assert_eq!(g.take(b), None, "another id with the same fingerprint is no ghost");
        g.push(b, 20);
        assert_eq!(g.take(a), Some(10));
        assert_eq!(g.take(b), Some(20));
        assert_eq!((g.live, g.bytes), (0, 0));
    }
}
