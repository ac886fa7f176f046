//! Storage quotas in the simulator (scenarios/quotas.toml): while cms scans 45,000 cold files,
//! atlas keeps more of its hits when it has a guaranteed share of the cache, or when cms is
//! held to a hard limit, and cms pays for its own burst.

use reef_sim::run::{Outcome, Summary, simulate};
use reef_sim::scenario::load;
use std::path::Path;

fn run(atlas: &str, cms: &str) -> Summary {
    outcome(atlas, cms).summary
}

fn outcome(atlas: &str, cms: &str) -> Outcome {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/quotas.toml"));
    let overrides = [format!("namespace[0].quota={atlas}"), format!("namespace[1].quota={cms}")];
    let scenario = load(path, &overrides).unwrap_or_else(|e| panic!("{e}"));
    simulate(&scenario, scenario.seed, &mut |_| {}).unwrap()
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

#[test]
fn the_namespace_series_adds_up_to_the_run_totals() {
    let run = outcome("{share=0.5}", "{egress={rate=\"8Gbit/s\"}}");
    let rows = &run.results.namespaces;
    let buckets = run.results.timeseries.len() / 2; // two sites
    assert_eq!(rows.len(), 2 * buckets, "every bucket has a row per namespace");
    for (ns, total) in &run.summary.namespaces {
        let sum = |f: fn(&reef_results::NamespaceCounts) -> u64| {
            rows.iter().filter(|r| &r.namespace == ns).map(|r| f(&r.counts)).sum::<u64>()
        };
        assert_eq!(sum(|c| c.requests), total.served.requests, "{ns}");
        assert_eq!(sum(|c| c.completed), total.served.completed, "{ns}");
        assert_eq!(sum(|c| c.failed), total.served.failed, "{ns}");
        assert_eq!(sum(|c| c.evicted), total.evicted, "{ns}");
        assert_eq!(
            (sum(|c| c.egress_delayed), sum(|c| c.egress_refused)),
            (total.egress_delayed, total.egress_refused)
        );
        let hits = sum(|c| c.site_hits) as f64 / total.served.completed as f64;
        assert!((hits - total.served.site_hit_ratio).abs() < 1e-12, "{ns}: {hits} vs {}", total.served.site_hit_ratio);
    }
    // Refusals fall only in the 20 minutes of cms's scan (from 20 to 40 min, plus the last
    // waits running out just after).
    let refused_at: Vec<f64> = rows.iter().filter(|r| r.counts.egress_refused > 0).map(|r| r.time_s).collect();
    assert!(refused_at.iter().all(|&t| (1_140.0..2_460.0).contains(&t)), "{refused_at:?}");
}

#[test]
fn fill_limits_cap_what_the_namespaces_take_over_the_wan() {
    // 2 + 4 Gbit/s: 750 MB/s in all for the T2 cache's fills from the origin, the only
    // traffic on the T0-T2 link.
    let cap = 750e6;
    let free = outcome("{}", "{}");
    let limited = outcome("{fill={rate=\"2Gbit/s\"}}", "{fill={rate=\"4Gbit/s\"}}");
    let peak = |o: &Outcome| o.results.links.iter().map(|l| l.bytes as f64 / o.results.bucket_s).fold(0.0, f64::max);
    assert!(peak(&free) > 1.5 * cap, "without limits the scan takes more: {:.0} MB/s", peak(&free) / 1e6);
    assert!(peak(&limited) <= cap * (1.0 + 1e-9), "{:.0} MB/s", peak(&limited) / 1e6);
    // The same requests, all served, just later: the bytes wait, nothing is refused.
    assert_eq!(limited.summary.requests, free.summary.requests);
    assert_eq!(limited.summary.failed, 0);
    assert!(limited.summary.latency_ms.p50 > free.summary.latency_ms.p50);
}
