//! The basic request path on the multi-node harness: local hit, origin fetch, coalescing,
//! failover and timeouts, and determinism of the whole run.

use reef_core::cache::{CacheConfig, PolicyKind};
use reef_core::harness::Harness;
use reef_core::{
    BitRate, Duration, Event, Failure, Input, Message, NamespaceId, Node, NodeConfig, NodeId, ObjectId, ObjectRef,
    Output, PeerInfo, Response, Role, SiteId, Source, Time,
};

const NS: NamespaceId = NamespaceId(0);
const ORIGIN: NodeId = NodeId(0);
const BACKUP: NodeId = NodeId(1);
const CACHE: NodeId = NodeId(2);

fn object(n: u64, size: u64) -> ObjectRef {
    ObjectRef { id: ObjectId(n), namespace: NS, size: Some(size) }
}

fn world(seed: u64, origins: &[NodeId]) -> Harness {
    let mut nodes = Vec::new();
    for &o in origins {
        let mut c = NodeConfig::new(o, SiteId(0), Role::Origin, seed ^ u64::from(o.0));
        c.serves = vec![NS];
        nodes.push(Node::new(c));
    }
    let mut c = NodeConfig::new(CACHE, SiteId(1), Role::Cache, seed);
    c.cache = Some(CacheConfig::new(10_000, PolicyKind::Lru));
    c.origins.insert(NS, origins.to_vec());
    c.fetch_timeout = Duration::from_secs(2);
    c.membership.probe_interval = Some(Duration::from_secs(1));
    c.peers = origins.iter().map(|&id| PeerInfo::new(id, SiteId(0), Role::Origin)).collect();
    nodes.push(Node::new(c));
    // 10 ms one way, 8 Mbit/s: 1000 bytes take 1 ms on the wire.
    Harness::new(nodes, Duration::from_millis(10), BitRate(8_000_000))
}

fn served_from(h: &Harness, r: reef_core::RequestId) -> Source {
    match h.response(r) {
        Some((_, Response::Serve { source, .. } | Response::Stream { source, .. })) => source,
        other => panic!("request {r:?} not served: {other:?}"),
    }
}

#[test]
fn miss_goes_to_origin_then_hits_locally() {
    let mut h = world(7, &[ORIGIN]);
    let first = h.request(Time::ZERO, CACHE, object(1, 1000));
    h.run_for(Duration::from_secs(1));
    assert_eq!(served_from(&h, first), Source::Origin { node: ORIGIN });
    // Request at 0, 10 ms to the origin, 10 ms back plus 1 ms of transfer.
    assert_eq!(h.response(first).unwrap().0, Time(21_000_000));

    let second = h.request(h.now(), CACHE, object(1, 1000));
    h.run_for(Duration::from_secs(1));
    assert_eq!(served_from(&h, second), Source::Local);
    assert_eq!(h.fetches_from(ORIGIN, ObjectId(1)), 1);
    assert_eq!(h.node(CACHE).cache().unwrap().used_bytes(), 1000);
}

#[test]
fn concurrent_misses_share_one_fetch() {
    let mut h = world(7, &[ORIGIN]);
    let reqs: Vec<_> = (0..20).map(|i| h.request(Time(i * 1000), CACHE, object(9, 500))).collect();
    h.run_for(Duration::from_secs(1));
    for r in &reqs {
        assert_eq!(served_from(&h, *r), Source::Origin { node: ORIGIN });
    }
    assert_eq!(h.fetches_from(ORIGIN, ObjectId(9)), 1);
    let coalesced = h.events(CACHE).filter(|e| matches!(e, Event::Coalesced { .. })).count();
    assert_eq!(coalesced, 19);
}

