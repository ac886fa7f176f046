//! A mutable namespace (`max_age`): a cache serves its copy for at most `max_age` after the
//! fetch, then fetches the object again, so a replaced object reaches clients whole, in its new
//! version; a write-once namespace keeps its copy.

use crate::common::{Cluster, Options, bytes, cache, header, origin, sha256_b64, wait_until};
use std::time::{Duration, Instant};

#[test]
fn a_replaced_object_is_served_anew_after_max_age() {
    let options = Options { namespaces: vec![("news", "max_age = \"2s\"\n".to_string())], ..Options::default() };
    let c = Cluster::start_with(&[origin(1), cache(2, "site-a")], &options);
    let (old, new) = (bytes(300_000, 1), bytes(200_000, 2));
    c.put_in("news", "feed.json", old.clone());
    c.put("run.root", old.clone());

    let fetched = Instant::now();
    let (code, head, body) = c.get(&c.url(2, "/news/feed.json"), &[]);
    assert_eq!((code, sha256_b64(&body)), (200, sha256_b64(&old)));
    assert!(header(&head, "cache-status").is_some_and(|s| s.contains("fwd=miss")), "{head}");
    assert_eq!(c.get(&c.url(2, "/atlas/run.root"), &[]).2, old);

    // Replaced at the origin: within max_age the cache still serves its copy...
    c.put_in("news", "feed.json", new.clone());
    c.put("run.root", new.clone());
    let (_, head, body) = c.get(&c.url(2, "/news/feed.json"), &[]);
    if fetched.elapsed() < Duration::from_millis(1500) {
        assert!(header(&head, "cache-status").is_some_and(|s| s.ends_with("; hit")), "{head}");
        assert_eq!(sha256_b64(&body), sha256_b64(&old));
    }
    // ... and once it has passed, the new version, whole: the first request to get it fetched
    // it (a miss); every earlier one was a hit on the old copy, whole.
    let mut first_new = None;
    wait_until("the cache serves the new version", || {
        let (code, head, body) = c.get(&c.url(2, "/news/feed.json"), &[]);
        assert_eq!(code, 200);
        if body == old {
            return false;
        }
        assert_eq!(sha256_b64(&body), sha256_b64(&new), "one version, whole");
        first_new = Some(head);
        true
    });
    let head = first_new.unwrap();
    // It came by the max_age rule: the stale copy was revalidated and found changed.
    assert_eq!(c.metric(2, "reef_revalidations_total{result=\"modified\"}"), 1.0);
    assert!(header(&head, "cache-status").is_some_and(|s| s.contains("fwd=miss")), "{head}");
    let (_, head, body) = c.get(&c.url(2, "/news/feed.json"), &[]);
    assert_eq!(body, new);
    assert!(header(&head, "cache-status").is_some_and(|s| s.ends_with("; hit")), "{head}");
    assert_eq!(c.metric(2, "reef_fetches_total{source=\"origin\"}"), 3.0, "feed.json twice, run.root once");

    // The write-once namespace keeps its copy (replacing is for namespaces that say so).
    let (_, head, body) = c.get(&c.url(2, "/atlas/run.root"), &[]);
    assert_eq!(body, old);
    assert!(header(&head, "cache-status").is_some_and(|s| s.ends_with("; hit")), "{head}");
}

#[test]
fn an_unchanged_object_is_revalidated_without_its_bytes_and_served_stale_without_an_origin() {
    let options = Options { namespaces: vec![("news", "max_age = \"1s\"\n".to_string())], ..Options::default() };
    let mut c = Cluster::start_with(&[origin(1), cache(2, "site-a")], &options);
    let data = bytes(500_000, 3);
    c.put_in("news", "feed.json", data.clone());
    assert_eq!(c.get(&c.url(2, "/news/feed.json"), &[]).2, data);

    // Past max_age: the cache asks the origin with If-None-Match and gets 304, no body. Every
    // answer until then, and the one after, is the copy, whole.
    let revalidated = "reef_revalidations_total{result=\"not_modified\"}";
    wait_until("the cache revalidates its copy", || {
        let (code, head, body) = c.get(&c.url(2, "/news/feed.json"), &[]);
        assert_eq!((code, sha256_b64(&body)), (200, sha256_b64(&data)));
        assert!(header(&head, "cache-status").is_some_and(|s| s.ends_with("; hit")), "{head}");
        c.metric(2, revalidated) > 0.0
    });
    assert_eq!(c.metric(2, revalidated), 1.0);
    assert_eq!(c.metric(2, "reef_fetches_total{source=\"origin\"}"), 2.0);
    let log = std::fs::read_to_string(c.dir.path().join("n1/access.log")).unwrap();
    let records: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let feed: Vec<(u64, u64)> = (records.iter())
        .filter(|r| r["object"] == "/news/feed.json")
        .map(|r| (r["status"].as_u64().unwrap(), r["bytes"].as_u64().unwrap()))
        .collect();
    assert_eq!(feed, [(200, 500_000), (304, 0)], "the origin sent the bytes once");

    // The origin goes away; past max_age again, the stale copy is served rather than nothing
    // (and before that, the fresh copy: never an error).
    c.kill(1);
    wait_until("the cache serves its stale copy", || {
        let (code, _, body) = c.get(&c.url(2, "/news/feed.json"), &["--max-time", "30"]);
        assert_eq!((code, sha256_b64(&body)), (200, sha256_b64(&data)));
        c.metric(2, "reef_served_stale_total") > 0.0
    });
    assert_eq!(c.metric(2, "reef_served_stale_total"), 1.0);
}
