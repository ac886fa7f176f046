//! Small fixes with their checks: random outages lie within the workload, terabit rates parse,
//! the report writes bytes as the command line does, and the quickstart's caches evict (so that
//! its eviction comparison means something).

#[cfg(feature = "results")]
use reef_core::units::format_size;
use reef_core::units::parse_rate;
use reef_core::{BitRate, Duration, Time};
use reef_sim::scenario::parse;
use std::path::Path;

const RANDOM: &str = r#"
name = "random"

[topology]
[[topology.site]]
name = "A"
tier = "T0"
cache = "1TB"

[[topology.site]]
name = "B"
tier = "T2"
cache = "1TB"

[[topology.site]]
name = "C"
tier = "T2"
cache = "1TB"

[[topology.link]]
a = "A"
b = "B"
bandwidth = "10Gbit/s"
latency = "10ms"

[[topology.link]]
a = "A"
b = "C"
bandwidth = "10Gbit/s"
latency = "10ms"

[workload]
requests = 10
duration = "1h"
objects = 100

[[random_outage]]
tier = "T2"
mtbf = "10min"
mttr = "20min"
"#;

#[test]
fn random_outages_start_and_end_within_the_workload() {
    let horizon = Time::ZERO + Duration::from_secs(3600);
    let (mut outages, mut cut) = (0, 0);
    for seed in 1..=10 {
        let s = parse(Path::new("random.toml"), RANDOM, &[]).unwrap();
        // The run's hard stop is a day past the workload; outages must not be drawn up to it.
        let world = reef_sim::world::World::new(&s, seed).unwrap();
        for o in world.outages.iter().filter(|o| o.label.starts_with("random ")) {
            assert!(o.at < horizon, "seed {seed}: {o:?} starts at or after the workload's end");
            assert!(o.at + o.duration <= horizon, "seed {seed}: {o:?} ends after the workload's end");
            assert!(o.duration > Duration::ZERO || o.at + o.duration == o.at);
            outages += 1;
            cut += usize::from(o.at + o.duration == horizon);
        }
    }
    // Two T2 sites, an hour each, failing every 10 minutes on average: many outages, and some
    // still open at the end of the workload (cut there).
    assert!(outages >= 20, "{outages} random outages");
    assert!(cut >= 1, "no outage reached the horizon");

    // The outages a run lists are those: nothing past the workload is printed.
    let s = parse(Path::new("random.toml"), RANDOM, &[]).unwrap();
    let run = reef_sim::run::simulate(&s, 3, &mut |_| {}).unwrap();
    assert!(!run.summary.outages.is_empty());
    for o in &run.summary.outages {
        assert!(o.at_s < 3600.0 && o.at_s + o.duration_s <= 3600.0 + 1e-6, "{o:?}");
    }
}

#[test]
fn terabit_rates_parse_in_every_form() {
    let tbit = BitRate(1_000_000_000_000);
    for s in ["1Tbit/s", "1Tbps", "1Tb/s", "1 Tbps", "1_000Gbps"] {
        assert_eq!(parse_rate(s), Ok(tbit), "{s}");
    }
    assert_eq!(parse_rate("2.5Tbps"), Ok(BitRate(2_500_000_000_000)));
    assert_eq!(parse_rate("1TB/s"), Ok(BitRate(8_000_000_000_000)));
    assert_eq!(parse_rate("1TiB/s"), Ok(BitRate(8 << 40)));
    // The other prefixes take the same forms.
    assert_eq!(parse_rate("40Gb/s"), Ok(BitRate(40_000_000_000)));
    assert_eq!(parse_rate("100Mb/s"), Ok(BitRate(100_000_000)));
    assert_eq!(parse_rate("64Kb/s"), Ok(BitRate(64_000)));
    assert_eq!(parse_rate("64kbps"), Ok(BitRate(64_000)));
    assert_eq!(parse_rate("1KiB/s"), Ok(BitRate(8 << 10)));
    assert_eq!(parse_rate("1Gbps"), parse_rate("1Gbit/s"));
    // Bits and bytes stay apart, and an unknown unit lists the terabit forms.
    assert_ne!(parse_rate("1Tb/s"), parse_rate("1TB/s"));
    let e = parse_rate("1Tbyte/s").unwrap_err().to_string();
    assert!(e.contains("Tbps") && e.contains("Tb/s") && e.contains("TB/s") && e.contains("TiB/s"), "{e}");

    // In a scenario, through an override too.
    let s = parse(
        Path::new("random.toml"),
        RANDOM,
        &["topology.link[0].bandwidth=1.2Tbps".to_string(), "topology.site[1].lan=\"4Tb/s\"".to_string()],
    )
    .unwrap();
    assert_eq!(s.topology.links[0].bandwidth.0, BitRate(1_200_000_000_000));
    assert_eq!(s.topology.sites[1].lan.0, BitRate(4_000_000_000_000));
}

