//! The results of a run and of comparisons, end to end with the real `reef-sim` binary: the
//! tables' totals agree with the summary, `compare` equals separate `run`s, merged shards equal
//! the unsharded sweep, and (with the `results` feature) Parquet tables read back with the same
//! totals and the figures are valid PNG and SVG files.

use reef_sim::run::simulate;
use reef_sim::scenario;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const QUICK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/quickstart.toml");
/// Small enough for a debug build; a T1 outage so that failures and shaded windows exist.
const SMALL: &[&str] = &[
    "--set",
    "workload.requests=1500",
    "--set",
    "workload.duration=20min",
    "--set",
    "outage=[{kind=\"site\", site=\"T1-01\", at=\"5min\", duration=\"5min\"}]",
    "--set",
    "run.sample_requests=0.05",
    // Caches small enough to evict, so that eviction policies make a difference.
    "--set",
    "topology.generate.t2_cache=100GB",
    "--set",
    "topology.generate.wn_cache=10GB",
    "--set",
    "topology.generate.t1_cache=300GB",
];

fn reef_sim(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_reef-sim")).args(args).output().expect("run reef-sim");
    assert!(out.status.success(), "reef-sim {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("results").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn the_tables_add_up_to_the_summary() {
    let overrides: Vec<String> = SMALL.chunks(2).map(|c| c[1].to_string()).collect();
    let s = scenario::load(Path::new(QUICK), &overrides).unwrap();
    let run = simulate(&s, 7, &mut |_| {}).unwrap();
    let (sum, r) = (&run.summary, &run.results);
    let total = |f: fn(&reef_results::TimeseriesRow) -> u64| r.timeseries.iter().map(f).sum::<u64>();
    assert!(sum.failed > 0, "the outage fails some requests");
    assert_eq!(total(|t| t.counts.requests), sum.requests);
    assert_eq!(total(|t| t.counts.completed), sum.completed);
    assert_eq!(total(|t| t.counts.failed), sum.failed);
    let from = &sum.served_from;
    assert_eq!(total(|t| t.counts.hits_local), from.worker_node + from.site_cache);
    assert_eq!(total(|t| t.counts.hits_peer), from.parent_tier + from.other_site);
    assert_eq!(total(|t| t.counts.hits_origin), from.origin);
    assert_eq!(total(|t| t.counts.from_worker_node), from.worker_node);
    assert_eq!(total(|t| t.counts.from_parent_tier), from.parent_tier);
    assert_eq!(total(|t| t.counts.relayed), from.relayed);
    assert_eq!(
        total(|t| t.counts.hits_local + t.counts.hits_peer + t.counts.hits_origin),
        sum.completed,
        "hits add up to completed"
    );
    assert_eq!(
        total(|t| t.counts.bytes_local + t.counts.bytes_peer + t.counts.bytes_origin),
        sum.bytes_served,
        "bytes by source"
    );
    assert_eq!(total(|t| t.counts.origin_egress_bytes), sum.bytes_from_origin);
    let wan: u64 = sum.wan_links.iter().map(|l| l.bytes).sum();
    let carried: u64 = r.links.iter().map(|l| l.bytes).sum();
    // The buckets hold every byte carried, also those of transfers the outage broke; the link
    // totals count completed transfers only.
    assert!(carried + r.links.len() as u64 >= wan, "link buckets {carried} vs link totals {wan}");
    assert!(r.links.iter().all(|l| (0.0..=1.0 + 1e-9).contains(&l.utilisation)));
    let sampled = r.requests.len() as u64;
    assert_eq!(sampled, sum.requests / 20, "every 20th request is sampled at 5%");
    assert!(r.requests.iter().any(|q| q.source == "failed") && r.requests.iter().any(|q| q.source != "failed"));
    assert_eq!(r.outages.len(), 1);
    assert!(!r.latency.is_empty() && r.latency.iter().all(|c| c.points.last().unwrap().1 == 1.0));
}

#[test]
fn compare_equals_separate_runs_and_shards_merge_into_the_whole() {
    let whole = tmp("compare-whole");
    let mut args = vec!["compare", QUICK, "--quiet", "--seed", "3", "--vary", "policy.eviction=lru,s3fifo"];
    args.extend_from_slice(SMALL);
    reef_sim(&[&args[..], &["--out", whole.to_str().unwrap()]].concat());
    let comparison = json(&whole.join("compare.json"));
    let rows = comparison["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["variant"], "lru");
    assert_ne!(rows[0]["summary"], rows[1]["summary"], "the policies differ");

    for (i, policy) in ["lru", "s3fifo"].into_iter().enumerate() {
        let alone = tmp(&format!("run-{policy}"));
        let set = format!("policy.eviction={policy}");
        let mut run = vec!["run", QUICK, "--quiet", "--seed", "3", "--set", &set, "--out", alone.to_str().unwrap()];
        run.extend_from_slice(SMALL);
        reef_sim(&run);
        let separate = std::fs::read(alone.join("summary.json")).unwrap();
        let inside = std::fs::read(whole.join(format!("{i:03}-{policy}")).join("summary.json")).unwrap();
        assert!(separate == inside, "{policy}: compare's run differs from a separate run");
        assert_eq!(json(&alone.join("summary.json")), rows[i]["summary"]);
    }

    let shards: Vec<PathBuf> = (0..2).map(|i| tmp(&format!("shard-{i}"))).collect();
    for (i, dir) in shards.iter().enumerate() {
        let shard = format!("{i}/2");
        reef_sim(&[&args[..], &["--shard", &shard, "--out", dir.to_str().unwrap()]].concat());
        assert_eq!(json(&dir.join("compare.json"))["rows"].as_array().unwrap().len(), 1);
    }
    let merged = tmp("merged");
    reef_sim(&["merge", shards[1].to_str().unwrap(), shards[0].to_str().unwrap(), "--out", merged.to_str().unwrap()]);
    let text = |dir: &Path| std::fs::read_to_string(dir.join("compare.json")).unwrap();
    assert!(text(&merged) == text(&whole), "merged shards differ from the unsharded comparison");
    if cfg!(feature = "results") {
        for dir in [&whole, &merged] {
            assert_png(&dir.join("compare_byte_hit_ratio.png"));
            assert_svg(&dir.join("compare_origin_egress.svg"));
        }
    }
}

#[test]
fn merge_refuses_incomplete_or_mixed_sweeps() {
    let a = tmp("mixed-a");
    let b = tmp("mixed-b");
    let base = ["compare", QUICK, "--quiet", "--set", "workload.requests=200"];
    reef_sim(
        &[&base[..], &["--vary", "policy.eviction=lru,fifo", "--shard", "0/2", "--out", a.to_str().unwrap()]].concat(),
    );
    reef_sim(
        &[&base[..], &["--vary", "policy.eviction=lru,sieve", "--shard", "1/2", "--out", b.to_str().unwrap()]].concat(),
    );
    let merge = |dirs: &[&Path]| {
        let out = tmp("mixed-out");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reef-sim"));
        cmd.arg("merge").args(dirs).arg("--out").arg(&out);
        let o = cmd.output().unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert!(merge(&[&a]).contains("combinations [1] of 2 are in none of the folders"));
    // Same key and count, other values: not the same sweep.
    assert!(merge(&[&a, &b]).contains("belongs to another sweep"));
    // Same values, other --set overrides: not the same sweep either.
    let c = tmp("mixed-c");
    reef_sim(
        &[
            &base[..],
            &["--set", "workload.zipf=0.7", "--vary", "policy.eviction=lru,fifo", "--shard", "1/2"],
            &["--out", c.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(merge(&[&a, &c]).contains("belongs to another sweep"));
}

#[cfg(feature = "results")]
fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes.len() > 2000, "{} is only {} bytes", path.display(), bytes.len());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
}

#[cfg(feature = "results")]
fn assert_svg(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"), "{} is not an SVG", path.display());
    assert!(text.contains("<text"), "{} has no text", path.display());
}

#[cfg(not(feature = "results"))]
fn assert_png(_: &Path) {}
#[cfg(not(feature = "results"))]
fn assert_svg(_: &Path) {}

#[cfg(feature = "results")]
#[test]
fn a_run_writes_parquet_tables_figures_and_a_report() {
    use reef_results::tables::read_parquet;
    let out = tmp("run-tables");
    let mut args = vec!["run", QUICK, "--quiet", "--out", out.to_str().unwrap()];
    args.extend_from_slice(SMALL);
    reef_sim(&args);
    let summary = json(&out.join("summary.json"));
    let ts = read_parquet(&out.join("timeseries.parquet")).unwrap();
    let sum = |col: &str| ts.column(col).unwrap().as_materialized_series().sum::<u64>().unwrap();
    assert_eq!(sum("requests"), summary["requests"].as_u64().unwrap());
    assert_eq!(sum("failed"), summary["failed"].as_u64().unwrap());
    assert_eq!(sum("hits_local") + sum("hits_peer") + sum("hits_origin"), summary["completed"].as_u64().unwrap());
    assert_eq!(sum("bytes_local") + sum("bytes_peer") + sum("bytes_origin"), summary["bytes_served"].as_u64().unwrap());
    let table = read_parquet(&out.join("summary.parquet")).unwrap();
    assert_eq!(table.height(), 1);
    assert!(read_parquet(&out.join("requests.parquet")).unwrap().height() > 10);
    assert_eq!(read_parquet(&out.join("outages.parquet")).unwrap().height(), 1);
    for fig in ["hit_ratio", "origin_egress", "link_utilisation", "latency_cdf", "failures"] {
        assert_png(&out.join(format!("{fig}.png")));
        assert_svg(&out.join(format!("{fig}.svg")));
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("quickstart") && report.contains("hit_ratio.png"), "{report}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg"), "the HTML report inlines its figures");
}
