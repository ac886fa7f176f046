//! Scaling a scenario down to what one machine can hold: every object size, cache size and
//! bandwidth is multiplied by the same factor, so every transfer takes as long as it would at
//! full size, the caches hold the same share of the catalog, and the simulator's run of the
//! scaled scenario is the one the lab is compared with. Latencies, counts and the `[policy]`
//! (block size included) are kept as they are.

use reef_core::BitRate;
use reef_core::units::{Rate, Size};
use reef_sim::scenario::{Scenario, SizeDist};

/// Scales `scenario` by `factor` (0 < factor <= 1). Sizes round to whole bytes (at least 1),
/// rates to whole bits per second (at least 1 kbit/s, which the kernel's shaper still honours).
pub fn scale(scenario: &mut Scenario, factor: f64) -> anyhow::Result<()> {
    anyhow::ensure!(factor > 0.0 && factor <= 1.0, "--scale: expected a factor in (0, 1], got {factor}");
    if factor == 1.0 {
        return Ok(());
    }
    let size = |s: &mut Size| s.0 = ((s.0 as f64 * factor).round() as u64).max(1);
    let rate = |r: &mut Rate| r.0 = BitRate(((r.0.0 as f64 * factor).round() as u64).max(1_000));
    match &mut scenario.workload.size {
        SizeDist::Fixed { value } => size(value),
        SizeDist::Lognormal { median, min, max, .. } => {
            size(median);
            size(min);
            size(max);
        }
        SizeDist::Histogram { bins } => bins.iter_mut().for_each(|(bound, _)| size(bound)),
    }
    rate(&mut scenario.workload.client_bandwidth);
    let t = &mut scenario.topology;
    if let Some(g) = &mut t.generate {
        for s in [&mut g.t0_cache, &mut g.t1_cache, &mut g.t2_cache, &mut g.wn_cache] {
            size(s);
        }
        for r in g.t0_t1.iter_mut().chain(&mut g.t1_t1).chain(&mut g.t1_t2) {
            rate(r);
        }
        rate(&mut g.lan);
    }
    for s in &mut t.sites {
        size(&mut s.cache);
        size(&mut s.wn_cache);
        rate(&mut s.lan);
    }
    for l in &mut t.links {
        rate(&mut l.bandwidth);
    }
    let burst = |s: &mut Size| s.0 = (s.0 as f64 * factor).round() as u64;
    for quota in scenario.namespaces.iter_mut().map(|ns| &mut ns.quota) {
        if let Some(egress) = &mut quota.egress {
            rate(&mut egress.rate);
            burst(&mut egress.burst);
        }
        if let Some(fill) = &mut quota.fill {
            rate(&mut fill.rate);
            burst(&mut fill.burst);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
[topology.generate]
t1 = 1
t2 = 1
t2_cache = "200GB"
t1_t2 = ["10Gbit/s"]
[workload]
requests = 10
duration = "1h"
objects = 10
size = { dist = "lognormal", median = "500MB", sigma = 0.8, min = "10MB", max = "4GB" }
client_bandwidth = "10Gbit/s"
"#;

    #[test]
    fn sizes_and_rates_shrink_together_so_transfer_times_stay() {
        let mut s = reef_sim::scenario::parse(std::path::Path::new("s.toml"), TEXT, &[]).unwrap();
        scale(&mut s, 1e-4).unwrap();
        let g = s.topology.generate.as_ref().unwrap();
        assert_eq!(g.t2_cache.0, 20_000_000);
        assert_eq!(g.t1_t2[0].0.0, 1_000_000);
        assert_eq!(s.workload.client_bandwidth.0.0, 1_000_000);
        let SizeDist::Lognormal { median, min, max, sigma } = &s.workload.size else { panic!("lognormal") };
        assert_eq!((median.0, min.0, max.0, *sigma), (50_000, 1_000, 400_000, 0.8));
        // 500 MB at 10 Gbit/s and 50 kB at 1 Mbit/s: 0.4 s both.
        let seconds = |bytes: u64, bits_per_sec: u64| bytes as f64 * 8.0 / bits_per_sec as f64;
        assert_eq!(seconds(median.0, g.t1_t2[0].0.0), seconds(500_000_000, 10_000_000_000));
        assert!(scale(&mut s, 0.0).is_err() && scale(&mut s, 2.0).is_err());
    }
}