#[test]
fn failover_to_the_next_origin_and_clear_failure_when_all_are_down() {
    let mut h = world(7, &[ORIGIN, BACKUP]);
    h.kill(ORIGIN);
    let r = h.request(Time::ZERO, CACHE, object(3, 100));
    h.run_for(Duration::from_secs(5));
    assert_eq!(served_from(&h, r), Source::Origin { node: BACKUP });

    // Cached data survives both origins going away; uncached data fails within the timeout.
    h.kill(BACKUP);
    let start = h.now();
    let cached = h.request(start, CACHE, object(3, 100));
    let uncached = h.request(start, CACHE, object(4, 100));
    h.run_for(Duration::from_secs(10));
    assert_eq!(served_from(&h, cached), Source::Local);
    let (at, resp) = h.response(uncached).expect("uncached request answered");
    assert_eq!(resp, Response::Fail(Failure::AllSourcesDown));
    assert!(at - start <= Duration::from_secs(4), "failed after {}", at - start);
    assert_eq!(h.node(CACHE).peer_alive(ORIGIN), Some(false), "probes noticed the dead origin");
}

#[test]
fn a_fetch_that_never_answers_times_out() {
    let mut h = world(7, &[ORIGIN]);
    h.set_cut(CACHE, ORIGIN, true);
    let r = h.request(Time::ZERO, CACHE, object(5, 100));
    h.run_for(Duration::from_secs(10));
    assert_eq!(h.response(r).unwrap().1, Response::Fail(Failure::AllSourcesDown));
    assert_eq!(h.node(CACHE).cache().unwrap().len(), 0, "a failed fill is never cached");
}

fn run_log(seed: u64) -> Vec<(Time, NodeId, Output)> {
    let mut h = world(seed, &[ORIGIN, BACKUP]);
    for i in 0..200u64 {
        h.request(Time(i * 7_000_000), CACHE, object(i % 23, 300 + (i * 37) % 900));
        if i == 100 {
            h.run_until(Time(i * 7_000_000));
            h.kill(ORIGIN);
        }
    }
    h.run_for(Duration::from_secs(30));
    h.log.into_iter().map(|r| (r.at, r.node, r.output)).collect()
}

#[test]
fn same_seed_same_outputs() {
    let a = run_log(42);
    let b = run_log(42);
    assert!(a.len() > 500, "a meaningful run: {} outputs", a.len());
    assert_eq!(a, b);
    // A different seed changes the probe schedule, so the log differs: the seed is really used.
    assert_ne!(a, run_log(43));
}

#[test]
fn recovered_objects_are_served_and_what_does_not_fit_is_evicted() {
    let mut h = world(7, &[ORIGIN]);
    // The store found two objects on disk; the cache holds 10,000 bytes, so the second
    // (6,000 + 6,000 > 10,000) pushes the first out.
    let a = object(31, 6000);
    let b = object(32, 6000);
    h.deliver(CACHE, reef_core::Input::Recovered { object: a, size: 6000 });
    h.deliver(CACHE, reef_core::Input::Recovered { object: b, size: 6000 });
    h.run_for(Duration::from_millis(1));
    let evicted: Vec<ObjectId> = h
        .log
        .iter()
        .filter_map(|r| match &r.output {
            Output::Evict { object } if r.node == CACHE => Some(*object),
            _ => None,
        })
        .collect();
    assert_eq!(evicted, vec![ObjectId(31)]);
    let r = h.request(h.now(), CACHE, b);
    h.run_for(Duration::from_secs(1));
    assert_eq!(served_from(&h, r), Source::Local);
    assert_eq!(h.fetches_from(ORIGIN, ObjectId(32)), 0);
}

