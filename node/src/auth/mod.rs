//! Bearer tokens (WLCG Common JWT profile, SciTokens): the driver's half of authorisation.
//! Here a token is *verified*: its header names an allowed algorithm (RS256 or ES256 only;
//! `none`, HS* and anything else are refused), a `kid` the issuer publishes, and the signature
//! holds. What the verified claims allow is decided by `reef_core::access`.
//!
//! Keys come from the issuer's `/.well-known/openid-configuration` → `jwks_uri` (see
//! [`keys`]). Verified claims are memoised by the token's hash, never past its `exp`.
//! Tokens are never logged: errors name what failed, not the token.

pub mod keys;

use crate::peer_transport::http_client;
use jsonwebtoken::{Algorithm, Validation};
use keys::IssuerKeys;
use reef_core::access::{Claims, Denial, Scope};
use reef_core::units::Span;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// `[[issuers]]` in a node's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The `iss` value, exactly; also where `/.well-known/openid-configuration` is found.
    pub issuer: String,
    /// Accepted `aud` values, exactly.
    pub audiences: Vec<String>,
    /// Re-fetch the issuer's keys this often (default 10 min).
    #[serde(default = "keys::default_refresh")]
    pub refresh: Span,
    /// Keep using the last keys this long after a refresh failed (default 1 h), then refuse
    /// every token of the issuer (fail closed).
    #[serde(default = "keys::default_grace")]
    pub grace: Span,
    /// At most one re-fetch per this interval for a `kid` not in the keys (default 30 s).
    #[serde(default = "keys::default_refetch")]
    pub refetch: Span,
    /// Tolerated issuer clock skew for `nbf`, at most 60 s (default 60 s).
    #[serde(default = "default_skew")]
    pub clock_skew: Span,
    /// A CA certificate (PEM) to trust for the issuer's HTTPS, besides the system's.
    pub ca: Option<std::path::PathBuf>,
}

fn default_skew() -> Span {
    Span(reef_core::Duration::from_secs(reef_core::access::MAX_SKEW_SECS))
}

/// A configured span as a std duration.
pub fn std_duration(span: Span) -> std::time::Duration {
    std::time::Duration::from_nanos(span.0.as_nanos())
}

/// Why a token could not be verified. Mapped to the core's denials for the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a JWT: {0}")]
    Malformed(String),
    #[error("algorithm {0} is not accepted (RS256 and ES256 only)")]
    Algorithm(String),
    #[error("no `kid` in the token header")]
    NoKeyId,
    #[error("issuer `{0}` is not trusted here")]
    UnknownIssuer(String),
    #[error("the issuer publishes no key `{0}`")]
    UnknownKey(String),
    #[error("the issuer's keys are unavailable: {0}")]
    KeysUnavailable(String),
    #[error("bad signature")]
    Signature,
}

impl TokenError {
    pub fn denial(&self) -> Denial {
        match self {
            TokenError::UnknownIssuer(_) => Denial::UnknownIssuer,
            _ => Denial::BadToken,
        }
    }
}

