//! Response bodies: small ones in memory, large ones streamed from a file (complete, or still
//! being filled) through a bounded channel, so memory stays flat whatever the object's size.

use crate::blocks::BlockList;
use crate::fill::FillWatch;
use crate::http::pacing::{self, Pacer};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

pub type Body = http_body_util::combinators::BoxBody<Bytes, io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// Bytes read from the file per chunk: large enough for throughput, small enough for memory.
const CHUNK: u64 = 256 * 1024;
/// Bodies up to this size are read at once instead of streamed.
const INLINE: u64 = 64 * 1024;

/// One piece of a response body.
#[derive(Debug, Clone)]
pub enum Part {
    Literal(Bytes),
    /// Bytes `first..=last` of the file.
    File {
        first: u64,
        last: u64,
    },
}

impl Part {
    fn len(&self) -> u64 {
        match self {
            Part::Literal(b) => b.len() as u64,
            Part::File { first, last } => last - first + 1,
        }
    }
}

/// Where a body's bytes are: a file, or (a small stored object's verified copy) memory.
#[derive(Debug, Clone)]
pub enum Data {
    File(Arc<File>),
    Memory(Bytes),
}

impl From<Arc<File>> for Data {
    fn from(file: Arc<File>) -> Data {
        Data::File(file)
    }
}

/// The bytes behind a body and how much of them can be read.
#[derive(Debug)]
pub struct Content {
    pub data: Data,
    /// `None` when complete; otherwise the fill to wait on (and read from: `data` is then the
    /// first attempt's file, and a failover moves on to the next attempt's).
    pub filling: Option<FillWatch>,
    /// A stored copy read from its file: every block sent is checked first.
    pub checked: Option<Checked>,
}

/// Called when a stored copy turns out corrupt.
pub type LostHook = Arc<dyn Fn() + Send + Sync>;

/// The block list a stored copy is checked against, and whom to tell when a block is bad.
#[derive(Clone)]
pub struct Checked {
    pub blocks: Arc<BlockList>,
    pub lost: LostHook,
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked").field("blocks", &self.blocks.hashes.len()).finish_non_exhaustive()
    }
}

/// Told how a response ended: its status, body bytes sent, and whether all were sent.
pub trait OnFinish: Send + 'static {
    fn finish(self: Box<Self>, status: u16, bytes: u64, complete: bool);
}

/// Builds the body for `parts` of `content`; `on_finish` runs once the last byte left (or the
/// body was abandoned or aborted).
pub fn from_parts(
    content: Content,
    parts: Vec<Part>,
    status: u16,
    mut pacer: Option<Pacer>,
    on_finish: Box<dyn OnFinish>,
) -> Body {
    let total: u64 = parts.iter().map(Part::len).sum();
    // Small bodies are read at once; a stored copy's only if it is one block (checked already).
    if total <= INLINE
        && pacer.is_none_or(|p| p.allows_now(total))
        && content.filling.is_none()
        && content.checked.as_ref().is_none_or(|c| c.blocks.hashes.len() <= 1)
        && let Ok(bytes) = read_parts_now(&content.data, &parts)
    {
        on_finish.finish(status, total, true);
        return full(bytes);
    }
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let (sent, complete) = produce(content, parts, &tx, &mut pacer).await;
        on_finish.finish(status, sent, complete);
    });
    ChannelBody { rx, remaining: total }.boxed()
}

fn read_parts_now(data: &Data, parts: &[Part]) -> io::Result<Bytes> {
    if let ([Part::File { first, last }], Data::Memory(bytes)) = (parts, data) {
        return Ok(bytes.slice(*first as usize..=*last as usize));
    }
    let mut out = Vec::new();
    for part in parts {
        match (part, data) {
            (Part::Literal(b), _) => out.extend_from_slice(b),
            (Part::File { first, last }, Data::Memory(bytes)) => {
                out.extend_from_slice(&bytes[*first as usize..=*last as usize]);
            }
            (Part::File { first, last }, Data::File(file)) => {
                let start = out.len();
                out.resize(start + (last - first + 1) as usize, 0);
                file.read_exact_at(&mut out[start..], *first)?;
            }
        }
    }
    Ok(out.into())
}