#[test]
fn fetch_timeout_counts_from_the_last_progress() {
    let mut c = NodeConfig::new(CACHE, SiteId(1), Role::Cache, 7);
    c.cache = Some(CacheConfig::new(10_000, PolicyKind::Lru));
    c.origins.insert(NS, vec![ORIGIN]);
    c.fetch_timeout = Duration::from_secs(2);
    let mut node = Node::new(c);
    let drain = |node: &mut Node| std::iter::from_fn(|| node.poll()).collect::<Vec<_>>();
    let at = |ms: u64| Time(ms * 1_000_000);
    let request = reef_core::Request {
        id: reef_core::RequestId(1),
        object: object(1, 1000),
        kind: reef_core::RequestKind::Client,
        client_site: None,
        length: None,
        metadata_only: false,
    };
    node.handle(at(0), reef_core::Input::Request(request));
    let fetch = drain(&mut node)
        .into_iter()
        .find_map(|o| match o {
            Output::Fetch { fetch, .. } => Some(fetch),
            _ => None,
        })
        .expect("a miss fetches from the origin");
    // Bytes keep arriving: the transfer outlives fetch_timeout without being cut.
    for ms in [1500, 3000, 4500] {
        node.handle(at(ms), reef_core::Input::FetchProgress { fetch });
        node.handle(at(ms + 400), reef_core::Input::Tick);
        let cancelled = drain(&mut node).into_iter().any(|o| matches!(o, Output::CancelFetch { .. }));
        assert!(!cancelled, "cancelled at {ms} ms although it was receiving");
    }
    // Then it stalls: two seconds after the last progress it is cut, and with no other source
    // the request fails.
    // The timer set at the start is moved on lazily, each time it fires after progress.
    assert_eq!(node.poll_timeout(), Some(at(5000)));
    node.handle(at(5000), reef_core::Input::Tick);
    assert!(!drain(&mut node).iter().any(|o| matches!(o, Output::CancelFetch { .. })));
    assert_eq!(node.poll_timeout(), Some(at(6500)));
    node.handle(at(6500), reef_core::Input::Tick);
    let out = drain(&mut node);
    assert!(out.iter().any(|o| matches!(o, Output::CancelFetch { fetch: f } if *f == fetch)), "{out:?}");
    assert!(out.iter().any(|o| matches!(o, Output::Respond { response: Response::Fail(Failure::AllSourcesDown), .. })));
}

#[test]
fn worker_nodes_share_among_themselves_before_the_site_cache() {
    const SITE_CACHE: NodeId = NodeId(1);
    let workers = [NodeId(2), NodeId(3), NodeId(4), NodeId(5)];
    let mut o = NodeConfig::new(ORIGIN, SiteId(0), Role::Origin, 1);
    o.serves = vec![NS];
    let mut nodes = vec![Node::new(o)];
    let mut s = NodeConfig::new(SITE_CACHE, SiteId(1), Role::Cache, 2);
    s.cache = Some(CacheConfig::new(100_000, PolicyKind::Lru));
    s.origins.insert(NS, vec![ORIGIN]);
    s.peers = vec![PeerInfo::new(ORIGIN, SiteId(0), Role::Origin)];
    nodes.push(Node::new(s));
    for &w in &workers {
        let mut c = NodeConfig::new(w, SiteId(1), Role::WorkerPeer, u64::from(w.0));
        c.cache = Some(CacheConfig::new(10_000, PolicyKind::Lru));
        c.origins.insert(NS, vec![ORIGIN]);
        c.discovery = reef_core::discovery::DiscoveryConfig::Site { parents: vec![SITE_CACHE] };
        c.peers = workers
            .iter()
            .filter(|&&p| p != w)
            .map(|&p| PeerInfo::new(p, SiteId(1), Role::WorkerPeer))
            .chain([PeerInfo::new(SITE_CACHE, SiteId(1), Role::Cache)])
            .collect();
        nodes.push(Node::new(c));
    }
    let mut h = Harness::new(nodes, Duration::from_millis(1), BitRate(8_000_000_000));
    for n in 0..8u64 {
        let reads: Vec<_> = workers
            .iter()
            .enumerate()
            .map(|(i, &w)| (w, h.request(Time(i as u64 * 50_000_000), w, object(100 + n, 1000))))
            .collect();
        h.run_for(Duration::from_secs(1));
        for (w, r) in reads {
            let source = served_from(&h, r);
            assert!(!matches!(source, Source::Origin { .. }), "worker {w:?} went to the origin for {n}");
        }
        // One worker is the object's home: only it asks the site cache, once, and the site
        // cache asks the origin once.
        let homes: Vec<NodeId> =
            workers.iter().copied().filter(|&w| h.fetches_from(w, ObjectId(100 + n)) > 0).collect();
        assert_eq!(homes.len(), 1, "object {n}: served to the others by {homes:?}");
        assert_eq!(h.fetches_from(SITE_CACHE, ObjectId(100 + n)), 1);
        assert_eq!(h.fetches_from(ORIGIN, ObjectId(100 + n)), 1);
    }
    // The homes spread over the workers (rendezvous hashing), not all on one.
    let homes: std::collections::BTreeSet<NodeId> = (0..8u64)
        .flat_map(|n| workers.iter().map(move |&w| (w, n)))
        .filter(|&(w, n)| h.fetches_from(w, ObjectId(100 + n)) > 0)
        .map(|(w, _)| w)
        .collect();
    assert!(homes.len() >= 2, "homes {homes:?}");
}

