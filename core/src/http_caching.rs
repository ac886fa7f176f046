//! How long a cache may reuse a third-party origin's response: the rules of HTTP caching for a
//! shared cache (RFC 9111), with the CDN-targeted `CDN-Cache-Control` field (RFC 9213) and
//! `stale-if-error` (RFC 5861). A driver hands in the response's header values as text and the
//! wall-clock seconds at which it sent the request and got the answer; the result, a
//! [`Validity`], goes back to the core with the fetch's result (`FetchResult::Complete`,
//! `FetchResult::NotModified`), and the core decides from it whether the copy is kept, until
//! when it is served without asking the origin, and whether it may be served stale when the
//! origin cannot be reached. Reef's own origins send none of this: their namespaces are
//! write-once, or have a `max_age` (see `NodeConfig`).

use crate::units::Duration;
use serde::{Deserialize, Serialize};

/// A delta-seconds value larger than this counts as this (RFC 9111, 1.2.2).
const MAX_DELTA_SECONDS: u64 = 1 << 31;
/// The share of the time since `Last-Modified` that a response without an explicit lifetime
/// is fresh for (RFC 9111, 4.2.2 suggests 10%), and its cap.
const HEURISTIC_PERCENT: u64 = 10;
const HEURISTIC_CAP_SECONDS: u64 = 86_400;

/// The header fields of a response that bear on caching, as received (`None`: absent; a
/// field sent on several lines is joined with commas, as HTTP allows).
#[derive(Clone, Copy, Debug, Default)]
pub struct ResponseFields<'a> {
    pub cache_control: Option<&'a str>,
    pub cdn_cache_control: Option<&'a str>,
    pub expires: Option<&'a str>,
    pub date: Option<&'a str>,
    pub age: Option<&'a str>,
    pub last_modified: Option<&'a str>,
    pub vary: Option<&'a str>,
}

/// When the exchange happened, in seconds since the Unix epoch by the cache's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub request_sent: u64,
    pub response_received: u64,
}

/// The directives of a `Cache-Control` or `CDN-Cache-Control` field that a shared cache obeys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub stale_if_error: Option<u64>,
    /// A lifetime directive was repeated with different values or had a malformed value: the
    /// response counts as stale (RFC 9111, 4.2.1).
    pub conflicting: bool,
    /// How many directives were recognised or not (an empty field has none).
    pub count: usize,
}

impl Directives {
    /// Parses a field value: comma-separated directives, names case-insensitive, arguments as
    /// tokens or quoted strings. Unknown directives are counted and otherwise ignored.
    pub fn parse(field: &str) -> Directives {
        let mut d = Directives::default();
        for item in split_list(field) {
            let (name, arg) = match item.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (item, None),
            };
            if name.is_empty() {
                continue;
            }
            d.count += 1;
            let seconds = |slot: &mut Option<u64>, conflicting: &mut bool| match arg.and_then(delta_seconds) {
                Some(s) if slot.is_none_or(|old| old == s) => *slot = Some(s),
                _ => *conflicting = true,
            };
            match name.to_ascii_lowercase().as_str() {
                "max-age" => seconds(&mut d.max_age, &mut d.conflicting),
                "s-maxage" => seconds(&mut d.s_maxage, &mut d.conflicting),
                "stale-if-error" => {
                    // (Malformed: the permission is simply not given.)
                    d.stale_if_error = arg.and_then(delta_seconds).or(d.stale_if_error);
                }
                "no-store" => d.no_store = true,
                // (The qualified forms name fields not to reuse; a cache keeping whole
                // responses treats them as unqualified, which RFC 9111 allows.)
                "no-cache" => d.no_cache = true,
                "private" => d.private = true,
                "must-revalidate" => d.must_revalidate = true,
                "proxy-revalidate" => d.proxy_revalidate = true,
                _ => {}
            }
        }
        d
    }
}

/// What a cache may do with a response, decided from its header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validity {
    /// The response may be kept (not `no-store`, not `private`, no `Vary`).
    pub store: bool,
    /// How long from its arrival it may be served without asking the origin (its freshness
    /// lifetime minus its age on arrival; zero: every use asks the origin first).
    pub fresh_for: Duration,
    /// When the origin cannot be reached, how long from its arrival the copy may still be
    /// served, stale or not (`None`: only while fresh, the origin said `must-revalidate`,
    /// `proxy-revalidate`, `s-maxage` or `no-cache`; `Some(Duration::MAX)`: for as long as
    /// the origin is away; otherwise its lifetime plus `stale-if-error`, less its age).
    pub on_error_for: Option<Duration>,
}

