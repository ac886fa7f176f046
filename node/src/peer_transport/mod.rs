//! Node-to-node transport over plain HTTP: control-plane messages (`POST /.reef/v1/message`,
//! the core's `Message` as JSON) and object fetches into fills (`GET` with a `Reef-Peer` marker,
//! so the serving node's core treats it as a peer request and never cascades).

mod parts;

use crate::assembly::{Assembly, AttemptFile, TempFile};
use crate::blocks::{BLOCKS_PATH, BlockList, Verifier};
use crate::fill::{Fill, Head, State};
use crate::http::digest::Hasher;
use crate::http::object_path;
use crate::nearline::REEF_STAGING;
use crate::store::{ObjectMeta, Store};
use crate::third_party::{self, CachingFields, Held, ThirdPartyOrigin};
use crate::tls::connector::NodeConnector;
use crate::tls::seal::{REEF_SEAL, SealCheck};
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use reef_core::http_caching::Validity;
use reef_core::shaper::{Admission, RateLimit, Shaper};
use reef_core::{Failure, FetchError, FetchKind, FetchResult, Message, NodeId, RequestKind, Source, Time};
use rustls::ClientConfig;
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Marks a request from another Reef node; the value is the sender's node id. The serving
/// core sees `RequestKind::Peer` (only if cached: no cascade, no loops).
pub const REEF_PEER: &str = "reef-peer";
/// What a fetch fails with when its source answered `status`: a Reef node names its core's
/// failure (`Reef-Failure`), mapped by the core's contract; other servers by status alone.
pub fn fetch_error(status: StatusCode, reef_failure: Option<&str>) -> FetchError {
    if let Some(failure) = reef_failure.and_then(Failure::from_name) {
        return failure.fetch_error();
    }
    match status {
        StatusCode::NOT_FOUND | StatusCode::GONE => FetchError::NotFound,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => FetchError::Unauthorized,
        _ => FetchError::Refused,
    }
}

/// Marks a request from a child in a hierarchy (`RequestKind::Child`: the parent may fetch
/// upstream, but never back down to the child).
pub const REEF_CHILD: &str = "reef-child";
/// On a child's request: how long, in milliseconds, the child waits without progress before
/// it gives up (`RequestKind::Child::patience`); the parent waits a tenth less upstream.
pub const REEF_PATIENCE: &str = "reef-patience";
/// The sender's own URL (for operators' logs: receivers reach only their configured peers).
pub const REEF_NODE_URL: &str = "reef-node-url";
/// Why a node refused a peer request (`not_cached`: try elsewhere, it is not a real 404).
pub const REEF_FAILURE: &str = "reef-failure";
pub const MESSAGE_PATH: &str = "/.reef/v1/message";
/// On an object answered to another node: `private` when the namespace is private here, so
/// that a node configured otherwise refuses it rather than serve it to anyone.
pub const REEF_ACCESS: &str = "reef-access";

/// The wait before asking a staging source again when it gave no usable `Retry-After`.
const DEFAULT_STAGE_RETRY: u64 = 30;

pub type HttpClient = Client<NodeConnector, Full<Bytes>>;

/// A client speaking plain HTTP and HTTPS with `tls`; at the URLs of `nodes`, the server's
/// certificate must name that node.
pub fn http_client(tls: Arc<ClientConfig>, nodes: impl IntoIterator<Item = (NodeId, String)>) -> HttpClient {
    Client::builder(TokioExecutor::new()).build(NodeConnector::new(tls, nodes))
}

#[derive(Debug)]
pub struct Transport {
    client: HttpClient,
    me: NodeId,
    my_url: String,
    /// Node id → base URL: the configured peers, and no one else.
    book: HashMap<NodeId, String>,
    /// With TLS: block lists must come from an origin or carry an origin's seal.
    seals: Option<SealCheck>,
    /// Each namespace's limit on fills from origins (`quota.fill`): every chunk read from an
    /// origin waits for its turn in the namespace's shaper, so concurrent fills share the rate.
    fill_limits: std::sync::Mutex<HashMap<String, Shaper>>,
    /// The instant the shapers' time 0 stands for.
    epoch: tokio::time::Instant,
    /// The third-party origins of namespaces, by the node id the core knows each by.
    third_party: HashMap<NodeId, ThirdPartyOrigin>,
}

