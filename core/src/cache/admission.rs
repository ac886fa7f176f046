//! Admission filters: which missed objects are worth caching at all.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// One admission rule; an object is admitted when every configured rule admits it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Admission {
    /// Admit everything (the same as no rule).
    Always,
    /// Admit an object on its second insert attempt within `window` attempts (one-hit wonders
    /// never get in). Remembered in two rotating bloom filters, so a small fraction (about 1%)
    /// of first attempts get in too.
    SecondHit { window: u64 },
    /// Admit objects of at most `bytes`.
    MaxSize { bytes: u64 },
    /// Admit with probability `exp(-size / scale)` (AdaptSize-style: large objects rarely).
    ProbabilisticBySize { scale: u64 },
}

impl Admission {
    /// The names `named` accepts (the serde names of the variants).
    pub const NAMES: &'static str = "always, second-hit, max-size, probabilistic-by-size";

    /// The rule called `name`, with the parameters it reads.
    pub fn named(name: &str, window: u64, bytes: u64, scale: u64) -> Result<Admission, String> {
        match name {
            "always" => Ok(Admission::Always),
            "second-hit" => Ok(Admission::SecondHit { window }),
            "max-size" => Ok(Admission::MaxSize { bytes }),
            "probabilistic-by-size" => Ok(Admission::ProbabilisticBySize { scale }),
            _ => Err(format!("unknown admission rule `{name}`; expected one of: {}", Self::NAMES)),
        }
    }
}

/// Two bloom filters: the current window's and the previous one's.
#[derive(Debug)]
struct Rotating {
    current: Vec<u64>,
    previous: Vec<u64>,
    inserted: u64,
    window: u64,
}

const BLOOM_HASHES: u64 = 3;

impl Rotating {
    fn new(window: u64) -> Self {
        // About 10 bits per remembered object: ~1.7% false positives with 3 hashes.
        let words = (window.max(1).saturating_mul(10) / 64 + 1).next_power_of_two();
        // Capped at 128 MiB per filter; larger windows just see more false positives.
        let words = usize::try_from(words.min(1 << 24)).unwrap_or(1 << 24);
        Rotating { current: vec![0; words], previous: vec![0; words], inserted: 0, window: window.max(1) }
    }

    fn bits(&self, hash: u64) -> impl Iterator<Item = (usize, u64)> {
        let nbits = self.current.len() as u64 * 64;
        let (h1, h2) = (hash, (hash >> 32) | 1);
        (0..BLOOM_HASHES).map(move |k| {
            let bit = h1.wrapping_add(k.wrapping_mul(h2)) & (nbits - 1);
            ((bit / 64) as usize, 1u64 << (bit % 64))
        })
    }

    fn contains(filter: &[u64], bits: impl Iterator<Item = (usize, u64)>) -> bool {
        bits.into_iter().all(|(w, m)| filter[w] & m != 0)
    }

    /// True if `hash` was seen within the window; otherwise remembers it.
    fn seen_or_remember(&mut self, hash: u64) -> bool {
        if Self::contains(&self.current, self.bits(hash)) || Self::contains(&self.previous, self.bits(hash)) {
            return true;
        }
        let bits: [(usize, u64); BLOOM_HASHES as usize] = {
            let mut it = self.bits(hash);
            std::array::from_fn(|_| it.next().unwrap_or((0, 0)))
        };
        for (w, m) in bits {
            self.current[w] |= m;
        }
        self.inserted += 1;
        if self.inserted >= self.window {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.iter_mut().for_each(|w| *w = 0);
            self.inserted = 0;
        }
        false
    }
}

#[derive(Debug)]
enum Rule {
    SecondHit(Rotating),
    MaxSize(u64),
    BySize(f64),
}

/// The runtime state of a cache's admission rules.
#[derive(Debug)]
pub(crate) struct AdmissionFilter {
    rules: Vec<Rule>,
    rng: Xoshiro256PlusPlus,
}

impl AdmissionFilter {
    pub fn new(config: &[Admission], seed: u64) -> Self {
        let rules = config
            .iter()
            .filter_map(|a| match *a {
                Admission::Always => None,
                Admission::SecondHit { window } => Some(Rule::SecondHit(Rotating::new(window))),
                Admission::MaxSize { bytes } => Some(Rule::MaxSize(bytes)),
                Admission::ProbabilisticBySize { scale } => Some(Rule::BySize(scale.max(1) as f64)),
            })
            .collect();
        AdmissionFilter { rules, rng: Xoshiro256PlusPlus::seed_from_u64(seed) }
    }

    /// Whether to cache an object with id hash `hash` and `size` bytes. Every rule sees every
    /// attempt (a second-hit filter remembers the first attempt even if a size rule refuses it).
    pub fn admit(&mut self, hash: u64, size: u64) -> bool {
        let mut admit = true;
        for rule in &mut self.rules {
            admit &= match rule {
                Rule::SecondHit(filter) => filter.seen_or_remember(hash),
                Rule::MaxSize(max) => size <= *max,
                Rule::BySize(scale) => self.rng.random::<f64>() < (-(size as f64) / *scale).exp(),
            };
        }
        admit
    }

    pub fn memory_bytes(&self) -> usize {
        self.rules
            .iter()
            .map(|r| match r {
                Rule::SecondHit(f) => 16 * f.current.len(),
                _ => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::table::hash_id;
    use crate::ids::ObjectId;

    #[test]
    fn second_hit_admits_within_the_window_only() {
        let mut f = AdmissionFilter::new(&[Admission::SecondHit { window: 100 }], 1);
        let h = |i: u64| hash_id(ObjectId(i));
        assert!(!f.admit(h(1), 10));
        assert!(f.admit(h(1), 10), "second attempt is admitted");
        // 250 other first attempts rotate both filters past object 2's first attempt.
        assert!(!f.admit(h(2), 10));
        let fresh = (1000..1250).filter(|&i| f.admit(h(i), 10)).count();
        assert!(fresh <= 10, "false positives: {fresh}");
        assert!(!f.admit(h(2), 10), "forgotten after two windows");
    }

    #[test]
    fn size_rules() {
        let mut f = AdmissionFilter::new(&[Admission::MaxSize { bytes: 100 }], 1);
        assert!(f.admit(1, 100) && !f.admit(1, 101));
        let mut p = AdmissionFilter::new(&[Admission::ProbabilisticBySize { scale: 1000 }], 7);
        let small = (0..10_000).filter(|_| p.admit(1, 100)).count();
        let large = (0..10_000).filter(|_| p.admit(1, 5000)).count();
        // exp(-0.1) = 0.905, exp(-5) = 0.0067.
        assert!((8800..9300).contains(&small), "{small}");
        assert!(large < 150, "{large}");
    }
}
