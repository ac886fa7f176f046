//! An origin's exported directory trees. Paths arrive already decoded and checked segment by
//! segment; the joined path is canonicalised and must stay under the export root, so symlinks
//! pointing outside are refused too. Checksums and block lists are computed on demand and
//! remembered per file version (device, inode, mtime, size).

use crate::blocks::BlockList;
use crate::config::Config;
use crate::http::conditional::Validators;
use crate::http::digest::{Digests, Hasher};
use reef_core::NamespaceId;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

#[derive(Debug, PartialEq, Eq)]
pub enum OriginError {
    NotFound,
    /// The path leaves the export (a symlink out), or is not a regular file.
    Forbidden,
    Io(String),
    /// A cache's stored copy is missing, truncated or corrupt.
    Lost(String),
    /// A nearline file being staged: ask again after `retry_after` (`crate::nearline`).
    Staging {
        retry_after: Duration,
        started: bool,
    },
}

/// An exported file, opened.
#[derive(Debug)]
pub struct Exported {
    pub file: Arc<File>,
    pub size: u64,
    pub validators: Validators,
    version: Version,
}

type Version = (u64, u64, i64, i64, u64);

#[derive(Debug)]
pub struct Exports {
    /// Canonical export root per namespace index.
    roots: Vec<Option<PathBuf>>,
    digests: Mutex<HashMap<Version, Arc<Digests>>>,
    blocks: Mutex<HashMap<Version, Arc<BlockList>>>,
    /// Block size of the block lists this origin publishes (`policy.block_size`).
    block_size: u64,
    /// Uploads in progress (`PUT`, see `upload`).
    pub uploads: crate::upload::Uploads,
    /// Namespaces that emulate an archive's tape, and the tape REST API's stage requests.
    pub nearline: crate::nearline::Nearline,
    pub stage_requests: crate::tape_api::StageRequests,
}

/// Versions whose checksums and block lists are remembered (a list is 32 KiB per GiB).
const MAX_REMEMBERED: usize = 4096;

impl Exports {
    pub fn new(config: &Config) -> io::Result<Exports> {
        let roots = config
            .namespaces
            .iter()
            .map(|ns| ns.export.as_ref().map(std::fs::canonicalize).transpose())
            .collect::<io::Result<_>>()?;
        let block_size = config.policy.block_size.0;
        Ok(Exports {
            roots,
            digests: Mutex::default(),
            blocks: Mutex::default(),
            block_size,
            uploads: crate::upload::Uploads::default(),
            nearline: crate::nearline::Nearline::new(
                (config.namespaces.iter())
                    .map(|ns| ns.nearline.map(|n| (n.delay.0.into(), n.retry_after.0.into())))
                    .collect(),
            ),
            stage_requests: crate::tape_api::StageRequests::default(),
        })
    }

    /// The canonical export root of a namespace, if this origin exports it.
    pub fn root(&self, ns: NamespaceId) -> Option<&std::path::Path> {
        self.roots.get(usize::from(ns.0)).and_then(Option::as_deref)
    }

    /// Opens an exported file. The file-system calls run on the blocking pool: a hung network
    /// file system must not stall the async runtime.
    pub async fn open(&self, ns: NamespaceId, segments: &[String]) -> Result<Exported, OriginError> {
        let root = self.root(ns).ok_or(OriginError::NotFound)?.to_path_buf();
        if segments.first().is_some_and(|s| s == crate::upload::STAGING) {
            return Err(OriginError::NotFound); // unfinished uploads are nobody's objects
        }
        let mut path = root.clone();
        path.extend(segments);
        tokio::task::spawn_blocking(move || open_exported(&root, &path))
            .await
            .map_err(|e| OriginError::Io(e.to_string()))?
    }
    /// The checksums of an exported file (for clients that send `Want-Digest`), computed once
    /// per version off the async runtime.
    pub async fn digests(&self, exported: &Exported) -> io::Result<Arc<Digests>> {
        cached(&self.digests, exported, self.block_size, Hasher::default()).await
    }

