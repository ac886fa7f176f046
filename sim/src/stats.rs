//! Statistics of a run, counted from the core's metrics events (so the simulator measures what
//! the core decided) and from the data plane the simulator plays (bytes moved, and failures of
//! requests the core never saw because their node was down).

use reef_core::{Failure, NamespaceId, Tier};
use serde::Serialize;
use std::collections::BTreeMap;

/// A log-linear histogram of nanosecond values: 64 sub-buckets per power of two (about 1.6%
/// relative precision), constant memory whatever the number of samples.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; (SUB * 60) as usize], total: 0 }
    }
}

impl Histogram {
    fn bucket(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let e = 63 - v.leading_zeros();
        let sub = (v >> (e - SUB_BITS)) & (SUB - 1);
        ((u64::from(e - SUB_BITS) + 1) * SUB + sub) as usize
    }

    /// Smallest and largest value of a bucket.
    fn bounds(b: usize) -> (u64, u64) {
        let b = b as u64;
        if b < SUB {
            return (b, b);
        }
        let e = b / SUB - 1 + u64::from(SUB_BITS);
        let lo = (1 << e) | ((b % SUB) << (e - u64::from(SUB_BITS)));
        (lo, lo + (1 << (e - u64::from(SUB_BITS))) - 1)
    }

    pub fn record(&mut self, v: u64) {
        let b = Self::bucket(v).min(self.counts.len() - 1);
        self.counts[b] += 1;
        self.total += 1;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// (upper value of a bucket, fraction of samples at or below it) for every non-empty bucket.
    pub fn cdf(&self) -> impl Iterator<Item = (u64, f64)> + '_ {
        let total = self.total.max(1) as f64;
        let mut seen = 0;
        self.counts.iter().enumerate().filter(|(_, c)| **c > 0).map(move |(b, &c)| {
            seen += c;
            (Self::bounds(b).1, seen as f64 / total)
        })
    }

    /// The value at quantile `q` (0..=1): the middle of the bucket holding it; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, hi) = Self::bounds(b);
                return lo + (hi - lo) / 2;
            }
        }
        unreachable!("rank is at most the total")
    }
}

/// Where a served request's bytes came from, seen from the client's site: the store (or
/// origin) that held them, however many caches relayed them on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BytesFrom {
    /// A worker node of the client's site (the one it asked, or a neighbour).
    WorkerNode,
    /// A cache of the client's site.
    SiteCache,
    /// A cache at a site of a higher tier (a Tier-1 for a Tier-2's client).
    ParentTier,
    /// A cache at another site of the same or a lower tier.
    OtherSite,
    /// An origin server.
    Origin,
}

impl BytesFrom {
    pub fn name(self) -> &'static str {
        match self {
            BytesFrom::WorkerNode => "worker_node",
            BytesFrom::SiteCache => "site_cache",
            BytesFrom::ParentTier => "parent_tier",
            BytesFrom::OtherSite => "other_site",
            BytesFrom::Origin => "origin",
        }
    }
}

/// Counters of one group of requests (all, or one tier's).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counters {
    pub requests: u64,
    pub completed: u64,
    pub failed: u64,
    /// Failed requests refused by the access decision (private namespaces; part of `failed`).
    pub denied: u64,
    /// Served requests by where their bytes came from (in `BytesFrom` order).
    pub served_from: [u64; 5],
    /// Served requests whose bytes were copied by two or more caches' fills on the way.
    pub relayed: u64,
    pub bytes_requested: u64,
    pub bytes_served: u64,
    /// Bytes of requests whose bytes came from an origin.
    pub bytes_served_origin: u64,
    /// Objects evicted from any cache (kept per namespace only: an eviction is a cache's).
    pub evicted: u64,
    /// Requests that found a copy older than the namespace's `max_age` (each revalidated).
    pub expired: u64,
    /// Client responses the namespace's egress limit held back, the time they waited in all,
    /// and the requests it refused (503; each try counts). Kept per namespace only.
    pub egress_delayed: u64,
    pub egress_delay_ns: u64,
    pub egress_refused: u64,
}

