//! Same scenario and seed: identical result files, byte for byte. Another seed: other results.

use reef_sim::run::{simulate, write_results};
use reef_sim::scenario::parse;
use std::path::{Path, PathBuf};

const SCENARIO: &str = r#"
name = "det"

[topology.generate]
t1 = 2
t2 = 4
regions = ["eu", "us"]
t0_cache = "10TB"
t1_cache = "2TB"
t2_cache = "500GB"
t2_worker_nodes = 2
wn_cache = "50GB"

[[namespace]]
name = "atlas"
origins = ["T0", "T1-01"]

[workload]
requests = 3000
duration = "20min"
objects = 2000
dataset_files = 100
size = { dist = "lognormal", median = "200MB", sigma = 1.0, min = "1MB", max = "2GB" }
one_timers = 0.2
jobs = { share = 0.5, files = 5 }
diurnal = { amplitude = 0.5 }
churn = { every = "5min", shift = 50 }

[[workload.flash_crowd]]
at = "10min"
duration = "5min"
share = 0.3

[[outage]]
kind = "site"
site = "T1-01"
at = "5min"
duration = "5min"
"#;

fn run(seed: u64, overrides: &[&str], dir: &Path) -> Vec<u8> {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let scenario = parse(Path::new("det.toml"), SCENARIO, &overrides).unwrap();
    let summary = simulate(&scenario, seed, &mut |_| {}).unwrap();
    assert_eq!(summary.requests, 3000);
    assert_eq!(summary.completed + summary.failed, summary.requests, "every request is accounted for");
    write_results(dir, &summary, 1.0).unwrap();
    std::fs::read(dir.join("summary.json")).unwrap()
}

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("determinism").join(name)
}

#[test]
fn same_seed_same_files_other_seed_other_results() {
    for discovery in ["none", "parent", "dsht"] {
        let set = [format!("policy.discovery={discovery}")];
        let set: Vec<&str> = set.iter().map(String::as_str).collect();
        let a = run(5, &set, &dir(&format!("{discovery}-a")));
        let b = run(5, &set, &dir(&format!("{discovery}-b")));
        assert!(a == b, "{discovery}: same seed gave different summary.json");
        let c = run(6, &set, &dir(&format!("{discovery}-c")));
        assert!(a != c, "{discovery}: another seed gave the same results");
    }
}
