//! Real reef-node processes in the emulated sites: one per node of the simulator's layout (the
//! same origins, site caches, worker nodes and director, with the same node ids, seeds,
//! capacities, `[policy]` and discovery parents as the simulated cores get), each bound to its
//! site's address. Nodes reach the nodes of other sites through a relay in their own site that
//! adds the route's one-way latency each way (`reef-lab relay`). Stopped when dropped.

use crate::netns::{Network, run, site_addr};
use anyhow::{Context, bail};
use reef_core::cache::NamespaceQuota;
use reef_core::discovery::DiscoveryConfig;
use reef_core::{NodeConfig, Role};
use reef_sim::layout::Layout;
use reef_sim::topology::Topology;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Node `i` listens on `BASE_PORT + i` at its site's address.
pub const BASE_PORT: u16 = 20_000;
/// In each site, the relay towards node `i` of another site listens on `RELAY_PORT + i`.
pub const RELAY_PORT: u16 = 30_000;

/// What the cluster runs: the simulator's topology, layout and per-node core configurations,
/// and the scenario's `[policy]` table (a reef-node takes the same keys).
#[derive(Debug)]
pub struct Deployment {
    pub topo: Topology,
    pub layout: Layout,
    pub configs: Vec<NodeConfig>,
    pub policy: toml::Table,
}

impl Deployment {
    /// The deployment of `scenario` (already scaled) with `seed`; `policy` is its `[policy]`.
    pub fn of(scenario: &reef_sim::scenario::Scenario, seed: u64, policy: toml::Table) -> anyhow::Result<Deployment> {
        let topo = reef_sim::generate::build(&scenario.topology, &scenario.workload.tier_weights, seed)
            .map_err(|e| anyhow::anyhow!("{}: {e}", scenario.path.display()))?;
        let layout = Layout::new(&topo, &scenario.namespaces).map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(n) = layout.private.iter().position(|&p| p) {
            bail!("namespace `{}` is private: the lab runs without TLS and tokens so far", layout.namespaces[n]);
        }
        let configs = layout.configs(&topo, &scenario.policy, seed);
        Ok(Deployment { topo, layout, configs, policy })
    }

    /// The nodes node `i` knows: those it talks to and those that talk to it (a reef-node
    /// refuses node requests from outside its `[[peers]]`).
    fn contacts(&self, i: usize) -> BTreeSet<usize> {
        let mut out = self.talks_to(i);
        out.extend((0..self.configs.len()).filter(|&j| j != i && self.talks_to(j).contains(&i)));
        out
    }

    /// The nodes node `i` talks to: the peers the simulator's core starts with, the origins,
    /// and its discovery's parents and directory.
    fn talks_to(&self, i: usize) -> BTreeSet<usize> {
        let c = &self.configs[i];
        let mut out: BTreeSet<usize> = c.peers.iter().map(|p| p.id.0 as usize).collect();
        // Every node's file names each namespace's origins.
        out.extend(self.layout.origins.iter().flatten().map(|&o| o as usize));
        match &c.discovery {
            DiscoveryConfig::Parent { parents } | DiscoveryConfig::Site { parents } => {
                out.extend(parents.iter().map(|p| p.0 as usize))
            }
            DiscoveryConfig::Directory { directory, .. } => {
                out.insert(directory.0 as usize);
            }
            _ => {}
        }
        out.remove(&i);
        out
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Origin => "origin",
        Role::Cache => "cache",
        Role::Director => "director",
        Role::WorkerPeer => "worker-peer",
    }
}