impl Counters {
    fn outcome(&mut self, outcome: Result<(BytesFrom, u8), ()>, size: u64) {
        match outcome {
            Ok((from, relays)) => {
                self.completed += 1;
                self.bytes_served += size;
                self.served_from[from as usize] += 1;
                self.relayed += u64::from(relayed(relays));
                if from == BytesFrom::Origin {
                    self.bytes_served_origin += size;
                }
            }
            Err(()) => self.failed += 1,
        }
    }

    pub fn served(&self, from: BytesFrom) -> u64 {
        self.served_from[from as usize]
    }

    /// Served requests whose bytes were already at the client's site (a worker node or the
    /// site cache): the site's own hit ratio.
    pub fn site_hit_ratio(&self) -> f64 {
        ratio(self.served(BytesFrom::WorkerNode) + self.served(BytesFrom::SiteCache), self.completed)
    }
}

/// Whether bytes that passed through `fills` caches' fills count as relayed: copied by two or
/// more caches on the way (a worker node's miss that its site cache also missed is one).
pub fn relayed(fills: u8) -> bool {
    fills >= 2
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Everything counted during a run.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub all: Counters,
    pub tiers: [Counters; 4],
    /// By namespace id (grown as namespaces are seen).
    pub namespaces: Vec<Counters>,
    /// Failed requests by reason (the core's `Failure` names, plus the simulator's own:
    /// `node_down` for a request whose node was down, `unfinished` at the hard stop).
    pub failures: BTreeMap<&'static str, u64>,
    pub origin_fetches: u64,
    pub peer_fetches: u64,
    pub failovers: u64,
    /// Client requests re-sent to the next cache because the one asked was down.
    pub client_failovers: u64,
    pub coalesced: u64,
    pub admitted: u64,
    pub not_admitted: u64,
    pub evicted: u64,
    pub peer_down: u64,
    /// Discovery lookups, their sequential hops, and how many found a source besides origins.
    pub lookups: u64,
    pub lookup_hops: u64,
    pub lookups_found: u64,
    /// Completed transfers from origins, and their bytes.
    pub origin_transfers: u64,
    pub bytes_from_origin: u64,
    pub bytes_wan: u64,
    pub bytes_lan: u64,
    pub transfers: u64,
    pub transfers_broken: u64,
    /// Time to first byte of served requests, in nanoseconds.
    pub latency: Histogram,
    /// Time to last byte of served requests, in nanoseconds.
    pub duration: Histogram,
    /// Streamed responses aborted because their fill failed for good.
    pub streams_broken: u64,
    /// Damaged copies (`corrupt` faults) found when read, dropped and fetched again.
    pub damaged_found: u64,
    /// Fills that found their node's disk full (`disk_full` faults) and failed with `no_space`.
    pub no_room: u64,
}

/// The failure reason of a refused request: `denied_` and the core's denial name.
pub fn denial_reason(d: reef_core::access::Denial) -> &'static str {
    use reef_core::access::Denial::*;
    match d {
        NoToken => "denied_no_token",
        BadToken => "denied_bad_token",
        Expired => "denied_expired",
        NotYetValid => "denied_not_yet_valid",
        UnknownIssuer => "denied_unknown_issuer",
        WrongAudience => "denied_wrong_audience",
        NoScope => "denied_no_scope",
        NodeNotAllowed => "denied_node_not_allowed",
    }
}

fn tier_index(t: Tier) -> usize {
    match t {
        Tier::T0 => 0,
        Tier::T1 => 1,
        Tier::T2 => 2,
        Tier::T3 => 3,
    }
}

impl Stats {
    pub fn issued(&mut self, tier: Tier, ns: NamespaceId, size: u64) {
        for c in [&mut self.all, &mut self.tiers[tier_index(tier)]] {
            c.requests += 1;
            c.bytes_requested += size;
        }
        let c = self.namespace(ns);
        c.requests += 1;
        c.bytes_requested += size;
    }

