//! The read-only file system: `stat` and `readdir` answered from origin listings (kept for a
//! TTL, and kept past it while the origin cannot be reached), reads answered block by block
//! from the local block cache or from the federation, every block checked against the
//! origin's block list before it is kept or returned.

use super::block_cache::{BlockCache, version_key};
use super::remote::{Remote, RemoteError};
use crate::blocks::BlockList;
use fuser::{FileAttr, FileType, Filesystem, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen, Request};
use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// How long the kernel may keep an answer before asking again.
const KERNEL_TTL: Duration = Duration::from_secs(1);
const ROOT: u64 = 1;

#[derive(Debug)]
struct Node {
    /// Path inside the namespace ("" for its root).
    path: String,
    parent: u64,
    dir: bool,
    size: u64,
    mtime: i64,
    /// Children (by inode) and when they were listed.
    listed: Option<(Instant, Vec<u64>)>,
}

/// One version of an object: its block list, for how long it is trusted, its cache key.
#[derive(Clone)]
struct Version {
    list: Arc<BlockList>,
    etag: String,
    key: String,
    fetched: Instant,
}

/// Fetches blocks into the cache; shared with read-ahead tasks.
pub struct Fetcher {
    pub remote: Remote,
    pub cache: BlockCache,
    /// Blocks being fetched now (version key, index): readers wait instead of fetching twice.
    inflight: Mutex<HashSet<BlockId>>,
    /// The last blocks verified, in memory: the kernel reads 128 KiB at a time, so a block is
    /// asked for several times in a row and should be read and hashed once.
    recent: Mutex<VecDeque<(BlockId, Arc<Vec<u8>>)>>,
}

/// A block of one object version: (version key, index).
type BlockId = (String, u64);

/// Blocks kept in memory (`Fetcher::recent`): the read-ahead window and some.
const RECENT_BLOCKS: usize = 32;

impl Fetcher {
    pub fn new(remote: Remote, cache: BlockCache) -> Fetcher {
        Fetcher { remote, cache, inflight: Mutex::default(), recent: Mutex::default() }
    }

    fn remember(&self, key: &str, index: u64, data: Arc<Vec<u8>>) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() >= RECENT_BLOCKS {
            recent.pop_front();
        }
        recent.push_back(((key.to_string(), index), data));
    }

    fn recalled(&self, key: &str, index: u64) -> Option<Arc<Vec<u8>>> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().rev().find(|((k, i), _)| *i == index && k == key).map(|(_, d)| d.clone())
    }

    /// Fetches blocks `first..=last` (those not cached nor in flight) in one range request,
    /// checks each against the list and keeps it.
    async fn fetch(&self, path: &str, v: &Version, first: u64, last: u64) -> Result<(), RemoteError> {
        let claimed: Vec<u64> = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            (first..=last)
                .take_while(|&i| !self.cache.contains(&v.key, i) && inflight.insert((v.key.clone(), i)))
                .collect()
        };
        let Some(&end) = claimed.last() else { return Ok(()) };
        let release = || {
            let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            for &i in &claimed {
                inflight.remove(&(v.key.clone(), i));
            }
        };
        let (start, _) = v.list.span(first);
        let (_, stop) = v.list.span(end);
        let result = self.remote.range(path, &v.etag, start, stop - 1).await;
        let outcome = result.and_then(|bytes| {
            for &i in &claimed {
                let (a, b) = v.list.span(i);
                let block = &bytes[(a - start) as usize..(b - start) as usize];
                v.list.check(i, block).map_err(|e| RemoteError::Unavailable(e.to_string()))?;
                if let Err(e) = self.cache.put(&v.key, i, block) {
                    tracing::warn!(error = %e, "the block cache could not keep a block");
                }
                self.remember(&v.key, i, Arc::new(block.to_vec()));
            }
            Ok(())
        });
        release();
        outcome
    }

    /// Block `index`, checked: from the cache, or fetched with the blocks up to `upto`.
    async fn block(&self, path: &str, v: &Version, index: u64, upto: u64) -> Result<Arc<Vec<u8>>, RemoteError> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(data) = self.recalled(&v.key, index) {
                return Ok(data);
            }
            if let Some(data) = self.cache.get(&v.key, index) {
                if v.list.check(index, &data).is_ok() {
                    let data = Arc::new(data);
                    self.remember(&v.key, index, data.clone());
                    return Ok(data);
                }
                tracing::warn!(path, index, "a cached block is corrupt; fetching it again");
                self.cache.remove(&v.key, index);
            }
            let busy = self.inflight.lock().unwrap_or_else(|e| e.into_inner()).contains(&(v.key.clone(), index));
            if busy && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            }
            self.fetch(path, v, index, upto).await?;
            if let Some(data) = self.recalled(&v.key, index) {
                return Ok(data);
            }
            // Not kept (no room): fetch this one block and hand it over directly.
            let (a, b) = v.list.span(index);
            let data = self.remote.range(path, &v.etag, a, b - 1).await?;
            v.list.check(index, &data).map_err(|e| RemoteError::Unavailable(e.to_string()))?;
            return Ok(Arc::new(data.to_vec()));
        }
    }
}

