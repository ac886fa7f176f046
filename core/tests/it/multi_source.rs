//! Multi-source fetch (`NodeConfig::multi_source`): a large object's fill is split, once its
//! size is known, into ranges of whole blocks fetched from several holders at once; the rest of
//! a range whose holder fails or stalls, from the first byte not yet verified, is shared out
//! among the holders left; the fill fails only when every holder has.

use crate::common;

use crate::common::{drain, fetch_of};
use reef_core::node::MultiSource;
use reef_core::protocol::{Failure, FetchError};
use reef_core::{
    Duration, Event, FetchId, FetchKind, FetchResult, Input, NamespaceId, Node, NodeConfig, NodeId, Output, Part,
    RequestId, RequestKind, Response, Role, SiteId, Time,
};

const NS: NamespaceId = NamespaceId(0);
const MB: u64 = 1 << 20;
const ORIGINS: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(3)];

fn cache(origins: &[NodeId]) -> Node {
    let mut c = NodeConfig::new(NodeId(9), SiteId(1), Role::Cache, 7);
    c.cache = Some(reef_core::cache::CacheConfig::new(1 << 30, reef_core::cache::PolicyKind::Lru));
    c.origins.insert(NS, origins.to_vec());
    c.fetch_timeout = Duration::from_secs(3);
    c.multi_source = Some(MultiSource { min_size: 10 * MB, max_sources: 3, block_size: MB });
    Node::new(c)
}

fn secs(s: u64) -> Time {
    Time(s * 1_000_000_000)
}

/// A client asks at 0 s; the first origin answers with `size` bytes: the outputs then.
fn receiving(node: &mut Node, size: u64) -> (FetchId, Vec<Output>) {
    let out = common::ask(node, secs(0), (1, 1, NS), RequestKind::Client, false);
    let fetch = fetch_of(&out).expect("a fetch");
    assert!(out.iter().any(|o| matches!(o, Output::Fetch { from: NodeId(1), .. })));
    node.handle(secs(0), Input::FetchReceiving { fetch, size });
    (fetch, drain(node))
}

/// A part as a client's fill hands it out (patience: the node's `fetch_timeout`, 3 s).
fn part(id: u32, from: NodeId, start: u64, end: u64) -> Part {
    Part { id, from, kind: FetchKind::Origin, start, end, patience: Duration::from_secs(3) }
}

fn handed_on(out: &[Output]) -> Vec<Part> {
    out.iter()
        .filter_map(|o| match o {
            Output::FetchPart { part, .. } => Some(*part),
            _ => None,
        })
        .collect()
}

fn part_done(
    node: &mut Node,
    at: u64,
    fetch: FetchId,
    part: u32,
    result: Result<(), FetchError>,
    reached: u64,
) -> Vec<Output> {
    node.handle(secs(at), Input::PartDone { fetch, part, result, reached });
    drain(node)
}

