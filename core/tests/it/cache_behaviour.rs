//! The cache's documented behaviours, one readable scenario each: watermarks, object limits,
//! pins, namespace shares, admission, configuration errors, policy names and index memory.

use reef_core::cache::{
    AccessOutcome, Admission, Cache, CacheConfig, ConfigError, EvictReason, InsertOutcome, NEVER, NamespaceShare,
    PolicyKind,
};
use reef_core::ids::{NamespaceId, ObjectId};

const NS: NamespaceId = NamespaceId(0);

fn fill(cache: &mut Cache, ids: std::ops::Range<u64>, size: u64) {
    let mut ev = Vec::new();
    for i in ids {
        assert_eq!(cache.insert(ObjectId(i), size, NS, &mut ev), InsertOutcome::Inserted);
    }
}

#[test]
fn crossing_the_high_watermark_evicts_down_to_the_low_one() {
    let mut cfg = CacheConfig::new(1000, PolicyKind::Lru);
    (cfg.high_watermark, cfg.low_watermark) = (0.9, 0.5);
    let mut cache = Cache::new(cfg);
    fill(&mut cache, 0..9, 100);
    assert_eq!(cache.used_bytes(), 900);
    let mut ev = Vec::new();
    assert_eq!(cache.insert(ObjectId(9), 100, NS, &mut ev), InsertOutcome::Inserted);
    // 900 + 100 > 900: purge to 500 including the newcomer, oldest first.
    let gone: Vec<u64> = ev.iter().map(|e| e.id.0).collect();
    assert_eq!(gone, vec![0, 1, 2, 3, 4]);
    assert!(ev.iter().all(|e| e.reason == EvictReason::Capacity));
    assert_eq!(cache.used_bytes(), 500);
}

#[test]
fn the_object_limit_evicts_even_with_bytes_to_spare() {
    let mut cfg = CacheConfig::new(1 << 30, PolicyKind::Fifo);
    cfg.max_objects = Some(3);
    let mut cache = Cache::new(cfg);
    fill(&mut cache, 0..3, 1);
    let mut ev = Vec::new();
    cache.insert(ObjectId(3), 1, NS, &mut ev);
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].id, ev[0].reason), (ObjectId(0), EvictReason::ObjectLimit));
    assert_eq!(cache.len(), 3);
}

#[test]
fn pinned_objects_are_never_evicted_and_block_inserts_that_cannot_fit() {
    // (Not S3-FIFO nor 2Q: they admit nothing as big as a tenth (a quarter) of this cache.)
    for policy in PolicyKind::ALL.into_iter().filter(|p| ![PolicyKind::S3Fifo, PolicyKind::TwoQ].contains(p)) {
        let mut cache = Cache::new(CacheConfig::new(300, policy));
        fill(&mut cache, 0..3, 100);
        assert!(cache.pin(ObjectId(0)) && cache.pin(ObjectId(1)) && cache.pin(ObjectId(1)));
        let mut ev = Vec::new();
        for i in 10..20 {
            cache.access(ObjectId(i), 100, NS, i, &mut ev);
        }
        assert!(cache.contains(ObjectId(0)) && cache.contains(ObjectId(1)), "{policy}");
        assert!(!cache.remove(ObjectId(0), &mut ev), "{policy}: a pinned object stays");
        assert_eq!(cache.insert(ObjectId(99), 101, NS, &mut ev), InsertOutcome::Rejected, "{policy}");
        cache.unpin(ObjectId(0));
        cache.unpin(ObjectId(1));
        assert!(!cache.remove(ObjectId(1), &mut ev), "{policy}: one pin of two is left");
        cache.unpin(ObjectId(1));
        // Twice each, so that frequency-based policies prefer the newcomers.
        for i in (40..80).map(|k| k / 2) {
            cache.access(ObjectId(i), 100, NS, i, &mut ev);
        }
        assert!(!cache.contains(ObjectId(0)) && !cache.contains(ObjectId(1)), "{policy}: unpinned ones can go");
    }
}

