//! The site topology: sites (tier, region, cache sizes, worker nodes) joined by WAN links with a
//! bandwidth and a latency, stored as a petgraph graph. Routes between sites are recomputed
//! over the links that are up whenever a link goes down or up, by the scenario's [`Routing`]:
//! by policy (the fewest links, then the lowest latency: a direct tier link is always taken
//! while it is up, as research networks route) or by the lowest total latency alone.

pub use crate::scenario::Routing;
use petgraph::graph::{EdgeIndex, NodeIndex, UnGraph};
use petgraph::visit::EdgeRef;
use reef_core::{BitRate, Duration, Tier};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A grid site.
#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    pub name: String,
    pub tier: Tier,
    /// Index into [`Topology::regions`].
    pub region: u16,
    /// Capacity of the site cache in bytes (0: the site has a cache node with no store).
    pub cache: u64,
    pub worker_nodes: u32,
    /// Capacity of each worker node's cache in bytes (0: worker nodes do not cache).
    pub wn_cache: u64,
    /// Aggregate bandwidth inside the site (cache, worker nodes, local origin).
    pub lan: BitRate,
    /// Share of the client requests that start at this site (relative weight).
    pub weight: f64,
}

/// A WAN link between two sites, usable both ways.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub a: u32,
    pub b: u32,
    pub bandwidth: BitRate,
    pub latency: Duration,
}

#[derive(Clone, Copy, Debug, Default)]
struct Route {
    latency: Duration,
    start: u32,
    len: u32,
    reachable: bool,
}

/// Sites, links and the routes between every pair of sites.
#[derive(Clone, Debug)]
pub struct Topology {
    pub regions: Vec<String>,
    pub sites: Vec<Site>,
    pub links: Vec<Link>,
    /// One-way latency between two nodes of the same site.
    pub lan_latency: Duration,
    pub routing: Routing,
    graph: UnGraph<u32, u32>,
    routes: Vec<Route>,
    /// Link indices of all routes, back to back.
    route_links: Vec<u32>,
}

impl Topology {
    pub fn new(
        regions: Vec<String>,
        sites: Vec<Site>,
        links: Vec<Link>,
        lan_latency: Duration,
        routing: Routing,
    ) -> Topology {
        let mut graph = UnGraph::with_capacity(sites.len(), links.len());
        for i in 0..sites.len() {
            graph.add_node(i as u32);
        }
        for (i, l) in links.iter().enumerate() {
            graph.add_edge(NodeIndex::new(l.a as usize), NodeIndex::new(l.b as usize), i as u32);
        }
        let mut t = Topology {
            regions,
            sites,
            links,
            lan_latency,
            routing,
            graph,
            routes: Vec::new(),
            route_links: Vec::new(),
        };
        t.compute_routes(&|_| true);
        t
    }

    pub fn site_index(&self, name: &str) -> Option<u32> {
        self.sites.iter().position(|s| s.name == name).map(|i| i as u32)
    }

    pub fn link_between(&self, a: u32, b: u32) -> Option<u32> {
        self.graph.find_edge(NodeIndex::new(a as usize), NodeIndex::new(b as usize)).map(|e: EdgeIndex| self.graph[e])
    }

    /// The route from site `a` to site `b`: its one-way latency and its links in order; `None`
    /// when no path of live links joins them. A site to itself is a route of no links.
    pub fn route(&self, a: u32, b: u32) -> Option<(Duration, &[u32])> {
        let r = self.routes[a as usize * self.sites.len() + b as usize];
        r.reachable.then(|| (r.latency, &self.route_links[r.start as usize..(r.start + r.len) as usize]))
    }

