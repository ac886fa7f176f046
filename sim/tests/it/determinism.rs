//! Same scenario and seed: identical result files, byte for byte (every file but `run.json`,
//! which holds wall-clock figures; with the `results` feature that includes the Parquet tables
//! and the figures). Another seed: other results.

use reef_sim::output;
use reef_sim::run::simulate;
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

/// Runs and writes the results; returns every file but `run.json`, by name.
fn run(seed: u64, overrides: &[&str], dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    overrides.push("run.sample_requests=0.1".into());
    let scenario = parse(Path::new("det.toml"), SCENARIO, &overrides).unwrap();
    let run = simulate(&scenario, seed, &mut |_| {}).unwrap();
    let s = &run.summary;
    assert_eq!(s.requests, 3000);
    assert_eq!(s.completed + s.failed, s.requests, "every request is accounted for");
    let _ = std::fs::remove_dir_all(dir);
    output::write(dir, s, &run.results, false, 1.0).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "run.json")
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    assert!(files.iter().any(|(name, _)| name == "summary.json"));
    if cfg!(feature = "results") {
        for want in ["summary.parquet", "timeseries.parquet", "links.parquet", "requests.parquet", "hit_ratio.png"] {
            assert!(files.iter().any(|(name, _)| name == want), "no {want} in {files:?}", files = names(&files));
        }
    }
    files
}

fn names(files: &[(String, Vec<u8>)]) -> Vec<&str> {
    files.iter().map(|(n, _)| n.as_str()).collect()
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
        assert_eq!(names(&a), names(&b));
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            assert!(x == y, "{discovery}: same seed gave a different {name}");
        }
        let c = run(6, &set, &dir(&format!("{discovery}-c")));
        assert!(a != c, "{discovery}: another seed gave the same results");
    }
}