#[test]
fn a_namespace_over_its_share_is_evicted_from_first() {
    let (atlas, cms) = (NamespaceId(1), NamespaceId(2));
    let mut cfg = CacheConfig::new(1000, PolicyKind::Lru);
    cfg.quotas = vec![
        NamespaceShare { namespace: atlas, bytes: 500, ..Default::default() },
        NamespaceShare { namespace: cms, bytes: 500, ..Default::default() },
    ];
    let mut cache = Cache::new(cfg);
    let mut ev = Vec::new();
    // Shares are soft: atlas may use the whole cache while cms is idle.
    for i in 0..10 {
        cache.insert(ObjectId(i), 100, atlas, &mut ev);
    }
    assert!(ev.is_empty());
    // Under pressure, cms's inserts take from atlas (over its share), not from cms.
    for i in 100..105 {
        cache.insert(ObjectId(i), 100, cms, &mut ev);
    }
    assert_eq!(ev.len(), 5);
    assert!(ev.iter().all(|e| e.namespace == atlas && e.reason == EvictReason::Quota));
    // Both at their share now: each namespace's inserts evict its own oldest.
    ev.clear();
    cache.insert(ObjectId(105), 100, cms, &mut ev);
    assert_eq!((ev[0].id, ev[0].namespace), (ObjectId(100), cms));
}

#[test]
fn admission_rules_are_applied_before_eviction() {
    let mut cfg = CacheConfig::new(1000, PolicyKind::Lru);
    cfg.admission = vec![Admission::SecondHit { window: 1000 }, Admission::MaxSize { bytes: 200 }];
    let mut cache = Cache::new(cfg);
    let mut ev = Vec::new();
    assert_eq!(cache.access(ObjectId(1), 100, NS, NEVER, &mut ev), AccessOutcome::NotAdmitted);
    assert_eq!(cache.access(ObjectId(1), 100, NS, NEVER, &mut ev), AccessOutcome::Inserted);
    assert_eq!(cache.access(ObjectId(1), 100, NS, NEVER, &mut ev), AccessOutcome::Hit);
    assert_eq!(cache.access(ObjectId(2), 300, NS, NEVER, &mut ev), AccessOutcome::NotAdmitted);
    assert_eq!(cache.access(ObjectId(2), 300, NS, NEVER, &mut ev), AccessOutcome::NotAdmitted, "too large");
    assert_eq!(cache.access(ObjectId(3), 2000, NS, NEVER, &mut ev), AccessOutcome::Rejected);
}

#[test]
fn get_and_insert_agree_with_access() {
    let trace: Vec<u64> = (0..5000u64).map(|i| (i * 7919) % 97 % (1 + i % 13)).collect();
    for policy in PolicyKind::ALL.into_iter().filter(|&p| p != PolicyKind::Belady) {
        let mut a = Cache::new(CacheConfig::new(2000, policy));
        let mut b = Cache::new(CacheConfig::new(2000, policy));
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        for &id in &trace {
            let size = 50 + id * 10;
            let hit = a.get(ObjectId(id));
            if !hit {
                a.insert(ObjectId(id), size, NS, &mut ea);
            }
            let out = b.access(ObjectId(id), size, NS, NEVER, &mut eb);
            assert_eq!(hit, out == AccessOutcome::Hit, "{policy}");
        }
        assert_eq!(ea, eb, "{policy}");
    }
}

#[test]
fn invalid_configurations_are_explained() {
    let mut cfg = CacheConfig::new(100, PolicyKind::Lru);
    (cfg.high_watermark, cfg.low_watermark) = (0.5, 0.8);
    assert!(matches!(Cache::try_new(cfg).unwrap_err(), ConfigError::Watermarks { .. }));
    let mut cfg = CacheConfig::new(100, PolicyKind::Lru);
    cfg.quotas = vec![
        NamespaceShare { namespace: NamespaceId(1), bytes: 60, ..Default::default() },
        NamespaceShare { namespace: NamespaceId(2), bytes: 60, ..Default::default() },
    ];
    let err = Cache::try_new(cfg).unwrap_err().to_string();
    assert!(err.contains("120") && err.contains("100"), "{err}");
}

