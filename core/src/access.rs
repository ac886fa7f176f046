//! Who may read a namespace's objects: the decision on one request, from a bearer token's
//! claims that the driver has verified (signature and key) or from the authenticated node that
//! asks. Both drivers call [`decide`]; neither re-derives any part of it.
//!
//! The rules follow the WLCG Common JWT profile (v1.0) and SciTokens (v2):
//! - a scope `storage.read:/p` (WLCG) or `read:/p` (SciTokens) grants reading `/p` and
//!   everything below it, matched on whole path segments (`/john` never grants `/johnathan`);
//!   a `storage.*` scope without a path grants nothing (the profile requires one);
//! - scope paths are relative to the namespace's `base_path` in the issuer's path space;
//! - `aud` must name one of the configured audiences exactly (no prefix, no wildcard unless
//!   the configuration lists the profile's `https://wlcg.cern.ch/jwt/v1/any` itself);
//! - `exp` is strict (never accepted at or after it, by this node's clock); `nbf` tolerates at
//!   most [`MAX_SKEW_SECS`] of issuer clock running ahead.
//!
//! A decision to allow carries the instant it stops holding (`until`, the token's `exp`), so
//! a driver that memoises it can never outlive the token.

use crate::ids::NodeId;
use serde::{Deserialize, Serialize};

/// The largest tolerated clock skew for `nbf`, in seconds.
pub const MAX_SKEW_SECS: u64 = 60;

/// What a request wants to do with an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operation {
    /// GET, HEAD and ranges.
    Read,
    /// Upload a new object.
    Create,
    /// Replace or delete an object.
    Modify,
}

/// One granted scope of a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub operation: Operation,
    /// Absolute, normalised (no trailing `/` except the root).
    pub path: String,
}

impl Scope {
    /// Parses one scope word; `None` for scopes that grant nothing here (`openid`,
    /// `compute.*`, a `storage.*` scope without a path, a relative or dotted path).
    pub fn parse(word: &str) -> Option<Scope> {
        let (name, path) = word.split_once(':')?;
        let operation = match name {
            "storage.read" | "read" => Operation::Read,
            "storage.create" => Operation::Create,
            "storage.modify" | "write" => Operation::Modify,
            _ => return None,
        };
        Some(Scope { operation, path: normalise(path)? })
    }

    /// Parses a `scope` claim: space-separated words, unknown ones skipped.
    pub fn parse_claim(claim: &str) -> Vec<Scope> {
        claim.split(' ').filter_map(Scope::parse).collect()
    }

    fn grants(&self, operation: Operation, path: &str) -> bool {
        // `storage.modify` implies create (WLCG profile); nothing implies read but read.
        let op_ok =
            self.operation == operation || (self.operation == Operation::Modify && operation == Operation::Create);
        op_ok && within(path, &self.path)
    }
}

/// `path` made absolute-normalised, or `None` if it is not a clean absolute path.
fn normalise(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut out = String::new();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        if seg == "." || seg == ".." || seg.chars().any(char::is_control) {
            return None;
        }
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

/// Whether `path` is `prefix` or below it, on whole segments.
fn within(path: &str, prefix: &str) -> bool {
    prefix == "/" || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// What a verified token says, reduced to what the decision needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub issuer: String,
    pub audiences: Vec<String>,
    /// Unix seconds. A token without `exp` is refused (the profile requires it).
    pub expires: Option<u64>,
    pub not_before: Option<u64>,
    pub scopes: Vec<Scope>,
}

/// Who asks, as the driver authenticated them.
#[derive(Clone, Copy, Debug)]
pub enum Asker<'a> {
    /// A user or job, with the claims of its verified token, if it sent one.
    Client(Option<&'a Claims>),
    /// A federation node authenticated by its certificate.
    Node(NodeId),
}

/// One issuer whose tokens may grant access to a namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issuer {
    /// Matched exactly against `iss`.
    pub issuer: String,
    /// Accepted `aud` values, matched exactly.
    pub audiences: Vec<String>,
}

