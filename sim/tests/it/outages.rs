//! Outages: requests during an outage follow the core's failover or fail, and are counted;
//! nothing is dropped (requests = completed + failed, always).

use reef_sim::run::{Summary, simulate};
use reef_sim::scenario::parse;
use std::path::Path;

/// Two sites: clients at T2 (cache "T2/cache"), origins of `atlas` at T1 (first) and T0.
const BASE: &str = r#"
name = "outages"

[policy]
fetch_timeout = "30s"

[topology]
[[topology.site]]
name = "T0"
tier = "T0"
region = "eu"
cache = "1TB"
weight = 0.0

[[topology.site]]
name = "T1"
tier = "T1"
region = "eu"
cache = "1TB"
weight = 0.0

[[topology.site]]
name = "T2"
tier = "T2"
region = "us"
cache = "100TB"

[[topology.link]]
a = "T0"
b = "T1"
bandwidth = "100Gbit/s"
latency = "5ms"

[[topology.link]]
a = "T1"
b = "T2"
bandwidth = "10Gbit/s"
latency = "40ms"

[[topology.link]]
a = "T0"
b = "T2"
bandwidth = "10Gbit/s"
latency = "60ms"

[[namespace]]
name = "atlas"
origins = ["T1", "T0"]

[workload]
requests = 2000
duration = "1h"
objects = 100000
size = { dist = "fixed", value = "100MB" }
zipf = 0.5
"#;

fn run(extra: &str) -> Summary {
    let text = format!("{BASE}\n{extra}");
    let scenario = parse(Path::new("outages.toml"), &text, &[]).unwrap_or_else(|e| panic!("{e}"));
    let s = simulate(&scenario, 3, &mut |_| {}).unwrap().summary;
    assert_eq!(s.requests, 2000);
    assert_eq!(s.completed + s.failed, s.requests, "every request is accounted for: {s:?}");
    s
}

#[test]
fn without_outages_everything_is_served() {
    let s = run("");
    assert_eq!(s.failed, 0);
    assert_eq!(s.failovers, 0);
    assert!(s.bytes_from_origin > 0);
}

#[test]
fn a_down_origin_fails_over_to_the_next() {
    let s = run(
        "[[outage]]\nkind = \"origin\"\nnamespace = \"atlas\"\nsite = \"T1\"\nat = \"10min\"\nduration = \"20min\"\n",
    );
    assert_eq!(s.failed, 0, "the Tier-0 origin serves while T1's is down: {:?}", s.failures);
    assert!(s.failovers > 0, "misses during the outage fail over");
}

#[test]
fn all_origins_down_fails_misses_and_counts_them() {
    let s = run("[[outage]]\nkind = \"origin\"\nnamespace = \"atlas\"\nat = \"10min\"\nduration = \"20min\"\n");
    assert!(s.failed > 0);
    assert_eq!(s.failures.get("all_sources_down"), Some(&s.failed), "{:?}", s.failures);
    // Cached objects are still served: hits during the outage do not fail.
    assert!(s.completed > 0);
}

#[test]
fn a_down_site_cache_sends_its_clients_to_the_next_cache() {
    // T2's clients turn to the nearest other site's cache while theirs is down: nothing fails.
    let s = run("[[outage]]\nkind = \"node\"\nnode = \"T2/cache\"\nat = \"10min\"\nduration = \"20min\"\n");
    assert_eq!(s.failed, 0, "{:?}", s.failures);
    assert!(s.client_failovers > 0);
    // With every cache down, the clients' requests fail and are counted.
    let all = "[[outage]]\nkind = \"node\"\nnode = \"T2/cache\"\nat = \"10min\"\nduration = \"20min\"\n\
               [[outage]]\nkind = \"node\"\nnode = \"T1/cache\"\nat = \"10min\"\nduration = \"20min\"\n\
               [[outage]]\nkind = \"node\"\nnode = \"T0/cache\"\nat = \"10min\"\nduration = \"20min\"\n";
    let s = run(all);
    let down = s.failures.get("node_down").copied().unwrap_or(0);
    assert!(down > 0, "{:?}", s.failures);
    assert_eq!(down, s.failed);
}