#[test]
fn policies_have_one_name_everywhere() {
    for p in PolicyKind::ALL {
        assert_eq!(p.name().parse::<PolicyKind>(), Ok(p));
        assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{}\"", p.name()));
    }
    assert_eq!("2q".parse::<PolicyKind>(), Ok(PolicyKind::TwoQ));
    let err = "LRU".parse::<PolicyKind>().unwrap_err();
    assert!(err.contains("lru, fifo, clock, lfu, lfuda, s3fifo, sieve, arc, 2q, gdsf, wtinylfu, belady"), "{err}");
    let cfg: CacheConfig = serde_json::from_str(r#"{"capacity": 10, "policy": "2q"}"#).unwrap();
    assert_eq!(cfg, CacheConfig::new(10, PolicyKind::TwoQ));
}

#[test]
fn index_memory_stays_within_64_bytes_per_object() {
    // Measured at several populations, since tables grow in steps.
    for n in [1_000u64, 100_000, 300_000] {
        let mut cache = Cache::new(CacheConfig::new(u64::MAX / 2, PolicyKind::Lru));
        fill(&mut cache, 0..n, 1);
        let per_object = cache.memory().index as f64 / n as f64;
        assert!(per_object <= 64.0, "{per_object:.1} bytes per object at {n}");
    }
}

#[test]
fn reservations_make_room_first_and_count_until_given_back() {
    let mut cache = Cache::new(CacheConfig::new(1000, PolicyKind::Lru));
    fill(&mut cache, 0..8, 100);
    let mut ev = Vec::new();
    // 800 cached: a 500-byte promise evicts the three oldest (800 + 500 - 300 = 1000).
    assert!(cache.reserve(500, NS, &mut ev));
    assert_eq!(ev.iter().map(|e| e.id.0).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!((cache.used_bytes(), cache.reserved_bytes()), (500, 500));
    // Another 600 cannot be promised while 500 are: it would need more than the capacity.
    ev.clear();
    assert!(!cache.reserve(600, NS, &mut ev));
    assert!(ev.is_empty(), "a refused promise evicts nothing");
    // Inserting a cached object counts the promise: evicting, not overflowing.
    assert_eq!(cache.insert(ObjectId(50), 100, NS, &mut ev), InsertOutcome::Inserted);
    assert!(cache.used_bytes() + cache.reserved_bytes() <= 1000);
    cache.unreserve(500, NS);
    assert_eq!(cache.reserved_bytes(), 0);
}

#[test]
fn a_lost_object_leaves_even_when_pinned() {
    let mut cache = Cache::new(CacheConfig::new(1000, PolicyKind::Lru));
    fill(&mut cache, 0..2, 100);
    assert!(cache.pin(ObjectId(0)));
    let mut ev = Vec::new();
    assert!(cache.remove_lost(ObjectId(0), &mut ev));
    assert_eq!((ev[0].id, ev[0].reason), (ObjectId(0), EvictReason::Lost));
    assert_eq!((cache.len(), cache.used_bytes(), cache.pinned_objects()), (1, 100, 0));
    // (The core forgets the lost copy's readers, so their releases never reach a new copy.)
    fill(&mut cache, 0..1, 100);
    assert_eq!(cache.size_of(ObjectId(0)), Some(100));
    assert!(cache.remove_lost(ObjectId(1), &mut ev));
    assert!(!cache.remove_lost(ObjectId(9), &mut ev), "not cached");
}

#[test]
fn s3fifo_and_2q_admit_nothing_bigger_than_their_first_queue() {
    // A 1,000-byte cache: S3-FIFO's small queue holds 100 bytes (an object of 100 would flush
    // it whole), 2Q's A1in 250.
    let mut ev = Vec::new();
    let mut cache = Cache::new(CacheConfig::new(1000, PolicyKind::S3Fifo));
    assert_eq!(cache.insert(ObjectId(1), 100, NS, &mut ev), InsertOutcome::NotAdmitted);
    assert_eq!(cache.insert(ObjectId(2), 99, NS, &mut ev), InsertOutcome::Inserted);
    assert_eq!(cache.access(ObjectId(1), 100, NS, NEVER, &mut ev), AccessOutcome::NotAdmitted);
    let mut cache = Cache::new(CacheConfig::new(1000, PolicyKind::TwoQ));
    assert_eq!(cache.insert(ObjectId(1), 251, NS, &mut ev), InsertOutcome::NotAdmitted);
    assert_eq!(cache.insert(ObjectId(2), 250, NS, &mut ev), InsertOutcome::Inserted);
}
