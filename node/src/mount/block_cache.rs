//! The mount's local block cache: verified blocks of object versions on disk, one file per
//! block (`<dir>/<version key>/<index>`), written to a temporary name and renamed, so a crash
//! leaves whole blocks or none. Held within a byte limit: the least recently used blocks go
//! first. What is on disk when the mount starts is taken in (by modification time).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug)]
pub struct BlockCache {
    dir: PathBuf,
    limit: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    used: u64,
    tick: u64,
    /// Block (relative path) → (size, last use).
    blocks: HashMap<PathBuf, (u64, u64)>,
    /// Last use → block: the eviction order.
    by_use: BTreeMap<u64, PathBuf>,
}

impl State {
    fn touch(&mut self, block: &Path) {
        self.tick += 1;
        let tick = self.tick;
        if let Some((_, used)) = self.blocks.get_mut(block) {
            self.by_use.remove(used);
            *used = tick;
            self.by_use.insert(tick, block.to_path_buf());
        }
    }
}

/// The key of one version of an object: its path and ETag.
pub fn version_key(path: &str, etag: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(path.as_bytes());
    h.update(&[0]);
    h.update(etag.as_bytes());
    h.finalize().as_bytes()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl BlockCache {
    pub fn open(dir: &Path, limit: u64) -> io::Result<BlockCache> {
        std::fs::create_dir_all(dir)?;
        let mut found = Vec::new();
        for version in std::fs::read_dir(dir)?.flatten() {
            let Ok(blocks) = std::fs::read_dir(version.path()) else { continue };
            for block in blocks.flatten() {
                let name = block.file_name().to_string_lossy().into_owned();
                let Ok(md) = block.metadata() else { continue };
                if name.ends_with(".tmp") {
                    let _ = std::fs::remove_file(block.path()); // a write cut by a crash
                    continue;
                }
                let rel = PathBuf::from(version.file_name()).join(name);
                found.push((md.modified().ok(), rel, md.len()));
            }
        }
        found.sort();
        let mut state = State::default();
        for (_, rel, size) in found {
            state.tick += 1;
            state.used += size;
            state.by_use.insert(state.tick, rel.clone());
            state.blocks.insert(rel, (size, state.tick));
        }
        let cache = BlockCache { dir: dir.to_path_buf(), limit, state: Mutex::new(state) };
        cache.evict(0)?;
        Ok(cache)
    }

    fn rel(version: &str, index: u64) -> PathBuf {
        PathBuf::from(version).join(index.to_string())
    }

    pub fn contains(&self, version: &str, index: u64) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).blocks.contains_key(&Self::rel(version, index))
    }

    /// A cached block's bytes (the caller checks them against the block list).
    pub fn get(&self, version: &str, index: u64) -> Option<Vec<u8>> {
        let rel = Self::rel(version, index);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !state.blocks.contains_key(&rel) {
            return None;
        }
        state.touch(&rel);
        drop(state);
        std::fs::read(self.dir.join(&rel)).ok()
    }

    /// Drops a block (missing or corrupt on disk).
    pub fn remove(&self, version: &str, index: u64) {
        let rel = Self::rel(version, index);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((size, used)) = state.blocks.remove(&rel) {
            state.by_use.remove(&used);
            state.used -= size;
        }
        let _ = std::fs::remove_file(self.dir.join(rel));
    }

    /// Stores a verified block, making room first.
    pub fn put(&self, version: &str, index: u64, data: &[u8]) -> io::Result<()> {
        let size = data.len() as u64;
        if size > self.limit {
            return Ok(()); // larger than the whole cache: served, not kept
        }
        self.evict(size)?;
        let rel = Self::rel(version, index);
        let path = self.dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, &path)?;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !state.blocks.contains_key(&rel) {
            state.used += size;
            state.blocks.insert(rel.clone(), (size, 0));
        }
        state.touch(&rel);
        Ok(())
    }

    /// Removes least recently used blocks until `room` more bytes fit in the limit.
    fn evict(&self, room: u64) -> io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.used + room > self.limit {
            let Some((_, rel)) = state.by_use.pop_first() else { break };
            if let Some((size, _)) = state.blocks.remove(&rel) {
                state.used -= size;
            }
            match std::fs::remove_file(self.dir.join(&rel)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Bytes held.
    pub fn used(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_blocks_go_first_and_a_restart_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(dir.path(), 300).unwrap();
        cache.put("v", 0, &[0; 100]).unwrap();
        cache.put("v", 1, &[1; 100]).unwrap();
        cache.put("v", 2, &[2; 100]).unwrap();
        assert_eq!(cache.get("v", 0), Some(vec![0; 100])); // 0 is now the most recent
        cache.put("w", 0, &[9; 100]).unwrap();
        assert!(!cache.contains("v", 1), "the least recently used block went");
        assert!(cache.contains("v", 0) && cache.contains("v", 2) && cache.contains("w", 0));
        assert_eq!(cache.used(), 300);
        cache.put("big", 0, &[7; 301]).unwrap();
        assert!(!cache.contains("big", 0), "a block larger than the cache is not kept");
        drop(cache);
        std::fs::write(dir.path().join("v/5.tmp"), b"cut").unwrap();
        let again = BlockCache::open(dir.path(), 200).unwrap();
        assert_eq!(again.used(), 200, "reopened smaller: trimmed to the limit");
        assert!(!dir.path().join("v/5.tmp").exists(), "a cut write is removed");
        cache_is_consistent(&again);
    }

    fn cache_is_consistent(cache: &BlockCache) {
        let state = cache.state.lock().unwrap();
        assert_eq!(state.blocks.len(), state.by_use.len());
        assert_eq!(state.used, state.blocks.values().map(|b| b.0).sum::<u64>());
    }

    #[test]
    fn versions_of_one_path_have_different_keys() {
        assert_ne!(version_key("a/b", "\"1\""), version_key("a/b", "\"2\""));
        assert_ne!(version_key("a/b", "\"1\""), version_key("a/c", "\"1\""));
        assert_eq!(version_key("a/b", "\"1\"").len(), 32);
    }
}