pub struct ReefFs {
    rt: tokio::runtime::Handle,
    fetcher: Arc<Fetcher>,
    nodes: HashMap<u64, Node>,
    by_path: HashMap<String, u64>,
    next_ino: u64,
    versions: HashMap<String, Version>,
    /// The next block a sequential reader of an inode would ask for.
    next_block: HashMap<u64, u64>,
    listing_ttl: Duration,
    readahead: u64,
    uid: u32,
    gid: u32,
}

fn errno(e: &RemoteError) -> i32 {
    match e {
        RemoteError::NotFound => libc_errno::ENOENT,
        RemoteError::Refused(_) => libc_errno::EACCES,
        RemoteError::Changed => CHANGED,
        RemoteError::Unavailable(_) => libc_errno::EIO,
    }
}

/// Internal only: the object changed under a read (never returned to the kernel).
const CHANGED: i32 = -1;

/// The errno values used (as fuser passes them through).
mod libc_errno {
    pub const ENOENT: i32 = 2;
    pub const EIO: i32 = 5;
    pub const EACCES: i32 = 13;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const EROFS: i32 = 30;
}

impl ReefFs {
    pub fn new(rt: tokio::runtime::Handle, fetcher: Arc<Fetcher>, listing_ttl: Duration, readahead: u64) -> ReefFs {
        let root = Node { path: String::new(), parent: ROOT, dir: true, size: 0, mtime: 0, listed: None };
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        ReefFs {
            rt,
            fetcher,
            nodes: HashMap::from([(ROOT, root)]),
            by_path: HashMap::from([(String::new(), ROOT)]),
            next_ino: ROOT + 1,
            versions: HashMap::new(),
            next_block: HashMap::new(),
            listing_ttl,
            readahead: readahead.max(1),
            uid,
            gid,
        }
    }

    fn attr(&self, ino: u64, node: &Node) -> FileAttr {
        let mtime = UNIX_EPOCH + Duration::from_secs(u64::try_from(node.mtime).unwrap_or(0));
        FileAttr {
            ino,
            size: node.size,
            blocks: node.size.div_ceil(512),
            atime: mtime,
            mtime,
            ctime: mtime,
            crtime: mtime,
            kind: if node.dir { FileType::Directory } else { FileType::RegularFile },
            perm: if node.dir { 0o555 } else { 0o444 },
            nlink: if node.dir { 2 } else { 1 },
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 1 << 20,
            flags: 0,
        }
    }

    /// Lists directory `ino` if its listing is missing or older than the TTL. When the origin
    /// cannot be reached, a listing already held keeps answering.
    fn ensure_listed(&mut self, ino: u64) -> Result<(), i32> {
        let node = self.nodes.get(&ino).ok_or(libc_errno::ENOENT)?;
        if !node.dir {
            return Err(libc_errno::ENOTDIR);
        }
        if node.listed.as_ref().is_some_and(|(at, _)| at.elapsed() < self.listing_ttl) {
            return Ok(());
        }
        let path = node.path.clone();
        let fetcher = self.fetcher.clone();
        let entries = match self.rt.block_on(async { fetcher.remote.list(&path).await }) {
            Ok(entries) => entries,
            Err(e) if self.nodes[&ino].listed.is_some() => {
                tracing::debug!(path, error = %e, "listing unavailable; using the one held");
                return Ok(());
            }
            Err(e) => return Err(errno(&e)),
        };
        let mut children = Vec::with_capacity(entries.len());
        for e in entries {
            let child_path = if path.is_empty() { e.name.clone() } else { format!("{path}/{}", e.name) };
            let child = match self.by_path.get(&child_path) {
                Some(&c) => c,
                None => {
                    let c = self.next_ino;
                    self.next_ino += 1;
                    self.by_path.insert(child_path.clone(), c);
                    c
                }
            };
            let node = self.nodes.entry(child).or_insert(Node {
                path: child_path,
                parent: ino,
                dir: e.dir,
                size: 0,
                mtime: 0,
                listed: None,
            });
            if node.dir != e.dir {
                node.listed = None;
            }
            (node.dir, node.size, node.mtime) = (e.dir, e.size, e.mtime);
            children.push(child);
        }
        self.nodes.get_mut(&ino).expect("listed above").listed = Some((Instant::now(), children));
        Ok(())
    }

    /// The version of the object at `path` to read: its block list from the origin, kept for
    /// the listing TTL (and past it while the origin cannot be reached).
    fn version(&mut self, path: &str) -> Result<Version, i32> {
        if let Some(v) = self.versions.get(path).filter(|v| v.fetched.elapsed() < self.listing_ttl) {
            return Ok(v.clone());
        }
        let fetcher = self.fetcher.clone();
        let owned = path.to_string();
        match self.rt.block_on(async move { fetcher.remote.block_list(&owned).await }) {
            Ok((list, etag)) => {
                let key = version_key(path, &etag);
                let v = Version { list: Arc::new(list), etag, key, fetched: Instant::now() };
                self.versions.insert(path.to_string(), v.clone());
                Ok(v)
            }
            Err(e) => match self.versions.get(path) {
                Some(v) => Ok(v.clone()),
                None => Err(errno(&e)),
            },
        }
    }

