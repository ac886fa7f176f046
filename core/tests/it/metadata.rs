//! Metadata-only requests (a `HEAD`): answered from the store without counting an access, from
//! a fill already in flight, or by the origin (`Response::Describe`), never by a new fill.

use crate::common;

use crate::common::{deliver, fetch_of};
use reef_core::cache::{CacheConfig, PolicyKind};
use reef_core::{
    Duration, Event, Failure, Input, NamespaceId, Node, NodeConfig, NodeId, ObjectId, Output, RequestId, RequestKind,
    Response, Role, SiteId, Source, Time,
};

const NS: NamespaceId = NamespaceId(0);
const ORIGIN: NodeId = NodeId(0);
const BACKUP: NodeId = NodeId(1);
const CACHE: NodeId = NodeId(2);

fn cache() -> Node {
    let mut c = NodeConfig::new(CACHE, SiteId(1), Role::Cache, 7);
    // Room for two objects of 1000 bytes.
    c.cache = Some(CacheConfig::new(2000, PolicyKind::Lru));
    c.origins.insert(NS, vec![ORIGIN, BACKUP]);
    c.fetch_timeout = Duration::from_secs(3);
    Node::new(c)
}

/// Request `id` comes at `id` ms (distinct times: recency is the policy's to judge).
fn at(id: u64) -> Time {
    Time(id * 1_000_000)
}

fn ask(node: &mut Node, id: u64, object: u64, kind: RequestKind, metadata_only: bool) -> Vec<Output> {
    common::ask(node, at(id), (id, object, NS), kind, metadata_only)
}

fn response(out: &[Output]) -> Option<Response> {
    out.iter().find_map(|o| match o {
        Output::Respond { response, .. } => Some(*response),
        _ => None,
    })
}

/// A client's GET of `object` (1000 bytes), filled from the origin and sent.
fn fill(node: &mut Node, id: u64, object: u64) -> Vec<Output> {
    let fetch = fetch_of(&ask(node, id, object, RequestKind::Client, false)).expect("a miss fetches");
    deliver(node, at(id), fetch, 1000, Some(id))
}

#[test]
fn a_cold_head_is_described_by_the_origin_without_a_fill() {
    let mut node = cache();
    let out = ask(&mut node, 1, 1, RequestKind::Client, true);
    assert_eq!(response(&out), Some(Response::Describe { origin: ORIGIN, within: Duration::from_secs(3) }));
    assert_eq!(fetch_of(&out), None, "{out:?}");
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Event(Event::Completed { outcome: Ok(Source::Origin { node: ORIGIN }), .. })))
    );
    // A child (a worker node below this cache) is described the same way; a peer's
    // only-if-cached request is refused as for a GET.
    let child = RequestKind::Child { from: NodeId(9), patience: Duration::from_secs(30) };
    assert!(matches!(response(&ask(&mut node, 2, 1, child, true)), Some(Response::Describe { .. })));
    let peer = RequestKind::Peer { from: NodeId(9) };
    assert_eq!(response(&ask(&mut node, 3, 1, peer, true)), Some(Response::Fail(Failure::NotCached)));
    assert_eq!(node.cache().unwrap().used_bytes(), 0);
}

#[test]
fn a_head_of_a_held_object_is_served_here_without_counting_an_access() {
    let mut node = cache();
    fill(&mut node, 1, 1);
    fill(&mut node, 2, 2);
    // Object 1 is the least recently used. A HEAD of it is answered here...
    let out = ask(&mut node, 3, 1, RequestKind::Client, true);
    assert_eq!(
        response(&out),
        Some(Response::Serve { source: Source::Local, size: Some(1000), fetch: None, pace: None })
    );
    node.handle(at(3), Input::ServeDone { request: RequestId(3) });
    // ... and leaves it the least recently used: a third object evicts it, not object 2 (had
    // the HEAD counted as an access, object 2 would go).
    let out = fill(&mut node, 4, 3);
    let evicted: Vec<ObjectId> = out
        .iter()
        .filter_map(|o| match o {
            Output::Evict { object } => Some(*object),
            _ => None,
        })
        .collect();
    assert_eq!(evicted, [ObjectId(1)]);
}

#[test]
fn a_head_during_a_fill_joins_it() {
    let mut node = cache();
    let fetch = fetch_of(&ask(&mut node, 1, 5, RequestKind::Client, false)).unwrap();
    let out = ask(&mut node, 2, 5, RequestKind::Client, true);
    assert_eq!(fetch_of(&out), None, "no second fetch");
    assert!(out.iter().any(|o| matches!(o, Output::Event(Event::Coalesced { request: RequestId(2), .. }))));
    node.handle(at(2), Input::FetchReceiving { fetch, size: 1000 });
    let out = common::drain(&mut node);
    let streams = out
        .iter()
        .filter(|o| matches!(o, Output::Respond { response: Response::Stream { size: 1000, .. }, .. }))
        .count();
    assert_eq!(streams, 2, "the GET and the HEAD both answered from the fill: {out:?}");
}