impl Transport {
    /// `tls`: this node's client side (its certificate and the federation CA), or a plain
    /// configuration in a federation without TLS.
    pub fn new(
        me: NodeId,
        my_url: String,
        peers: Vec<(NodeId, String)>,
        tls: Arc<ClientConfig>,
        seals: Option<SealCheck>,
    ) -> Self {
        let client = http_client(tls, peers.clone());
        Transport {
            client,
            me,
            my_url,
            book: peers.into_iter().collect(),
            seals,
            fill_limits: Default::default(),
            epoch: tokio::time::Instant::now(),
            third_party: HashMap::new(),
        }
    }

    /// Adds the third-party origins (at start: a namespace's origin is fixed for the node's
    /// life).
    pub fn with_third_party(mut self, origins: impl IntoIterator<Item = (NodeId, ThirdPartyOrigin)>) -> Self {
        self.third_party.extend(origins);
        self
    }

    /// Sets the namespaces' fill limits (at start and on reload); a namespace that keeps its
    /// limit keeps its shaper's state.
    pub fn set_fill_limits(&self, limits: Vec<(String, RateLimit)>) {
        let mut shapers = self.fill_limits.lock().expect("fill limits");
        let mut kept = HashMap::new();
        for (namespace, limit) in limits {
            let mut shaper = shapers.remove(&namespace).unwrap_or_else(|| Shaper::new(limit));
            shaper.set_limit(limit);
            kept.insert(namespace, shaper);
        }
        *shapers = kept;
    }

