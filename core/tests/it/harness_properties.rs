//! Properties of the request path under random load and faults, on the multi-node harness:
//! random requests (some objects larger than a cache), caches killed and revived, links cut and
//! healed, transfers broken mid-way, under every discovery strategy. Whatever happens:
//!
//! - every client request gets exactly one `Respond`;
//! - once everything is quiet, no object is left pinned and no fill is left open;
//! - no node commits a fill whose complete transfer it was not told of.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use reef_core::cache::{CacheConfig, PolicyKind};
use reef_core::discovery::DiscoveryConfig;
use reef_core::harness::Harness;
use reef_core::{
    BitRate, Duration, NamespaceId, Node, NodeConfig, NodeId, ObjectId, ObjectRef, Output, PeerInfo, RequestId, Role,
    SiteId,
};
use std::collections::BTreeMap;

const NS: NamespaceId = NamespaceId(0);
const ORIGINS: [NodeId; 2] = [NodeId(0), NodeId(1)];
const DIRECTORY: NodeId = NodeId(2);
const CACHES: std::ops::Range<u32> = 3..9;
const CAPACITY: u64 = 20_000_000;

fn strategies() -> Vec<DiscoveryConfig> {
    vec![
        DiscoveryConfig::None,
        DiscoveryConfig::by_name("dsht").unwrap(),
        DiscoveryConfig::Directory { directory: DIRECTORY, timeout: Duration::from_millis(500) },
        DiscoveryConfig::Rendezvous { max_level: 2 },
        DiscoveryConfig::Parent { parents: vec![NodeId(CACHES.start)] },
    ]
}

fn cluster(n: NodeId) -> u32 {
    n.0 % 2
}

fn build(seed: u64, discovery: &DiscoveryConfig) -> Harness {
    let caches: Vec<NodeId> = CACHES.map(NodeId).collect();
    let mut nodes = Vec::new();
    for &o in &ORIGINS {
        let mut c = NodeConfig::new(o, SiteId(100 + o.0), Role::Origin, seed ^ u64::from(o.0));
        c.serves = vec![NS];
        nodes.push(Node::new(c));
    }
    let mut d = NodeConfig::new(DIRECTORY, SiteId(50), Role::Director, seed ^ 2);
    d.peers = caches.iter().map(|&c| PeerInfo::new(c, SiteId(cluster(c)), Role::Cache)).collect();
    nodes.push(Node::new(d));
    for &me in &caches {
        let mut c = NodeConfig::new(me, SiteId(cluster(me)), Role::Cache, seed ^ (u64::from(me.0) << 8));
        c.cache = Some(CacheConfig::new(CAPACITY, PolicyKind::Lru));
        c.origins.insert(NS, ORIGINS.to_vec());
        // The parent of the hierarchy asks the origins itself.
        c.discovery = match discovery {
            DiscoveryConfig::Parent { parents } if parents.contains(&me) => DiscoveryConfig::None,
            other => other.clone(),
        };
        c.fetch_timeout = Duration::from_secs(3);
        c.membership.probe_interval = Some(Duration::from_millis(500));
        c.membership.probe_timeout = Duration::from_millis(200);
        let rtt = |p: NodeId| Duration::from_millis(if cluster(p) == cluster(me) { 4 } else { 40 });
        c.peers = caches
            .iter()
            .filter(|&&p| p != me)
            .map(|&p| PeerInfo::new(p, SiteId(cluster(p)), Role::Cache).with_rtt(rtt(p)))
            .chain(ORIGINS.iter().map(|&o| PeerInfo::new(o, SiteId(100 + o.0), Role::Origin)))
            .chain([PeerInfo::new(DIRECTORY, SiteId(50), Role::Director)])
            .collect();
        nodes.push(Node::new(c));
    }
    let latency = Box::new(|a: NodeId, b: NodeId| {
        let (ca, cb) = (cluster(a), cluster(b));
        Duration::from_millis(if a.0 < 3 || b.0 < 3 {
            30
        } else if ca == cb {
            2
        } else {
            20
        })
    });
    Harness::with_latency(nodes, latency, BitRate(400_000_000))
}

/// Runs one random history; returns the requests made.
fn history(seed: u64, discovery: &DiscoveryConfig) -> (Harness, Vec<RequestId>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut h = build(seed, discovery);
    let all: Vec<NodeId> = CACHES.map(NodeId).chain(ORIGINS).collect();
    let mut down: Vec<NodeId> = Vec::new();
    let mut requests = Vec::new();
    for _ in 0..300 {
        match rng.random_range(0..100) {
            // A request to a live cache: 12 objects, sizes up to past the capacity.
            0..70 => {
                let live: Vec<NodeId> = CACHES.map(NodeId).filter(|n| !down.contains(n)).collect();
                if let Some(&at) = live.get(rng.random_range(0..live.len().max(1))) {
                    let id = rng.random_range(0..12u64);
                    let size = 1_000_000 + (id * 7_919_000) % (CAPACITY + 5_000_000);
                    let object = ObjectRef { id: ObjectId(id), namespace: NS, size: Some(size) };
                    requests.push(h.request(h.now(), at, object));
                }
            }
            // Kill a cache or an origin (breaking what it sends), or revive one.
            70..80 => {
                let n = all[rng.random_range(0..all.len())];
                if down.contains(&n) {
                    down.retain(|&d| d != n);
                    h.revive(n);
                } else if down.len() < 3 {
                    down.push(n);
                    h.kill(n);
                }
            }
            // Cut or heal the path between two nodes.
            80..90 => {
                let (a, b) = (all[rng.random_range(0..all.len())], all[rng.random_range(0..all.len())]);
                if a != b {
                    h.set_cut(a, b, rng.random_bool(0.6));
                }
            }
            _ => {}
        }
        h.run_for(Duration::from_millis(rng.random_range(1..400)));
    }
    for n in down {
        h.revive(n);
    }
    for &a in &all {
        for &b in &all {
            h.set_cut(a, b, false);
        }
    }
    // Long enough for every fill to end: timeouts, failovers, membership settling.
    h.run_for(Duration::from_secs(600));
    (h, requests)
}

#[test]
fn every_request_ends_once_and_nothing_leaks_under_random_faults() {
    for (k, discovery) in strategies().iter().enumerate() {
        for seed in 0..10u64 {
            let seed = seed + 1000 * k as u64;
            let name = discovery.name();
            let (h, requests) = history(seed, discovery);
            let mut answered: BTreeMap<RequestId, u32> = BTreeMap::new();
            for &(_, _, r, _) in &h.responses {
                *answered.entry(r).or_default() += 1;
            }
            for r in &requests {
                assert_eq!(answered.get(r), Some(&1), "{name} seed {seed}: {r:?} answered once");
            }
            assert_eq!(answered.len(), requests.len(), "{name} seed {seed}: no answer to an unknown request");
            for (&id, node) in &h.nodes {
                assert_eq!(node.open_work(), (0, 0), "{name} seed {seed}: {id} has open work at the end");
                if let Some(cache) = node.cache() {
                    assert_eq!(cache.pinned_objects(), 0, "{name} seed {seed}: {id} leaks pins");
                }
            }
            for rec in &h.log {
                if let Output::Commit { fetch, .. } = rec.output {
                    assert!(
                        h.completed.contains(&(rec.node, fetch)),
                        "{name} seed {seed}: {} committed {fetch:?} without a complete transfer",
                        rec.node
                    );
                }
            }
            assert!(h.responses.len() > 100, "{name} seed {seed}: the history did something");
        }
    }
}
