//! Reef's access log: JSON lines written by reef-node, one request per line. The object is
//! `object_id` (16 hex digits, the core's id) or else `object` (`/namespace/path`, hashed the
//! way the core does); the size is `size` (the whole object) or else `bytes`. Lines with a
//! `method` other than GET (HEAD) moved no data, and lines whose `status` is not a read of an
//! existing object (200, 206, 304: not 404s, redirects or errors) asked for nothing a cache
//! could hold: both are skipped.

use super::{Request, Trace, TraceError};
use reef_core::ObjectId;
use serde::Deserialize;
use std::io::BufRead;
use std::path::Path;

#[derive(Deserialize)]
struct Line {
    object: Option<String>,
    object_id: Option<String>,
    size: Option<u64>,
    bytes: Option<u64>,
    method: Option<String>,
    status: Option<u16>,
}

/// The id of `/namespace/path` (or of a bare name, in no namespace).
fn object_id(object: &str) -> ObjectId {
    match object.strip_prefix('/').and_then(|rest| rest.split_once('/')) {
        Some((namespace, path)) => ObjectId::of(namespace, path),
        None => ObjectId::of("", object),
    }
}

pub(super) fn read(path: &Path, reader: Box<dyn BufRead>) -> Result<Trace, TraceError> {
    let mut requests = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| TraceError::Read { path: path.into(), source })?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: String| TraceError::BadLine { path: path.into(), line: n as u64 + 1, what };
        let rec: Line = serde_json::from_str(&line).map_err(|e| bad(format!("not a log record: {e}")))?;
        if rec.method.as_deref().is_some_and(|m| !m.eq_ignore_ascii_case("GET"))
            || rec.status.is_some_and(|s| !matches!(s, 200 | 206 | 304))
        {
            continue;
        }
        let id = match (&rec.object_id, &rec.object) {
            (Some(hex), _) => {
                u64::from_str_radix(hex, 16).map_err(|_| bad(format!("`object_id` `{hex}` is not 16 hex digits")))?
            }
            (None, Some(object)) => object_id(object).0,
            (None, None) => return Err(bad("no `object` or `object_id` field".into())),
        };
        let size = rec.size.or(rec.bytes).ok_or_else(|| bad("no `size` or `bytes` field".into()))?;
        requests.push(Request { id, size });
    }
    Ok(Trace { requests, next: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_hash_like_the_core() {
        let name = reef_core::ObjectName::new("atlas", "mc23/evt.root");
        assert_eq!(object_id(&name.to_string()), name.id());
    }
}
