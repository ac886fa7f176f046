//! Sources that stage (an archive recalling a file from tape, `FetchResult::Staging`): the fill
//! waits and asks the same source again, the fetch timeout does not run meanwhile, later
//! requests join the one fill, and only a source staging for longer than `stage_timeout` is
//! given up on, without being taken for dead.

use crate::common;

use crate::common::{deliver, drain, fetch_of};
use reef_core::cache::{CacheConfig, PolicyKind};
use reef_core::protocol::FetchError;
use reef_core::{
    Duration, Event, FetchId, FetchResult, Input, NamespaceId, Node, NodeConfig, NodeId, Output, RequestKind, Response,
    Role, SiteId, Time,
};

const NS: NamespaceId = NamespaceId(0);
const ARCHIVE: NodeId = NodeId(0);
const SECOND: NodeId = NodeId(1);

fn cache(stage_timeout: Duration) -> Node {
    let mut c = NodeConfig::new(NodeId(5), SiteId(1), Role::Cache, 3);
    c.cache = Some(CacheConfig::new(1 << 20, PolicyKind::Lru));
    c.origins.insert(NS, vec![ARCHIVE, SECOND]);
    c.fetch_timeout = Duration::from_secs(10);
    c.stage_timeout = stage_timeout;
    Node::new(c)
}

fn secs(s: f64) -> Time {
    Time((s * 1e9) as u64)
}

fn ask(node: &mut Node, at: Time, id: u64) -> Vec<Output> {
    common::ask(node, at, (id, 1, NS), RequestKind::Client, false)
}

fn staging(node: &mut Node, at: Time, fetch: FetchId, retry_after: u64) -> Vec<Output> {
    let result = FetchResult::Staging { retry_after: Duration::from_secs(retry_after) };
    node.handle(at, Input::FetchDone { fetch, result });
    drain(node)
}

/// Runs every timer due up to `until`: all outputs, with the time each came at.
fn run_until(node: &mut Node, until: Time) -> Vec<(Time, Output)> {
    let mut out = Vec::new();
    while let Some(at) = node.poll_timeout().filter(|&t| t <= until) {
        node.handle(at, Input::Tick);
        out.extend(drain(node).into_iter().map(|o| (at, o)));
    }
    out
}