    /// Waits until `bytes` more of a fill of `namespace` from an origin may be taken in.
    async fn pace_fill(&self, namespace: &str, bytes: u64) {
        let release = {
            let mut shapers = self.fill_limits.lock().expect("fill limits");
            let Some(shaper) = shapers.get_mut(namespace) else { return };
            let now = Time(u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX));
            match shaper.admit(now, bytes) {
                Admission::Paced(pace) => pace.end(),
                Admission::Refused { .. } => return, // never: fills have no delay bound
            }
        };
        tokio::time::sleep_until(self.epoch + std::time::Duration::from_nanos(release.as_nanos())).await;
    }

    /// The client this node talks to other nodes with (also used for issuers' keys).
    pub fn client(&self) -> HttpClient {
        self.client.clone()
    }

    pub fn url_of(&self, id: NodeId) -> Option<String> {
        self.book.get(&id).cloned()
    }

    /// Delivers a control-plane message; `Err` means the peer could not be reached.
    pub async fn send(&self, to: NodeId, msg: &Message) -> Result<(), String> {
        let url = self.url_of(to).ok_or_else(|| format!("no address for {to}"))?;
        let body = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
        let req = Request::post(format!("{url}{MESSAGE_PATH}"))
            .header(REEF_PEER, self.me.0.to_string())
            .header(REEF_NODE_URL, &self.my_url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(reef_core::MESSAGE_TIMEOUT.into(), self.client.request(req))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        // Drain so that the connection is reused.
        let _ = resp.into_body().collect().await;
        if !status.is_success() {
            tracing::warn!(%to, %status, "peer rejected a message");
        }
        Ok(())
    }

    /// Runs one attempt of a fetch: streams the object from its source into a temporary file
    /// of `store`, publishing progress on the fill, and verifies it (size, upstream `Digest`).
    /// `report` hears `Receiving` once the first block is on disk, then `Progress` at most every
    /// `PROGRESS_EVERY` while bytes arrive.
    pub async fn fetch(&self, store: &Store, a: Attempt<'_>, report: impl Fn(FillReport)) -> AttemptEnd {
        let (fill, attempt, from) = (a.fill, a.number, a.from);
        let result = self.fetch_inner(store, a, report).await;
        // A split fill's lead reports its own range only (see `reef_core::node::parts`).
        let split = fill.lead_end().and(fill.assembly()).filter(|x| x.of.attempt == attempt);
        match (result, split) {
            (Ok(Received::Whole { size, validity }), _) => AttemptEnd::Fetch(FetchResult::Complete { size, validity }),
            (Ok(Received::LeadDone), Some(x)) => AttemptEnd::Lead { result: Ok(()), reached: x.lead_reached() },
            (Ok(Received::LeadDone), None) => unreachable!("a lead ends its range only in a split fill"),
            (Err(FetchResult::Failed(e)), Some(x)) => {
                tracing::warn!(object = %fill.name, %from, error = e.name(), "lead range broke");
                AttemptEnd::Lead { result: Err(e), reached: x.lead_reached() }
            }
            // Nothing was received: the next attempt (the core asks again) starts afresh.
            (Err(staging @ FetchResult::Staging { .. }), _) => AttemptEnd::Fetch(staging),
            (Err(not_modified @ FetchResult::NotModified { .. }), _) => AttemptEnd::Fetch(not_modified),
            (Err(FetchResult::Complete { .. }), _) => unreachable!("a completed fetch is Ok"),
            (Err(FetchResult::Failed(e)), None) => {
                if let State::Receiving { .. } = fill.snapshot().state {
                    tracing::warn!(object = %fill.name, %from, error = e.name(), "fill broke");
                }
                if let State::Receiving { .. } | State::Connecting = fill.snapshot().state {
                    fill.set(attempt, State::Failed);
                }
                AttemptEnd::Fetch(FetchResult::Failed(e))
            }
        }
    }

    /// The object's size (and, from a third-party origin, what its headers allow) once
    /// verified; an error is a failure, a staging answer or "not modified".
    async fn fetch_inner(
        &self,
        store: &Store,
        a: Attempt<'_>,
        report: impl Fn(FillReport),
    ) -> Result<Received, FetchResult> {
        let answer = match self.third_party.get(&a.from) {
            Some(origin) => self.open_third_party(store, origin, &a).await?,
            None => self.open_reef(&a).await?,
        };
        self.receive(store, &a, answer, report).await
    }

    /// Asks a third-party origin; its bytes are their own reference (see `third_party`).
    async fn open_third_party(
        &self,
        store: &Store,
        origin: &ThirdPartyOrigin,
        a: &Attempt<'_>,
    ) -> Result<Answer, FetchResult> {
        let path = object_path::encode_segments(a.fill.name.path.split('/'));
        let opened = match third_party::open(origin, &path, a.held).await? {
            third_party::Reply::Body(opened) => opened,
            third_party::Reply::NotModified { validity, caching } => {
                // (Kept with the copy: the next revalidation starts from these fields.)
                if let Err(e) = store.update_caching(a.fill.name.id(), caching) {
                    tracing::warn!(object = %a.fill.name, error = %e, "cannot update the copy's caching fields");
                }
                return Err(FetchResult::NotModified { validity: Some(validity) });
            }
        };
        let head = Head {
            size: opened.size,
            etag: opened.etag,
            last_modified: opened.last_modified,
            source: a.source,
            upstream_status: None,
        };
        Ok(Answer {
            body: opened.body,
            verifier: Some(Verifier::recording(opened.size, a.block_size)),
            head,
            seal: None,
            upstream_digest: None,
            validity: Some(opened.validity),
            caching: Some(opened.caching),
        })
    }

    /// The request kind the source's core sees, by the core's contract, on the wire: who asks
    /// (this node, authenticated by TLS where configured) and, from a child, its patience.
    fn asking(&self, req: http::request::Builder, kind: RequestKind) -> http::request::Builder {
        let req = req.header(REEF_NODE_URL, &self.my_url);
        match kind {
            RequestKind::Child { patience, .. } => req
                .header(REEF_CHILD, self.me.0.to_string())
                .header(REEF_PATIENCE, (patience.as_nanos() / 1_000_000).to_string()),
            RequestKind::Peer { .. } | RequestKind::Client => req.header(REEF_PEER, self.me.0.to_string()),
        }
    }

    /// Asks a Reef node (a peer, a parent or an origin) and, at the same time, the origin's
    /// block list for the object.
    async fn open_reef(&self, a: &Attempt<'_>) -> Result<Answer, FetchResult> {
        let Attempt { fill, from, kind, patience, source, reference_from, origins, private, held, .. } = *a;
        let url = self.url_of(from).ok_or(FetchError::Unreachable)?;
        let path = object_path::encode(&fill.name.namespace, &fill.name.path);
        let mut req = self.asking(Request::get(format!("{url}{path}")), kind.request_kind(self.me, patience));
        if let Some(held) = held {
            req = req.header(http::header::IF_NONE_MATCH, held.etag);
        }
        let req = req.body(Full::new(Bytes::new())).map_err(|_| FetchError::Refused)?;
        // The origin's block list is asked for at the same time as the object.
        let (resp, list) =
            tokio::join!(self.client.request(req), self.block_list(reference_from, origins, &fill.name, &path));
        let resp = resp.map_err(|_| FetchError::Unreachable)?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED && held.is_some() {
            return Err(FetchResult::NotModified { validity: None });
        }
        if status == StatusCode::SERVICE_UNAVAILABLE && resp.headers().contains_key(REEF_STAGING) {
            let seconds = resp.headers().get(http::header::RETRY_AFTER).and_then(|v| v.to_str().ok()?.parse().ok());
            // (Bounded before the conversion: the core waits at most minutes anyway.)
            let retry_after = reef_core::Duration::from_secs(seconds.unwrap_or(DEFAULT_STAGE_RETRY).min(86_400));
            return Err(FetchResult::Staging { retry_after });
        }
        if status != StatusCode::OK {
            return Err(fetch_error(status, resp.headers().get(REEF_FAILURE).and_then(|v| v.to_str().ok())).into());
        }
        let header =
            |name: http::header::HeaderName| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        // A namespace private upstream but public here would hand private bytes to anyone:
        // refuse it (fail closed) and tell the operator.
        if !private && header(http::header::HeaderName::from_static(REEF_ACCESS)).as_deref() == Some("private") {
            tracing::error!(
                object = %fill.name,
                %from,
                "the namespace is private upstream but public here: not serving it (set `private = true` in its [[namespaces]])"
            );
            return Err(FetchError::Unauthorized.into());
        }
        // Reef nodes always send Content-Length; without it we could not stream early or verify.
        let size: u64 = header(http::header::CONTENT_LENGTH).and_then(|v| v.parse().ok()).ok_or(FetchError::Refused)?;
        let etag = header(http::header::ETAG).unwrap_or_else(|| format!("\"{size:x}\""));
        let last_modified = header(http::header::LAST_MODIFIED)
            .and_then(|v| httpdate::parse_http_date(&v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        let upstream_digest = header(http::header::HeaderName::from_static("digest"));
        // Bounded: a peer's header is handed on to clients, never grown without limit.
        let upstream_status =
            header(http::header::HeaderName::from_static("cache-status")).filter(|s| s.len() <= MAX_UPSTREAM_STATUS);

        // Without the origin's list for this very version, nothing is released before the
        // whole object is verified; a list for another version means the source has a stale
        // or forged copy: try the next source.
        let (verifier, seal) = match list {
            Some(l) if l.etag == etag && l.list.size == size => (Some(Verifier::new(Arc::new(l.list))), l.seal),
            Some(l) => {
                tracing::warn!(object = %fill.name, %from, %etag, origin = %l.etag, "source's version is not the origin's");
                return Err(FetchError::Broken.into());
            }
            // With TLS, only the origin itself (authenticated) may send bytes no origin vouched for.
            None if self.seals.is_some() && kind != FetchKind::Origin => {
                tracing::error!(object = %fill.name, %from, "no block list from an origin nor sealed by one: not taking the object from a peer");
                return Err(FetchError::Broken.into());
            }
            None => {
                tracing::warn!(object = %fill.name, "no block list from any origin: releasing bytes only once complete");
                (None, None)
            }
        };
        let head = Head { size, etag, last_modified, source, upstream_status };
        Ok(Answer { body: resp.into_body(), head, verifier, seal, upstream_digest, validity: None, caching: None })
    }

    /// Receives an answer's body into a temporary file of `store`, releasing to readers what
    /// is verified, and checks it whole.
    async fn receive(
        &self,
        store: &Store,
        a: &Attempt<'_>,
        answer: Answer,
        report: impl Fn(FillReport),
    ) -> Result<Received, FetchResult> {
        let Attempt { fill, number: attempt, from, kind, .. } = *a;
        let Answer { mut body, head, mut verifier, seal, upstream_digest, caching, validity } = answer;
        let size = head.size;
        let (temp, file) = store.temp_file().map_err(|e| self.io_failure(fill, &e))?;
        let file = Arc::new(file);
        let head = Arc::new(head);
        fill.set(attempt, State::Receiving { head: head.clone(), file: file.clone(), verified: 0 });
        // Removes the temp file on every way out but success, including the task being aborted
        // when the core cancels the fetch. Checked against a block list, the file may be
        // shared by the parts of a split: it lives as long as they may need it.
        let guard = match verifier.as_ref().and_then(Verifier::reference) {
            Some(list) => {
                let of = AttemptFile {
                    attempt,
                    head: head.clone(),
                    file: file.clone(),
                    list,
                    seal: seal.clone(),
                    temp: temp.clone(),
                    upstream_digest: upstream_digest.clone(),
                };
                let assembly = Arc::new(Assembly::new(of));
                fill.offer(assembly.clone());
                Keeper::Shared(assembly)
            }
            None => Keeper::Local(TempFile::new(temp.clone())),
        };
        // In a split fill: the lead's bytes verified and marked in the shared file so far, the
        // end of what it has written, and what it has received but not yet written.
        let mut marked = 0;
        let mut on_disk = 0u64;
        let mut held: Vec<u8> = Vec::new();
        let mut hasher = Hasher::default();
        let mut written = 0u64;
        let mut reported = std::time::Instant::now();
        // Readers may start once the first block is verified (the whole object if smaller).
        let mut announced = false;
        // A fill passing through frees what its readers are done with (see `keep_window`).
        let mut punched = 0;
        if size == 0 && verifier.is_some() {
            report(FillReport::Receiving { size });
            announced = true;
        }
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| FetchError::Broken)?;
            let Ok(mut data) = frame.into_data() else {
                continue; // trailers
            };
            // Split: the lead's range ends here; the bytes after it are other parts' to write.
            let limit = fill.lead_end();
            if let Some(limit) = limit {
                if written >= limit {
                    break;
                }
                data.truncate(usize::try_from(limit - written).unwrap_or(usize::MAX));
            }
            if written + data.len() as u64 > size {
                return Err(FetchError::Broken.into());
            }
            // Split, other parts write next to the lead's range (and may take it over): from
            // then on the lead writes only blocks already checked, as they do. Before, it
            // writes bytes as they come; readers see only what is checked either way.
            let split = limit.is_some() && matches!(guard, Keeper::Shared(_));
            if !split {
                // Page-cache writes are short; the fsync happens once, at commit, off the
                // runtime. Positional, so a write retried after the disk was full never
                // repeats bytes.
                if let Err(e) = file.write_all_at(&data, written) {
                    if e.kind() != std::io::ErrorKind::StorageFull {
                        return Err(self.io_failure(fill, &e).into());
                    }
                    punched = self.write_without_room(fill, &file, &data, written, punched, &report).await?;
                }
                on_disk = written + data.len() as u64;
            }
            hasher.update(&data);
            written += data.len() as u64;
            if kind == FetchKind::Origin {
                self.pace_fill(&fill.name.namespace, data.len() as u64).await;
            }
            if let Some(v) = &mut verifier {
                let verified = v.update(&data).map_err(|bad| {
                    tracing::error!(object = %fill.name, %from, block = bad.index, "block does not match the origin's block list: fill discarded");
                    FetchError::Broken
                })?;
                if split {
                    held.extend_from_slice(&data);
                    if verified > on_disk {
                        let n = (verified - on_disk) as usize;
                        if let Err(e) = file.write_all_at(&held[..n], on_disk) {
                            if e.kind() == std::io::ErrorKind::StorageFull {
                                report(FillReport::NoSpace);
                                return Err(FetchError::NoSpace.into());
                            }
                            return Err(self.io_failure(fill, &e).into());
                        }
                        held.drain(..n);
                        on_disk = verified;
                    }
                }
                let visible = match (&guard, limit) {
                    (Keeper::Shared(assembly), Some(_)) => {
                        assembly.set_lead_reached(verified);
                        let prefix = assembly.mark(marked, verified);
                        marked = verified;
                        prefix
                    }
                    _ => verified,
                };
                fill.set_verified(attempt, visible);
                if !announced && verified > 0 {
                    announced = true;
                    report(FillReport::Receiving { size });
                    continue;
                }
            }
            if let Some(window) = fill.passing() {
                punched = keep_window(fill, &file, written, punched, window).await;
            }
            if reported.elapsed() >= PROGRESS_EVERY {
                reported = std::time::Instant::now();
                report(match limit {
                    Some(_) => FillReport::PartProgress { part: 0, reached: marked },
                    None => FillReport::Progress,
                });
            }
        }
        if let (Some(limit), Keeper::Shared(assembly)) = (fill.lead_end(), &guard) {
            // The lead of a split fill: its range is done once verified to its end.
            let verified = verifier.as_ref().map_or(0, Verifier::verified);
            assembly.set_lead_reached(verified);
            fill.set_verified(attempt, assembly.mark(marked, verified));
            return if verified >= limit.min(size) { Ok(Received::LeadDone) } else { Err(FetchError::Broken.into()) };
        }
        if written != size {
            return Err(FetchError::Broken.into());
        }
        let digests = hasher.finish();
        if let Some(claimed) = upstream_digest
            && !digests.matches_header(&claimed)
        {
            tracing::error!(object = %fill.name, %from, %claimed, "checksum mismatch: fill discarded");
            return Err(FetchError::Broken.into());
        }
        let meta = ObjectMeta {
            namespace: fill.name.namespace.clone(),
            path: fill.name.path.clone(),
            size,
            etag: head.etag.clone(),
            last_modified: head.last_modified,
            digests,
            blocks: verifier.map(Verifier::into_list),
            seal,
            caching,
        };
        guard.keep();
        fill.set(attempt, State::Complete { head, file, meta: Arc::new(meta), temp });
        Ok(Received::Whole { size, validity })
    }

    /// The disk is full under a fill: the core makes it pass through (`FillReport::NoSpace`),
    /// and the write is retried as the bytes its readers are done with are freed. Gives up,
    /// with `FetchError::NoSpace` if no room comes within the core's `NO_ROOM_WAIT`.
    async fn write_without_room(
        &self,
        fill: &Fill,
        file: &std::fs::File,
        data: &[u8],
        at: u64,
        mut punched: u64,
        report: &impl Fn(FillReport),
    ) -> Result<u64, FetchError> {
        report(FillReport::NoSpace);
        let deadline = std::time::Instant::now() + std::time::Duration::from(reef_core::NO_ROOM_WAIT);
        loop {
            if let Some(window) = fill.passing() {
                punched = keep_window(fill, file, at, punched, window).await;
                match file.write_all_at(data, at) {
                    Ok(()) => return Ok(punched),
                    Err(e) if e.kind() == std::io::ErrorKind::StorageFull => {}
                    Err(e) => return Err(self.io_failure(fill, &e)),
                }
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                tracing::error!(object = %fill.name, "the disk is full: no room for the fill even passing through");
                return Err(FetchError::NoSpace);
            }
            // Readers moving on free bytes; otherwise look again when the wait is over.
            let _ = tokio::time::timeout(deadline - now, fill.reader_moved()).await;
        }
    }

    fn io_failure(&self, fill: &Fill, e: &std::io::Error) -> FetchError {
        tracing::error!(object = %fill.name, error = %e, "cannot write the fill");
        FetchError::Broken
    }
}

