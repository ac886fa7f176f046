//! Scenario files: errors say where (file, line, column, key) and what was expected; `--set`
//! overrides any key.

use reef_sim::scenario::{ScenarioError, parse};
use std::path::Path;

const GOOD: &str = r#"
name = "t"

[topology]
[[topology.site]]
name = "A"
tier = "T0"
cache = "1TB"

[workload]
requests = 10
duration = "1min"
objects = 100
"#;

fn err(text: &str, overrides: &[&str]) -> ScenarioError {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    match parse(Path::new("my.toml"), text, &overrides) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn a_good_file_parses_with_defaults() {
    let s = parse(Path::new("my.toml"), GOOD, &[]).unwrap();
    assert_eq!(s.name.as_deref(), Some("t"));
    assert_eq!(s.policy.eviction.1, "lru");
    assert_eq!(s.policy.admission.1, "always");
    assert_eq!(s.policy.discovery.1, "none");
    assert_eq!(s.topology.sites[0].cache.0, 1_000_000_000_000);
}

#[test]
fn syntax_errors_give_line_and_column() {
    let e = err("name = \"x\"\n[workload\nrequests = 1\n", &[]);
    assert_eq!(e.position.map(|p| p.0), Some(2), "{e}");
    assert!(e.to_string().starts_with("my.toml:2:"), "{e}");
}

#[test]
fn unknown_keys_name_the_key_and_where() {
    let text = GOOD.replace("objects = 100", "objects = 100\nobjets = 5");
    let e = err(&text, &[]);
    let msg = e.to_string();
    assert!(msg.starts_with("my.toml:14:1:"), "{msg}");
    assert!(msg.contains("objets") && msg.contains("expected"), "{msg}");
}

#[test]
fn bad_units_say_what_was_expected() {
    let text = GOOD.replace("cache = \"1TB\"", "cache = \"1 TiBB\"");
    let e = err(&text, &[]);
    let msg = e.to_string();
    assert!(msg.starts_with("my.toml:8:9:"), "{msg}");
    assert!(msg.contains("topology.site[0].cache"), "{msg}");
    assert!(msg.contains("unknown unit") && msg.contains("GiB"), "{msg}");
    let text = GOOD.replace("duration = \"1min\"", "duration = 60");
    let msg = err(&text, &[]).to_string();
    assert!(msg.starts_with("my.toml:12:12:") && msg.contains("duration with a unit"), "{msg}");
}

#[test]
fn unknown_policies_list_the_known_ones() {
    let text = GOOD.replace("name = \"t\"", "name = \"t\"\n[policy]\neviction = \"lfru\"");
    let msg = err(&text, &[]).to_string();
    assert!(msg.starts_with("my.toml:4:12:"), "{msg}");
    assert!(msg.contains("policy.eviction") && msg.contains("lru"), "{msg}");
}

#[test]
fn missing_sections_are_named() {
    let msg = err("name = \"x\"\n", &[]).to_string();
    assert!(msg.contains("missing field `topology`"), "{msg}");
}

#[test]
fn overrides_set_any_key_and_bad_ones_are_blamed_on_the_command_line() {
    let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let s = parse(
        Path::new("my.toml"),
        GOOD,
        &o(&["policy.eviction=lru", "workload.requests=77", "workload.zipf=0.8", "topology.lan_latency=1ms"]),
    )
    .unwrap();
    assert_eq!(s.workload.requests, 77);
    assert_eq!(s.workload.zipf, 0.8);
    assert_eq!(s.topology.lan_latency.0, reef_core::Duration::from_millis(1));
    assert_eq!(s.policy.eviction.1, "lru");

    let e = err(GOOD, &["policy.eviction=nope"]);
    let msg = e.to_string();
    assert!(e.position.is_none(), "{msg}");
    assert!(msg.contains("--set policy.eviction=nope") && msg.contains("policy.eviction"), "{msg}");
    let msg = err(GOOD, &["workload.requests"]).to_string();
    assert!(msg.contains("expected key=value"), "{msg}");
    let msg = err(GOOD, &["name.x=1"]).to_string();
    assert!(msg.contains("not a table"), "{msg}");
}

#[test]
fn every_shipped_scenario_parses_and_builds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let s = reef_sim::scenario::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
            reef_sim::world::World::new(&s, s.seed).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 1);
}

#[test]
fn errors_found_while_building_name_the_file_and_the_key() {
    let text = format!("{GOOD}\n[[outage]]\nkind = \"site\"\nsite = \"Nowhere\"\nat = \"1min\"\nduration = \"1min\"\n");
    let s = parse(Path::new("my.toml"), &text, &["workload.tier_weights.T0=1".to_string()]).unwrap();
    let e = reef_sim::run::simulate(&s, 1, &mut |_| {}).map(|_| ()).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("my.toml: ") && msg.contains("Nowhere"), "{msg}");
}

