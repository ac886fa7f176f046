//! `reef ingest`: a site's transfer daemon. It scans a directory, uploads each new file that
//! has stopped changing (`reef put`'s resumable upload), and records every outcome in a
//! JSON-lines journal, fsynced line by line. On start the journal is read back: a file whose
//! name, size and modification time were recorded as done (or as refused) is not sent again.
//! A run killed mid-upload resumes where the origin got to; one killed after the origin
//! published but before the journal line is told "already there" by the origin (same
//! checksum), so nothing is uploaded twice. Transient failures are retried with backoff
//! (doubling from the scan interval to 10 minutes); permanent ones (a refusal, a conflict
//! with another object of that name) are set aside and listed, as FTS does.

use crate::http::object_path::encode_segments;
use crate::metrics::Metrics;
use crate::put::{self, Progress, PutOptions};
use reef_core::units::Span;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(clap::Args, Debug, Clone)]
pub struct IngestOptions {
    /// The directory to watch: regular files below it, recursively (names starting with `.`
    /// are skipped).
    #[arg(long)]
    pub watch: PathBuf,
    /// Where objects go: `<to>/<path relative to the watched directory>`, on an origin.
    #[arg(long)]
    pub to: String,
    /// The journal: one JSON object per line per outcome [default: <watch>/.reef-ingest.jsonl].
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// How often the directory is scanned.
    #[arg(long, default_value = "5s")]
    pub interval: Span,
    /// A file modified less than this long ago is still being written: it waits.
    #[arg(long, default_value = "10s")]
    pub settle: Span,
    /// Exit once every file present is done or set aside (instead of watching forever).
    #[arg(long)]
    pub once: bool,
    /// Serve Prometheus metrics on this address (`127.0.0.1:9464`).
    #[arg(long)]
    pub metrics: Option<std::net::SocketAddr>,
    /// A CA certificate (PEM) to trust besides the system's.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// A file holding the bearer token (default: WLCG token discovery).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    #[arg(skip)]
    pub token: Option<String>,
}

/// A file as the journal knows it: its path below the watched directory, size and mtime.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileVersion {
    pub file: String,
    pub size: u64,
    /// Nanoseconds since the Unix epoch.
    pub mtime_ns: u64,
}

/// One journal line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// Unix seconds.
    pub time: f64,
    #[serde(flatten)]
    pub version: FileVersion,
    /// `uploaded`, `already_there`, `failed` (permanent: set aside) or `retry`.
    pub event: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Offsets the upload resumed from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed_from: Vec<u64>,
    pub seconds: f64,
}

impl Entry {
    fn settled(&self) -> bool {
        matches!(self.event.as_str(), "uploaded" | "already_there" | "failed")
    }
}

/// The journal: what is settled, appended to as outcomes come.
struct Journal {
    file: std::fs::File,
    settled: HashMap<FileVersion, Entry>,
}

impl Journal {
    fn open(path: &Path) -> anyhow::Result<Journal> {
        let mut settled = HashMap::new();
        if let Ok(f) = std::fs::File::open(path) {
            for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
                let line = line?;
                match serde_json::from_str::<Entry>(&line) {
                    Ok(e) if e.settled() => {
                        settled.insert(e.version.clone(), e);
                    }
                    Ok(_) => {}
                    // A line cut by a crash is the last one: what it recorded is done again.
                    Err(e) => {
                        tracing::warn!(journal = %path.display(), line = i + 1, error = %e, "skipped a journal line")
                    }
                }
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("the journal `{}`: {e}", path.display()))?;
        // A line cut by a crash is ended, so that the next one is whole.
        let len = file.metadata()?.len();
        let mut last = [b'\n'];
        if len > 0 {
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut last, len - 1)?;
        }
        if last != [b'\n'] {
            file.write_all(b"\n")?;
        }
        Ok(Journal { file, settled })
    }

    /// Appends one line and makes it durable before the outcome counts as recorded.
    fn record(&mut self, entry: Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()?;
        if entry.settled() {
            self.settled.insert(entry.version.clone(), entry);
        }
        Ok(())
    }
}

