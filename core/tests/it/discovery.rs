//! The cooperative request path on the multi-node harness: every discovery strategy, flash
//! crowds, peers dying mid-transfer, origin outages, partitions, lookup cost and determinism.

use reef_core::cache::{CacheConfig, PolicyKind};
use reef_core::discovery::DiscoveryConfig;
use reef_core::harness::Harness;
use reef_core::{
    BitRate, Duration, Event, Failure, FetchError, NamespaceId, Node, NodeConfig, NodeId, ObjectId, ObjectRef, Output,
    PeerInfo, RequestId, Response, Role, SiteId, Source, Time,
};

const NS: NamespaceId = NamespaceId(0);
const ORIGIN: NodeId = NodeId(0);
const DIRECTORY: NodeId = NodeId(1);
/// One-way latencies: inside a cluster, between clusters, to the origin.
const NEAR: Duration = Duration::from_millis(2);
const FAR: Duration = Duration::from_millis(20);
const ORIGIN_LATENCY: Duration = Duration::from_millis(60);

fn object(n: u64, size: u64) -> ObjectRef {
    ObjectRef { id: ObjectId(n), namespace: NS, size: Some(size) }
}

/// Caches in clusters (cluster `c` holds caches `cache(c, i)`), one origin far from all, and a
/// directory node next to the first cluster.
struct World {
    h: Harness,
    clusters: Vec<Vec<NodeId>>,
}

fn cluster_of(clusters: &[Vec<NodeId>], n: NodeId) -> Option<usize> {
    clusters.iter().position(|c| c.contains(&n))
}

fn world(seed: u64, sizes: &[usize], discovery: DiscoveryConfig, probe: Option<Duration>) -> World {
    world_with(seed, sizes, discovery, probe, |_| {})
}

/// `world`, with every cache's configuration passed through `tweak`.
fn world_with(
    seed: u64,
    sizes: &[usize],
    discovery: DiscoveryConfig,
    probe: Option<Duration>,
    tweak: impl Fn(&mut NodeConfig),
) -> World {
    let mut next = 2u32;
    let clusters: Vec<Vec<NodeId>> = sizes
        .iter()
        .map(|&n| {
            let ids = (next..next + n as u32).map(NodeId).collect();
            next += n as u32;
            ids
        })
        .collect();
    let one_way = {
        let clusters = clusters.clone();
        move |a: NodeId, b: NodeId| -> Duration {
            if a == ORIGIN || b == ORIGIN {
                return ORIGIN_LATENCY;
            }
            let ca = cluster_of(&clusters, a).unwrap_or(0);
            let cb = cluster_of(&clusters, b).unwrap_or(0);
            if ca == cb { NEAR } else { FAR }
        }
    };
    let all_caches: Vec<NodeId> = clusters.iter().flatten().copied().collect();
    let mut nodes = Vec::new();
    let mut origin = NodeConfig::new(ORIGIN, SiteId(0), Role::Origin, seed);
    origin.serves = vec![NS];
    nodes.push(Node::new(origin));
    let mut directory = NodeConfig::new(DIRECTORY, SiteId(1), Role::Director, seed + 1);
    directory.peers = all_caches.iter().map(|&c| PeerInfo::new(c, SiteId(1), Role::Cache)).collect();
    nodes.push(Node::new(directory));
    for &me in &all_caches {
        let site = SiteId(10 + cluster_of(&clusters, me).expect("a cache") as u32);
        let mut c = NodeConfig::new(me, site, Role::Cache, seed ^ u64::from(me.0) << 8);
        c.cache = Some(CacheConfig::new(100_000_000, PolicyKind::Lru));
        c.origins.insert(NS, vec![ORIGIN]);
        c.discovery = discovery.clone();
        c.fetch_timeout = Duration::from_secs(5);
        c.membership.probe_interval = probe;
        c.membership.probe_timeout = Duration::from_millis(200);
        c.peers = all_caches
            .iter()
            .filter(|&&p| p != me)
            .map(|&p| {
                let s = SiteId(10 + cluster_of(&clusters, p).expect("a cache") as u32);
                PeerInfo::new(p, s, Role::Cache).with_rtt(Duration(2 * one_way(me, p).as_nanos()))
            })
            .chain([PeerInfo::new(ORIGIN, SiteId(0), Role::Origin).with_rtt(Duration(2 * ORIGIN_LATENCY.as_nanos()))])
            .chain([PeerInfo::new(DIRECTORY, SiteId(1), Role::Director)
                .with_rtt(Duration(2 * one_way(me, DIRECTORY).as_nanos()))])
            .collect();
        tweak(&mut c);
        nodes.push(Node::new(c));
    }
    // 80 Mbit/s: 1 MB takes 100 ms on the wire.
    let h = Harness::with_latency(nodes, Box::new(one_way), BitRate(80_000_000));
    World { h, clusters }
}