async fn produce(
    mut content: Content,
    parts: Vec<Part>,
    tx: &mpsc::Sender<io::Result<Bytes>>,
    pacer: &mut Option<Pacer>,
) -> (u64, bool) {
    let file = match &content.data {
        Data::File(file) => file.clone(),
        Data::Memory(bytes) => return produce_from_memory(bytes, parts, tx, pacer).await,
    };
    let mut sent = 0;
    // The lowest byte the parts after each one still need: a fill passing through must keep
    // it (ranges may come in any order); within a part, the reader's position counts.
    let mut later = vec![u64::MAX; parts.len()];
    for i in (0..parts.len().saturating_sub(1)).rev() {
        let next = if let Part::File { first, .. } = parts[i + 1] { first } else { u64::MAX };
        later[i] = later[i + 1].min(next);
    }
    for (i, part) in parts.into_iter().enumerate() {
        if let Some(fill) = &mut content.filling {
            fill.keep_from(later[i]);
        }
        match part {
            Part::Literal(b) => {
                let n = b.len() as u64;
                if !pacing::send(pacer, tx, b).await {
                    return (sent, false);
                }
                sent += n;
            }
            Part::File { first, last } if let Some(checked) = &content.checked => {
                let checked = checked.clone();
                match produce_checked(&file, &checked, (first, last), tx, pacer).await {
                    Ok(n) => sent += n,
                    Err((n, e)) => {
                        if e.kind() == io::ErrorKind::InvalidData || e.kind() == io::ErrorKind::UnexpectedEof {
                            tracing::error!(error = %e, "stored copy is corrupt: response aborted, object dropped");
                            (checked.lost)();
                        }
                        let _ = tx.send(Err(e)).await;
                        return (sent + n, false);
                    }
                }
            }
            Part::File { first, last } => {
                let mut pos = first;
                while pos <= last {
                    let (file, available) = match &mut content.filling {
                        None => (file.clone(), u64::MAX),
                        Some(fill) => match fill.wait_for(pos).await {
                            Ok(at) => at,
                            Err(e) => {
                                // Aborts the response: the client must never take a broken
                                // fill for the object.
                                let _ = tx.send(Err(e)).await;
                                return (sent, false);
                            }
                        },
                    };
                    let end = (last + 1).min(available).min(pos + CHUNK);
                    let read = tokio::task::spawn_blocking(move || {
                        let mut buf = vec![0; (end - pos) as usize];
                        file.read_exact_at(&mut buf, pos).map(|()| Bytes::from(buf))
                    })
                    .await
                    .unwrap_or_else(|e| Err(io::Error::other(e)));
                    // A fill passing through must not have freed what was just read.
                    let read = match (&content.filling, read) {
                        (Some(fill), Ok(bytes)) => fill.still_readable(pos).map(|()| bytes),
                        (_, read) => read,
                    };
                    match read {
                        Ok(bytes) => {
                            if !pacing::send(pacer, tx, bytes).await {
                                return (sent, false);
                            }
                            sent += end - pos;
                            pos = end;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return (sent, false);
                        }
                    }
                }
            }
        }
    }
    (sent, true)
}

/// Sends `parts` of a verified copy held in memory.
async fn produce_from_memory(
    bytes: &Bytes,
    parts: Vec<Part>,
    tx: &mpsc::Sender<io::Result<Bytes>>,
    pacer: &mut Option<Pacer>,
) -> (u64, bool) {
    let mut sent = 0;
    for part in parts {
        let pieces: Vec<Bytes> = match part {
            Part::Literal(b) => vec![b],
            Part::File { first, last } => (first..=last)
                .step_by(CHUNK as usize)
                .map(|pos| bytes.slice(pos as usize..=(pos + CHUNK - 1).min(last) as usize))
                .collect(),
        };
        for piece in pieces {
            let n = piece.len() as u64;
            if !pacing::send(pacer, tx, piece).await {
                return (sent, false);
            }
            sent += n;
        }
    }
    (sent, true)
}

/// Sends bytes `first..=last` of a stored copy, reading and checking each block they touch;
/// returns the bytes sent, or how many were sent before the error.
async fn produce_checked(
    file: &Arc<File>,
    checked: &Checked,
    (first, last): (u64, u64),
    tx: &mpsc::Sender<io::Result<Bytes>>,
    pacer: &mut Option<Pacer>,
) -> Result<u64, (u64, io::Error)> {
    let blocks = &checked.blocks;
    let mut sent = 0;
    for index in blocks.index_of(first)..=blocks.index_of(last) {
        let (file, list) = (file.clone(), blocks.clone());
        let block = tokio::task::spawn_blocking(move || list.read_checked(&file, index))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)))
            .map_err(|e| (sent, e))?;
        let (start, end) = blocks.span(index);
        let (a, b) = (first.max(start) - start, (last + 1).min(end) - start);
        let bytes = Bytes::from(block).slice(a as usize..b as usize);
        if !pacing::send(pacer, tx, bytes).await {
            return Err((sent, io::Error::new(io::ErrorKind::BrokenPipe, "client went away")));
        }
        sent += b - a;
    }
    Ok(sent)
}

/// A body fed by a producer task; its exact size is known up front (Content-Length).
#[derive(Debug)]
struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    remaining: u64,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                self.remaining = self.remaining.saturating_sub(bytes.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) if self.remaining > 0 => {
                Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "body ended early"))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
