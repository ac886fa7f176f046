//! Uploads into an origin's export (`PUT /<namespace>/<path>`).
//!
//! Every refusal (401/403 from the core's access decision, 409, 411, 413, 507) is answered
//! before the body is read, so a client that sent `Expect: 100-continue` never sends it. The
//! body is written to a staging file under `<export>/.reef-uploads/`, hashed as it arrives,
//! checked against the client's `Repr-Digest`/`Digest`, fsynced, and published by one rename
//! into place (then the directory is fsynced): a reader sees the whole object or nothing.
//! Objects are write-once (the rename refuses to replace) unless the namespace allows
//! replacement; a replacement is a new file, hence a new ETag.
//!
//! Resuming (`Content-Range` on PUT): an upload that states its checksum keeps its staging
//! file when the body breaks off. `PUT` with `Content-Range: bytes */<total>` and no body asks
//! how far it got (`204` with `Upload-Offset`); `PUT` with `Content-Range: bytes
//! <offset>-<last>/<total>` sends the rest. The staging file is keyed by the object's name,
//! its total size and its stated checksum, so pieces of two different files never mix.

use crate::http::body::Body;
use crate::http::digest::{Expected, Hasher};
use crate::http::object_path::{self, ObjectPath};
use crate::origin::{Exported, OriginError};
use crate::server::{App, Peer, text_response};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, HeaderValue, LOCATION, RETRY_AFTER};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use reef_core::RequestKind;
use reef_core::access::Operation;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The staging directory inside each export (never served, never listed).
pub const STAGING: &str = ".reef-uploads";
/// How far a resumable upload got (the IETF resumable-uploads draft's header name).
pub const UPLOAD_OFFSET: &str = "upload-offset";

/// The origin's unfinished uploads: which are being written now, and the checksum state of
/// those that broke off (so that a resume on the same process does not read the staged bytes
/// again; after a restart they are read once).
#[derive(Debug, Default)]
pub struct Uploads {
    slots: Mutex<HashMap<[u8; 32], Slot>>,
    last_sweep: Mutex<Option<Instant>>,
}

#[derive(Debug)]
enum Slot {
    Busy,
    Paused { offset: u64, hasher: Hasher },
}

/// What a `PUT` sends, from its `Content-Length` and `Content-Range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// The whole object (no `Content-Range`).
    Whole { total: u64 },
    /// `bytes */<total>`, no body: how far did the upload get?
    Probe { total: u64 },
    /// `bytes <start>-<end>/<total>`.
    Range { start: u64, end: u64, total: u64 },
}

impl Piece {
    pub fn parse(headers: &HeaderMap) -> Result<Piece, (StatusCode, String)> {
        if headers.contains_key(http::header::TRANSFER_ENCODING) {
            return Err((StatusCode::LENGTH_REQUIRED, "uploads need Content-Length, not a chunked body".into()));
        }
        let length = match headers.get(CONTENT_LENGTH).map(|v| v.to_str().ok().and_then(|s| s.parse::<u64>().ok())) {
            None => return Err((StatusCode::LENGTH_REQUIRED, "uploads need Content-Length".into())),
            Some(None) => return Err((StatusCode::BAD_REQUEST, "Content-Length is not a number".into())),
            Some(Some(n)) => n,
        };
        let Some(range) = headers.get(CONTENT_RANGE) else {
            return Ok(Piece::Whole { total: length });
        };
        let bad = || {
            (
                StatusCode::BAD_REQUEST,
                "Content-Range: expected `bytes <first>-<last>/<total>` or `bytes */<total>`".to_string(),
            )
        };
        let text = range.to_str().map_err(|_| bad())?.trim();
        let (span, total) = text.strip_prefix("bytes ").and_then(|r| r.split_once('/')).ok_or_else(bad)?;
        let total: u64 = total.trim().parse().map_err(|_| bad())?;
        if span.trim() == "*" {
            return match length {
                0 => Ok(Piece::Probe { total }),
                _ => Err((
                    StatusCode::BAD_REQUEST,
                    "Content-Range `bytes */<total>` asks for the offset: no body".into(),
                )),
            };
        }
        let (start, end) = span.split_once('-').ok_or_else(bad)?;
        let (start, end): (u64, u64) =
            (start.trim().parse().map_err(|_| bad())?, end.trim().parse().map_err(|_| bad())?);
        if start > end || end >= total {
            return Err((StatusCode::BAD_REQUEST, format!("Content-Range: bytes {start}-{end} do not fit in {total}")));
        }
        if end - start + 1 != length {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("Content-Range names {} bytes, Content-Length {length}", end - start + 1),
            ));
        }
        Ok(Piece::Range { start, end, total })
    }

    fn total(self) -> u64 {
        match self {
            Piece::Whole { total } | Piece::Probe { total } | Piece::Range { total, .. } => total,
        }
    }
}

