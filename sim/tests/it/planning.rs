//! What a capacity planner reads off a run, pinned with numbers derived in each test from the
//! scenario itself: discovery behind worker nodes, routes that follow the tier links, requests
//! attributed to where their bytes came from, per-bucket link bytes within capacity, and
//! clients that fail over when their cache is down.

use reef_sim::run::{Summary, simulate};
use reef_sim::scenario::parse;
use reef_sim::world::World;
use std::path::Path;

const OBJECTS: u64 = 10;
const SIZE: u64 = 10_000_000;

/// Two Tier-2 sites `A` and `B`, each a site cache behind one worker node, under a Tier-1 and
/// the Tier-0 (origin). The trace asks every object first at `A`, then at `B`, minutes apart.
fn two_sites(dir: &Path, discovery: &str) -> String {
    let mut csv = String::from("obj_id,obj_size\n");
    for i in 0..OBJECTS {
        csv += &format!("{i},{SIZE}\n{i},{SIZE}\n");
    }
    std::fs::write(dir.join("trace.csv"), csv).unwrap();
    format!(
        r#"
name = "two-sites"
[policy]
discovery = "{discovery}"
rendezvous_max_level = 2
[[topology.site]]
name = "T0"
tier = "T0"
cache = "1TB"
weight = 0
[[topology.site]]
name = "T1"
tier = "T1"
cache = "1TB"
weight = 0
[[topology.site]]
name = "A"
tier = "T2"
cache = "1TB"
worker_nodes = 1
wn_cache = "1TB"
[[topology.site]]
name = "B"
tier = "T2"
cache = "1TB"
worker_nodes = 1
wn_cache = "1TB"
[[topology.link]]
a = "T0"
b = "T1"
bandwidth = "10Gbit/s"
latency = "10ms"
[[topology.link]]
a = "T1"
b = "A"
bandwidth = "10Gbit/s"
latency = "5ms"
[[topology.link]]
a = "T1"
b = "B"
bandwidth = "10Gbit/s"
latency = "5ms"
[workload]
requests = {requests}
duration = "2h"
objects = {OBJECTS}
[workload.trace]
file = "{trace}"
format = "csv"
sites = "round-robin"
"#,
        requests = 2 * OBJECTS,
        trace = dir.join("trace.csv").display(),
    )
}

fn run(text: &str) -> Summary {
    let s = parse(Path::new("planning.toml"), text, &[]).unwrap_or_else(|e| panic!("{e}"));
    simulate(&s, 1, &mut |_| {}).unwrap().summary
}

#[test]
fn site_caches_behind_worker_nodes_find_each_others_copies() {
    let dir = tempfile::tempdir().unwrap();
    // Without discovery both site caches fetch every object from the origin: 2 per object,
    // and every request's bytes came from the origin.
    let none = run(&two_sites(dir.path(), "none"));
    assert_eq!(none.failed, 0);
    assert_eq!(none.origin_fetches, 2 * OBJECTS);
    assert_eq!(none.served_from.origin, 2 * OBJECTS);
    // With discovery, B's site cache finds A's copy: one origin fetch per object; A's requests
    // came from the origin, B's from another site's cache (a Tier-2 like itself), each
    // relayed by two caches (B's site cache, then B's worker node).
    for strategy in ["dsht", "directory", "rendezvous"] {
        let r = run(&two_sites(dir.path(), strategy));
        assert_eq!(r.failed, 0, "{strategy}");
        assert_eq!(r.origin_fetches, OBJECTS, "{strategy}: one origin fetch per object");
        assert_eq!(r.served_from.origin, OBJECTS, "{strategy}");
        if strategy != "rendezvous" {
            // (Rendezvous sends both reads to the object's home, which may be any cache.)
            assert_eq!(r.served_from.other_site, OBJECTS, "{strategy}");
            assert_eq!(r.served_from.relayed, 2 * OBJECTS, "{strategy}");
        }
    }
}

#[test]
fn a_second_read_at_a_site_is_attributed_to_the_site_not_to_a_peer() {
    // Each object twice at A only: the first read's bytes came from the origin (through the
    // site cache and the worker node), the second from the worker node's own store. Before,
    // the worker's fetch from its site cache counted as a "peer" hit.
    let dir = tempfile::tempdir().unwrap();
    let text =
        two_sites(dir.path(), "none").replace("name = \"B\"\ntier = \"T2\"", "name = \"B\"\ntier = \"T2\"\nweight = 0");
    let r = run(&text);
    assert_eq!(r.failed, 0);
    assert_eq!((r.served_from.origin, r.served_from.worker_node), (OBJECTS, OBJECTS));
    assert_eq!(r.served_from.site_cache + r.served_from.parent_tier + r.served_from.other_site, 0);
    assert_eq!(r.site_hit_ratio, 0.5);
}