#[test]
fn not_found_is_remembered_for_negative_ttl() {
    const MISSING: NamespaceId = NamespaceId(1);
    let mut o = NodeConfig::new(ORIGIN, SiteId(0), Role::Origin, 1);
    o.serves = vec![NS];
    let mut c = NodeConfig::new(CACHE, SiteId(1), Role::Cache, 2);
    c.cache = Some(CacheConfig::new(10_000, PolicyKind::Lru));
    c.origins.insert(MISSING, vec![ORIGIN]);
    c.negative_ttl = Duration::from_secs(60);
    let mut h = Harness::new([Node::new(o), Node::new(c)], Duration::from_millis(10), BitRate(8_000_000));
    let gone = ObjectRef { id: ObjectId(77), namespace: MISSING, size: None };
    let first = h.request(Time::ZERO, CACHE, gone);
    h.run_for(Duration::from_secs(1));
    assert_eq!(h.response(first).unwrap().1, Response::Fail(Failure::NotFound));
    assert_eq!(h.fetches_from(ORIGIN, ObjectId(77)), 1);

    // Within the TTL the answer comes at once, without asking the origin again.
    let start = h.now();
    let again = h.request(start, CACHE, gone);
    h.run_for(Duration::from_secs(1));
    assert_eq!(h.response(again).unwrap(), (start, Response::Fail(Failure::NotFound)));
    assert_eq!(h.fetches_from(ORIGIN, ObjectId(77)), 1);

    // After it, the origin is asked again (the file may have been written since).
    h.run_for(Duration::from_secs(60));
    let later = h.request(h.now(), CACHE, gone);
    h.run_for(Duration::from_secs(1));
    assert_eq!(h.response(later).unwrap().1, Response::Fail(Failure::NotFound));
    assert_eq!(h.fetches_from(ORIGIN, ObjectId(77)), 2);
}

#[test]
fn pruning_the_timers_of_ended_fetches_keeps_the_live_ones() {
    let mut c = NodeConfig::new(CACHE, SiteId(1), Role::Cache, 7);
    c.cache = Some(CacheConfig::new(1 << 30, PolicyKind::Lru));
    c.origins.insert(NS, vec![ORIGIN]);
    c.fetch_timeout = Duration::from_secs(2);
    let mut node = Node::new(c);
    let ms = |ms: u64| Time(ms * 1_000_000);
    let fetch_of = |node: &mut Node, at: Time, n: u64| {
        let request = reef_core::Request {
            id: reef_core::RequestId(n),
            object: object(n, 100),
            kind: reef_core::RequestKind::Client,
            client_site: None,
            length: None,
            metadata_only: false,
        };
        node.handle(at, reef_core::Input::Request(request));
        std::iter::from_fn(|| node.poll())
            .find_map(|o| match o {
                Output::Fetch { fetch, .. } => Some(fetch),
                _ => None,
            })
            .expect("a miss fetches")
    };
    // One fetch stalls while 200 others start and finish (their timers pile up and are pruned).
    let stalled = fetch_of(&mut node, ms(0), 1);
    for n in 2..202 {
        let f = fetch_of(&mut node, ms(n), n);
        node.handle(
            ms(n),
            reef_core::Input::FetchDone {
                fetch: f,
                result: reef_core::FetchResult::Complete { size: 100, validity: None },
            },
        );
        while node.poll().is_some() {}
    }
    // The stalled fetch's timer survived: it is cut at its deadline, and nothing else fires.
    assert_eq!(node.poll_timeout(), Some(ms(2000)));
    node.handle(ms(2000), reef_core::Input::Tick);
    let out: Vec<Output> = std::iter::from_fn(|| node.poll()).collect();
    let cancelled: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::CancelFetch { fetch } => Some(*fetch),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled, vec![stalled]);
}