/// The regular files below `dir` (names starting with `.` skipped), with their versions.
pub fn scan(dir: &Path) -> std::io::Result<Vec<(PathBuf, FileVersion, SystemTime)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let md = entry.metadata()?;
                let Ok(rel) = entry.path().strip_prefix(dir).map(|p| p.to_string_lossy().into_owned()) else {
                    continue;
                };
                let mtime = md.modified()?;
                let mtime_ns =
                    mtime.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
                out.push((entry.path(), FileVersion { file: rel, size: md.len(), mtime_ns }, mtime));
            }
        }
    }
    out.sort_by(|a, b| a.1.file.cmp(&b.1.file));
    Ok(out)
}

/// A file waiting for its next attempt after a transient failure.
struct Waiting {
    attempts: u32,
    next: Instant,
}

pub async fn run(opts: IngestOptions) -> anyhow::Result<()> {
    let watch =
        std::fs::canonicalize(&opts.watch).map_err(|e| anyhow::anyhow!("`--watch {}`: {e}", opts.watch.display()))?;
    if !watch.is_dir() {
        anyhow::bail!("`--watch {}`: not a directory", opts.watch.display());
    }
    let token = match &opts.token_file {
        Some(f) => {
            Some(std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("`{}`: {e}", f.display()))?.trim().to_string())
        }
        None => opts.token.clone(),
    };
    let journal_path = opts.journal.clone().unwrap_or_else(|| watch.join(".reef-ingest.jsonl"));
    let mut journal = Journal::open(&journal_path)?;
    let metrics = Arc::new(Metrics::default());
    if let Some(addr) = opts.metrics {
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("`--metrics {addr}`: {e}"))?;
        tokio::spawn(serve_metrics(listener, metrics.clone()));
    }
    let interval: Duration = opts.interval.0.into();
    let settle: Duration = opts.settle.0.into();
    let base = opts.to.trim_end_matches('/').to_string();
    let mut waiting: HashMap<FileVersion, Waiting> = HashMap::new();
    tracing::info!(watch = %watch.display(), to = %base, journal = %journal_path.display(), "ingest started");
    loop {
        let files = scan(&watch).map_err(|e| anyhow::anyhow!("scanning `{}`: {e}", watch.display()))?;
        let journal_name = journal_path.strip_prefix(&watch).ok().map(|p| p.to_string_lossy().into_owned());
        let todo: Vec<_> = files
            .into_iter()
            .filter(|(_, v, _)| !journal.settled.contains_key(v) && journal_name.as_deref() != Some(v.file.as_str()))
            .collect();
        let mut pending = todo.len();
        metrics.set("reef_ingest_pending_files", &[], pending as f64);
        for (path, version, mtime) in todo {
            let fresh = SystemTime::now().duration_since(mtime).is_ok_and(|age| age < settle);
            if fresh || waiting.get(&version).is_some_and(|w| w.next > Instant::now()) {
                continue;
            }
            let url = format!("{base}{}", encode_segments(version.file.split('/')));
            let put_opts =
                PutOptions { file: path, url: url.clone(), attempts: 1, ca: opts.ca.clone(), token: token.clone() };
            let started = Instant::now();
            let result = put::put(&put_opts, Arc::new(Progress::default())).await;
            let mut entry = Entry {
                time: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
                version: version.clone(),
                event: String::new(),
                url,
                etag: None,
                sha256: None,
                status: None,
                error: None,
                resumed_from: Vec::new(),
                seconds: started.elapsed().as_secs_f64(),
            };
            match result {
                Ok(report) => {
                    entry.event = if report.already_there { "already_there" } else { "uploaded" }.into();
                    (entry.etag, entry.sha256) = (report.etag, Some(report.digests.sha256));
                    entry.resumed_from = report.resumed_from;
                    metrics.add("reef_ingest_bytes_total", &[], report.sent as f64);
                    waiting.remove(&version);
                    pending -= 1;
                }
                Err(e) if e.permanent => {
                    entry.event = "failed".into();
                    (entry.status, entry.error) = (e.status, Some(e.message.clone()));
                    tracing::error!(file = %version.file, error = %e.message, "set aside: the origin refused it");
                    waiting.remove(&version);
                    pending -= 1;
                }
                Err(e) => {
                    let w = waiting.entry(version.clone()).or_insert(Waiting { attempts: 0, next: Instant::now() });
                    w.attempts += 1;
                    let wait = (interval * 2u32.saturating_pow(w.attempts.min(16) - 1)).min(Duration::from_secs(600));
                    w.next = Instant::now() + wait;
                    entry.event = "retry".into();
                    (entry.status, entry.error) = (e.status, Some(e.message.clone()));
                    tracing::warn!(file = %version.file, error = %e.message, retry_in = ?wait, "upload failed; will retry");
                }
            }
            metrics.add("reef_ingest_files_total", &[("outcome", entry.event.as_str())], 1.0);
            journal.record(entry).map_err(|e| anyhow::anyhow!("the journal `{}`: {e}", journal_path.display()))?;
        }
        let failed = journal.settled.values().filter(|e| e.event == "failed").count();
        metrics.set("reef_ingest_pending_files", &[], pending as f64);
        metrics.set("reef_ingest_failed_files", &[], failed as f64);
        if opts.once && pending == 0 {
            for e in journal.settled.values().filter(|e| e.event == "failed") {
                eprintln!("set aside: {} ({})", e.version.file, e.error.as_deref().unwrap_or(""));
            }
            return Ok(());
        }
        tokio::time::sleep(interval).await;
    }
}

