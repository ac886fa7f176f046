//! A fill: the bytes of one core fetch arriving into a temporary file, watched by everyone who
//! streams from it. Each retry (the core's failover to the next source) is a new attempt with a
//! new file. A reader follows the fill across attempts, as the core's `Stream` contract says:
//! it resumes at the byte it reached once the next attempt has passed it, provided that attempt
//! carries the same version (size and ETag); otherwise, or when the core gives the fill up, the
//! reader gets an error and its response is aborted, never another version's bytes.

use crate::assembly::Assembly;
use crate::store::ObjectMeta;
use reef_core::{FetchId, ObjectName, Source};
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Weak};
use tokio::sync::Notify;
use tokio::sync::watch;

/// The response head of an attempt: what a client streaming from it is told up front.
#[derive(Debug, Clone)]
pub struct Head {
    pub size: u64,
    pub etag: String,
    pub last_modified: Option<u64>,
    pub source: Source,
    /// The source's `Cache-Status` (when it is a cache): the path the bytes took before here.
    pub upstream_status: Option<String>,
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
    /// The core has taken the fill's end in (its `Commit` or `Discard`): only then does a
    /// reader get the last byte, so a client that has the whole object and asks again finds
    /// the core already knowing the object is here, as the simulator's clients do.
    pub settled: bool,
}

#[derive(Debug)]
pub struct Fill {
    pub fetch: FetchId,
    pub name: ObjectName,
    progress: watch::Sender<Progress>,
    /// Passing through (too big to keep): at most this many bytes are held ahead of the
    /// slowest reader; 0 when the fill is kept whole.
    pass_window: AtomicU64,
    /// Where each reader is (the next byte it wants), and a wake-up when one moves on.
    readers: Mutex<Vec<Weak<AtomicU64>>>,
    moved: Notify,
    /// For a fill passing through: bytes of the current attempt's file already freed.
    freed: AtomicU64,
    /// Where the lead attempt stops once the core has split the fill (`u64::MAX`: not split).
    lead_end: AtomicU64,
    /// The current attempt's file as its parts share it (attempts checked against a block list).
    assembly: Mutex<Option<Arc<Assembly>>>,
}

impl Fill {
    pub fn new(fetch: FetchId, name: ObjectName) -> Fill {
        Fill {
            fetch,
            name,
            progress: watch::Sender::new(Progress { attempt: 0, state: State::Connecting, settled: false }),
            pass_window: AtomicU64::new(0),
            readers: Mutex::new(Vec::new()),
            moved: Notify::new(),
            freed: AtomicU64::new(0),
            lead_end: AtomicU64::new(u64::MAX),
            assembly: Mutex::new(None),
        }
    }

    /// The attempt's file, shareable by the parts of a split (replaces an earlier attempt's).
    pub fn offer(&self, assembly: Arc<Assembly>) {
        *self.assembly.lock().expect("assembly") = Some(assembly);
    }

    pub fn assembly(&self) -> Option<Arc<Assembly>> {
        self.assembly.lock().expect("assembly").clone()
    }

    /// The core split the fill: the lead attempt stops at `lead_end`.
    pub fn split(&self, lead_end: u64) {
        self.lead_end.store(lead_end, Ordering::Release);
    }

    /// Where the lead attempt stops (`None`: the fill is not split).
    pub fn lead_end(&self) -> Option<u64> {
        Some(self.lead_end.load(Ordering::Acquire)).filter(|&e| e != u64::MAX)
    }

    /// Starts attempt number `attempt` (a new source).
    pub fn begin(&self, attempt: u32) {
        self.freed.store(0, Ordering::Release);
        self.progress.send_replace(Progress { attempt, state: State::Connecting, settled: false });
    }

    /// The core's `PassThrough`: hold at most `window` bytes ahead of the slowest reader.
    pub fn pass_through(&self, window: u64) {
        self.pass_window.store(window.max(1), Ordering::Relaxed);
    }

    /// The window of a fill passing through, if it is one.
    pub fn passing(&self) -> Option<u64> {
        Some(self.pass_window.load(Ordering::Relaxed)).filter(|&w| w > 0)
    }

    /// The writer of a fill passing through freed the current file's bytes below `n`.
    pub fn set_freed(&self, n: u64) {
        self.freed.store(n, Ordering::Release);
    }

    /// A new reader, at byte 0 (registered when the core answers it, so the writer of a fill
    /// passing through never lets go of bytes it has not read).
    pub fn new_reader(&self) -> Reader {
        let pos = Arc::new(AtomicU64::new(0));
        self.readers.lock().expect("readers").push(Arc::downgrade(&pos));
        Reader(pos)
    }