/// A short answer; `offset` adds `Upload-Offset`.
fn answer(status: StatusCode, reason: &str, offset: Option<u64>) -> Response<Body> {
    let mut resp = match status {
        // A 204 has no body (HTTP/2 calls one a protocol error).
        StatusCode::NO_CONTENT => {
            let mut resp = Response::new(crate::http::body::empty());
            *resp.status_mut() = status;
            resp
        }
        _ => text_response(status, reason),
    };
    if let Some(o) = offset {
        resp.headers_mut().insert(UPLOAD_OFFSET, HeaderValue::from(o));
    }
    resp
}

/// Where one upload stages its bytes, and its key among the slots.
struct Staged {
    key: [u8; 32],
    path: PathBuf,
}

fn staged(root: &Path, namespace: &str, name: &str, total: u64, expected: &Expected) -> Staged {
    let mut h = blake3::Hasher::new();
    for part in [namespace, name, &total.to_string(), &expected.canonical()] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    let key = *h.finalize().as_bytes();
    let hex: String = key[..16].iter().map(|b| format!("{b:02x}")).collect();
    Staged { key, path: root.join(STAGING).join(format!("{hex}.part")) }
}

/// Marks a slot busy for one request; on drop (done, failed or cancelled) the slot keeps
/// the state set with `pause`, or is freed.
struct Claim<'a> {
    uploads: &'a Uploads,
    key: [u8; 32],
    paused: Option<(u64, Hasher)>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut slots = self.uploads.slots.lock().unwrap_or_else(|e| e.into_inner());
        match self.paused.take() {
            Some((offset, hasher)) => slots.insert(self.key, Slot::Paused { offset, hasher }),
            None => slots.remove(&self.key),
        };
    }
}

impl Uploads {
    /// Claims the upload's slot, with the checksum state of its first `offset` bytes if this
    /// process has it. `None` while another request writes the same upload.
    fn claim(&self, key: [u8; 32], offset: u64) -> Option<(Claim<'_>, Option<Hasher>)> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let hasher = match slots.insert(key, Slot::Busy) {
            Some(Slot::Busy) => return None,
            Some(Slot::Paused { offset: at, hasher }) if at == offset => Some(hasher),
            _ => None,
        };
        Some((Claim { uploads: self, key, paused: None }, hasher))
    }

    /// Removes staged uploads untouched for `expiry`, at most once an hour.
    fn sweep(&self, root: &Path, expiry: Duration) {
        {
            let mut last = self.last_sweep.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(3600)) {
                return;
            }
            *last = Some(Instant::now());
        }
        let Ok(entries) = std::fs::read_dir(root.join(STAGING)) else { return };
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| SystemTime::now().duration_since(t).is_ok_and(|age| age > expiry));
            if old && std::fs::remove_file(entry.path()).is_ok() {
                tracing::info!(file = %entry.path().display(), "removed an abandoned upload");
            }
        }
    }
}