/// One node process and how to start it again.
#[derive(Debug)]
struct NodeProcess {
    site: usize,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

#[derive(Debug)]
pub struct Cluster {
    nodes: Vec<NodeProcess>,
    relays: Vec<Child>,
    reef_node: PathBuf,
    /// Each node's base URL, by layout index (= node id).
    pub urls: Vec<String>,
    /// Each namespace's export directory at its origins.
    pub exports: Vec<PathBuf>,
    /// Each node's directory (its node.toml, node.log, access.log and `disk/store`).
    pub homes: Vec<PathBuf>,
    /// File systems of their own (tmpfs) mounted at `disk` of these nodes' homes.
    mounts: Vec<PathBuf>,
}

impl Cluster {
    /// Writes every node's configuration under `dir`, starts the relays and the nodes, and
    /// waits until every node answers. The nodes in `own_disks` keep their store on a file
    /// system of their own (a tmpfs of the store's capacity and 64 MiB), which
    /// [`Cluster::fill_disk`] can fill.
    pub fn start(
        net: &Network,
        d: &Deployment,
        binaries: (&Path, &Path),
        dir: &Path,
        own_disks: &BTreeSet<usize>,
    ) -> anyhow::Result<Cluster> {
        let (reef_node, reef_lab) = binaries;
        let (topo, layout) = (&d.topo, &d.layout);
        let url = |i: usize| format!("http://{}:{}", site_addr(layout.nodes[i].site as usize), BASE_PORT + i as u16);
        let urls: Vec<String> = (0..layout.nodes.len()).map(url).collect();
        let exports: Vec<PathBuf> = layout.namespaces.iter().map(|ns| dir.join("export").join(ns)).collect();
        for e in &exports {
            std::fs::create_dir_all(e)?;
        }
        let mut shared = String::new();
        for (s, site) in topo.sites.iter().enumerate() {
            let _ = write!(
                shared,
                "\n[[sites]]\nname = \"{}\"\nid = {s}\nnetworks = [\"{}/32\"]\n",
                site.name,
                site_addr(s)
            );
        }
        let mut cluster = Cluster {
            nodes: Vec::new(),
            relays: Vec::new(),
            reef_node: reef_node.to_owned(),
            urls: urls.clone(),
            exports: exports.clone(),
            homes: Vec::new(),
            mounts: Vec::new(),
        };
        // One relay per site and remote node that a node of the site talks to.
        let site_of = |i: usize| layout.nodes[i].site as usize;
        let relayed: BTreeSet<(usize, usize)> = (0..layout.nodes.len())
            .flat_map(|i| d.contacts(i).into_iter().map(move |j| (i, j)))
            .filter(|&(i, j)| site_of(i) != site_of(j))
            .map(|(i, j)| (site_of(i), j))
            .collect();
        for &(s, j) in &relayed {
            let Some((latency, _)) = topo.route(s as u32, site_of(j) as u32) else { continue };
            let child = net
                .command(s, reef_lab.to_str().context("a UTF-8 path to reef-lab")?)
                .args(["relay", "--listen", &format!("{}:{}", site_addr(s), RELAY_PORT + j as u16)])
                .args(["--target", &format!("{}:{}", site_addr(site_of(j)), BASE_PORT + j as u16)])
                .args(["--latency-ms", &format!("{}", latency.as_secs_f64() * 1e3)])
                .stdout(Stdio::null())
                .spawn()
                .context("starting a relay")?;
            cluster.relays.push(child);
        }
        for (i, node) in layout.nodes.iter().enumerate() {
            let home = dir.join(format!("n{i}"));
            std::fs::create_dir_all(home.join("disk"))?;
            if own_disks.contains(&i) {
                let capacity = d.configs[i].cache.as_ref().map_or(0, |c| c.capacity);
                let size = format!("size={}", capacity + (64 << 20));
                let disk = home.join("disk");
                run(&["mount", "-t", "tmpfs", "-o", &size, "tmpfs", disk.to_str().context("a UTF-8 path")?])?;
                cluster.mounts.push(disk);
            }
            let peer_url = |j: usize| {
                if site_of(j) == site_of(i) {
                    urls[j].clone()
                } else {
                    format!("http://{}:{}", site_addr(site_of(i)), RELAY_PORT + j as u16)
                }
            };
            let text = node_file(d, i, &home, &exports, &shared, peer_url)?;
            let config = home.join("node.toml");
            std::fs::write(&config, text)?;
            cluster.nodes.push(NodeProcess {
                site: node.site as usize,
                config,
                log: home.join("node.log"),
                child: None,
            });
            cluster.homes.push(home);
            cluster.launch(net, i)?;
        }
        for i in 0..layout.nodes.len() {
            cluster.wait_healthy(net, i)?;
        }
        Ok(cluster)
    }

