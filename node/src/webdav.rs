//! Listings as HEP clients ask for them: WebDAV `PROPFIND` (RFC 4918; `Depth: 0` or `1`,
//! `infinity` refused) and `GET`/`HEAD` on a directory path (an HTML index), so `davix-ls`,
//! `gfal-ls`, rclone's webdav remote and file browsers work. An origin answers from its export
//! (sizes, modification times, ETags); a cache or a director asks an origin of the namespace as
//! itself and keeps the answer for a few seconds. A listing never fetches file contents.

use crate::http::body::{self, Body};
use crate::http::object_path::{self, ObjectPath, encode_segments};
use crate::origin::{ListEntry, OriginError};
use crate::server::{App, Peer, text_response};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use reef_core::access::Operation;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// How long a cache or a director keeps a listing it asked an origin for.
const KEPT: Duration = Duration::from_secs(5);
/// The largest listing taken from an origin.
const MAX_LISTING: usize = 16 << 20;

/// Listings a cache or director got from origins: (method, path, depth) → answer.
#[derive(Debug, Default)]
pub struct Listings {
    kept: Mutex<HashMap<ListingKey, Kept>>,
}

type ListingKey = (String, String, String);
/// When it was asked, and the origin's status, content type and body.
type Kept = (Instant, StatusCode, Option<String>, bytes::Bytes);

/// Whether a request is a listing: `PROPFIND`, or `GET`/`HEAD` on a directory path.
pub fn is_listing(method: &Method, path: &str) -> bool {
    method.as_str() == "PROPFIND"
        || (matches!(*method, Method::GET | Method::HEAD)
            && (path.ends_with('/') || path.trim_matches('/').split('/').count() == 1)
            && path.len() > 1)
}

fn http_date(mtime: i64) -> String {
    httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(mtime).unwrap_or(0)))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The href of `segments` below namespace `ns` (directories end with `/`).
fn href(ns: &str, segments: &[String], dir: bool) -> String {
    let mut h = encode_segments(std::iter::once(ns).chain(segments.iter().map(String::as_str)));
    if dir {
        h.push('/');
    }
    h
}

/// A `207 Multi-Status` body: `this` and, with depth 1, its `children`.
pub fn multistatus(path: &ObjectPath, this: &ListEntry, children: &[ListEntry]) -> String {
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">\n");
    let mut response = |href: String, e: &ListEntry| {
        let kind = if e.dir { "<D:resourcetype><D:collection/></D:resourcetype>" } else { "<D:resourcetype/>" };
        let _ = write!(
            o,
            "<D:response><D:href>{}</D:href><D:propstat><D:prop>{kind}<D:getcontentlength>{}</D:getcontentlength>\
             <D:getlastmodified>{}</D:getlastmodified>",
            xml_escape(&href),
            e.size,
            http_date(e.mtime)
        );
        if let Some(etag) = &e.etag {
            let _ = write!(o, "<D:getetag>{}</D:getetag>", xml_escape(etag));
        }
        o.push_str("</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>\n");
    };
    response(href(&path.namespace, &path.segments, this.dir), this);
    for c in children {
        let mut segments = path.segments.clone();
        segments.push(c.name.clone());
        response(href(&path.namespace, &segments, c.dir), c);
    }
    o.push_str("</D:multistatus>\n");
    o
}

/// An HTML index of a directory.
pub fn index(path: &ObjectPath, children: &[ListEntry]) -> String {
    let title = xml_escape(&format!("/{}/{}", path.namespace, path.segments.join("/")));
    let mut o = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1><ul>\n"
    );
    for c in children {
        let mut segments = path.segments.clone();
        segments.push(c.name.clone());
        let slash = if c.dir { "/" } else { "" };
        let _ = writeln!(
            o,
            "<li><a href=\"{}\">{}{slash}</a> {} bytes, {}</li>",
            xml_escape(&href(&path.namespace, &segments, c.dir)),
            xml_escape(&c.name),
            c.size,
            http_date(c.mtime)
        );
    }
    o.push_str("</ul></body></html>\n");
    o
}

fn answer(status: StatusCode, kind: &str, body: impl Into<bytes::Bytes>, head: bool) -> Response<Body> {
    let body = body.into();
    let mut resp = Response::new(if head { body::empty() } else { body::full(body.clone()) });
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_str(kind).unwrap_or(HeaderValue::from_static("text/plain")));
    resp.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    resp
}