impl App {
    /// `PUT`: see the module documentation.
    pub(crate) async fn on_upload(self: Arc<Self>, req: Request<Incoming>, peer: Peer) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let started = Instant::now();
        let (status, outcome, bytes, resp) = self.upload(&parts, body, peer).await;
        self.metrics.add("reef_uploads_total", &[("outcome", outcome)], 1.0);
        self.metrics.add("reef_upload_bytes_total", &[], bytes as f64);
        if let Some(log) = &self.log {
            log.write(&crate::access_log::Record {
                time: SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
                client: peer.address.to_string(),
                site: None,
                method: "PUT".into(),
                object: parts.uri.path().chars().take(1024).collect(),
                object_id: None,
                range: parts
                    .headers
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .map(|s| s.chars().take(256).collect()),
                bytes,
                size: None,
                status: status.as_u16(),
                outcome: outcome.into(),
                source: "-".into(),
                duration_ms: started.elapsed().as_secs_f64() * 1e3,
                complete: status.is_success(),
            });
        }
        resp
    }

    /// The upload itself: (status, outcome for metrics and the log, body bytes received, answer).
    async fn upload(
        &self,
        parts: &http::request::Parts,
        body: Incoming,
        peer: Peer,
    ) -> (StatusCode, &'static str, u64, Response<Body>) {
        let refuse = |status: StatusCode, outcome: &'static str, reason: &str| {
            (status, outcome, 0, answer(status, reason, None))
        };
        let Some(exports) = &self.exports else {
            let mut resp = answer(StatusCode::METHOD_NOT_ALLOWED, "uploads go to an origin of the namespace", None);
            resp.headers_mut().insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return (StatusCode::METHOD_NOT_ALLOWED, "refused", 0, resp);
        };
        let path = match object_path::parse(parts.uri.path()) {
            Ok(p) => p,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, "bad_request", &e.to_string()),
        };
        let Some(ns) = self.config.namespace(&path.namespace) else {
            return refuse(StatusCode::NOT_FOUND, "not_found", "no such namespace");
        };
        let Some(root) = exports.root(ns) else {
            return refuse(StatusCode::NOT_FOUND, "not_found", "this origin does not export the namespace");
        };
        if path.segments[0] == STAGING {
            return refuse(StatusCode::FORBIDDEN, "refused", "the staging directory is not writable");
        }
        match self.request_kind(&parts.headers, peer) {
            Ok(RequestKind::Client) => {}
            Ok(_) => return refuse(StatusCode::FORBIDDEN, "refused", "nodes do not upload"),
            Err((status, e)) => return refuse(status, "refused", e),
        }
        let rules = self.config.namespaces[usize::from(ns.0)].uploads;
        if let Err(denied) = self.authorise(&parts.headers, RequestKind::Client, ns, &path, Operation::Create).await {
            let status = StatusCode::from_u16(denied.denial.status()).unwrap_or(StatusCode::FORBIDDEN);
            return (status, "denied", 0, denied.response());
        }
        let piece = match Piece::parse(&parts.headers) {
            Ok(p) => p,
            Err((status, e)) => return refuse(status, "bad_request", &e),
        };
        let expected = match Expected::from_headers(&parts.headers) {
            Ok(e) => e,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, "bad_request", &e),
        };
        let resumes = !matches!(piece, Piece::Whole { .. });
        if resumes && expected.is_empty() {
            return refuse(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "a resumable upload states its checksum (Repr-Digest or Digest): pieces of two files must never mix",
            );
        }
        let total = piece.total();
        if total > rules.max_size {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                &format!("{total} bytes is more than this namespace accepts ({} bytes)", rules.max_size),
            );
        }
        // An existing object: the same bytes again is success without a body; otherwise a
        // replacement if the namespace allows it (and the token may modify), else a conflict.
        match self.existing(&path).await {
            Err(status) => return refuse(status, "refused", "the path names a directory or leaves the export"),
            Ok(None) => {}
            Ok(Some(have)) => {
                let same = match expected.is_empty() {
                    true => false,
                    false => match exports.digests(&have).await {
                        Ok(d) => expected.mismatch(&d).is_none(),
                        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "error", &format!("reading: {e}")),
                    },
                };
                if same {
                    let mut resp = answer(StatusCode::OK, "already there, with these bytes", None);
                    if let Ok(etag) = HeaderValue::from_str(&have.validators.etag) {
                        resp.headers_mut().insert(ETAG, etag);
                    }
                    return (StatusCode::OK, "exists_same", 0, resp);
                }
                if !rules.replace {
                    return refuse(
                        StatusCode::CONFLICT,
                        "conflict",
                        "the object exists and this namespace is write-once",
                    );
                }
                let modify = self.authorise(&parts.headers, RequestKind::Client, ns, &path, Operation::Modify).await;
                if let Err(denied) = modify {
                    let status = StatusCode::from_u16(denied.denial.status()).unwrap_or(StatusCode::FORBIDDEN);
                    return (status, "denied", 0, denied.response());
                }
            }
        }
        exports.uploads.sweep(root, self.config.upload_expiry);
        let stage = staged(root, &path.namespace, &path.name(), total, &expected);
        let offset = std::fs::metadata(&stage.path).map_or(0, |m| m.len()).min(total);
        let Some((mut claim, hasher)) = exports.uploads.claim(stage.key, offset) else {
            let mut resp = answer(StatusCode::CONFLICT, "this upload is being written by another request", None);
            resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("5"));
            return (StatusCode::CONFLICT, "busy", 0, resp);
        };
        let start = match piece {
            Piece::Probe { .. } => {
                return (StatusCode::NO_CONTENT, "probe", 0, answer(StatusCode::NO_CONTENT, "", Some(offset)));
            }
            Piece::Range { start, .. } if start != offset => {
                let reason = format!("this upload has reached byte {offset}, not {start}");
                return (
                    StatusCode::CONFLICT,
                    "offset_mismatch",
                    0,
                    answer(StatusCode::CONFLICT, &reason, Some(offset)),
                );
            }
            Piece::Range { start, .. } => start,
            Piece::Whole { .. } => 0,
        };
        let room = rustix::fs::statvfs(root).map_or(u64::MAX, |fs| fs.f_bavail.saturating_mul(fs.f_frsize));
        if room < total - start {
            let reason = format!("the origin's disk has {room} bytes free, the upload needs {}", total - start);
            return (
                StatusCode::INSUFFICIENT_STORAGE,
                "no_room",
                0,
                answer(StatusCode::INSUFFICIENT_STORAGE, &reason, None),
            );
        }
        let file = match open_staging(&stage.path, start) {
            Ok(f) => Arc::new(f),
            Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "error", &format!("staging: {e}")),
        };
        // The kept checksum state is the staged bytes' (a whole upload starts again at 0).
        let hasher = match hasher.filter(|_| start == offset) {
            Some(h) => h,
            None => match rehash(file.clone(), start).await {
                Ok(h) => h,
                Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "error", &format!("staging: {e}")),
            },
        };
        let received = receive(body, file.clone(), start, hasher).await;
        let (reached, hasher) = (received.reached, received.hasher);
        let bytes = reached - start;
        if let Some(e) = received.write_error {
            let (status, outcome) = match e.kind() {
                io::ErrorKind::StorageFull => (StatusCode::INSUFFICIENT_STORAGE, "no_room"),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "error"),
            };
            tracing::warn!(object = %parts.uri.path(), error = %e, "an upload could not be written");
            let _ = file.set_len(reached).and_then(|()| file.sync_data());
            claim.paused = Some((reached, hasher));
            return (status, outcome, bytes, answer(status, &format!("writing the upload: {e}"), Some(reached)));
        }
        if reached < total {
            // A piece that ended (as sent, or broken off): kept if it can be resumed.
            let broken = received.body_error.is_some() || matches!(piece, Piece::Whole { .. });
            if expected.is_empty() {
                let _ = std::fs::remove_file(&stage.path);
                return (
                    StatusCode::BAD_REQUEST,
                    "broken",
                    bytes,
                    answer(StatusCode::BAD_REQUEST, "the body broke off", None),
                );
            }
            let _ = file.sync_data();
            claim.paused = Some((reached, hasher));
            if broken {
                let reason = format!("the body broke off at byte {reached}");
                return (
                    StatusCode::BAD_REQUEST,
                    "broken",
                    bytes,
                    answer(StatusCode::BAD_REQUEST, &reason, Some(reached)),
                );
            }
            return (StatusCode::NO_CONTENT, "partial", bytes, answer(StatusCode::NO_CONTENT, "", Some(reached)));
        }
        let digests = hasher.finish();
        if let Some(why) = expected.mismatch(&digests) {
            let _ = std::fs::remove_file(&stage.path);
            let reason = format!("checksum mismatch, nothing published: {why}");
            return (StatusCode::BAD_REQUEST, "mismatch", bytes, answer(StatusCode::BAD_REQUEST, &reason, None));
        }
        let target = root.join(path.segments.join("/"));
        let (staging, root_owned) = (stage.path.clone(), root.to_path_buf());
        let published =
            tokio::task::spawn_blocking(move || publish(&root_owned, &staging, &target, rules.replace)).await;
        match published.unwrap_or_else(|e| Err(io::Error::other(e))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_file(&stage.path);
                return refuse(StatusCode::CONFLICT, "conflict", "the object was created by another upload meanwhile");
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return refuse(StatusCode::FORBIDDEN, "refused", "the path leaves the export");
            }
            Err(e) => {
                tracing::warn!(object = %parts.uri.path(), error = %e, "an upload could not be published");
                let _ = std::fs::remove_file(&stage.path);
                return refuse(StatusCode::INTERNAL_SERVER_ERROR, "error", &format!("publishing: {e}"));
            }
        }
        tracing::info!(object = %parts.uri.path(), size = total, "upload published");
        let mut resp = answer(StatusCode::CREATED, "created", None);
        let h = resp.headers_mut();
        if let Ok(Some(published)) = self.existing(&path).await {
            exports.remember_digests(&published, digests.clone());
            if let Ok(etag) = HeaderValue::from_str(&published.validators.etag) {
                h.insert(ETAG, etag);
            }
        }
        if let Ok(v) = HeaderValue::from_str(parts.uri.path()) {
            h.insert(LOCATION, v);
        }
        if let Ok(v) = HeaderValue::from_str(&Expected::repr_digest(&digests)) {
            h.insert("repr-digest", v);
        }
        (StatusCode::CREATED, "created", bytes, resp)
    }

    /// The object at `path` if it exists; `Err` if the path names a directory or leaves the
    /// export.
    async fn existing(&self, path: &ObjectPath) -> Result<Option<Exported>, StatusCode> {
        let exports = self.exports.as_ref().ok_or(StatusCode::NOT_FOUND)?;
        let ns = self.config.namespace(&path.namespace).ok_or(StatusCode::NOT_FOUND)?;
        let root = exports.root(ns).ok_or(StatusCode::NOT_FOUND)?;
        if root.join(path.segments.join("/")).is_dir() {
            return Err(StatusCode::CONFLICT);
        }
        match exports.open(ns, &path.segments).await {
            Ok(file) => Ok(Some(file)),
            Err(OriginError::NotFound) => Ok(None),
            Err(OriginError::Forbidden) => Err(StatusCode::FORBIDDEN),
            Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

/// Opens (creating) the staging file, cut to `start` bytes (a whole upload starts again).
fn open_staging(path: &Path, start: u64) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
    file.set_len(start)?;
    Ok(file)
}

/// The checksum state of the first `upto` bytes of a staged upload (after a restart).
async fn rehash(file: Arc<File>, upto: u64) -> io::Result<Hasher> {
    tokio::task::spawn_blocking(move || {
        let mut hasher = Hasher::default();
        let mut buf = vec![0; 1 << 20];
        let mut at = 0;
        while at < upto {
            let n = (upto - at).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..n], at)?;
            hasher.update(&buf[..n]);
            at += n as u64;
        }
        Ok(hasher)
    })
    .await
    .map_err(io::Error::other)?
}