    fn read_range(&mut self, ino: u64, offset: u64, size: u64) -> Result<Vec<u8>, i32> {
        let node = self.nodes.get(&ino).ok_or(libc_errno::ENOENT)?;
        if node.dir {
            return Err(libc_errno::EISDIR);
        }
        let path = node.path.clone();
        let v = self.version(&path)?;
        let end = (offset + size).min(v.list.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let blocks = v.list.hashes.len() as u64;
        let (first, last) = (v.list.index_of(offset), v.list.index_of(end - 1));
        // A sequential reader gets the next blocks fetched ahead, in one request.
        let sequential = self.next_block.get(&ino).is_some_and(|&n| n == first || n == first + 1) || first == 0;
        self.next_block.insert(ino, last + 1);
        let upto = if sequential { (last + self.readahead).min(blocks - 1) } else { last };
        let fetcher = self.fetcher.clone();
        let (p, ver) = (path.clone(), v.clone());
        let data = self.rt.block_on(async move {
            let mut out = Vec::with_capacity((end - offset) as usize);
            for index in first..=last {
                let block = fetcher.block(&p, &ver, index, upto).await?;
                let (a, _) = ver.list.span(index);
                let from = offset.max(a) - a;
                let to = (end - a).min(block.len() as u64);
                out.extend_from_slice(&block[from as usize..to as usize]);
            }
            Ok::<_, RemoteError>(out)
        });
        if sequential && upto + 1 < blocks {
            // Keep the window ahead of the reader: the next blocks, in the background.
            let (fetcher, v) = (self.fetcher.clone(), v.clone());
            let (from, to) = (upto + 1, (upto + self.readahead).min(blocks - 1));
            self.rt.spawn(async move {
                if let Err(e) = fetcher.fetch(&path, &v, from, to).await {
                    tracing::debug!(path, error = %e, "read-ahead failed");
                }
            });
        }
        data.map_err(|e| {
            tracing::warn!(error = %e, "a read failed");
            errno(&e)
        })
    }
}

impl Filesystem for ReefFs {
    fn init(&mut self, _req: &Request<'_>, config: &mut fuser::KernelConfig) -> Result<(), i32> {
        // Let the kernel read ahead up to 1 MiB (a block): fewer, larger reads.
        let _ = config.set_max_readahead(1 << 20);
        Ok(())
    }

    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        if let Err(e) = self.ensure_listed(parent) {
            return reply.error(e);
        }
        let name = name.to_string_lossy();
        let found = self.nodes[&parent].listed.as_ref().and_then(|(_, children)| {
            children.iter().copied().find(|c| self.nodes[c].path.rsplit('/').next() == Some(&*name))
        });
        match found {
            Some(ino) => reply.entry(&KERNEL_TTL, &self.attr(ino, &self.nodes[&ino]), 0),
            None => reply.error(libc_errno::ENOENT),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.nodes.get(&ino) {
            Some(node) => reply.attr(&KERNEL_TTL, &self.attr(ino, node)),
            None => reply.error(libc_errno::ENOENT),
        }
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        const ACCESS_MODE: i32 = 0o3; // O_ACCMODE; O_RDONLY is 0
        match self.nodes.get(&ino) {
            None => reply.error(libc_errno::ENOENT),
            Some(_) if flags & ACCESS_MODE != 0 => reply.error(libc_errno::EROFS),
            Some(n) if n.dir => reply.error(libc_errno::EISDIR),
            Some(_) => reply.opened(0, 0),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let offset = u64::try_from(offset).unwrap_or(0);
        let mut result = self.read_range(ino, offset, u64::from(size));
        if result == Err(CHANGED) {
            // A new version was published: read it from its own block list, once.
            if let Some(node) = self.nodes.get(&ino) {
                self.versions.remove(&node.path);
            }
            result = self
                .read_range(ino, offset, u64::from(size))
                .map_err(|e| if e == CHANGED { libc_errno::EIO } else { e });
        }
        match result {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&mut self, _req: &Request<'_>, ino: u64, _fh: u64, offset: i64, mut reply: ReplyDirectory) {
        if let Err(e) = self.ensure_listed(ino) {
            return reply.error(e);
        }
        let node = &self.nodes[&ino];
        let mut entries =
            vec![(ino, FileType::Directory, ".".to_string()), (node.parent, FileType::Directory, "..".into())];
        for &c in node.listed.as_ref().map(|(_, c)| c.as_slice()).unwrap_or_default() {
            let child = &self.nodes[&c];
            let kind = if child.dir { FileType::Directory } else { FileType::RegularFile };
            entries.push((c, kind, child.path.rsplit('/').next().unwrap_or_default().to_string()));
        }
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(usize::try_from(offset).unwrap_or(0)) {
            if reply.add(ino, (i + 1) as i64, kind, name) {
                break;
            }
        }
        reply.ok();
    }
}
