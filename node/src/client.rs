//! `reef get`: download one object the way a careful user would. Follows redirects (a director
//! sends it to a cache), resumes a broken transfer with a range request on the same
//! representation (`If-Range` with its ETag), fails over to the next source it knows when one
//! stops answering (the director again, which stops naming a dead cache, then `--mirror`s),
//! and verifies the complete file against the server's `Digest`.

use crate::http::digest::{Digests, Hasher};
use crate::peer_transport::{HttpClient, REEF_FAILURE, http_client};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_RANGE, LOCATION, RANGE};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use reef_core::Failure;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct GetOptions {
    pub url: String,
    pub output: PathBuf,
    /// Other base URLs (`http://host:port`) serving the same namespace, tried in order.
    pub mirrors: Vec<String>,
    /// Attempts before giving up (each broken or refused transfer is one).
    pub attempts: u32,
    /// A CA certificate (PEM) to trust besides the system's (a federation's own CA).
    pub ca: Option<PathBuf>,
    /// A bearer token for private namespaces; sent over HTTPS only.
    pub token: Option<String>,
}

/// The bearer token as WLCG's token discovery finds it: `$BEARER_TOKEN`, the file named by
/// `$BEARER_TOKEN_FILE`, `$XDG_RUNTIME_DIR/bt_u<uid>`, then `/tmp/bt_u<uid>`.
pub fn discover_token() -> Option<String> {
    if let Ok(t) = std::env::var("BEARER_TOKEN") {
        return Some(t.trim().to_string()).filter(|t| !t.is_empty());
    }
    let uid = rustix::process::getuid().as_raw();
    let mut files: Vec<PathBuf> = Vec::new();
    if let Ok(f) = std::env::var("BEARER_TOKEN_FILE") {
        files.push(f.into());
    }
    if let Ok(dir) = std::env::var("XDG_RUNTIME_DIR") {
        files.push(Path::new(&dir).join(format!("bt_u{uid}")));
    }
    files.push(PathBuf::from(format!("/tmp/bt_u{uid}")));
    files
        .into_iter()
        .find_map(|f| std::fs::read_to_string(f).ok())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// What a completed download looked like.
#[derive(Debug)]
pub struct GetReport {
    pub size: u64,
    /// The checksum that was verified, as `alg=value`.
    pub verified: Option<String>,
    /// The last server that sent bytes and its `Cache-Status`.
    pub served_by: String,
    pub cache_status: Option<String>,
    pub attempts: u32,
    /// From the first request sent to the verified file in place.
    pub elapsed: Duration,
}

#[derive(Debug, Default)]
struct Progress {
    have: u64,
    total: Option<u64>,
    etag: Option<String>,
    digest: Option<String>,
}

/// Why `reef get` gave up: the message and the last failure a Reef node named, if one did
/// (so a caller can compare it with the simulator's reasons).
#[derive(Debug)]
pub struct GetError {
    pub message: String,
    pub failure: Option<Failure>,
    /// Whether any server answered at all (`false`: every source was unreachable).
    pub answered: bool,
}

impl std::fmt::Display for GetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GetError {}

enum Outcome {
    Done,
    /// A Reef node named its failure (whether to try elsewhere is the core's rule).
    Named(Failure, String),
    /// Try again (maybe elsewhere); the reason is reported if attempts run out.
    Retry(String),
    Fatal(String),
}

pub async fn get(opts: &GetOptions) -> anyhow::Result<GetReport> {
    let tls = crate::tls::client_trusting(opts.ca.as_deref())?;
    let client = http_client(tls, []);
    let started = std::time::Instant::now();
    let uri: Uri = opts.url.parse()?;
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let mut sources = vec![opts.url.clone()];
    sources.extend(opts.mirrors.iter().map(|m| format!("{}{path_and_query}", m.trim_end_matches('/'))));
    let part = part_path(&opts.output);
    let mut progress = Progress::default();
    // A previous run's partial file is resumed only if its ETag is known: start clean instead.
    let _ = std::fs::remove_file(&part);
    let mut last_error = String::new();
    let mut served_by = String::new();
    let mut cache_status = None;
    let mut failed_at: Vec<String> = Vec::new();
    let mut named = None;
    let answered = std::cell::Cell::new(false);
    for attempt in 0..opts.attempts.max(1) {
        let source = &sources[attempt as usize % sources.len()];
        if attempt > 0 {
            tokio::time::sleep(Failure::client_backoff(attempt).into()).await;
        }
        let session = Session { client: &client, token: opts.token.as_deref(), answered: &answered };
        match fetch_once(session, source, &part, &mut progress, &failed_at, &mut served_by, &mut cache_status).await {
            Outcome::Done => {
                let verified = verify(&part, &progress)?;
                std::fs::rename(&part, &opts.output)?;
                let (attempts, elapsed) = (attempt + 1, started.elapsed());
                return Ok(GetReport { size: progress.have, verified, served_by, cache_status, attempts, elapsed });
            }
            Outcome::Named(failure, e) if failure.client_retries() => {
                tracing::warn!(source = %served_by, error = %e, "the node failed; retrying");
                failed_at.push(served_by.clone());
                (last_error, named) = (e, Some(failure));
            }
            Outcome::Named(failure, message) => {
                let _ = std::fs::remove_file(&part);
                return Err(GetError { message, failure: Some(failure), answered: true }.into());
            }
            Outcome::Retry(e) => {
                tracing::warn!(source = %served_by, error = %e, "transfer failed; retrying");
                if !served_by.is_empty() {
                    failed_at.push(served_by.clone());
                }
                last_error = e;
            }
            Outcome::Fatal(message) => {
                let _ = std::fs::remove_file(&part);
                return Err(GetError { message, failure: None, answered: answered.get() }.into());
            }
        }
    }
    let message = format!("giving up after {} attempts: {last_error}", opts.attempts);
    Err(GetError { message, failure: named, answered: answered.get() }.into())
}

fn part_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    output.with_file_name(name)
}

