//! `reef-lab run`: a scenario through the simulator and through a real cluster in emulated
//! sites, and the comparison. The simulator runs first (on the scaled scenario, recording
//! every client request); the lab then builds the sites, links and nodes, writes the origins'
//! files, replays those requests with `reef get`, applies the scenario's faults (node and
//! origin outages, damaged stores, cut links) between requests at their times, reads what the
//! nodes and links did, and removes everything.

use crate::cluster::{Cluster, Deployment};
use crate::compare::{Comparison, Ending, Side, quantile_ms};
use crate::netns::Network;
use crate::plan::Plan;
use crate::replay::{LabOutcome, LabRequest, Mode};
use anyhow::{Context, bail};
use reef_sim::outage::Target;
use reef_sim::world::{RequestRecord, World, bytes_from, client_sources, fallback_caches};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct LabOptions {
    pub scenario: PathBuf,
    pub overrides: Vec<String>,
    pub seed: Option<u64>,
    /// Sizes, caches and rates times this (see [`crate::scale`]).
    pub scale: f64,
    /// One request at a time (both drivers); else at the simulated issue times.
    pub sequential: bool,
    /// Timed replay: at most this many requests in flight.
    pub parallel: usize,
    /// Names of the namespaces and links (at most 6 letters or digits).
    pub prefix: String,
    /// Where the report, the per-request table and the nodes' files go.
    pub out: PathBuf,
    pub binaries: Binaries,
}

/// The programs the lab runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub reef_node: PathBuf,
    pub reef: PathBuf,
    pub reef_lab: PathBuf,
}

impl Binaries {
    /// reef-node and reef next to the running program (a workspace build puts them there).
    pub fn beside_me() -> anyhow::Result<Binaries> {
        let find = |name: &str| {
            crate::cluster::binary_beside_me(name)
                .with_context(|| format!("`{name}` is not built next to reef-lab: cargo build -p reef-node --release"))
        };
        Ok(Binaries { reef_node: find("reef-node")?, reef: find("reef")?, reef_lab: std::env::current_exe()? })
    }
}

/// What a scheduled fault does in the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fault {
    /// SIGKILL these nodes.
    Kill(Vec<usize>),
    /// Start them again, their stores as they were.
    Restart(Vec<usize>),
    /// Damage every stored object's file (its first byte flipped, or its second half cut).
    Corrupt { nodes: Vec<usize>, truncated: bool },
    /// Cut or heal a link (both ends down or up; routes recomputed as the simulator does).
    Link { link: usize, up: bool },
    /// Fill these nodes' disks (a ballast file on their own file systems), or empty them.
    Disk { nodes: Vec<usize>, full: bool },
}

fn faults(world: &World) -> anyhow::Result<Vec<(Duration, Fault)>> {
    let mut events = Vec::new();
    for o in &world.outages {
        let at = Duration::from_nanos(o.at.0);
        let end = at + Duration::from_nanos(o.duration.as_nanos());
        let list = |n: &[u32]| n.iter().map(|&n| n as usize).collect::<Vec<_>>();
        match &o.target {
            Target::Nodes(n) => {
                events.push((at, Fault::Kill(list(n))));
                events.push((end, Fault::Restart(list(n))));
            }
            &Target::Corrupt { ref nodes, truncated } => {
                events.push((at, Fault::Corrupt { nodes: list(nodes), truncated }));
            }
            &Target::Link(l) => {
                events.push((at, Fault::Link { link: l as usize, up: false }));
                events.push((end, Fault::Link { link: l as usize, up: true }));
            }
            Target::DiskFull(n) => {
                events.push((at, Fault::Disk { nodes: list(n), full: true }));
                events.push((end, Fault::Disk { nodes: list(n), full: false }));
            }
            _ => bail!("outage `{}`: site, partition and degrade faults are not in the lab yet", o.label),
        }
    }
    events.sort_by_key(|e| e.0);
    Ok(events)
}

