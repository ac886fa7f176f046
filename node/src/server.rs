//! The HTTP front of a node: routes requests, turns each object request into a core request,
//! and answers with what the core decided (serve from the store, a fill or the export tree,
//! redirect, or fail). Also `/healthz`, `/metrics` and the peer message endpoint.

use crate::access_log::{AccessLog, Record};
use crate::auth::Denied;
use crate::auth::Tokens;
use crate::blocks::BLOCKS_PATH;
use crate::config::{Config, role_name};
use crate::driver::{Answer, Driver, ServeFrom};
use crate::fill::{Fill, FillWatch, Head, State};
use crate::hot_copies::HotCopy;
use crate::http::body::{self, Body, Checked, Content, Data, LostHook, OnFinish};
use crate::http::conditional::{self, Precondition, Validators};
use crate::http::connection::{self, AcceptBackoff, Activity, Limits, Watched};
use crate::http::digest::{self, Algorithm};
use crate::http::object_path::{self, ObjectPath};
use crate::http::pacing::Pacer;
use crate::http::range;
use crate::http::respond::{Representation, respond};
use crate::metrics::{Metrics, source_label};
use crate::nearline::{REEF_STAGING, Staged};
use crate::origin::{Exports, LIST_PATH, OriginError};
use crate::peer_transport::{
    MESSAGE_PATH, REEF_ACCESS, REEF_CHILD, REEF_FAILURE, REEF_NODE_URL, REEF_PATIENCE, REEF_PEER, Transport,
};
use crate::store::{ObjectMeta, Stamp, Store};
use crate::tls::seal::REEF_SEAL;
use crate::tls::{NodeTls, node_id_of};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, LOCATION, RANGE, RETRY_AFTER};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use reef_core::access::{self, Asker, Decision, Denial, Operation};
use reef_core::{Failure, NodeId, ObjectName, ObjectRef, RequestId, RequestKind, Role, Source};
use std::convert::Infallible;
use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Everything a request handler needs.
#[derive(Debug)]
pub struct App {
    pub config: Arc<Config>,
    pub driver: Driver,
    pub transport: Arc<Transport>,
    pub store: Option<Arc<Store>>,
    pub exports: Option<Exports>,
    pub metrics: Arc<Metrics>,
    pub log: Option<AccessLog>,
    /// With `[tls]`: the listener speaks TLS and nodes authenticate by certificate.
    pub tls: Option<NodeTls>,
    /// With `[[issuers]]`: bearer tokens are verified for private namespaces.
    pub tokens: Option<Tokens>,
    /// The objects requested most here (`/.reef/v1/top`).
    pub popular: crate::popularity::TopObjects,
    /// A director's view of its caches (`/.reef/v1/status`).
    pub views: Option<Arc<crate::status::Views>>,
    /// Listings a cache or a director got from origins (`PROPFIND`).
    pub listings: crate::webdav::Listings,
}

/// Accepts connections forever (HTTP/1.1 with keep-alive, or HTTP/2), within the node's
/// connection limits (see `http::connection`).
pub async fn serve(listener: TcpListener, app: Arc<App>) {
    let limits = app.config.connections;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut backoff = AcceptBackoff::default();
    let mut refused_logged: Option<Instant> = None;
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(x) => {
                backoff.succeeded();
                x
            }
            Err(e) => {
                backoff.failed(&e).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            app.metrics.add("reef_connections_refused_total", &[], 1.0);
            // One line per 10 s at most: a flood must not flood the log too.
            if refused_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                refused_logged = Some(Instant::now());
                tracing::warn!(
                    max_connections = limits.max_connections,
                    %client,
                    "connection limit reached: closing new connections (`node.max_connections`)"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let acceptor = app.tls.as_ref().map(|t| tokio_rustls::TlsAcceptor::from(t.server.clone()));
        tokio::spawn(async move {
            // A connection that never speaks holds a descriptor for nothing.
            if !connection::first_byte(&stream, limits.header_timeout).await {
                return;
            }
            match acceptor {
                None => serve_connection(app, stream, client, None, limits).await,
                Some(acceptor) => match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        // A certificate the federation CA issued to a node names it.
                        let node = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(node_id_of);
                        serve_connection(app, tls, client, node, limits).await;
                    }
                    Ok(Err(e)) => {
                        app.metrics.add("reef_tls_handshake_failures_total", &[], 1.0);
                        tracing::debug!(%client, error = %e, "TLS handshake failed");
                    }
                    Err(_) => tracing::debug!(%client, "TLS handshake timed out"),
                },
            }
            drop(slot);
        });
    }
}