#[test]
fn a_cut_link_reroutes_and_a_partition_fails() {
    // T1-T2 cut: routes go T2-T0 (and T1 through T0), everything still served.
    let s = run("[[outage]]\nkind = \"link\"\na = \"T1\"\nb = \"T2\"\nat = \"10min\"\nduration = \"20min\"\n");
    assert_eq!(s.failed, 0, "{:?}", s.failures);
    // eu|us partition: T2 reaches no origin.
    let s = run("[[outage]]\nkind = \"partition\"\nregions = [\"eu\", \"us\"]\nat = \"10min\"\nduration = \"20min\"\n");
    assert!(s.failures.get("all_sources_down").copied().unwrap_or(0) > 0, "{:?}", s.failures);
}

#[test]
fn a_degraded_link_slows_transfers_without_failing_them() {
    let base = run("");
    let s =
        run("[[outage]]\nkind = \"degrade\"\na = \"T1\"\nb = \"T2\"\nfactor = 0.2\nat = \"0s\"\nduration = \"2h\"\n");
    assert_eq!(s.failed, 0, "{:?}", s.failures);
    assert!(s.latency_ms.p50 > base.latency_ms.p50, "{} vs {}", s.latency_ms.p50, base.latency_ms.p50);
}

#[test]
fn random_outages_follow_mtbf_and_mttr_and_are_counted() {
    let random = "[[random_outage]]\ntier = \"T2\"\nmtbf = \"20min\"\nmttr = \"5min\"\n";
    let s = run(random);
    assert!(!s.outages.is_empty(), "a 20-minute MTBF over an hour draws outages");
    for o in &s.outages {
        assert!(o.what.contains("T2"), "only Tier-2 sites fail: {}", o.what);
        assert!(o.duration_s > 0.0);
    }
    // Outages of the clients' own site fail requests, and each failure is counted.
    assert!(s.failed > 0, "{:?}", s.failures);
    let again = run(random);
    let times = |s: &Summary| s.outages.iter().map(|o| (o.at_s, o.duration_s)).collect::<Vec<_>>();
    assert_eq!(times(&s), times(&again), "the seed fixes the draws");
}

#[test]
fn a_full_disk_sends_misses_elsewhere_and_still_serves_what_it_holds() {
    let base = run("");
    assert_eq!(base.no_room, 0);
    let s = run("[[outage]]\nkind = \"disk_full\"\nnode = \"T2/cache\"\nat = \"10min\"\nduration = \"20min\"\n");
    // Misses at the full cache fail with `no_space` after the core's NO_ROOM_WAIT; its clients
    // then try the next cache (T1's), so nothing fails.
    assert!(s.no_room > 0, "{s:?}");
    assert_eq!(s.failed, 0, "{:?}", s.failures);
    assert!(
        s.client_failovers >= s.no_room,
        "{} client failovers, {} fills without room",
        s.client_failovers,
        s.no_room
    );
    // A third of the run the T2 cache keeps nothing new: fewer hits there than without it.
    assert!(s.tiers["T2"].served_from.site_cache < base.tiers["T2"].served_from.site_cache);
    // Only a cache has a store to fill.
    let text = format!(
        "{BASE}\n[[outage]]\nkind = \"disk_full\"\nnode = \"T1/origin/atlas\"\nat = \"1s\"\nduration = \"1s\"\n"
    );
    let scenario = parse(Path::new("outages.toml"), &text, &[]).unwrap();
    let Err(e) = simulate(&scenario, 3, &mut |_| {}) else { panic!("an origin is no cache") };
    let err = format!("{e:#}");
    assert!(err.contains("disk_full names `T1/origin/atlas`, not a cache"), "{err}");
}