    pub fn namespace(&mut self, ns: NamespaceId) -> &mut Counters {
        let i = usize::from(ns.0);
        if self.namespaces.len() <= i {
            self.namespaces.resize_with(i + 1, Counters::default);
        }
        &mut self.namespaces[i]
    }

    /// A client request ended with the core's outcome.
    pub fn completed(
        &mut self,
        tier: Tier,
        ns: NamespaceId,
        size: u64,
        outcome: Result<(BytesFrom, u8), Failure>,
        latency_ns: u64,
        duration_ns: u64,
    ) {
        match outcome {
            Ok(_) => {
                self.latency.record(latency_ns);
                self.duration.record(duration_ns);
            }
            Err(f) => *self.failures.entry(f.name()).or_default() += 1,
        }
        let o = outcome.map_err(|_| ());
        self.all.outcome(o, size);
        self.tiers[tier_index(tier)].outcome(o, size);
        self.namespace(ns).outcome(o, size);
    }

    /// A client request the core could not answer (its node was down, or the run stopped).
    pub fn failed_in_driver(&mut self, tier: Tier, ns: NamespaceId, reason: &'static str) {
        *self.failures.entry(reason).or_default() += 1;
        self.all.outcome(Err(()), 0);
        self.tiers[tier_index(tier)].outcome(Err(()), 0);
        self.namespace(ns).outcome(Err(()), 0);
    }

    /// A client request refused by the access decision at the first node it asked.
    pub fn denied(&mut self, tier: Tier, ns: NamespaceId, denial: reef_core::access::Denial) {
        self.failed_in_driver(tier, ns, denial_reason(denial));
        self.all.denied += 1;
        self.tiers[tier_index(tier)].denied += 1;
        self.namespace(ns).denied += 1;
    }

    /// Requests served without a transfer from an origin (the CDN's origin offload).
    pub fn object_hit_ratio(&self) -> f64 {
        ratio(self.all.completed.saturating_sub(self.origin_transfers), self.all.completed)
    }

    /// Bytes served without a transfer from an origin.
    pub fn byte_hit_ratio(&self) -> f64 {
        ratio(self.all.bytes_served.saturating_sub(self.bytes_from_origin), self.all.bytes_served)
    }

    pub fn per_tier(&self) -> impl Iterator<Item = (Tier, &Counters)> {
        Tier::ALL.into_iter().map(|t| (t, &self.tiers[tier_index(t)])).filter(|(_, c)| c.requests > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_within_its_precision() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        for (q, want) in [(0.5, 50_000_000.0), (0.9, 90_000_000.0), (0.99, 99_000_000.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.quantile(0.5), h.quantile(0.5));
        for v in [0, 1, 63, 64, 65, 1000, 1 << 40, u64::MAX >> 5] {
            let (lo, hi) = Histogram::bounds(Histogram::bucket(v));
            assert!(lo <= v && v <= hi, "{v} not in [{lo}, {hi}]");
        }
    }

    #[test]
    fn hit_ratios_count_origin_transfers_as_misses() {
        let mut s = Stats::default();
        for _ in 0..4 {
            s.issued(Tier::T2, NamespaceId(0), 100);
        }
        s.completed(Tier::T2, NamespaceId(0), 100, Ok((BytesFrom::SiteCache, 0)), 1, 2);
        s.completed(Tier::T2, NamespaceId(0), 100, Ok((BytesFrom::Origin, 2)), 1, 2);
        s.completed(Tier::T2, NamespaceId(0), 100, Err(Failure::AllSourcesDown), 1, 2);
        s.failed_in_driver(Tier::T2, NamespaceId(0), "node_down");
        s.origin_transfers = 1;
        s.bytes_from_origin = 100;
        assert_eq!((s.all.completed, s.all.failed), (2, 2));
        assert_eq!(s.object_hit_ratio(), 0.5);
        assert_eq!(s.byte_hit_ratio(), 0.5);
        assert_eq!(s.all.site_hit_ratio(), 0.5);
        assert_eq!(s.all.relayed, 1);
        assert_eq!(s.failures["all_sources_down"], 1);
        assert_eq!(s.failures["node_down"], 1);
    }
}
