//! What the lab builds for a scenario: its sites, its links (rates and one-way latencies) and
//! the route from every site to every other, taken from reef-sim's own topology (the same
//! generator, seed and routing), so that the emulated network is the simulated one.

use crate::netns::LinkSpec;
use reef_sim::scenario::Scenario;
use reef_sim::topology::Topology;
use std::time::Duration;

#[derive(Debug)]
pub struct Plan {
    pub sites: Vec<String>,
    pub links: Vec<LinkSpec>,
    /// One-way latency of each link.
    pub latencies: Vec<Duration>,
    /// `next_hop[from][to]`: the neighbour a packet from `from` to `to` goes to first.
    pub next_hop: Vec<Vec<Option<usize>>>,
    /// One-way latency of the route from `from` to `to`.
    pub route_latency: Vec<Vec<Option<Duration>>>,
}

impl Plan {
    pub fn of(scenario: &Scenario, seed: u64) -> anyhow::Result<Plan> {
        let topo = reef_sim::generate::build(&scenario.topology, &scenario.workload.tier_weights, seed)
            .map_err(|e| anyhow::anyhow!("{}: {e}", scenario.path.display()))?;
        Ok(Plan::of_topology(&topo))
    }

    pub fn of_topology(topo: &Topology) -> Plan {
        let n = topo.sites.len();
        let links = topo
            .links
            .iter()
            .map(|l| LinkSpec { a: l.a as usize, b: l.b as usize, bits_per_sec: l.bandwidth.0 })
            .collect();
        let latencies = topo.links.iter().map(|l| Duration::from_nanos(l.latency.as_nanos())).collect();
        let mut route_latency = vec![vec![None; n]; n];
        for (from, row) in route_latency.iter_mut().enumerate() {
            for (to, cell) in row.iter_mut().enumerate() {
                *cell = topo.route(from as u32, to as u32).map(|(l, _)| Duration::from_nanos(l.as_nanos()));
            }
        }
        let next_hop = next_hops(topo);
        Plan { sites: topo.sites.iter().map(|s| s.name.clone()).collect(), links, latencies, next_hop, route_latency }
    }
}

/// `next_hop[from][to]` over the topology's current routes.
pub fn next_hops(topo: &Topology) -> Vec<Vec<Option<usize>>> {
    let n = topo.sites.len();
    let mut next_hop = vec![vec![None; n]; n];
    for (from, row) in next_hop.iter_mut().enumerate() {
        for (to, cell) in row.iter_mut().enumerate() {
            let Some((_, route)) = topo.route(from as u32, to as u32) else { continue };
            if let Some(&first) = route.first() {
                let l = &topo.links[first as usize];
                *cell = Some(if l.a as usize == from { l.b } else { l.a } as usize);
            }
        }
    }
    next_hop
}

impl Plan {
    /// A readable description: sites, links, and each site's routes.
    pub fn describe(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "{} sites, {} links", self.sites.len(), self.links.len());
        for (i, s) in self.sites.iter().enumerate() {
            let _ = writeln!(out, "  site {i} {s} at {}", crate::netns::site_addr(i));
        }
        for (l, lat) in self.links.iter().zip(&self.latencies) {
            let _ = writeln!(
                out,
                "  link {} - {}: {} Mbit/s, {:.1} ms one way",
                self.sites[l.a],
                self.sites[l.b],
                l.bits_per_sec / 1_000_000,
                lat.as_secs_f64() * 1e3
            );
        }
        out
    }
}