/// Serves one connection; `node` is the federation node its certificate names, if any.
async fn serve_connection<S>(app: Arc<App>, stream: S, client: SocketAddr, node: Option<NodeId>, limits: Limits)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let watched = activity.clone();
    let service = service_fn(move |req| {
        let (app, in_flight) = (app.clone(), watched.request());
        async move {
            let head = req.method() == Method::HEAD;
            let mut response = app.handle(req, Peer { address: client, node }).await;
            // A HEAD answer has no body (HTTP/2 treats one as a protocol error); object
            // answers to HEAD come empty already, error texts are dropped here.
            if head && http_body::Body::size_hint(response.body()).lower() > 0 {
                *response.body_mut() = body::empty();
            }
            drop(in_flight);
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // Oversized request heads are refused (431) instead of buffered.
        .max_buf_size(64 * 1024);
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(256);
    let conn = builder.serve_connection(TokioIo::new(Watched::new(stream, activity.clone())), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let wait =
            if closing { limits.header_timeout } else { limits.idle_timeout.saturating_sub(activity.idle_for()) };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%client, error = %e, "connection ended");
                }
                return;
            }
            () = tokio::time::sleep(wait) => {
                if closing {
                    return; // the peer did not finish closing: drop it
                }
                if activity.idle_for() >= limits.idle_timeout {
                    tracing::debug!(%client, "idle connection closed");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// Per-request bookkeeping; finished exactly once, when the body is done or the answer is an
/// error: releases the core's pin, counts metrics and writes the access log line.
struct Finish {
    app: Arc<App>,
    request: Option<RequestId>,
    started: Instant,
    record: Record,
    source: Option<Source>,
}

impl OnFinish for Finish {
    fn finish(self: Box<Self>, status: u16, bytes: u64, complete: bool) {
        let Finish { app, request, started, mut record, source } = *self;
        if let Some(r) = request {
            app.driver.serve_done(r);
        }
        let seconds = started.elapsed().as_secs_f64();
        record.status = status;
        if status == 304 {
            record.outcome = "not_modified".into();
        }
        record.bytes = bytes;
        record.complete = complete;
        record.duration_ms = seconds * 1e3;
        let role = role_name(app.config.role);
        app.metrics.observe_request(role, &record.outcome, seconds);
        // Per namespace (a configured one only, so a client cannot invent label values).
        let namespace = record.object.strip_prefix('/').and_then(|p| p.split('/').next());
        if let Some(ns) = namespace.filter(|ns| app.config.namespace(ns).is_some()) {
            app.metrics.add("reef_namespace_requests_total", &[("namespace", ns), ("outcome", &record.outcome)], 1.0);
            app.metrics.add("reef_namespace_response_bytes_total", &[("namespace", ns)], bytes as f64);
        }
        if let Some(s) = source {
            app.metrics.add("reef_response_bytes_total", &[("source", source_label(s))], bytes as f64);
        }
        if let Some(site) = &record.site {
            app.metrics.add("reef_site_requests_total", &[("site", site)], 1.0);
        }
        if status < 400
            && app.config.role != Role::Director
            && namespace.is_some_and(|ns| app.config.namespace(ns).is_some())
        {
            app.popular.record(&record.object, bytes);
        }
        if let Some(log) = &app.log {
            log.write(&record);
        }
    }
}

pub(crate) fn text_response(status: StatusCode, reason: &str) -> Response<Body> {
    let body = format!("{reason}\n");
    let mut resp = Response::new(body::full(body.clone()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    resp
}

/// `value` as a JSON body.
pub(crate) fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let mut resp = text_response(status, &serde_json::to_string(value).unwrap_or_default());
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Adds `Retry-After`: whole seconds, rounded up (a retry then is admitted), at least one.
/// A child's patience (`Reef-Patience`, milliseconds; the core bounds what it makes of it);
/// a child that does not say waits as long as this node does.
fn child_patience(headers: &HeaderMap) -> Result<reef_core::Duration, (StatusCode, &'static str)> {
    let Some(v) = headers.get(REEF_PATIENCE) else {
        return Ok(reef_core::Duration(u64::MAX));
    };
    let ms: u64 = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or((StatusCode::BAD_REQUEST, "Reef-Patience must be a whole number of milliseconds"))?;
    Ok(reef_core::Duration::from_millis(ms.min(u64::MAX / 1_000_000)))
}

fn with_retry_after(mut resp: Response<Body>, retry_after: std::time::Duration) -> Response<Body> {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    resp
}

/// Who is at the other end of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub address: SocketAddr,
    /// The node its TLS certificate names (never taken from a header).
    pub node: Option<NodeId>,
}

fn source_text(source: Option<Source>) -> String {
    match source {
        None => "-".into(),
        Some(Source::Local) => "local".into(),
        Some(Source::Peer { node, .. }) => format!("peer:{node}"),
        Some(Source::Origin { node }) => format!("origin:{node}"),
    }
}

impl App {
    async fn handle(self: Arc<Self>, req: Request<Incoming>, client: Peer) -> Response<Body> {
        let path = req.uri().path();
        match (req.method(), path) {
            (&Method::GET, "/healthz") => text_response(
                StatusCode::OK,
                &format!(
                    "{{\"status\":\"ok\",\"id\":{},\"role\":\"{}\"}}",
                    self.config.id.0,
                    role_name(self.config.role)
                ),
            ),
            (&Method::GET, "/metrics") => {
                if let Some(store) = &self.store {
                    self.metrics.set("reef_memory_cache_bytes", &[], store.memory_used() as f64);
                }
                let mut resp = text_response(StatusCode::OK, self.metrics.render().trim_end());
                resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
                resp
            }
            (&Method::POST, MESSAGE_PATH) => self.on_message(req, client).await,
            (&Method::GET, crate::status::TOP_PATH) => {
                json_response(StatusCode::OK, &self.popular.top(crate::status::TOP_SHOWN))
            }
            (&Method::GET, p @ (crate::status::STATUS_PATH | crate::status::STATUS_JSON_PATH)) => {
                let Some(views) = &self.views else {
                    return text_response(StatusCode::NOT_FOUND, "the live view is a director's");
                };
                let federation = crate::status::federation(self.config.id, views.snapshot());
                let (body, kind) = if p == crate::status::STATUS_PATH {
                    (crate::status::html(&federation), "text/html; charset=utf-8")
                } else {
                    (serde_json::to_string(&federation).unwrap_or_default(), "application/json")
                };
                let mut resp = text_response(StatusCode::OK, &body);
                resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(kind));
                resp
            }
            (&Method::GET, p) if p.starts_with(BLOCKS_PATH) => {
                let p = p[BLOCKS_PATH.len()..].to_string();
                self.on_blocks(&p, req.headers(), client).await
            }
            (&Method::GET, p) if p.starts_with(LIST_PATH) => {
                let p = p[LIST_PATH.len()..].to_string();
                self.on_list(&p, req.headers(), client).await
            }
            (m, p) if crate::webdav::is_listing(m, p) => self.on_listing(req, client).await,
            (&Method::GET, crate::tape_api::WELL_KNOWN) => self.on_tape_discovery(),
            (_, p) if self.exports.is_some() && p.starts_with(crate::tape_api::API) => {
                self.on_tape_api(req, client).await
            }
            (&Method::GET | &Method::HEAD, _) => self.on_object(req, client).await,
            (&Method::PUT, _) => self.on_upload(req, client).await,
            _ => {
                let mut resp =
                    text_response(StatusCode::METHOD_NOT_ALLOWED, "only GET, HEAD, PUT and PROPFIND are served");
                resp.headers_mut().insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD, PUT, PROPFIND"));
                resp
            }
        }
    }

    /// The sending node named by the `marker` header, if any. With TLS the header must name
    /// the node the connection's certificate names (the header only says which kind of node
    /// request it is). Only the federation's nodes (the configured peers) are accepted: an
    /// unknown id is refused, never learnt.
    fn node_header(
        &self,
        headers: &HeaderMap,
        marker: &str,
        client: Peer,
    ) -> Result<Option<NodeId>, (StatusCode, &'static str)> {
        let Some(v) = headers.get(marker) else {
            return Ok(None);
        };
        let id = v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(NodeId)
            .ok_or((StatusCode::BAD_REQUEST, "Reef-Peer and Reef-Child must be node ids"))?;
        if self.tls.is_some() && client.node != Some(id) {
            self.metrics.add("reef_node_requests_refused_total", &[("reason", "identity")], 1.0);
            match client.node {
                Some(certified) => tracing::warn!(
                    claimed = id.0,
                    certificate = certified.0,
                    client = %client.address,
                    "refused a node request: the header names another node than the certificate"
                ),
                None => tracing::warn!(
                    claimed = id.0,
                    client = %client.address,
                    "refused a node request without a node certificate"
                ),
            }
            return Err((StatusCode::FORBIDDEN, "a node request must come with that node's certificate (mutual TLS)"));
        }
        if id == self.config.id {
            // Another node configured with this node's id: refuse it, loudly.
            let url = headers.get(REEF_NODE_URL).and_then(|v| v.to_str().ok()).unwrap_or("an unknown address");
            tracing::error!(
                id = id.0,
                from = url,
                "another node uses this node's id; refusing it (node ids must be unique)"
            );
            return Err((StatusCode::CONFLICT, "the sender claims this node's id; node ids must be unique"));
        }
        if self.config.peer(id).is_none() {
            self.metrics.add("reef_node_requests_refused_total", &[("reason", "unknown_node")], 1.0);
            tracing::warn!(id = id.0, client = %client.address, "refused a node that is not in this federation's peers");
            return Err((StatusCode::FORBIDDEN, "unknown node id: not one of this node's peers"));
        }
        Ok(Some(id))
    }

    /// Whether the asker may read `path`: the core decides (`reef_core::access`) from the
    /// token's verified claims or the authenticated node. Tokens are verified only for a
    /// private namespace, so public ones cost nothing.
    pub(crate) async fn authorise(
        &self,
        headers: &HeaderMap,
        kind: RequestKind,
        namespace: reef_core::NamespaceId,
        path: &ObjectPath,
        operation: Operation,
    ) -> Result<(), Denied> {
        let rules = &self.config.namespaces[usize::from(namespace.0)].access;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // Built only when a rule needs it: a public read costs no allocation.
        let scoped = || format!("/{}", path.segments.join("/"));
        let (claims, skew) = match kind {
            RequestKind::Peer { from } | RequestKind::Child { from, .. } => {
                let d = access::decide(now, 0, rules, &scoped(), operation, Asker::Node(from));
                return self.verdict(d, None);
            }
            RequestKind::Client if !rules.private && operation == Operation::Read => return Ok(()),
            RequestKind::Client => match (crate::auth::bearer(headers), &self.tokens) {
                (None, _) => (None, 0),
                (Some(_), None) => return self.verdict(Decision::Deny(Denial::UnknownIssuer), None),
                (Some(Err(e)), _) => return self.verdict(Decision::Deny(e.denial()), Some(e.to_string())),
                (Some(Ok(token)), Some(tokens)) => match tokens.verify(token, now).await {
                    Ok(claims) => {
                        let skew =
                            tokens.issuer(&claims.issuer).map_or(0, |i| i.clock_skew.0.as_nanos() / 1_000_000_000);
                        (Some(claims), skew)
                    }
                    Err(e) => return self.verdict(Decision::Deny(e.denial()), Some(e.to_string())),
                },
            },
        };
        self.verdict(access::decide(now, skew, rules, &scoped(), operation, Asker::Client(claims.as_ref())), None)
    }

    fn verdict(&self, decision: Decision, detail: Option<String>) -> Result<(), Denied> {
        match decision {
            Decision::Allow { .. } => Ok(()),
            Decision::Deny(denial) => {
                self.metrics.add("reef_requests_denied_total", &[("reason", denial.name())], 1.0);
                tracing::info!(reason = denial.name(), detail = detail.as_deref().unwrap_or(""), "request denied");
                Err(Denied { denial, detail })
            }
        }
    }

    pub(crate) fn request_kind(
        &self,
        headers: &HeaderMap,
        client: Peer,
    ) -> Result<RequestKind, (StatusCode, &'static str)> {
        if let Some(from) = self.node_header(headers, REEF_PEER, client)? {
            return Ok(RequestKind::Peer { from });
        }
        Ok(match self.node_header(headers, REEF_CHILD, client)? {
            Some(from) => RequestKind::Child { from, patience: child_patience(headers)? },
            None => RequestKind::Client,
        })
    }

    /// The block list of an object: an origin's from its export (computed once per version),
    /// a cache's from its store (when it holds the object), with the object's ETag.
    async fn on_blocks(self: Arc<Self>, object: &str, headers: &HeaderMap, client: Peer) -> Response<Body> {
        let Ok(path) = object_path::parse(object) else {
            return text_response(StatusCode::BAD_REQUEST, "bad object path");
        };
        // A block list tells an object's size: it is guarded like the object.
        if let Some(ns) = self.config.namespace(&path.namespace) {
            let kind = match self.request_kind(headers, client) {
                Ok(kind) => kind,
                Err((status, e)) => return text_response(status, e),
            };
            if let Err(denied) = self.authorise(headers, kind, ns, &path, Operation::Read).await {
                return denied.response();
            }
        }
        let found = match self.config.role {
            Role::Origin => match self.exports.as_ref() {
                Some(exports) => match self.config.namespace(&path.namespace) {
                    Some(ns) => match exports.open(ns, &path.segments).await {
                        Ok(exported) => exports.blocks(&exported).await.ok().map(|b| {
                            let (list, etag) = (b.encode(), exported.validators.etag.clone());
                            // An origin with a node certificate seals what it publishes.
                            let seal =
                                self.tls.as_ref().and_then(|t| t.seal(&path.namespace, &path.name(), &etag, &list));
                            (list, etag, seal)
                        }),
                        Err(_) => None,
                    },
                    None => None,
                },
                None => None,
            },
            _ => {
                let id = ObjectName::new(path.namespace.clone(), path.name()).id();
                let meta = self.store.as_ref().and_then(|s| s.meta(id));
                meta.and_then(|m| Some((m.blocks.as_ref()?.encode(), m.etag.clone(), m.seal.clone())))
            }
        };
        let Some((list, etag, seal)) = found else {
            return text_response(StatusCode::NOT_FOUND, "no block list for this object here");
        };
        let mut resp = Response::new(body::full(list));
        resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        if let Ok(v) = HeaderValue::from_str(&etag) {
            resp.headers_mut().insert(http::header::ETAG, v);
        }
        if let Some(v) = seal.and_then(|s| HeaderValue::from_str(&s).ok()) {
            resp.headers_mut().insert(REEF_SEAL, v);
        }
        resp
    }

    /// A directory listing of an origin's export (JSON: `{"entries": [ListEntry...]}`),
    /// guarded like a read of the directory's path.
    async fn on_list(self: Arc<Self>, dir: &str, headers: &HeaderMap, client: Peer) -> Response<Body> {
        let Ok(path) = object_path::parse_dir(dir) else {
            return text_response(StatusCode::BAD_REQUEST, "bad directory path");
        };
        let (Some(exports), Some(ns)) = (&self.exports, self.config.namespace(&path.namespace)) else {
            return text_response(StatusCode::NOT_FOUND, "listings are served by the namespace's origins");
        };
        let kind = match self.request_kind(headers, client) {
            Ok(kind) => kind,
            Err((status, e)) => return text_response(status, e),
        };
        if let Err(denied) = self.authorise(headers, kind, ns, &path, Operation::Read).await {
            return denied.response();
        }
        match exports.list(ns, &path.segments).await {
            Ok(entries) => {
                let body = serde_json::json!({ "entries": entries }).to_string();
                let mut resp = Response::new(body::full(body));
                resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                resp
            }
            Err(OriginError::NotFound) => text_response(StatusCode::NOT_FOUND, "no such directory"),
            Err(OriginError::Forbidden) => text_response(StatusCode::FORBIDDEN, "outside the export"),
            Err(e) => text_response(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:?}")),
        }
    }

    async fn on_message(self: Arc<Self>, req: Request<Incoming>, client: Peer) -> Response<Body> {
        let (parts, body) = req.into_parts();
        // The (bounded) body is read before any answer: an HTTP/2 client whose request body is
        // cut off by an early refusal sees a stream error instead of the refusal.
        let Ok(bytes) = Limited::new(body, 1 << 20).collect().await else {
            return text_response(StatusCode::PAYLOAD_TOO_LARGE, "message body too large or broken");
        };
        let from = match self.node_header(&parts.headers, REEF_PEER, client) {
            Ok(Some(from)) => from,
            Ok(None) => return text_response(StatusCode::BAD_REQUEST, "missing Reef-Peer"),
            Err((status, e)) => return text_response(status, e),
        };
        match serde_json::from_slice(&bytes.to_bytes()) {
            Ok(msg) => {
                self.driver.message(from, msg);
                let mut resp = Response::new(body::empty());
                *resp.status_mut() = StatusCode::NO_CONTENT;
                resp
            }
            Err(e) => text_response(StatusCode::BAD_REQUEST, &format!("bad message: {e}")),
        }
    }

    async fn on_object(self: Arc<Self>, req: Request<Incoming>, peer: Peer) -> Response<Body> {
        let client = peer.address;
        let (parts, _) = req.into_parts();
        let mut finish = Box::new(Finish {
            app: self.clone(),
            request: None,
            started: Instant::now(),
            record: Record {
                time: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
                client: client.to_string(),
                site: None,
                method: parts.method.to_string(),
                object: parts.uri.path().chars().take(1024).collect(),
                object_id: None,
                range: parts
                    .headers
                    .get(http::header::RANGE)
                    .and_then(|v| v.to_str().ok())
                    .map(|s| s.chars().take(256).collect()),
                bytes: 0,
                size: None,
                status: 0,
                outcome: String::new(),
                source: "-".into(),
                duration_ms: 0.0,
                complete: false,
            },
            source: None,
        });
        let fail = |mut finish: Box<Finish>, status: StatusCode, outcome: &str, reason: &str| {
            finish.record.outcome = outcome.into();
            finish.finish(status.as_u16(), 0, true);
            text_response(status, reason)
        };
        // A failure the core decided is named (`Reef-Failure`), so that the asking core or
        // client learns it (see `Failure::fetch_error`, `Failure::client_retries`).
        let failed = |finish: Box<Finish>, failure: Failure| {
            let (status, reason) = failure_status(failure);
            let mut resp = fail(finish, status, failure.name(), reason);
            resp.headers_mut().insert(REEF_FAILURE, HeaderValue::from_static(failure.name()));
            resp
        };

        let path = match object_path::parse(parts.uri.path()) {
            Ok(p) => p,
            Err(e) => return fail(finish, StatusCode::BAD_REQUEST, "bad_request", &e.to_string()),
        };
        let Some(namespace) = self.config.namespace(&path.namespace) else {
            return fail(finish, StatusCode::NOT_FOUND, "not_found", "no such namespace");
        };
        let kind = match self.request_kind(&parts.headers, peer) {
            Ok(kind) => kind,
            Err((status, e)) => return fail(finish, status, "refused_peer", e),
        };
        // Before anything that reveals the object, even whether it exists.
        if let Err(denied) = self.authorise(&parts.headers, kind, namespace, &path, Operation::Read).await {
            finish.record.outcome = format!("denied_{}", denied.denial.name());
            finish.finish(denied.denial.status(), 0, true);
            return denied.response();
        }
        let site = match query_param(parts.uri.query(), "site") {
            Some(name) => match self.config.site_named(&name) {
                Some(s) => Some(s),
                None => {
                    return fail(finish, StatusCode::BAD_REQUEST, "bad_request", "unknown site parameter");
                }
            },
            None => self.config.site_of_address(client.ip()),
        };
        finish.record.site = site.and_then(|s| self.config.site_name(s)).map(str::to_string);
        let name = ObjectName::new(path.namespace.clone(), path.name());
        let id = name.id();
        finish.record.object_id = Some(id.to_string());
        let object = ObjectRef { id, namespace, size: None };
        let wanted =
            parts.headers.get("want-digest").and_then(|v| v.to_str().ok()).map(digest::wanted).unwrap_or_default();
        // A stored object the store cannot produce intact is reported lost (the core drops it)
        // and the request asked again, once: it then fetches the object afresh.
        let mut retried = false;
        // An egress limit charges what the client will read: nothing for a HEAD, a range's length
        // (the whole object if `If-Range` may turn the range into a full response).
        let length = if parts.method == Method::HEAD {
            Some(0)
        } else if parts.headers.contains_key(http::header::IF_RANGE) {
            None
        } else {
            range::most_bytes(parts.headers.get(RANGE).and_then(|v| v.to_str().ok()))
        };
        loop {
            let head = parts.method == Method::HEAD;
            let (request, mut answers) = self.driver.request(object, name.clone(), kind, site, length, head);
            finish.request = Some(request);
            let Some(answer) = answers.recv().await else {
                return fail(finish, StatusCode::INTERNAL_SERVER_ERROR, "internal", "the node is shutting down");
            };
            return match answer {
                Answer::Stream { source, fill, reader, pacer } => {
                    wait_for_start(pacer).await;
                    // A client that wants a checksum up front gets the verified object (unless
                    // it passes through and is never whole here); the others stream from the
                    // fill as its blocks are verified.
                    let rep = if wanted.is_empty() || fill.passing().is_some() {
                        fill.head(reader).await.map(|(head, file, watch)| filling_representation(&head, file, watch))
                    } else {
                        fill.complete().await.map(|(file, meta)| complete_representation(file, &meta, None))
                    };
                    let upstream = upstream_status(&fill);
                    match rep {
                        Some(rep) => {
                            self.represent(&parts, rep, &wanted, Via { source, upstream, pacer }, "miss", finish)
                        }
                        // The fill broke before its first verified block.
                        None => failed(finish, Failure::AllSourcesDown),
                    }
                }
                Answer::Redirect { to } => self.redirect(&parts, to, finish),
                Answer::Describe { origin, within } => match self.describe(&parts, origin, within).await {
                    Ok(resp) => {
                        finish.source = Some(Source::Origin { node: origin });
                        finish.record.source = source_text(finish.source);
                        finish.record.outcome = "described".into();
                        finish.finish(resp.status().as_u16(), 0, true);
                        resp
                    }
                    Err(reached) => {
                        if !reached {
                            self.driver.peer_unreachable(origin);
                        }
                        failed(finish, Failure::AllSourcesDown)
                    }
                },
                Answer::Fail { failure } => failed(finish, failure),
                Answer::Staging { retry_after } => {
                    staging_response(fail(finish, StatusCode::SERVICE_UNAVAILABLE, "staging", "staging"), retry_after)
                }
                Answer::Throttled { retry_after } => with_retry_after(failed(finish, Failure::Throttled), retry_after),
                Answer::Serve { source, from, pacer } => {
                    wait_for_start(pacer).await;
                    let upstream = match &from {
                        ServeFrom::Fill(fill) => upstream_status(fill),
                        ServeFrom::Store => None,
                    };
                    let opened = match (from, self.config.role) {
                        (ServeFrom::Fill(fill), _) => complete_fill(&fill).ok_or(OriginError::NotFound),
                        (ServeFrom::Store, Role::Origin) => {
                            let read = (parts.method != Method::HEAD).then_some(&parts.headers);
                            self.exported(&path, &wanted, read).await
                        }
                        (ServeFrom::Store, _) => self.stored(id).await,
                    };
                    let outcome = match (source, self.config.role) {
                        (_, Role::Origin) => "served",
                        (Source::Local, _) => "hit",
                        _ => "miss",
                    };
                    match opened {
                        Ok(rep) => {
                            self.represent(&parts, rep, &wanted, Via { source, upstream, pacer }, outcome, finish)
                        }
                        Err(OriginError::Lost(why)) if !retried => {
                            tracing::warn!(object = %parts.uri.path(), %why, "stored object lost: fetching it again");
                            self.metrics.add("reef_store_lost_total", &[], 1.0);
                            self.driver.serve_done(request);
                            finish.request = None;
                            self.driver.lost(id);
                            retried = true;
                            continue;
                        }
                        Err(OriginError::NotFound) => {
                            fail(finish, StatusCode::NOT_FOUND, "not_found", "no such object")
                        }
                        Err(OriginError::Staging { retry_after, started }) => {
                            if started {
                                self.metrics.add("reef_staging_started_total", &[], 1.0);
                            }
                            self.metrics.add("reef_staging_answers_total", &[], 1.0);
                            if let Some(exports) = &self.exports {
                                let staging = exports.nearline.in_progress(std::time::Instant::now());
                                self.metrics.set("reef_staging_files", &[], staging as f64);
                            }
                            staging_response(
                                fail(finish, StatusCode::SERVICE_UNAVAILABLE, "staging", "staging"),
                                retry_after,
                            )
                        }
                        Err(OriginError::Forbidden) => {
                            fail(finish, StatusCode::FORBIDDEN, "forbidden", "not a regular file inside the export")
                        }
                        Err(OriginError::Io(e) | OriginError::Lost(e)) => {
                            tracing::error!(object = %parts.uri.path(), error = %e, "cannot read object");
                            fail(finish, StatusCode::INTERNAL_SERVER_ERROR, "io_error", "cannot read the object")
                        }
                    }
                }
            };
        }
    }

    fn represent(
        &self,
        parts: &http::request::Parts,
        rep: Representation,
        wanted: &[Algorithm],
        via: Via,
        outcome: &str,
        mut finish: Box<Finish>,
    ) -> Response<Body> {
        let Via { source, upstream, pacer } = via;
        let mut extra = HeaderMap::new();
        // Only answers to other nodes are marked (the path is parsed again for those alone).
        let to_node = parts.headers.contains_key(REEF_PEER) || parts.headers.contains_key(REEF_CHILD);
        let private = to_node
            && object_path::parse(parts.uri.path())
                .ok()
                .and_then(|p| self.config.namespace(&p.namespace))
                .is_some_and(|ns| self.config.namespaces[usize::from(ns.0)].access.private);
        if private {
            extra.insert(REEF_ACCESS, HeaderValue::from_static("private"));
        }
        if self.config.role != Role::Origin {
            let me = self.config.id;
            let mine = match source {
                Source::Local => format!("reef-{me}; hit"),
                Source::Peer { node, .. } => format!("reef-{me}; fwd=miss; detail=peer-{node}"),
                Source::Origin { node } => format!("reef-{me}; fwd=miss; detail=origin-{node}"),
            };
            // RFC 9211: the caches the bytes passed, the one nearest the origin first.
            let status = match upstream {
                Some(up) if source != Source::Local => format!("{up}, {mine}"),
                _ => mine,
            };
            // A peer's part passed `to_str` (visible ASCII), a subset of what a value may hold.
            extra.insert("cache-status", HeaderValue::from_str(&status).expect("visible ASCII"));
        }
        finish.source = Some(source);
        finish.record.source = source_text(Some(source));
        finish.record.size = Some(rep.size);
        finish.record.outcome = outcome.into();
        respond(&parts.method, &parts.headers, rep, wanted, extra, pacer, finish)
    }

    /// The origin's answer to a `HEAD` for an object this cache does not hold (the core's
    /// `Describe`): its status and representation headers, marked as a miss that moved no data.
    /// `Err(reached)` if there is none to pass on: no answer within `within` (`false`: the core
    /// hears the origin is unreachable) or a server error (`true`).
    async fn describe(
        &self,
        parts: &http::request::Parts,
        origin: NodeId,
        within: Duration,
    ) -> Result<Response<Body>, bool> {
        let asked = DESCRIBE_ASKS.iter().filter_map(|&h| Some((h, parts.headers.get(h)?.to_str().ok()?)));
        let answer = self.transport.peer_head(origin, parts.uri.path(), asked, within).await;
        let (status, headers) = answer.ok_or(false)?;
        if status.is_server_error() {
            return Err(true);
        }
        let mut resp = Response::new(body::empty());
        *resp.status_mut() = status;
        for &name in DESCRIBE_ANSWERS {
            for v in headers.get_all(name) {
                resp.headers_mut().append(name, v.clone());
            }
        }
        let status = format!("reef-{}; fwd=miss; detail=origin-{origin}-metadata", self.config.id);
        resp.headers_mut().insert("cache-status", HeaderValue::from_str(&status).expect("ASCII"));
        Ok(resp)
    }

    fn redirect(&self, parts: &http::request::Parts, to: NodeId, mut finish: Box<Finish>) -> Response<Body> {
        let Some(base) = self.transport.url_of(to) else {
            finish.record.outcome = "no_cache".into();
            finish.finish(503, 0, true);
            return text_response(StatusCode::SERVICE_UNAVAILABLE, "no address for the chosen cache");
        };
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let location = format!("{base}{target}");
        finish.record.outcome = "redirect".into();
        finish.record.source = format!("cache:{to}");
        finish.finish(302, 0, true);
        let mut resp = text_response(StatusCode::FOUND, &location);
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(LOCATION, v);
        }
        resp
    }

    /// An exported file; `read`: the headers of a request for its bytes, which must wait while
    /// a nearline file is staged (a `HEAD` does not, nor a conditional request answered 304 or
    /// 412).
    async fn exported(
        &self,
        path: &ObjectPath,
        wanted: &[Algorithm],
        read: Option<&HeaderMap>,
    ) -> Result<Representation, OriginError> {
        let exports = self.exports.as_ref().ok_or(OriginError::NotFound)?;
        let namespace = self.config.namespace(&path.namespace).ok_or(OriginError::NotFound)?;
        let exported = exports.open(namespace, &path.segments).await?;
        let needs_bytes = read.is_some_and(|h| conditional::evaluate(h, &exported.validators) == Precondition::Proceed);
        if needs_bytes
            && let Staged::Staging { retry_after, started } =
                exports.nearline.read(namespace, &path.name(), std::time::Instant::now())
        {
            return Err(OriginError::Staging { retry_after, started });
        }
        let digests = if wanted.is_empty() {
            None
        } else {
            Some(exports.digests(&exported).await.map_err(|e| OriginError::Io(e.to_string()))?.as_ref().clone())
        };
        Ok(Representation {
            content: Content { data: Data::File(exported.file.clone()), filling: None, checked: None },
            size: exported.size,
            validators: exported.validators.clone(),
            digests,
        })
    }

    /// Opens a stored object. A missing or truncated file is `Lost`. A file changed since all
    /// its blocks were last checked is checked again: a one-block object before any byte is
    /// sent (a bad one is `Lost`, and the request fetches it afresh), larger ones block by
    /// block as they are sent (a bad block aborts the response and reports the object lost).
    /// The store is a local disk: its opens run inline; reads go to the blocking pool.
    async fn stored(&self, id: reef_core::ObjectId) -> Result<Representation, OriginError> {
        let store = self.store.clone().ok_or(OriginError::NotFound)?;
        if let Some(copy) = store.hot_copy(id) {
            return Ok(memory_representation(copy));
        }
        let (file, meta, stamp) = store.open_object(id).map_err(|e| OriginError::Lost(e.to_string()))?;
        let file = Arc::new(file);
        let unchecked = meta.blocks.is_some() && !store.still_checked(id, stamp);
        if unchecked && meta.blocks.as_ref().is_some_and(|b| b.hashes.len() == 1) {
            let (f, m) = (file.clone(), meta.clone());
            let read = tokio::task::spawn_blocking(move || {
                let stamp = Stamp::of(&f)?;
                m.blocks.as_ref().expect("checked above").read_checked(&f, 0).map(|bytes| (bytes, stamp))
            });
            let read = read.await.map_err(|e| OriginError::Io(e.to_string()))?;
            let (bytes, stamp) = read.map_err(|e| OriginError::Lost(e.to_string()))?;
            store.mark_checked(id, stamp);
            if store.keeps_hot(meta.size) {
                return Ok(keep_hot(&store, id, meta, bytes.into(), stamp));
            }
            return Ok(complete_representation(file, &meta, None));
        }
        if !unchecked && store.keeps_hot(meta.size) {
            // (What the body would read at once anyway: a small object is one read.)
            let mut bytes = vec![0; meta.size as usize];
            std::os::unix::fs::FileExt::read_exact_at(&*file, &mut bytes, 0)
                .map_err(|e| OriginError::Lost(e.to_string()))?;
            return Ok(keep_hot(&store, id, meta, bytes.into(), stamp));
        }
        let lost = unchecked.then(|| {
            let driver = self.driver.clone();
            Arc::new(move || driver.lost(id)) as LostHook
        });
        Ok(complete_representation(file, &meta, lost))
    }
}

/// Keeps the verified `bytes` of a small stored object in memory, and represents them.
fn keep_hot(
    store: &Store,
    id: reef_core::ObjectId,
    meta: Arc<ObjectMeta>,
    bytes: bytes::Bytes,
    stamp: Stamp,
) -> Representation {
    let copy = HotCopy { meta, bytes, stamp };
    store.keep_hot(id, copy.clone());
    memory_representation(copy)
}

/// A small stored object's verified copy, served from memory.
fn memory_representation(copy: HotCopy) -> Representation {
    complete_representation_of(Data::Memory(copy.bytes), &copy.meta)
}

/// A complete object; with `lost`, its blocks are checked as they are sent.
fn complete_representation(file: Arc<File>, meta: &ObjectMeta, lost: Option<LostHook>) -> Representation {
    let mut rep = complete_representation_of(Data::File(file), meta);
    rep.content.checked = lost.and_then(|lost| Some(Checked { blocks: Arc::new(meta.blocks.clone()?), lost }));
    rep
}

fn complete_representation_of(data: Data, meta: &ObjectMeta) -> Representation {
    Representation {
        content: Content { data, filling: None, checked: None },
        size: meta.size,
        validators: Validators {
            etag: meta.etag.clone(),
            last_modified: meta.last_modified.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        },
        digests: Some(meta.digests.clone()),
    }
}

/// Where a response's bytes came from, and the `Cache-Status` of the cache that sent them here.
struct Via {
    source: Source,
    upstream: Option<String>,
    /// The namespace's egress pace for the body, if limited.
    pacer: Option<Pacer>,
}

/// The `Cache-Status` the fill's source sent, if it is a cache.
fn upstream_status(fill: &Fill) -> Option<String> {
    match fill.snapshot().state {
        State::Receiving { head, .. } | State::Complete { head, .. } => head.upstream_status.clone(),
        _ => None,
    }
}

fn complete_fill(fill: &Fill) -> Option<Representation> {
    match fill.snapshot().state {
        State::Complete { file, meta, .. } => Some(complete_representation(file, &meta, None)),
        _ => None,
    }
}

fn filling_representation(head: &Head, file: Arc<File>, watch: FillWatch) -> Representation {
    Representation {
        content: Content { data: Data::File(file), filling: Some(watch), checked: None },
        size: head.size,
        validators: Validators {
            etag: head.etag.clone(),
            last_modified: head.last_modified.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        },
        digests: None,
    }
}

fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned())
    })
}