#[test]
fn a_fill_makes_room_for_its_size_when_its_source_answers() {
    // Capacity 10,000 bytes holds objects 1 (5,000) and 2 (4,000). A fill of 6,000 bytes gets
    // its room when the source's first block is in (1,000 bytes: 1 ms after the 10 ms
    // answer), not once complete (6 ms): object 1, the least recently used, goes then.
    let mut h = world(7, &[ORIGIN]);
    h.first_block = 1000;
    for (n, size) in [(1, 5000), (2, 4000)] {
        h.request(h.now(), CACHE, object(n, size));
        h.run_for(Duration::from_secs(1));
    }
    let start = h.now();
    h.request(start, CACHE, object(3, 6000));
    h.run_for(Duration::from_secs(1));
    let evicted_at = h
        .log
        .iter()
        .find(|r| matches!(r.output, Output::Evict { object } if object == ObjectId(1)))
        .map(|r| r.at)
        .expect("object 1 evicted");
    // Request to the origin (10 ms), its answer back (10 ms), the first 1,000 bytes (1 ms).
    assert_eq!(evicted_at, start + Duration::from_millis(21));
    let cache = h.node(CACHE).cache().unwrap();
    assert_eq!((cache.size_of(ObjectId(3)), cache.size_of(ObjectId(2))), (Some(6000), Some(4000)));
    assert_eq!(cache.reserved_bytes(), 0, "the promise ends with the fill");
}

#[test]
fn an_object_bigger_than_the_cache_passes_through_to_its_readers() {
    // 20,000 bytes into a 10,000-byte cache: no room, so the fill passes through (a window at a
    // time) and is not kept. A client that comes after the start has gone by waits for a fill
    // of its own rather than joining half way.
    let mut h = world(7, &[ORIGIN]);
    h.first_block = 1000;
    let early = h.request(Time::ZERO, CACHE, object(4, 20_000));
    let late = h.request(Time(25_000_000), CACHE, object(4, 20_000));
    h.run_for(Duration::from_secs(1));
    assert!(matches!(h.response(early), Some((_, Response::Stream { size: 20_000, .. }))));
    assert!(h.log.iter().any(|r| r.node == CACHE && matches!(r.output, Output::PassThrough { .. })));
    // The late one is answered by a second fill, after the first ended (10 + 10 + 20 ms).
    let (at, response) = h.response(late).expect("answered");
    assert!(matches!(response, Response::Stream { .. } | Response::Serve { .. }), "{response:?}");
    assert!(at > Time(40_000_000), "answered at {at:?}");
    assert_eq!(h.fetches_from(ORIGIN, ObjectId(4)), 2);
    let cache = h.node(CACHE).cache().unwrap();
    assert_eq!((cache.size_of(ObjectId(4)), cache.reserved_bytes()), (None, 0));
    assert_eq!(h.node(CACHE).open_work(), (0, 0));
}

#[test]
fn a_spoofed_ack_does_not_revive_a_dead_member_and_fake_gossip_is_bounded() {
    let mut h = world(7, &[ORIGIN]);
    h.kill(ORIGIN);
    h.run_for(Duration::from_secs(10));
    assert_eq!(h.node(CACHE).peer_alive(ORIGIN), Some(false), "probes noticed the dead origin");
    // Acks for probes never sent (any sequence number but an open probe's) change nothing.
    for seq in [0, 1, 12_345, u64::MAX] {
        h.deliver(CACHE, Input::Message { from: ORIGIN, msg: Message::Ack { seq, gossip: Vec::new() } });
    }
    h.run_for(Duration::from_millis(1));
    assert_eq!(h.node(CACHE).peer_alive(ORIGIN), Some(false), "a spoofed ack revived the origin");
    // One ping naming 10,000 members adds at most the 64 read from a message.
    let fake: Vec<PeerInfo> = (1000..11_000).map(|i| PeerInfo::new(NodeId(i), SiteId(9), Role::Cache)).collect();
    let before = h.node(CACHE).membership().members().count();
    h.deliver(CACHE, Input::Message { from: NodeId(999), msg: Message::Ping { seq: 1, gossip: fake } });
    h.run_for(Duration::from_millis(1));
    assert_eq!(h.node(CACHE).membership().members().count(), before + 64);
    // The origin, back, answers the next probe (with its sequence number) and is alive again.
    h.revive(ORIGIN);
    h.run_for(Duration::from_secs(200));
    assert_eq!(h.node(CACHE).peer_alive(ORIGIN), Some(true));
}