    /// Recomputes every route over the links for which `up` holds: one Dijkstra per source site
    /// on (links, latency) for policy routing or on latency alone, ties broken by site index so
    /// that routes are deterministic.
    pub fn compute_routes(&mut self, up: &dyn Fn(u32) -> bool) {
        let n = self.sites.len();
        self.routes.clear();
        self.routes.resize(n * n, Route::default());
        self.route_links.clear();
        // Hops weigh more than any sum of latencies under policy routing (2^40 ns is 18 min).
        let hop_cost: u64 = match self.routing {
            Routing::Policy => 1 << 40,
            Routing::Latency => 0,
        };
        let mut dist = vec![u64::MAX; n];
        let mut via: Vec<Option<(u32, u32)>> = vec![None; n];
        let mut heap = BinaryHeap::new();
        let mut path = Vec::new();
        for src in 0..n {
            dist.fill(u64::MAX);
            via.fill(None);
            dist[src] = 0;
            heap.push(Reverse((0u64, src as u32)));
            while let Some(Reverse((d, u))) = heap.pop() {
                if d > dist[u as usize] {
                    continue;
                }
                for e in self.graph.edges(NodeIndex::new(u as usize)) {
                    let link = *e.weight();
                    if !up(link) {
                        continue;
                    }
                    let v = if e.source().index() == u as usize { e.target() } else { e.source() }.index();
                    let nd = d + hop_cost + self.links[link as usize].latency.as_nanos();
                    if nd < dist[v] {
                        dist[v] = nd;
                        via[v] = Some((u, link));
                        heap.push(Reverse((nd, v as u32)));
                    }
                }
            }
            for (dst, &d) in dist.iter().enumerate() {
                if d == u64::MAX {
                    continue;
                }
                path.clear();
                let mut at = dst;
                while let Some((prev, link)) = via[at] {
                    path.push(link);
                    at = prev as usize;
                }
                path.reverse();
                let start = self.route_links.len() as u32;
                self.route_links.extend_from_slice(&path);
                let latency = Duration(path.iter().map(|&l| self.links[l as usize].latency.as_nanos()).sum());
                self.routes[src * n + dst] = Route { latency, start, len: path.len() as u32, reachable: true };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(name: &str, tier: Tier) -> Site {
        Site {
            name: name.into(),
            tier,
            region: 0,
            cache: 0,
            worker_nodes: 0,
            wn_cache: 0,
            lan: BitRate(1),
            weight: 1.0,
        }
    }

    fn triangle(routing: Routing) -> Topology {
        // a-b direct is slow (50 ms); a-c-b is 10 + 10 ms.
        let sites = vec![site("a", Tier::T0), site("b", Tier::T1), site("c", Tier::T1)];
        let link = |a, b, ms| Link { a, b, bandwidth: BitRate(1), latency: Duration::from_millis(ms) };
        let links = vec![link(0, 1, 50), link(0, 2, 10), link(2, 1, 10)];
        Topology::new(vec!["r".into()], sites, links, Duration(0), routing)
    }

    #[test]
    fn policy_routes_take_the_direct_link_while_it_is_up() {
        let mut t = triangle(Routing::Policy);
        assert_eq!(t.route(0, 1), Some((Duration::from_millis(50), &[0u32][..])));
        assert_eq!(t.route(1, 2), Some((Duration::from_millis(10), &[2u32][..])));
        // The direct link down: the detour, with its own latency.
        t.compute_routes(&|l| l != 0);
        assert_eq!(t.route(0, 1), Some((Duration::from_millis(20), &[1u32, 2][..])));
    }

    #[test]
    fn latency_routes_take_the_lowest_latency_and_avoid_down_links() {
        let mut t = triangle(Routing::Latency);
        assert_eq!(t.route(0, 1), Some((Duration::from_millis(20), &[1u32, 2][..])));
        assert_eq!(t.route(1, 0), Some((Duration::from_millis(20), &[2u32, 1][..])));
        assert_eq!(t.route(2, 2), Some((Duration(0), &[][..])));
        t.compute_routes(&|l| l != 2);
        assert_eq!(t.route(0, 1), Some((Duration::from_millis(50), &[0u32][..])));
        t.compute_routes(&|l| l == 1);
        assert_eq!(t.route(0, 1), None);
        assert_eq!(t.link_between(2, 1), Some(2));
    }
}
