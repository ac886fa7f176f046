//! Per-namespace egress limits on a cache node: client responses are admitted at once, held
//! back, or refused with the time after which a retry is admitted; a limited namespace never
//! slows another one; a byte range is charged its length; responses to a fill's waiters are
//! paced too; a reload changes the rate without forgetting what was admitted.
//!
//! The limit is 8 Mbit/s = 1 MB/s: a byte per microsecond, so the times below are byte counts.

use reef_core::cache::{CacheConfig, NamespaceShare, PolicyKind};
use reef_core::shaper::{Pace, RateLimit};
use reef_core::{
    BitRate, Duration, Event, FetchId, FetchResult, Input, NamespaceId, Node, NodeConfig, NodeId, ObjectId, ObjectRef,
    Output, Request, RequestId, RequestKind, Response, Role, SiteId, Time,
};

const ATLAS: NamespaceId = NamespaceId(0);
const CMS: NamespaceId = NamespaceId(1);
const ORIGIN: NodeId = NodeId(0);

fn limit(burst: u64, max_delay_ms: u64) -> RateLimit {
    RateLimit { rate: BitRate(8_000_000), burst, max_delay: Duration::from_millis(max_delay_ms) }
}

fn us(n: u64) -> Time {
    Time(n * 1_000)
}

/// A cache whose CMS egress is limited, holding objects 1..=3 of CMS and 10 of ATLAS
/// (600 kB each).
fn cache(cms: RateLimit) -> Node {
    let mut c = NodeConfig::new(NodeId(1), SiteId(0), Role::Cache, 1);
    c.cache = Some(CacheConfig::new(100_000_000, PolicyKind::Lru));
    c.origins.insert(ATLAS, vec![ORIGIN]);
    c.origins.insert(CMS, vec![ORIGIN]);
    c.egress = vec![(CMS, cms)];
    let mut node = Node::new(c);
    for (id, ns) in [(1, CMS), (2, CMS), (3, CMS), (10, ATLAS)] {
        node.handle(Time::ZERO, Input::Recovered { object: object(id, ns), size: 600_000 });
    }
    while node.poll().is_some() {}
    node
}

fn object(id: u64, namespace: NamespaceId) -> ObjectRef {
    ObjectRef { id: ObjectId(id), namespace, size: None }
}

/// Asks for an object at `now` (`length`: a byte range's) and returns the answer and events.
fn ask(node: &mut Node, now: Time, id: u64, ns: NamespaceId, length: Option<u64>) -> (Response, Vec<Event>) {
    let request = Request {
        id: RequestId(now.0 * 100 + id),
        object: object(id, ns),
        kind: RequestKind::Client,
        client_site: None,
        length,
        metadata_only: false,
    };
    node.handle(now, Input::Request(request));
    let (mut response, mut events) = (None, Vec::new());
    while let Some(out) = node.poll() {
        match out {
            Output::Respond { response: r, .. } => response = Some(r),
            Output::Event(e) => events.push(e),
            _ => {}
        }
    }
    (response.expect("an answer"), events)
}

fn pace(r: &Response) -> Option<Pace> {
    match *r {
        Response::Serve { pace, .. } | Response::Stream { pace, .. } => pace,
        ref other => panic!("not served: {other:?}"),
    }
}

fn throttled(events: &[Event]) -> Vec<(Duration, bool)> {
    events
        .iter()
        .filter_map(|e| match *e {
            Event::Throttled { wait, refused, .. } => Some((wait, refused)),
            _ => None,
        })
        .collect()
}

#[test]
fn responses_queue_behind_the_limit_and_past_the_bound_are_refused() {
    let mut node = cache(limit(0, 1_000));
    let (a, ev) = ask(&mut node, us(0), 1, CMS, None);
    let a = pace(&a).expect("paced");
    assert_eq!((a.start, a.end()), (us(0), us(600_000)));
    assert!(throttled(&ev).is_empty(), "admitted at once");
    // At 0.1 s the first still has 0.5 s to go: the second starts then.
    let (b, ev) = ask(&mut node, us(100_000), 2, CMS, None);
    let b = pace(&b).expect("paced");
    assert_eq!((b.start, b.end()), (us(600_000), us(1_200_000)));
    assert_eq!(throttled(&ev), [(Duration::from_millis(500), false)]);
    // The third would wait 1.1 s, over the 1 s bound: refused, a retry in 0.1 s admitted.
    let (c, ev) = ask(&mut node, us(100_000), 3, CMS, None);
    assert_eq!(c, Response::Throttled { retry_after: Duration::from_millis(100) });
    assert_eq!(throttled(&ev), [(Duration::from_millis(1_100), true)]);
    assert!(ev.iter().any(|e| matches!(e, Event::Completed { outcome: Err(reef_core::Failure::Throttled), .. })));
    // A refused hit holds no pin: only the two admitted responses do.
    assert_eq!(node.cache().unwrap().pinned_objects(), 2);
    // ATLAS has no limit: served at once, whatever CMS's queue.
    let (d, ev) = ask(&mut node, us(100_000), 10, ATLAS, None);
    assert_eq!(pace(&d), None);
    assert!(throttled(&ev).is_empty());
}

