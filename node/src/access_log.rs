//! The JSON-lines access log: one line per request, in the shape `reef-sim replay` reads as a
//! trace (`time` in seconds since the Unix epoch; `object` as `/namespace/path`; `object_id` as
//! 16 hex digits, the core's `ObjectId`).

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub time: f64,
    pub client: String,
    pub site: Option<String>,
    pub method: String,
    pub object: String,
    pub object_id: Option<String>,
    pub range: Option<String>,
    pub bytes: u64,
    pub size: Option<u64>,
    pub status: u16,
    /// hit, miss, served (an origin), redirect, not_modified, or why it failed.
    pub outcome: String,
    /// local, peer:nID, origin:nID, or `-`.
    pub source: String,
    pub duration_ms: f64,
    pub complete: bool,
}

/// Each line is appended with one `write` to a file opened with `O_APPEND`, from the request's
/// own thread (as nginx does): the kernel keeps concurrent lines whole, a line is in the file
/// when the request ends, and no other thread is woken per request. (A writer thread fed by a
/// queue, tried first, cost a wake-up and a context switch per line: about a third of small-hit
/// throughput on one core.)
#[derive(Debug)]
pub struct AccessLog {
    file: File,
    /// Whether the last write failed: a full disk is reported once, not on every request.
    failing: std::sync::atomic::AtomicBool,
}

impl AccessLog {
    pub fn open(path: &Path) -> std::io::Result<AccessLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AccessLog { file, failing: Default::default() })
    }

    pub fn write(&self, record: &Record) {
        let Ok(mut line) = serde_json::to_vec(record) else {
            return;
        };
        line.push(b'\n');
        use std::sync::atomic::Ordering::Relaxed;
        match (&self.file).write_all(&line) {
            Ok(()) if self.failing.swap(false, Relaxed) => tracing::info!("the access log is written again"),
            Ok(()) => {}
            Err(e) if !self.failing.swap(true, Relaxed) => tracing::warn!(error = %e, "cannot write the access log"),
            Err(_) => {}
        }
    }
}