const GRID: &str = r#"
name = "grid"
[policy]
discovery = "none"
[topology.generate]
t1 = 6
t2 = 0
regions = ["europe", "north-america", "asia"]
t0_cache = "1TB"
t1_cache = "1TB"
t0_t1 = ["10Gbit/s"]
t1_t1 = ["10Gbit/s"]
t1_t2 = ["10Gbit/s"]
latency_spread = 0.9
[workload]
requests = 600
duration = "30min"
objects = 100000
size = { dist = "fixed", value = "100MB" }
"#;

#[test]
fn routes_follow_the_tier_links_whatever_the_latencies() {
    let s = parse(Path::new("grid.toml"), GRID, &[]).unwrap_or_else(|e| panic!("{e}"));
    for seed in 1..=3 {
        let w = World::new(&s, seed).unwrap();
        let t = &w.topo;
        for a in 0..t.sites.len() as u32 {
            for b in 0..t.sites.len() as u32 {
                if a == b {
                    continue;
                }
                let direct = t.link_between(a, b).expect("T0 and the Tier-1s are fully meshed");
                let (latency, links) = t.route(a, b).unwrap();
                assert_eq!(links, &[direct][..], "seed {seed}: {a} -> {b} takes its direct link");
                assert_eq!(latency, t.links[direct as usize].latency);
            }
        }
        // Every Tier-1's site cache fetches from the Tier-0 origin over its own T0 link, so
        // with no discovery the T0 links carry every byte and the Tier-1 mesh carries none.
        let r = simulate(&s, seed, &mut |_| {}).unwrap().summary;
        assert_eq!(r.failed, 0);
        let mut t0_bytes = 0;
        for l in &r.wan_links {
            if l.a == "T0" || l.b == "T0" {
                assert!(l.bytes > 0, "seed {seed}: T0 link {}-{} idle", l.a, l.b);
                t0_bytes += l.bytes;
            } else {
                assert_eq!(l.bytes, 0, "seed {seed}: {}-{} is no detour", l.a, l.b);
            }
        }
        assert_eq!(t0_bytes, r.bytes_from_origin, "seed {seed}");
    }
}

#[test]
fn link_buckets_never_exceed_capacity_and_add_up_to_the_bytes_carried() {
    // Many concurrent 100 MB transfers share each 10 Gbit/s T0 link: a bucket can hold at most
    // capacity × bucket bytes, and the buckets of a link add up to what its completed
    // transfers carried.
    let text =
        GRID.replace("value = \"100MB\"", "value = \"2GB\"").replace("duration = \"30min\"", "duration = \"2min\"")
            + "[run]\nbucket = \"5s\"\n";
    let s = parse(Path::new("grid.toml"), &text, &[]).unwrap_or_else(|e| panic!("{e}"));
    let out = simulate(&s, 1, &mut |_| {}).unwrap();
    let capacity_per_bucket = 10e9 / 8.0 * 5.0;
    let mut busiest: f64 = 0.0;
    for row in &out.results.links {
        assert!(row.bytes as f64 <= capacity_per_bucket * (1.0 + 1e-9) + 1.0, "{row:?}");
        busiest = busiest.max(row.utilisation);
    }
    assert!(busiest > 0.99, "the busiest bucket is saturated: {busiest}");
    for l in &out.summary.wan_links {
        let name = format!("{}-{}", l.a, l.b);
        let buckets: u64 = out.results.links.iter().filter(|r| r.link == name).map(|r| r.bytes).sum();
        // Each bucket is rounded to whole bytes.
        let rows = out.results.links.iter().filter(|r| r.link == name).count() as u64;
        assert!(buckets.abs_diff(l.bytes) <= rows, "{name}: buckets {buckets} vs transfers {}", l.bytes);
    }
}

#[test]
fn clients_fail_over_to_the_next_cache_when_theirs_is_down() {
    // A's cache (its only node: no worker nodes) is down for 20 minutes in the middle of the
    // run, with the origin and the Tier-1 up: A's clients go to the nearest other cache (the
    // Tier-1's) and nothing fails.
    let dir = tempfile::tempdir().unwrap();
    let text = two_sites(dir.path(), "none").replace("worker_nodes = 1\n", "")
        + "\n[[outage]]\nkind = \"node\"\nnode = \"A/cache\"\nat = \"50min\"\nduration = \"20min\"\n";
    let r = run(&text);
    assert_eq!(r.failed, 0, "{:?}", r.failures);
    assert!(r.client_failovers > 0);
    assert_eq!(r.served_from.parent_tier + r.served_from.origin + r.served_from.other_site, 2 * OBJECTS);
}

