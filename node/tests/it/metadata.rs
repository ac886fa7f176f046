//! Metadata without data: a `HEAD` for an object a cache neither holds nor is fetching is
//! answered by one `HEAD` to the origin (the core's `Describe`), never by a fill. Checked from
//! the origin's access log: a `HEAD` on a cold 1 GiB object moves no body byte.

use crate::common::{Cluster, bytes, cache, director, header, origin, sha256_b64};

/// The origin's access log: (method, body bytes) per request.
fn origin_requests(c: &Cluster) -> Vec<(String, u64)> {
    let log = std::fs::read_to_string(c.dir.path().join("n1/access.log")).unwrap_or_default();
    log.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["method"].as_str().unwrap().to_string(), v["bytes"].as_u64().unwrap())
        })
        .collect()
}

#[test]
fn a_head_on_a_cold_object_is_answered_by_the_origin_without_a_fill() {
    let mut c = Cluster::start(&[origin(1), cache(2, "site-a"), director(9)]);
    let big = c.data().join("big.bin");
    std::fs::File::create(&big).unwrap().set_len(1 << 30).unwrap();
    let small = c.put("small.bin", bytes(3_000_000, 7));

    // At the origin itself, for reference.
    let (code, at_origin, _) = c.get(&c.url(1, "/atlas/big.bin"), &["-I"]);
    assert_eq!(code, 200);
    // Through the director (curl follows its redirect to the cache with a HEAD again).
    let (code, head, _) = c.get(&c.url(9, "/atlas/big.bin"), &["-I", "-L"]);
    assert_eq!(code, 200, "{head}");
    let last = head.rsplit("HTTP/1.1").next().unwrap();
    assert_eq!(header(last, "content-length"), Some("1073741824"));
    for h in ["etag", "last-modified", "accept-ranges"] {
        assert_eq!(header(last, h), header(&at_origin, h), "{h}");
    }
    assert!(header(last, "cache-status").is_some_and(|s| s.contains("detail=origin-n1-metadata")), "{last}");

    // Checksums come from the origin's, for an object the cache does not hold either.
    let (code, head, _) = c.get(&c.url(2, "/atlas/small.bin"), &["-I", "-H", "Want-Digest: sha-256"]);
    assert_eq!(code, 200);
    assert_eq!(header(&head, "digest").map(str::to_string), Some(format!("sha-256={}", sha256_b64(&small))));
    // Preconditions are the origin's to judge; a missing object is the origin's 404.
    let etag = header(&at_origin, "etag").unwrap();
    let (code, _, _) = c.get(&c.url(2, "/atlas/big.bin"), &["-I", "-H", &format!("If-None-Match: {etag}")]);
    assert_eq!(code, 304);
    assert_eq!(c.get(&c.url(2, "/atlas/nothing.bin"), &["-I"]).0, 404);

    // The origin answered HEADs alone, with no body byte; the cache fetched nothing.
    let seen = origin_requests(&c);
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(seen.iter().all(|(method, bytes)| method == "HEAD" && *bytes == 0), "{seen:?}");
    assert_eq!(c.metric(2, "reef_fetches_total{source=\"origin\"}"), 0.0);

    // A GET is then a miss (the HEAD filled nothing), and a HEAD after it a hit, served here.
    let (code, head, body) = c.get(&c.url(2, "/atlas/small.bin"), &[]);
    assert_eq!((code, body == small), (200, true));
    assert!(header(&head, "cache-status").is_some_and(|s| s.contains("fwd=miss")), "{head}");
    assert_eq!(c.metric(2, "reef_fetches_total{source=\"origin\"}"), 1.0);
    let (_, head, _) = c.get(&c.url(2, "/atlas/small.bin"), &["-I"]);
    assert!(header(&head, "cache-status").is_some_and(|s| s.ends_with("; hit")), "{head}");
    let heads = origin_requests(&c).into_iter().filter(|(method, _)| method == "HEAD").count();
    assert_eq!(heads, 5, "the HEAD of a held object is answered here");

    // With the origin gone, a cold HEAD cannot be described: 502, named for the client (which
    // tries elsewhere); a held object is still described here.
    c.kill(1);
    let (code, head, _) = c.get(&c.url(2, "/atlas/big.bin"), &["-I"]);
    assert_eq!((code, header(&head, "reef-failure")), (502, Some("all_sources_down")), "{head}");
    assert_eq!(c.get(&c.url(2, "/atlas/small.bin"), &["-I"]).0, 200);
}