fn source(h: &Harness, r: RequestId) -> Source {
    match h.response(r) {
        Some((_, Response::Serve { source, .. } | Response::Stream { source, .. })) => source,
        other => panic!("request {r:?} not served: {other:?}"),
    }
}

fn read(w: &mut World, at: NodeId, n: u64) -> Source {
    let r = w.h.request(w.h.now(), at, object(n, 1_000_000));
    w.h.run_for(Duration::from_secs(10));
    source(&w.h, r)
}

fn peer_node(s: Source) -> NodeId {
    match s {
        Source::Peer { node, .. } => node,
        other => panic!("expected a peer, got {other:?}"),
    }
}

#[test]
fn dsht_finds_the_closest_holder_first() {
    let dsht = DiscoveryConfig::by_name("dsht").unwrap();
    let mut w = world(1, &[3, 3], dsht, None);
    let (a, b) = (w.clusters[0].clone(), w.clusters[1].clone());
    assert_eq!(read(&mut w, a[0], 7), Source::Origin { node: ORIGIN });
    // A second cache of the same cluster gets it from the first, at level 0, not the origin.
    assert_eq!(read(&mut w, a[1], 7), Source::Peer { node: a[0], level: 0 });
    // The other cluster gets it from a holder in the first (level 1), not the origin...
    let from = read(&mut w, b[0], 7);
    assert!(matches!(from, Source::Peer { level: 1, .. }) && a.contains(&peer_node(from)), "{from:?}");
    // ...and from then on from inside its own cluster.
    assert_eq!(read(&mut w, b[1], 7), Source::Peer { node: b[0], level: 0 });
    assert_eq!(w.h.fetches_from(ORIGIN, ObjectId(7)), 1);
}

/// An origin, a site cache and worker nodes 3 and 4 with the site cache as their parent.
fn site_with_worker_nodes(fetch_timeout: Duration) -> (Harness, NodeId) {
    let mut nodes = Vec::new();
    let mut origin = NodeConfig::new(ORIGIN, SiteId(0), Role::Origin, 1);
    origin.serves = vec![NS];
    nodes.push(Node::new(origin));
    let site_cache = NodeId(2);
    let mut c = NodeConfig::new(site_cache, SiteId(1), Role::Cache, 2);
    c.cache = Some(CacheConfig::new(10_000_000, PolicyKind::Lru));
    c.origins.insert(NS, vec![ORIGIN]);
    c.discovery = DiscoveryConfig::Parent { parents: Vec::new() };
    c.fetch_timeout = fetch_timeout;
    nodes.push(Node::new(c));
    for wn in [3, 4] {
        let mut c = NodeConfig::new(NodeId(wn), SiteId(1), Role::WorkerPeer, u64::from(wn));
        c.cache = Some(CacheConfig::new(10_000_000, PolicyKind::Lru));
        c.origins.insert(NS, vec![ORIGIN]);
        c.discovery = DiscoveryConfig::Parent { parents: vec![site_cache] };
        c.fetch_timeout = fetch_timeout;
        c.peers =
            vec![PeerInfo::new(ORIGIN, SiteId(0), Role::Origin), PeerInfo::new(site_cache, SiteId(1), Role::Cache)];
        nodes.push(Node::new(c));
    }
    (Harness::new(nodes, Duration::from_millis(1), BitRate(80_000_000)), site_cache)
}

