//! The fidelity lab in CI (root, iproute2): scenarios/lab.toml (3 sites, 10 nodes: two
//! origins, two site caches, four worker nodes, a director; small caches that evict) through
//! the simulator and through real reef-node processes in emulated sites, with `reef get` as
//! the client. One request at a time, with the Tier-2 cache killed and restarted and the
//! Tier-1 cache's store damaged on the way, both drivers must agree exactly: every request's
//! bytes from the same kind of store, the same origin transfers, the same damaged copies found
//! (and every byte received checked); the same with a full disk and a cut link. With requests
//! at their simulated times (many in flight), the counts per site and source must agree
//! within 2% of the site's requests.

use reef_lab::cluster::binary_beside_me;
use reef_lab::run::{Binaries, LabOptions, run};
use std::path::PathBuf;

fn options(name: &str, sequential: bool, overrides: &[&str]) -> (LabOptions, tempfile::TempDir) {
    let find =
        |b: &str| binary_beside_me(b).unwrap_or_else(|| panic!("{b} built next to this test (cargo test --workspace)"));
    let binaries = Binaries {
        reef_node: find("reef-node"),
        reef: find("reef"),
        reef_lab: PathBuf::from(env!("CARGO_BIN_EXE_reef-lab")),
    };
    let out = tempfile::tempdir().unwrap();
    let opts = LabOptions {
        scenario: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/lab.toml")),
        overrides: overrides.iter().map(|s| s.to_string()).collect(),
        seed: None,
        scale: 1.0,
        sequential,
        parallel: 64,
        prefix: format!("{name}{}", std::process::id() % 1000),
        out: out.path().to_owned(),
        binaries,
    };
    (opts, out)
}

/// The Tier-2 site cache crashes (SIGKILL) 40 s into the run and comes back 30 s later with
/// its store as it was: its worker nodes go to the origin meanwhile. At 100 s every object the
/// Tier-1 cache holds is damaged on disk: each is found when next read, never served, and
/// fetched again.
const FAULTS: &str = r#"outage=[
    { kind = "node", node = "T2/cache", at = "40s", duration = "30s" },
    { kind = "corrupt", node = "T1/cache", at = "100s" },
]"#;

/// The scenario's WAN links at a fifth of their latency (1 and 2 ms instead of 5 and 10):
/// 2,000 requests one after another wait out every round trip (107 s alone at full latency,
/// 61 s at this). The timed test keeps the scenario's latencies.
const SHORT_LINKS: &str = r#"topology.link=[
    { a = "T0", b = "T1", bandwidth = "200Mbit/s", latency = "1ms" },
    { a = "T1", b = "T2", bandwidth = "100Mbit/s", latency = "2ms" },
]"#;

#[test]
fn one_request_at_a_time_both_drivers_agree_exactly() {
    let (opts, out) = options("ag", true, &[FAULTS, SHORT_LINKS]);
    let c = run(&opts).unwrap();
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    eprintln!("{report}");
    assert_eq!(c.sim.requests.len(), 2000);
    assert_eq!(c.disagreements(), 0, "{report}");
    assert_eq!(c.sim.by_site_source(), c.lab.by_site_source(), "{report}");
    assert_eq!(c.sim.origin_transfers, c.lab.origin_transfers, "{report}");
    // Damaged copies were read (and every byte the clients got was checked: no failures).
    assert!(c.sim.damaged_found > 5, "{report}");
    assert_eq!(c.sim.damaged_found, c.lab.damaged_found, "{report}");
    // The run exercises the paths it claims to. (Without `policy.membership.probe_interval`
    // nothing probes the restarted cache, so its worker nodes keep going to the origin: both
    // drivers agree on that too.)
    let sources = c.sim.by_site_source();
    for (site, source) in [("T2", "worker_node"), ("T2", "parent_tier"), ("T2", "origin"), ("T1", "site_cache")] {
        assert!(sources.get(&(site.into(), source.into())).is_some_and(|&n| n > 0), "{site} {source}: {sources:?}");
    }
    assert!(c.lab.failures.is_empty(), "{:?}", c.lab.failures);
    #[cfg(feature = "results")]
    assert!(report.contains("(transfer_times.svg)") && out.path().join("transfer_times.png").is_file());
}

/// The Tier-2 cache's disk fills for 4 s: its misses find no room, fail with `no_space` after
/// the core's NO_ROOM_WAIT, and its worker nodes go elsewhere; what it holds is still served.
/// Then the link between the Tier-1 and Tier-2 sites is cut for 20 s: a black hole in both
/// drivers (requests across it get no answer until the core's fetch timeout fails them over or
/// fails them). The timeout is 15 s here: a worker node's 15 s leaves its site cache 12.15 s
/// or more, still longer than the wait for room (10 s), so the full disk is what fails fills.
const DISK_AND_LINK: &str = r#"outage=[
    { kind = "disk_full", node = "T2/cache", at = "15s", duration = "4s" },
    { kind = "link", a = "T1", b = "T2", at = "25s", duration = "20s" },
]"#;

#[test]
fn a_cut_link_and_a_full_disk_agree_exactly() {
    let overrides = ["workload.requests=400", "workload.duration=60s", "policy.fetch_timeout=15s", DISK_AND_LINK];
    let (opts, out) = options("lk", true, &overrides);
    let c = run(&opts).unwrap();
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    eprintln!("{report}");
    assert_eq!(c.disagreements(), 0, "{report}");
    assert_eq!(c.sim.by_site_source(), c.lab.by_site_source(), "{report}");
    assert_eq!(c.sim.origin_transfers, c.lab.origin_transfers, "{report}");
    assert_eq!(c.sim.failures, c.lab.failures, "{report}");
    // The faults bit: requests failed across the cut, and fills found the disk full.
    assert!(c.sim.failures.get("all_sources_down").is_some_and(|&n| n > 0), "{report}");
    assert!(c.sim.no_room > 0 && c.sim.no_room == c.lab.no_room, "{report}");
}

#[test]
fn requests_at_their_times_agree_within_two_percent() {
    let (opts, out) = options("at", false, &["workload.requests=1000", "workload.duration=40s"]);
    let c = run(&opts).unwrap();
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    eprintln!("{report}");
    assert_eq!(c.sim.requests.len(), 1000);
    let worst = c.worst_site_source_difference();
    assert!(worst <= 0.02, "worst difference {:.1}% of a site's requests:\n{report}", worst * 100.0);
    let (a, b) = (c.sim.origin_transfers as f64, c.lab.origin_transfers as f64);
    assert!((a - b).abs() <= 0.02 * a, "origin transfers sim {a} lab {b}\n{report}");
    assert!(c.lab.failures.is_empty(), "{:?}", c.lab.failures);
}