    /// Remembers checksums computed elsewhere (an upload hashed as it arrived).
    pub fn remember_digests(&self, exported: &Exported, digests: Digests) {
        let mut map = self.digests.lock().expect("cache");
        if map.len() >= MAX_REMEMBERED {
            map.clear();
        }
        map.insert(exported.version, Arc::new(digests));
    }

    /// The block list of an exported file (for caches), computed once per version.
    pub async fn blocks(&self, exported: &Exported) -> io::Result<Arc<BlockList>> {
        cached(&self.blocks, exported, self.block_size, BlockHashes(Vec::new())).await
    }
}

/// One entry of a directory listing (`GET /.reef/v1/list/<namespace>/<dir>`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListEntry {
    pub name: String,
    pub dir: bool,
    /// Bytes (0 for a directory).
    pub size: u64,
    /// Modification time, Unix seconds.
    pub mtime: i64,
    /// A file's ETag (as its `GET` answers it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// Where listings are served.
pub const LIST_PATH: &str = "/.reef/v1/list";

impl Exports {
    /// The entries of an exported directory, by name: regular files and directories inside
    /// the export only (symlinks are followed and must stay inside; the staging directory and
    /// special files are left out). Runs on the blocking pool.
    /// What an exported path is (its own listing entry, named after its last segment).
    pub async fn stat(&self, ns: NamespaceId, segments: &[String]) -> Result<ListEntry, OriginError> {
        let root = self.root(ns).ok_or(OriginError::NotFound)?.to_path_buf();
        if segments.first().is_some_and(|s| s == crate::upload::STAGING) {
            return Err(OriginError::NotFound);
        }
        let mut path = root.clone();
        path.extend(segments);
        let name = segments.last().cloned().unwrap_or_default();
        tokio::task::spawn_blocking(move || stat_path(&root, &path, name))
            .await
            .map_err(|e| OriginError::Io(e.to_string()))?
    }

    pub async fn list(&self, ns: NamespaceId, segments: &[String]) -> Result<Vec<ListEntry>, OriginError> {
        let root = self.root(ns).ok_or(OriginError::NotFound)?.to_path_buf();
        if segments.first().is_some_and(|s| s == crate::upload::STAGING) {
            return Err(OriginError::NotFound);
        }
        let mut path = root.clone();
        path.extend(segments);
        tokio::task::spawn_blocking(move || list_dir(&root, &path)).await.map_err(|e| OriginError::Io(e.to_string()))?
    }
}

fn list_entry(name: String, md: &std::fs::Metadata) -> ListEntry {
    let (size, etag) = if md.is_file() { (md.len(), Some(etag_of(md))) } else { (0, None) };
    ListEntry { name, dir: md.is_dir(), size, mtime: md.mtime(), etag }
}

/// What `path` under `root` is: a file or a directory inside the export (named `name`).
fn stat_path(root: &std::path::Path, path: &std::path::Path, name: String) -> Result<ListEntry, OriginError> {
    let real = std::fs::canonicalize(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => OriginError::NotFound,
        _ => OriginError::Io(e.to_string()),
    })?;
    if !real.starts_with(root) {
        return Err(OriginError::Forbidden);
    }
    let md = std::fs::metadata(&real).map_err(|e| OriginError::Io(e.to_string()))?;
    if !(md.is_file() || md.is_dir()) {
        return Err(OriginError::Forbidden);
    }
    Ok(list_entry(name, &md))
}

fn list_dir(root: &std::path::Path, path: &std::path::Path) -> Result<Vec<ListEntry>, OriginError> {
    let real = std::fs::canonicalize(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => OriginError::NotFound,
        _ => OriginError::Io(e.to_string()),
    })?;
    if !real.starts_with(root) {
        return Err(OriginError::Forbidden);
    }
    let entries = std::fs::read_dir(&real).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => OriginError::NotFound,
        _ => OriginError::Io(e.to_string()),
    })?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else { continue };
        if real == root && name == crate::upload::STAGING {
            continue;
        }
        let Ok(target) = std::fs::canonicalize(entry.path()) else { continue };
        let Ok(md) = std::fs::metadata(&target) else { continue };
        if !target.starts_with(root) || !(md.is_file() || md.is_dir()) {
            continue;
        }
        out.push(list_entry(name, &md));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Something computed from every block of a file, in order.