#[test]
fn parent_hierarchy_cascades_up_and_serves_siblings() {
    // Worker nodes below a site cache: the parent fetches from the origin once for all.
    let (mut h, site_cache) = site_with_worker_nodes(Duration::from_secs(30));
    let first = h.request(Time::ZERO, NodeId(3), object(5, 1000));
    h.run_for(Duration::from_secs(1));
    let second = h.request(h.now(), NodeId(4), object(5, 1000));
    h.run_for(Duration::from_secs(1));
    assert_eq!(source(&h, first), Source::Peer { node: site_cache, level: 2 });
    assert_eq!(source(&h, second), Source::Peer { node: site_cache, level: 2 });
    assert_eq!(h.fetches_from(ORIGIN, ObjectId(5)), 1);
    assert_eq!(h.fetches_from(site_cache, ObjectId(5)), 2);
}

#[test]
fn each_hop_waits_a_tenth_less_than_the_one_below_so_the_inner_timer_fires_first() {
    // Two equal timers, nested, fire in either order on real machines (each a scheduler tick
    // late): the outer one first made a worker node give up on a site cache that was about to
    // answer. The child tells its patience; the parent waits a tenth less upstream.
    let (mut h, site_cache) = site_with_worker_nodes(Duration::from_secs(2));
    h.set_black_hole(site_cache, ORIGIN, true);
    let r = h.request(Time::ZERO, NodeId(3), object(6, 1000));
    h.run_for(Duration::from_secs(10));
    let patience = |from: NodeId| {
        h.log.iter().find_map(|rec| match rec.output {
            Output::Fetch { from: f, patience, .. } if f == from => Some((rec.node, patience)),
            _ => None,
        })
    };
    assert_eq!(patience(site_cache), Some((NodeId(3), Duration::from_secs(2))));
    assert_eq!(patience(ORIGIN), Some((site_cache, Duration::from_millis(1_800))));
    // The site cache gave up on the origin at 1.801 s and said so; the worker node then read
    // the origin itself (a few 1 ms hops), before its own 2 s were out, and does not blame
    // the site cache, which answered.
    let (at, _) = h.response(r).expect("answered");
    assert!(at >= Time::ZERO + Duration::from_millis(1_801) && at < Time::ZERO + Duration::from_secs(2), "{at:?}");
    assert_eq!(source(&h, r), Source::Origin { node: ORIGIN });
    assert_eq!(h.node(NodeId(3)).peer_alive(site_cache), Some(true));
}

#[test]
fn a_black_hole_above_the_site_cache_does_not_make_its_worker_nodes_bypass_it() {
    // The site cache is alive and holds object 5 while its path to the origin is a black
    // hole: it must not be taken for dead (without probes, nothing would bring it back, and
    // every later read would skip it). (Its shorter patience makes it answer before the
    // worker node's timer here; the rule for a timer that fires first anyway,
    // `FetchError::blames_source`, has its own unit test.)
    let (mut h, site_cache) = site_with_worker_nodes(Duration::from_secs(2));
    let first = h.request(Time::ZERO, NodeId(3), object(5, 1000));
    h.run_for(Duration::from_secs(1));
    assert_eq!(source(&h, first), Source::Peer { node: site_cache, level: 2 });
    h.set_black_hole(site_cache, ORIGIN, true);
    let across = h.request(h.now(), NodeId(3), object(6, 1000));
    h.run_for(Duration::from_micros(2_000_500));
    assert_eq!(h.node(NodeId(3)).peer_alive(site_cache), Some(true), "the site cache is not blamed");
    h.run_for(Duration::from_secs(10));
    // The worker node gave up on the site cache and read the origin itself.
    assert_eq!(source(&h, across), Source::Origin { node: ORIGIN });
    // The other worker node's view is its own; the first one still counts on the site cache:
    // an object the site cache holds comes from there.
    assert_eq!(h.node(NodeId(3)).peer_alive(site_cache), Some(true));
    let again = h.request(h.now(), NodeId(4), object(5, 1000));
    let moved = h.request(h.now(), NodeId(3), object(6, 1000));
    h.run_for(Duration::from_secs(10));
    assert_eq!(source(&h, again), Source::Peer { node: site_cache, level: 2 });
    assert_eq!(source(&h, moved), Source::Local);
    assert_eq!(h.fetches_from(ORIGIN, ObjectId(5)), 1, "what the site cache holds is not fetched again");
}

