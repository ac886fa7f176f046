//! The disk store of a cache: complete, verified objects under `objects/`, fills under `tmp/`.
//!
//! Crash safety: a fill is written to `tmp/`, fsynced, then renamed to `objects/<id>`; its
//! metadata sidecar `objects/<id>.meta` (name, size, checksums, validators) is written to `tmp/`,
//! fsynced and renamed after it. An object exists only when both files exist and the data has
//! the sidecar's size, so a crash at any point leaves either the old state or the new one; the
//! rest is swept on start.

use crate::blocks::BlockList;
use crate::hot_copies::{HotCopies, HotCopy};
use crate::http::digest::Digests;
use reef_core::ObjectId;
use rustix::fs::{AtFlags, Mode, OFlags};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// What the store knows about a complete object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub namespace: String,
    pub path: String,
    pub size: u64,
    /// The strong ETag the upstream gave (quotes included).
    pub etag: String,
    /// Last-Modified as seconds since the epoch.
    pub last_modified: Option<u64>,
    pub digests: Digests,
    /// The origin's block list, when the fill had one: hits and the scrub check against it.
    #[serde(default)]
    pub blocks: Option<BlockList>,
    /// The origin's seal over the block list (`Reef-Seal`), handed on to other caches.
    #[serde(default)]
    pub seal: Option<String>,
    /// From a third-party origin: its caching header fields (a `304` updates them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caching: Option<crate::third_party::CachingFields>,
}

#[derive(Debug)]
pub struct Store {
    objects: PathBuf,
    /// `objects` opened, so a hit's `fstatat` walks one path component, not the whole path.
    objects_dir: std::os::fd::OwnedFd,
    tmp: PathBuf,
    next_temp: AtomicU64,
    /// Sidecars of the objects on disk, so a hit costs one `open` and no JSON parsing.
    metas: RwLock<HashMap<ObjectId, Arc<ObjectMeta>>>,
    /// Sidecars of objects the cache holds whose commit has not yet reached the disk (the
    /// commit runs on another thread, after fsyncs): a revalidation meanwhile still knows the
    /// copy's validators, and a `304`'s update is the sidecar the commit writes.
    staged: Mutex<HashMap<ObjectId, Arc<ObjectMeta>>>,
    /// For each object whose every block was checked since it last changed on disk: the data
    /// file's stamp then. A hit whose file still has that stamp is not checked again (only a
    /// write changes the stamp; silent decay is the scrub's to find).
    checked: RwLock<HashMap<ObjectId, Stamp>>,
    /// Small objects' verified bytes, so a hit on one reads no file (see `hot_copies`).
    hot: HotCopies,
}

/// What changes when a file is written, truncated or replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    inode: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    pub fn of(file: &File) -> io::Result<Stamp> {
        Ok(Stamp::from(&file.metadata()?))
    }

    fn of_stat(s: &rustix::fs::Stat) -> Stamp {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stamp {
            inode: s.st_ino,
            len: s.st_size as u64,
            mtime_ns: ns(s.st_mtime, s.st_mtime_nsec as i64),
            ctime_ns: ns(s.st_ctime, s.st_ctime_nsec as i64),
        }
    }

    fn from(m: &fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stamp {
            inode: m.ino(),
            len: m.len(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        }
    }
}

