//! Multi-source fetch in the simulator (`policy.multi_source_min`), the core's split played as
//! reef-node plays it. Three origins, each behind its own 800 Mbit/s link to the Tier-2 that
//! asks for one 3 GB object: from one origin it takes 3 GB / 100 MB/s = 30 s; split three ways
//! each link carries a third, 10 s. An origin that dies mid-way hands its range on: the object
//! still arrives, every byte once but for the part of a block the dead origin had sent, its
//! rest shared out among the holders left.

use reef_sim::run::simulate;
use reef_sim::scenario::parse;
use std::path::Path;

const SCENARIO: &str = r#"
name = "split"
seed = 1

[policy]
fetch_timeout = "5s"

[topology]
lan_latency = "0ms"

[[topology.site]]
name = "A"
tier = "T0"
weight = 0.0

[[topology.site]]
name = "B"
tier = "T1"
weight = 0.0

[[topology.site]]
name = "C"
tier = "T1"
weight = 0.0

[[topology.site]]
name = "D"
tier = "T2"
cache = "10GB"
weight = 1.0

[[topology.link]]
a = "A"
b = "D"
bandwidth = "800Mbit/s"
latency = "1ms"

[[topology.link]]
a = "B"
b = "D"
bandwidth = "800Mbit/s"
latency = "1ms"

[[topology.link]]
a = "C"
b = "D"
bandwidth = "800Mbit/s"
latency = "1ms"

[[namespace]]
name = "raw"
origins = ["A", "B", "C"]

[workload]
requests = 1
duration = "1s"
objects = 1
size = { dist = "fixed", value = "3GB" }
client_bandwidth = "100Gbit/s"
"#;

/// (seconds the request took, bytes from the origins, requests completed) with `overrides`.
fn run(overrides: &[&str]) -> (f64, u64, u64) {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let scenario = parse(Path::new("split.toml"), SCENARIO, &overrides).unwrap();
    let run = simulate(&scenario, 1, &mut |_| {}).unwrap().summary;
    (run.duration_ms.p50 / 1e3, run.bytes_from_origin, run.completed)
}

#[test]
fn a_split_fill_takes_a_third_of_the_time_and_moves_every_byte_once() {
    let (one, bytes, done) = run(&[]);
    assert_eq!((bytes, done), (3_000_000_000, 1));
    // (Durations are read from the summary's histogram: within 1%.)
    assert!((29.7..30.3).contains(&one), "one source: {one} s (30 s at 100 MB/s)");
    let (three, bytes, done) = run(&["policy.multi_source_min=64MB"]);
    assert_eq!((bytes, done), (3_000_000_000, 1), "every byte once");
    // A third of 3 GB (rounded to whole MiB blocks: 954 of 2,862 blocks, 1,000.3 MB) at
    // 100 MB/s: 10.0 s, plus the lead's head start and the round trips.
    assert!((9.9..10.3).contains(&three), "three sources: {three} s");
}

#[test]
fn an_origin_dying_mid_way_hands_its_range_on() {
    let outage = "outage=[{ kind = \"origin\", namespace = \"raw\", site = \"B\", at = \"5s\", duration = \"1h\" }]";
    let (took, bytes, done) = run(&["policy.multi_source_min=64MB", outage]);
    assert_eq!(done, 1);
    // B had sent about half its range (5 s of 10) when it died. Its rest (about 546 MB) is
    // shared out between A and C, whose links then carry their own last 500 MB and 273 MB of
    // B's each: 773 MB at 100 MB/s from 5 s, so the object is whole at about 12.7 s.
    assert!((12.4..13.0).contains(&took), "{took} s");
    // Only a partial block of B's is lost and sent again (at most 1 MiB).
    assert!((3_000_000_000..=3_000_000_000 + (1 << 20)).contains(&bytes), "{bytes}");
}