#[test]
fn rendezvous_gives_each_object_one_home() {
    let mut w = world(3, &[4], DiscoveryConfig::Rendezvous { max_level: 0 }, None);
    let caches = w.clusters[0].clone();
    let sources: Vec<(NodeId, Source)> = caches.iter().map(|&c| (c, read(&mut w, c, 11))).collect();
    // The first reader got it through the home, which fetched it from the origin once; every
    // other cache came to the same home, and the home itself serves it locally.
    let home = peer_node(sources[0].1);
    for &(cache, s) in &sources {
        let expected = if cache == home { Source::Local } else { Source::Peer { node: home, level: 0 } };
        assert_eq!(s, expected, "{sources:?}");
    }
    assert_eq!(w.h.fetches_from(ORIGIN, ObjectId(11)), 1);
    assert_eq!(w.h.fetches_from(home, ObjectId(11)), 3);
}

#[test]
fn directory_points_to_a_registered_holder() {
    let dir = DiscoveryConfig::Directory { directory: DIRECTORY, timeout: Duration::from_secs(1) };
    let mut w = world(4, &[2, 2], dir, None);
    let (a, b) = (w.clusters[0].clone(), w.clusters[1].clone());
    assert_eq!(read(&mut w, b[0], 21), Source::Origin { node: ORIGIN });
    assert_eq!(read(&mut w, a[0], 21), Source::Peer { node: b[0], level: 1 });
    // Two holders now; the closest one is chosen.
    assert_eq!(read(&mut w, a[1], 21), Source::Peer { node: a[0], level: 0 });
    assert_eq!(w.h.fetches_from(ORIGIN, ObjectId(21)), 1);
}

#[test]
fn a_flash_crowd_hits_the_origin_a_bounded_number_of_times() {
    let dsht = DiscoveryConfig::by_name("dsht").unwrap();
    let mut w = world(5, &[25, 25, 25, 25], dsht, None);
    let caches: Vec<NodeId> = w.clusters.iter().flatten().copied().collect();
    let reqs: Vec<(NodeId, RequestId)> =
        caches.iter().map(|&c| (c, w.h.request(Time::ZERO, c, object(99, 1_000_000)))).collect();
    w.h.run_for(Duration::from_secs(60));
    for &(c, r) in &reqs {
        let s = source(&w.h, r);
        assert_ne!(s, Source::Local, "{c} cannot have it locally");
    }
    let origin_fetches = w.h.fetches_from(ORIGIN, ObjectId(99));
    // The bound, 4: every lookup walks to the key's global root, which records the first
    // asker as the fetcher (a claim) and points every later asker at it (or at the first
    // copies); the fetcher lets peers join its fill. A cache goes to the origin itself only if
    // its lookup ends at a node that wrongly believes it is the root, which in the worst case
    // happens once per cluster (4 here) when a cluster's nodes know nothing closer to the key.
    eprintln!("flash crowd of {}: origin served the object {origin_fetches} time(s)", caches.len());
    assert!((1..=4).contains(&origin_fetches), "origin served {origin_fetches} times for 100 caches");
}

/// A 10 MB object (one second on the wire) held by c[0] only; c[1] asks for it and c[0] dies
/// half way through the transfer. Returns the world, c[1] and its request.
fn peer_dies_mid_transfer(stream: bool) -> (World, NodeId, RequestId) {
    let dsht = DiscoveryConfig::by_name("dsht").unwrap();
    let mut w = world_with(6, &[3], dsht, None, |c| c.stream = stream);
    let c = w.clusters[0].clone();
    let big = |n| object(n, 10_000_000);
    let r = w.h.request(Time::ZERO, c[0], big(42));
    w.h.run_for(Duration::from_secs(5));
    assert_eq!(source(&w.h, r), Source::Origin { node: ORIGIN });
    let start = w.h.now();
    let r = w.h.request(start, c[1], big(42));
    w.h.run_until(start + Duration::from_millis(500));
    assert_eq!(w.h.response(r).is_some(), stream, "a stream is answered at the first byte");
    w.h.kill(c[0]);
    w.h.run_for(Duration::from_secs(10));
    let failovers: Vec<&Event> =
        w.h.events(c[1]).filter(|e| matches!(e, Event::Failover { reason: FetchError::Broken, .. })).collect();
    assert_eq!(failovers.len(), 1, "one broken transfer: {failovers:?}");
    assert_eq!(w.h.node(c[1]).cache().unwrap().size_of(ObjectId(42)), Some(10_000_000));
    (w, c[1], r)
}