#[test]
fn zero_requests_objects_and_durations_are_refused_when_the_file_is_read() {
    // In the file: the key, the line and column of the value, and what is allowed.
    let e = err(&GOOD.replace("requests = 10", "requests = 0"), &[]);
    assert_eq!(e.key.as_deref(), Some("workload.requests"), "{e}");
    assert_eq!(e.position, Some((11, 12)), "{e}");
    assert_eq!(e.message, "must be at least 1 (got 0)", "{e}");
    assert_eq!(e.to_string(), "my.toml:11:12: `workload.requests`: must be at least 1 (got 0)");

    let e = err(&GOOD.replace("objects = 100", "objects = 0"), &[]);
    assert_eq!((e.key.as_deref(), e.position), (Some("workload.objects"), Some((13, 11))), "{e}");
    assert!(e.message.contains("at least 1"), "{e}");

    let e = err(&GOOD.replace("duration = \"1min\"", "duration = \"0s\""), &[]);
    assert_eq!((e.key.as_deref(), e.position), (Some("workload.duration"), Some((12, 12))), "{e}");
    assert!(e.message.contains("more than zero"), "{e}");

    // From the command line: blamed on the `--set`.
    for (set, key) in [
        ("workload.requests=0", "workload.requests"),
        ("workload.objects=0", "workload.objects"),
        ("workload.dataset_files=0", "workload.dataset_files"),
        ("workload.duration=0ms", "workload.duration"),
        ("run.bucket=0s", "run.bucket"),
        // These panicked (max_objects) or never ended (probe_interval) in the run.
        ("policy.max_objects=0", "policy.max_objects"),
        ("policy.membership.probe_interval=0s", "policy.membership.probe_interval"),
    ] {
        let e = err(GOOD, &[set]);
        assert_eq!(e.key.as_deref(), Some(key), "{e}");
        assert!(e.position.is_none(), "{e}");
        assert!(e.message.ends_with(&format!("(in `--set {set}`)")), "{e}");
    }

    // One is fine, and a given bucket is kept.
    let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let s =
        parse(Path::new("my.toml"), GOOD, &o(&["workload.requests=1", "workload.objects=1", "run.bucket=5s"])).unwrap();
    assert_eq!((s.workload.requests, s.workload.objects), (1, 1));
    assert_eq!(s.run.bucket.map(|b| b.0), Some(reef_core::Duration::from_secs(5)));
    assert_eq!(s.run.bucket, parse(Path::new("my.toml"), GOOD, &o(&["run.bucket=\"5s\""])).unwrap().run.bucket);
    assert!(parse(Path::new("my.toml"), GOOD, &[]).unwrap().run.bucket.is_none());
}

#[test]
fn a_single_request_runs_to_the_end() {
    let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let s = parse(
        Path::new("my.toml"),
        GOOD,
        &o(&["workload.requests=1", "workload.objects=1", "workload.tier_weights.T0=1"]),
    )
    .unwrap();
    let run = reef_sim::run::simulate(&s, 1, &mut |_| {}).unwrap();
    assert_eq!(run.summary.requests, 1);
    assert_eq!(run.summary.completed + run.summary.failed, 1);
}

#[test]
fn an_unknown_discovery_strategy_lists_only_those_the_caches_accept() {
    let e = err(GOOD, &["policy.discovery=nope"]);
    assert_eq!(e.key.as_deref(), Some("policy.discovery"), "{e}");
    let msg = e.message.clone();
    let listed = msg.split("expected one of: ").nth(1).and_then(|r| r.split(" (").next()).unwrap_or_default();
    assert_eq!(listed, "none, parent, dsht, rendezvous, directory", "{msg}");
    assert!(msg.contains("unknown discovery strategy `nope`"), "{msg}");

    // `site` is refused for the caches, with the same list...
    let msg = err(GOOD, &["policy.discovery=site"]).message;
    assert!(
        msg.contains("worker nodes' strategy")
            && msg.ends_with("none, parent, dsht, rendezvous, directory (in `--set policy.discovery=site`)"),
        "{msg}"
    );
    // ... and every listed one is accepted.
    for name in listed.split(", ") {
        let s = parse(Path::new("my.toml"), GOOD, &[format!("policy.discovery={name}")]).unwrap();
        assert_eq!(s.policy.discovery.1, name);
    }
    // The core keeps `site` for the worker nodes (and reef-node's configuration).
    assert!(reef_core::discovery::DiscoveryConfig::by_name("site").is_ok());
    assert!(reef_core::discovery::DiscoveryConfig::NAMES.contains("site"));
}

const TWO_OUTAGES: &str = r#"
[[outage]]
kind = "site"
site = "A"
at = "1min"
duration = "1min"

[[outage]]
kind = "site"
site = "A"
at = "5min"
duration = "2min"
"#;

