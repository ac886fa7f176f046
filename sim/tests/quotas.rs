//! Storage quotas in the simulator (scenarios/quotas.toml): while cms scans 45,000 cold files,
//! atlas keeps more of its hits when it has a guaranteed share of the cache, or when cms is
//! held to a hard limit, and cms pays for its own burst.

use reef_sim::run::{Summary, simulate};
use reef_sim::scenario::load;
use std::path::Path;

fn run(atlas: &str, cms: &str) -> Summary {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/quotas.toml"));
    let overrides = [format!("namespace[0].quota={atlas}"), format!("namespace[1].quota={cms}")];
    let scenario = load(path, &overrides).unwrap_or_else(|e| panic!("{e}"));
    simulate(&scenario, scenario.seed, &mut |_| {}).unwrap().summary
}

fn site_hits(s: &Summary, ns: &str) -> f64 {
    s.namespaces[ns].served.site_hit_ratio
}

#[test]
fn a_share_or_a_limit_protects_the_steady_namespace_from_the_burst() {
    let none = run("{}", "{}");
    let share = run("{share=0.5}", "{}");
    let limit = run("{}", "{max_share=0.3}");
    // Same requests in every run: only where the bytes came from changes.
    let atlas = |s: &Summary| s.namespaces["atlas"].served.requests;
    assert_eq!((none.requests, atlas(&none)), (share.requests, atlas(&share)));
    for (name, with) in [("share", &share), ("limit", &limit)] {
        let (a0, a1) = (site_hits(&none, "atlas"), site_hits(with, "atlas"));
        let (c0, c1) = (site_hits(&none, "cms"), site_hits(with, "cms"));
        assert!(a1 > a0 + 0.02, "{name}: atlas {a0:.3} -> {a1:.3}");
        assert!(c1 < c0, "{name}: cms {c0:.3} -> {c1:.3} (the burst pays for itself)");
        // Where the evictions fell: on cms, whose burst caused them.
        let evicted = |s: &Summary, ns: &str| s.namespaces[ns].evicted;
        assert!(evicted(with, "atlas") < evicted(&none, "atlas"), "{name}: atlas evictions");
        assert!(evicted(with, "cms") > evicted(with, "atlas"), "{name}: cms evictions");
    }
}
