//! The JSON-lines access log: one line per request, in the shape `reef-sim replay` reads as a
//! trace (`time` in seconds since the Unix epoch; `object` as `/namespace/path`; `object_id` as
//! 16 hex digits, the core's `ObjectId`).

use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Serialize)]
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

/// Lines go through a bounded queue to a writer thread that batches them into a buffer and
/// flushes it whenever the queue runs dry: no lock or system call on the request path. If the
/// disk falls behind by `QUEUE` lines, handlers wait for it (as a direct write would) rather than
/// lose lines or grow memory.
#[derive(Debug)]
pub struct AccessLog {
    lines: std::sync::mpsc::SyncSender<Vec<u8>>,
}

const QUEUE: usize = 1 << 16;

impl AccessLog {
    pub fn open(path: &Path) -> std::io::Result<AccessLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (lines, queue) = std::sync::mpsc::sync_channel::<Vec<u8>>(QUEUE);
        std::thread::Builder::new().name("reef-access-log".into()).spawn(move || write_lines(file, &queue))?;
        Ok(AccessLog { lines })
    }

    pub fn write(&self, record: &Record) {
        let Ok(mut line) = serde_json::to_vec(record) else {
            return;
        };
        line.push(b'\n');
        let _ = self.lines.send(line);
    }
}

fn write_lines(file: File, queue: &std::sync::mpsc::Receiver<Vec<u8>>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
    // Ends when every sender is gone (the node shuts down).
    while let Ok(line) = queue.recv() {
        let mut result = out.write_all(&line);
        while let Ok(line) = queue.try_recv() {
            result = result.and_then(|()| out.write_all(&line));
        }
        if let Err(e) = result.and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "cannot write the access log");
        }
    }
}