#[test]
fn set_indexes_arrays_of_tables() {
    use reef_sim::scenario::OutageSpec;
    let text = format!("{GOOD}{TWO_OUTAGES}");
    let min = |m: u64| reef_core::Duration::from_secs(60 * m);
    let at = |o: &OutageSpec| match o {
        OutageSpec::Site { at, duration, .. } => (at.0, duration.0),
        other => panic!("{other:?}"),
    };
    let s = parse(Path::new("my.toml"), &text, &["outage[0].at=30min".to_string()]).unwrap();
    assert_eq!(at(&s.outages[0]), (min(30), min(1)));
    assert_eq!(at(&s.outages[1]), (min(5), min(2)), "the other entry is untouched");

    let s = parse(
        Path::new("my.toml"),
        &text,
        &["outage[1].duration=\"10min\"".to_string(), "topology.site[0].cache=2TB".to_string()],
    )
    .unwrap();
    assert_eq!(at(&s.outages[1]), (min(5), min(10)));
    assert_eq!(s.topology.sites[0].cache.0, 2_000_000_000_000);

    // A whole entry can be replaced.
    let s = parse(
        Path::new("my.toml"),
        &text,
        &["outage[1]={kind=\"node\", node=\"A/cache\", at=\"2min\", duration=\"3min\"}".to_string()],
    )
    .unwrap();
    assert!(matches!(&s.outages[1], OutageSpec::Node { node, .. } if node == "A/cache"), "{:?}", s.outages[1]);

    // Errors: out of range, not an array, not an index, nothing to index.
    let msg = err(&text, &["outage[2].at=30min"]).to_string();
    assert!(msg.contains("index 2 is out of range: `outage` has 2 entries (indices 0 to 1)"), "{msg}");
    assert!(msg.contains("--set outage[2].at=30min"), "{msg}");
    let msg = err(GOOD, &["topology.site[1].cache=1TB"]).to_string();
    assert!(msg.contains("index 1 is out of range: `topology.site` has 1 entry (index 0)"), "{msg}");
    let msg = err(&format!("outage = []\n{GOOD}"), &["outage[0].at=1min"]).to_string();
    assert!(msg.contains("index 0 is out of range: `outage` is empty"), "{msg}");
    let msg = err(GOOD, &["workload[0].requests=3"]).to_string();
    assert!(msg.contains("`workload` is a table, not an array"), "{msg}");
    let msg = err(GOOD, &["name[0]=x"]).to_string();
    assert!(msg.contains("`name` is a string, not an array"), "{msg}");
    let msg = err(GOOD, &["outage[0].at=1min"]).to_string();
    assert!(msg.contains("`outage` is not set, so it cannot be indexed"), "{msg}");
    let msg = err(&text, &["outage[x].at=1min"]).to_string();
    assert!(msg.contains("`[x]` is not an index"), "{msg}");
    let msg = err(&text, &["outage[0.at=1min"]).to_string();
    assert!(msg.contains("expected `NAME[INDEX]`"), "{msg}");
    let msg = err(&text, &["outage[0][0].at=1min"]).to_string();
    assert!(msg.contains("`outage[0]` is a table, not an array"), "{msg}");
    let msg = err(&text, &["outage[0].at.x=1"]).to_string();
    assert!(msg.contains("`outage[0].at` is not a table"), "{msg}");

    // A bad value inside an entry: an outage is read as a whole, so the error points at the
    // entry in the file and names the override that changed it.
    let e = err(&text, &["outage[1].at=5 parsecs"]);
    assert_eq!(e.key.as_deref(), Some("outage[1]"), "{e}");
    assert!(e.message.contains("unknown unit `parsecs`"), "{e}");
    assert!(e.message.ends_with("(`outage[1]` was changed by `--set outage[1].at=5 parsecs`)"), "{e}");
    // Other entries' errors are not blamed on it.
    let e = err(&text.replacen("at = \"5min\"", "at = \"5 parsecs\"", 1), &["outage[0].at=2min"]);
    assert_eq!(e.key.as_deref(), Some("outage[1]"), "{e}");
    assert!(!e.message.contains("--set"), "{e}");
    // Values that keep their span are blamed on the command line, as without an index.
    let e = err(GOOD, &["topology.site[0].cache=1 TiBB"]);
    assert_eq!((e.key.as_deref(), e.position), (Some("topology.site[0].cache"), None), "{e}");
    assert!(e.message.ends_with("(in `--set topology.site[0].cache=1 TiBB`)"), "{e}");
}

#[test]
fn multi_source_holders_are_bounded() {
    let e = err(GOOD, &["policy.multi_source_max=1"]);
    assert!(e.message.contains("between 2 and 16") && e.key.as_deref() == Some("policy.multi_source_max"), "{e}");
}