/// Applies `fault`; `down` counts each link's cuts, `routes` is the topology the routes follow.
fn apply(
    fault: &Fault,
    net: &Network,
    cluster: &mut Cluster,
    routes: &mut reef_sim::topology::Topology,
    down: &mut [u32],
) -> anyhow::Result<()> {
    match fault {
        Fault::Kill(nodes) => nodes.iter().for_each(|&n| cluster.kill(n)),
        Fault::Restart(nodes) => nodes.iter().try_for_each(|&n| cluster.restart(net, n))?,
        Fault::Corrupt { nodes, truncated } => {
            for &n in nodes {
                cluster.corrupt_store(n, *truncated)?;
            }
        }
        Fault::Disk { nodes, full } => nodes.iter().try_for_each(|&n| cluster.fill_disk(n, *full))?,
        &Fault::Link { link, up } => {
            let before = down[link];
            down[link] = if up { before.saturating_sub(1) } else { before + 1 };
            if (before == 0) != (down[link] == 0) {
                net.set_link(link, up)?;
                routes.compute_routes(&|l| down[l as usize] == 0);
                let hops = crate::plan::next_hops(routes);
                net.set_routes(|a, b| hops[a][b])?;
            }
        }
    }
    Ok(())
}

/// Whether this process runs as root (the lab creates namespaces, links and qdiscs).
fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1)) == Some("0")
}

