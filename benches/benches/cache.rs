//! Cache engine throughput: every policy replaying the same in-memory Zipf trace (alpha 0.9,
//! varied sizes) with a cache of 10% of the catalog, one request per iteration element.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reef_core::cache::{Cache, CacheConfig, NEVER, PolicyKind};
use reef_core::ids::{NamespaceId, ObjectId};
use reef_sim::trace::{ZipfTrace, next_accesses};
use std::hint::black_box;

fn policies(c: &mut Criterion) {
    let spec =
        ZipfTrace { objects: 100_000, requests: 1_000_000, alpha: 0.9, min_size: 1 << 10, max_size: 64 << 20, seed: 1 };
    let (requests, catalog) = spec.generate();
    let next = next_accesses(&requests);
    let mut group = c.benchmark_group("cache_access");
    group.throughput(Throughput::Elements(requests.len() as u64));
    group.sample_size(10);
    for policy in PolicyKind::ALL {
        group.bench_function(policy.name(), |b| {
            b.iter(|| {
                let mut cache = Cache::new(CacheConfig::new(catalog / 10, policy));
                let mut evicted = Vec::new();
                let mut hits = 0u64;
                for (r, &nx) in requests.iter().zip(&next) {
                    let nx = if policy == PolicyKind::Belady { nx } else { NEVER };
                    let out = cache.access(ObjectId(r.id), r.size, NamespaceId(0), nx, &mut evicted);
                    hits += u64::from(out == reef_core::cache::AccessOutcome::Hit);
                    evicted.clear();
                }
                black_box(hits)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, policies);
criterion_main!(benches);
