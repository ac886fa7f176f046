//! Per-namespace storage quotas in the cache engine: soft shares of bytes and objects decide
//! who is evicted first; hard limits are never exceeded and make a namespace evict only its own
//! objects; an object its namespace could never hold is refused (a fill of it passes through).

use reef_core::cache::{Cache, CacheConfig, EvictReason, InsertOutcome, NamespaceShare, PolicyKind};
use reef_core::{NamespaceId, ObjectId};

const ATLAS: NamespaceId = NamespaceId(1);
const CMS: NamespaceId = NamespaceId(2);

fn cache(capacity: u64, max_objects: Option<u64>, quotas: Vec<NamespaceShare>) -> Cache {
    let mut cfg = CacheConfig::new(capacity, PolicyKind::Lru);
    cfg.max_objects = max_objects;
    cfg.quotas = quotas;
    Cache::new(cfg)
}

fn usage(c: &Cache, ns: NamespaceId) -> (u64, u64) {
    c.usage().find(|u| u.0 == Some(ns)).map(|u| (u.1, u.2)).unwrap()
}

#[test]
fn a_bursting_namespace_is_evicted_and_the_other_keeps_its_working_set() {
    let share = |namespace, bytes| NamespaceShare { namespace, bytes, ..Default::default() };
    let mut c = cache(10_000, None, vec![share(ATLAS, 5_000), share(CMS, 5_000)]);
    let mut ev = Vec::new();
    // CMS's working set: 40 objects of 100 bytes (4,000, within its share).
    for i in 0..40 {
        c.insert(ObjectId(1000 + i), 100, CMS, &mut ev);
    }
    // ATLAS bursts: 300 objects of 100 bytes, 6 times its share, read once each.
    for i in 0..300 {
        c.insert(ObjectId(i), 100, ATLAS, &mut ev);
    }
    // Every eviction came from ATLAS; CMS holds all of its 40 objects.
    assert!(ev.iter().all(|e| e.namespace == ATLAS), "{:?}", ev.iter().find(|e| e.namespace != ATLAS));
    assert_eq!(usage(&c, CMS), (4_000, 40));
    assert_eq!(usage(&c, ATLAS), (6_000, 60), "ATLAS may use what CMS leaves free");
    assert!((0..40).all(|i| c.contains(ObjectId(1000 + i))));
}

#[test]
fn object_shares_protect_a_namespace_of_many_small_files() {
    // 100 objects at most (inodes); CMS is guaranteed 60 of them, ATLAS 40; bytes are plenty
    // (half the cache each, far more than the small files use).
    let quota = |namespace, objects| NamespaceShare { namespace, bytes: 1 << 29, objects, ..Default::default() };
    let mut c = cache(1 << 30, Some(100), vec![quota(ATLAS, 40), quota(CMS, 60)]);
    let mut ev = Vec::new();
    for i in 0..50 {
        c.insert(ObjectId(1000 + i), 10, CMS, &mut ev);
    }
    for i in 0..500 {
        c.insert(ObjectId(i), 10, ATLAS, &mut ev);
    }
    // ATLAS over its object share pays for every new object: CMS keeps its 50.
    assert_eq!(usage(&c, CMS), (500, 50));
    assert_eq!(usage(&c, ATLAS).1, 50);
    assert_eq!(ev.len(), 450);
    assert!(ev.iter().all(|e| e.namespace == ATLAS && e.reason == EvictReason::Quota));
    // CMS, under its share, takes back objects from ATLAS, never from itself.
    ev.clear();
    for i in 50..60 {
        c.insert(ObjectId(1000 + i), 10, CMS, &mut ev);
    }
    assert_eq!(usage(&c, CMS), (600, 60));
    assert!(ev.len() == 10 && ev.iter().all(|e| e.namespace == ATLAS));
}