#[test]
fn a_site_that_is_down_carries_no_transit() {
    // The Tier-2's misses reach the Tier-0 origin through T1a (two links, 10 ms) rather than
    // T1b (two links, 20 ms). While T1a is down (20 to 40 min) its links carry nothing and the
    // traffic goes through T1b; before and after, T1b's links are idle.
    let text = r#"
name = "transit"
[policy]
discovery = "none"
[[topology.site]]
name = "T0"
tier = "T0"
weight = 0
[[topology.site]]
name = "T1a"
tier = "T1"
weight = 0
[[topology.site]]
name = "T1b"
tier = "T1"
weight = 0
[[topology.site]]
name = "T2"
tier = "T2"
[[topology.link]]
a = "T0"
b = "T1a"
bandwidth = "10Gbit/s"
latency = "5ms"
[[topology.link]]
a = "T1a"
b = "T2"
bandwidth = "10Gbit/s"
latency = "5ms"
[[topology.link]]
a = "T0"
b = "T1b"
bandwidth = "10Gbit/s"
latency = "10ms"
[[topology.link]]
a = "T1b"
b = "T2"
bandwidth = "10Gbit/s"
latency = "10ms"
[workload]
requests = 600
duration = "1h"
objects = 100000
size = { dist = "fixed", value = "10MB" }
[run]
bucket = "1min"
[[outage]]
kind = "site"
site = "T1a"
at = "20min"
duration = "20min"
"#;
    let s = parse(Path::new("transit.toml"), text, &[]).unwrap_or_else(|e| panic!("{e}"));
    let out = simulate(&s, 3, &mut |_| {}).unwrap();
    let bytes = |link: &str, during: bool| -> u64 {
        let inside = |t: f64| (1200.0..2400.0).contains(&t);
        out.results.links.iter().filter(|r| r.link == link && inside(r.time_s) == during).map(|r| r.bytes).sum()
    };
    for link in ["T0-T1a", "T1a-T2"] {
        assert_eq!(bytes(link, true), 0, "{link} carries nothing while T1a is down");
        assert!(bytes(link, false) > 0, "{link} is the route otherwise");
    }
    for link in ["T0-T1b", "T1b-T2"] {
        assert!(bytes(link, true) > 0, "{link} carries the detour");
        assert_eq!(bytes(link, false), 0, "{link} is idle while T1a is up");
    }
}

#[test]
fn a_slow_transfer_that_keeps_moving_is_never_cut_by_the_fetch_timeout() {
    // One 10 GB object over a 1 Gbit/s link takes 80 s, more than the 30 s fetch timeout: the
    // timeout is an idle timeout (the flow reports progress), so the fill completes at the
    // first try. The client streams: its first byte comes once the first block (1 MiB, 8.4 ms
    // at 125 MB/s) has crossed, after 10 ms each way plus the LAN hops (0.1 ms each way); its
    // last byte after the whole transfer (80 s).
    let r = slow_transfer(&[]);
    assert_eq!((r.failed, r.failovers, r.origin_fetches), (0, 0, 1), "{:?}", r.failures);
    let first_byte = 0.1 + 10.0 + (1u64 << 20) as f64 / 125e6 * 1e3 + 10.0 + 0.1;
    // (The histograms keep about 1.6% precision.)
    assert!((r.latency_ms.p50 - first_byte).abs() <= first_byte * 0.02, "{} vs {first_byte} ms", r.latency_ms.p50);
    assert!((r.duration_ms.p50 - 80_000.0).abs() <= 80_000.0 * 0.02, "{} ms", r.duration_ms.p50);
    // Store and forward: the first byte waits for the whole fill.
    let r = slow_transfer(&["policy.stream=false".into()]);
    assert_eq!((r.failed, r.origin_fetches), (0, 1));
    assert!(r.latency_ms.p50 >= 80_000.0 * 0.98, "{} ms", r.latency_ms.p50);
}

/// One 10 GB object from a Tier-0 origin to a Tier-2 cache over one 1 Gbit/s, 10 ms link.
fn slow_transfer(overrides: &[String]) -> Summary {
    let text = r#"
name = "slow"
[policy]
fetch_timeout = "30s"
[[topology.site]]
name = "T0"
tier = "T0"
weight = 0
[[topology.site]]
name = "T2"
tier = "T2"
cache = "1TB"
[[topology.link]]
a = "T0"
b = "T2"
bandwidth = "1Gbit/s"
latency = "10ms"
[workload]
requests = 1
duration = "1min"
objects = 1
size = { dist = "fixed", value = "10GB" }
"#;
    let s = parse(Path::new("slow.toml"), text, overrides).unwrap_or_else(|e| panic!("{e}"));
    simulate(&s, 1, &mut |_| {}).unwrap().summary
}