impl Validity {
    /// Decides a `200` response's validity for a shared cache.
    pub fn of(fields: &ResponseFields<'_>, at: Exchange) -> Validity {
        // A valid CDN-targeted field replaces Cache-Control and Expires (RFC 9213, 2.2).
        let targeted = fields.cdn_cache_control.map(Directives::parse).filter(|d| d.count > 0);
        let (d, expires) = match targeted {
            Some(d) => (d, None),
            None => (fields.cache_control.map(Directives::parse).unwrap_or_default(), fields.expires),
        };
        let varies = fields.vary.is_some_and(|v| split_list(v).next().is_some());
        let store = !(d.no_store || d.private || varies);
        let date = fields.date.and_then(http_date);
        let lifetime = if d.conflicting || d.no_cache {
            0
        } else if let Some(s) = d.s_maxage.or(d.max_age) {
            s
        } else if let Some(expires) = expires {
            // A malformed Expires (such as `0`) means already expired (RFC 9111, 5.3).
            let lifetime = http_date(expires).map_or(0, |e| e.saturating_sub(date.unwrap_or(at.response_received)));
            lifetime.min(MAX_DELTA_SECONDS)
        } else if let Some(modified) = fields.last_modified.and_then(http_date) {
            let since = date.unwrap_or(at.response_received).saturating_sub(modified);
            (since * HEURISTIC_PERCENT / 100).min(HEURISTIC_CAP_SECONDS)
        } else {
            0
        };
        let age = age_on_arrival(fields, date, at);
        let on_error_for = if d.must_revalidate || d.proxy_revalidate || d.s_maxage.is_some() || d.no_cache {
            None
        } else {
            // The origin's own bound, or none: a cache cut off from the origin may serve a
            // stale copy unless told not to (RFC 9111, 4.2.4).
            Some(d.stale_if_error.map_or(Duration::MAX, |s| {
                Duration::from_secs(lifetime.saturating_add(s).saturating_sub(age).min(MAX_DELTA_SECONDS * 2))
            }))
        };
        Validity { store, fresh_for: Duration::from_secs(lifetime.saturating_sub(age)), on_error_for }
    }
}

/// The response's age when it arrived (RFC 9111, 4.2.3): the larger of the time since its
/// `Date` and its `Age` plus the time the exchange took.
fn age_on_arrival(fields: &ResponseFields<'_>, date: Option<u64>, at: Exchange) -> u64 {
    let apparent = date.map_or(0, |d| at.response_received.saturating_sub(d));
    let delay = at.response_received.saturating_sub(at.request_sent);
    let corrected = fields.age.and_then(delta_seconds).unwrap_or(0).saturating_add(delay);
    apparent.max(corrected)
}

/// The items of a comma-separated list, trimmed, empty ones skipped (commas inside quoted
/// strings do not split).
fn split_list(field: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    field
        .split(move |c| {
            if c == '"' {
                quoted = !quoted;
            }
            c == ',' && !quoted
        })
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A non-negative integer number of seconds, capped at 2^31.
fn delta_seconds(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse::<u64>().map_or(MAX_DELTA_SECONDS, |n| n.min(MAX_DELTA_SECONDS)))
}

/// An HTTP date as seconds since the epoch (`None`: malformed).
fn http_date(s: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs())
}