#[test]
fn a_closed_federation_learns_nobody_from_gossip_and_never_uses_an_unknown_node() {
    let mut c = NodeConfig::new(CACHE, SiteId(1), Role::Cache, 3);
    c.cache = Some(CacheConfig::new(10_000, PolicyKind::Lru));
    c.origins.insert(NS, vec![ORIGIN]);
    c.membership.closed = true;
    c.peers = vec![PeerInfo::new(ORIGIN, SiteId(0), Role::Origin)];
    let mut origin = NodeConfig::new(ORIGIN, SiteId(0), Role::Origin, 4);
    origin.serves = vec![NS];
    let mut h = Harness::new(vec![Node::new(origin), Node::new(c)], Duration::from_millis(10), BitRate(8_000_000));
    let fake: Vec<PeerInfo> = (1000..1100).map(|i| PeerInfo::new(NodeId(i), SiteId(1), Role::Cache)).collect();
    h.deliver(CACHE, Input::Message { from: ORIGIN, msg: Message::Ping { seq: 1, gossip: fake } });
    h.run_for(Duration::from_millis(1));
    let members: Vec<NodeId> = h.node(CACHE).membership().members().map(|m| m.id).collect();
    assert_eq!(members, vec![ORIGIN], "gossip taught a closed federation a member");
    assert!(!h.node(CACHE).membership().usable(NodeId(1000)), "an unknown node is usable");
    assert!(h.node(CACHE).membership().usable(ORIGIN));
}

#[test]
fn a_full_disk_fails_the_fill_here_without_trying_other_sources() {
    let mut c = NodeConfig::new(CACHE, SiteId(1), Role::Cache, 7);
    c.cache = Some(CacheConfig::new(10_000, PolicyKind::Lru));
    c.origins.insert(NS, vec![ORIGIN, BACKUP]);
    let mut node = Node::new(c);
    let drain = |node: &mut Node| std::iter::from_fn(|| node.poll()).collect::<Vec<_>>();
    let request = |id| reef_core::Request {
        id: reef_core::RequestId(id),
        object: object(1, 1000),
        kind: reef_core::RequestKind::Client,
        client_site: None,
        length: None,
        metadata_only: false,
    };
    node.handle(Time::ZERO, Input::Request(request(1)));
    let fetch = drain(&mut node)
        .into_iter()
        .find_map(|o| match o {
            Output::Fetch { fetch, from, .. } if from == ORIGIN => Some(fetch),
            _ => None,
        })
        .expect("a miss fetches from the first origin");
    // The store refuses the first write: the fill is to pass through, then no room comes.
    node.handle(Time(1_000_000), Input::FetchNoSpace { fetch });
    assert!(drain(&mut node).iter().any(|o| matches!(o, Output::PassThrough { fetch: f } if *f == fetch)));
    let gave_up = Time::ZERO + reef_core::NO_ROOM_WAIT;
    let failed = reef_core::FetchResult::Failed(reef_core::FetchError::NoSpace);
    node.handle(gave_up, Input::FetchDone { fetch, result: failed });
    let out = drain(&mut node);
    // The second origin would fill the same full disk: it is not asked, and the client hears
    // why (a 507 from reef-node), which tells it to try another cache.
    assert!(!out.iter().any(|o| matches!(o, Output::Fetch { .. })), "{out:?}");
    assert!(out.iter().any(|o| matches!(o, Output::Respond { response: Response::Fail(Failure::NoSpace), .. })));
    assert!(Failure::NoSpace.client_retries());
    assert_eq!(Failure::NoSpace.fetch_error(), reef_core::FetchError::Refused);
    assert_eq!(node.cache().unwrap().used_bytes(), 0);
    // With room again, the next request fills normally.
    node.handle(gave_up, Input::Request(request(2)));
    assert!(drain(&mut node).iter().any(|o| matches!(o, Output::Fetch { from, .. } if *from == ORIGIN)));
}