/// Runs the comparison; writes `report.md` and `requests.csv` to `opts.out`.
pub fn run(opts: &LabOptions) -> anyhow::Result<Comparison> {
    anyhow::ensure!(is_root(), "reef-lab run builds network namespaces and links: run it as root (sudo)");
    let mut scenario = reef_sim::scenario::load(&opts.scenario, &opts.overrides).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::scale::scale(&mut scenario, opts.scale)?;
    scenario.workload.sequential |= opts.sequential;
    let seed = opts.seed.unwrap_or(scenario.seed);
    let policy =
        reef_sim::scenario::section(&opts.scenario, &opts.overrides, "policy").map_err(|e| anyhow::anyhow!("{e}"))?;

    // The simulator, recording every request.
    let mut world = World::new(&scenario, seed).map_err(|e| anyhow::anyhow!("{e}"))?;
    world.record_requests();
    world.run(u64::MAX, &mut |_| {});
    let mut records: Vec<RequestRecord> = world.requests().to_vec();
    records.sort_by_key(|r| r.issued);
    let events = faults(&world)?;
    if !events.is_empty() && !opts.sequential {
        bail!("outages are replayed in sequential runs only so far (--sequential)");
    }
    let fallback = fallback_caches(&world.topo, &world.layout);
    let catalog = world.catalog();
    let mut requests = Vec::with_capacity(records.len());
    let mut files = BTreeMap::new();
    for r in &records {
        let Some(index) = r.index else { bail!("trace workloads are not in the lab yet: objects need names") };
        let ns = catalog.namespace(index);
        let path = format!("/{}/{}", catalog.namespace_name(ns), catalog.path(index));
        let size = r.object.size.unwrap_or(0);
        files.insert(path.clone(), (ns, r.object.id.0, size));
        let sources = client_sources(&world.layout, fallback[r.site as usize], r.site, r.node);
        requests.push(LabRequest {
            at: Duration::from_nanos(r.issued.0),
            site: r.site as usize,
            sources: sources.into_iter().flatten().map(|n| n as usize).collect(),
            path,
            id: r.object.id.0,
            size,
        });
    }
    let sim = Side {
        requests: records
            .iter()
            .map(|r| ending(&world, r.site, r.source, Duration::from_nanos(r.duration.as_nanos())))
            .collect(),
        origin_transfers: world.stats.origin_transfers,
        damaged_found: world.stats.damaged_found,
        no_room: world.stats.no_room,
        link_bytes: world.wan_link_bytes().collect(),
        failures: world.stats.failures.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    };

    // The lab. Its topology is built afresh: the simulated run changed the world's routes.
    let d = Deployment::of(&scenario, seed, policy)?;
    let plan = Plan::of_topology(&d.topo);
    let net = Network::create(&opts.prefix, plan.sites.len(), &plan.links, |a, b| plan.next_hop[a][b])?;
    let nodes_dir = opts.out.join("nodes");
    let _ = std::fs::remove_dir_all(&nodes_dir);
    let b = &opts.binaries;
    let own_disks = events
        .iter()
        .filter_map(|(_, f)| if let Fault::Disk { nodes, .. } = f { Some(nodes) } else { None })
        .flatten()
        .copied()
        .collect();
    let mut cluster = Cluster::start(&net, &d, (&b.reef_node, &b.reef_lab), &nodes_dir, &own_disks)?;
    for (path, (ns, id, size)) in &files {
        let rel = path.splitn(3, '/').nth(2).expect("/namespace/path");
        crate::export::write(&cluster.exports[usize::from(*ns)], rel, *id, *size)?;
    }
    let mode = if opts.sequential { Mode::Sequential } else { Mode::Timed { parallel: opts.parallel } };
    let mut pending = events.iter().peekable();
    let urls = cluster.urls.clone();
    let (mut routes, mut down) = (d.topo.clone(), vec![0; d.topo.links.len()]);
    let outcomes = crate::replay::replay(&net, &urls, &requests, mode, &b.reef, &opts.out.join("downloads"), |k| {
        while let Some((_, fault)) = pending.next_if(|e| e.0 <= requests[k].at) {
            apply(fault, &net, &mut cluster, &mut routes, &mut down)?;
        }
        Ok(())
    })?;
    let lab = Side {
        requests: requests.iter().zip(&outcomes).map(|(r, o)| lab_ending(&d, r, o)).collect(),
        origin_transfers: origin_transfers(&d, &cluster.homes)?,
        damaged_found: cluster.metric_sum(&net, "reef_store_lost_total")?,
        no_room: cluster.metric_sum(&net, "reef_fills_no_room_total")?,
        link_bytes: (0..plan.links.len()).map(|k| net.link_bytes(k)).collect::<anyhow::Result<_>>()?,
        failures: lab_failures(&outcomes),
    };
    drop(cluster);
    drop(net);

    let link_names = d
        .topo
        .links
        .iter()
        .map(|l| format!("{} - {}", d.topo.sites[l.a as usize].name, d.topo.sites[l.b as usize].name))
        .collect();
    let mut setup = format!(
        "Scenario `{}`, seed {seed}, sizes, caches and rates scaled by {}; {} replay; {} nodes in {} emulated sites \
         (network namespaces, links shaped by tbf, latency added by user-space relays); every request made by `reef get`.",
        opts.scenario.display(),
        opts.scale,
        if opts.sequential { "sequential" } else { "timed" },
        d.layout.nodes.len(),
        d.topo.sites.len()
    );
    if !opts.sequential {
        // How well the replay kept the simulated issue times.
        let mut late: Vec<Duration> = outcomes.iter().map(|o| o.late).collect();
        let (p50, max) = (quantile_ms(&mut late, 0.5), quantile_ms(&mut late, 1.0));
        setup += &format!(" Requests started after their simulated time by {p50:.1} ms (median), {max:.1} ms at most.");
    }
    let comparison = Comparison { sim, lab, link_names, setup };
    std::fs::create_dir_all(&opts.out)?;
    let mut report = comparison.markdown();
    report += &figure(&comparison, &opts.out)?;
    std::fs::write(opts.out.join("report.md"), report)?;
    write_requests(&opts.out.join("requests.csv"), &requests, &comparison, &outcomes)?;
    Ok(comparison)
}