impl Store {
    /// Opens (creating if needed) the store at `root` and deletes leftover fills.
    pub fn open(root: &Path) -> io::Result<Store> {
        let objects = root.join("objects");
        let tmp = root.join("tmp");
        fs::create_dir_all(&objects)?;
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        let objects_dir =
            rustix::fs::open(&objects, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        Ok(Store {
            objects_dir,
            objects,
            tmp,
            next_temp: AtomicU64::new(0),
            metas: RwLock::default(),
            staged: Mutex::default(),
            checked: RwLock::default(),
            hot: HotCopies::new(0),
        })
    }

    /// Scans `objects/`: returns every complete object and deletes the debris of a crash
    /// (data without sidecar, sidecar without data, size mismatch, unreadable sidecar).
    pub fn recover(&self) -> io::Result<Vec<(ObjectId, ObjectMeta)>> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.objects)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                let _ = fs::remove_file(&path);
                continue;
            };
            if name.ends_with(".meta") {
                continue; // judged with its data file
            }
            let id = u64::from_str_radix(name, 16).ok().map(ObjectId);
            let meta = id.and_then(|id| self.read_meta(id).ok());
            match (id, meta) {
                (Some(id), Some(meta))
                    if fs::metadata(&path).is_ok_and(|m| m.len() == meta.size)
                        && ObjectId::of(&meta.namespace, &meta.path) == id =>
                {
                    self.metas.write().expect("metas").insert(id, Arc::new(meta.clone()));
                    found.push((id, meta));
                }
                (id, _) => {
                    tracing::warn!(file = %path.display(), "removing incomplete object");
                    let _ = fs::remove_file(&path);
                    if let Some(id) = id {
                        let _ = fs::remove_file(self.meta_path(id));
                    }
                }
            }
        }
        // Sidecars whose data is gone.
        for entry in fs::read_dir(&self.objects)? {
            let path = entry?.path();
            if let Some(data) = path.to_str().and_then(|p| p.strip_suffix(".meta"))
                && !Path::new(data).exists()
            {
                let _ = fs::remove_file(&path);
            }
        }
        found.sort_by_key(|a| a.0);
        Ok(found)
    }

    /// Bytes the store's file system can still take, plus what the store holds already: the
    /// most the cache can ever use there (`None` if the file system does not say).
    pub fn disk_room(&self, stored: u64) -> Option<u64> {
        let fs = rustix::fs::statvfs(&self.objects).ok()?;
        Some(fs.f_bavail.saturating_mul(fs.f_frsize).saturating_add(stored))
    }

    /// A new temporary fill, open for reading and writing.
    pub fn temp_file(&self) -> io::Result<(PathBuf, File)> {
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        let path = self.tmp.join(format!("fill-{n}"));
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        Ok((path, file))
    }

    /// Keeps verified copies of small objects in memory, `budget` bytes in all.
    pub fn with_memory_cache(mut self, budget: u64) -> Store {
        self.hot = HotCopies::new(budget);
        self
    }

    /// The verified copy of object `id` in memory, if there is one and its file still has the
    /// stamp it was read under (one `fstatat`; a changed file is read from disk and checked).
    pub fn hot_copy(&self, id: ObjectId) -> Option<HotCopy> {
        let copy = self.hot.get(id)?;
        match rustix::fs::statat(&self.objects_dir, id.to_string(), AtFlags::empty()) {
            Ok(s) if Stamp::of_stat(&s) == copy.stamp => Some(copy),
            _ => {
                self.hot.remove(id);
                None
            }
        }
    }

    /// Keeps `copy` of object `id` in memory, unless the object changed since `copy.meta` was
    /// its metadata (a new version or its removal drops the copy after updating `metas`).
    pub fn keep_hot(&self, id: ObjectId, copy: HotCopy) {
        let metas = self.metas.read().expect("metas");
        if metas.get(&id).is_some_and(|m| Arc::ptr_eq(m, &copy.meta)) {
            self.hot.insert(id, copy);
        }
    }

    /// Whether a verified copy of an object of `size` bytes would be kept in memory.
    pub fn keeps_hot(&self, size: u64) -> bool {
        self.hot.keeps(size)
    }

    /// Bytes of verified copies held in memory.
    pub fn memory_used(&self) -> u64 {
        self.hot.used()
    }

    /// Announces the metadata of the object `id` before its commit runs (see `staged`).
    pub fn stage(&self, id: ObjectId, meta: Arc<ObjectMeta>) {
        self.staged.lock().expect("staged").insert(id, meta);
    }

    /// Makes the complete fill at `temp` the object `id`, with its staged metadata if a `304`
    /// updated that meanwhile, else `meta`.
    pub fn commit(&self, id: ObjectId, temp: &Path, meta: &ObjectMeta) -> io::Result<()> {
        let result = self.commit_staged(id, temp, meta);
        if result.is_err() {
            self.staged.lock().expect("staged").remove(&id);
        }
        result
    }

    fn commit_staged(&self, id: ObjectId, temp: &Path, meta: &ObjectMeta) -> io::Result<()> {
        File::open(temp)?.sync_all()?;
        let mut written =
            self.staged.lock().expect("staged").entry(id).or_insert_with(|| Arc::new(meta.clone())).clone();
        let mut sidecar = self.write_meta(id, &written, true)?;
        fs::rename(temp, self.data_path(id))?;
        loop {
            fs::rename(&sidecar, self.meta_path(id))?;
            {
                let mut staged = self.staged.lock().expect("staged");
                let latest = staged.get(&id).cloned().unwrap_or_else(|| written.clone());
                if Arc::ptr_eq(&latest, &written) {
                    staged.remove(&id);
                    self.metas.write().expect("metas").insert(id, written);
                    self.hot.remove(id);
                    break;
                }
                // A `304` updated the staged sidecar while this one was written: write that.
                written = latest;
            }
            sidecar = self.write_meta(id, &written, true)?;
        }
        File::open(&self.objects)?.sync_all()?;
        // Every block was checked as it arrived.
        self.mark_checked(id, Stamp::of(&File::open(self.data_path(id))?)?);
        Ok(())
    }

    /// Writes `meta` to the temporary sidecar `tmp/<id>.meta`, which a rename then puts in place.
    fn write_meta(&self, id: ObjectId, meta: &ObjectMeta, sync: bool) -> io::Result<PathBuf> {
        let temp = self.tmp.join(format!("{id}.meta"));
        let mut f = File::create(&temp)?;
        f.write_all(&serde_json::to_vec(meta).map_err(io::Error::other)?)?;
        if sync {
            f.sync_all()?;
        }
        Ok(temp)
    }

    /// Replaces a stored object's third-party caching fields (a `304` updated them, RFC 9111
    /// 4.3.4): a new sidecar renamed over the old one, so a crash leaves one or the other whole.
    /// A copy whose commit is still pending has its staged sidecar updated instead.
    pub fn update_caching(&self, id: ObjectId, caching: crate::third_party::CachingFields) -> io::Result<()> {
        let updated = |old: &ObjectMeta| Arc::new(ObjectMeta { caching: Some(caching.clone()), ..old.clone() });
        if let Some(staged) = self.staged.lock().expect("staged").get_mut(&id) {
            *staged = updated(staged);
            return Ok(());
        }
        let Some(old) = self.meta(id) else { return Ok(()) };
        let meta = updated(&old);
        // (No fsync: a crash loses at most the update, and a copy found on disk after a
        // restart is revalidated before use anyway.)
        fs::rename(self.write_meta(id, &meta, false)?, self.meta_path(id))?;
        self.metas.write().expect("metas").insert(id, meta);
        self.hot.remove(id);
        Ok(())
    }

    /// Records that every block of `id` was found right while its file had `stamp`.
    pub fn mark_checked(&self, id: ObjectId, stamp: Stamp) {
        self.checked.write().expect("checked").insert(id, stamp);
    }

    /// Whether object `id`'s file, stamped `now` (see `open_object`), is unchanged since every
    /// block of it was checked.
    pub fn still_checked(&self, id: ObjectId, now: Stamp) -> bool {
        self.checked.read().expect("checked").get(&id).is_some_and(|&k| k == now)
    }

    /// Deletes an object; the sidecar goes first so a crash never leaves data that looks valid
    /// with another object's metadata.
    pub fn remove(&self, id: ObjectId) -> io::Result<()> {
        self.metas.write().expect("metas").remove(&id);
        self.staged.lock().expect("staged").remove(&id);
        self.hot.remove(id);
        self.checked.write().expect("checked").remove(&id);
        let meta = fs::remove_file(self.meta_path(id));
        let data = fs::remove_file(self.data_path(id));
        match (meta, data) {
            (Err(e), Err(_)) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            (_, Err(e)) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The metadata of a stored object, or of one whose commit is pending.
    pub fn meta(&self, id: ObjectId) -> Option<Arc<ObjectMeta>> {
        let stored = self.metas.read().expect("metas").get(&id).cloned();
        stored.or_else(|| self.staged.lock().expect("staged").get(&id).cloned())
    }

    /// Every stored object (for the scrub).
    pub fn ids(&self) -> Vec<ObjectId> {
        self.metas.read().expect("metas").keys().copied().collect()
    }

    /// Opens a stored object with its metadata and the file's stamp as opened (one `fstat`,
    /// which a hit also uses for `still_checked`).
    pub fn open_object(&self, id: ObjectId) -> io::Result<(File, Arc<ObjectMeta>, Stamp)> {
        let known = self.metas.read().expect("metas").get(&id).cloned();
        let meta = match known {
            Some(meta) => meta,
            None => Arc::new(self.read_meta(id)?),
        };
        let file = File::open(self.data_path(id))?;
        let stamp = Stamp::of(&file)?;
        if stamp.len != meta.size {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "stored object has the wrong size"));
        }
        Ok((file, meta, stamp))
    }

    fn read_meta(&self, id: ObjectId) -> io::Result<ObjectMeta> {
        let bytes = fs::read(self.meta_path(id))?;
        serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    fn data_path(&self, id: ObjectId) -> PathBuf {
        self.objects.join(id.to_string())
    }

    fn meta_path(&self, id: ObjectId) -> PathBuf {
        self.objects.join(format!("{id}.meta"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::digest::Hasher;
    use bytes::Bytes;

    fn meta(ns: &str, path: &str, body: &[u8]) -> ObjectMeta {
        let mut h = Hasher::default();
        h.update(body);
        ObjectMeta {
            namespace: ns.into(),
            path: path.into(),
            size: body.len() as u64,
            etag: "\"e\"".into(),
            last_modified: None,
            digests: h.finish(),
            blocks: Some(crate::blocks::BlockList::of_bytes(body, 4)),
            seal: None,
            caching: None,
        }
    }

    #[test]
    fn commit_recover_and_crash_debris() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = ObjectId::of("atlas", "a");
        let (temp, mut f) = store.temp_file().unwrap();
        f.write_all(b"hello").unwrap();
        store.commit(id, &temp, &meta("atlas", "a", b"hello")).unwrap();
        // Debris: a fill left in tmp, data without sidecar, a sidecar without data, a truncated object.
        store.temp_file().unwrap();
        fs::write(dir.path().join("objects/00000000000000aa"), b"x").unwrap();
        fs::write(dir.path().join("objects/00000000000000bb.meta"), b"{}").unwrap();
        let id2 = ObjectId::of("atlas", "b");
        let (temp2, mut f2) = store.temp_file().unwrap();
        f2.write_all(b"world").unwrap();
        store.commit(id2, &temp2, &meta("atlas", "b", b"world")).unwrap();
        fs::write(dir.path().join(format!("objects/{id2}")), b"wor").unwrap();

        let store = Store::open(dir.path()).unwrap();
        let found = store.recover().unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, id);
        // Only the object and its sidecar are left.
        assert_eq!(fs::read_dir(dir.path().join("objects")).unwrap().count(), 2);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        let (_, m, _) = store.open_object(id).unwrap();
        assert_eq!(m.size, 5);
        store.remove(id).unwrap();
        assert!(store.open_object(id).is_err());
        assert!(store.remove(id).is_ok());
    }

    #[test]
    fn a_304_before_the_commit_reaches_the_disk_is_what_the_commit_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = ObjectId::of("web", "f");
        let (temp, mut f) = store.temp_file().unwrap();
        f.write_all(b"hello").unwrap();
        let fetched = meta("web", "f", b"hello");
        store.stage(id, Arc::new(fetched.clone()));
        // Before the commit runs, a revalidation still finds the copy's validators ...
        assert_eq!(store.meta(id).map(|m| m.etag.clone()), Some(fetched.etag.clone()));
        // ... and a 304's new rules are not lost.
        let rules = crate::third_party::CachingFields {
            cache_control: Some("max-age=0, must-revalidate".into()),
            ..Default::default()
        };
        store.update_caching(id, rules.clone()).unwrap();
        store.commit(id, &temp, &fetched).unwrap();
        assert_eq!(store.meta(id).unwrap().caching.as_ref(), Some(&rules));
        let reopened = Store::open(dir.path()).unwrap();
        let found = reopened.recover().unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1.caching.as_ref(), Some(&rules));
        // Once committed, an update rewrites the sidecar on disk.
        let later =
            crate::third_party::CachingFields { cache_control: Some("max-age=60".into()), ..Default::default() };
        store.update_caching(id, later.clone()).unwrap();
        assert_eq!(Store::open(dir.path()).unwrap().recover().unwrap()[0].1.caching.as_ref(), Some(&later));
    }

    #[test]
    fn a_copy_in_memory_is_served_only_while_its_file_and_object_are_unchanged() {
        use crate::hot_copies::HotCopy;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap().with_memory_cache(1 << 20);
        let id = ObjectId::of("atlas", "a");
        let commit = |body: &[u8]| {
            let (temp, mut f) = store.temp_file().unwrap();
            f.write_all(body).unwrap();
            store.commit(id, &temp, &meta("atlas", "a", body)).unwrap();
        };
        let keep = || {
            let (_, meta, stamp) = store.open_object(id).unwrap();
            store.keep_hot(id, HotCopy { bytes: Bytes::from_static(b"hello"), meta, stamp });
        };
        commit(b"hello");
        keep();
        assert_eq!(store.hot_copy(id).map(|c| c.bytes), Some(Bytes::from_static(b"hello")));
        assert_eq!(store.memory_used(), 5);
        // A write to the file changes its stamp (here its length: a write's new mtime may fall in
        // the same clock tick): the copy is dropped, and the file is read instead.
        let data = dir.path().join(format!("objects/{id}"));
        fs::OpenOptions::new().write(true).open(&data).unwrap().set_len(4).unwrap();
        assert!(store.hot_copy(id).is_none());
        assert_eq!(store.memory_used(), 0);
        // A new version, a 304's update and a removal drop it too.
        commit(b"hello");
        keep();
        assert!(store.hot_copy(id).is_some());
        commit(b"world");
        assert!(store.hot_copy(id).is_none());
        keep();
        store.update_caching(id, Default::default()).unwrap();
        assert!(store.hot_copy(id).is_none());
        keep();
        assert!(store.hot_copy(id).is_some());
        store.remove(id).unwrap();
        assert!(store.hot_copy(id).is_none());
        // A copy read under metadata that is no longer the object's is not kept.
        commit(b"hello");
        let (_, old, stamp) = store.open_object(id).unwrap();
        commit(b"hello");
        store.keep_hot(id, HotCopy { bytes: Bytes::from_static(b"hello"), meta: old, stamp });
        assert_eq!(store.memory_used(), 0);
    }
}
