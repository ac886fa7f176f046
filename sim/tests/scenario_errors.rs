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
