//! How a cache is configured: capacity, policy, watermarks, object limit, admission, shares.

use super::admission::Admission;
use super::quota::NamespaceShare;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Eviction policy, selectable by name (the same names in files and on the command line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PolicyKind {
    #[default]
    #[serde(rename = "lru")]
    Lru,
    #[serde(rename = "fifo")]
    Fifo,
    #[serde(rename = "clock")]
    Clock,
    /// LFU: the least frequently used object (hits while cached) leaves, ties to the least
    /// recently used (libCacheSim's `LFU`).
    #[serde(rename = "lfu")]
    Lfu,
    /// LFU with dynamic aging (Arlitt et al. 2000; libCacheSim's `LFUDA`).
    #[serde(rename = "lfuda")]
    LfuDa,
    #[serde(rename = "s3fifo")]
    S3Fifo,
    #[serde(rename = "sieve")]
    Sieve,
    #[serde(rename = "arc")]
    Arc,
    #[serde(rename = "2q")]
    TwoQ,
    #[serde(rename = "gdsf")]
    Gdsf,
    #[serde(rename = "wtinylfu")]
    WTinyLfu,
    /// The offline optimum: needs each access's next access time (see `Cache::access`).
    #[serde(rename = "belady")]
    Belady,
}

impl PolicyKind {
    pub const ALL: [PolicyKind; 12] = [
        PolicyKind::Lru,
        PolicyKind::Fifo,
        PolicyKind::Clock,
        PolicyKind::Lfu,
        PolicyKind::LfuDa,
        PolicyKind::S3Fifo,
        PolicyKind::Sieve,
        PolicyKind::Arc,
        PolicyKind::TwoQ,
        PolicyKind::Gdsf,
        PolicyKind::WTinyLfu,
        PolicyKind::Belady,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Lru => "lru",
            PolicyKind::Fifo => "fifo",
            PolicyKind::Clock => "clock",
            PolicyKind::Lfu => "lfu",
            PolicyKind::LfuDa => "lfuda",
            PolicyKind::S3Fifo => "s3fifo",
            PolicyKind::Sieve => "sieve",
            PolicyKind::Arc => "arc",
            PolicyKind::TwoQ => "2q",
            PolicyKind::Gdsf => "gdsf",
            PolicyKind::WTinyLfu => "wtinylfu",
            PolicyKind::Belady => "belady",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PolicyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        PolicyKind::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| {
            let names: Vec<&str> = PolicyKind::ALL.iter().map(|p| p.name()).collect();
            format!("unknown eviction policy `{s}`; expected one of: {}", names.join(", "))
        })
    }
}

fn one() -> f64 {
    1.0
}

/// How a cache is sized and which policy it runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheConfig {
    /// Capacity in bytes: the cache never holds more.
    pub capacity: u64,
    pub policy: PolicyKind,
    /// Fraction of the capacity that, once an insert would cross it, starts an eviction round
    /// (site caches purge in batches, from a high to a low watermark). Default 1.
    #[serde(default = "one")]
    pub high_watermark: f64,
    /// Fraction of the capacity an eviction round frees down to. Default 1 (evict just enough).
    #[serde(default = "one")]
    pub low_watermark: f64,
    /// Maximum number of objects (file systems run out of inodes before bytes with many small
    /// files). `None`: no limit.
    #[serde(default)]
    pub max_objects: Option<u64>,
    /// Admission rules, all of which must admit an object (empty: admit everything).
    #[serde(default)]
    pub admission: Vec<Admission>,
    /// Soft per-namespace shares; together at most `capacity`.
    #[serde(default)]
    pub quotas: Vec<NamespaceShare>,
    /// Seed of the cache's own random generator (probabilistic admission).
    #[serde(default)]
    pub seed: u64,
}

impl CacheConfig {
    pub fn new(capacity: u64, policy: PolicyKind) -> Self {
        CacheConfig {
            capacity,
            policy,
            high_watermark: 1.0,
            low_watermark: 1.0,
            max_objects: None,
            admission: Vec::new(),
            quotas: Vec::new(),
            seed: 0,
        }
    }

    /// Checks the configuration, saying what is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (lo, hi) = (self.low_watermark, self.high_watermark);
        if !(lo > 0.0 && lo <= hi && hi <= 1.0) {
            return Err(ConfigError::Watermarks { low: lo, high: hi });
        }
        if self.max_objects == Some(0) {
            return Err(ConfigError::ZeroMaxObjects);
        }
        for a in &self.admission {
            match *a {
                Admission::SecondHit { window: 0 } => {
                    return Err(ConfigError::Admission("second-hit window must be at least 1"));
                }
                Admission::ProbabilisticBySize { scale: 0 } => {
                    return Err(ConfigError::Admission("probabilistic-by-size scale must be at least 1 byte"));
                }
                _ => {}
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut total: u64 = 0;
        for q in &self.quotas {
            if !seen.insert(q.namespace) {
                return Err(ConfigError::DuplicateShare(q.namespace.0));
            }
            total = total.saturating_add(q.bytes);
        }
        if total > self.capacity {
            return Err(ConfigError::SharesExceedCapacity { shares: total, capacity: self.capacity });
        }
        if self.quotas.len() >= usize::from(u16::MAX) {
            return Err(ConfigError::TooManyShares);
        }
        Ok(())
    }
}

/// Why a cache configuration is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("watermarks must satisfy 0 < low <= high <= 1 (fractions of the capacity); got low {low}, high {high}")]
    Watermarks { low: f64, high: f64 },
    #[error("max_objects must be at least 1")]
    ZeroMaxObjects,
    #[error("admission: {0}")]
    Admission(&'static str),
    #[error("namespace {0} has more than one storage share")]
    DuplicateShare(u16),
    #[error("namespace shares add up to {shares} bytes, more than the capacity of {capacity}")]
    SharesExceedCapacity { shares: u64, capacity: u64 },
    #[error("too many namespace shares")]
    TooManyShares,
}
