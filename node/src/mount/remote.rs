//! What the mount asks the federation: directory listings and block lists from an origin (the
//! reference), byte ranges from the nearest source (a director, which redirects to a cache, or
//! caches named directly), failing over to the next source when one does not answer.

use crate::blocks::{BLOCKS_PATH, BlockList};
use crate::http::object_path::encode_segments;
use crate::origin::{LIST_PATH, ListEntry};
use crate::peer_transport::{HttpClient, http_client};
use bytes::Bytes;
use http::header::{CONTENT_RANGE, ETAG, LOCATION, RANGE};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    #[error("not found")]
    NotFound,
    #[error("refused ({0})")]
    Refused(u16),
    /// The object changed: its ETag is no longer the one its block list was for.
    #[error("the object changed")]
    Changed,
    #[error("unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug)]
pub struct Remote {
    client: HttpClient,
    namespace: String,
    /// Base URLs (`http://host:port`) of origins: listings and block lists.
    origins: Vec<String>,
    /// Base URLs bytes are read from, in order of preference.
    sources: Vec<String>,
    token: Option<String>,
    /// The source that answered last: tried first.
    preferred: AtomicUsize,
    timeout: Duration,
}

/// A response in full: status, ETag, Content-Range start, body.
struct Answer {
    status: StatusCode,
    etag: Option<String>,
    range_start: Option<u64>,
    body: Bytes,
}

impl Remote {
    pub fn new(
        tls: std::sync::Arc<rustls::ClientConfig>,
        namespace: String,
        origins: Vec<String>,
        sources: Vec<String>,
        token: Option<String>,
        timeout: Duration,
    ) -> Remote {
        let trim = |v: Vec<String>| v.into_iter().map(|u| u.trim_end_matches('/').to_string()).collect();
        let (origins, sources) = (trim(origins), trim(sources));
        Remote { client: http_client(tls, []), namespace, origins, sources, token, preferred: 0.into(), timeout }
    }

    fn url(&self, base: &str, prefix: &str, path: &str) -> String {
        let segments = std::iter::once(self.namespace.as_str()).chain(path.split('/').filter(|s| !s.is_empty()));
        format!("{base}{prefix}{}", encode_segments(segments))
    }

    /// One GET (redirects followed, at most 5), read whole, within the timeout.
    async fn get(&self, mut url: String, range: Option<(u64, u64)>) -> Result<Answer, RemoteError> {
        for _ in 0..5 {
            let mut req = Request::get(&url);
            if let Some((first, last)) = range {
                req = req.header(RANGE, format!("bytes={first}-{last}"));
            }
            // A token never crosses the network in clear text.
            if let Some(t) = &self.token
                && url.starts_with("https://")
            {
                req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
            }
            let req = req.body(Full::new(Bytes::new())).map_err(|e| RemoteError::Unavailable(e.to_string()))?;
            let exchange = async {
                let resp =
                    self.client.request(req).await.map_err(|e| RemoteError::Unavailable(format!("{url}: {e}")))?;
                let (parts, body) = resp.into_parts();
                let body = body.collect().await.map_err(|e| RemoteError::Unavailable(format!("{url}: {e}")))?;
                Ok::<_, RemoteError>((parts, body.to_bytes()))
            };
            let (parts, body) = tokio::time::timeout(self.timeout, exchange)
                .await
                .map_err(|_| RemoteError::Unavailable(format!("{url}: no answer within {:?}", self.timeout)))??;
            let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
            if parts.status.is_redirection() {
                url = header(LOCATION)
                    .ok_or_else(|| RemoteError::Unavailable(format!("{url}: redirect without Location")))?;
                continue;
            }
            let range_start =
                header(CONTENT_RANGE).and_then(|v| v.strip_prefix("bytes ")?.split('-').next()?.parse::<u64>().ok());
            return Ok(Answer { status: parts.status, etag: header(ETAG), range_start, body });
        }
        Err(RemoteError::Unavailable(format!("{url}: too many redirects")))
    }

    /// Tries each origin in turn with `request`; the first definite answer wins.
    async fn ask_origins(&self, prefix: &str, path: &str) -> Result<Answer, RemoteError> {
        let mut last = RemoteError::Unavailable("no origin configured".into());
        for base in &self.origins {
            match self.get(self.url(base, prefix, path), None).await {
                Ok(a) if a.status == StatusCode::OK => return Ok(a),
                Ok(a) if a.status == StatusCode::NOT_FOUND => return Err(RemoteError::NotFound),
                Ok(a) if matches!(a.status.as_u16(), 401 | 403) => return Err(RemoteError::Refused(a.status.as_u16())),
                Ok(a) => last = RemoteError::Unavailable(format!("{base}: {}", a.status)),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The entries of directory `dir` (relative to the namespace, "" for its root).
    pub async fn list(&self, dir: &str) -> Result<Vec<ListEntry>, RemoteError> {
        #[derive(serde::Deserialize)]
        struct Listing {
            entries: Vec<ListEntry>,
        }
        let answer = self.ask_origins(LIST_PATH, dir).await?;
        serde_json::from_slice::<Listing>(&answer.body)
            .map(|l| l.entries)
            .map_err(|e| RemoteError::Unavailable(format!("a listing that does not parse: {e}")))
    }

    /// The origin's block list of the object at `path`, and the ETag it is for.
    pub async fn block_list(&self, path: &str) -> Result<(BlockList, String), RemoteError> {
        let answer = self.ask_origins(BLOCKS_PATH, path).await?;
        let etag = answer.etag.ok_or_else(|| RemoteError::Unavailable("a block list without an ETag".into()))?;
        let list = BlockList::decode(&answer.body).map_err(RemoteError::Unavailable)?;
        Ok((list, etag))
    }

    /// Bytes `first..=last` of version `etag` of the object at `path`, from the sources in
    /// order of preference (the last one that answered first).
    pub async fn range(&self, path: &str, etag: &str, first: u64, last: u64) -> Result<Bytes, RemoteError> {
        let n = self.sources.len();
        let start = self.preferred.load(Ordering::Relaxed);
        let mut error = RemoteError::Unavailable("no source configured".into());
        for i in 0..n {
            let index = (start + i) % n;
            let url = self.url(&self.sources[index], "", path);
            match self.get(url, Some((first, last))).await {
                Ok(a) if a.etag.as_deref() != Some(etag) && a.status.is_success() => return Err(RemoteError::Changed),
                Ok(a) => {
                    let whole = a.status == StatusCode::OK && first == 0;
                    let part = a.status == StatusCode::PARTIAL_CONTENT && a.range_start == Some(first);
                    let want = (last - first + 1) as usize;
                    if (whole || part) && a.body.len() >= want {
                        self.preferred.store(index, Ordering::Relaxed);
                        return Ok(a.body.slice(..want));
                    }
                    if matches!(a.status.as_u16(), 401 | 403) {
                        return Err(RemoteError::Refused(a.status.as_u16()));
                    }
                    error = RemoteError::Unavailable(format!(
                        "{}: {} for bytes {first}-{last}",
                        self.sources[index], a.status
                    ));
                }
                Err(e) => error = e,
            }
            tracing::warn!(source = %self.sources[index], %error, "a source failed; trying the next");
        }
        Err(error)
    }
}
