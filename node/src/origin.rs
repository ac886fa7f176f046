//! An origin's exported directory trees. Paths arrive already decoded and checked segment by
//! segment; the joined path is canonicalised and must stay under the export root, so symlinks
//! pointing outside are refused too. Checksums are computed on demand and remembered per file
//! version (device, inode, mtime, size).

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
    /// The path leaves the export (a symlink out).
    Forbidden,
    Io(String),
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
    digests: Mutex<HashMap<Version, Digests>>,
}

impl Exports {
    pub fn new(config: &Config) -> io::Result<Exports> {
        let roots = config
            .namespaces
            .iter()
            .map(|ns| ns.export.as_ref().map(std::fs::canonicalize).transpose())
            .collect::<io::Result<_>>()?;
        Ok(Exports { roots, digests: Mutex::new(HashMap::new()) })
    }

    /// Opens an exported file. The file-system calls run on the blocking pool: a hung network
    /// file system must not stall the async runtime.
    pub async fn open(&self, ns: NamespaceId, segments: &[String]) -> Result<Exported, OriginError> {
        let root = self.roots.get(usize::from(ns.0)).and_then(Option::as_ref).ok_or(OriginError::NotFound)?.clone();
        let mut path = root.clone();
        path.extend(segments);
        tokio::task::spawn_blocking(move || open_exported(&root, &path))
            .await
            .map_err(|e| OriginError::Io(e.to_string()))?
    }
    /// The checksums of an exported file, computed once per version.
    pub async fn digests(&self, exported: &Exported) -> io::Result<Digests> {
        if let Some(d) = self.digests.lock().expect("digests").get(&exported.version) {
            return Ok(d.clone());
        }
        let (file, size) = (exported.file.clone(), exported.size);
        let digests = tokio::task::spawn_blocking(move || {
            let mut hasher = Hasher::default();
            let mut buf = vec![0; 1 << 20];
            let mut pos = 0;
            while pos < size {
                let n = file.read_at(&mut buf, pos)?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"));
                }
                hasher.update(&buf[..n]);
                pos += n as u64;
            }
            Ok(hasher.finish())
        })
        .await
        .map_err(io::Error::other)??;
        self.digests.lock().expect("digests").insert(exported.version, digests.clone());
        Ok(digests)
    }
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
            etag: format!("\"{:x}-{:x}{:08x}-{:x}\"", md.len(), md.mtime(), md.mtime_nsec(), md.ino()),
            last_modified: Some(mtime),
        },
        version,
    })
}