/// One attempt of a fetch: which fill, from where, and how the core asked.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub fill: &'a Fill,
    pub number: u32,
    pub from: NodeId,
    pub kind: FetchKind,
    /// How long the core waits on this attempt without progress (`Output::Fetch::patience`).
    pub patience: reef_core::Duration,
    pub source: Source,
    /// Where to ask for the origin's block list, in order: the namespace's origins, then the
    /// source itself (a federation member) when no origin answers.
    pub reference_from: &'a [NodeId],
    /// The namespace's origins: with TLS, a list must come from one or carry one's seal.
    pub origins: &'a [NodeId],
    /// Whether this node has the namespace private.
    pub private: bool,
    /// A revalidation: what is held here of the copy (the answer is `304` if it is current).
    pub held: Option<Held<'a>>,
    /// This node's block size (`policy.block_size`), for lists it records itself.
    pub block_size: u64,
}

/// A source's answer, before its body: what readers are told and how the bytes are checked.
struct Answer {
    body: hyper::body::Incoming,
    head: Head,
    /// Checks (or, for a third-party origin, records) the block list as bytes arrive; `None`:
    /// no list, bytes are released once the whole object is checked.
    verifier: Option<Verifier>,
    seal: Option<String>,
    /// The source's `Digest` header, checked once the object is whole.
    upstream_digest: Option<String>,
    validity: Option<Validity>,
    caching: Option<CachingFields>,
}