#[test]
fn a_peer_dying_mid_transfer_fails_over_and_records_the_real_source() {
    // Store and forward: the answer comes after the fill, naming the source that delivered.
    let (w, _, r) = peer_dies_mid_transfer(false);
    assert_eq!(source(&w.h, r), Source::Origin { node: ORIGIN });
}

#[test]
fn a_reader_streaming_from_a_peer_that_dies_resumes_from_the_origin() {
    // Streaming: the answer names the peer the first byte came from; when it dies the reader
    // stays with the fill, which fails over to the origin, and the response is not broken.
    let (w, reader, r) = peer_dies_mid_transfer(true);
    assert!(matches!(
        w.h.response(r),
        Some((_, Response::Stream { source: Source::Peer { .. }, size: 10_000_000, .. }))
    ));
    assert!(!w.h.broken_streams.contains(&(reader, r)), "the reader resumed");
    assert_eq!(w.h.node(reader).open_work(), (0, 0), "no reader or fill left open");
}

#[test]
fn a_stream_whose_every_source_fails_is_broken_not_completed() {
    let mut w = world(7, &[2], DiscoveryConfig::None, None);
    let c = w.clusters[0].clone();
    let r = w.h.request(Time::ZERO, c[0], object(5, 10_000_000));
    w.h.run_for(Duration::from_millis(300));
    assert!(matches!(w.h.response(r), Some((_, Response::Stream { .. }))), "streaming from the origin");
    w.h.kill(ORIGIN);
    w.h.run_for(Duration::from_secs(30));
    assert!(w.h.broken_streams.contains(&(c[0], r)), "no source left: the stream is broken");
    let broken = w.h.events(c[0]).filter(|e| matches!(e, Event::StreamBroken { .. })).count();
    assert_eq!(broken, 1);
    assert_eq!(w.h.node(c[0]).cache().unwrap().size_of(ObjectId(5)), None, "nothing partial is kept");
    assert_eq!(w.h.node(c[0]).open_work(), (0, 0));
}

#[test]
fn with_the_origin_down_cached_objects_are_served_and_others_fail_in_time() {
    let dsht = DiscoveryConfig::by_name("dsht").unwrap();
    let mut w = world(7, &[3], dsht, None);
    let c = w.clusters[0].clone();
    assert_eq!(read(&mut w, c[0], 1), Source::Origin { node: ORIGIN });
    w.h.kill(ORIGIN);
    assert_eq!(read(&mut w, c[0], 1), Source::Local);
    assert_eq!(read(&mut w, c[1], 1), Source::Peer { node: c[0], level: 0 });
    let start = w.h.now();
    let r = w.h.request(start, c[2], object(2, 1000));
    w.h.run_for(Duration::from_secs(30));
    let (at, response) = w.h.response(r).expect("answered");
    assert_eq!(response, Response::Fail(Failure::AllSourcesDown));
    let fetch_timeout = Duration::from_secs(5);
    assert!(at - start <= fetch_timeout, "failed after {}", at - start);
}

