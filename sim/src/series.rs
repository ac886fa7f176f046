//! Time series of a run: per time bucket and site, what clients asked for and where it came
//! from; per time bucket and link, the bytes carried; a deterministic sample of single requests;
//! and latency distributions per tier. The results layer turns these into tables and figures.
//!
//! Requests count in the bucket they were issued in, outcomes in the bucket they ended in, so
//! every column sums to the run's totals (but for requests never issued before the hard stop,
//! which have no site).

use crate::stats::{BytesFrom, Histogram, relayed};
use reef_core::{Duration, NamespaceId, Tier, Time};
pub use reef_results::{NamespaceCounts, SiteCounts};

/// One sampled request.
#[derive(Clone, Debug, PartialEq)]
pub struct SampledRequest {
    pub issued: Time,
    pub site: u32,
    pub tier: Tier,
    pub object: u64,
    pub bytes: u64,
    /// Where the bytes came from (`BytesFrom::name`) or `failed`.
    pub source: &'static str,
    pub latency: Duration,
    pub lookup_hops: u32,
}

/// Counts a namespace's request that ended: served with bytes from `from`, or failed.
pub fn count_outcome(c: &mut NamespaceCounts, from: Option<BytesFrom>, size: u64) {
    match from {
        Some(from) => {
            c.completed += 1;
            c.bytes_served += size;
            c.site_hits += u64::from(matches!(from, BytesFrom::WorkerNode | BytesFrom::SiteCache));
        }
        None => c.failed += 1,
    }
}

#[derive(Clone, Debug)]
pub struct Series {
    pub bucket: Duration,
    sites: usize,
    /// `buckets[b * sites + site]`.
    buckets: Vec<SiteCounts>,
    links: usize,
    /// `link_bytes[b * links + link]`.
    link_bytes: Vec<f64>,
    /// Keep one request in `sample_every` (0: none).
    sample_every: u64,
    pub sampled: Vec<SampledRequest>,
    /// Time to first byte per tier (T0..T3), nanoseconds.
    pub latency: [Histogram; 4],
    namespaces: usize,
    /// `by_namespace[b * namespaces + ns]` (kept with two namespaces or more).
    by_namespace: Vec<NamespaceCounts>,
}

impl Series {
    /// `sample` is the fraction of requests to keep, 0..=1.
    pub fn new(bucket: Duration, sites: usize, links: usize, namespaces: usize, sample: f64) -> Series {
        let sample_every = if sample <= 0.0 { 0 } else { (1.0 / sample.min(1.0)).round().max(1.0) as u64 };
        Series {
            bucket: Duration(bucket.0.max(1)),
            sites,
            buckets: Vec::new(),
            links,
            link_bytes: Vec::new(),
            sample_every,
            sampled: Vec::new(),
            latency: Default::default(),
            namespaces: if namespaces > 1 { namespaces } else { 0 },
            by_namespace: Vec::new(),
        }
    }

    /// The counters of namespace `ns` in the bucket of `t` (`None` with one namespace).
    pub fn namespace(&mut self, t: Time, ns: NamespaceId) -> Option<&mut NamespaceCounts> {
        let (b, n) = (self.index(t), self.namespaces);
        if usize::from(ns.0) >= n {
            return None;
        }
        if self.by_namespace.len() < (b + 1) * n {
            self.by_namespace.resize((b + 1) * n, NamespaceCounts::default());
        }
        Some(&mut self.by_namespace[b * n + usize::from(ns.0)])
    }

    /// Namespace `ns`'s counters in bucket `b` (zero past the end).
    pub fn namespace_bucket(&self, b: usize, ns: usize) -> NamespaceCounts {
        self.by_namespace.get(b * self.namespaces + ns).copied().unwrap_or_default()
    }

    /// Whether namespaces are counted per bucket.
    pub fn by_namespace(&self) -> bool {
        self.namespaces > 0
    }

    fn index(&self, t: Time) -> usize {
        (t.as_nanos() / self.bucket.0) as usize
    }

    fn site(&mut self, t: Time, site: u32) -> &mut SiteCounts {
        let b = self.index(t);
        let need = (b + 1) * self.sites;
        if self.buckets.len() < need {
            self.buckets.resize(need, SiteCounts::default());
        }
        &mut self.buckets[b * self.sites + site as usize]
    }

    pub fn sampling(&self) -> bool {
        self.sample_every != 0
    }

    /// Whether the `n`-th client request is in the sample (every k-th: no randomness, so
    /// sampling never changes the run).
    pub fn samples(&self, n: u64) -> bool {
        self.sample_every != 0 && n % self.sample_every == 0
    }

