//! `reef put`: upload one file into an origin, the way a careful user would over a bad link.
//! The file is hashed first (sha-256 and adler32, sent as `Repr-Digest`), so the origin can
//! refuse bytes that changed on the way and can keep a broken upload for resuming. Each
//! attempt first asks how far the upload got (`PUT` with `Content-Range: bytes */<size>`,
//! no body: any refusal comes before a byte is sent), then sends the rest from there. Transient
//! failures (no connection, a broken body, 5xx, 507, a busy upload) are retried with backoff;
//! refusals (401, 403, 409 on an existing object, 413, a checksum mismatch) end it.

use crate::client::hash_file;
use crate::http::body::{self, Body, Content, Data, OnFinish, Part};
use crate::http::digest::{Algorithm, Digests, Expected};
use crate::tls::connector::NodeConnector;
use crate::upload::UPLOAD_OFFSET;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, ETAG, RETRY_AFTER};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone)]
pub struct PutOptions {
    pub file: PathBuf,
    /// The object's URL on an origin (`https://origin:port/<namespace>/<path>`).
    pub url: String,
    /// Attempts before giving up (each refused or broken request is one).
    pub attempts: u32,
    /// A CA certificate (PEM) to trust besides the system's (a federation's own CA).
    pub ca: Option<PathBuf>,
    /// A bearer token with `storage.create` (and `storage.modify` to replace); HTTPS only.
    pub token: Option<String>,
}

/// What a completed upload looked like.
#[derive(Debug, Clone)]
pub struct PutReport {
    pub size: u64,
    pub digests: Digests,
    /// The published object's ETag.
    pub etag: Option<String>,
    /// The object already existed with these bytes: nothing was sent.
    pub already_there: bool,
    pub attempts: u32,
    /// The offsets later attempts resumed from (empty: sent in one go).
    pub resumed_from: Vec<u64>,
    /// Body bytes sent over all attempts.
    pub sent: u64,
    pub elapsed: Duration,
}

/// Why an upload gave up.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct PutError {
    pub message: String,
    /// Retrying will not help (a refusal, a checksum mismatch, a file that changed).
    pub permanent: bool,
    /// The last status the origin answered, if it answered.
    pub status: Option<u16>,
}

impl PutError {
    fn permanent(message: String, status: Option<u16>) -> PutError {
        PutError { message, permanent: true, status }
    }
}

/// Body bytes sent so far, for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes of the file hashed before sending.
    pub hashed: AtomicU64,
    /// Bytes the origin holds or was sent: the resume offset plus what this attempt sent.
    pub at: AtomicU64,
}

/// How long to wait before attempt `attempt` (1 for the first retry): doubling from 500 ms,
/// at most 30 s, or what the origin's `Retry-After` asks if that is longer.
pub fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let doubling = Duration::from_millis(500u64.saturating_mul(1 << attempt.saturating_sub(1).min(6)));
    doubling.min(Duration::from_secs(30)).max(retry_after.unwrap_or_default())
}

enum Step {
    Done {
        etag: Option<String>,
        already_there: bool,
    },
    /// The origin holds `offset` bytes: send from there.
    Resume(u64),
    Retry(String, Option<Duration>, Option<u16>),
}

type UploadClient = Client<NodeConnector, Body>;

pub async fn put(opts: &PutOptions, progress: Arc<Progress>) -> Result<PutReport, PutError> {
    let local = |e: std::io::Error| PutError::permanent(format!("{}: {e}", opts.file.display()), None);
    let tls = crate::tls::client_trusting(opts.ca.as_deref()).map_err(|e| PutError::permanent(e.to_string(), None))?;
    let client: UploadClient = Client::builder(TokioExecutor::new()).build(NodeConnector::new(tls, []));
    let before = stamp(&opts.file).map_err(local)?;
    let (file, size) = (opts.file.clone(), before.0);
    let shown = progress.clone();
    let digests = tokio::task::spawn_blocking(move || hash_file(&file, &shown.hashed))
        .await
        .map_err(|e| local(std::io::Error::other(e)))?
        .map_err(local)?;
    let upload = Upload { client: &client, opts, size, digests: &digests, progress: progress.clone() };
    let started = Instant::now();
    let (mut resumed_from, mut sent, mut last) = (Vec::new(), 0, String::new());
    let mut last_status = None;
    for attempt in 0..opts.attempts.max(1) {
        if stamp(&opts.file).map_err(local)? != before {
            return Err(PutError::permanent(format!("{} changed while it was uploaded", opts.file.display()), None));
        }
        let step = match upload.probe().await {
            Ok(Step::Resume(offset)) => {
                if attempt > 0 {
                    resumed_from.push(offset);
                }
                upload.send(offset, &mut sent).await
            }
            other => other,
        };
        match step {
            Ok(Step::Done { etag, already_there }) => {
                let attempts = attempt + 1;
                let elapsed = started.elapsed();
                return Ok(PutReport { size, digests, etag, already_there, attempts, resumed_from, sent, elapsed });
            }
            Ok(Step::Resume(_)) => last = "the origin kept only part of the body".into(),
            Ok(Step::Retry(why, wait, status)) => {
                last_status = status.or(last_status);
                tracing::warn!(url = %opts.url, error = %why, "upload attempt failed; retrying");
                if attempt + 1 < opts.attempts {
                    tokio::time::sleep(backoff(attempt + 1, wait)).await;
                }
                last = why;
            }
            Err(e) => return Err(e),
        }
    }
    Err(PutError {
        message: format!("giving up after {} attempts: {last}", opts.attempts),
        permanent: false,
        status: last_status,
    })
}

