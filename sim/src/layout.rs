//! Which core nodes run where: a cache per site, optional worker-node caches inside sites, and
//! the origins of each namespace; and the `NodeConfig` each of them starts with.

use crate::scenario::NamespaceSpec;
use crate::topology::Topology;
use crate::workload::mix64;
use reef_core::Duration;
use reef_core::Policy;
use reef_core::cache::CacheConfig;
use reef_core::cache::{NamespaceQuota, egress_limits, quotas_for_cache};
use reef_core::discovery::DiscoveryConfig;
use reef_core::node::ThirdParty;
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
    /// Whether each namespace is private (readable with a granting token only).
    pub private: Vec<bool>,
    /// The cache node of each site.
    pub site_cache: Vec<u32>,
    /// The worker nodes of each site (empty when it has none).
    pub site_workers: Vec<Range<u32>>,
    /// The origins of each namespace, in order of preference.
    pub origins: Vec<Vec<u32>>,
    /// Each namespace's storage quota in every cache.
    pub quotas: Vec<NamespaceQuota>,
    /// How long caches serve a copy of each namespace's objects (`None`: write-once).
    pub max_age: Vec<Option<reef_core::Duration>>,
    /// Each namespace's tape library behind each of its origins (`None`: files on disk).
    pub tape: Vec<Option<crate::tape::TapeParams>>,
    /// The `Cache-Control` of each namespace whose origins are third-party HTTP servers.
    pub cache_control: Vec<Option<String>>,
    /// The director (at the Tier-0): keeps the directory strategy's catalogue and, when
    /// clients go through it, sends each client to a cache.
    pub director: u32,
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
        let director = nodes.len() as u32;
        let t0 = topo.site_index(&default_origin).expect("a site of the topology");
        nodes.push(NodeSpec { name: format!("{default_origin}/director"), site: t0, role: Role::Director });
        let defaults = [NamespaceSpec {
            name: "data".into(),
            origins: Vec::new(),
            quota: Default::default(),
            private: false,
            max_age: None,
            tape: None,
            cache_control: None,
        }];
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
        for ns in specs {
            ns.quota.validate().map_err(|e| format!("namespace `{}`: quota: {e}", ns.name))?;
            if ns.cache_control.is_some() && (ns.max_age.is_some() || ns.tape.is_some()) {
                return Err(format!(
                    "namespace `{}`: `cache_control` (a third-party origin's header) goes without `max_age` and `tape`",
                    ns.name
                ));
            }
        }
        let quotas: Vec<NamespaceQuota> = specs.iter().map(|n| n.quota).collect();
        quotas_for_cache(&quotas, 0)?;
        Ok(Layout {
            nodes,
            namespaces: specs.iter().map(|n| n.name.clone()).collect(),
            private: specs.iter().map(|n| n.private).collect(),
            site_cache,
            site_workers,
            origins,
            quotas,
            max_age: specs.iter().map(|n| n.max_age.map(|s| s.0)).collect(),
            tape: (specs.iter())
                .map(|n| {
                    n.tape.as_ref().map(|t| t.params().map_err(|e| format!("namespace {}: {e}", n.name))).transpose()
                })
                .collect::<Result<_, _>>()?,
            cache_control: specs.iter().map(|n| n.cache_control.clone()).collect(),
            director,
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
        // What each node knows of another at start: who it is and the round trip to it.
        let info = |from: u32, n: u32| {
            let spec = &self.nodes[n as usize];
            let rtt = self.one_way(topo, from, n) + self.one_way(topo, n, from);
            PeerInfo::new(NodeId(n), SiteId(spec.site), spec.role).with_rtt(rtt)
        };
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let me = i as u32;
                let site = &topo.sites[spec.site as usize];
                let mut c = NodeConfig::new(NodeId(me), SiteId(spec.site), spec.role, mix64(seed ^ mix64(i as u64)));
                policy.apply(&mut c);
                let workers = self.site_workers[spec.site as usize].clone();
                match spec.role {
                    Role::Origin => {
                        c.serves = (0..self.origins.len())
                            .filter(|&ns| self.origins[ns].contains(&me))
                            .map(|ns| NamespaceId(ns as u16))
                            .collect();
                    }
                    Role::Cache | Role::WorkerPeer => {
                        let capacity = if spec.role == Role::Cache { site.cache } else { site.wn_cache };
                        if capacity > 0 {
                            c.cache = Some(self.cache_config(capacity, policy, mix64(c.seed)));
                        }
                        c.origins = origins.clone();
                        c.egress = egress_limits(&self.quotas);
                        c.max_age = (self.max_age.iter().enumerate())
                            .filter_map(|(ns, age)| Some((NamespaceId(ns as u16), (*age)?)))
                            .collect();
                        c.third_party = (self.cache_control.iter().enumerate())
                            .filter(|(_, cc)| cc.is_some())
                            .map(|(ns, _)| (NamespaceId(ns as u16), ThirdParty { immutable: false }))
                            .collect();
                        // Caches know every site cache and the directory; worker nodes know their
                        // site. Membership gossip spreads the rest.
                        let mut peers: Vec<u32> = if spec.role == Role::Cache {
                            self.site_cache.iter().copied().chain([self.director]).collect()
                        } else {
                            vec![self.site_cache[spec.site as usize]]
                        };
                        peers.extend(workers.clone());
                        c.peers = peers.into_iter().filter(|&p| p != me).map(|p| info(me, p)).collect();
                        c.discovery = if spec.role == Role::WorkerPeer {
                            // Worker nodes share among themselves, then go to their site cache,
                            // whatever the caches' strategy (the seed's "WNs in the P2P layer").
                            DiscoveryConfig::Site { parents: vec![NodeId(self.site_cache[spec.site as usize])] }
                        } else {
                            self.discovery(topo, policy, me)
                        };
                    }
                    Role::Director => {
                        c.peers = self.site_cache.iter().map(|&p| info(me, p)).collect();
                    }
                }
                c
            })
            .collect()
    }

    fn cache_config(&self, capacity: u64, policy: &Policy, seed: u64) -> CacheConfig {
        let quotas = quotas_for_cache(&self.quotas, capacity).expect("checked when the layout was built");
        policy.cache_config(capacity, seed, quotas)
    }

    /// The node's discovery strategy, with what the deployment supplies: parents (a Tier-2's
    /// closest Tier-1's cache) and the directory node.
    fn discovery(&self, topo: &Topology, policy: &Policy, me: u32) -> DiscoveryConfig {
        let site = self.nodes[me as usize].site;
        let parents = parent_site(topo, site).map(|s| NodeId(self.site_cache[s as usize])).into_iter().collect();
        policy.discovery_config(parents, Some(NodeId(self.director))).expect("validated when parsed")
    }

    /// One-way latency between two nodes over the current routes.
    pub fn one_way(&self, topo: &Topology, a: u32, b: u32) -> Duration {
        let (sa, sb) = (self.nodes[a as usize].site, self.nodes[b as usize].site);
        if sa == sb {
            return topo.lan_latency;
        }
        topo.route(sa, sb).map_or(Duration::from_secs(1), |(d, _)| d)
    }
}

/// A Tier-2 or Tier-3 site's parent: the Tier-1 closest to it. Tier-0 and Tier-1 sites go to the
/// origins themselves.
fn parent_site(topo: &Topology, site: u32) -> Option<u32> {
    if matches!(topo.sites[site as usize].tier, Tier::T0 | Tier::T1) {
        return None;
    }
    (0..topo.sites.len() as u32)
        .filter(|&s| topo.sites[s as usize].tier == Tier::T1)
        .filter_map(|s| topo.route(site, s).map(|(d, _)| (d, s)))
        .min()
        .map(|(_, s)| s)
}
