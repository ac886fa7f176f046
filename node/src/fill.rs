//! A fill: the bytes of one core fetch arriving into a temporary file, watched by everyone who
//! streams from it. Each retry (the core's failover to the next source) is a new attempt with a
//! new file; a reader bound to an attempt that breaks gets an error, never another file's bytes.

use crate::store::ObjectMeta;
use reef_core::{FetchId, ObjectName, Source};
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// The response head of an attempt: what a client streaming from it is told up front.
#[derive(Debug, Clone)]
pub struct Head {
    pub size: u64,
    pub etag: String,
    pub last_modified: Option<u64>,
    pub source: Source,
}

#[derive(Debug, Clone)]
pub enum State {
    /// Asking the source; nothing received yet.
    Connecting,
    Receiving {
        head: Arc<Head>,
        file: Arc<File>,
        written: u64,
    },
    /// Every byte arrived and was verified.
    Complete {
        head: Arc<Head>,
        file: Arc<File>,
        meta: Arc<ObjectMeta>,
        temp: PathBuf,
    },
    Failed,
}

#[derive(Debug, Clone)]
pub struct Progress {
    pub attempt: u32,
    pub state: State,
}

#[derive(Debug)]
pub struct Fill {
    pub fetch: FetchId,
    pub name: ObjectName,
    progress: watch::Sender<Progress>,
    /// The last attempt failed because the disk was full (answered with 507).
    no_space: AtomicBool,
}

impl Fill {
    pub fn new(fetch: FetchId, name: ObjectName) -> Fill {
        Fill {
            fetch,
            name,
            progress: watch::Sender::new(Progress { attempt: 0, state: State::Connecting }),
            no_space: AtomicBool::new(false),
        }
    }

    /// Starts attempt number `attempt` (a new source).
    pub fn begin(&self, attempt: u32) {
        self.no_space.store(false, Ordering::Relaxed);
        self.progress.send_replace(Progress { attempt, state: State::Connecting });
    }

    /// Updates the state of `attempt`; a stale attempt changes nothing.
    pub fn set(&self, attempt: u32, state: State) {
        self.progress.send_if_modified(|p| {
            if p.attempt != attempt {
                return false;
            }
            p.state = state;
            true
        });
    }

    pub fn add_written(&self, attempt: u32, n: u64) {
        self.progress.send_if_modified(|p| match &mut p.state {
            State::Receiving { written, .. } if p.attempt == attempt => {
                *written += n;
                true
            }
            _ => false,
        });
    }

    pub fn snapshot(&self) -> Progress {
        self.progress.borrow().clone()
    }

    pub fn mark_no_space(&self) {
        self.no_space.store(true, Ordering::Relaxed);
    }

    pub fn no_space(&self) -> bool {
        self.no_space.load(Ordering::Relaxed)
    }

    /// Waits until the current attempt has a response head (or completed); returns a watch bound
    /// to that attempt. Pends forever while attempts fail: the core's answer ends the wait.
    pub async fn head(&self) -> (Arc<Head>, Arc<File>, FillWatch) {
        let mut rx = self.progress.subscribe();
        loop {
            {
                let p = rx.borrow_and_update();
                match &p.state {
                    State::Receiving { head, file, .. } | State::Complete { head, file, .. } => {
                        let attempt = p.attempt;
                        let (head, file) = (head.clone(), file.clone());
                        drop(p);
                        return (head, file, FillWatch { rx, attempt });
                    }
                    State::Connecting | State::Failed => {}
                }
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// A reader's view of one attempt of a fill.
#[derive(Debug, Clone)]
pub struct FillWatch {
    rx: watch::Receiver<Progress>,
    attempt: u32,
}

impl FillWatch {
    /// Waits until byte `pos` is on disk; returns how many bytes are. Errors if the attempt broke.
    pub async fn wait_for(&mut self, pos: u64) -> io::Result<u64> {
        let broken = || io::Error::new(io::ErrorKind::BrokenPipe, "upstream transfer broke");
        loop {
            {
                let p = self.rx.borrow_and_update();
                if p.attempt != self.attempt {
                    return Err(broken());
                }
                match &p.state {
                    // The last byte is held back until the object is verified, so a client
                    // never receives a complete body whose checksum turns out wrong.
                    State::Receiving { written, head, .. } if (*written).min(head.size - 1) > pos => {
                        return Ok((*written).min(head.size - 1));
                    }
                    State::Complete { meta, .. } => return Ok(meta.size),
                    State::Failed => return Err(broken()),
                    _ => {}
                }
            }
            self.rx.changed().await.map_err(|_| broken())?;
        }
    }
}