    pub fn issued(&mut self, t: Time, site: u32) {
        self.site(t, site).requests += 1;
    }

    #[allow(clippy::too_many_arguments)]
    pub fn completed(
        &mut self,
        t: Time,
        site: u32,
        tier: Tier,
        size: u64,
        from: BytesFrom,
        relays: u8,
        latency: Duration,
    ) {
        self.latency[tier as usize].record(latency.as_nanos());
        let b = self.site(t, site);
        b.completed += 1;
        b.relayed += u64::from(relayed(relays));
        match from {
            BytesFrom::WorkerNode => b.from_worker_node += 1,
            BytesFrom::SiteCache => b.from_site_cache += 1,
            BytesFrom::ParentTier => b.from_parent_tier += 1,
            BytesFrom::OtherSite => b.from_other_site += 1,
            BytesFrom::Origin => {}
        }
        // The coarse split: the client's own site, another site's cache, an origin.
        let (hits, bytes) = match from {
            BytesFrom::WorkerNode | BytesFrom::SiteCache => (&mut b.hits_local, &mut b.bytes_local),
            BytesFrom::ParentTier | BytesFrom::OtherSite => (&mut b.hits_peer, &mut b.bytes_peer),
            BytesFrom::Origin => (&mut b.hits_origin, &mut b.bytes_origin),
        };
        *hits += 1;
        *bytes += size;
    }

    pub fn failed(&mut self, t: Time, site: u32) {
        self.site(t, site).failed += 1;
    }

    pub fn admitted(&mut self, t: Time, site: u32, size: u64) {
        self.site(t, site).cache_fill_bytes += size;
    }

    pub fn origin_sent(&mut self, t: Time, site: u32, size: u64) {
        self.site(t, site).origin_egress_bytes += size;
    }

    /// The bytes WAN link `link` carried in each bucket, in order (the flow model's meter,
    /// integrated from the solved rates).
    pub fn record_link(&mut self, link: u32, per_bucket: impl Iterator<Item = f64>) {
        for (b, bytes) in per_bucket.enumerate() {
            let need = (b + 1) * self.links;
            if self.link_bytes.len() < need {
                self.link_bytes.resize(need, 0.0);
            }
            self.link_bytes[b * self.links + link as usize] += bytes;
        }
    }

    pub fn sample(&mut self, r: SampledRequest) {
        self.sampled.push(r);
    }

    /// Number of buckets recorded (by sites, links or namespaces).
    pub fn bucket_count(&self) -> usize {
        (self.buckets.len() / self.sites.max(1))
            .max(self.link_bytes.len() / self.links.max(1))
            .max(self.by_namespace.len() / self.namespaces.max(1))
    }

    /// The counters of `site` in bucket `b` (zero past the end).
    pub fn site_bucket(&self, b: usize, site: usize) -> SiteCounts {
        self.buckets.get(b * self.sites + site).copied().unwrap_or_default()
    }

    /// Bytes `link` carried in bucket `b`, rounded to whole bytes.
    pub fn link_bucket(&self, b: usize, link: usize) -> u64 {
        self.link_bytes.get(b * self.links + link).map_or(0, |&v| v.round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_bytes_land_in_their_link_and_bucket() {
        let mut s = Series::new(Duration::from_secs(10), 1, 2, 1, 0.0);
        s.record_link(1, [250.0, 500.4, 249.6].into_iter());
        assert_eq!((0..3).map(|b| s.link_bucket(b, 1)).collect::<Vec<_>>(), [250, 500, 250]);
        assert_eq!(s.link_bucket(1, 0), 0, "other links carry nothing");
        assert_eq!(s.bucket_count(), 3);
    }

    #[test]
    fn outcomes_land_in_their_site_and_bucket() {
        let mut s = Series::new(Duration::from_secs(60), 2, 0, 1, 0.5);
        let t = Time::ZERO + Duration::from_secs(61);
        s.issued(Time::ZERO, 1);
        s.completed(t, 1, Tier::T2, 300, BytesFrom::ParentTier, 1, Duration::from_millis(5));
        s.failed(t, 0);
        assert_eq!(s.site_bucket(0, 1).requests, 1);
        assert_eq!((s.site_bucket(1, 1).hits_peer, s.site_bucket(1, 1).bytes_peer), (1, 300));
        assert_eq!((s.site_bucket(1, 1).from_parent_tier, s.site_bucket(1, 1).relayed), (1, 0));
        assert_eq!(s.site_bucket(1, 0).failed, 1);
        assert_eq!(s.latency[Tier::T2 as usize].count(), 1);
        assert!(s.samples(0) && !s.samples(1) && s.samples(2));
    }
}
