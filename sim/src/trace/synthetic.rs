//! Synthetic traces for benchmarks and tests: independent requests with Zipf popularity over a
//! catalog of objects with log-uniform sizes, from a seed.

use super::Request;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use rand_xoshiro::Xoshiro256PlusPlus;

/// The parameters of a synthetic trace.
#[derive(Clone, Copy, Debug)]
pub struct ZipfTrace {
    pub objects: u64,
    pub requests: u64,
    pub alpha: f64,
    /// Object sizes are log-uniform in `[min_size, max_size]` bytes.
    pub min_size: u64,
    pub max_size: u64,
    pub seed: u64,
}

impl ZipfTrace {
    /// The requests, and the catalog's total size in bytes.
    pub fn generate(&self) -> (Vec<Request>, u64) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.seed);
        let (lo, hi) = ((self.min_size.max(1) as f64).ln(), (self.max_size.max(1) as f64).ln());
        let sizes: Vec<u64> = (0..self.objects).map(|_| rng.random_range(lo..=hi).exp().round() as u64).collect();
        let zipf = Zipf::new(self.objects.max(1) as f64, self.alpha).expect("alpha > 0");
        // Popularity ranks map to scattered ids, as in real traces.
        let requests = (0..self.requests)
            .map(|_| {
                let rank = zipf.sample(&mut rng) as u64 - 1;
                Request { id: rank.wrapping_mul(0x9e37_79b9_7f4a_7c15), size: sizes[rank as usize] }
            })
            .collect();
        (requests, sizes.iter().sum())
    }
}