    fn launch(&mut self, net: &Network, i: usize) -> anyhow::Result<()> {
        let n = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&n.log)?;
        let child = net
            .command(n.site, self.reef_node.to_str().context("a UTF-8 path to reef-node")?)
            .arg("--config")
            .arg(&n.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node {i}"))?;
        n.child = Some(child);
        Ok(())
    }

    /// Damages every object in node `i`'s store: flips the first byte of each data file (the
    /// size stays, the content and the file's times change), or if `truncated` cuts the file
    /// to half its length. Returns how many.
    pub fn corrupt_store(&self, i: usize, truncated: bool) -> anyhow::Result<usize> {
        use std::io::{Read, Seek, SeekFrom, Write};
        let dir = self.homes[i].join("disk").join("store").join("objects");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some() {
                continue; // metadata (`.meta`)
            }
            let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&path)?;
            if truncated {
                f.set_len(f.metadata()?.len() / 2)?;
                n += 1;
                continue;
            }
            let mut first = [0u8; 1];
            if f.read(&mut first)? == 1 {
                f.seek(SeekFrom::Start(0))?;
                f.write_all(&[first[0] ^ 0xff])?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Fills node `i`'s own file system (see [`Cluster::start`]) with a ballast file, or
    /// removes it: while full, every write of the node's store fails with "no space".
    pub fn fill_disk(&self, i: usize, full: bool) -> anyhow::Result<()> {
        let disk = self.homes[i].join("disk");
        anyhow::ensure!(self.mounts.contains(&disk), "node {i} has no file system of its own to fill");
        let ballast = disk.join("ballast");
        if !full {
            return std::fs::remove_file(&ballast).with_context(|| format!("removing {}", ballast.display()));
        }
        let out = std::process::Command::new("stat")
            .args(["-f", "-c", "%a %S"])
            .arg(&disk)
            .output()
            .context("running stat")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let free: Vec<u64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        let &[blocks, block] = free.as_slice() else {
            bail!("free space of {}: `{}`", disk.display(), text.trim());
        };
        run(&["fallocate", "-l", &(blocks * block).to_string(), ballast.to_str().context("a UTF-8 path")?])
    }

    /// The sum of a counter over every node (see [`Cluster::metric`]).
    pub fn metric_sum(&self, net: &Network, name: &str) -> anyhow::Result<u64> {
        (0..self.nodes.len()).map(|i| self.metric(net, i, name)).sum()
    }

    /// The sum of a counter over its label sets in node `i`'s `/metrics` (0 if absent).
    pub fn metric(&self, net: &Network, i: usize, name: &str) -> anyhow::Result<u64> {
        if self.nodes[i].child.is_none() {
            return Ok(0); // killed and not restarted
        }
        let out = net
            .command(self.nodes[i].site, "curl")
            .args(["-fsS", &format!("{}/metrics", self.urls[i])])
            .output()
            .context("running curl")?;
        anyhow::ensure!(out.status.success(), "node {i}: /metrics: {}", String::from_utf8_lossy(&out.stderr).trim());
        let text = String::from_utf8_lossy(&out.stdout);
        let values = text.lines().filter(|l| l.split(['{', ' ']).next() == Some(name));
        Ok(values.filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum::<f64>() as u64)
    }

    /// Kills node `i` (SIGKILL: no goodbye to its peers, as a crash).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts node `i` again with its store as it was, and waits until it answers.
    pub fn restart(&mut self, net: &Network, i: usize) -> anyhow::Result<()> {
        self.kill(i);
        self.launch(net, i)?;
        self.wait_healthy(net, i)
    }

    fn wait_healthy(&mut self, net: &Network, i: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.nodes[i].child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                let log = std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default();
                bail!("node {i} exited ({status}): {}", log.lines().last().unwrap_or("no output"));
            }
            let ok = net
                .command(self.nodes[i].site, "curl")
                .args(["-fs", "-o", "/dev/null", &format!("{}/healthz", self.urls[i])])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100)); // polling a starting process
        }
        bail!("node {i} did not answer at {} within 30 s (see {})", self.urls[i], self.nodes[i].log.display())
    }
}