trait Gather: Send + 'static {
    type Out: Send + Sync + 'static;
    fn update(&mut self, block: &[u8]);
    fn finish(self, block_size: u64, size: u64) -> Self::Out;
}

impl Gather for Hasher {
    type Out = Digests;
    fn update(&mut self, block: &[u8]) {
        Hasher::update(self, block);
    }
    fn finish(self, _: u64, _: u64) -> Digests {
        Hasher::finish(self)
    }
}

struct BlockHashes(Vec<[u8; 32]>);

impl Gather for BlockHashes {
    type Out = BlockList;
    fn update(&mut self, block: &[u8]) {
        self.0.push(*blake3::hash(block).as_bytes());
    }
    fn finish(self, block_size: u64, size: u64) -> BlockList {
        BlockList { block_size, size, hashes: self.0 }
    }
}

/// `gather`'s result for `exported`, computed once per version on the blocking pool (a
/// bounded number of versions is remembered).
async fn cached<G: Gather>(
    map: &Mutex<HashMap<Version, Arc<G::Out>>>,
    exported: &Exported,
    block_size: u64,
    mut gather: G,
) -> io::Result<Arc<G::Out>> {
    if let Some(r) = map.lock().expect("cache").get(&exported.version) {
        return Ok(r.clone());
    }
    let (file, size) = (exported.file.clone(), exported.size);
    let out = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0; block_size as usize];
        let mut pos = 0;
        while pos < size {
            let n = (size - pos).min(block_size) as usize;
            file.read_exact_at(&mut buf[..n], pos).map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => io::Error::new(e.kind(), "file shrank"),
                _ => e,
            })?;
            gather.update(&buf[..n]);
            pos += n as u64;
        }
        Ok::<_, io::Error>(Arc::new(gather.finish(block_size, size)))
    })
    .await
    .map_err(io::Error::other)??;
    let mut map = map.lock().expect("cache");
    if map.len() >= MAX_REMEMBERED {
        map.clear(); // a simple bound: recomputing is cheap next to an unbounded map
    }
    map.insert(exported.version, out.clone());
    Ok(out)
}

/// An exported file's strong ETag: changes with any write (mtime in nanoseconds), its size or
/// a replacement (the inode).
fn etag_of(md: &std::fs::Metadata) -> String {
    format!("\"{:x}-{:x}{:08x}-{:x}\"", md.len(), md.mtime(), md.mtime_nsec(), md.ino())
}

/// Opens `path` under `root`: only regular files inside the export. Special files (FIFOs,
/// devices, sockets) are refused before they are opened: opening a FIFO would block until a
/// writer appears.
fn open_exported(root: &std::path::Path, path: &std::path::Path) -> Result<Exported, OriginError> {
    let real = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OriginError::NotFound),
        Err(e) => return Err(OriginError::Io(e.to_string())),
    };
    if !real.starts_with(root) {
        return Err(OriginError::Forbidden);
    }
    let regular = std::fs::metadata(&real).map_err(|e| OriginError::Io(e.to_string()))?;
    if regular.is_dir() {
        return Err(OriginError::NotFound);
    }
    if !regular.is_file() {
        return Err(OriginError::Forbidden);
    }
    let file = File::open(&real).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => OriginError::NotFound,
        io::ErrorKind::PermissionDenied => OriginError::Forbidden,
        _ => OriginError::Io(e.to_string()),
    })?;
    let md = file.metadata().map_err(|e| OriginError::Io(e.to_string()))?;
    if !md.is_file() {
        return Err(OriginError::Forbidden);
    }
    let version = (md.dev(), md.ino(), md.mtime(), md.mtime_nsec(), md.len());
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(md.mtime()).unwrap_or(0));
    Ok(Exported {
        file: Arc::new(file),
        size: md.len(),
        validators: Validators {
            // Strong: changes with any write (mtime in nanoseconds), size or replacement.
            etag: etag_of(&md),
            last_modified: Some(mtime),
        },
        version,
    })
}
