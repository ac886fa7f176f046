//! Per-namespace storage quotas. Each namespace with a quota gets its own partition (its own
//! policy instance); all other namespaces share a default partition sized by what remains.
//!
//! - The **share** (bytes, and optionally objects) is soft: a partition may grow past it while
//!   there is room, and under pressure the partition furthest over its share is evicted from
//!   first (bytes first; among partitions within their byte share, the one furthest over its
//!   object share), so a namespace within its share keeps its objects while another bursts.
//! - The **limits** (`max_bytes`, `max_objects`) are hard: a namespace never holds more; at a
//!   limit it evicts only its own objects, and an object bigger than its namespace's byte limit
//!   is not admitted (a fill of it passes through uncached).

use crate::ids::NamespaceId;
use crate::shaper::RateLimit;
use crate::units::{Duration, Rate, Size, Span};
use serde::{Deserialize, Serialize};

/// A namespace's quota in a cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceShare {
    pub namespace: NamespaceId,
    /// Guaranteed bytes (soft: see the module).
    pub bytes: u64,
    /// Guaranteed objects (soft; 0: none).
    #[serde(default)]
    pub objects: u64,
    /// Most bytes the namespace may hold, reservations for its fills in flight included.
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// Most objects the namespace may hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_objects: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Partition {
    pub share: u64,
    pub share_objects: u64,
    pub max_bytes: Option<u64>,
    pub max_objects: Option<u64>,
    pub used: u64,
    pub count: u64,
    /// Bytes promised to this partition's fills in flight.
    pub reserved: u64,
}

impl Partition {
    /// Whether `size` more bytes and `objects` more objects would break a hard limit.
    pub fn over_limit(&self, size: u64, objects: u64) -> bool {
        self.max_bytes.is_some_and(|m| self.used + self.reserved + size > m)
            || self.max_objects.is_some_and(|m| self.count + objects > m)
    }

    /// Whether an object of `size` bytes could ever fit under the hard limits.
    pub fn could_fit(&self, size: u64) -> bool {
        self.max_bytes.is_none_or(|m| size <= m) && self.max_objects != Some(0)
    }
}

/// Namespace -> partition, and each partition's quota and usage. Partition 0 is the default.
#[derive(Debug)]
pub(crate) struct Quotas {
    by_namespace: Vec<u16>,
    pub parts: Vec<Partition>,
}

impl Quotas {
    /// `shares` must be valid (distinct namespaces, total at most `capacity`).
    pub fn new(capacity: u64, shares: &[NamespaceShare]) -> Quotas {
        let shared: u64 = shares.iter().map(|s| s.bytes).sum();
        let mut parts = vec![Partition { share: capacity.saturating_sub(shared), ..Partition::default() }];
        let mut by_namespace = Vec::new();
        for s in shares {
            let ns = usize::from(s.namespace.0);
            if by_namespace.len() <= ns {
                by_namespace.resize(ns + 1, 0);
            }
            by_namespace[ns] = parts.len() as u16;
            parts.push(Partition {
                share: s.bytes,
                share_objects: s.objects,
                max_bytes: s.max_bytes,
                max_objects: s.max_objects,
                ..Partition::default()
            });
        }
        Quotas { by_namespace, parts }
    }

    #[inline]
    pub fn partition_of(&self, ns: NamespaceId) -> usize {
        self.by_namespace.get(usize::from(ns.0)).map_or(0, |&p| usize::from(p))
    }

    /// The partition to evict from: the one furthest over its byte share, counting the
    /// `incoming` bytes about to join partition `into`; if none is over in bytes, the one
    /// furthest over its object share; among those with something evictable. Also whether it
    /// is over a share at all. Ties go to the lower partition.
    pub fn pick(&self, into: usize, incoming: u64, evictable: impl Fn(usize) -> bool) -> Option<(usize, bool)> {
        if self.parts.len() == 1 {
            return evictable(0).then_some((0, false));
        }
        self.parts
            .iter()
            .enumerate()
            .filter(|&(p, _)| evictable(p))
            .map(|(p, part)| {
                let (used, count) =
                    if p == into { (part.used + incoming, part.count + 1) } else { (part.used, part.count) };
                let bytes_over = i128::from(used) - i128::from(part.share);
                let objects_over =
                    if part.share_objects > 0 { i128::from(count) - i128::from(part.share_objects) } else { 0 };
                (p, bytes_over.max(0), objects_over.max(0), bytes_over)
            })
            .max_by_key(|&(p, bytes, objects, raw)| (bytes, objects, raw, std::cmp::Reverse(p)))
            .map(|(p, bytes, objects, _)| (p, bytes > 0 || objects > 0))
    }
}