fn authority(url: &str) -> String {
    url.parse::<Uri>().ok().and_then(|u| u.authority().map(|a| a.to_string())).unwrap_or_default()
}

/// How requests are sent: the client, and the bearer token (HTTPS only).
#[derive(Clone, Copy)]
struct Session<'a> {
    client: &'a HttpClient,
    token: Option<&'a str>,
    /// Set once any server answers (a client that reached nobody can say so).
    answered: &'a std::cell::Cell<bool>,
}

async fn fetch_once(
    Session { client, token, answered }: Session<'_>,
    start: &str,
    part: &Path,
    progress: &mut Progress,
    failed_at: &[String],
    served_by: &mut String,
    cache_status: &mut Option<String>,
) -> Outcome {
    let mut url = start.to_string();
    for _ in 0..10 {
        let mut req = Request::get(&url).header("want-digest", "sha-256, adler32;q=0.5");
        // A token never crosses the network in clear text.
        if let Some(token) = token
            && url.starts_with("https://")
        {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if progress.have > 0
            && let Some(etag) = &progress.etag
        {
            req = req.header(RANGE, format!("bytes={}-", progress.have)).header(IF_RANGE, etag);
        }
        let Ok(req) = req.body(Full::new(Bytes::new())) else {
            return Outcome::Fatal(format!("bad URL {url}"));
        };
        *served_by = authority(&url);
        let resp = match client.request(req).await {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(format!("{url}: {e}")),
        };
        answered.set(true);
        let status = resp.status();
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        if status.is_redirection() {
            let Some(location) = header(LOCATION.as_str()) else {
                return Outcome::Fatal(format!("{url}: redirect without Location"));
            };
            // A director may still name a cache that just failed us; prefer the next source.
            if failed_at.contains(&authority(&location)) {
                return Outcome::Retry(format!("{url}: redirected to {location}, which failed before"));
            }
            url = location;
            continue;
        }
        *cache_status = header("cache-status");
        // A Reef node names its failure: whether to try elsewhere is the core's rule.
        if let Some(failure) = header(REEF_FAILURE).as_deref().and_then(Failure::from_name) {
            return Outcome::Named(failure, format!("{url}: {status} ({})", failure.name()));
        }
        let resumed = match status {
            StatusCode::OK => false,
            StatusCode::PARTIAL_CONTENT => true,
            StatusCode::NOT_FOUND | StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED | StatusCode::GONE => {
                return Outcome::Fatal(format!("{url}: {status}"));
            }
            _ => return Outcome::Retry(format!("{url}: {status}")),
        };
        let etag = header(ETAG.as_str());
        if resumed {
            let start = header(CONTENT_RANGE.as_str())
                .and_then(|v| v.strip_prefix("bytes ")?.split('-').next()?.parse::<u64>().ok());
            if start != Some(progress.have) || etag != progress.etag {
                return Outcome::Retry(format!("{url}: unexpected partial response"));
            }
        } else {
            progress.have = 0;
            progress.total = header(CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok());
            progress.etag = etag;
        }
        if let Some(d) = header("digest") {
            progress.digest = Some(d);
        }
        let file = if resumed { OpenOptions::new().append(true).open(part) } else { File::create(part) };
        let mut file = match file {
            Ok(f) => f,
            Err(e) => return Outcome::Fatal(format!("{}: {e}", part.display())),
        };
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => return Outcome::Retry(format!("{url}: transfer broke after {} bytes: {e}", progress.have)),
            };
            if let Ok(data) = frame.into_data() {
                if let Err(e) = file.write_all(&data) {
                    return Outcome::Fatal(format!("{}: {e}", part.display()));
                }
                progress.have += data.len() as u64;
            }
        }
        if progress.total.is_some_and(|t| t != progress.have) {
            return Outcome::Retry(format!("{url}: short body"));
        }
        return Outcome::Done;
    }
    Outcome::Fatal(format!("{start}: too many redirects"))
}

/// Checks the downloaded file against the server's `Digest` (sha-256 preferred).
fn verify(part: &Path, progress: &Progress) -> anyhow::Result<Option<String>> {
    let Some(claimed) = &progress.digest else {
        tracing::warn!("the server offered no checksum; the file is not verified");
        return Ok(None);
    };
    let digests = hash_file(part, &AtomicU64::new(0))?;
    if !digests.matches_header(claimed) {
        let _ = std::fs::remove_file(part);
        anyhow::bail!("checksum mismatch: the server said {claimed}; the file was deleted");
    }
    Ok(Some(claimed.clone()))
}

/// The checksums of a file, read once; `done` counts the bytes hashed so far.
pub fn hash_file(path: &Path, done: &AtomicU64) -> std::io::Result<Digests> {
    let mut hasher = Hasher::default();
    let mut file = File::open(path)?;
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
        done.fetch_add(n as u64, Ordering::Relaxed);
    }
}