#[cfg(feature = "results")]
#[test]
fn the_report_writes_bytes_as_the_command_line_does() {
    // (Both call reef-core's `units::format_size`.)
    use reef_results::report::write_report;
    use reef_results::{RunResults, Value};
    let dir = tempfile::tempdir().unwrap();
    let run = RunResults {
        summary: vec![
            ("bytes_from_origin".into(), Value::Int(1_610_612_736)),
            ("bytes_wan".into(), Value::Int(3 << 40)),
        ],
        ..Default::default()
    };
    write_report(dir.path(), "t", "words", &run, &[]).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("| bytes from origins | 1.50 GiB (1610612736 B) |"), "{md}");
    assert!(md.contains("| bytes over the WAN | 3.00 TiB (3298534883328 B) |"), "{md}");
    assert!(!md.contains(" TB") && !md.contains(" GB "), "{md}");

    // End to end: the terminal and report.md show the same bytes.
    let scenario = dir.path().join("random.toml");
    // Without the random outages: every request is served.
    std::fs::write(&scenario, RANDOM.split("[[random_outage]]").next().unwrap()).unwrap();
    let out_dir = dir.path().join("out");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reef-sim"))
        .args(["run", scenario.to_str().unwrap(), "--quiet", "--out", out_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("summary.json")).unwrap()).unwrap();
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    for key in ["bytes_requested", "bytes_from_origin", "bytes_wan"] {
        let b = summary[key].as_u64().unwrap();
        assert!(b > 0, "{key}");
        let shown = format_size(b);
        assert!(stdout.contains(&shown), "{key}: `{shown}` not in\n{stdout}");
        assert!(md.contains(&format!("| {shown} ({b} B) |")), "{key}: `{shown}` not in\n{md}");
    }
}

#[test]
fn the_quickstart_eviction_comparison_is_not_vacuous() {
    // `compare scenarios/quickstart.toml --vary policy.eviction=lru,s3fifo,gdsf`: the site caches
    // must evict, so that the policies fetch different numbers of files from the origins.
    let quick = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/quickstart.toml");
    let fetches: Vec<u64> = ["lru", "s3fifo", "gdsf"]
        .iter()
        .map(|p| {
            let s = reef_sim::scenario::load(&quick, &[format!("policy.eviction={p}")]).unwrap();
            let run = reef_sim::run::simulate(&s, s.seed, &mut |_| {}).unwrap();
            assert_eq!(run.summary.failed, 0, "{p}");
            assert!(run.summary.evicted > 0, "{p}: nothing evicted");
            run.summary.origin_fetches
        })
        .collect();
    let (min, max) = (fetches.iter().min().unwrap(), fetches.iter().max().unwrap());
    assert!(fetches[0] != fetches[1] && fetches[1] != fetches[2] && fetches[0] != fetches[2], "{fetches:?}");
    assert!((max - min) * 100 >= *max, "policies within 1% of each other: {fetches:?}");
}

#[test]
fn events_by_kind_add_up_and_follow_the_requests() {
    // RANDOM without its outages, one request at a time: every request is a hit or fills
    // its cache from the origin or another cache, so each kind of event follows from the summary.
    let overrides = ["workload.requests=300", "workload.objects=50", "workload.sequential=true"].map(String::from);
    let text = RANDOM.split("[[random_outage]]").next().unwrap();
    let scenario = parse(Path::new("random.toml"), text, &overrides).unwrap();
    let s = reef_sim::run::simulate(&scenario, 1, &mut |_| {}).unwrap().summary;
    let kind = |k: &str| s.events_by_kind[k];
    assert_eq!(s.events_by_kind.values().sum::<u64>(), s.events);
    assert_eq!((s.requests, s.completed, s.failed), (300, 300, 0));
    let fills = s.origin_fetches + s.peer_fetches;
    assert!(s.origin_fetches > 0 && fills < 300, "hits and misses: {fills} fills");
    // A request reaches its cache once, and each fill's source once.
    assert_eq!(kind("request"), s.requests + fills);
    // Each fill's transfer: its first block, its end at the cache, the source's release.
    assert_eq!(s.transfers, fills);
    for k in ["fetch_receiving", "fetch_done", "serve_done"] {
        assert_eq!(kind(k), s.transfers, "{k}");
    }
    // One arrival per request, and each download's end; no faults.
    assert_eq!((kind("arrival"), kind("downloaded"), kind("fault")), (300, 300, 0));
}