/// A namespace's quotas as configured: the same block in a scenario's `[[namespace]]` and in a
/// node's `[[namespaces]]` (`quota = { share = 0.4, max_share = 0.6, egress = { rate =
/// "1Gbit/s" } }`). Bytes are fractions of each cache's capacity (caches differ in size),
/// objects are counts per cache, the egress limit applies in each cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceQuota {
    /// Guaranteed fraction of the cache's bytes (soft).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
    /// Most of the cache's bytes the namespace may hold (hard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_share: Option<f64>,
    /// Guaranteed objects (soft).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<u64>,
    /// Most objects the namespace may hold (hard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_objects: Option<u64>,
    /// The namespace's egress limit to clients (see `reef_core::shaper`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<EgressQuota>,
    /// The namespace's limit on fills from its origins into the cache (the site's WAN share).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<FillQuota>,
}

/// A limit on a namespace's fills from origins, as written: `fill = { rate = "2Gbit/s" }`.
/// Fills are never refused: concurrent fills of the namespace share the rate, like flows on a
/// link of that capacity (reef-sim models it as one; reef-node meters every chunk it reads
/// from an origin through a [`Shaper`](crate::shaper::Shaper) of the rate, `burst` deep).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FillQuota {
    pub rate: Rate,
    /// Bytes read at once after an idle spell (reef-node only; default 0).
    #[serde(default)]
    pub burst: Size,
}

impl FillQuota {
    /// The limit as a shaper's: chunks queue for the rate however long it takes.
    pub fn limit(&self) -> RateLimit {
        RateLimit { rate: self.rate.0, burst: self.burst.0, max_delay: Duration(u64::MAX) }
    }
}

/// An egress limit as written: `egress = { rate = "1Gbit/s", burst = "64MiB", max_delay = "10s" }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressQuota {
    pub rate: Rate,
    /// Bytes sent at once after an idle spell (default 0: every byte at the rate).
    #[serde(default)]
    pub burst: Size,
    /// Longest wait before a response starts (default 10 s); longer means `503`.
    #[serde(default = "default_max_delay")]
    pub max_delay: Span,
}

fn default_max_delay() -> Span {
    Span(Duration::from_secs(10))
}

impl EgressQuota {
    pub fn limit(&self) -> RateLimit {
        RateLimit { rate: self.rate.0, burst: self.burst.0, max_delay: self.max_delay.0 }
    }
}

impl NamespaceQuota {
    /// Checks the quota, saying what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        for (key, f) in [("share", self.share), ("max_share", self.max_share)] {
            if let Some(f) = f
                && !(0.0..=1.0).contains(&f)
            {
                return Err(format!("`{key}`: expected a fraction of the cache between 0 and 1, got {f}"));
            }
        }
        if let (Some(share), Some(max)) = (self.share, self.max_share)
            && share > max
        {
            return Err(format!("`share` ({share}) is more than `max_share` ({max})"));
        }
        if let (Some(objects), Some(max)) = (self.objects, self.max_objects)
            && objects > max
        {
            return Err(format!("`objects` ({objects}) is more than `max_objects` ({max})"));
        }
        if let Some(egress) = self.egress {
            egress.limit().validate().map_err(|e| format!("`egress`: {e}"))?;
        }
        if let Some(fill) = self.fill {
            fill.limit().validate().map_err(|e| format!("`fill`: {e}"))?;
        }
        Ok(())
    }

    /// Whether the quota limits storage (a namespace with an egress limit only keeps sharing
    /// the cache's default partition).
    pub fn limits_storage(&self) -> bool {
        self.share.is_some() || self.max_share.is_some() || self.objects.is_some() || self.max_objects.is_some()
    }

    /// The quota in a cache of `capacity` bytes (`None` if it sets nothing).
    pub fn for_cache(&self, namespace: NamespaceId, capacity: u64) -> Option<NamespaceShare> {
        let bytes = |f: f64| (capacity as f64 * f) as u64;
        self.limits_storage().then(|| NamespaceShare {
            namespace,
            bytes: self.share.map_or(0, bytes),
            objects: self.objects.unwrap_or(0),
            max_bytes: self.max_share.map(bytes),
            max_objects: self.max_objects,
        })
    }
}

/// The quotas of a cache of `capacity` bytes, from each namespace's configured quota (by
/// namespace index); checks that the guaranteed shares fit in the cache.
pub fn quotas_for_cache(quotas: &[NamespaceQuota], capacity: u64) -> Result<Vec<NamespaceShare>, String> {
    let total: f64 = quotas.iter().filter_map(|q| q.share).sum();
    if total > 1.0 {
        return Err(format!("namespace shares add up to {total}, more than the whole cache"));
    }
    Ok(quotas.iter().enumerate().filter_map(|(i, q)| q.for_cache(NamespaceId(i as u16), capacity)).collect())
}

/// Each namespace's egress limit, from the configured quotas (by namespace index).
pub fn egress_limits(quotas: &[NamespaceQuota]) -> Vec<(NamespaceId, RateLimit)> {
    quotas.iter().enumerate().filter_map(|(i, q)| Some((NamespaceId(i as u16), q.egress?.limit()))).collect()
}
