//! A fill: the bytes of one core fetch arriving into a temporary file, watched by everyone who
//! streams from it. Each retry (the core's failover to the next source) is a new attempt with a
//! new file. A reader follows the fill across attempts, as the core's `Stream` contract says:
//! it resumes at the byte it reached once the next attempt has passed it, provided that attempt
//! carries the same version (size and ETag); otherwise, or when the core gives the fill up, the
//! reader gets an error and its response is aborted, never another version's bytes.

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
        /// Bytes from the start checked against the origin's block list: all a reader may see.
        verified: u64,
    },
    /// Every byte arrived and was verified.
    Complete { head: Arc<Head>, file: Arc<File>, meta: Arc<ObjectMeta>, temp: PathBuf },
    /// This attempt failed; the core may try another source.
    Failed,
    /// The core gave the fill up: no attempt follows.
    Abandoned,
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

    /// No attempt follows: readers still waiting give up.
    pub fn abandon(&self) {
        self.progress.send_modify(|p| {
            if !matches!(p.state, State::Complete { .. }) {
                p.state = State::Abandoned;
            }
        });
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

    pub fn set_verified(&self, attempt: u32, n: u64) {
        self.progress.send_if_modified(|p| match &mut p.state {
            State::Receiving { verified, .. } if p.attempt == attempt && *verified < n => {
                *verified = n;
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

    /// Waits until an attempt has a response head (or completed); returns a watch that
    /// follows the fill from that head's version on. `None` if the fill was given up.
    pub async fn head(&self) -> Option<(Arc<Head>, Arc<File>, FillWatch)> {
        let mut rx = self.progress.subscribe();
        loop {
            {
                let p = rx.borrow_and_update();
                match &p.state {
                    State::Receiving { head, file, .. } | State::Complete { head, file, .. } => {
                        let (head, file) = (head.clone(), file.clone());
                        drop(p);
                        return Some((head.clone(), file, FillWatch { rx, head }));
                    }
                    State::Abandoned => return None,
                    State::Connecting | State::Failed => {}
                }
            }
            rx.changed().await.ok()?;
        }
    }

    /// Waits until the fill is complete and verified; `None` if it was given up.
    pub async fn complete(&self) -> Option<(Arc<File>, Arc<ObjectMeta>)> {
        let mut rx = self.progress.subscribe();
        loop {
            {
                let p = rx.borrow_and_update();
                match &p.state {
                    State::Complete { file, meta, .. } => return Some((file.clone(), meta.clone())),
                    State::Abandoned => return None,
                    _ => {}
                }
            }
            rx.changed().await.ok()?;
        }
    }
}

/// A reader's view of a fill: bound to one version of the object, across attempts.
#[derive(Debug, Clone)]
pub struct FillWatch {
    rx: watch::Receiver<Progress>,
    head: Arc<Head>,
}

impl FillWatch {
    /// Waits until byte `pos` is on disk in the current attempt; returns that attempt's file and
    /// how many of its bytes may be read. While the core fails over, it waits for the next
    /// attempt to pass `pos`. Errors if the fill was given up or the next source has another
    /// version.
    pub async fn wait_for(&mut self, pos: u64) -> io::Result<(Arc<File>, u64)> {
        let broken = |why: &str| io::Error::new(io::ErrorKind::BrokenPipe, why.to_string());
        loop {
            {
                let p = self.rx.borrow_and_update();
                let same = |head: &Head| head.size == self.head.size && head.etag == self.head.etag;
                match &p.state {
                    State::Receiving { head, .. } | State::Complete { head, .. } if !same(head) => {
                        return Err(broken("the next source holds another version"));
                    }
                    // Only verified blocks are read; the last byte is held back until the whole
                    // object is verified too, so no complete body ever has a wrong checksum.
                    State::Receiving { verified, head, file } if (*verified).min(head.size - 1) > pos => {
                        return Ok((file.clone(), (*verified).min(head.size - 1)));
                    }
                    State::Complete { meta, file, .. } => return Ok((file.clone(), meta.size)),
                    State::Abandoned => return Err(broken("every source failed")),
                    State::Receiving { .. } | State::Connecting | State::Failed => {}
                }
            }
            self.rx.changed().await.map_err(|_| broken("the fill went away"))?;
        }
    }
}
