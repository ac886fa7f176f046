//! Replaying one (policy, size) pair.

use crate::trace::Request;
use reef_core::cache::{AccessOutcome, Cache, CacheConfig, NEVER, PolicyKind};
use reef_core::ids::{NamespaceId, ObjectId};
use serde::Serialize;
use std::time::Instant;

/// The outcome of one pair.
#[derive(Clone, Debug, Serialize)]
pub struct PairResult {
    pub policy: PolicyKind,
    pub cache_size: u64,
    /// `None` for an exact replay; for an approximate LRU result (SHARDS, see `shards.rs`), the
    /// share of objects sampled. Its counts are then estimates scaled to the whole trace.
    pub sampling_rate: Option<f64>,
    /// Requests counted (after the warmup), and how many of them missed (and their bytes).
    pub requests: u64,
    pub misses: u64,
    pub miss_bytes: u64,
    pub object_miss_ratio: f64,
    pub byte_miss_ratio: f64,
    /// Requests replayed per second of simulation (warmup included; loading excluded).
    pub requests_per_second: f64,
    /// Bookkeeping bytes per cached object at the end: index, and policy state besides.
    pub index_bytes_per_object: f64,
    pub policy_bytes_per_object: f64,
    /// Seconds spent reading the trace (and computing next accesses for Belady), once for all
    /// pairs: not part of `requests_per_second`.
    pub trace_load_seconds: f64,
}

/// Requests between progress reports.
const CHUNK: usize = 1 << 20;

/// Replays `requests` through a cache of `size` bytes running `policy`. `next` holds each
/// request's next access (needed by Belady only). `progress` is told how many requests are done.
pub fn simulate(
    requests: &[Request],
    next: Option<&[u64]>,
    policy: PolicyKind,
    size: u64,
    warmup: u64,
    progress: impl Fn(u64),
) -> anyhow::Result<PairResult> {
    let mut cache = Cache::try_new(CacheConfig::new(size, policy))?;
    let split = usize::try_from(warmup).unwrap_or(usize::MAX).min(requests.len());
    let started = Instant::now();
    let mut counts = Counts::default();
    let mut replay = |from: usize, to: usize, counted: bool| {
        for start in (from..to).step_by(CHUNK) {
            let end = (start + CHUNK).min(to);
            let chunk = &requests[start..end];
            match (policy, next) {
                (PolicyKind::Belady, Some(next)) => {
                    run(&mut cache, chunk, next[start..end].iter().copied(), counted, &mut counts)
                }
                _ => run(&mut cache, chunk, std::iter::repeat(NEVER), counted, &mut counts),
            }
            progress((end - start) as u64);
        }
    };
    replay(0, split, false);
    replay(split, requests.len(), true);
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let memory = cache.memory();
    let objects = cache.len().max(1) as f64;
    Ok(PairResult {
        policy,
        cache_size: size,
        sampling_rate: None,
        requests: counts.requests,
        misses: counts.misses,
        miss_bytes: counts.miss_bytes,
        object_miss_ratio: ratio(counts.misses, counts.requests),
        byte_miss_ratio: ratio(counts.miss_bytes, counts.bytes),
        requests_per_second: requests.len() as f64 / seconds,
        index_bytes_per_object: memory.index as f64 / objects,
        policy_bytes_per_object: memory.policy as f64 / objects,
        trace_load_seconds: 0.0,
    })
}

#[derive(Default)]
struct Counts {
    requests: u64,
    bytes: u64,
    misses: u64,
    miss_bytes: u64,
}

/// How many requests ahead of the one being served a replay hints the table slot, and then the
/// entry (see `Cache::prefetch_slot`): about as many misses as the processor keeps in flight.
const SLOT_AHEAD: usize = 16;
const ENTRY_AHEAD: usize = 8;

#[inline]
fn run(cache: &mut Cache, chunk: &[Request], mut next: impl Iterator<Item = u64>, counted: bool, c: &mut Counts) {
    let mut evicted = Vec::new();
    for (k, (r, nx)) in chunk.iter().zip(&mut next).enumerate() {
        if let Some(ahead) = chunk.get(k + SLOT_AHEAD) {
            cache.prefetch_slot(ObjectId(ahead.id));
        }
        if let Some(ahead) = chunk.get(k + ENTRY_AHEAD) {
            cache.prefetch_entry(ObjectId(ahead.id));
        }
        let out = cache.access(ObjectId(r.id), r.size, NamespaceId(0), nx, &mut evicted);
        evicted.clear();
        if counted {
            let miss = out != AccessOutcome::Hit;
            c.requests += 1;
            c.bytes += r.size;
            c.misses += u64::from(miss);
            c.miss_bytes += if miss { r.size } else { 0 };
        }
    }
}