/// A block list an origin vouches for.
struct FetchedList {
    list: BlockList,
    etag: String,
    /// The origin's seal, kept with the object and handed on to other caches.
    seal: Option<String>,
}

/// What a running attempt tells the driver (which tells the core).
#[derive(Debug, Clone, Copy)]
pub enum FillReport {
    /// The source answered with `size` bytes and the first block is here.
    Receiving { size: u64 },
    /// Still receiving.
    Progress,
    /// A part of a split fill has verified its range up to `reached`.
    PartProgress { part: u32, reached: u64 },
    /// The disk is full: the core is asked to let the fill pass through.
    NoSpace,
}

impl Transport {
    /// A small GET to a configured peer (a director reading a cache's metrics): the body, if
    /// the peer answered `200` within 2 s and within `limit` bytes.
    pub async fn peer_get(&self, node: NodeId, path: &str, limit: usize) -> Option<Bytes> {
        let (status, _, body) = self.peer_request(node, http::Method::GET, path, &[], limit).await?;
        (status == StatusCode::OK).then_some(body)
    }

    /// A small request to a configured peer, as this node (`Reef-Peer`): the status, the
    /// content type and the body, if the peer answered within 2 s and `limit` bytes.
    pub async fn peer_request(
        &self,
        node: NodeId,
        method: http::Method,
        path: &str,
        headers: &[(&str, &str)],
        limit: usize,
    ) -> Option<(StatusCode, Option<String>, Bytes)> {
        let req = self.as_node(node, method, path, headers.iter().map(|&(k, v)| (k, v)))?;
        let read = async {
            let resp = self.client.request(req).await.ok()?;
            let status = resp.status();
            let kind = resp.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
            let body = Limited::new(resp.into_body(), limit).collect().await.ok()?.to_bytes();
            Some((status, kind, body))
        };
        tokio::time::timeout(std::time::Duration::from_secs(2), read).await.ok().flatten()
    }