#[test]
fn membership_and_pointers_converge_after_a_partition_heals() {
    let dsht = DiscoveryConfig::by_name("dsht").unwrap();
    let mut w = world(8, &[3, 3], dsht, Some(Duration::from_millis(200)));
    let (a, b) = (w.clusters[0].clone(), w.clusters[1].clone());
    w.h.run_for(Duration::from_secs(2));
    for (&x, &y) in a.iter().zip(&b) {
        assert_eq!(w.h.node(x).peer_alive(y), Some(true));
    }
    // Region B is cut off from everything else (SWIM's indirect probes would otherwise vouch
    // for B's caches through any node that still reaches both sides).
    let rest: Vec<NodeId> = a.iter().copied().chain([ORIGIN, DIRECTORY]).collect();
    let cut = |w: &mut World, on: bool| {
        for &x in &rest {
            for &y in &b {
                w.h.set_cut(x, y, on);
            }
        }
    };
    cut(&mut w, true);
    w.h.run_for(Duration::from_secs(10));
    for &x in &a {
        for &y in &b {
            assert_eq!(w.h.node(x).peer_alive(y), Some(false), "{x} sees {y} dead during the partition");
            assert_eq!(w.h.node(y).peer_alive(x), Some(false));
        }
    }
    // Fetched during the partition: only cluster A knows.
    assert_eq!(read(&mut w, a[0], 77), Source::Origin { node: ORIGIN });
    cut(&mut w, false);
    w.h.run_for(Duration::from_secs(10));
    for &x in &a {
        for &y in &b {
            assert_eq!(w.h.node(x).peer_alive(y), Some(true), "{x} sees {y} alive again");
            assert_eq!(w.h.node(y).peer_alive(x), Some(true));
        }
    }
    let from = read(&mut w, b[0], 77);
    assert_eq!(from, Source::Peer { node: a[0], level: 1 }, "B finds A's copy after the heal");
    assert_eq!(w.h.fetches_from(ORIGIN, ObjectId(77)), 1);
}

#[test]
fn dsht_lookups_take_logarithmic_hops() {
    let dsht = DiscoveryConfig::by_name("dsht").unwrap();
    // (mean, max) hops of 300 lookups for fresh objects from spread-out caches.
    let measure = |n: usize| {
        let mut w = world(9, &[n], dsht.clone(), None);
        let caches = w.clusters[0].clone();
        for i in 0..300u64 {
            let at = caches[(i as usize * 7919) % n];
            w.h.request(Time(i * 50_000_000), at, object(1_000 + i, 1000));
        }
        w.h.run_for(Duration::from_secs(60));
        let hops: Vec<u32> =
            w.h.log
                .iter()
                .filter_map(|r| match &r.output {
                    reef_core::Output::Event(Event::Lookup { hops, .. }) => Some(*hops),
                    _ => None,
                })
                .collect();
        assert_eq!(hops.len(), 300);
        let mean = hops.iter().sum::<u32>() as f64 / hops.len() as f64;
        let max = *hops.iter().max().unwrap();
        let log2n = (n as f64).log2();
        eprintln!("dsht over {n} nodes: mean {mean:.2} hops, max {max} (log2 n = {log2n:.1})");
        assert!(mean <= log2n, "{n} nodes: mean {mean} hops exceeds log2(n) = {log2n}");
        assert!(f64::from(max) <= 2.0 * log2n, "{n} nodes: max {max} hops");
        assert!(mean >= 1.0, "lookups must actually walk the table");
        mean
    };
    let (small, large) = (measure(125), measure(1000));
    // Eight times the nodes: logarithmic growth adds about log2(8) / log2(125) = 43% to the
    // mean, linear growth would multiply it by 8. Allow up to twice.
    assert!(large <= 2.0 * small, "hops grew from {small:.2} to {large:.2} for 8x the nodes");
}

fn flash_log(seed: u64) -> Vec<reef_core::harness::Record> {
    let dsht = DiscoveryConfig::by_name("dsht").unwrap();
    let mut w = world(seed, &[5, 5], dsht, Some(Duration::from_millis(300)));
    let caches: Vec<NodeId> = w.clusters.iter().flatten().copied().collect();
    for i in 0..200u64 {
        let at = caches[(i * 13 % caches.len() as u64) as usize];
        w.h.request(Time(i * 20_000_000), at, object(i % 17, 50_000 + i * 1000));
    }
    w.h.run_for(Duration::from_secs(30));
    w.h.log
}

