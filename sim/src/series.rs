//! Time series of a run: per time bucket and site, what clients asked for and where it came
//! from; per time bucket and link, the bytes carried; a deterministic sample of single requests;
//! and latency distributions per tier. The results layer turns these into tables and figures.
//!
//! Requests count in the bucket they were issued in, outcomes in the bucket they ended in, so
//! every column sums to the run's totals (but for requests never issued before the hard stop,
//! which have no site).

use crate::stats::Histogram;
use reef_core::{Duration, Source, Tier, Time};
pub use reef_results::SiteCounts;

/// One sampled request.
#[derive(Clone, Debug, PartialEq)]
pub struct SampledRequest {
    pub issued: Time,
    pub site: u32,
    pub tier: Tier,
    pub object: u64,
    pub bytes: u64,
    /// `local`, `peer`, `origin` or `failed`.
    pub source: &'static str,
    pub latency: Duration,
    pub lookup_hops: u32,
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
}

impl Series {
    /// `sample` is the fraction of requests to keep, 0..=1.
    pub fn new(bucket: Duration, sites: usize, links: usize, sample: f64) -> Series {
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
        }
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

    pub fn completed(&mut self, t: Time, site: u32, tier: Tier, size: u64, source: Source, latency: Duration) {
        self.latency[tier as usize].record(latency.as_nanos());
        let b = self.site(t, site);
        b.completed += 1;
        match source {
            Source::Local => (b.hits_local, b.bytes_local) = (b.hits_local + 1, b.bytes_local + size),
            Source::Peer { .. } => (b.hits_peer, b.bytes_peer) = (b.hits_peer + 1, b.bytes_peer + size),
            Source::Origin { .. } => (b.hits_origin, b.bytes_origin) = (b.hits_origin + 1, b.bytes_origin + size),
        }
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

    /// A transfer of `bytes` over `links` from `start` to `end`: its bytes are spread evenly
    /// over its lifetime (the flow's rate changed meanwhile, but only by sharing, so this is
    /// exact for a lone flow and a close estimate for shared ones).
    pub fn carried(&mut self, links: &[u32], start: Time, end: Time, bytes: u64) {
        let (first, last) = (self.index(start), self.index(end));
        let need = (last + 1) * self.links;
        if self.link_bytes.len() < need {
            self.link_bytes.resize(need, 0.0);
        }
        let span = (end - start).as_nanos().max(1) as f64;
        for b in first..=last {
            let lo = start.as_nanos().max(b as u64 * self.bucket.0);
            let hi = end.as_nanos().min((b as u64 + 1) * self.bucket.0);
            let share = if first == last { bytes as f64 } else { bytes as f64 * hi.saturating_sub(lo) as f64 / span };
            for &l in links {
                if (l as usize) < self.links {
                    self.link_bytes[b * self.links + l as usize] += share;
                }
            }
        }
    }

    pub fn sample(&mut self, r: SampledRequest) {
        self.sampled.push(r);
    }

    /// Number of buckets recorded (by sites or links).
    pub fn bucket_count(&self) -> usize {
        (self.buckets.len() / self.sites.max(1)).max(self.link_bytes.len() / self.links.max(1))
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
    fn a_transfer_spreads_its_bytes_over_the_buckets_it_spans() {
        let mut s = Series::new(Duration::from_secs(10), 1, 2, 0.0);
        // 5 s to 25 s: a quarter, a half and a quarter of the bytes.
        s.carried(&[1, 7], Time::ZERO + Duration::from_secs(5), Time::ZERO + Duration::from_secs(25), 1000);
        assert_eq!((0..3).map(|b| s.link_bucket(b, 1)).collect::<Vec<_>>(), [250, 500, 250]);
        assert_eq!(s.link_bucket(1, 0), 0, "other links carry nothing; link 7 is not a WAN link");
        assert_eq!(s.bucket_count(), 3);
    }

    #[test]
    fn outcomes_land_in_their_site_and_bucket() {
        let mut s = Series::new(Duration::from_secs(60), 2, 0, 0.5);
        let t = Time::ZERO + Duration::from_secs(61);
        s.issued(Time::ZERO, 1);
        s.completed(
            t,
            1,
            Tier::T2,
            300,
            Source::Peer { node: reef_core::NodeId(3), level: 0 },
            Duration::from_millis(5),
        );
        s.failed(t, 0);
        assert_eq!(s.site_bucket(0, 1).requests, 1);
        assert_eq!((s.site_bucket(1, 1).hits_peer, s.site_bucket(1, 1).bytes_peer), (1, 300));
        assert_eq!(s.site_bucket(1, 0).failed, 1);
        assert_eq!(s.latency[Tier::T2 as usize].count(), 1);
        assert!(s.samples(0) && !s.samples(1) && s.samples(2));
    }
}