/// The HTTP status and reason phrase of a core failure.
pub fn failure_status(failure: Failure) -> (StatusCode, &'static str) {
    match failure {
        Failure::NotFound => (StatusCode::NOT_FOUND, "no such object"),
        Failure::AllSourcesDown => (StatusCode::BAD_GATEWAY, "every source failed"),
        Failure::Unauthorized => (StatusCode::FORBIDDEN, "not authorized for this namespace"),
        Failure::NotCached => (StatusCode::NOT_FOUND, "not cached here"),
        Failure::NoOrigin => (StatusCode::BAD_GATEWAY, "no origin for this namespace"),
        Failure::NoSpace => (StatusCode::INSUFFICIENT_STORAGE, "the cache is out of disk space"),
        Failure::Throttled => (StatusCode::SERVICE_UNAVAILABLE, "the namespace's egress limit is reached"),
    }
}

/// The request headers a metadata-only `HEAD` passes on to the origin: what decides its answer.
const DESCRIBE_ASKS: &[&str] =
    &["want-digest", "range", "if-range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since"];
/// The origin's answer headers a described `HEAD` passes back: the representation's.
const DESCRIBE_ANSWERS: &[&str] = &[
    "content-length",
    "content-type",
    "content-range",
    "accept-ranges",
    "etag",
    "last-modified",
    "digest",
    "repr-digest",
    REEF_FAILURE,
];

/// A response held back by its namespace's egress limit starts when the core said.
/// Marks `resp` (a 503) as "staging upstream: ask again after `retry_after`" (whole seconds,
/// rounded up, at least one).
fn staging_response(resp: Response<Body>, retry_after: std::time::Duration) -> Response<Body> {
    let mut resp = with_retry_after(resp, retry_after);
    resp.headers_mut().insert(REEF_STAGING, HeaderValue::from_static("staging"));
    resp
}

async fn wait_for_start(pacer: Option<Pacer>) {
    if let Some(p) = pacer {
        tokio::time::sleep_until(p.start()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer_transport::fetch_error;

    #[test]
    fn a_failure_reaches_the_asking_core_as_the_contract_says() {
        for failure in Failure::ALL {
            let (status, _) = failure_status(failure);
            assert_eq!(fetch_error(status, Some(failure.name())), failure.fetch_error(), "{failure:?}");
        }
        // A server that is not a Reef node is read by its status alone.
        assert_eq!(fetch_error(StatusCode::NOT_FOUND, None), reef_core::FetchError::NotFound);
        assert_eq!(fetch_error(StatusCode::SERVICE_UNAVAILABLE, Some("bogus")), reef_core::FetchError::Refused);
    }
}