/// A namespace's access rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceAccess {
    /// Public namespaces are read without a token.
    pub private: bool,
    /// Issuers trusted for this namespace.
    pub issuers: Vec<Issuer>,
    /// The namespace's root in the issuers' scope paths (`/` by default).
    pub base_path: String,
    /// Nodes allowed to fetch this namespace's objects from this node; `None`: every member
    /// of the federation.
    pub nodes: Option<Vec<NodeId>>,
}

/// Why a request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Denial {
    /// A private namespace and no token.
    NoToken,
    /// The token could not be verified (signature, key, algorithm, shape): decided by the
    /// driver, reported through the same names.
    BadToken,
    Expired,
    NotYetValid,
    UnknownIssuer,
    WrongAudience,
    /// A valid token without a scope for this path and operation.
    NoScope,
    /// A federation node not allowed this namespace.
    NodeNotAllowed,
}

impl Denial {
    pub const ALL: [Denial; 8] = [
        Denial::NoToken,
        Denial::BadToken,
        Denial::Expired,
        Denial::NotYetValid,
        Denial::UnknownIssuer,
        Denial::WrongAudience,
        Denial::NoScope,
        Denial::NodeNotAllowed,
    ];

    /// 401 when the credentials are missing or unusable, 403 when they are fine but do not
    /// grant this (RFC 6750 §3.1).
    pub fn status(self) -> u16 {
        match self {
            Denial::NoScope | Denial::NodeNotAllowed => 403,
            _ => 401,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Denial::NoToken => "no_token",
            Denial::BadToken => "bad_token",
            Denial::Expired => "expired",
            Denial::NotYetValid => "not_yet_valid",
            Denial::UnknownIssuer => "unknown_issuer",
            Denial::WrongAudience => "wrong_audience",
            Denial::NoScope => "no_scope",
            Denial::NodeNotAllowed => "node_not_allowed",
        }
    }
}

/// The decision on one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; the decision holds until `until` (Unix seconds), if it ends.
    Allow {
        until: Option<u64>,
    },
    Deny(Denial),
}

/// Whether `asker` may do `operation` on `path` (the object's path inside the namespace,
/// absolute: `/dir/file`) at `now` (Unix seconds), `skew` seconds of `nbf` tolerance
/// (capped at [`MAX_SKEW_SECS`]).
pub fn decide(
    now: u64,
    skew: u64,
    rules: &NamespaceAccess,
    path: &str,
    operation: Operation,
    asker: Asker<'_>,
) -> Decision {
    let public_read = !rules.private && operation == Operation::Read;
    let claims = match asker {
        Asker::Node(node) => {
            return match &rules.nodes {
                Some(allowed) if !allowed.contains(&node) => Decision::Deny(Denial::NodeNotAllowed),
                _ => Decision::Allow { until: None },
            };
        }
        Asker::Client(_) if public_read => return Decision::Allow { until: None },
        Asker::Client(None) => return Decision::Deny(Denial::NoToken),
        Asker::Client(Some(claims)) => claims,
    };
    let Some(issuer) = rules.issuers.iter().find(|i| i.issuer == claims.issuer) else {
        return Decision::Deny(Denial::UnknownIssuer);
    };
    let Some(expires) = claims.expires else {
        return Decision::Deny(Denial::BadToken);
    };
    if now >= expires {
        return Decision::Deny(Denial::Expired);
    }
    if claims.not_before.is_some_and(|nbf| now + skew.min(MAX_SKEW_SECS) < nbf) {
        return Decision::Deny(Denial::NotYetValid);
    }
    if !claims.audiences.iter().any(|a| issuer.audiences.contains(a)) {
        return Decision::Deny(Denial::WrongAudience);
    }
    let Some(scoped) = scoped_path(&rules.base_path, path) else {
        return Decision::Deny(Denial::NoScope);
    };
    if claims.scopes.iter().any(|s| s.grants(operation, &scoped)) {
        Decision::Allow { until: Some(expires) }
    } else {
        Decision::Deny(Denial::NoScope)
    }
}

/// `path` in the issuer's scope space: below `base`.
fn scoped_path(base: &str, path: &str) -> Option<String> {
    let base = normalise(if base.is_empty() { "/" } else { base })?;
    let path = normalise(path)?;
    Some(match (base.as_str(), path.as_str()) {
        ("/", p) => p.to_string(),
        (b, "/") => b.to_string(),
        (b, p) => format!("{b}{p}"),
    })
}