/// Formats seconds since the epoch as an HTTP date (for drivers and tests).
pub fn format_http_date(seconds: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;
    const AT: Exchange = Exchange { request_sent: NOW, response_received: NOW };

    fn validity(cache_control: &str) -> Validity {
        Validity::of(&ResponseFields { cache_control: Some(cache_control), ..Default::default() }, AT)
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn max_age_and_s_maxage() {
        assert_eq!(validity("max-age=600").fresh_for, secs(600));
        // A shared cache obeys s-maxage over max-age, and may not serve it stale.
        let v = validity("max-age=600, s-maxage=60");
        assert_eq!((v.fresh_for, v.on_error_for), (secs(60), None));
        assert_eq!(validity("MAX-AGE=\"30\"").fresh_for, secs(30));
        assert_eq!(validity("max-age=99999999999").fresh_for, secs(1 << 31));
    }

    #[test]
    fn conflicting_or_malformed_lifetimes_count_as_stale() {
        assert_eq!(validity("max-age=60, max-age=120").fresh_for, Duration::ZERO);
        assert_eq!(validity("max-age=-1").fresh_for, Duration::ZERO);
        assert_eq!(validity("max-age=60, max-age=60").fresh_for, secs(60));
    }

    #[test]
    fn what_is_not_stored() {
        assert!(validity("max-age=60").store);
        assert!(!validity("no-store, max-age=60").store);
        assert!(!validity("private, max-age=60").store);
        let vary = |v| ResponseFields { cache_control: Some("max-age=60"), vary: Some(v), ..Default::default() };
        assert!(!Validity::of(&vary("Accept-Language"), AT).store);
        assert!(!Validity::of(&vary("*"), AT).store);
        assert!(Validity::of(&vary(" , "), AT).store);
    }

    #[test]
    fn no_cache_and_revalidation_directives_forbid_serving_stale() {
        let v = validity("no-cache, max-age=600");
        assert_eq!((v.store, v.fresh_for, v.on_error_for), (true, Duration::ZERO, None));
        assert_eq!(validity("max-age=60, must-revalidate").on_error_for, None);
        assert_eq!(validity("max-age=60, proxy-revalidate").on_error_for, None);
        assert_eq!(validity("max-age=60").on_error_for, Some(Duration::MAX));
        // stale-if-error counts from the end of the lifetime, and the age on arrival is spent.
        assert_eq!(validity("max-age=60, stale-if-error=300").on_error_for, Some(secs(360)));
        let aged = ResponseFields {
            cache_control: Some("max-age=60, stale-if-error=300"),
            age: Some("100"),
            ..Default::default()
        };
        assert_eq!(Validity::of(&aged, AT).on_error_for, Some(secs(260)));
        let older = ResponseFields { age: Some("400"), ..aged };
        assert_eq!(Validity::of(&older, AT).on_error_for, Some(Duration::ZERO));
    }

    #[test]
    fn expires_counts_from_date() {
        let fields = |expires, date| ResponseFields { expires: Some(expires), date: Some(date), ..Default::default() };
        let (date, expires) = (format_http_date(NOW - 10), format_http_date(NOW + 290));
        // Expires - Date = 300 s; the response is 10 s old on arrival (its Date).
        assert_eq!(Validity::of(&fields(&expires, &date), AT).fresh_for, secs(290));
        assert_eq!(Validity::of(&fields("0", &date), AT).fresh_for, Duration::ZERO);
        // A far future is as far as a delta-seconds value goes.
        let far = Validity::of(&fields("Fri, 31 Dec 9999 23:59:59 GMT", &date), AT);
        assert_eq!(far.fresh_for, secs((1 << 31) - 10));
        // max-age wins over Expires (and the response is 10 s old).
        let both = ResponseFields { cache_control: Some("max-age=50"), ..fields(&expires, &date) };
        assert_eq!(Validity::of(&both, AT).fresh_for, secs(40));
    }

    #[test]
    fn age_and_exchange_time_are_taken_off() {
        let fields = ResponseFields { cache_control: Some("max-age=600"), age: Some("100"), ..Default::default() };
        assert_eq!(Validity::of(&fields, AT).fresh_for, secs(500));
        // A 3 s exchange is added to Age (the response may have waited that long).
        let slow = Exchange { request_sent: NOW - 3, response_received: NOW };
        assert_eq!(Validity::of(&fields, slow).fresh_for, secs(497));
        // A Date 200 s back beats Age 100 + 3.
        let date = format_http_date(NOW - 200);
        let dated = ResponseFields { date: Some(&date), ..fields };
        assert_eq!(Validity::of(&dated, slow).fresh_for, secs(400));
        let older = ResponseFields { age: Some("700"), ..fields };
        assert_eq!(Validity::of(&older, AT).fresh_for, Duration::ZERO);
    }

    #[test]
    fn cdn_cache_control_replaces_cache_control_and_expires() {
        let expires = format_http_date(NOW + 3600);
        let fields = ResponseFields {
            cache_control: Some("no-store"),
            cdn_cache_control: Some("max-age=120"),
            expires: Some(&expires),
            ..Default::default()
        };
        let v = Validity::of(&fields, AT);
        assert_eq!((v.store, v.fresh_for), (true, secs(120)));
        // An empty targeted field is ignored.
        let empty = ResponseFields { cdn_cache_control: Some(" "), ..fields };
        assert!(!Validity::of(&empty, AT).store);
    }

    #[test]
    fn heuristic_freshness_from_last_modified() {
        let (date, modified) = (format_http_date(NOW), format_http_date(NOW - 50_000));
        let fields = ResponseFields { date: Some(&date), last_modified: Some(&modified), ..Default::default() };
        assert_eq!(Validity::of(&fields, AT).fresh_for, secs(5_000));
        let ancient = format_http_date(NOW - 10_000_000);
        let capped = ResponseFields { last_modified: Some(&ancient), ..fields };
        assert_eq!(Validity::of(&capped, AT).fresh_for, secs(86_400));
        assert_eq!(Validity::of(&ResponseFields::default(), AT).fresh_for, Duration::ZERO);
    }

    #[test]
    fn quoted_commas_do_not_split() {
        let d = Directives::parse("no-cache=\"a, b\", max-age=7");
        assert_eq!((d.no_cache, d.max_age, d.count), (true, Some(7), 2));
    }
}
