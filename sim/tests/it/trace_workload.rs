//! A trace as a scenario's workload: the trace's objects and sizes, in order, mapped to client
//! sites; bad trace settings fail with errors that say what and where.

use reef_sim::run::simulate;
use reef_sim::scenario::parse;
use std::path::Path;

const OBJECTS: u64 = 20;
const SIZE: u64 = 100_000_000;

fn scenario(dir: &Path, extra: &str) -> String {
    format!(
        r#"
name = "traced"
[topology.generate]
t1 = 1
t2 = 2
regions = ["eu"]
t1_cache = "10TB"
t2_cache = "10TB"

[[namespace]]
name = "atlas"

[workload]
requests = 600
duration = "10min"
objects = 1000

[workload.trace]
file = "{}"
format = "csv"
{extra}
"#,
        dir.join("trace.csv").display()
    )
}

fn write_trace(dir: &Path, requests: u64) {
    let mut csv = String::from("time,obj_id,obj_size\n");
    for i in 0..requests {
        csv += &format!("{i},{},{SIZE}\n", 1 + i % OBJECTS);
    }
    std::fs::write(dir.join("trace.csv"), csv).unwrap();
}

#[test]
fn the_trace_drives_the_requests_and_sites_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    write_trace(dir.path(), 700);
    let text = scenario(dir.path(), "sites = \"round-robin\"");
    let s = parse(Path::new("traced.toml"), &text, &[]).unwrap_or_else(|e| panic!("{e}"));
    let r = simulate(&s, 1, &mut |_| {}).unwrap().summary;
    assert_eq!(r.requests, 600, "the first 600 of the trace's 700 requests");
    assert_eq!(r.bytes_requested, 600 * SIZE, "sizes come from the trace");
    assert_eq!(r.failed, 0);
    // Round-robin over the three sites with a weight (the T0 has none).
    assert_eq!((r.tiers["T1"].requests, r.tiers["T2"].requests), (200, 400));
    // 20 objects, each fetched from the origin at most once per site cache: the rest are hits.
    assert!(r.origin_fetches <= OBJECTS * 3, "{} origin fetches", r.origin_fetches);
    let site_hits = r.served_from.site_cache + r.served_from.worker_node;
    assert!(site_hits >= 600 - OBJECTS * 3, "{site_hits} hits at the client's site");
    // Same trace and seed, same run; the weights mapping draws sites instead.
    assert_eq!(
        serde_json::to_string(&simulate(&s, 1, &mut |_| {}).unwrap().summary).unwrap(),
        serde_json::to_string(&r).unwrap()
    );
    let weighted = parse(Path::new("traced.toml"), &scenario(dir.path(), ""), &[]).unwrap();
    let w = simulate(&weighted, 1, &mut |_| {}).unwrap().summary;
    assert_eq!((w.requests, w.bytes_requested), (600, 600 * SIZE));
    // Weights T1 2, T2 1 each: half the requests from the T1 (300 of 600, a few sigma either
    // way), not the third that turns give.
    let t1 = w.tiers["T1"].requests;
    assert!((240..=360).contains(&t1), "{t1} T1 requests of 600 by weight");
}

#[test]
fn bad_trace_settings_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    write_trace(dir.path(), 100);
    let build = |extra: &str| {
        let s = parse(Path::new("traced.toml"), &scenario(dir.path(), extra), &[]).unwrap();
        simulate(&s, 1, &mut |_| {}).map(|_| ()).unwrap_err().root_cause().to_string()
    };
    assert!(build("").contains("workload.requests is 600 but the trace"), "{}", build(""));
    assert!(build("sites = \"nearest\"").contains("expected `weights` or `round-robin`"));
    let missing =
        parse(Path::new("traced.toml"), &scenario(dir.path(), "").replace("trace.csv", "nope.csv"), &[]).unwrap();
    let err = simulate(&missing, 1, &mut |_| {}).map(|_| ()).unwrap_err().root_cause().to_string();
    assert!(err.contains("nope.csv"), "{err}");
    let unknown = scenario(dir.path(), "").replace("format = \"csv\"", "format = \"parquet\"");
    let s = parse(Path::new("traced.toml"), &unknown, &[]).unwrap();
    let err = simulate(&s, 1, &mut |_| {}).map(|_| ()).unwrap_err().root_cause().to_string();
    assert!(err.contains("unknown format `parquet`"), "{err}");
}
