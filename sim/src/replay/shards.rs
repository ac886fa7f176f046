//! Approximate LRU miss-ratio curves in one pass: SHARDS (Waldspurger, Park, Garthwaite and
//! Ahmad, FAST 2015), fixed-rate variant, with byte-weighted stack distances.
//!
//! LRU has the inclusion property: a request hits a cache of `C` bytes exactly when the bytes of
//! the distinct objects requested since its object's previous request, plus its own size, are at
//! most `C`. So one pass that measures that distance for every request answers every cache size
//! at once. SHARDS measures it only for the objects whose id hashes below `rate` of the hash
//! space (spatial sampling: an object is either always or never sampled), and scales the
//! distances up by `1 / rate`.
//!
//! What is approximate, and why:
//! - Sampling. Ratios are normalised by the *expected* number of sampled requests (`rate` times
//!   the requests counted) rather than the number actually sampled, the paper's SHARDS_adj
//!   correction for a sample that happens to hold a few more or fewer popular objects. At
//!   `rate = 1` nothing is sampled away and the curve is exact for equal-sized objects.
//! - Objects bigger than the cache. Reef's cache does not admit them, so they evict nothing;
//!   the stack model counts their bytes in other objects' distances. Where such objects are a
//!   noticeable share of the bytes, compare with an exact replay at a few sizes.
//! - A stack distance is measured in bytes, with each object's size at its latest request.

use super::PairResult;
use crate::trace::Request;
use reef_core::cache::PolicyKind;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::Instant;

/// Hash space in which an id is sampled when its hash falls below `rate * SPACE`.
const SPACE: u64 = 1 << 24;

/// The sampling hash: fixed, so a run is reproducible, and well mixed, so ids that are
/// sequential numbers still sample evenly.
const SAMPLER: foldhash::quality::FixedState = foldhash::quality::FixedState::with_seed(0x5ad5);

/// The approximate LRU results for every size of `sizes` (any order), from one pass over
/// `requests` sampled at `rate` (0 < rate <= 1). The first `warmup` requests build state only.
pub fn lru_curve(requests: &[Request], sizes: &[u64], rate: f64, warmup: u64) -> Vec<PairResult> {
    let started = Instant::now();
    let threshold = ((rate.clamp(0.0, 1.0) * SPACE as f64).round() as u64).max(1);
    let sampled = |id: u64| SAMPLER.hash_one(id) % SPACE < threshold;
    let rate = threshold as f64 / SPACE as f64;
    let split = usize::try_from(warmup).unwrap_or(usize::MAX).min(requests.len());

    let mut order: Vec<u64> = sizes.to_vec();
    order.sort_unstable();
    order.dedup();
    // hits[j]: sampled counted requests whose distance first fits the j-th smallest size.
    let (mut hits, mut hit_bytes) = (vec![0u64; order.len() + 1], vec![0u64; order.len() + 1]);
    let (mut samples, mut sample_bytes, mut counted_bytes) = (0u64, 0u64, 0u64);

    let slots = requests.iter().filter(|r| sampled(r.id)).count();
    let mut recency = Fenwick::new(slots);
    let mut last: HashMap<u64, (usize, u64), foldhash::fast::FixedState> = HashMap::default();
    let mut now = 0usize;
    for (k, r) in requests.iter().enumerate() {
        let counted = k >= split;
        if counted {
            counted_bytes += r.size;
        }
        if !sampled(r.id) {
            continue;
        }
        let distance = last.insert(r.id, (now, r.size)).map(|(then, size)| {
            recency.add(then, -(size as i64));
            (recency.sum_from(then) as f64 / rate) as u64 + r.size
        });
        recency.add(now, r.size as i64);
        now += 1;
        if counted {
            samples += 1;
            sample_bytes += r.size;
            if let Some(d) = distance {
                let j = order.partition_point(|&c| c < d);
                hits[j] += 1;
                hit_bytes[j] += r.size;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);

    let requests_counted = (requests.len() - split) as u64;
    let expected = rate * requests_counted as f64;
    let expected_bytes = rate * counted_bytes as f64;
    let ratio = |missed: u64, of: f64| if of > 0.0 { (missed as f64 / of).clamp(0.0, 1.0) } else { 0.0 };
    let (mut cum, mut cum_bytes) = (0u64, 0u64);
    let mut by_size = HashMap::new();
    for (j, &size) in order.iter().enumerate() {
        cum += hits[j];
        cum_bytes += hit_bytes[j];
        let object_miss_ratio = ratio(samples - cum, expected);
        let byte_miss_ratio = ratio(sample_bytes - cum_bytes, expected_bytes);
        by_size.insert(size, (object_miss_ratio, byte_miss_ratio));
    }
    sizes
        .iter()
        .map(|size| {
            let (object_miss_ratio, byte_miss_ratio) = by_size[size];
            PairResult {
                policy: PolicyKind::Lru,
                cache_size: *size,
                sampling_rate: Some(rate),
                requests: requests_counted,
                misses: (object_miss_ratio * requests_counted as f64).round() as u64,
                miss_bytes: (byte_miss_ratio * counted_bytes as f64).round() as u64,
                object_miss_ratio,
                byte_miss_ratio,
                requests_per_second: requests.len() as f64 / seconds,
                index_bytes_per_object: 0.0,
                policy_bytes_per_object: 0.0,
                trace_load_seconds: 0.0,
            }
        })
        .collect()
}

/// A Fenwick tree of byte counts by time of last access: the bytes of the objects last
/// requested after a given time, in O(log n).
struct Fenwick {
    tree: Vec<i64>,
    total: i64,
}

impl Fenwick {
    fn new(n: usize) -> Self {
        Fenwick { tree: vec![0; n + 1], total: 0 }
    }
    fn add(&mut self, at: usize, delta: i64) {
        self.total += delta;
        let mut i = at + 1;
        while i < self.tree.len() {
            self.tree[i] += delta;
            i += i & i.wrapping_neg();
        }
    }
    /// Sum of the slots at `from` and later.
    fn sum_from(&self, from: usize) -> i64 {
        let mut before = 0;
        let mut i = from;
        while i > 0 {
            before += self.tree[i];
            i -= i & i.wrapping_neg();
        }
        self.total - before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(ids: &[u64], size: u64) -> Vec<Request> {
        ids.iter().map(|&id| Request { id, size }).collect()
    }

    #[test]
    fn hand_computed_distances() {
        // a b c a b: the second a has 2 other objects (20 B) since, so it needs 30 B; likewise b.
        let reqs = trace(&[1, 2, 3, 1, 2], 10);
        let rows = lru_curve(&reqs, &[20, 30, 29], 1.0, 0);
        let misses: Vec<u64> = rows.iter().map(|r| r.misses).collect();
        assert_eq!(misses, vec![5, 3, 5]);
        assert_eq!(rows[1].byte_miss_ratio, 30.0 / 50.0);
        // After a warmup of 3 requests only the two re-requests count.
        let rows = lru_curve(&reqs, &[30], 1.0, 3);
        assert_eq!((rows[0].requests, rows[0].misses), (2, 0));
    }

    #[test]
    fn fenwick_suffix_sums() {
        let mut f = Fenwick::new(5);
        for (i, v) in [3, 1, 4, 1, 5].into_iter().enumerate() {
            f.add(i, v);
        }
        assert_eq!([0, 1, 2, 3, 4, 5].map(|i| f.sum_from(i)), [14, 11, 10, 6, 5, 0]);
        f.add(2, -4);
        assert_eq!(f.sum_from(1), 7);
    }
}
