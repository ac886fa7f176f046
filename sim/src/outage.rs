//! Outages and degradations: scenario entries resolved to what they hit, and random failures
//! (exponential up and repair times per tier) drawn up front from the seed, so that a run's
//! whole failure schedule is known, reproducible and reported.

use crate::layout::Layout;
use crate::scenario::{OutageSpec, RandomOutageSpec};
use crate::topology::Topology;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use reef_core::units::Span;
use reef_core::{Duration, Role, Time};

/// The duration of an instant fault (`corrupt`).
static ZERO_SPAN: Span = Span(Duration::ZERO);

/// What an outage hits.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// These nodes are down: they receive nothing, and transfers to or from them break.
    Nodes(Vec<u32>),
    /// A whole site is down: its nodes, and its WAN links (so no route passes through it).
    Site(u32),
    /// A WAN link is cut: its transfers break and routes avoid it.
    Link(u32),
    /// Every object these nodes hold is damaged (at the outage's start; it has no end): its
    /// bytes changed, or, if `truncated`, its end lost. Either is found when read.
    Corrupt { nodes: Vec<u32>, truncated: bool },
    /// These nodes' disks are full: a fill finds no room.
    DiskFull(Vec<u32>),
    /// No traffic between two regions.
    Partition(u16, u16),
    /// A WAN link keeps `factor` of its bandwidth.
    Degrade(u32, f64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Outage {
    pub label: String,
    pub at: Time,
    pub duration: Duration,
    pub target: Target,
}

/// Resolves the scenario's outages. Random ones are drawn over the workload, `[0, horizon)`
/// (`horizon`: the end of the workload's arrivals, not the run's hard stop): each starts before
/// the horizon, and one still open at the horizon is cut there, so every random outage lies
/// within the workload.
pub fn plan(
    specs: &[OutageSpec],
    random: &[RandomOutageSpec],
    topo: &Topology,
    layout: &Layout,
    horizon: Time,
    seed: u64,
) -> Result<Vec<Outage>, String> {
    let site = |name: &str| topo.site_index(name).ok_or_else(|| format!("outage names unknown site `{name}`"));
    let link = |a: &str, b: &str| {
        let (a_idx, b_idx) = (site(a)?, site(b)?);
        topo.link_between(a_idx, b_idx).ok_or_else(|| format!("outage: no link between `{a}` and `{b}`"))
    };
    let region = |name: &str| {
        topo.regions
            .iter()
            .position(|r| r == name)
            .map(|i| i as u16)
            .ok_or_else(|| format!("outage names unknown region `{name}`"))
    };
    let cache = |kind: &str, node: &str| {
        layout
            .find(node)
            .filter(|&n| matches!(layout.nodes[n as usize].role, Role::Cache | Role::WorkerPeer))
            .ok_or_else(|| format!("{kind} names `{node}`, not a cache (expected SITE/cache or SITE/wnN)"))
    };
    let mut out = Vec::new();
    for spec in specs {
        let (label, at, duration, target) = match spec {
            OutageSpec::Site { site: s, at, duration } => (format!("site {s}"), at, duration, Target::Site(site(s)?)),
            OutageSpec::Node { node, at, duration } => {
                let n = layout.find(node).ok_or_else(|| {
                    format!(
                        "outage names unknown node `{node}` (expected SITE/cache, SITE/wnN or SITE/origin/NAMESPACE)"
                    )
                })?;
                (format!("node {node}"), at, duration, Target::Nodes(vec![n]))
            }
            OutageSpec::Link { a, b, at, duration } => {
                (format!("link {a}-{b}"), at, duration, Target::Link(link(a, b)?))
            }
            OutageSpec::Origin { namespace, site: at_site, at, duration } => {
                let ns = layout
                    .namespaces
                    .iter()
                    .position(|n| n == namespace)
                    .ok_or_else(|| format!("outage names unknown namespace `{namespace}`"))?;
                let mut nodes = layout.origins[ns].clone();
                if let Some(s) = at_site {
                    let s = site(s)?;
                    nodes.retain(|&n| layout.nodes[n as usize].site == s);
                    if nodes.is_empty() {
                        return Err(format!("namespace `{namespace}` has no origin at that site"));
                    }
                }
                (format!("origin {namespace}"), at, duration, Target::Nodes(nodes))
            }
            OutageSpec::Partition { regions: (a, b), at, duration } => {
                (format!("partition {a}|{b}"), at, duration, Target::Partition(region(a)?, region(b)?))
            }
            OutageSpec::Corrupt { node, at } => {
                let target = Target::Corrupt { nodes: vec![cache("corrupt", node)?], truncated: false };
                (format!("corrupt {node}"), at, &ZERO_SPAN, target)
            }
            OutageSpec::Truncate { node, at } => {
                let target = Target::Corrupt { nodes: vec![cache("truncate", node)?], truncated: true };
                (format!("truncate {node}"), at, &ZERO_SPAN, target)
            }
            OutageSpec::DiskFull { node, at, duration } => {
                (format!("disk_full {node}"), at, duration, Target::DiskFull(vec![cache("disk_full", node)?]))
            }
            OutageSpec::Degrade { a, b, factor, at, duration } => {
                if !(0.0..=1.0).contains(factor) {
                    return Err(format!("outage degrade {a}-{b}: factor must be within 0..=1"));
                }
                (format!("degrade {a}-{b} x{factor}"), at, duration, Target::Degrade(link(a, b)?, *factor))
            }
        };
        out.push(Outage { label, at: Time::ZERO + at.0, duration: duration.0, target });
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x0007_a6e5);
    for r in random {
        if r.mtbf.0 == Duration::ZERO {
            return Err("random_outage.mtbf must be positive".into());
        }
        for (i, s) in topo.sites.iter().enumerate().filter(|(_, s)| s.tier == r.tier.0) {
            let mut t = Time::ZERO;
            loop {
                t += exponential(&mut rng, r.mtbf.0);
                if t >= horizon {
                    break;
                }
                // Drawn in full (the draws stay the same whatever the horizon), then cut at it.
                let drawn = exponential(&mut rng, r.mttr.0);
                let down = Duration(drawn.0.min((horizon - t).0));
                out.push(Outage {
                    label: format!("random {}", s.name),
                    at: t,
                    duration: down,
                    target: Target::Site(i as u32),
                });
                t += down;
            }
        }
    }
    Ok(out)
}

fn exponential(rng: &mut Xoshiro256PlusPlus, mean: Duration) -> Duration {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    Duration::from_secs_f64(-u.ln() * mean.as_secs_f64())
}
