//! Turns a representation (a file, complete or filling, with its validators and checksums)
//! into the HTTP response a GET or HEAD asks for: 200, 206 (single or multipart/byteranges),
//! 304, 412 or 416, with a correct Content-Length every time.

use crate::http::body::{self, Body, Content, OnFinish, Part};
use crate::http::conditional::{self, Precondition, Validators};
use crate::http::digest::{Algorithm, Digests};
use crate::http::pacing::Pacer;
use crate::http::range::{self, ByteRange, RangeRequest};
use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, HeaderValue, LAST_MODIFIED, RANGE,
};
use http::{HeaderMap, Method, Response, StatusCode};
use std::time::SystemTime;

#[derive(Debug)]
pub struct Representation {
    pub content: Content,
    pub size: u64,
    pub validators: Validators,
    /// Checksums of the complete object; `None` while it is still filling.
    pub digests: Option<Digests>,
}

const BOUNDARY: &str = "reef-byteranges-3d1f0c9a";

/// Builds the response; `extra` headers (Cache-Status...) are added to every status.
pub fn respond(
    method: &Method,
    headers: &HeaderMap,
    rep: Representation,
    wanted: &[Algorithm],
    extra: HeaderMap,
    pacer: Option<Pacer>,
    on_finish: Box<dyn OnFinish>,
) -> Response<Body> {
    let mut resp = Response::new(body::empty());
    *resp.headers_mut() = extra;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&rep.validators.etag) {
        h.insert(ETAG, v);
    }
    if let Some(lm) = rep.validators.last_modified {
        h.insert(LAST_MODIFIED, date(lm));
    }
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));

    match conditional::evaluate(headers, &rep.validators) {
        Precondition::NotModified => {
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            on_finish.finish(304, 0, true);
            return resp;
        }
        Precondition::Failed => {
            *resp.status_mut() = StatusCode::PRECONDITION_FAILED;
            resp.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            on_finish.finish(412, 0, true);
            return resp;
        }
        Precondition::Proceed => {}
    }
    if let Some(d) = &rep.digests
        && !wanted.is_empty()
        && let Ok(v) = HeaderValue::from_str(&d.header(wanted))
    {
        resp.headers_mut().insert("digest", v);
    }

    let size = rep.size;
    let asked = if conditional::range_applies(headers, &rep.validators) {
        range::resolve(headers.get(RANGE).and_then(|v| v.to_str().ok()), size)
    } else {
        RangeRequest::Full
    };
    let (status, parts, content_type) = match asked {
        RangeRequest::Unsatisfiable => {
            *resp.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            let h = resp.headers_mut();
            h.insert(CONTENT_RANGE, value(format!("bytes */{size}")));
            h.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            on_finish.finish(416, 0, true);
            return resp;
        }
        RangeRequest::Full => (StatusCode::OK, whole(size), None),
        RangeRequest::Ranges(ranges) if ranges.len() == 1 => {
            let r = ranges[0];
            resp.headers_mut().insert(CONTENT_RANGE, value(r.content_range(size)));
            (StatusCode::PARTIAL_CONTENT, vec![file_part(r)], None)
        }
        RangeRequest::Ranges(mut ranges) => {
            // An object passing through is read once, front to back: its parts go in ascending
            // order (RFC 9110 asks for the requested order only as a SHOULD).
            if rep.content.filling.as_ref().is_some_and(|f| f.passing()) {
                ranges.sort_unstable_by_key(|r| r.first);
            }
            (
                StatusCode::PARTIAL_CONTENT,
                multipart(&ranges, size),
                Some(format!("multipart/byteranges; boundary={BOUNDARY}")),
            )
        }
    };
    *resp.status_mut() = status;
    let length: u64 = parts
        .iter()
        .map(|p| match p {
            Part::Literal(b) => b.len() as u64,
            Part::File { first, last } => last - first + 1,
        })
        .sum();
    let h = resp.headers_mut();
    h.insert(CONTENT_LENGTH, value(length.to_string()));
    h.insert(CONTENT_TYPE, value(content_type.unwrap_or_else(|| "application/octet-stream".into())));
    if method == Method::HEAD {
        on_finish.finish(status.as_u16(), 0, true);
        return resp;
    }
    *resp.body_mut() = body::from_parts(rep.content, parts, status.as_u16(), pacer, on_finish);
    resp
}

fn whole(size: u64) -> Vec<Part> {
    if size == 0 { Vec::new() } else { vec![Part::File { first: 0, last: size - 1 }] }
}

fn file_part(r: ByteRange) -> Part {
    Part::File { first: r.first, last: r.last }
}

fn multipart(ranges: &[ByteRange], size: u64) -> Vec<Part> {
    let mut parts = Vec::with_capacity(ranges.len() * 2 + 1);
    for (i, r) in ranges.iter().enumerate() {
        let lead = if i == 0 { "" } else { "\r\n" };
        parts.push(Part::Literal(Bytes::from(format!(
            "{lead}--{BOUNDARY}\r\nContent-Type: application/octet-stream\r\nContent-Range: {}\r\n\r\n",
            r.content_range(size)
        ))));
        parts.push(file_part(*r));
    }
    parts.push(Part::Literal(Bytes::from(format!("\r\n--{BOUNDARY}--\r\n"))));
    parts
}

fn value(s: String) -> HeaderValue {
    HeaderValue::from_str(&s).expect("generated header values are ASCII")
}

fn date(t: SystemTime) -> HeaderValue {
    value(httpdate::fmt_http_date(t))
}
