//! One issuer's signing keys: discovered from `<issuer>/.well-known/openid-configuration` →
//! `jwks_uri`, kept for `refresh`, re-fetched at most once per `refetch` for a `kid` not in
//! them (key rotation), and used for `grace` after the issuer stopped answering; after that
//! every token of the issuer is refused (fail closed).

use super::{IssuerConfig, TokenError, std_duration};
use crate::peer_transport::HttpClient;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;
use reef_core::units::Span;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn default_refresh() -> Span {
    Span(reef_core::Duration::from_secs(600))
}
pub fn default_grace() -> Span {
    Span(reef_core::Duration::from_secs(3600))
}
pub fn default_refetch() -> Span {
    Span(reef_core::Duration::from_secs(30))
}

/// Largest discovery document or key set accepted.
const MAX_DOCUMENT: usize = 256 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    keys: HashMap<String, Arc<DecodingKey>>,
    /// When the keys were last fetched successfully.
    fetched: Option<Instant>,
    /// When a fetch was last tried (success or not).
    tried: Option<Instant>,
}

pub struct IssuerKeys {
    config: IssuerConfig,
    client: HttpClient,
    state: Mutex<State>,
    /// One fetch at a time; the others wait for its result.
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKeys").field("issuer", &self.config.issuer).finish_non_exhaustive()
    }
}

enum Need {
    Use(Arc<DecodingKey>),
    Fetch,
    Fail(TokenError),
}

impl IssuerKeys {
    pub fn new(config: IssuerConfig, client: HttpClient) -> IssuerKeys {
        IssuerKeys { config, client, state: Mutex::default(), fetching: tokio::sync::Mutex::new(()) }
    }

    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// The key `kid`, fetching the issuer's keys if they are stale or lack it.
    pub async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, TokenError> {
        if let Need::Use(key) = self.need(kid, Instant::now()) {
            return Ok(key);
        }
        let _one = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        match self.need(kid, Instant::now()) {
            Need::Use(key) => return Ok(key),
            Need::Fail(e) => return Err(e),
            Need::Fetch => {}
        }
        let fetched = self.fetch().await;
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.tried = Some(now);
        match fetched {
            Ok(keys) => {
                tracing::info!(issuer = %self.config.issuer, keys = keys.len(), "fetched the issuer's keys");
                state.keys = keys;
                state.fetched = Some(now);
            }
            Err(e) => tracing::warn!(issuer = %self.config.issuer, error = %e, "cannot fetch the issuer's keys"),
        }
        drop(state);
        match self.need(kid, now) {
            Need::Use(key) => Ok(key),
            Need::Fail(e) => Err(e),
            Need::Fetch => Err(TokenError::UnknownKey(short(kid))),
        }
    }

    fn need(&self, kid: &str, now: Instant) -> Need {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (refresh, grace, refetch) =
            (std_duration(self.config.refresh), std_duration(self.config.grace), std_duration(self.config.refetch));
        let age = state.fetched.map(|t| now.duration_since(t));
        let may_try = state.tried.is_none_or(|t| now.duration_since(t) >= refetch);
        match (age, state.keys.get(kid)) {
            (Some(age), Some(key)) if age < refresh => Need::Use(key.clone()),
            // Stale: refresh (rate-limited), else use within the grace.
            (Some(age), Some(key)) => {
                if may_try {
                    Need::Fetch
                } else if age < refresh + grace {
                    Need::Use(key.clone())
                } else {
                    Need::Fail(TokenError::KeysUnavailable("the last keys are older than the grace".into()))
                }
            }
            _ if may_try => Need::Fetch,
            (Some(age), None) if age < refresh + grace => Need::Fail(TokenError::UnknownKey(short(kid))),
            (None, _) => Need::Fail(TokenError::KeysUnavailable("never fetched".into())),
            (Some(_), None) => Need::Fail(TokenError::KeysUnavailable("the last keys are older than the grace".into())),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
        let base = self.config.issuer.trim_end_matches('/');
        let discovery: serde_json::Value = self.get_json(&format!("{base}/.well-known/openid-configuration")).await?;
        let jwks_uri =
            discovery.get("jwks_uri").and_then(|v| v.as_str()).ok_or("no `jwks_uri` in the discovery document")?;
        let set: serde_json::Value = self.get_json(jwks_uri).await?;
        let entries = set.get("keys").and_then(|k| k.as_array()).ok_or("no `keys` array in the key set")?;
        let mut keys = HashMap::new();
        for entry in entries {
            // Keys of kinds this node cannot use are skipped, not fatal.
            let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else { continue };
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(&jwk)) else { continue };
            keys.insert(kid, Arc::new(key));
        }
        Ok(keys)
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, String> {
        let req = Request::get(url).body(Full::new(Bytes::new())).map_err(|e| format!("{url}: {e}"))?;
        let fetch = async {
            let resp = self.client.request(req).await.map_err(|e| format!("{url}: {e}"))?;
            if resp.status() != StatusCode::OK {
                return Err(format!("{url}: status {}", resp.status()));
            }
            let body = Limited::new(resp.into_body(), MAX_DOCUMENT)
                .collect()
                .await
                .map_err(|e| format!("{url}: {e}"))?
                .to_bytes();
            serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
        };
        tokio::time::timeout(FETCH_TIMEOUT, fetch).await.map_err(|_| format!("{url}: timed out"))?
    }
}

/// A `kid` for an error message, bounded.
fn short(kid: &str) -> String {
    kid.chars().take(64).collect()
}
