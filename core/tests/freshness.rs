//! Mutable namespaces (`NodeConfig::max_age`): a copy is served for at most `max_age` after it
//! was fetched, then dropped and fetched again; write-once namespaces keep today's behaviour.

mod common;

use common::fetch_of;
use reef_core::cache::{CacheConfig, EvictReason, PolicyKind};
use reef_core::{
    Duration, Event, FetchId, Input, NamespaceId, Node, NodeConfig, NodeId, ObjectId, ObjectRef, Output, RequestId,
    RequestKind, Response, Role, SiteId, Source, Time,
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
            Output::Event(Event::Evicted { object, reason: EvictReason::Expired, .. }) => Some(*object),
            _ => None,
        })
        .collect()
}

#[test]
fn a_copy_is_served_for_max_age_after_its_fetch_then_fetched_again() {
    let mut node = cache();
    // Fetched at 1 s: fresh until 11 s.
    let fetch = fetch_of(&ask(&mut node, secs(0.5), 1, 1, MUTABLE)).unwrap();
    deliver(&mut node, secs(1.0), fetch, Some(1));
    let out = ask(&mut node, secs(10.999), 2, 1, MUTABLE);
    assert!(served_here(&out) && fetch_of(&out).is_none(), "{out:?}");
    node.handle(secs(10.999), Input::ServeDone { request: RequestId(2) });
    // At 11 s the copy is dropped (its file too) and the object fetched again.
    let out = ask(&mut node, secs(11.0), 3, 1, MUTABLE);
    assert_eq!(expired(&out), [ObjectId(1)]);
    assert!(out.iter().any(|o| matches!(o, Output::Evict { object: ObjectId(1) })));
    let fetch = fetch_of(&out).expect("fetched again");
    assert!(!served_here(&out));
    // The new copy counts from its own fetch: fresh until 22 s.
    let out = deliver(&mut node, secs(12.0), fetch, Some(3));
    assert!(out.iter().any(|o| matches!(o, Output::Commit { .. })), "{out:?}");
    assert!(served_here(&ask(&mut node, secs(21.9), 4, 1, MUTABLE)));
    node.handle(secs(21.9), Input::ServeDone { request: RequestId(4) });
    assert_eq!(expired(&ask(&mut node, secs(22.0), 5, 1, MUTABLE)), [ObjectId(1)]);

    // A write-once namespace's copy never goes stale.
    let fetch = fetch_of(&ask(&mut node, secs(0.0), 10, 2, WRITE_ONCE)).unwrap();
    deliver(&mut node, secs(0.0), fetch, Some(10));
    assert!(served_here(&ask(&mut node, secs(100_000.0), 11, 2, WRITE_ONCE)));
}

#[test]
fn a_stale_copy_still_being_sent_stays_until_its_reader_is_done() {
    let mut node = cache();
    let fetch = fetch_of(&ask(&mut node, secs(0.0), 1, 1, MUTABLE)).unwrap();
    deliver(&mut node, secs(0.0), fetch, Some(1));
    // A slow client reads the copy from 9 s on (no ServeDone yet).
    assert!(served_here(&ask(&mut node, secs(9.0), 2, 1, MUTABLE)));
    // At 10 s it is stale: not served, not dropped under its reader; the new fill is served to
    // its waiter but not kept (the old copy still holds the object's place).
    let out = ask(&mut node, secs(10.0), 3, 1, MUTABLE);
    assert!(expired(&out).is_empty() && !served_here(&out));
    let out = deliver(&mut node, secs(10.5), fetch_of(&out).unwrap(), Some(3));
    assert!(out.iter().any(|o| matches!(o, Output::Discard { .. })), "{out:?}");
    // Once the slow client is done, the next request drops the stale copy and fetches again.
    node.handle(secs(11.0), Input::ServeDone { request: RequestId(2) });
    let out = ask(&mut node, secs(11.0), 4, 1, MUTABLE);
    assert_eq!(expired(&out), [ObjectId(1)]);
    let out = deliver(&mut node, secs(11.5), fetch_of(&out).unwrap(), Some(4));
    assert!(out.iter().any(|o| matches!(o, Output::Commit { .. })), "{out:?}");
}

#[test]
fn a_copy_found_on_disk_at_start_is_of_unknown_age_and_fetched_again() {
    let mut node = cache();
    let object = |id, namespace| ObjectRef { id: ObjectId(id), namespace, size: Some(1000) };
    node.handle(secs(0.0), Input::Recovered { object: object(1, MUTABLE), size: 1000 });
    node.handle(secs(0.0), Input::Recovered { object: object(2, WRITE_ONCE), size: 1000 });
    common::drain(&mut node);
    let out = ask(&mut node, secs(0.1), 1, 1, MUTABLE);
    assert_eq!(expired(&out), [ObjectId(1)]);
    assert!(fetch_of(&out).is_some());
    assert!(served_here(&ask(&mut node, secs(0.1), 2, 2, WRITE_ONCE)));
}