#[test]
fn a_byte_range_is_charged_its_length_and_a_head_nothing() {
    let mut node = cache(limit(0, 1_000));
    let (a, _) = ask(&mut node, us(0), 1, CMS, Some(1_000));
    assert_eq!(pace(&a).unwrap().end(), us(1_000));
    let (b, _) = ask(&mut node, us(0), 2, CMS, Some(0));
    assert_eq!(pace(&b).unwrap().start, us(1_000), "after the range ahead of it");
    // The range ahead drained 1 kB, not 600 kB: the next whole object starts at 1 ms.
    let (c, _) = ask(&mut node, us(0), 3, CMS, None);
    assert_eq!((pace(&c).unwrap().start, pace(&c).unwrap().end()), (us(1_000), us(601_000)));
}

#[test]
fn a_fills_waiters_are_paced_when_they_are_answered() {
    let mut node = cache(limit(100_000, 10_000));
    // Object 5 is not cached: the request waits for a fetch from the origin.
    let request = Request {
        id: RequestId(1),
        object: object(5, CMS),
        kind: RequestKind::Client,
        client_site: None,
        length: None,
        metadata_only: false,
    };
    node.handle(us(0), Input::Request(request));
    let mut fetch = None;
    while let Some(out) = node.poll() {
        if let Output::Fetch { fetch: f, .. } = out {
            fetch = Some(f);
        }
    }
    let fetch: FetchId = fetch.expect("a fetch from the origin");
    // The source answers at 0.2 s: the waiter streams, the first 100 kB (the burst) at once.
    node.handle(us(200_000), Input::FetchReceiving { fetch, size: 300_000 });
    let mut answer = None;
    while let Some(out) = node.poll() {
        if let Output::Respond { response, .. } = out {
            answer = Some(response);
        }
    }
    let p = pace(&answer.expect("streamed")).expect("paced");
    assert_eq!((p.start, p.release(100_000), p.end()), (us(200_000), us(200_000), us(400_000)));
    node.handle(
        us(300_000),
        Input::FetchDone { fetch, result: FetchResult::Complete { size: 300_000, validity: None } },
    );
    while node.poll().is_some() {}
}

#[test]
fn a_reload_changes_the_rate_and_keeps_what_was_admitted() {
    let mut node = cache(limit(0, 10_000));
    let (a, _) = ask(&mut node, us(0), 1, CMS, None);
    assert_eq!(pace(&a).unwrap().end(), us(600_000));
    // Twice the rate from now on; the first response keeps its pace.
    let faster = RateLimit { rate: BitRate(16_000_000), ..limit(0, 10_000) };
    let shares: Vec<NamespaceShare> = Vec::new();
    node.set_quotas(us(0), shares.clone(), vec![(CMS, faster)]).unwrap();
    let (b, _) = ask(&mut node, us(0), 2, CMS, None);
    assert_eq!((pace(&b).unwrap().start, pace(&b).unwrap().end()), (us(600_000), us(900_000)));
    // A bad limit is refused and changes nothing; dropping the limit frees the namespace.
    let zero = RateLimit { rate: BitRate(0), ..limit(0, 0) };
    assert!(node.set_quotas(us(0), shares.clone(), vec![(CMS, zero)]).unwrap_err().contains("rate"));
    node.set_quotas(us(0), shares, Vec::new()).unwrap();
    let (c, _) = ask(&mut node, us(0), 3, CMS, None);
    assert_eq!(pace(&c), None);
}

#[test]
fn a_quota_block_written_out_reads_back_the_same() {
    // Tools that generate node files (the lab) write the block; the node must read back the
    // very same limits.
    let text =
        r#"{"share":0.5,"egress":{"rate":"8Gbit/s","burst":"64MiB","max_delay":"2s"},"fill":{"rate":"4Gbit/s"}}"#;
    let quota: reef_core::cache::NamespaceQuota = serde_json::from_str(text).unwrap();
    let written = serde_json::to_string(&quota).unwrap();
    let back: reef_core::cache::NamespaceQuota = serde_json::from_str(&written).unwrap();
    assert_eq!(back, quota, "{written}");
    let egress = quota.egress.unwrap().limit();
    assert_eq!(
        (egress.rate, egress.burst, egress.max_delay),
        (BitRate(8_000_000_000), 64 << 20, Duration::from_secs(2))
    );
    assert_eq!(quota.fill.unwrap().limit().rate, BitRate(4_000_000_000));
    // A limit of nothing is refused with the key that is wrong.
    let zero: reef_core::cache::NamespaceQuota = serde_json::from_str(r#"{"egress":{"rate":"0bit/s"}}"#).unwrap();
    assert!(zero.validate().unwrap_err().contains("`egress`"));
}
