//! Real reef-node processes in the emulated sites: one per node of the simulator's layout (the
//! same site caches, director and origins), each bound to its site's address, with every other
//! node as a peer. Stopped (killed) when dropped.

use crate::netns::{Network, site_addr};
use anyhow::{Context, bail};
use reef_core::Role;
use reef_sim::layout::Layout;
use reef_sim::topology::Topology;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The first node's port; node `i` listens on `BASE_PORT + i` at its site's address.
pub const BASE_PORT: u16 = 20_000;
/// In each site, the relay towards node `i` of another site listens on `RELAY_PORT + i`.
pub const RELAY_PORT: u16 = 30_000;

#[derive(Debug)]
pub struct Cluster {
    children: Vec<Child>,
    /// Each node's base URL, by layout index.
    pub urls: Vec<String>,
    /// Each namespace's export directory at its origins.
    pub exports: Vec<PathBuf>,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Origin => "origin",
        Role::Cache => "cache",
        Role::Director => "director",
        Role::WorkerPeer => "worker-peer",
    }
}

impl Cluster {
    /// Writes every node's configuration under `dir` and starts the nodes in their sites.
    /// With `reef_lab`, nodes reach the nodes of other sites through a relay in their own
    /// site that adds the route's one-way latency each way (`reef-lab relay`); without it, the
    /// paths have the links' rates only.
    pub fn start(
        net: &Network,
        topo: &Topology,
        layout: &Layout,
        reef_node: &Path,
        reef_lab: Option<&Path>,
        dir: &Path,
    ) -> anyhow::Result<Cluster> {
        if layout.nodes.iter().any(|n| n.role == Role::WorkerPeer) {
            bail!("worker nodes are not in the lab yet: use a scenario without `worker_nodes`");
        }
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
        let mut cluster = Cluster { children: Vec::new(), urls: urls.clone(), exports: exports.clone() };
        // The address node `i` uses for node `j`: direct in its own site, else its site's relay.
        let relayed = |i: usize, j: usize| {
            let (si, sj) = (layout.nodes[i].site, layout.nodes[j].site);
            match reef_lab {
                Some(_) if si != sj => format!("http://{}:{}", site_addr(si as usize), RELAY_PORT + j as u16),
                _ => urls[j].clone(),
            }
        };
        if let Some(lab) = reef_lab {
            for s in 0..topo.sites.len() {
                for (j, target) in layout.nodes.iter().enumerate().filter(|(_, t)| t.site as usize != s) {
                    let Some((latency, _)) = topo.route(s as u32, target.site) else { continue };
                    let child = net
                        .command(s, lab.to_str().context("a UTF-8 path to reef-lab")?)
                        .args(["relay", "--listen", &format!("{}:{}", site_addr(s), RELAY_PORT + j as u16)])
                        .args(["--target", &format!("{}:{}", site_addr(target.site as usize), BASE_PORT + j as u16)])
                        .args(["--latency-ms", &format!("{}", latency.as_secs_f64() * 1e3)])
                        .stdout(Stdio::null())
                        .spawn()
                        .context("starting a relay")?;
                    cluster.children.push(child);
                }
            }
        }
        for (i, node) in layout.nodes.iter().enumerate() {
            let site = &topo.sites[node.site as usize];
            let home = dir.join(format!("n{}", i + 1));
            std::fs::create_dir_all(&home)?;
            let mut text = format!(
                "[node]\nid = {}\nrole = \"{}\"\nlisten = \"{}:{}\"\nsite = \"{}\"\naccess_log = \"{}\"\n",
                i + 1,
                role_name(node.role),
                site_addr(node.site as usize),
                BASE_PORT + i as u16,
                site.name,
                home.join("access.log").display()
            );
            if node.role == Role::Cache {
                let _ = write!(
                    text,
                    "store = \"{}\"\ncapacity = {}\n",
                    home.join("store").display(),
                    site.cache.max(1 << 30)
                );
            }
            text += "\n[policy]\nfetch_timeout = \"30s\"\n\n[policy.membership]\nprobe_interval = \"1s\"\n";
            text += &shared;
            for (n, name) in layout.namespaces.iter().enumerate() {
                let origins: Vec<usize> = layout.origins[n].iter().map(|&o| o as usize + 1).collect();
                let _ = write!(text, "\n[[namespaces]]\nname = \"{name}\"\norigins = {origins:?}\n");
                if node.role == Role::Origin && layout.origins[n].contains(&(i as u32)) {
                    let _ = writeln!(text, "export = \"{}\"", exports[n].display());
                }
            }
            for (j, peer) in layout.nodes.iter().enumerate().filter(|&(j, _)| j != i) {
                let _ = write!(
                    text,
                    "\n[[peers]]\nid = {}\nrole = \"{}\"\nsite = \"{}\"\nurl = \"{}\"\n",
                    j + 1,
                    role_name(peer.role),
                    topo.sites[peer.site as usize].name,
                    relayed(i, j)
                );
            }
            let config = home.join("node.toml");
            std::fs::write(&config, text)?;
            let log = std::fs::File::create(home.join("node.log"))?;
            let child = net
                .command(node.site as usize, reef_node.to_str().context("a UTF-8 path to reef-node")?)
                .arg("--config")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {}", node.name))?;
            cluster.children.push(child);
        }
        for (i, node) in layout.nodes.iter().enumerate() {
            cluster.wait_healthy(net, node.site as usize, &urls[i], &node.name)?;
        }
        Ok(cluster)
    }

    fn wait_healthy(&self, net: &Network, site: usize, url: &str, name: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ok = net
                .command(site, "curl")
                .args(["-fs", "-o", "/dev/null", &format!("{url}/healthz")])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100)); // polling a starting process
        }
        bail!("{name} did not answer at {url} within 30 s (see its node.log)")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The binary `name` next to the running one (`target/<profile>/`), if built.
pub fn binary_beside_me(name: &str) -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    me.ancestors().skip(1).take(3).map(|d| d.join(name)).find(|p| p.is_file())
}