#[test]
fn hard_limits_are_never_exceeded_and_evict_only_the_namespace_itself() {
    let limited = NamespaceShare {
        namespace: ATLAS,
        bytes: 1_000,
        max_bytes: Some(2_000),
        max_objects: Some(15),
        ..Default::default()
    };
    let mut c = cache(100_000, None, vec![limited]);
    let mut ev = Vec::new();
    // Others (the default partition) hold a little.
    for i in 0..10 {
        c.insert(ObjectId(5000 + i), 100, CMS, &mut ev);
    }
    // Plenty of room in the cache, yet ATLAS never holds more than 2,000 bytes or 15 objects.
    for i in 0..100u64 {
        let size = if i % 2 == 0 { 100 } else { 250 };
        assert_eq!(c.insert(ObjectId(i), size, ATLAS, &mut ev), InsertOutcome::Inserted);
        let (bytes, objects) = usage(&c, ATLAS);
        assert!(bytes <= 2_000 && objects <= 15, "after {i}: {bytes} bytes, {objects} objects");
    }
    assert!(ev.iter().all(|e| e.namespace == ATLAS && e.reason == EvictReason::Quota));
    assert!((0..10).all(|i| c.contains(ObjectId(5000 + i))), "the others keep everything");
    // Reservations for fills in flight count against the limit too.
    ev.clear();
    assert!(c.reserve(1_500, ATLAS, &mut ev));
    assert!(usage(&c, ATLAS).0 <= 500);
    assert!(!c.reserve(600, ATLAS, &mut ev), "1,500 promised + 600 > 2,000");
    c.unreserve(1_500, ATLAS);
    assert!(c.reserve(600, ATLAS, &mut ev));
}

#[test]
fn an_object_its_namespace_could_never_hold_is_refused() {
    let limited = NamespaceShare { namespace: ATLAS, bytes: 0, max_bytes: Some(1_000), ..Default::default() };
    let none = NamespaceShare { namespace: CMS, bytes: 0, max_objects: Some(0), ..Default::default() };
    let mut c = cache(100_000, None, vec![limited, none]);
    let mut ev = Vec::new();
    c.insert(ObjectId(1), 800, ATLAS, &mut ev);
    // Bigger than the namespace's limit: refused, and nothing is evicted for it.
    assert_eq!(c.insert(ObjectId(2), 1_001, ATLAS, &mut ev), InsertOutcome::Rejected);
    assert!(!c.reserve(1_001, ATLAS, &mut ev), "a fill of it passes through uncached");
    assert!(ev.is_empty() && c.contains(ObjectId(1)));
    // A namespace allowed no objects caches nothing.
    assert_eq!(c.insert(ObjectId(3), 10, CMS, &mut ev), InsertOutcome::Rejected);
    assert!(!c.reserve(10, CMS, &mut ev));
    // Within the limit, the next object of ATLAS replaces its own.
    assert_eq!(c.insert(ObjectId(4), 900, ATLAS, &mut ev), InsertOutcome::Inserted);
    assert_eq!((ev.len(), ev[0].id), (1, ObjectId(1)));
}

#[test]
fn quotas_change_in_a_running_cache_and_a_lowered_limit_evicts_now() {
    let limited = |max| NamespaceShare { namespace: ATLAS, bytes: 1_000, max_objects: Some(max), ..Default::default() };
    let mut c = cache(100_000, None, vec![limited(10)]);
    let mut ev = Vec::new();
    for i in 0..10 {
        c.insert(ObjectId(i), 100, ATLAS, &mut ev);
    }
    c.insert(ObjectId(99), 100, CMS, &mut ev);
    assert!(ev.is_empty());
    // Down to 4 objects: the 6 least recently used of ATLAS go at once, CMS keeps its own.
    c.set_quotas(vec![limited(4)], &mut ev).unwrap();
    assert_eq!(ev.iter().map(|e| e.id.0).collect::<Vec<_>>(), (0..6).collect::<Vec<_>>());
    assert_eq!(usage(&c, ATLAS), (400, 4));
    assert!(c.contains(ObjectId(99)));
    // The new limit holds from now on.
    ev.clear();
    c.insert(ObjectId(10), 100, ATLAS, &mut ev);
    assert_eq!((usage(&c, ATLAS).1, ev.len()), (4, 1));
    // Giving a quota to another namespace needs a restart; a bad quota is refused; either way
    // the old quotas stay.
    let cms = NamespaceShare { namespace: CMS, bytes: 10, ..Default::default() };
    assert!(c.set_quotas(vec![limited(4), cms], &mut ev).unwrap_err().contains("restart"));
    let too_big = NamespaceShare { bytes: 1 << 40, ..limited(4) };
    assert!(c.set_quotas(vec![too_big], &mut ev).is_err());
    ev.clear();
    c.insert(ObjectId(11), 100, ATLAS, &mut ev);
    assert_eq!((usage(&c, ATLAS).1, ev.len()), (4, 1));
}
