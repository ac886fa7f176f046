//! `[workload.ingest]`: files published during the run are in no cache, so asking for a file
//! nobody has asked for before always costs an origin fetch.

use reef_sim::run::simulate;
use reef_sim::scenario::parse;
use std::path::Path;

const SCENARIO: &str = r#"
name = "ingest"

[topology.generate]
t1 = 2
t2 = 4
t2_worker_nodes = 2

[[namespace]]
name = "atlas"
origins = ["T0"]

[workload]
requests = 2000
duration = "1h"
objects = 200
size = { dist = "fixed", value = "10MB" }
"#;

fn run(overrides: &[&str]) -> reef_sim::run::Summary {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let scenario = parse(Path::new("ingest.toml"), SCENARIO, &overrides).unwrap();
    simulate(&scenario, 3, &mut |_| {}).unwrap().summary
}

#[test]
fn fresh_files_are_cold_everywhere_and_come_from_an_origin() {
    let base = run(&[]);
    // 36,000 files an hour (one every 0.1 s) and ~0.56 requests a second, each for the newest
    // file: nearly every request asks for a file no one asked for before.
    let fresh = run(&["workload.ingest.files_per_hour=36000", "workload.ingest.share=1", "workload.ingest.recent=1"]);
    assert_eq!(fresh.completed, fresh.requests, "fresh files are at the origin: every request is served");
    assert!(fresh.object_hit_ratio < 0.02, "fresh data hits no cache: hit ratio {}", fresh.object_hit_ratio);
    assert!(fresh.origin_fetches as f64 >= 0.98 * fresh.requests as f64, "origin fetches {}", fresh.origin_fetches);
    // The catalog alone (200 objects, 2,000 requests) is mostly cached after the first reads.
    assert!(base.object_hit_ratio > 0.5, "hit ratio without ingest {}", base.object_hit_ratio);
    // A share of fresh requests lowers the hit ratio by about that share, never raises it.
    let half = run(&["workload.ingest.files_per_hour=36000", "workload.ingest.share=0.5", "workload.ingest.recent=1"]);
    assert!(
        half.object_hit_ratio < base.object_hit_ratio * 0.6,
        "{} vs {}",
        half.object_hit_ratio,
        base.object_hit_ratio
    );
    assert_eq!(run(&["workload.ingest.files_per_hour=36000", "workload.ingest.share=0.5"]).requests, 2000);
}

#[test]
fn a_bad_ingest_section_is_refused_with_its_key() {
    for (overrides, want) in [
        (["workload.ingest.files_per_hour=0", "workload.ingest.share=0.5"], "workload.ingest.files_per_hour"),
        (["workload.ingest.files_per_hour=10", "workload.ingest.share=1.5"], "share"),
    ] {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let err = match parse(Path::new("ingest.toml"), SCENARIO, &overrides) {
            Err(e) => e.to_string(),
            Ok(s) => match simulate(&s, 1, &mut |_| {}) {
                Ok(_) => panic!("{overrides:?} was accepted"),
                Err(e) => format!("{e:#}"),
            },
        };
        assert!(err.contains(want), "{overrides:?}: {err}");
    }
}
