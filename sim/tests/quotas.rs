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

#[test]
fn an_egress_limit_throttles_the_bursting_namespace_only() {
    let free = run("{share=0.5}", "{}");
    let limited = run("{share=0.5}", "{egress={rate=\"8Gbit/s\",max_delay=\"10s\"}}");
    let (a0, a1) = (&free.namespaces["atlas"], &limited.namespaces["atlas"]);
    // atlas has no limit: not one of its responses waited, and its outcome is the same.
    assert_eq!((a1.egress_delayed, a1.egress_refused), (0, 0));
    assert_eq!((a0.served.requests, a0.served.failed), (a1.served.requests, a1.served.failed));
    assert_eq!(a0.served.site_hit_ratio, a1.served.site_hit_ratio);
    // cms asks for ~1.8 GB/s during its scan, more than 8 Gbit/s (1 GB/s): its responses wait,
    // never longer than the bound, and past it requests are refused and go to the next cache.
    let (c0, c1) = (&free.namespaces["cms"], &limited.namespaces["cms"]);
    assert_eq!((c0.egress_delayed, c0.egress_refused), (0, 0));
    assert!(c1.egress_delayed > 1_000 && c1.egress_refused > 1_000, "{c1:?}");
    assert!(c1.egress_mean_delay_ms > 0.0 && c1.egress_mean_delay_ms <= 10_000.0, "{c1:?}");
    assert_eq!(limited.failures.get("throttled").copied().unwrap_or(0), 0, "every refused request found another cache");
    assert!(limited.client_failovers >= c1.egress_refused);
    assert!(c1.served.served_from.parent_tier > c0.served.served_from.parent_tier);
}