/// A file's size and modification time: it must not change while it is uploaded.
fn stamp(path: &Path) -> std::io::Result<(u64, SystemTime)> {
    let md = std::fs::metadata(path)?;
    if !md.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok((md.len(), md.modified()?))
}

struct Upload<'a> {
    client: &'a UploadClient,
    opts: &'a PutOptions,
    size: u64,
    digests: &'a Digests,
    progress: Arc<Progress>,
}

/// The upload body needs no report when it ends: frames are counted as they go.
struct Ignore;

impl OnFinish for Ignore {
    fn finish(self: Box<Self>, _: u16, _: u64, _: bool) {}
}

impl Upload<'_> {
    fn request(&self, length: u64, range: Option<String>, body: Body) -> Result<Request<Body>, PutError> {
        let mut req = Request::put(&self.opts.url)
            .header(CONTENT_LENGTH, length)
            .header("repr-digest", Expected::repr_digest(self.digests));
        if let Some(r) = range {
            req = req.header(CONTENT_RANGE, r);
        }
        // A token never crosses the network in clear text.
        if let Some(t) = &self.opts.token
            && self.opts.url.starts_with("https://")
        {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        req.body(body).map_err(|e| PutError::permanent(format!("bad URL {}: {e}", self.opts.url), None))
    }

    /// How far the origin got with this upload (`Content-Range: bytes */size`, no body). An
    /// empty file has nothing to resume and is sent whole.
    async fn probe(&self) -> Result<Step, PutError> {
        if self.size == 0 {
            return Ok(Step::Resume(0));
        }
        let req = self.request(0, Some(format!("bytes */{}", self.size)), body::empty())?;
        self.exchange(req).await
    }

    /// Sends the file from `offset` to its end.
    async fn send(&self, offset: u64, sent: &mut u64) -> Result<Step, PutError> {
        let file = std::fs::File::open(&self.opts.file)
            .map_err(|e| PutError::permanent(format!("{}: {e}", self.opts.file.display()), None))?;
        self.progress.at.store(offset, Ordering::Relaxed);
        let body = match self.size {
            0 => body::empty(),
            size => {
                let content = Content { data: Data::File(Arc::new(file)), filling: None, checked: None };
                body::from_parts(content, vec![Part::File { first: offset, last: size - 1 }], 0, None, Box::new(Ignore))
            }
        };
        let progress = self.progress.clone();
        let body = body
            .map_frame(move |frame| {
                if let Some(data) = frame.data_ref() {
                    progress.at.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                frame
            })
            .boxed();
        let range = (offset > 0).then(|| format!("bytes {offset}-{}/{}", self.size - 1, self.size));
        let req = self.request(self.size - offset, range, body)?;
        let step = self.exchange(req).await;
        *sent += self.progress.at.load(Ordering::Relaxed) - offset;
        step
    }

    async fn exchange(&self, req: Request<Body>) -> Result<Step, PutError> {
        let url = &self.opts.url;
        let resp = match self.client.request(req).await {
            Ok(r) => r,
            Err(e) => return Ok(Step::Retry(format!("{url}: {e}"), None, None)),
        };
        let status = resp.status();
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let offset = header(UPLOAD_OFFSET).and_then(|v| v.parse::<u64>().ok());
        let retry_after = header(RETRY_AFTER.as_str()).and_then(|v| v.parse::<u64>().ok()).map(Duration::from_secs);
        let etag = header(ETAG.as_str());
        let reason =
            String::from_utf8_lossy(&resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default())
                .trim()
                .to_string();
        let said = format!("{url}: {status} {reason}");
        Ok(match status {
            StatusCode::OK => Step::Done { etag, already_there: true },
            StatusCode::CREATED => Step::Done { etag, already_there: false },
            StatusCode::NO_CONTENT => Step::Resume(offset.unwrap_or(0)),
            // Another upload holds it, or the offset moved: ask again.
            StatusCode::CONFLICT if offset.is_some() || retry_after.is_some() => {
                Step::Retry(said, retry_after, Some(status.as_u16()))
            }
            StatusCode::INSUFFICIENT_STORAGE | StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => {
                Step::Retry(said, retry_after, Some(status.as_u16()))
            }
            s if s.is_server_error() => Step::Retry(said, retry_after, Some(status.as_u16())),
            s => return Err(PutError::permanent(said, Some(s.as_u16()))),
        })
    }
}

/// The checksums `reef put` states, as `Digest`-style text (for reports).
pub fn digest_text(d: &Digests) -> String {
    format!("sha-256={}, adler32={}", d.value(Algorithm::Sha256), d.value(Algorithm::Adler32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds_and_honours_retry_after() {
        let ms = |a| backoff(a, None).as_millis();
        assert_eq!([ms(1), ms(2), ms(3), ms(7), ms(40)], [500, 1000, 2000, 30_000, 30_000]);
        assert_eq!(backoff(1, Some(Duration::from_secs(5))), Duration::from_secs(5));
        assert_eq!(backoff(7, Some(Duration::from_secs(5))), Duration::from_secs(30));
    }
}