    /// The position of the slowest live reader (`None` without readers).
    pub fn slowest_reader(&self) -> Option<u64> {
        let mut readers = self.readers.lock().expect("readers");
        readers.retain(|r| r.strong_count() > 0);
        readers.iter().filter_map(Weak::upgrade).map(|p| p.load(Ordering::Relaxed)).min()
    }

    /// Waits until a reader moves on (or a while, so readers that went away are noticed).
    pub async fn reader_moved(&self) {
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), self.moved.notified()).await;
    }

    /// No attempt follows: readers still waiting give up.
    /// The core has handled the fill's end (see `Progress::settled`).
    pub fn settle(&self) {
        self.progress.send_modify(|p| p.settled = true);
    }

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

    /// Waits until an attempt has a response head (or completed); returns a watch for
    /// `reader` that follows the fill from that head's version on. `None` if the fill was
    /// given up.
    pub async fn head(self: &Arc<Self>, reader: Reader) -> Option<(Arc<Head>, Arc<File>, FillWatch)> {
        let mut rx = self.progress.subscribe();
        loop {
            {
                let p = rx.borrow_and_update();
                match &p.state {
                    State::Receiving { head, file, .. } | State::Complete { head, file, .. } => {
                        let (head, file) = (head.clone(), file.clone());
                        drop(p);
                        let fill = self.clone();
                        return Some((head.clone(), file, FillWatch { rx, head, reader, fill, floor: u64::MAX }));
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
                    State::Complete { file, meta, .. } if p.settled => return Some((file.clone(), meta.clone())),
                    State::Abandoned => return None,
                    _ => {}
                }
            }
            rx.changed().await.ok()?;
        }
    }
}

/// Where one reader of a fill is; dropping it ends the reader.
#[derive(Debug)]
pub struct Reader(Arc<AtomicU64>);

/// A reader's view of a fill: bound to one version of the object, across attempts.
#[derive(Debug)]
pub struct FillWatch {
    rx: watch::Receiver<Progress>,
    head: Arc<Head>,
    reader: Reader,
    fill: Arc<Fill>,
    /// The lowest byte this reader will still ask for (later parts of a multi-range body).
    floor: u64,
}

impl FillWatch {
    /// Waits until byte `pos` is on disk in the current attempt; returns that attempt's file and
    /// how many of its bytes may be read. While the core fails over, it waits for the next
    /// attempt to pass `pos`. Errors if the fill was given up or the next source has another
    /// version.
    /// Whether the fill passes through (too big to keep): read it front to back.
    pub fn passing(&self) -> bool {
        self.fill.passing().is_some()
    }

    /// Checks that bytes from `pos` on were not freed (by a fill passing through) before or
    /// while they were read: a reader never sends a freed (zeroed) byte; it aborts instead.
    pub fn still_readable(&self, pos: u64) -> io::Result<()> {
        if self.fill.freed.load(Ordering::Acquire) > pos {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "bytes freed before they were read"));
        }
        Ok(())
    }

    /// The reader will ask for no byte below `floor` from now on.
    pub fn keep_from(&mut self, floor: u64) {
        self.floor = floor;
    }

    pub async fn wait_for(&mut self, pos: u64) -> io::Result<(Arc<File>, u64)> {
        let broken = |why: &str| io::Error::new(io::ErrorKind::BrokenPipe, why.to_string());
        // Everything before this is done with: a fill passing through may let go of it.
        self.reader.0.store(pos.min(self.floor), Ordering::Relaxed);
        self.fill.moved.notify_waiters();
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
                    State::Receiving { verified, head, file } if (*verified).min(head.size.saturating_sub(1)) > pos => {
                        return Ok((file.clone(), (*verified).min(head.size.saturating_sub(1))));
                    }
                    State::Complete { meta, file, .. } if p.settled => return Ok((file.clone(), meta.size)),
                    // Complete, but the core has not taken it in yet: all but the last byte.
                    State::Complete { meta, file, .. } if meta.size.saturating_sub(1) > pos => {
                        return Ok((file.clone(), meta.size - 1));
                    }
                    State::Complete { .. } => {}
                    State::Abandoned => return Err(broken("every source failed")),
                    State::Receiving { .. } | State::Connecting | State::Failed => {}
                }
            }
            self.rx.changed().await.map_err(|_| broken("the fill went away"))?;
        }
    }
}