/// `GET /metrics` (any path) in the Prometheus text format.
async fn serve_metrics(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    use hyper_util::rt::TokioIo;
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_req| {
                let text = metrics.render();
                async move {
                    let mut resp = http::Response::new(http_body_util::Full::new(bytes::Bytes::from(text)));
                    resp.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("text/plain; version=0.0.4"),
                    );
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_remembers_settled_files_and_skips_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let v = |f: &str, size| FileVersion { file: f.into(), size, mtime_ns: 7 };
        let entry = |version, event: &str| Entry {
            time: 0.0,
            version,
            event: event.into(),
            url: "u".into(),
            etag: None,
            sha256: None,
            status: None,
            error: None,
            resumed_from: vec![],
            seconds: 0.0,
        };
        {
            let mut j = Journal::open(&path).unwrap();
            j.record(entry(v("a", 1), "uploaded")).unwrap();
            j.record(entry(v("b", 2), "retry")).unwrap();
            j.record(entry(v("c", 3), "failed")).unwrap();
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"time\":1,\"file\":\"d\",\"si");
        std::fs::write(&path, text).unwrap();
        let mut j = Journal::open(&path).unwrap();
        j.record(entry(v("e", 5), "uploaded")).unwrap();
        let j = Journal::open(&path).unwrap();
        let mut settled: Vec<_> = j.settled.keys().map(|k| k.file.clone()).collect();
        settled.sort();
        assert_eq!(settled, ["a", "c", "e"], "the line after a cut one is read");
        assert!(!j.settled.contains_key(&v("a", 2)), "a changed file is a new version");
    }

    #[test]
    fn a_scan_finds_regular_files_below_and_skips_dot_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("x/y")).unwrap();
        std::fs::create_dir_all(dir.path().join(".hidden")).unwrap();
        for (f, n) in [("one", 1), ("x/two", 2), ("x/y/three", 3), (".j", 4), (".hidden/four", 4)] {
            std::fs::write(dir.path().join(f), vec![0u8; n]).unwrap();
        }
        let found: Vec<(String, u64)> =
            scan(dir.path()).unwrap().into_iter().map(|(_, v, _)| (v.file, v.size)).collect();
        assert_eq!(found, [("one".to_string(), 1), ("x/two".into(), 2), ("x/y/three".into(), 3)]);
    }
}