#[test]
fn the_same_seed_gives_the_same_outputs() {
    let a = flash_log(11);
    assert!(a.len() > 1000, "{} outputs", a.len());
    assert_eq!(a, flash_log(11));
    assert_ne!(a, flash_log(12));
}

/// Two sites, each a site cache with one worker node in front (`site` strategy). Worker nodes
/// at both sites read the same object; the second site's cache must find the first site's copy
/// with its own strategy. Returns the origin fetches of that object.
fn worker_fronted_origin_fetches(discovery: DiscoveryConfig) -> usize {
    let caches = [NodeId(2), NodeId(3)];
    let workers = [NodeId(4), NodeId(5)];
    let site = |i: usize| SiteId(10 + i as u32);
    let mut nodes = Vec::new();
    let mut origin = NodeConfig::new(ORIGIN, SiteId(0), Role::Origin, 1);
    origin.serves = vec![NS];
    nodes.push(Node::new(origin));
    let mut directory = NodeConfig::new(DIRECTORY, SiteId(1), Role::Director, 2);
    directory.peers = caches.iter().enumerate().map(|(i, &c)| PeerInfo::new(c, site(i), Role::Cache)).collect();
    nodes.push(Node::new(directory));
    for i in 0..2 {
        let mut c = NodeConfig::new(caches[i], site(i), Role::Cache, 10 + i as u64);
        c.cache = Some(CacheConfig::new(100_000_000, PolicyKind::Lru));
        c.origins.insert(NS, vec![ORIGIN]);
        c.discovery = discovery.clone();
        c.peers = vec![
            PeerInfo::new(caches[1 - i], site(1 - i), Role::Cache).with_rtt(Duration::from_millis(40)),
            PeerInfo::new(workers[i], site(i), Role::WorkerPeer).with_rtt(Duration::from_millis(1)),
            PeerInfo::new(ORIGIN, SiteId(0), Role::Origin).with_rtt(Duration::from_millis(120)),
            PeerInfo::new(DIRECTORY, SiteId(1), Role::Director).with_rtt(Duration::from_millis(40)),
        ];
        nodes.push(Node::new(c));
    }
    for i in 0..2 {
        let mut w = NodeConfig::new(workers[i], site(i), Role::WorkerPeer, 20 + i as u64);
        w.cache = Some(CacheConfig::new(100_000_000, PolicyKind::Lru));
        w.origins.insert(NS, vec![ORIGIN]);
        w.discovery = DiscoveryConfig::Site { parents: vec![caches[i]] };
        w.peers = vec![PeerInfo::new(caches[i], site(i), Role::Cache).with_rtt(Duration::from_millis(1))];
        nodes.push(Node::new(w));
    }
    let mut h = Harness::new(nodes, Duration::from_millis(5), BitRate(80_000_000));
    let first = h.request(Time::ZERO, workers[0], object(42, 1_000_000));
    h.run_for(Duration::from_secs(10));
    let second = h.request(h.now(), workers[1], object(42, 1_000_000));
    h.run_for(Duration::from_secs(10));
    // Both worker nodes are served by their own site cache, whatever it fetched from.
    assert_eq!(source(&h, first), Source::Peer { node: caches[0], level: 0 });
    assert!(matches!(source(&h, second), Source::Peer { node, .. } if node == caches[1]));
    h.fetches_from(ORIGIN, ObjectId(42))
}

#[test]
fn site_caches_behind_worker_nodes_still_discover_each_other() {
    // Regression: a site cache serving a worker node (a `Child` request) skipped discovery for
    // every strategy but `parent`, so dsht and directory made as many origin fetches as `none`.
    assert_eq!(worker_fronted_origin_fetches(DiscoveryConfig::None), 2, "the baseline fetches twice");
    let strategies = [
        DiscoveryConfig::by_name("dsht").unwrap(),
        DiscoveryConfig::Directory { directory: DIRECTORY, timeout: Duration::from_secs(1) },
        DiscoveryConfig::Rendezvous { max_level: 1 },
    ];
    for d in strategies {
        let name = d.name();
        assert_eq!(worker_fronted_origin_fetches(d), 1, "{name}: the second site must find the first's copy");
    }
}
