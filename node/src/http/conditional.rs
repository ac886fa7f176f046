//! Validators and conditional requests (RFC 9110 §13): strong ETags, Last-Modified,
//! If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since / If-Range.

use http::HeaderMap;
use http::header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE};
use std::time::SystemTime;

/// The validators of one representation.
#[derive(Clone, Debug)]
pub struct Validators {
    /// A strong entity tag, quotes included.
    pub etag: String,
    pub last_modified: Option<SystemTime>,
}

/// What the conditional headers decide before the method runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Precondition {
    Proceed,
    NotModified,
    Failed,
}

pub fn evaluate(headers: &HeaderMap, v: &Validators) -> Precondition {
    let text = |name| headers.get(name).and_then(|h: &http::HeaderValue| h.to_str().ok());
    // Order from RFC 9110 §13.2.2.
    if let Some(im) = text(IF_MATCH) {
        if !list_matches(im, &v.etag, true) {
            return Precondition::Failed;
        }
    } else if let (Some(ius), Some(lm)) = (text(IF_UNMODIFIED_SINCE), v.last_modified)
        && let Ok(date) = httpdate::parse_http_date(ius)
        && seconds(lm) > seconds(date)
    {
        return Precondition::Failed;
    }
    if let Some(inm) = text(IF_NONE_MATCH) {
        if list_matches(inm, &v.etag, false) {
            return Precondition::NotModified;
        }
    } else if let (Some(ims), Some(lm)) = (text(IF_MODIFIED_SINCE), v.last_modified)
        && let Ok(date) = httpdate::parse_http_date(ims)
        && seconds(lm) <= seconds(date)
    {
        return Precondition::NotModified;
    }
    Precondition::Proceed
}

/// Whether a `Range` may be honoured: without `If-Range`, or when it names the current
/// representation (strong comparison, or an exact Last-Modified date).
pub fn range_applies(headers: &HeaderMap, v: &Validators) -> bool {
    let Some(ir) = headers.get(IF_RANGE).and_then(|h| h.to_str().ok()) else {
        return true;
    };
    let ir = ir.trim();
    if ir.starts_with('"') || ir.starts_with("W/") {
        return ir == v.etag;
    }
    match (httpdate::parse_http_date(ir), v.last_modified) {
        (Ok(date), Some(lm)) => seconds(date) == seconds(lm),
        _ => false,
    }
}

fn list_matches(list: &str, etag: &str, strong: bool) -> bool {
    list.split(',').map(str::trim).any(|candidate| {
        if candidate == "*" {
            return true;
        }
        if strong { candidate == etag } else { candidate.trim_start_matches("W/") == etag }
    })
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::Duration;

    fn v() -> Validators {
        Validators {
            etag: "\"abc\"".into(),
            last_modified: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        }
    }

    fn with(name: http::header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn etags_and_dates() {
        let lm = httpdate::fmt_http_date(v().last_modified.unwrap());
        assert_eq!(evaluate(&with(IF_NONE_MATCH, "\"x\", W/\"abc\""), &v()), Precondition::NotModified);
        assert_eq!(evaluate(&with(IF_NONE_MATCH, "\"x\""), &v()), Precondition::Proceed);
        assert_eq!(evaluate(&with(IF_MODIFIED_SINCE, &lm), &v()), Precondition::NotModified);
        assert_eq!(evaluate(&with(IF_MODIFIED_SINCE, "Mon, 01 Jan 2001 00:00:00 GMT"), &v()), Precondition::Proceed);
        assert_eq!(evaluate(&with(IF_MATCH, "W/\"abc\""), &v()), Precondition::Failed);
        assert_eq!(evaluate(&with(IF_MATCH, "\"abc\""), &v()), Precondition::Proceed);
        assert_eq!(evaluate(&with(IF_MODIFIED_SINCE, "garbage"), &v()), Precondition::Proceed);
        assert!(range_applies(&with(IF_RANGE, "\"abc\""), &v()));
        assert!(!range_applies(&with(IF_RANGE, "\"old\""), &v()));
        assert!(range_applies(&with(IF_RANGE, &lm), &v()));
    }
}
