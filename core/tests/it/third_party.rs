//! Namespaces in front of a third-party HTTP origin (`NodeConfig::third_party`): the core
//! fetches their objects from that origin alone, keeps a copy only if the origin's headers
//! allow (`Validity::store`), serves it for `fresh_for`, then revalidates it, and serves it
//! stale when the origin fails only within `on_error_for`. An `immutable` namespace ignores
//! the headers.

use crate::common;

use crate::common::{drain, fetch_of};
use reef_core::discovery::DiscoveryConfig;
use reef_core::http_caching::Validity;
use reef_core::node::ThirdParty;
use reef_core::protocol::{Failure, FetchError};
use reef_core::{
    Duration, Event, FetchId, FetchResult, Input, NamespaceId, Node, NodeConfig, NodeId, Output, PeerInfo, RequestId,
    RequestKind, Response, Role, SiteId, Source, Time,
};

const WEB: NamespaceId = NamespaceId(0);
const ORIGIN: NodeId = NodeId(u32::MAX);
const PARENT: NodeId = NodeId(5);

fn cache(immutable: bool) -> Node {
    let mut c = NodeConfig::new(NodeId(2), SiteId(1), Role::Cache, 7);
    c.cache = Some(reef_core::cache::CacheConfig::new(1 << 20, reef_core::cache::PolicyKind::Lru));
    c.origins.insert(WEB, vec![ORIGIN]);
    c.third_party.insert(WEB, ThirdParty { immutable });
    // A parent that would be asked first for a Reef namespace's object.
    c.peers = vec![PeerInfo::new(PARENT, SiteId(0), Role::Cache)];
    c.discovery = DiscoveryConfig::Parent { parents: vec![PARENT] };
    Node::new(c)
}

fn secs(s: u64) -> Time {
    Time(s * 1_000_000_000)
}

fn ask(node: &mut Node, at: Time, id: u64) -> Vec<Output> {
    common::ask(node, at, (id, 1, WEB), RequestKind::Client, false)
}

/// The fetch among `out`: (fetch, asked of, conditional).
fn fetch(out: &[Output]) -> (FetchId, NodeId, bool) {
    out.iter()
        .find_map(|o| match o {
            Output::Fetch { fetch, from, revalidate, .. } => Some((*fetch, *from, *revalidate)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no fetch in {out:?}"))
}

fn done(node: &mut Node, at: Time, fetch: FetchId, result: FetchResult, sent: u64) -> Vec<Output> {
    node.handle(at, Input::FetchDone { fetch, result });
    let out = drain(node);
    node.handle(at, Input::ServeDone { request: RequestId(sent) });
    out
}

fn complete(validity: Validity) -> FetchResult {
    FetchResult::Complete { size: 1000, validity: Some(validity) }
}

fn valid(fresh: u64, on_error: Option<u64>) -> Validity {
    Validity {
        store: true,
        fresh_for: Duration::from_secs(fresh),
        on_error_for: on_error.map(|s| if s == u64::MAX { Duration::MAX } else { Duration::from_secs(s) }),
    }
}

fn served_here(out: &[Output]) -> bool {
    out.iter().any(|o| matches!(o, Output::Respond { response: Response::Serve { source: Source::Local, .. }, .. }))
}

#[test]
fn objects_come_from_the_origin_alone_and_stay_fresh_as_long_as_it_says() {
    let mut node = cache(false);
    let out = ask(&mut node, secs(0), 1);
    // Not the parent: no other cache's copy can be checked against a third-party origin.
    assert_eq!(fetch(&out).1, ORIGIN);
    let out = done(&mut node, secs(1), fetch(&out).0, complete(valid(60, Some(u64::MAX))), 1);
    assert!(out.iter().any(|o| matches!(o, Output::Commit { .. })));
    assert!(served_here(&ask(&mut node, secs(60), 2)), "fresh until 61 s");
    node.handle(secs(60), Input::ServeDone { request: RequestId(2) });
    let out = ask(&mut node, secs(61), 3);
    assert_eq!(fetch(&out), (fetch(&out).0, ORIGIN, true), "revalidated at 61 s");
    // The 304's headers give a new lifetime: 10 s from its arrival at 62 s.
    let out = done(&mut node, secs(62), fetch(&out).0, FetchResult::NotModified { validity: Some(valid(10, None)) }, 3);
    assert!(served_here(&out));
    assert!(served_here(&ask(&mut node, secs(71), 4)));
    node.handle(secs(71), Input::ServeDone { request: RequestId(4) });
    assert!(fetch(&ask(&mut node, secs(72), 5)).2);
}

#[test]
fn a_response_that_may_not_be_stored_is_served_and_discarded() {
    let mut node = cache(false);
    let out = ask(&mut node, secs(0), 1);
    let no_store = Validity { store: false, ..valid(3600, Some(u64::MAX)) };
    let out = done(&mut node, secs(1), fetch(&out).0, complete(no_store), 1);
    assert!(out.contains(&Output::Event(Event::NotStorable { object: reef_core::ObjectId(1), size: 1000 })));
    assert!(out.iter().any(|o| matches!(o, Output::Discard { .. })), "{out:?}");
    assert!(out.iter().any(|o| matches!(o, Output::Respond { response: Response::Serve { .. }, .. })));
    // The next request fetches it again, unconditionally.
    assert!(!fetch(&ask(&mut node, secs(2), 2)).2);
}

/// Fetched at 0 s with `validity`; the origin fails the revalidation at `at`: was the stale
/// copy served?
fn served_stale_at(validity: Validity, at: u64) -> bool {
    let mut node = cache(false);
    let out = ask(&mut node, secs(0), 1);
    done(&mut node, secs(0), fetch(&out).0, complete(validity), 1);
    let out = ask(&mut node, secs(at), 2);
    let (f, _, conditional) = fetch(&out);
    assert!(conditional);
    let out = done(&mut node, secs(at), f, FetchResult::Failed(FetchError::Unreachable), 2);
    let failed =
        out.iter().any(|o| matches!(o, Output::Respond { response: Response::Fail(Failure::AllSourcesDown), .. }));
    assert_ne!(served_here(&out), failed, "{out:?}");
    served_here(&out)
}

#[test]
fn stale_copies_stand_in_for_a_failed_origin_only_as_its_headers_allow() {
    // No directive: for as long as the origin is away.
    assert!(served_stale_at(valid(10, Some(u64::MAX)), 100_000));
    // must-revalidate (and its kin): never once stale.
    assert!(!served_stale_at(valid(10, None), 10));
    // stale-if-error: up to its bound (here 40 s from arrival), not after.
    assert!(served_stale_at(valid(10, Some(40)), 40));
    assert!(!served_stale_at(valid(10, Some(40)), 41));
}

#[test]
fn an_immutable_namespace_ignores_the_headers() {
    let mut node = cache(true);
    let out = ask(&mut node, secs(0), 1);
    assert_eq!(fetch(&out).1, ORIGIN);
    let never = Validity { store: false, ..valid(0, None) };
    let out = done(&mut node, secs(1), fetch(&out).0, complete(never), 1);
    assert!(out.iter().any(|o| matches!(o, Output::Commit { .. })));
    assert!(served_here(&ask(&mut node, secs(1_000_000), 2)));
    assert!(fetch_of(&ask(&mut node, secs(1_000_001), 3)).is_none());
}
