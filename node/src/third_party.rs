//! Fetches from a third-party HTTP origin: a site's existing storage (dCache, EOS, XRootD or S3
//! behind HTTP, or any web server) named by a namespace's `origin_url`. It speaks plain HTTP to
//! it (no Reef headers, no block list), follows its redirects (a dCache door sends reads to a
//! pool), and hands the core what the response's caching headers allow
//! (`reef_core::http_caching`). The bytes are their own reference: the cache records their
//! block list as they arrive, so its copy is checked against what the origin sent ever after.

use crate::peer_transport::{HttpClient, fetch_error};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::{Request, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use reef_core::http_caching::{Exchange, ResponseFields, Validity};
use reef_core::{FetchError, FetchResult};
use serde::{Deserialize, Serialize};

/// Redirects followed for one fetch, at most.
const MAX_REDIRECTS: usize = 5;
/// A caching header longer than this is not kept (nor believed: it counts as absent).
const MAX_FIELD: usize = 1024;
/// Prefix of the ETag a cache makes up when the origin sent none (never sent back to it).
const MADE_UP_ETAG: &str = "\"reef:";

/// A namespace's third-party origin, as a cache's transport reaches it.
#[derive(Debug, Clone)]
pub struct ThirdPartyOrigin {
    /// The base URL, without a trailing slash: an object's URL is this plus its path.
    pub base: String,
    /// A client that trusts the system's CAs and the namespace's `origin_ca`.
    pub client: HttpClient,
}

/// The third-party origins of `config`'s namespaces, by the node id the core knows each by.
pub fn origins(config: &crate::config::Config) -> anyhow::Result<Vec<(reef_core::NodeId, ThirdPartyOrigin)>> {
    let mut out = Vec::new();
    for (i, ns) in config.namespaces.iter().enumerate() {
        let Some(tp) = &ns.third_party else { continue };
        let tls = crate::tls::client_trusting(tp.ca.as_deref())
            .map_err(|e| anyhow::anyhow!("`namespaces[{i}].origin_ca`: {e}"))?;
        let client = crate::peer_transport::http_client(tls, []);
        out.push((crate::config::third_party_origin_id(i), ThirdPartyOrigin { base: tp.url.clone(), client }));
    }
    Ok(out)
}

/// The caching header fields of a stored response, kept with the object so that a `304`
/// updates them (RFC 9111, 4.3.4) rather than replace them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachingFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdn_cache_control: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vary: Option<String>,
}

impl CachingFields {
    fn of(headers: &HeaderMap) -> CachingFields {
        CachingFields {
            cache_control: joined(headers, header::CACHE_CONTROL),
            cdn_cache_control: joined(headers, HeaderName::from_static("cdn-cache-control")),
            expires: joined(headers, header::EXPIRES),
            last_modified: joined(headers, header::LAST_MODIFIED),
            vary: joined(headers, header::VARY),
        }
    }

    /// These fields updated by a `304`'s.
    fn updated_by(&self, newer: CachingFields) -> CachingFields {
        CachingFields {
            cache_control: newer.cache_control.or_else(|| self.cache_control.clone()),
            cdn_cache_control: newer.cdn_cache_control.or_else(|| self.cdn_cache_control.clone()),
            expires: newer.expires.or_else(|| self.expires.clone()),
            last_modified: newer.last_modified.or_else(|| self.last_modified.clone()),
            vary: newer.vary.or_else(|| self.vary.clone()),
        }
    }

    /// The core's verdict on these fields, with the exchange's own `Date` and `Age`.
    fn validity(&self, headers: &HeaderMap, at: Exchange) -> Validity {
        let (date, age) = (joined(headers, header::DATE), joined(headers, header::AGE));
        let fields = ResponseFields {
            cache_control: self.cache_control.as_deref(),
            cdn_cache_control: self.cdn_cache_control.as_deref(),
            expires: self.expires.as_deref(),
            date: date.as_deref(),
            age: age.as_deref(),
            last_modified: self.last_modified.as_deref(),
            vary: self.vary.as_deref(),
        };
        Validity::of(&fields, at)
    }
}

/// A field's lines joined with commas; `None` if absent, not text, or too long.
fn joined(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    let mut out = String::new();
    for value in headers.get_all(name) {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(value.to_str().ok()?);
    }
    (!out.is_empty() && out.len() <= MAX_FIELD).then_some(out)
}

/// What the cache holds of a copy it revalidates.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    pub etag: &'a str,
    pub last_modified: Option<u64>,
    pub caching: Option<&'a CachingFields>,
}

/// An origin's `200` for the whole object.
#[derive(Debug)]
pub struct Opened {
    pub body: Incoming,
    pub size: u64,
    pub etag: String,
    pub last_modified: Option<u64>,
    pub validity: Validity,
    pub caching: CachingFields,
}

/// What the origin answered that is not a failure.
#[derive(Debug)]
pub enum Reply {
    Body(Opened),
    /// The copy held is current: its validity now, and its caching fields updated by the 304's.
    NotModified {
        validity: Validity,
        caching: CachingFields,
    },
}