fn fetches_from(out: &[(Time, Output)]) -> Vec<(Time, NodeId)> {
    out.iter()
        .filter_map(|(t, o)| match o {
            Output::Fetch { from, .. } => Some((*t, *from)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_staging_source_is_asked_again_and_its_waiters_share_one_recall() {
    let mut node = cache(Duration::from_secs(3600));
    let fetch = fetch_of(&ask(&mut node, secs(0.0), 1)).unwrap();
    let out = staging(&mut node, secs(0.1), fetch, 30);
    let said = Event::Staging { object: reef_core::ObjectId(1), from: ARCHIVE, retry_after: Duration::from_secs(30) };
    assert!(out.contains(&Output::Event(said)), "{out:?}");
    // Another client asks meanwhile: it joins the fill, nothing new is fetched.
    let out = ask(&mut node, secs(5.0), 2);
    assert!(fetch_of(&out).is_none() && out.iter().any(|o| matches!(o, Output::Event(Event::Coalesced { .. }))));
    // Three fetch timeouts pass while waiting: no cancel, no failover; at 30.1 s the same source
    // is asked again, under the same fetch.
    let out = run_until(&mut node, secs(30.1));
    assert!(!out.iter().any(|(_, o)| matches!(o, Output::CancelFetch { .. } | Output::Event(Event::Failover { .. }))));
    assert_eq!(fetches_from(&out), [(secs(30.1), ARCHIVE)]);
    assert!(out.iter().all(|(_, o)| !matches!(o, Output::Fetch { fetch: f, .. } if *f != fetch)));
    // Once staged, one delivery serves both.
    let out = deliver(&mut node, secs(31.0), fetch, 1000, None);
    let served = out.iter().filter(|o| matches!(o, Output::Respond { response: Response::Stream { .. }, .. })).count();
    assert_eq!(served, 2, "{out:?}");
    // The asked-again attempt has its own fetch timeout: a source that then goes quiet is
    // given up on as usual (checked on a second object).
    let fetch = fetch_of(&common::ask(&mut node, secs(100.0), (3, 2, NS), RequestKind::Client, false)).unwrap();
    staging(&mut node, secs(100.0), fetch, 2);
    let out = run_until(&mut node, secs(112.0));
    assert_eq!(fetches_from(&out), [(secs(102.0), ARCHIVE), (secs(112.0), SECOND)]);
}

#[test]
fn the_wait_between_asks_is_bounded_both_ways() {
    for (asked, waited) in [(0, 1), (1, 1), (45, 45), (86_400, 300)] {
        let mut node = cache(Duration::from_secs(3600));
        let fetch = fetch_of(&ask(&mut node, secs(0.0), 1)).unwrap();
        staging(&mut node, secs(0.0), fetch, asked);
        let next = fetches_from(&run_until(&mut node, secs(1000.0))).first().map(|f| f.0);
        assert_eq!(next, Some(secs(waited as f64)), "retry after {asked} s");
    }
}

#[test]
fn a_source_staging_past_stage_timeout_is_left_for_the_next_but_not_taken_for_dead() {
    let mut node = cache(Duration::from_secs(100));
    let fetch = fetch_of(&ask(&mut node, secs(0.0), 1)).unwrap();
    // The archive answers "staging, ask in 30 s" every time: asked at 0, 30, 60, 90 and 120 s.
    let mut asked = vec![secs(0.0)];
    let mut failover = None;
    let mut t = 0.0;
    while failover.is_none() && t < 1000.0 {
        let out = staging(&mut node, secs(t), fetch, 30);
        failover = out.iter().find_map(|o| match o {
            Output::Event(Event::Failover { from, reason, .. }) => Some((*from, *reason)),
            _ => None,
        });
        if failover.is_some() {
            assert_eq!(fetch_of(&out), Some(fetch), "the next source is asked at once");
            assert!(out.iter().any(|o| matches!(o, Output::Fetch { from: SECOND, .. })));
            break;
        }
        let out = run_until(&mut node, secs(t + 30.0));
        asked.extend(fetches_from(&out).into_iter().map(|(at, _)| at));
        t += 30.0;
    }
    assert_eq!(failover, Some((ARCHIVE, FetchError::StagingTimedOut)));
    assert_eq!(asked, [0.0, 30.0, 60.0, 90.0, 120.0].map(secs));
    assert_ne!(node.peer_alive(ARCHIVE), Some(false), "staging is slowness, not death");
}

fn staging_answers(out: &[Output]) -> Vec<(u64, Duration)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Respond { request, response: Response::Staging { retry_after } } => Some((request.0, *retry_after)),
            _ => None,
        })
        .collect()
}

#[test]
fn other_caches_waiting_on_a_staging_fill_are_told_to_ask_again_and_clients_wait() {
    let mut node = cache(Duration::from_secs(3600));
    let child = RequestKind::Child { from: NodeId(9), patience: Duration::from_secs(30) };
    // A child cache's fetch starts the fill; a client joins it.
    let fetch = fetch_of(&common::ask(&mut node, secs(0.0), (1, 1, NS), child, false)).unwrap();
    ask(&mut node, secs(0.0), 2);
    // The origin stages: the child is told to ask again when this node will (in 60 s); the
    // client stays a waiter. Neither is counted as completed.
    let out = staging(&mut node, secs(1.0), fetch, 60);
    assert_eq!(staging_answers(&out), [(1, Duration::from_secs(60))]);
    assert!(!out.iter().any(|o| matches!(o, Output::Event(Event::Completed { .. }))));
    // The child asks again at 21 s: told to come back when this node asks next (61 s).
    let out = common::ask(&mut node, secs(21.0), (3, 1, NS), child, false);
    assert_eq!(staging_answers(&out), [(3, Duration::from_secs(40))]);
    assert!(fetch_of(&out).is_none());
    // A peer's only-if-cached request gets the same answer.
    let peer = RequestKind::Peer { from: NodeId(8) };
    assert_eq!(staging_answers(&common::ask(&mut node, secs(31.0), (4, 1, NS), peer, false)).len(), 1);
    // Once staged, the client is served; a child asking after that is served as usual.
    let out = run_until(&mut node, secs(61.0));
    assert_eq!(fetches_from(&out), [(secs(61.0), ARCHIVE)]);
    let out = deliver(&mut node, secs(62.0), fetch, 1000, None);
    assert!(out.iter().any(|o| matches!(o, Output::Respond { request: reef_core::RequestId(2), .. })));
    assert!(staging_answers(&out).is_empty());
    let out = common::ask(&mut node, secs(70.0), (5, 1, NS), child, false);
    assert!(out.iter().any(|o| matches!(o, Output::Respond { response: Response::Serve { .. }, .. })));
}

#[test]
fn a_fill_given_up_after_staging_is_gone_and_its_client_told() {
    let mut c = NodeConfig::new(NodeId(5), SiteId(1), Role::Cache, 3);
    c.cache = Some(CacheConfig::new(1 << 20, PolicyKind::Lru));
    c.origins.insert(NS, vec![ARCHIVE]);
    c.stage_timeout = Duration::from_secs(60);
    let mut node = Node::new(c);
    let fetch = fetch_of(&ask(&mut node, secs(0.0), 1)).unwrap();
    staging(&mut node, secs(0.0), fetch, 60);
    run_until(&mut node, secs(60.0));
    assert!(node.has_fill(fetch), "still waiting for the archive");
    // Staging for 60 s: given up; with no other source the client is told, and a driver asking
    // `has_fill` learns to end its side of the fill.
    let out = staging(&mut node, secs(60.0), fetch, 60);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Respond { response: Response::Fail(reef_core::protocol::Failure::AllSourcesDown), .. }
    )));
    assert!(!node.has_fill(fetch));
}