    /// A `HEAD` of `path` at `node`, as this node, passing on `headers`: the status and the
    /// response's headers, or `None` if it did not answer within `within`.
    pub async fn peer_head<'a>(
        &self,
        node: NodeId,
        path: &str,
        headers: impl Iterator<Item = (&'a str, &'a str)>,
        within: std::time::Duration,
    ) -> Option<(StatusCode, HeaderMap)> {
        let (client, req) = match self.third_party.get(&node) {
            // (Its URLs hold the object's path without the namespace.)
            Some(origin) => {
                let within_namespace = path.trim_start_matches('/').split_once('/').map_or("", |(_, rest)| rest);
                let mut req = Request::head(format!("{}/{within_namespace}", origin.base));
                for (k, v) in headers {
                    req = req.header(k, v);
                }
                (&origin.client, req.body(Full::new(Bytes::new())).ok()?)
            }
            None => (&self.client, self.as_node(node, http::Method::HEAD, path, headers)?),
        };
        let resp = tokio::time::timeout(within, client.request(req)).await.ok()?.ok()?;
        Some((resp.status(), resp.headers().clone()))
    }

    /// A bodiless request to configured node `node`, marked as coming from this node.
    fn as_node<'a>(
        &self,
        node: NodeId,
        method: http::Method,
        path: &str,
        headers: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Option<Request<Full<Bytes>>> {
        let url = self.url_of(node)?;
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{url}{path}"))
            .header(REEF_PEER, self.me.0.to_string())
            .header(REEF_NODE_URL, &self.my_url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.body(Full::new(Bytes::new())).ok()
    }

    /// The block list of `path` from the first of `nodes` that has one the origin vouches for:
    /// without TLS any answer; with TLS one from an origin (authenticated by its certificate)
    /// or sealed by one.
    async fn block_list(
        &self,
        nodes: &[NodeId],
        origins: &[NodeId],
        name: &reef_core::ObjectName,
        path: &str,
    ) -> Option<FetchedList> {
        for &node in nodes {
            let Some(url) = self.url_of(node) else { continue };
            let Ok(req) = Request::get(format!("{url}{BLOCKS_PATH}{path}"))
                .header(REEF_PEER, self.me.0.to_string())
                .header(REEF_NODE_URL, &self.my_url)
                .body(Full::new(Bytes::new()))
            else {
                continue;
            };
            let answer = async {
                let resp = self.client.request(req).await.ok()?;
                let etag = resp.headers().get(http::header::ETAG)?.to_str().ok()?.to_string();
                let seal = resp.headers().get(REEF_SEAL).and_then(|v| v.to_str().ok()).map(str::to_string);
                if resp.status() != StatusCode::OK {
                    return None;
                }
                let body = Limited::new(resp.into_body(), MAX_LIST).collect().await.ok()?.to_bytes();
                match BlockList::decode(&body) {
                    Ok(list) => Some((list, etag, seal, body)),
                    Err(e) => {
                        tracing::warn!(%node, error = %e, "bad block list");
                        None
                    }
                }
            };
            let Ok(Some((list, etag, seal, raw))) =
                tokio::time::timeout(reef_core::BLOCK_LIST_TIMEOUT.into(), answer).await
            else {
                continue;
            };
            let Some(check) = &self.seals else {
                return Some(FetchedList { list, etag, seal });
            };
            let sealed = seal.as_deref().map(|s| check.verify(s, &name.namespace, &name.path, &etag, &raw, origins));
            match sealed {
                Some(Ok(_)) => return Some(FetchedList { list, etag, seal }),
                // From the origin itself over mutual TLS: vouched for by the channel.
                _ if origins.contains(&node) => return Some(FetchedList { list, etag, seal }),
                Some(Err(e)) => tracing::error!(object = %name, %node, error = %e, "a block list's seal does not hold"),
                None => {
                    tracing::warn!(object = %name, %node, "an unsealed block list from a node that is not an origin")
                }
            }
        }
        None
    }
}