#[derive(Deserialize)]
struct RawClaims {
    iss: String,
    #[serde(default)]
    aud: Audience,
    exp: Option<f64>,
    nbf: Option<f64>,
    #[serde(default)]
    scope: String,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Audience {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

/// Largest token accepted (WLCG tokens are a few KiB at most).
pub const MAX_TOKEN: usize = 16 * 1024;
/// Memoised tokens kept at most.
const MEMO_CAP: usize = 10_000;

/// The node's token verifier: one key set per trusted issuer, and a memo of verified claims.
#[derive(Debug)]
pub struct Tokens {
    issuers: Vec<IssuerKeys>,
    memo: Mutex<HashMap<[u8; 32], Claims>>,
}

impl Tokens {
    pub fn new(issuers: &[IssuerConfig]) -> Result<Tokens, crate::tls::TlsError> {
        let mut keys = Vec::new();
        for config in issuers {
            let client = http_client(crate::tls::client_trusting(config.ca.as_deref())?, []);
            keys.push(IssuerKeys::new(config.clone(), client));
        }
        Ok(Tokens { issuers: keys, memo: Mutex::new(HashMap::new()) })
    }

    pub fn issuer(&self, iss: &str) -> Option<&IssuerConfig> {
        self.issuers.iter().map(IssuerKeys::config).find(|c| c.issuer == iss)
    }

    /// The claims of a token whose signature holds, at `now` (Unix seconds, for the memo).
    pub async fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN {
            return Err(TokenError::Malformed("longer than 16 KiB".into()));
        }
        let hash = *blake3::hash(token.as_bytes()).as_bytes();
        if let Some(claims) = self.memo.lock().unwrap_or_else(|e| e.into_inner()).get(&hash)
            && claims.expires.is_some_and(|exp| now < exp)
        {
            return Ok(claims.clone());
        }
        let claims = self.verify_fresh(token).await?;
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        if memo.len() >= MEMO_CAP {
            memo.retain(|_, c| c.expires.is_some_and(|exp| now < exp));
            if memo.len() >= MEMO_CAP {
                memo.clear();
            }
        }
        memo.insert(hash, claims.clone());
        Ok(claims)
    }

    async fn verify_fresh(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(TokenError::NoKeyId)?;
        // The issuer picks the keys; its claim is trusted only once the signature holds.
        let unverified = unverified_claims(token)?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.config().issuer == unverified.iss)
            .ok_or_else(|| TokenError::UnknownIssuer(unverified.iss.chars().take(200).collect()))?;
        let key = issuer.key(&kid).await?;
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<RawClaims>(token, &key, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::Signature,
            _ => TokenError::Malformed(e.to_string()),
        })?;
        Ok(to_claims(data.claims))
    }
}

fn unverified_claims(token: &str) -> Result<RawClaims, TokenError> {
    let mut validation = Validation::default();
    validation.insecure_disable_signature_validation();
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let key = jsonwebtoken::DecodingKey::from_secret(&[]);
    jsonwebtoken::decode::<RawClaims>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| TokenError::Malformed(e.to_string()))
}

fn to_claims(raw: RawClaims) -> Claims {
    let seconds = |t: f64| if t.is_finite() && t > 0.0 { t.floor() as u64 } else { 0 };
    Claims {
        issuer: raw.iss,
        audiences: match raw.aud {
            Audience::None => vec![],
            Audience::One(a) => vec![a],
            Audience::Many(a) => a,
        },
        expires: raw.exp.map(seconds),
        not_before: raw.nbf.map(seconds),
        scopes: Scope::parse_claim(&raw.scope),
    }
}

/// The bearer token of a request: `Authorization: Bearer <token>` (RFC 6750 §2.1).
pub fn bearer(headers: &http::HeaderMap) -> Option<Result<&str, TokenError>> {
    let value = headers.get(http::header::AUTHORIZATION)?;
    let text = value.to_str().map_err(|_| TokenError::Malformed("non-ASCII Authorization".into()));
    Some(text.and_then(|t| {
        let (scheme, token) = t.split_once(' ').ok_or_else(|| TokenError::Malformed("no token".into()))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(TokenError::Malformed("not a Bearer credential".into()));
        }
        Ok(token.trim())
    }))
}

/// A refused request: the core's reason, and the verifier's detail when it has one.
#[derive(Debug)]
pub struct Denied {
    pub denial: Denial,
    pub detail: Option<String>,
}

impl Denied {
    /// 401 with `WWW-Authenticate: Bearer` (RFC 6750 §3) or 403; no byte of the object,
    /// not even its size. `Reef-Failure` tells an asking node's core it was refused.
    pub fn response(&self) -> http::Response<crate::http::body::Body> {
        let reason = match &self.detail {
            Some(detail) => format!("{}: {detail}\n", self.denial.name()),
            None => format!("{}\n", self.denial.name()),
        };
        let mut resp = http::Response::new(crate::http::body::full(reason.clone()));
        *resp.status_mut() = http::StatusCode::from_u16(self.denial.status()).unwrap_or(http::StatusCode::FORBIDDEN);
        let h = resp.headers_mut();
        h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
        h.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(reason.len()));
        h.insert(crate::peer_transport::REEF_FAILURE, http::HeaderValue::from_static("unauthorized"));
        let challenge = match self.denial {
            Denial::NoToken => Some("Bearer realm=\"reef\""),
            Denial::NoScope => Some("Bearer realm=\"reef\", error=\"insufficient_scope\""),
            Denial::NodeNotAllowed => None,
            _ => Some("Bearer realm=\"reef\", error=\"invalid_token\""),
        };
        if let Some(c) = challenge {
            h.insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static(c));
        }
        resp
    }
}