#[test]
fn a_large_fill_is_split_and_each_range_fails_over_by_itself() {
    let mut node = cache(&ORIGINS);
    let (fetch, out) = receiving(&mut node, 30 * MB);
    let split = out.iter().find_map(|o| match o {
        Output::FetchParts { lead_end, parts, .. } => Some((*lead_end, parts.clone())),
        _ => None,
    });
    assert_eq!(
        split,
        Some((10 * MB, vec![part(1, ORIGINS[1], 10 * MB, 20 * MB), part(2, ORIGINS[2], 20 * MB, 30 * MB)]))
    );
    assert!(out.contains(&Output::Event(Event::Split { object: reef_core::ObjectId(1), parts: 3 })));
    // The client streams from the fill as before.
    assert!(out.iter().any(|o| matches!(o, Output::Respond { response: Response::Stream { .. }, .. })));

    // Origin 2 breaks with 5 MB of its range verified: the other 5 MB are shared out, in whole
    // blocks, between the holders that have not failed (origins 1 and 3, least busy first).
    let out = part_done(&mut node, 1, fetch, 1, Err(FetchError::Broken), 15 * MB);
    assert_eq!(handed_on(&out), [part(3, ORIGINS[0], 15 * MB, 18 * MB), part(4, ORIGINS[2], 18 * MB, 20 * MB)]);
    assert!(out.iter().any(|o| matches!(o, Output::Event(Event::PartFailover { from: NodeId(2), .. }))));
    // The lead finishes its own range; origin 3's first range stalls: after fetch_timeout (3 s
    // from its last progress at 2 s) its rest goes to origin 1, the only holder left.
    part_done(&mut node, 2, fetch, 0, Ok(()), 10 * MB);
    for (at, reached) in [(2, [24, 16, 19]), (4, [24, 17, 20])] {
        for (part, mb) in [2, 3, 4].into_iter().zip(reached) {
            if !(part == 2 && at == 4) {
                node.handle(secs(at), Input::PartProgress { fetch, part, reached: mb * MB });
            }
        }
        if at == 2 {
            node.handle(secs(4), Input::Tick);
            assert!(handed_on(&drain(&mut node)).is_empty(), "not overdue before 5 s");
        }
    }
    node.handle(secs(5), Input::Tick);
    let out = drain(&mut node);
    assert!(out.contains(&Output::CancelPart { fetch, part: 2 }), "{out:?}");
    assert_eq!(handed_on(&out), [part(5, ORIGINS[0], 24 * MB, 30 * MB)]);

    // The driver reports the end once every byte is verified: the object is kept and served.
    part_done(&mut node, 6, fetch, 3, Ok(()), 18 * MB);
    part_done(&mut node, 6, fetch, 4, Ok(()), 20 * MB);
    part_done(&mut node, 7, fetch, 5, Ok(()), 30 * MB);
    node.handle(secs(7), Input::FetchDone { fetch, result: FetchResult::Complete { size: 30 * MB, validity: None } });
    let out = drain(&mut node);
    assert!(out.iter().any(|o| matches!(o, Output::Commit { .. })), "{out:?}");
}

#[test]
fn the_fill_fails_only_when_every_holder_has() {
    let mut node = cache(&ORIGINS[..2]);
    let (fetch, out) = receiving(&mut node, 20 * MB);
    assert!(out.iter().any(|o| matches!(o, Output::FetchParts { .. })));
    let out = part_done(&mut node, 1, fetch, 1, Err(FetchError::Unreachable), 12 * MB);
    assert_eq!(handed_on(&out), [part(2, ORIGINS[0], 12 * MB, 20 * MB)]);
    let out = part_done(&mut node, 2, fetch, 0, Err(FetchError::Broken), 3 * MB);
    assert!(out.contains(&Output::CancelFetch { fetch }), "{out:?}");
    let failed = out.iter().any(|o| {
        matches!(o, Output::Respond { request: RequestId(1), response: Response::Fail(Failure::AllSourcesDown) })
    });
    // (The client was streaming: its response is broken, not failed.)
    assert!(failed || out.iter().any(|o| matches!(o, Output::Event(Event::StreamBroken { .. }))), "{out:?}");
    // Later reports of the ended fill change nothing.
    assert!(part_done(&mut node, 3, fetch, 2, Ok(()), 20 * MB).is_empty());
}

#[test]
fn small_objects_and_lone_holders_are_not_split() {
    let mut node = cache(&ORIGINS);
    let (_, out) = receiving(&mut node, 10 * MB - 1);
    assert!(!out.iter().any(|o| matches!(o, Output::FetchParts { .. })));
    let mut node = cache(&ORIGINS[..1]);
    let (_, out) = receiving(&mut node, 100 * MB);
    assert!(!out.iter().any(|o| matches!(o, Output::FetchParts { .. })));
}

#[test]
fn a_lead_that_fails_before_it_hears_of_the_split_hands_its_range_on() {
    let mut node = cache(&ORIGINS);
    let (fetch, out) = receiving(&mut node, 30 * MB);
    assert!(out.iter().any(|o| matches!(o, Output::FetchParts { .. })));
    // The driver reports the lead's failure as the whole fetch's (it had not seen the split).
    node.handle(secs(1), Input::FetchDone { fetch, result: FetchResult::Failed(FetchError::Broken) });
    let out = drain(&mut node);
    assert_eq!(handed_on(&out), [part(3, ORIGINS[1], 0, 5 * MB), part(4, ORIGINS[2], 5 * MB, 10 * MB)], "{out:?}");
    assert!(!out.iter().any(|o| matches!(o, Output::CancelFetch { .. })));
}
