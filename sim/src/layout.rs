//! Which core nodes run where: a cache per site, optional worker-node caches inside sites, and
//! the origins of each namespace; and the `NodeConfig` each of them starts with.

use crate::scenario::{NamespaceSpec, Policy};
use crate::topology::Topology;
use crate::workload::mix64;
use reef_core::cache::CacheConfig;
use reef_core::{NamespaceId, NodeConfig, NodeId, PeerInfo, Role, SiteId, Tier};
use std::collections::BTreeMap;
use std::ops::Range;

/// One simulated node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSpec {
    /// `SITE/cache`, `SITE/wnN` or `SITE/origin/NAMESPACE`.
    pub name: String,
    pub site: u32,
    pub role: Role,
}

#[derive(Debug)]
pub struct Layout {
    pub nodes: Vec<NodeSpec>,
    pub namespaces: Vec<String>,
    /// The cache node of each site.
    pub site_cache: Vec<u32>,
    /// The worker nodes of each site (empty when it has none).
    pub site_workers: Vec<Range<u32>>,
    /// The origins of each namespace, in order of preference.
    pub origins: Vec<Vec<u32>>,
}

impl Layout {
    pub fn new(topo: &Topology, namespaces: &[NamespaceSpec]) -> Result<Layout, String> {
        let mut nodes = Vec::new();
        let mut site_cache = Vec::new();
        let mut site_workers = Vec::new();
        for (i, s) in topo.sites.iter().enumerate() {
            site_cache.push(nodes.len() as u32);
            nodes.push(NodeSpec { name: format!("{}/cache", s.name), site: i as u32, role: Role::Cache });
            let first = nodes.len() as u32;
            for w in 0..s.worker_nodes {
                nodes.push(NodeSpec { name: format!("{}/wn{w}", s.name), site: i as u32, role: Role::WorkerPeer });
            }
            site_workers.push(first..nodes.len() as u32);
        }
        let default_origin = topo.sites.iter().find(|s| s.tier == Tier::T0).unwrap_or(&topo.sites[0]).name.clone();
        let defaults = [NamespaceSpec { name: "data".into(), origins: Vec::new() }];
        let specs = if namespaces.is_empty() { &defaults[..] } else { namespaces };
        if specs.len() > usize::from(u16::MAX) {
            return Err("too many namespaces".into());
        }
        let mut origins = Vec::new();
        for ns in specs {
            let sites = if ns.origins.is_empty() { std::slice::from_ref(&default_origin) } else { &ns.origins[..] };
            let mut list = Vec::new();
            for site in sites {
                let idx = topo
                    .site_index(site)
                    .ok_or_else(|| format!("namespace `{}`: unknown origin site `{site}`", ns.name))?;
                list.push(nodes.len() as u32);
                nodes.push(NodeSpec { name: format!("{site}/origin/{}", ns.name), site: idx, role: Role::Origin });
            }
            origins.push(list);
        }
        Ok(Layout {
            nodes,
            namespaces: specs.iter().map(|n| n.name.clone()).collect(),
            site_cache,
            site_workers,
            origins,
        })
    }

    pub fn find(&self, name: &str) -> Option<u32> {
        self.nodes.iter().position(|n| n.name == name).map(|i| i as u32)
    }

    /// All nodes of a site.
    pub fn nodes_of_site(&self, site: u32) -> Vec<u32> {
        (0..self.nodes.len() as u32).filter(|&n| self.nodes[n as usize].site == site).collect()
    }

    /// The configuration each node starts with. Built with `NodeConfig::new` plus assignments,
    /// so fields the core adds later keep their defaults.
    pub fn configs(&self, topo: &Topology, policy: &Policy, seed: u64) -> Vec<NodeConfig> {
        let origins: BTreeMap<NamespaceId, Vec<NodeId>> = self
            .origins
            .iter()
            .enumerate()
            .map(|(ns, list)| (NamespaceId(ns as u16), list.iter().map(|&n| NodeId(n)).collect()))
            .collect();
        let info = |n: u32| {
            let spec = &self.nodes[n as usize];
            PeerInfo::new(NodeId(n), SiteId(spec.site), spec.role)
        };
        let caches: Vec<PeerInfo> = self.site_cache.iter().map(|&n| info(n)).collect();
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let id = NodeId(i as u32);
                let site = &topo.sites[spec.site as usize];
                let mut c = NodeConfig::new(id, SiteId(spec.site), spec.role, mix64(seed ^ mix64(i as u64)));
                c.fetch_timeout = policy.fetch_timeout.0;
                c.membership.probe_interval = policy.probe_interval.map(|s| s.0);
                match spec.role {
                    Role::Origin => {
                        c.serves = (0..self.origins.len())
                            .filter(|&ns| self.origins[ns].contains(&(i as u32)))
                            .map(|ns| NamespaceId(ns as u16))
                            .collect();
                    }
                    Role::Cache => {
                        c.cache = Some(CacheConfig::new(site.cache, policy.eviction.0));
                        c.origins = origins.clone();
                        // Every other site cache, then this site's worker nodes.
                        c.peers = caches.iter().copied().filter(|p| p.id != id).collect();
                        c.peers.extend(self.site_workers[spec.site as usize].clone().map(info));
                    }
                    Role::WorkerPeer => {
                        if site.wn_cache > 0 {
                            c.cache = Some(CacheConfig::new(site.wn_cache, policy.eviction.0));
                        }
                        c.origins = origins.clone();
                        // The site cache, then the other worker nodes of the site.
                        c.peers.push(info(self.site_cache[spec.site as usize]));
                        c.peers
                            .extend(self.site_workers[spec.site as usize].clone().filter(|&w| w != i as u32).map(info));
                    }
                    Role::Director => {}
                }
                c
            })
            .collect()
    }
}
