//! `[[namespace]] max_age`: the same core rule as reef-node's, in the simulator. A copy is
//! served for at most `max_age` after its fetch; then a request revalidates it with the origin,
//! so an object asked for all the time is asked of the origin about once per `max_age` per
//! cache instead of once per cache. Objects never change in the simulator, so every
//! revalidation answers "not modified" and moves no bytes.

use reef_sim::run::simulate;
use reef_sim::scenario::parse;
use std::path::Path;

const SCENARIO: &str = r#"
name = "freshness"

[topology.generate]
t1 = 1
t2 = 2
t2_worker_nodes = 0

[[namespace]]
name = "news"
origins = ["T0"]

[workload]
requests = 3600
duration = "1h"
objects = 1
size = { dist = "fixed", value = "1MB" }
"#;

/// The scenario with the namespace's `max_age` (none: write-once).
fn scenario(max_age: Option<&str>) -> String {
    let line = max_age.map_or(String::new(), |age| format!("max_age = \"{age}\"\n"));
    SCENARIO.replace("origins = [\"T0\"]\n", &format!("origins = [\"T0\"]\n{line}"))
}

/// (origin fetches, requests) of a run; checks the namespace's `expired` count on the way.
fn origin_fetches(max_age: Option<&str>) -> (u64, u64) {
    let scenario = parse(Path::new("freshness.toml"), &scenario(max_age), &[]).unwrap();
    let run = simulate(&scenario, 5, &mut |_| {}).unwrap().summary;
    assert_eq!(run.completed, run.requests);
    // The request that finds a copy expired revalidates it with the origin (a cache's first
    // fetch follows no expiry), and only a namespace with `max_age` expires anything.
    let (expired, fetches) = (run.namespaces["news"].expired, run.origin_fetches + run.peer_fetches);
    assert!(expired < fetches, "{expired} expired, {fetches} fetched");
    assert_eq!(expired == 0, max_age.is_none(), "{expired} expired with max_age {max_age:?}");
    // Each revalidation is one origin fetch that moves no bytes: only the others carry the
    // 1 MB object.
    assert_eq!(run.bytes_from_origin, (run.origin_fetches - expired) * 1_000_000);
    (run.origin_fetches, run.requests)
}

#[test]
fn a_mutable_namespace_is_fetched_again_once_per_max_age() {
    // 4 caches (Tier-0, Tier-1, two Tier-2s) hold the one object; 3,600 requests in an hour.
    let caches = 4;
    let (write_once, _) = origin_fetches(None);
    assert!(write_once <= caches, "write-once: at most one fetch per cache, got {write_once}");
    // With a minute, the caches that clients ask (about 1 request a second, spread over the
    // sites) each fetch again at most once a minute: between 60 (one cache asked every minute)
    // and 61 per cache.
    let (minute, requests) = origin_fetches(Some("1min"));
    assert!((60..=61 * caches).contains(&minute), "max_age 1min: {minute} origin fetches of {requests} requests");
    // Ten times the age, about a tenth of the fetches (bounds as above).
    let (ten, _) = origin_fetches(Some("10min"));
    assert!((6..=7 * caches).contains(&ten), "max_age 10min: {ten}");
    assert!(ten < minute, "{ten} vs {minute}");
}

#[test]
fn a_zero_max_age_is_refused_with_its_key() {
    let err = parse(Path::new("freshness.toml"), &scenario(Some("0s")), &[]).unwrap_err().to_string();
    assert!(err.contains("max_age") && err.contains("more than zero"), "{err}");
}

/// A run of the scenario with a third-party origin answering `cache_control`: (origin
/// fetches, revalidations, bytes from the origin, requests, coalesced).
fn third_party(cache_control: &str) -> (u64, u64, u64, u64, u64) {
    let text =
        SCENARIO.replace("origins = [\"T0\"]\n", &format!("origins = [\"T0\"]\ncache_control = \"{cache_control}\"\n"));
    let scenario = parse(Path::new("freshness.toml"), &text, &[]).unwrap();
    let run = simulate(&scenario, 5, &mut |_| {}).unwrap().summary;
    assert_eq!(run.completed, run.requests);
    assert_eq!(run.peer_fetches, 0, "a third-party origin's objects come from it alone");
    let expired = run.namespaces["news"].expired;
    (run.origin_fetches, expired, run.bytes_from_origin, run.requests, run.coalesced)
}

#[test]
fn a_third_party_origins_cache_control_is_followed() {
    // max-age=60 is the max_age rule: about once a minute per cache asked, revalidations only.
    let (fetches, expired, bytes, _, _) = third_party("max-age=60");
    assert!((60..=61 * 4).contains(&fetches), "{fetches}");
    assert_eq!(bytes, (fetches - expired) * 1_000_000);
    // no-store: nothing is kept, every request (but those that joined a fill under way) is a
    // whole fetch from the origin.
    let (fetches, expired, bytes, requests, coalesced) = third_party("no-store, max-age=600");
    assert_eq!((fetches + coalesced, expired), (requests, 0));
    assert_eq!(bytes, fetches * 1_000_000);
    // no-cache: kept, but every request after a cache's first asks the origin; only the first
    // fetch of each cache (at most 4) moves the object.
    let (fetches, expired, bytes, requests, coalesced) = third_party("no-cache");
    assert_eq!(fetches + coalesced, requests);
    assert!((1..=4).contains(&(fetches - expired)), "{fetches} fetches, {expired} revalidations");
    assert_eq!(bytes, (fetches - expired) * 1_000_000);
}
