//! Mutable namespaces (`NodeConfig::max_age`): a copy is served for at most `max_age` after it
//! was fetched; then a request revalidates it with the origin (a conditional fetch): unchanged,
//! it is fresh again and no bytes move; changed, the new version replaces it; no origin
//! answering, the stale copy is served rather than nothing. Write-once namespaces keep
//! today's behaviour.

use crate::common;

use crate::common::fetch_of;
use reef_core::cache::{CacheConfig, EvictReason, PolicyKind};
use reef_core::protocol::{Failure, FetchError};
use reef_core::{
    Duration, Event, FetchId, FetchResult, Input, NamespaceId, Node, NodeConfig, NodeId, ObjectId, ObjectRef, Output,
    RequestId, RequestKind, Response, Role, SiteId, Source, Time,
};

const MUTABLE: NamespaceId = NamespaceId(0);
const WRITE_ONCE: NamespaceId = NamespaceId(1);
const ORIGIN: NodeId = NodeId(0);

fn cache() -> Node {
    let mut c = NodeConfig::new(NodeId(2), SiteId(1), Role::Cache, 7);
    c.cache = Some(CacheConfig::new(1 << 20, PolicyKind::Lru));
    c.origins.insert(MUTABLE, vec![ORIGIN]);
    c.origins.insert(WRITE_ONCE, vec![ORIGIN]);
    c.max_age.insert(MUTABLE, Duration::from_secs(10));
    Node::new(c)
}

fn secs(s: f64) -> Time {
    Time((s * 1e9) as u64)
}

/// A client's GET of `object` at `at`: the outputs.
fn ask(node: &mut Node, at: Time, id: u64, object: u64, ns: NamespaceId) -> Vec<Output> {
    common::ask(node, at, (id, object, ns), RequestKind::Client, false)
}

/// Fetch `fetch` delivers the object (1000 bytes) at `at`; `request` is then sent if given.
fn deliver(node: &mut Node, at: Time, fetch: FetchId, request: Option<u64>) -> Vec<Output> {
    common::deliver(node, at, fetch, 1000, request)
}

fn served_here(out: &[Output]) -> bool {
    out.iter().any(|o| matches!(o, Output::Respond { response: Response::Serve { source: Source::Local, .. }, .. }))
}

fn expired(out: &[Output]) -> Vec<ObjectId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(Event::Expired { object, .. }) => Some(*object),
            _ => None,
        })
        .collect()
}

fn replaced(out: &[Output]) -> Vec<ObjectId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(Event::Evicted { object, reason: EvictReason::Expired, .. }) => Some(*object),
            _ => None,
        })
        .collect()
}

/// The conditional fetch among `out`: (fetch, asked of).
fn revalidation(out: &[Output]) -> Option<(FetchId, NodeId)> {
    out.iter().find_map(|o| match o {
        Output::Fetch { fetch, from, revalidate: true, .. } => Some((*fetch, *from)),
        _ => None,
    })
}

fn done(node: &mut Node, at: Time, fetch: FetchId, result: FetchResult) -> Vec<Output> {
    node.handle(at, Input::FetchDone { fetch, result });
    common::drain(node)
}

#[test]
fn a_stale_copy_is_revalidated_and_an_unchanged_one_moves_no_bytes() {
    let mut node = cache();
    // Fetched at 1 s: fresh until 11 s.
    let fetch = fetch_of(&ask(&mut node, secs(0.5), 1, 1, MUTABLE)).unwrap();
    deliver(&mut node, secs(1.0), fetch, Some(1));
    let out = ask(&mut node, secs(10.999), 2, 1, MUTABLE);
    assert!(served_here(&out) && fetch_of(&out).is_none(), "{out:?}");
    node.handle(secs(10.999), Input::ServeDone { request: RequestId(2) });
    // At 11 s: a conditional fetch from the origin; the request waits, the copy stays.
    let out = ask(&mut node, secs(11.0), 3, 1, MUTABLE);
    assert_eq!(expired(&out), [ObjectId(1)]);
    let (fetch, from) = revalidation(&out).expect("revalidated");
    assert_eq!(from, ORIGIN);
    assert!(!served_here(&out) && replaced(&out).is_empty());
    // A second request meanwhile joins it.
    let out = ask(&mut node, secs(11.1), 4, 1, MUTABLE);
    assert!(fetch_of(&out).is_none() && !served_here(&out));
    // Unchanged: both are served from the copy, which is fresh again for max_age.
    let out = done(&mut node, secs(11.2), fetch, FetchResult::NotModified { validity: None });
    assert!(out.contains(&Output::Event(Event::Revalidated { object: ObjectId(1), modified: false })));
    let served = out
        .iter()
        .filter(|o| matches!(o, Output::Respond { response: Response::Serve { source: Source::Local, .. }, .. }))
        .count();
    assert_eq!(served, 2, "{out:?}");
    assert!(!out.iter().any(|o| matches!(o, Output::Commit { .. } | Output::Evict { .. })));
    for r in [3, 4] {
        node.handle(secs(11.2), Input::ServeDone { request: RequestId(r) });
    }
    let out = ask(&mut node, secs(21.1), 5, 1, MUTABLE);
    assert!(served_here(&out) && fetch_of(&out).is_none(), "fresh until 21.2 s: {out:?}");
    node.handle(secs(21.1), Input::ServeDone { request: RequestId(5) });
    assert!(revalidation(&ask(&mut node, secs(21.2), 6, 1, MUTABLE)).is_some());

    // A write-once namespace's copy never goes stale.
    let fetch = fetch_of(&ask(&mut node, secs(0.0), 10, 2, WRITE_ONCE)).unwrap();
    deliver(&mut node, secs(0.0), fetch, Some(10));
    assert!(served_here(&ask(&mut node, secs(100_000.0), 11, 2, WRITE_ONCE)));
}