impl App {
    pub(crate) async fn on_listing(&self, req: Request<Incoming>, peer: Peer) -> Response<Body> {
        let (parts, _) = req.into_parts();
        let head = parts.method == Method::HEAD;
        let Ok(path) = object_path::parse_dir(parts.uri.path()) else {
            return text_response(StatusCode::BAD_REQUEST, "bad path");
        };
        let Some(ns) = self.config.namespace(&path.namespace) else {
            return text_response(StatusCode::NOT_FOUND, "no such namespace");
        };
        let kind = match self.request_kind(&parts.headers, peer) {
            Ok(kind) => kind,
            Err((status, e)) => return text_response(status, e),
        };
        if let Err(denied) = self.authorise(&parts.headers, kind, ns, &path, Operation::Read).await {
            return denied.response();
        }
        let depth = parts.headers.get("depth").and_then(|v| v.to_str().ok()).unwrap_or("1").trim().to_string();
        if parts.method.as_str() == "PROPFIND" && depth != "0" && depth != "1" {
            let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\"><D:propfind-finite-depth/></D:error>\n";
            return answer(StatusCode::FORBIDDEN, "application/xml; charset=utf-8", body, false);
        }
        let Some(exports) = &self.exports else {
            return self.listing_from_origin(&parts.method, parts.uri.path(), &depth, ns).await;
        };
        let this = match exports.stat(ns, &path.segments).await {
            Ok(e) => e,
            Err(OriginError::NotFound) => return text_response(StatusCode::NOT_FOUND, "no such file or directory"),
            Err(OriginError::Forbidden) => return text_response(StatusCode::FORBIDDEN, "outside the export"),
            Err(e) => return text_response(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:?}")),
        };
        let children = match (this.dir, parts.method.as_str() == "PROPFIND" && depth == "0") {
            (true, false) => match exports.list(ns, &path.segments).await {
                Ok(c) => c,
                Err(e) => return text_response(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:?}")),
            },
            _ => Vec::new(),
        };
        if parts.method.as_str() == "PROPFIND" {
            return answer(
                StatusCode::MULTI_STATUS,
                "application/xml; charset=utf-8",
                multistatus(&path, &this, &children),
                false,
            );
        }
        if !this.dir {
            return text_response(StatusCode::BAD_REQUEST, "a file, not a directory: drop the trailing slash");
        }
        answer(StatusCode::OK, "text/html; charset=utf-8", index(&path, &children), head)
    }

    /// A cache's or a director's listing: an origin's answer, kept for a few seconds.
    async fn listing_from_origin(
        &self,
        method: &Method,
        path: &str,
        depth: &str,
        ns: reef_core::NamespaceId,
    ) -> Response<Body> {
        let head = *method == Method::HEAD;
        let asked = if head { Method::GET } else { method.clone() };
        let key = (asked.to_string(), path.to_string(), depth.to_string());
        let kept = self.listings.kept.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
        if let Some((_, status, kind, body)) = kept.filter(|k| k.0.elapsed() < KEPT) {
            return answer(status, kind.as_deref().unwrap_or("text/plain"), body, head);
        }
        for &origin in &self.config.namespaces[usize::from(ns.0)].origins {
            let got = self.transport.peer_request(origin, asked.clone(), path, &[("depth", depth)], MAX_LISTING).await;
            let Some((status, kind, body)) = got.filter(|(s, _, _)| !s.is_server_error()) else { continue };
            let mut kept = self.listings.kept.lock().unwrap_or_else(|e| e.into_inner());
            if kept.len() >= 1024 {
                kept.retain(|_, v| v.0.elapsed() < KEPT);
            }
            kept.insert(key, (Instant::now(), status, kind.clone(), body.clone()));
            return answer(status, kind.as_deref().unwrap_or("text/plain"), body, head);
        }
        text_response(StatusCode::BAD_GATEWAY, "no origin of the namespace answered the listing")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multistatus_lists_the_directory_then_its_entries() {
        let path = object_path::parse_dir("/atlas/run%201/").unwrap();
        let dir = ListEntry { name: "run 1".into(), dir: true, size: 0, mtime: 0, etag: None };
        let file = ListEntry {
            name: "a&b.root".into(),
            dir: false,
            size: 42,
            mtime: 1_764_547_200,
            etag: Some("\"e\"".into()),
        };
        let xml = multistatus(&path, &dir, &[file]);
        assert!(xml.contains("<D:href>/atlas/run%201/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/>"));
        assert!(xml.contains("<D:href>/atlas/run%201/a&amp;b.root</D:href>"), "{xml}");
        assert!(xml.contains("<D:getcontentlength>42</D:getcontentlength><D:getlastmodified>Mon, 01 Dec 2025 00:00:00 GMT</D:getlastmodified><D:getetag>&quot;e&quot;</D:getetag>"));
        assert!(is_listing(&Method::GET, "/atlas/"));
        assert!(is_listing(&Method::HEAD, "/atlas"));
        assert!(!is_listing(&Method::GET, "/atlas/file"));
        assert!(is_listing(&Method::from_bytes(b"PROPFIND").unwrap(), "/atlas/file"));
    }
}