/// Node `i`'s reef-node configuration file.
fn node_file(
    d: &Deployment,
    i: usize,
    home: &Path,
    exports: &[PathBuf],
    shared: &str,
    peer_url: impl Fn(usize) -> String,
) -> anyhow::Result<String> {
    let (topo, layout, c) = (&d.topo, &d.layout, &d.configs[i]);
    let node = &layout.nodes[i];
    let site = &topo.sites[node.site as usize];
    let mut text = format!(
        "[node]\nid = {i}\nrole = \"{}\"\nlisten = \"{}:{}\"\nsite = \"{}\"\nseed = {}\naccess_log = \"{}\"\n",
        role_name(node.role),
        site_addr(node.site as usize),
        BASE_PORT + i as u16,
        site.name,
        c.seed,
        home.join("access.log").display()
    );
    if let Some(cache) = &c.cache {
        // No background scrub: the simulator finds a damaged copy only when it reads it.
        let _ = write!(
            text,
            "store = \"{}\"\ncapacity = {}\nscrub_rate = \"0bit/s\"\n",
            home.join("disk").join("store").display(),
            cache.capacity
        );
    } else if matches!(node.role, Role::Cache | Role::WorkerPeer) {
        bail!("{} has no cache (a capacity of 0): the lab needs one at every cache and worker node", node.name);
    }
    // The core's strategy for this node: worker nodes always use `site`, and a cache with
    // no parent goes straight to the origins (`none`).
    let mut policy = d.policy.clone();
    let (strategy, parents, directory) = match &c.discovery {
        DiscoveryConfig::Parent { parents } if parents.is_empty() => ("none", &[][..], None),
        DiscoveryConfig::Parent { parents } | DiscoveryConfig::Site { parents } => {
            (c.discovery.name(), &parents[..], None)
        }
        DiscoveryConfig::Directory { directory, .. } => ("directory", &[][..], Some(directory.0)),
        other => (other.name(), &[][..], None),
    };
    policy.insert("discovery".into(), toml::Value::String(strategy.into()));
    let mut policy_file = toml::Table::new();
    policy_file.insert("policy".into(), toml::Value::Table(policy));
    text += "\n";
    text += &toml::to_string(&policy_file).context("writing the [policy] table")?;
    let parents: Vec<u32> = parents.iter().map(|p| p.0).collect();
    let _ = write!(text, "\n[discovery]\nparents = {parents:?}\n");
    if let Some(dir) = directory {
        let _ = writeln!(text, "directory = {dir}");
    }
    text += shared;
    for (n, name) in layout.namespaces.iter().enumerate() {
        let _ = write!(text, "\n[[namespaces]]\nname = \"{name}\"\norigins = {:?}\n", layout.origins[n]);
        if layout.quotas[n] != NamespaceQuota::default() {
            let quota = toml::Value::try_from(layout.quotas[n]).context("writing a namespace's quota")?;
            let _ = writeln!(text, "quota = {quota}");
        }
        if layout.origins[n].contains(&(i as u32)) {
            let _ = writeln!(text, "export = \"{}\"", exports[n].display());
        }
    }
    for j in d.contacts(i) {
        let peer = &layout.nodes[j];
        let _ = write!(
            text,
            "\n[[peers]]\nid = {j}\nrole = \"{}\"\nsite = \"{}\"\nurl = \"{}\"\n",
            role_name(peer.role),
            topo.sites[peer.site as usize].name,
            peer_url(j)
        );
    }
    Ok(text)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        for c in &mut self.relays {
            let _ = c.kill();
            let _ = c.wait();
        }
        for disk in &self.mounts {
            let _ = std::process::Command::new("umount").arg("--lazy").arg(disk).status();
        }
    }
}

/// The binary `name` next to the running one (`target/<profile>/`), if built.
pub fn binary_beside_me(name: &str) -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    me.ancestors().skip(1).take(3).map(|d| d.join(name)).find(|p| p.is_file())
}
