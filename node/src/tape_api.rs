//! The WLCG tape REST API (v1) of an origin with nearline namespaces: what FTS and
//! `gfal-bringonline` speak to bring files online ahead of reading them.
//!
//! - `GET /.well-known/wlcg-tape-rest-api`: where the API is (`endpoints`, version `v1`).
//! - `POST /api/v1/stage` with `{"files": [{"path": "/ns/file"}, ...]}`: starts staging each
//!   file (`crate::nearline`), answers `201` with `{"requestId": ...}`.
//! - `GET /api/v1/stage/ID`: each file's `state` (`STARTED`, `COMPLETED`) and `onDisk`, or its
//!   `error`.
//! - `POST /api/v1/stage/ID/cancel`, `DELETE /api/v1/stage/ID`, `POST /api/v1/release/ID`:
//!   accepted; a staged file stays online (the emulation has no disk pins to drop).
//! - `POST /api/v1/archiveinfo` with `{"paths": [...]}`: each file's `locality` (`TAPE`,
//!   `DISK_AND_TAPE` once staged, `DISK` outside nearline namespaces) or its `error`.
//!
//! Each path is checked as a read of the file would be (namespace, export, access decision):
//! staging a private file needs a token that may read it.

use crate::http::body::Body;
use crate::http::object_path;
use crate::origin::{Exports, OriginError};
use crate::server::{App, Peer, json_response as json, text_response};
use http::header::{HeaderValue, LOCATION};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use reef_core::access::Operation;
use reef_core::{NamespaceId, RequestKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub const WELL_KNOWN: &str = "/.well-known/wlcg-tape-rest-api";
pub const API: &str = "/api/v1/";
/// Files in one stage or archiveinfo request, the longest path taken, and the files of all
/// stage requests remembered (the oldest requests are forgotten first): what an anonymous
/// client can make the origin hold is bounded.
pub const MAX_FILES: usize = 1000;
const MAX_PATH: usize = 4096;
const MAX_REMEMBERED_FILES: usize = 100_000;

#[derive(Debug, Deserialize)]
struct StageBody {
    files: Vec<StageFile>,
}

#[derive(Debug, Deserialize)]
struct StageFile {
    path: String,
}

#[derive(Debug, Deserialize)]
struct PathsBody {
    paths: Vec<String>,
}

/// One file of a stage request, as `GET /stage/ID` shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FileStatus {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    #[serde(rename = "onDisk", skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A file of a stage request as checked: its namespace and object name (what the nearline
/// state is kept by), or why it cannot be staged.
type Checked = Result<(NamespaceId, String), String>;

/// What a stage request asked for: each file's path, as checked.
#[derive(Debug, Clone)]
pub struct StageRequest {
    pub created_at: u64,
    pub files: Vec<(String, Checked)>,
}

/// The stage requests this origin remembers, by id (oldest forgotten first, see
/// `MAX_REMEMBERED_FILES`). An id is a keyed hash of a counter under a key drawn at start, so
/// it cannot be guessed: it is what lets its holder see, cancel or delete the request.
#[derive(Debug, Default)]
pub struct StageRequests {
    key: std::collections::hash_map::RandomState,
    inner: Mutex<Remembered>,
}

#[derive(Debug, Default)]
struct Remembered {
    issued: u64,
    files: usize,
    by_id: BTreeMap<String, StageRequest>,
    order: VecDeque<String>,
}

impl StageRequests {
    pub fn add(&self, request: StageRequest) -> String {
        use std::hash::BuildHasher;
        let mut r = self.inner.lock().expect("stage requests");
        r.issued += 1;
        let id = format!("{:016x}{:016x}", self.key.hash_one((r.issued, 0u8)), self.key.hash_one((r.issued, 1u8)));
        r.files += request.files.len();
        r.by_id.insert(id.clone(), request);
        r.order.push_back(id.clone());
        while r.files > MAX_REMEMBERED_FILES {
            let Some(old) = r.order.pop_front() else { break };
            if let Some(gone) = r.by_id.remove(&old) {
                r.files -= gone.files.len();
            }
        }
        id
    }

    pub fn get(&self, id: &str) -> Option<StageRequest> {
        self.inner.lock().expect("stage requests").by_id.get(id).cloned()
    }

    pub fn remove(&self, id: &str) -> bool {
        let mut r = self.inner.lock().expect("stage requests");
        let Some(gone) = r.by_id.remove(id) else { return false };
        r.files -= gone.files.len();
        r.order.retain(|i| i != id);
        true
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The paths of a call, or why it is refused: at least one, at most `MAX_FILES`, each at most
/// `MAX_PATH` bytes (what an anonymous caller can make the origin look at and remember).
fn bounded(paths: Result<Vec<String>, serde_json::Error>) -> Result<Vec<String>, String> {
    match paths {
        Ok(p) if (1..=MAX_FILES).contains(&p.len()) && p.iter().all(|p| p.len() <= MAX_PATH) => Ok(p),
        Ok(_) => Err("expected 1 to 1000 paths of at most 4096 bytes".into()),
        Err(e) => Err(format!("bad request body: {e}")),
    }
}

#[derive(Serialize)]
struct Locality {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    locality: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl App {
    /// `GET /.well-known/wlcg-tape-rest-api`: an origin's tape endpoint.
    pub(crate) fn on_tape_discovery(&self) -> Response<Body> {
        if self.exports.is_none() {
            return text_response(StatusCode::NOT_FOUND, "the tape REST API is an origin's");
        }
        let uri = format!("{}{}", self.config.advertise.trim_end_matches('/'), API.trim_end_matches('/'));
        json(
            StatusCode::OK,
            &serde_json::json!({
                "sitename": format!("reef-{}", self.config.id),
                "description": "Reef origin: nearline namespaces emulate tape",
                "endpoints": [{ "uri": uri, "version": "v1", "metadata": {} }],
            }),
        )
    }

    /// `/api/v1/...` (see the module).
    pub(crate) async fn on_tape_api(&self, req: Request<Incoming>, client: Peer) -> Response<Body> {
        let Some(exports) = &self.exports else {
            return text_response(StatusCode::NOT_FOUND, "the tape REST API is an origin's");
        };
        let (parts, body) = req.into_parts();
        let Ok(bytes) = Limited::new(body, 1 << 20).collect().await else {
            return text_response(StatusCode::PAYLOAD_TOO_LARGE, "request body over 1 MiB or broken");
        };
        let bytes = bytes.to_bytes();
        let kind = match self.request_kind(&parts.headers, client) {
            Ok(kind) => kind,
            Err((status, e)) => return text_response(status, e),
        };
        let rest = &parts.uri.path()[API.len()..];
        // (gfal2 asks for `stage/` with a trailing slash: empty segments do not count.)
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        match (&parts.method, segments.as_slice()) {
            (&Method::POST, ["stage"]) => {
                let stage = serde_json::from_slice::<StageBody>(&bytes);
                let files = match bounded(stage.map(|b| b.files.into_iter().map(|f| f.path).collect())) {
                    Ok(files) => files,
                    Err(why) => return text_response(StatusCode::BAD_REQUEST, &why),
                };
                let now = Instant::now();
                let mut checked = Vec::with_capacity(files.len());
                for path in files {
                    let file = self.tape_file(exports, &parts.headers, kind, &path).await;
                    if let Ok((ns, name)) = &file
                        && let crate::nearline::Staged::Staging { started: true, .. } =
                            exports.nearline.read(*ns, name, now)
                    {
                        self.metrics.add("reef_staging_started_total", &[], 1.0);
                    }
                    checked.push((path, file));
                }
                if checked.iter().all(|(_, f)| f.is_err()) {
                    let why: Vec<_> = checked
                        .iter()
                        .map(|(p, f)| serde_json::json!({ "path": p, "error": f.as_ref().err() }))
                        .collect();
                    return json(
                        StatusCode::BAD_REQUEST,
                        &serde_json::json!({ "title": "no file can be staged", "files": why }),
                    );
                }
                let id = exports.stage_requests.add(StageRequest { created_at: unix_now(), files: checked });
                let mut resp = json(StatusCode::CREATED, &serde_json::json!({ "requestId": id }));
                let location = format!("{}{API}stage/{id}", self.config.advertise.trim_end_matches('/'));
                if let Ok(v) = HeaderValue::from_str(&location) {
                    resp.headers_mut().insert(LOCATION, v);
                }
                resp
            }
            (&Method::GET, ["stage", id]) => {
                let Some(request) = exports.stage_requests.get(id) else {
                    return text_response(StatusCode::NOT_FOUND, "no such stage request");
                };
                let now = Instant::now();
                let files: Vec<FileStatus> = (request.files.into_iter())
                    .map(|(path, file)| match file {
                        Ok((ns, name)) => {
                            let online = exports.nearline.online(ns, &name, now).unwrap_or(true);
                            let state = Some(if online { "COMPLETED" } else { "STARTED" });
                            FileStatus { path, state, on_disk: Some(online), error: None }
                        }
                        Err(e) => FileStatus { path, state: Some("FAILED"), on_disk: None, error: Some(e) },
                    })
                    .collect();
                let done = files.iter().all(|f| f.state != Some("STARTED"));
                let mut body = serde_json::json!({
                    "id": id,
                    "createdAt": request.created_at,
                    "startedAt": request.created_at,
                    "files": files,
                });
                if done {
                    body["completedAt"] = serde_json::json!(unix_now());
                }
                json(StatusCode::OK, &body)
            }
            (&Method::POST, ["stage", id, "cancel"]) | (&Method::POST, ["release", id]) => {
                match exports.stage_requests.get(id) {
                    Some(_) => text_response(StatusCode::OK, "accepted (staged files stay online)"),
                    None => text_response(StatusCode::NOT_FOUND, "no such stage request"),
                }
            }
            (&Method::DELETE, ["stage", id]) => match exports.stage_requests.remove(id) {
                true => text_response(StatusCode::OK, "deleted"),
                false => text_response(StatusCode::NOT_FOUND, "no such stage request"),
            },
            (&Method::POST, ["archiveinfo"]) => {
                let paths = match bounded(serde_json::from_slice::<PathsBody>(&bytes).map(|b| b.paths)) {
                    Ok(paths) => paths,
                    Err(why) => return text_response(StatusCode::BAD_REQUEST, &why),
                };
                let now = Instant::now();
                let mut answers = Vec::with_capacity(paths.len());
                for path in paths {
                    let answer = match self.tape_file(exports, &parts.headers, kind, &path).await {
                        Ok((ns, name)) => {
                            let locality = match exports.nearline.online(ns, &name, now) {
                                None => "DISK",
                                Some(true) => "DISK_AND_TAPE",
                                Some(false) => "TAPE",
                            };
                            Locality { path, locality: Some(locality), error: None }
                        }
                        Err(e) => Locality { path, locality: None, error: Some(e) },
                    };
                    answers.push(answer);
                }
                json(StatusCode::OK, &answers)
            }
            _ => text_response(StatusCode::NOT_FOUND, "no such tape REST API call"),
        }
    }

    /// The namespace and object name of `path` (`/ns/dir/file`) if a read of it would be
    /// allowed and the file exists in the export; else why not.
    async fn tape_file(&self, exports: &Exports, headers: &HeaderMap, kind: RequestKind, path: &str) -> Checked {
        let parsed = object_path::parse(path).map_err(|e| format!("bad path: {e}"))?;
        let ns = self.config.namespace(&parsed.namespace).ok_or("no such namespace")?;
        if let Err(denied) = self.authorise(headers, kind, ns, &parsed, Operation::Read).await {
            return Err(format!("not allowed: {}", denied.denial.name()));
        }
        match exports.open(ns, &parsed.segments).await {
            Ok(_) => Ok((ns, parsed.name())),
            Err(OriginError::NotFound) => Err("no such file".into()),
            Err(OriginError::Forbidden) => Err("not a regular file inside the export".into()),
            Err(e) => Err(format!("cannot open: {e:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_remembered_up_to_the_bound_oldest_forgotten_first() {
        let requests = StageRequests::default();
        let files = |n: usize| (0..n).map(|i| (format!("/a/{i}"), Err("x".to_string()))).collect();
        let first = requests.add(StageRequest { created_at: 1, files: files(MAX_FILES) });
        let second = requests.add(StageRequest { created_at: 1, files: files(MAX_FILES) });
        assert_ne!(first, second);
        assert_eq!(first.len(), 32, "128 bits");
        assert!(requests.get(&first).is_some());
        for _ in 0..MAX_REMEMBERED_FILES / MAX_FILES - 1 {
            requests.add(StageRequest { created_at: 2, files: files(MAX_FILES) });
        }
        assert!(requests.get(&first).is_none(), "the oldest is forgotten past the bound");
        assert!(requests.get(&second).is_some());
        assert!(requests.remove(&second));
        assert!(!requests.remove(&second));
        assert!(requests.get(&second).is_none());
    }
}
