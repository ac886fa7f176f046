//! Ghost lists: recently evicted objects remembered by fingerprint and size only, oldest first,
//! for the policies that learn from them (S3-FIFO, 2Q, ARC).

use super::table::FpTable;
use std::collections::VecDeque;

/// Sequence numbers are kept to 31 bits so that a payload never equals the table's empty mark.
const SEQ_MASK: u32 = 0x7fff_ffff;

#[derive(Clone, Copy, Debug)]
struct Ghost {
    fp: u32,
    alive: bool,
    size: u64,
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
    /// Reads the table slots a coming lookup of `fp` and the next `pop_oldest` will use.
    #[inline]
    pub fn warm(&self, fp: u32) -> u64 {
        let oldest = self.ring.front().map_or(0, |g| self.table.home_payload(g.fp).unwrap_or(0));
        u64::from(self.table.home_payload(fp).unwrap_or(0) ^ oldest)
    }

    pub fn push(&mut self, fp: u32, size: u64) {
        self.take(fp);
        let seq = self.head_seq.wrapping_add(self.ring.len() as u32) & SEQ_MASK;
        self.ring.push_back(Ghost { fp, alive: true, size });
        self.table.insert(fp, seq);
        self.live += 1;
        self.bytes += size;
    }

    /// Forgets the ghost of `fp` if there is one, returning its size.
    pub fn take(&mut self, fp: u32) -> Option<u64> {
        let pos = self.table.find(fp, |_| true)?;
        let offset = self.table.payload(pos).wrapping_sub(self.head_seq) & SEQ_MASK;
        self.table.remove_at(pos);
        let g = &mut self.ring[offset as usize];
        g.alive = false;
        let size = g.size;
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
            if g.alive {
                if let Some(pos) = self.table.find(g.fp, |p| p == seq) {
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
        self.ring.retain(|g| g.alive);
        self.head_seq = 0;
        self.table.clear();
        for (seq, g) in self.ring.iter().enumerate() {
            self.table.insert(g.fp, seq as u32);
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
        for fp in 0..5000u32 {
            g.push(fp, u64::from(fp));
        }
        for fp in (0..5000u32).filter(|f| f % 2 == 1) {
            assert_eq!(g.take(fp), Some(u64::from(fp)));
        }
        assert_eq!(g.take(1), None);
        assert_eq!(g.live, 2500);
        assert!(g.pop_oldest());
        assert_eq!(g.take(0), None, "the oldest went first");
        assert_eq!(g.take(2), Some(2));
        g.push(7, 70);
        assert_eq!(g.bytes, (4..5000).step_by(2).sum::<u64>() + 70);
    }
}