/// The figure (with the `results` feature): time to last byte, simulator and lab, for all
/// served requests and for those from the origin; returns the report's lines for it.
#[cfg(feature = "results")]
fn figure(c: &Comparison, dir: &Path) -> anyhow::Result<String> {
    use reef_results::figures::{CdfPlot, save};
    use reef_results::model::Cdf;
    let cdfs = [None, Some("origin")]
        .into_iter()
        .flat_map(|source| {
            c.cdfs(source).into_iter().map(move |(driver, points)| Cdf {
                label: format!("{driver}, {}", source.unwrap_or("all sources")),
                points,
            })
        })
        .collect();
    let plot = CdfPlot { title: "Time to last byte: simulator and lab".into(), cdfs };
    save(&plot, dir, "transfer_times")?;
    Ok("\n![Time to last byte, simulator and lab](transfer_times.svg)\n".into())
}

#[cfg(not(feature = "results"))]
fn figure(_: &Comparison, _: &Path) -> anyhow::Result<String> {
    Ok("\n(The figure needs reef-lab built with `--features results`.)\n".into())
}

fn ending(world: &World, site: u32, source: &str, duration: Duration) -> Ending {
    Ending { site: world.topo.sites[site as usize].name.clone(), source: source.into(), duration }
}

fn lab_ending(d: &Deployment, r: &LabRequest, o: &LabOutcome) -> Ending {
    let source = match (&o.error, o.holder) {
        (None, Some(h)) if (h as usize) < d.layout.nodes.len() => {
            bytes_from(&d.topo, &d.layout, r.site as u32, h).name()
        }
        (None, _) => "unattributed",
        (Some(_), _) => "failed",
    };
    Ending { site: d.topo.sites[r.site].name.clone(), source: source.into(), duration: o.duration }
}

fn lab_failures(outcomes: &[LabOutcome]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for o in outcomes.iter().filter(|o| o.error.is_some()) {
        let reason = o.reason.clone().or_else(|| o.error.as_ref().map(|e| e.chars().take(80).collect()));
        *out.entry(reason.unwrap_or_default()).or_default() += 1;
    }
    out
}

/// Whole objects the origins served, from their access logs.
fn origin_transfers(d: &Deployment, homes: &[PathBuf]) -> anyhow::Result<u64> {
    let origins: BTreeSet<usize> = d.layout.origins.iter().flatten().map(|&o| o as usize).collect();
    let mut n = 0;
    for o in origins {
        let log = homes[o].join("access.log");
        let text = std::fs::read_to_string(&log).with_context(|| format!("reading {}", log.display()))?;
        for line in text.lines() {
            let v: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("{}: not JSON", log.display()))?;
            let served = v["outcome"] == "served" && v["method"] == "GET" && v["complete"] == true;
            if served && !v["object"].as_str().unwrap_or("").starts_with("/.reef") {
                n += 1;
            }
        }
    }
    Ok(n)
}

fn write_requests(path: &Path, requests: &[LabRequest], c: &Comparison, outcomes: &[LabOutcome]) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let mut out = String::from("k,issued_s,site,object,bytes,sim_source,lab_source,sim_ms,lab_ms,cache_status,error\n");
    for (k, r) in requests.iter().enumerate() {
        let (s, l, o) = (&c.sim.requests[k], &c.lab.requests[k], &outcomes[k]);
        let _ = writeln!(
            out,
            "{k},{:.3},{},{},{},{},{},{:.1},{:.1},\"{}\",\"{}\"",
            r.at.as_secs_f64(),
            s.site,
            r.path,
            r.size,
            s.source,
            l.source,
            s.duration.as_secs_f64() * 1e3,
            l.duration.as_secs_f64() * 1e3,
            o.cache_status.as_deref().unwrap_or(""),
            o.error.as_deref().unwrap_or("").replace('"', "'")
        );
    }
    std::fs::write(path, out)?;
    Ok(())
}
