//! Builds the topology of a scenario: a WLCG-like tree generated from a few parameters, plus the
//! sites and links listed explicitly.
//!
//! The generated shape follows LHCOPN/LHCONE: the Tier-0 links to every Tier-1, the Tier-1s are
//! meshed, and each Tier-2 hangs off a Tier-1 of its region. Bandwidths come from link classes
//! and latencies from the regions the two ends are in, both varied by the scenario seed.

use crate::scenario::{GenerateSpec, TierWeights, TopologySpec};
use crate::topology::{Link, Site, Topology};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use reef_core::units::Rate;
use reef_core::{BitRate, Duration, Tier};

/// Builds the scenario's topology; errors name the offending site or link.
pub fn build(spec: &TopologySpec, weights: &TierWeights, seed: u64) -> Result<Topology, String> {
    let mut regions: Vec<String> = Vec::new();
    let mut sites: Vec<Site> = Vec::new();
    let mut links: Vec<Link> = Vec::new();
    if let Some(g) = &spec.generate {
        generate(g, weights, seed, &mut regions, &mut sites, &mut links)?;
    }
    for s in &spec.sites {
        if sites.iter().any(|x| x.name == s.name) {
            return Err(format!("site `{}` is defined twice", s.name));
        }
        let tier = s.tier.0;
        sites.push(Site {
            name: s.name.clone(),
            tier,
            region: region_of(&s.region, &mut regions),
            cache: s.cache.0,
            worker_nodes: s.worker_nodes,
            wn_cache: s.wn_cache.0,
            lan: s.lan.0,
            weight: s.weight.unwrap_or_else(|| weights.of(tier)),
        });
    }
    let index = |name: &str| {
        sites
            .iter()
            .position(|s| s.name == name)
            .map(|i| i as u32)
            .ok_or_else(|| format!("link names unknown site `{name}`"))
    };
    for l in &spec.links {
        let (a, b) = (index(&l.a)?, index(&l.b)?);
        if a == b {
            return Err(format!("link from `{}` to itself", l.a));
        }
        links.push(Link { a, b, bandwidth: l.bandwidth.0, latency: l.latency.0 });
    }
    if sites.is_empty() {
        return Err("the topology has no sites: add [topology.generate] or [[topology.site]]".into());
    }
    if sites.iter().all(|s| s.weight <= 0.0) {
        return Err("no site has a positive request weight (see workload.tier_weights)".into());
    }
    Ok(Topology::new(regions, sites, links, spec.lan_latency.0, spec.routing))
}

/// The index of region `name`, added if new.
fn region_of(name: &str, regions: &mut Vec<String>) -> u16 {
    match regions.iter().position(|r| r == name) {
        Some(i) => i as u16,
        None => {
            regions.push(name.to_string());
            (regions.len() - 1) as u16
        }
    }
}

fn generate(
    g: &GenerateSpec,
    weights: &TierWeights,
    seed: u64,
    regions: &mut Vec<String>,
    sites: &mut Vec<Site>,
    links: &mut Vec<Link>,
) -> Result<(), String> {
    if g.regions.is_empty() {
        return Err("topology.generate.regions is empty".into());
    }
    if g.t1 == 0 && g.t2 > 0 {
        return Err("topology.generate: Tier-2s need at least one Tier-1".into());
    }
    for (class, list) in [("t0_t1", &g.t0_t1), ("t1_t1", &g.t1_t1), ("t1_t2", &g.t1_t2)] {
        if list.is_empty() {
            return Err(format!("topology.generate.{class} lists no bandwidth"));
        }
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x7090_1061);
    regions.extend(g.regions.iter().cloned());
    let nregions = g.regions.len() as u16;
    let mut add = |name: String, tier: Tier, region: u16, cache: u64, wns: u32| {
        sites.push(Site {
            name,
            tier,
            region,
            cache,
            worker_nodes: wns,
            wn_cache: if wns > 0 { g.wn_cache.0 } else { 0 },
            lan: g.lan.0,
            weight: weights.of(tier),
        });
        (sites.len() - 1) as u32
    };
    let t0 = add("T0".into(), Tier::T0, 0, g.t0_cache.0, 0);
    let t1s: Vec<u32> = (0..g.t1)
        .map(|i| add(format!("T1-{:02}", i + 1), Tier::T1, i as u16 % nregions, g.t1_cache.0, g.t1_worker_nodes))
        .collect();
    let t2s: Vec<u32> = (0..g.t2)
        .map(|i| add(format!("T2-{:03}", i + 1), Tier::T2, i as u16 % nregions, g.t2_cache.0, g.t2_worker_nodes))
        .collect();
    let mut link = |a: u32, b: u32, class: &[Rate], rng: &mut Xoshiro256PlusPlus| {
        let bandwidth: BitRate = class[rng.random_range(0..class.len())].0;
        let same = sites[a as usize].region == sites[b as usize].region;
        let base = if same { g.same_region_latency.0 } else { g.cross_region_latency.0 };
        let spread = g.latency_spread.clamp(0.0, 1.0);
        let factor = 1.0 + rng.random_range(-spread..=spread);
        let latency = Duration::from_secs_f64(base.as_secs_f64() * factor).max(Duration::from_micros(100));
        links.push(Link { a, b, bandwidth, latency });
    };
    for &t1 in &t1s {
        link(t0, t1, &g.t0_t1, &mut rng);
    }
    for (i, &a) in t1s.iter().enumerate() {
        for &b in &t1s[i + 1..] {
            link(a, b, &g.t1_t1, &mut rng);
        }
    }
    // Each Tier-2 attaches to a Tier-1 of its own region (round-robin among them), or to any
    // Tier-1 when its region has none.
    let mut next_in_region = vec![0usize; nregions as usize];
    for &t2 in &t2s {
        let region = sites[t2 as usize].region;
        let local: Vec<u32> = t1s.iter().copied().filter(|&t| sites[t as usize].region == region).collect();
        let pool = if local.is_empty() { &t1s } else { &local };
        let k = &mut next_in_region[region as usize];
        let parent = pool[*k % pool.len()];
        *k += 1;
        link(parent, t2, &g.t1_t2, &mut rng);
    }
    Ok(())
}
