//! The director sends clients to the closest healthy cache and stops sending them to a dead
//! one within a bounded time.

use reef_core::harness::Harness;
use reef_core::membership::MembershipConfig;
use reef_core::{
    BitRate, Duration, Failure, NamespaceId, Node, NodeConfig, NodeId, ObjectId, ObjectRef, PeerInfo, Request,
    RequestId, RequestKind, Response, Role, SiteId,
};

const DIRECTOR: NodeId = NodeId(0);

fn ask(h: &mut Harness, site: u32, object: u64) -> Response {
    // The harness's client requests carry no site; deliver one with a site directly.
    let id = RequestId(9_000_000 + h.log.len() as u64);
    let req = Request {
        id,
        object: ObjectRef { id: ObjectId(object), namespace: NamespaceId(0), size: None },
        kind: RequestKind::Client,
        client_site: Some(SiteId(site)),
        length: None,
        metadata_only: false,
    };
    h.deliver(DIRECTOR, reef_core::Input::Request(req));
    h.run_for(Duration::from_millis(1));
    h.response(id).expect("the director answers at once").1
}

#[test]
fn clients_go_to_their_site_and_away_from_dead_caches_in_bounded_time() {
    let probe = Duration::from_millis(200);
    let membership = MembershipConfig {
        probe_interval: Some(probe),
        probe_timeout: Duration::from_millis(100),
        suspect_timeout: Duration::from_secs(1),
        ..MembershipConfig::default()
    };
    // Sites 1 and 2 have two caches each; site 2 is the fallback for site 1.
    let caches = [(1, 1), (2, 1), (3, 2), (4, 2)];
    let mut d = NodeConfig::new(DIRECTOR, SiteId(0), Role::Director, 1);
    d.membership = membership.clone();
    d.peers = caches.iter().map(|&(n, s)| PeerInfo::new(NodeId(n), SiteId(s), Role::Cache)).collect();
    d.site_preference.insert(SiteId(1), vec![SiteId(2)]);
    let mut nodes = vec![Node::new(d)];
    for &(n, s) in &caches {
        let mut c = NodeConfig::new(NodeId(n), SiteId(s), Role::Cache, u64::from(n));
        c.membership = membership.clone();
        nodes.push(Node::new(c));
    }
    let mut h = Harness::new(nodes, Duration::from_millis(1), BitRate(1_000_000_000));
    h.run_for(Duration::from_secs(1));

    // Each object sticks to one cache of the client's site.
    let first = ask(&mut h, 1, 7);
    let Response::Redirect { to } = first else { panic!("{first:?}") };
    assert!([NodeId(1), NodeId(2)].contains(&to));
    assert_eq!(ask(&mut h, 1, 7), first, "sticky");
    let spread: std::collections::BTreeSet<NodeId> = (0..40)
        .map(|o| match ask(&mut h, 1, o) {
            Response::Redirect { to } => to,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(spread.len(), 2, "objects spread over the site's two caches: {spread:?}");

    // Kill it: within the bound the director sends that object's clients elsewhere.
    // Bound: each member is probed once per round of (members x period) = 0.8 s, and the missed
    // probe makes it suspect after 3 probe timeouts (0.3 s); the director avoids suspects (it
    // does not wait for the 1 s suspect timeout that declares the cache dead).
    let bound = Duration(4 * probe.as_nanos()) + Duration::from_millis(300);
    h.kill(to);
    let killed_at = h.now();
    let mut moved_at = None;
    while h.now() - killed_at <= bound + Duration::from_secs(1) {
        h.run_for(Duration::from_millis(50));
        if ask(&mut h, 1, 7) != first {
            moved_at = Some(h.now());
            break;
        }
    }
    let moved_at = moved_at.expect("the director moved away from the dead cache");
    assert!(moved_at - killed_at <= bound, "took {}", moved_at - killed_at);
    let other = if to == NodeId(1) { NodeId(2) } else { NodeId(1) };
    assert_eq!(ask(&mut h, 1, 7), Response::Redirect { to: other }, "the other cache of the same site");

    // With the whole site down, the preferred fallback site takes over; with nothing left,
    // a clear failure.
    h.kill(other);
    h.run_for(bound + Duration::from_secs(1));
    let fallback = ask(&mut h, 1, 7);
    assert!(matches!(fallback, Response::Redirect { to } if to == NodeId(3) || to == NodeId(4)), "{fallback:?}");
    h.kill(NodeId(3));
    h.kill(NodeId(4));
    h.run_for(bound + Duration::from_secs(2));
    assert_eq!(ask(&mut h, 1, 7), Response::Fail(Failure::AllSourcesDown));
}