/// For a fill passing through: frees the bytes every reader is done with (punching a hole in
/// the file, which keeps its size) and waits while the writer is more than `window` bytes
/// ahead of the slowest reader. Returns how far the file is freed.
async fn keep_window(fill: &Fill, file: &std::fs::File, written: u64, mut punched: u64, window: u64) -> u64 {
    use rustix::fs::{FallocateFlags, fallocate};
    loop {
        // Without readers nobody needs the bytes.
        let slowest = fill.slowest_reader().unwrap_or(written);
        // Only what is written can be freed: bytes written later below the reader are freed
        // on a later call.
        let release = slowest.min(written) / 4096 * 4096;
        if release > punched {
            let flags = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
            // Announced first: a reader checks it before and after each read.
            fill.set_freed(release);
            if let Err(e) = fallocate(file, flags, punched, release - punched) {
                tracing::warn!(object = %fill.name, error = %e, "cannot free the bytes of a fill passing through");
            }
            punched = release;
        }
        if written.saturating_sub(slowest) <= window {
            return punched;
        }
        fill.reader_moved().await;
    }
}

/// Largest block list accepted: 16 MiB of digests (512 K blocks).
const MAX_LIST: usize = 16 << 20;
/// The longest upstream `Cache-Status` handed on (a chain of a few dozen caches).
const MAX_UPSTREAM_STATUS: usize = 1024;

/// How often a fill tells the core it is still receiving (well under any sensible
/// `fetch_timeout`).
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Who removes an attempt's temporary file unless the object is kept.
enum Keeper {
    Local(TempFile),
    /// The file of a fill checked block by block, which the parts of a split may share.
    Shared(Arc<Assembly>),
}

impl Keeper {
    fn keep(self) {
        match self {
            Keeper::Local(guard) => guard.keep(),
            Keeper::Shared(assembly) => assembly.keep(),
        }
    }
}

/// How an attempt's body ended well.
enum Received {
    /// The whole object, verified.
    Whole { size: u64, validity: Option<Validity> },
    /// The lead of a split fill verified its range.
    LeadDone,
}

/// How an attempt ended, for the driver to tell the core.
#[derive(Debug)]
pub enum AttemptEnd {
    /// The fetch's result (`FetchDone`).
    Fetch(FetchResult),
    /// The fill was split and this attempt, its lead (part 0), ended its range: verified whole,
    /// or failed with the bytes up to `reached` verified (`PartDone`).
    Lead { result: Result<(), FetchError>, reached: u64 },
}