struct Received {
    reached: u64,
    hasher: Hasher,
    body_error: Option<hyper::Error>,
    write_error: Option<io::Error>,
}

/// Streams the body into the staging file from `start`, hashing on the blocking pool.
async fn receive(mut body: Incoming, file: Arc<File>, start: u64, mut hasher: Hasher) -> Received {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let writer = tokio::task::spawn_blocking(move || {
        let mut at = start;
        while let Some(chunk) = rx.blocking_recv() {
            if let Err(e) = file.write_all_at(&chunk, at) {
                return (at, hasher, Some(e));
            }
            hasher.update(&chunk);
            at += chunk.len() as u64;
        }
        (at, hasher, None)
    });
    let mut body_error = None;
    loop {
        match body.frame().await {
            None => break,
            Some(Err(e)) => {
                body_error = Some(e);
                break;
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && tx.send(data).await.is_err()
                {
                    break; // the writer failed: its error is the answer
                }
            }
        }
    }
    drop(tx);
    match writer.await {
        Ok((reached, hasher, write_error)) => Received { reached, hasher, body_error, write_error },
        Err(e) => {
            Received { reached: start, hasher: Hasher::default(), body_error, write_error: Some(io::Error::other(e)) }
        }
    }
}

/// Makes the staged file `target`: fsync it, create the parent directories (inside `root`
/// only), rename (refusing to replace unless `replace`), fsync the directories changed.
fn publish(root: &Path, staging: &Path, target: &Path, replace: bool) -> io::Result<()> {
    File::open(staging)?.sync_all()?;
    let parent = target.parent().ok_or_else(|| io::Error::other("no parent directory"))?;
    let mut created = Vec::new();
    let mut dir = parent;
    while !dir.exists() && dir.starts_with(root) {
        created.push(dir.to_path_buf());
        dir = dir.parent().unwrap_or(root);
    }
    std::fs::create_dir_all(parent)?;
    // A symlinked directory on the way must not lead out of the export.
    if !std::fs::canonicalize(parent)?.starts_with(root) {
        return Err(io::Error::from(io::ErrorKind::PermissionDenied));
    }
    let flags = if replace { rustix::fs::RenameFlags::empty() } else { rustix::fs::RenameFlags::NOREPLACE };
    rustix::fs::renameat_with(rustix::fs::CWD, staging, rustix::fs::CWD, target, flags).map_err(io::Error::from)?;
    File::open(parent)?.sync_all()?;
    for dir in created {
        if let Some(up) = dir.parent() {
            File::open(up)?.sync_all()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn content_range_names_the_piece() {
        assert_eq!(Piece::parse(&headers(&[("content-length", "10")])), Ok(Piece::Whole { total: 10 }));
        let probe = headers(&[("content-length", "0"), ("content-range", "bytes */100")]);
        assert_eq!(Piece::parse(&probe), Ok(Piece::Probe { total: 100 }));
        let rest = headers(&[("content-length", "60"), ("content-range", "bytes 40-99/100")]);
        assert_eq!(Piece::parse(&rest), Ok(Piece::Range { start: 40, end: 99, total: 100 }));
        for (len, range, status) in [
            ("59", "bytes 40-99/100", 400),
            ("60", "bytes 40-100/100", 400),
            ("1", "bytes */100", 400),
            ("10", "bytes 9-0/100", 400),
            ("10", "items 0-9/10", 400),
            ("x", "bytes 0-9/10", 400),
        ] {
            let got = Piece::parse(&headers(&[("content-length", len), ("content-range", range)]));
            assert_eq!(got.map_err(|e| e.0.as_u16()), Err(status), "{len} {range}");
        }
        assert_eq!(Piece::parse(&HeaderMap::new()).map_err(|e| e.0.as_u16()), Err(411));
        let chunked = headers(&[("transfer-encoding", "chunked")]);
        assert_eq!(Piece::parse(&chunked).map_err(|e| e.0.as_u16()), Err(411));
    }

    #[test]
    fn a_staging_file_belongs_to_one_name_size_and_checksum() {
        let root = Path::new("/export");
        let sha = Expected { adler32: None, sha256: Some("x".into()) };
        let a = staged(root, "atlas", "f", 10, &sha);
        assert_eq!(a.key, staged(root, "atlas", "f", 10, &sha).key);
        assert!(a.path.starts_with("/export/.reef-uploads"));
        for other in [
            staged(root, "atlas", "g", 10, &sha),
            staged(root, "atlas", "f", 11, &sha),
            staged(root, "atlas", "f", 10, &Expected::default()),
            staged(root, "cms", "f", 10, &sha),
        ] {
            assert_ne!(a.key, other.key);
            assert_ne!(a.path, other.path);
        }
    }

    #[test]
    fn a_claimed_upload_is_busy_until_released_and_keeps_its_checksum_state() {
        let uploads = Uploads::default();
        let pause = |claim: &mut Claim<'_>| {
            let mut h = Hasher::default();
            h.update(b"abc");
            claim.paused = Some((3, h));
        };
        let (mut claim, hasher) = uploads.claim([1; 32], 0).unwrap();
        assert!(hasher.is_none());
        assert!(uploads.claim([1; 32], 0).is_none(), "a second writer is refused");
        pause(&mut claim);
        drop(claim);
        let (mut claim, kept) = uploads.claim([1; 32], 3).unwrap();
        let mut abc = Hasher::default();
        abc.update(b"abc");
        assert_eq!(kept.map(Hasher::finish), Some(abc.finish()), "the state at the offset reached");
        pause(&mut claim);
        drop(claim);
        assert!(uploads.claim([1; 32], 2).unwrap().1.is_none(), "state at another offset is not used");
        assert!(uploads.claim([1; 32], 3).unwrap().1.is_none(), "freed when dropped without pausing");
    }
}