/// Asks `origin` for the object at `path` (already percent-encoded), conditionally if `held`.
pub async fn open(origin: &ThirdPartyOrigin, path: &str, held: Option<Held<'_>>) -> Result<Reply, FetchResult> {
    let mut url = format!("{}{path}", origin.base);
    for _ in 0..=MAX_REDIRECTS {
        let mut req = Request::get(&url);
        if let Some(held) = held {
            if !held.etag.starts_with(MADE_UP_ETAG) {
                req = req.header(header::IF_NONE_MATCH, held.etag);
            }
            if let Some(t) = held.last_modified {
                req = req.header(header::IF_MODIFIED_SINCE, reef_core::http_caching::format_http_date(t));
            }
        }
        let req = req.body(Full::new(Bytes::new())).map_err(|_| FetchError::Refused)?;
        let sent = unix_now();
        let resp = origin.client.request(req).await.map_err(|e| {
            tracing::warn!(%url, error = %e, "third-party origin unreachable");
            FetchError::Unreachable
        })?;
        let at = Exchange { request_sent: sent, response_received: unix_now() };
        let status = resp.status();
        let headers = resp.headers();
        if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            url = redirect_target(&url, headers).ok_or_else(|| {
                tracing::warn!(%url, %status, "third-party origin sent a redirect without a usable Location");
                FetchError::Refused
            })?;
            continue;
        }
        if status == StatusCode::NOT_MODIFIED && held.is_some() {
            let stored = held.and_then(|h| h.caching).cloned().unwrap_or_default();
            let caching = stored.updated_by(CachingFields::of(headers));
            return Ok(Reply::NotModified { validity: caching.validity(headers, at), caching });
        }
        if status != StatusCode::OK {
            if status.is_server_error() {
                tracing::warn!(%url, %status, "third-party origin failed");
            }
            return Err(fetch_error(status, None).into());
        }
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let Some(size) = text(header::CONTENT_LENGTH).and_then(|v| v.parse().ok()) else {
            tracing::warn!(%url, "third-party origin sent no Content-Length: the object cannot be checked whole");
            return Err(FetchError::Refused.into());
        };
        let last_modified = text(header::LAST_MODIFIED).and_then(|v| httpdate::parse_http_date(&v).ok()).map(epoch);
        let etag = text(header::ETAG)
            .filter(|e| e.len() <= MAX_FIELD)
            .unwrap_or_else(|| format!("{MADE_UP_ETAG}{size:x}-{:x}\"", last_modified.unwrap_or(0)));
        let caching = CachingFields::of(headers);
        let validity = caching.validity(headers, at);
        return Ok(Reply::Body(Opened { body: resp.into_body(), size, etag, last_modified, validity, caching }));
    }
    tracing::warn!(%url, "third-party origin redirected more than {MAX_REDIRECTS} times");
    Err(FetchError::Refused.into())
}

/// Where a redirect points: an absolute `http(s)` URL, or a path on the same server. Never
/// from `https` down to `http` (anyone on the path could then feed the cache).
fn redirect_target(from: &str, headers: &HeaderMap) -> Option<String> {
    let location = headers.get(header::LOCATION)?.to_str().ok()?;
    if location.starts_with("http://") && from.starts_with("https://") {
        return None;
    }
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.parse::<Uri>().ok().map(|_| location.to_string());
    }
    if !location.starts_with('/') || location.starts_with("//") {
        return None;
    }
    let uri: Uri = from.parse().ok()?;
    Some(format!("{}://{}{location}", uri.scheme_str()?, uri.authority()?))
}

fn unix_now() -> u64 {
    epoch(std::time::SystemTime::now())
}

fn epoch(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_absolute_and_server_relative_locations() {
        let at = |loc: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::LOCATION, loc.parse().unwrap());
            redirect_target("http://door:2880/data/f", &h)
        };
        assert_eq!(at("https://pool7:443/x?t=1").as_deref(), Some("https://pool7:443/x?t=1"));
        assert_eq!(at("/pool/f").as_deref(), Some("http://door:2880/pool/f"));
        assert_eq!(at("//elsewhere/f"), None);
        assert_eq!(at("relative/f"), None);
        assert_eq!(at("ftp://x/f"), None);
        let mut h = HeaderMap::new();
        h.insert(header::LOCATION, "http://pool7/f".parse().unwrap());
        assert_eq!(redirect_target("https://door/f", &h), None, "no downgrade");
        h.insert(header::LOCATION, "https://pool7/f".parse().unwrap());
        assert_eq!(redirect_target("https://door/f", &h).as_deref(), Some("https://pool7/f"));
    }

    #[test]
    fn a_304_updates_the_stored_fields_it_carries() {
        let stored = CachingFields {
            cache_control: Some("max-age=60".into()),
            last_modified: Some("Tue, 01 Dec 2026 00:00:00 GMT".into()),
            ..Default::default()
        };
        let newer = CachingFields { cache_control: Some("max-age=600".into()), ..Default::default() };
        let merged = stored.updated_by(newer);
        assert_eq!(merged.cache_control.as_deref(), Some("max-age=600"));
        assert_eq!(merged.last_modified, stored.last_modified);
    }
}
