//! Verified copies of small stored objects, kept in memory so that a hit on one costs no
//! `open`, `pread` or `close`. A read shortcut under the store, never a decision: the core
//! still decides every request, and a copy here is served only while its file's stamp is the
//! one it was read under, so a file that changed is read, and checked, from disk as before.
//! Which copies stay is a CLOCK over a byte budget (`node.memory_cache`).

use crate::store::{ObjectMeta, Stamp};
use bytes::Bytes;
use reef_core::ObjectId;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// The largest object kept: the size up to which a response body is sent from one buffer.
pub const MAX_OBJECT: u64 = 64 * 1024;

/// A stored object's verified bytes, with its metadata and its file's stamp when read.
#[derive(Clone, Debug)]
pub struct HotCopy {
    pub meta: Arc<ObjectMeta>,
    pub bytes: Bytes,
    pub stamp: Stamp,
}

#[derive(Debug)]
pub struct HotCopies {
    budget: u64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    used: u64,
    copies: HashMap<ObjectId, Entry>,
    /// The CLOCK's hand goes round this queue; an id whose entry was replaced or removed since
    /// it was queued (another `generation`) is skipped.
    clock: VecDeque<(ObjectId, u64)>,
    next_generation: u64,
}

#[derive(Debug)]
struct Entry {
    copy: HotCopy,
    generation: u64,
    referenced: bool,
}

impl HotCopies {
    /// Copies of at most `budget` bytes in all (0: none are kept).
    pub fn new(budget: u64) -> HotCopies {
        HotCopies { budget, inner: Mutex::default() }
    }

    /// Whether an object of `size` bytes would be kept.
    pub fn keeps(&self, size: u64) -> bool {
        size <= MAX_OBJECT && size <= self.budget
    }

    pub fn get(&self, id: ObjectId) -> Option<HotCopy> {
        if self.budget == 0 {
            return None;
        }
        let mut inner = self.inner.lock().expect("hot copies");
        let entry = inner.copies.get_mut(&id)?;
        entry.referenced = true;
        Some(entry.copy.clone())
    }

    /// Keeps `copy` (replacing any other of `id`), making room by the CLOCK; an object larger
    /// than `MAX_OBJECT` or the whole budget is not kept.
    pub fn insert(&self, id: ObjectId, copy: HotCopy) {
        let size = copy.bytes.len() as u64;
        if !self.keeps(size) {
            return;
        }
        let mut inner = self.inner.lock().expect("hot copies");
        inner.remove(id);
        while inner.used + size > self.budget {
            let Some((victim, generation)) = inner.clock.pop_front() else { break };
            match inner.copies.get_mut(&victim) {
                Some(e) if e.generation == generation && e.referenced => {
                    e.referenced = false;
                    inner.clock.push_back((victim, generation));
                }
                Some(e) if e.generation == generation => inner.remove(victim),
                _ => {}
            }
        }
        let generation = inner.next_generation;
        inner.next_generation += 1;
        inner.used += size;
        inner.copies.insert(id, Entry { copy, generation, referenced: false });
        inner.clock.push_back((id, generation));
        // Ids of removed copies wait in the queue until the hand reaches them; keep them few.
        if inner.clock.len() > 2 * inner.copies.len() + 64 {
            let Inner { copies, clock, .. } = &mut *inner;
            clock.retain(|(id, g)| copies.get(id).is_some_and(|e| e.generation == *g));
        }
    }

    pub fn remove(&self, id: ObjectId) {
        if self.budget > 0 {
            self.inner.lock().expect("hot copies").remove(id);
        }
    }

    /// Bytes held.
    pub fn used(&self) -> u64 {
        self.inner.lock().expect("hot copies").used
    }
}

impl Inner {
    fn remove(&mut self, id: ObjectId) {
        if let Some(e) = self.copies.remove(&id) {
            self.used -= e.copy.bytes.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::digest::Hasher;

    fn copy(len: usize) -> HotCopy {
        let meta = ObjectMeta {
            namespace: "ns".into(),
            path: "p".into(),
            size: len as u64,
            etag: "\"e\"".into(),
            last_modified: None,
            digests: Hasher::default().finish(),
            blocks: None,
            seal: None,
            caching: None,
        };
        HotCopy {
            meta: Arc::new(meta),
            bytes: Bytes::from(vec![7; len]),
            stamp: Stamp::of(&tempfile::tempfile().unwrap()).unwrap(),
        }
    }

    fn held(h: &HotCopies, ids: &[u64]) -> Vec<bool> {
        ids.iter().map(|&i| h.get(ObjectId(i)).is_some()).collect()
    }

    #[test]
    fn the_clock_gives_a_copy_read_since_the_last_pass_a_second_chance() {
        // Room for three 1 KiB copies.
        let h = HotCopies::new(3 * 1024);
        for i in 1..=3 {
            h.insert(ObjectId(i), copy(1024));
        }
        assert_eq!(h.used(), 3 * 1024);
        // (`held` reads 1, 2 and 3.) The hand clears each one's bit, comes round and takes 1.
        assert_eq!(held(&h, &[1, 2, 3]), [true, true, true]);
        h.insert(ObjectId(4), copy(1024));
        assert_eq!(held(&h, &[2, 3, 4]), [true, true, true]);
        assert!(h.get(ObjectId(1)).is_none());
        // 2, 3 and 4 were just read: the hand clears them in turn and comes back to 2.
        h.insert(ObjectId(5), copy(1024));
        assert_eq!(h.used(), 3 * 1024);
        assert_eq!(held(&h, &[2, 3, 4, 5]), [false, true, true, true]);
    }

    #[test]
    fn an_unread_copy_goes_before_a_read_one() {
        let h = HotCopies::new(2 * 1024);
        h.insert(ObjectId(1), copy(1024));
        h.insert(ObjectId(2), copy(1024));
        h.get(ObjectId(1));
        h.insert(ObjectId(3), copy(1024));
        assert_eq!(held(&h, &[1, 2, 3]), [true, false, true]);
    }

    #[test]
    fn replacing_removing_and_what_is_never_kept() {
        let h = HotCopies::new(10 * 1024);
        h.insert(ObjectId(1), copy(1024));
        h.insert(ObjectId(1), copy(2048));
        assert_eq!(h.used(), 2048);
        assert_eq!(h.get(ObjectId(1)).unwrap().bytes.len(), 2048);
        h.remove(ObjectId(1));
        assert_eq!((h.used(), h.get(ObjectId(1)).is_none()), (0, true));
        // Larger than an object may be, or than the whole budget.
        assert!(!h.keeps(MAX_OBJECT + 1));
        h.insert(ObjectId(2), copy(MAX_OBJECT as usize + 1));
        assert_eq!(h.used(), 0);
        let none = HotCopies::new(0);
        none.insert(ObjectId(3), copy(10));
        assert!(none.get(ObjectId(3)).is_none());
        // Many replacements leave the hand's queue bounded.
        for _ in 0..10_000 {
            h.insert(ObjectId(4), copy(16));
        }
        assert!(h.inner.lock().unwrap().clock.len() <= 2 + 64);
    }
}