#[test]
fn a_changed_object_replaces_the_stale_copy_unless_it_is_still_being_read() {
    let mut node = cache();
    let fetch = fetch_of(&ask(&mut node, secs(0.0), 1, 1, MUTABLE)).unwrap();
    deliver(&mut node, secs(0.0), fetch, Some(1));
    // Stale at 10 s; the origin sends a new version (whole): it replaces the copy.
    let (fetch, _) = revalidation(&ask(&mut node, secs(10.0), 2, 1, MUTABLE)).unwrap();
    let out = deliver(&mut node, secs(10.5), fetch, Some(2));
    assert!(out.contains(&Output::Event(Event::Revalidated { object: ObjectId(1), modified: true })));
    assert_eq!(replaced(&out), [ObjectId(1)]);
    let evict = out.iter().position(|o| matches!(o, Output::Evict { object: ObjectId(1) })).expect("old copy evicted");
    let commit = out.iter().position(|o| matches!(o, Output::Commit { .. })).expect("new copy kept");
    assert!(evict < commit, "the old file goes before the new one takes its place: {out:?}");
    assert!(served_here(&ask(&mut node, secs(20.4), 3, 1, MUTABLE)), "fresh from 10.5 s");

    // A slow client still reads the copy (no ServeDone) when it goes stale at 20.5 s: the new
    // version is served to the request that revalidated, not kept over the one being read.
    let (fetch, _) = revalidation(&ask(&mut node, secs(20.5), 4, 1, MUTABLE)).unwrap();
    let out = deliver(&mut node, secs(21.0), fetch, Some(4));
    assert!(out.iter().any(|o| matches!(o, Output::Discard { .. })), "{out:?}");
    assert!(replaced(&out).is_empty());
    // Once the slow client is done, the next request revalidates again.
    node.handle(secs(22.0), Input::ServeDone { request: RequestId(3) });
    assert!(revalidation(&ask(&mut node, secs(22.0), 5, 1, MUTABLE)).is_some());
}

#[test]
fn without_an_origin_answer_the_stale_copy_is_served_and_a_deleted_object_goes() {
    let mut node = cache();
    let fetch = fetch_of(&ask(&mut node, secs(0.0), 1, 1, MUTABLE)).unwrap();
    deliver(&mut node, secs(0.0), fetch, Some(1));
    // The origin does not answer: after its fetch timeout the stale copy is served.
    let (fetch, _) = revalidation(&ask(&mut node, secs(10.0), 2, 1, MUTABLE)).unwrap();
    let out = done(&mut node, secs(11.0), fetch, FetchResult::Failed(FetchError::Unreachable));
    assert!(out.contains(&Output::Event(Event::ServedStale { request: RequestId(2), object: ObjectId(1) })));
    assert!(served_here(&out), "{out:?}");
    node.handle(secs(11.0), Input::ServeDone { request: RequestId(2) });
    // Still stale: the next request asks again; this time the origin says it is gone.
    let (fetch, _) = revalidation(&ask(&mut node, secs(12.0), 3, 1, MUTABLE)).unwrap();
    let out = done(&mut node, secs(12.1), fetch, FetchResult::Failed(FetchError::NotFound));
    assert_eq!(replaced(&out), [ObjectId(1)]);
    assert!(out.iter().any(|o| matches!(o, Output::Respond { response: Response::Fail(Failure::NotFound), .. })));
}

#[test]
fn a_copy_found_on_disk_at_start_is_of_unknown_age_and_revalidated() {
    let mut node = cache();
    let object = |id, namespace| ObjectRef { id: ObjectId(id), namespace, size: Some(1000) };
    node.handle(secs(0.0), Input::Recovered { object: object(1, MUTABLE), size: 1000 });
    node.handle(secs(0.0), Input::Recovered { object: object(2, WRITE_ONCE), size: 1000 });
    common::drain(&mut node);
    let out = ask(&mut node, secs(0.1), 1, 1, MUTABLE);
    assert_eq!(expired(&out), [ObjectId(1)]);
    assert!(revalidation(&out).is_some());
    assert!(served_here(&ask(&mut node, secs(0.1), 2, 2, WRITE_ONCE)));
}
