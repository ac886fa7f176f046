//! A fill checked block by block against the origin's list, as several sources may write it:
//! when the core splits a fill (`Output::FetchParts`), the lead attempt and the other parts
//! write their ranges into one temporary file, each block only once it matches the list, and
//! readers may see the verified prefix. Whichever part verifies the last block finishes the
//! object (its checksums come from reading the assembled file once).

use crate::blocks::BlockList;
use crate::fill::Head;
use crate::http::digest::{Digests, Hasher};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A fill's temporary file, deleted when dropped unless kept.
#[derive(Debug)]
pub struct TempFile(Option<PathBuf>);

impl TempFile {
    pub fn new(path: PathBuf) -> TempFile {
        TempFile(Some(path))
    }

    pub fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[derive(Debug)]
pub struct Assembly {
    /// The file, and what its bytes are checked against.
    pub of: AttemptFile,
    /// Removes the file unless the object is finished.
    guard: Mutex<Option<TempFile>>,
    blocks: Mutex<Blocks>,
    /// How far the lead attempt has verified its own range (where a hand-on starts).
    lead_reached: AtomicU64,
    finished: AtomicBool,
}

#[derive(Debug)]
struct Blocks {
    verified: Vec<bool>,
    count: usize,
    /// Blocks verified from the start without a gap.
    prefix: usize,
}

/// An attempt's temporary file as the lead creates it: whose, where, and its reference.
#[derive(Debug)]
pub struct AttemptFile {
    /// The attempt of the fill whose file this is.
    pub attempt: u32,
    pub head: Arc<Head>,
    pub file: Arc<File>,
    pub list: Arc<BlockList>,
    pub seal: Option<String>,
    pub temp: PathBuf,
    /// The source's `Digest`, checked once the object is whole.
    pub upstream_digest: Option<String>,
}

impl Assembly {
    pub fn new(of: AttemptFile) -> Assembly {
        let n = of.list.hashes.len();
        Assembly {
            guard: Mutex::new(Some(TempFile::new(of.temp.clone()))),
            blocks: Mutex::new(Blocks { verified: vec![false; n], count: 0, prefix: 0 }),
            lead_reached: AtomicU64::new(0),
            finished: AtomicBool::new(false),
            of,
        }
    }

    /// Records that the blocks within `start..end` are verified (and on disk); returns the
    /// verified prefix in bytes.
    pub fn mark(&self, start: u64, end: u64) -> u64 {
        let bs = self.of.list.block_size;
        let first = start.div_ceil(bs) as usize;
        // A range ending at the object's end covers its short last block.
        let last = if end >= self.of.list.size { self.of.list.hashes.len() } else { (end / bs) as usize };
        let mut b = self.blocks.lock().expect("blocks");
        for i in first..last.min(b.verified.len()) {
            if !std::mem::replace(&mut b.verified[i], true) {
                b.count += 1;
            }
        }
        while b.prefix < b.verified.len() && b.verified[b.prefix] {
            b.prefix += 1;
        }
        (b.prefix as u64 * bs).min(self.of.list.size)
    }

    pub fn set_lead_reached(&self, n: u64) {
        self.lead_reached.fetch_max(n, Ordering::Relaxed);
    }

    pub fn lead_reached(&self) -> u64 {
        self.lead_reached.load(Ordering::Relaxed)
    }

    /// True for exactly one caller, once every block is verified.
    pub fn claim_finish(&self) -> bool {
        let b = self.blocks.lock().expect("blocks");
        b.count == b.verified.len() && !self.finished.swap(true, Ordering::AcqRel)
    }

    /// The file is the store's now (or another's): it is not removed.
    pub fn keep(&self) {
        if let Some(guard) = self.guard.lock().expect("guard").take() {
            guard.keep();
        }
    }

    /// The assembled object's checksums, read from the file (blocking I/O).
    pub fn digests(&self) -> std::io::Result<Digests> {
        let mut hasher = Hasher::default();
        let mut buf = vec![0; 1 << 20];
        let mut pos = 0;
        while pos < self.of.list.size {
            let n = (self.of.list.size - pos).min(buf.len() as u64) as usize;
            self.of.file.read_exact_at(&mut buf[..n], pos)?;
            hasher.update(&buf[..n]);
            pos += n as u64;
        }
        Ok(hasher.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reef_core::{NodeId, Source};

    fn assembly(size: u64, block: u64) -> (tempfile::TempDir, Assembly) {
        let dir = tempfile::tempdir().unwrap();
        let temp = dir.path().join("f");
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        std::fs::write(&temp, &data).unwrap();
        let head = Head {
            size,
            etag: "\"e\"".into(),
            last_modified: None,
            source: Source::Origin { node: NodeId(1) },
            upstream_status: None,
        };
        let of = AttemptFile {
            attempt: 1,
            head: Arc::new(head),
            file: Arc::new(File::open(&temp).unwrap()),
            list: Arc::new(BlockList::of_bytes(&data, block)),
            seal: None,
            temp,
            upstream_digest: None,
        };
        (dir, Assembly::new(of))
    }

    #[test]
    fn the_prefix_grows_only_without_gaps_and_one_caller_finishes() {
        let (_dir, a) = assembly(2500, 1000);
        assert_eq!(a.mark(1000, 2500), 0, "block 0 missing");
        assert!(!a.claim_finish());
        // A range that covers part of a block does not verify it.
        assert_eq!(a.mark(0, 999), 0);
        assert_eq!(a.mark(0, 1000), 2500);
        assert!(a.claim_finish());
        assert!(!a.claim_finish(), "only once");
        assert_eq!(a.digests().unwrap(), {
            let mut h = Hasher::default();
            h.update(&(0..2500u64).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
            h.finish()
        });
    }

    #[test]
    fn an_unfinished_assembly_removes_its_file_and_a_kept_one_does_not() {
        let (_dir, a) = assembly(10, 4);
        let temp = a.of.temp.clone();
        drop(a);
        assert!(!temp.exists());
        let (_dir, a) = assembly(10, 4);
        let temp = a.of.temp.clone();
        a.keep();
        drop(a);
        assert!(temp.exists());
    }
}
