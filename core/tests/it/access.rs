//! The access decision (`reef_core::access`): every rule from first principles, and the scope
//! parser under random input.

use proptest::prelude::*;
use reef_core::NodeId;
use reef_core::access::{Asker, Claims, Decision, Denial, Issuer, NamespaceAccess, Operation, Scope, decide};

const NOW: u64 = 1_800_000_000;
const ISS: &str = "https://issuer.example";

fn private() -> NamespaceAccess {
    NamespaceAccess {
        private: true,
        issuers: vec![Issuer { issuer: ISS.into(), audiences: vec!["https://cache.example".into(), "reef".into()] }],
        base_path: "/".into(),
        nodes: Some(vec![NodeId(3)]),
    }
}

fn claims(scope: &str) -> Claims {
    Claims {
        issuer: ISS.into(),
        audiences: vec!["reef".into()],
        expires: Some(NOW + 600),
        not_before: Some(NOW - 10),
        scopes: Scope::parse_claim(scope),
    }
}

fn read(rules: &NamespaceAccess, path: &str, c: Option<&Claims>) -> Decision {
    decide(NOW, 60, rules, path, Operation::Read, Asker::Client(c))
}

#[test]
fn a_scope_grants_its_path_and_below_on_whole_segments() {
    let rules = private();
    let c = claims("storage.read:/john");
    let allow = Decision::Allow { until: Some(NOW + 600) };
    assert_eq!(read(&rules, "/john", Some(&c)), allow);
    assert_eq!(read(&rules, "/john/data/f.root", Some(&c)), allow);
    assert_eq!(read(&rules, "/johnathan/f", Some(&c)), Decision::Deny(Denial::NoScope));
    assert_eq!(read(&rules, "/jo", Some(&c)), Decision::Deny(Denial::NoScope));
    assert_eq!(read(&rules, "/", Some(&c)), Decision::Deny(Denial::NoScope));
    // A trailing slash in the scope means the same directory.
    assert_eq!(read(&rules, "/john/x", Some(&claims("storage.read:/john/"))), allow);
    // The root grants everything; SciTokens' `read:` is the same operation.
    assert_eq!(read(&rules, "/a/b", Some(&claims("read:/"))), allow);
}

#[test]
fn scopes_without_a_usable_path_grant_nothing() {
    for word in ["storage.read", "storage.read:", "storage.read:john", "storage.read:/a/../b", "storage.*:/", "openid"]
    {
        assert_eq!(Scope::parse(word), None, "{word}");
    }
    let rules = private();
    assert_eq!(read(&rules, "/a", Some(&claims("storage.read openid compute.read"))), Decision::Deny(Denial::NoScope));
}

#[test]
fn operations_are_not_interchangeable() {
    let rules = private();
    let c = claims("storage.create:/up storage.modify:/mod");
    assert_eq!(read(&rules, "/up/f", Some(&c)), Decision::Deny(Denial::NoScope));
    let create = |p: &str| decide(NOW, 60, &rules, p, Operation::Create, Asker::Client(Some(&c)));
    assert!(matches!(create("/up/f"), Decision::Allow { .. }));
    // modify implies create, not the other way round
    assert!(matches!(create("/mod/f"), Decision::Allow { .. }));
    let modify = decide(NOW, 60, &rules, "/up/f", Operation::Modify, Asker::Client(Some(&c)));
    assert_eq!(modify, Decision::Deny(Denial::NoScope));
}

#[test]
fn time_audience_and_issuer_are_checked() {
    let rules = private();
    let mut c = claims("storage.read:/");
    c.expires = Some(NOW);
    assert_eq!(read(&rules, "/f", Some(&c)), Decision::Deny(Denial::Expired), "exp is strict");
    c.expires = Some(NOW + 1);
    assert!(matches!(read(&rules, "/f", Some(&c)), Decision::Allow { until: Some(t) } if t == NOW + 1));
    c.expires = None;
    assert_eq!(read(&rules, "/f", Some(&c)), Decision::Deny(Denial::BadToken), "exp is required");

    let mut c = claims("storage.read:/");
    c.not_before = Some(NOW + 60);
    assert!(matches!(read(&rules, "/f", Some(&c)), Decision::Allow { .. }), "60 s of skew");
    c.not_before = Some(NOW + 61);
    assert_eq!(read(&rules, "/f", Some(&c)), Decision::Deny(Denial::NotYetValid));
    // A configured skew above the cap is capped.
    assert_eq!(
        decide(NOW, 3600, &rules, "/f", Operation::Read, Asker::Client(Some(&c))),
        Decision::Deny(Denial::NotYetValid)
    );

    let mut c = claims("storage.read:/");
    c.audiences = vec!["https://cache.example/".into(), "ree".into()];
    assert_eq!(read(&rules, "/f", Some(&c)), Decision::Deny(Denial::WrongAudience), "aud is exact");
    let mut c = claims("storage.read:/");
    c.issuer = format!("{ISS}/");
    assert_eq!(read(&rules, "/f", Some(&c)), Decision::Deny(Denial::UnknownIssuer), "iss is exact");
}

#[test]
fn the_base_path_maps_the_namespace_into_the_issuers_paths() {
    let mut rules = private();
    rules.base_path = "/cms".into();
    assert!(matches!(read(&rules, "/store/f", Some(&claims("storage.read:/cms/store"))), Decision::Allow { .. }));
    assert!(matches!(read(&rules, "/store/f", Some(&claims("storage.read:/cms"))), Decision::Allow { .. }));
    assert_eq!(read(&rules, "/store/f", Some(&claims("storage.read:/store"))), Decision::Deny(Denial::NoScope));
    assert_eq!(read(&rules, "/store/f", Some(&claims("storage.read:/cmsx"))), Decision::Deny(Denial::NoScope));
}

#[test]
fn public_namespaces_read_without_tokens_and_nodes_need_the_allow_list() {
    let mut rules = private();
    assert_eq!(read(&rules, "/f", None), Decision::Deny(Denial::NoToken));
    assert_eq!(Denial::NoToken.status(), 401);
    assert_eq!(Denial::NoScope.status(), 403);
    rules.private = false;
    assert_eq!(read(&rules, "/f", None), Decision::Allow { until: None });
    // Writing is never public.
    assert_eq!(decide(NOW, 0, &rules, "/f", Operation::Create, Asker::Client(None)), Decision::Deny(Denial::NoToken));
    assert_eq!(decide(NOW, 0, &rules, "/f", Operation::Read, Asker::Node(NodeId(3))), Decision::Allow { until: None });
    assert_eq!(
        decide(NOW, 0, &rules, "/f", Operation::Read, Asker::Node(NodeId(4))),
        Decision::Deny(Denial::NodeNotAllowed)
    );
    rules.nodes = None;
    assert_eq!(decide(NOW, 0, &rules, "/f", Operation::Read, Asker::Node(NodeId(4))), Decision::Allow { until: None });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    /// Any input: no panic, and a parsed scope's path is clean and absolute.
    #[test]
    fn the_scope_parser_never_panics(claim in "\\PC{0,200}") {
        for s in Scope::parse_claim(&claim) {
            prop_assert!(s.path.starts_with('/'));
            prop_assert!(!s.path.split('/').any(|seg| seg == ".." || seg == "."));
            prop_assert!(s.path == "/" || !s.path.ends_with('/'));
        }
    }

    /// A scope for `/a` never grants a path whose first segment merely starts with `a`.
    #[test]
    fn grants_follow_whole_segments(a in "[a-z]{1,6}", extra in "[a-z0-9]{1,4}", rest in "(/[a-z]{1,4}){0,3}") {
        let rules = private();
        let c = claims(&format!("storage.read:/{a}"));
        let sibling = format!("/{a}{extra}{rest}");
        prop_assert_eq!(read(&rules, &sibling, Some(&c)), Decision::Deny(Denial::NoScope));
        let below = format!("/{a}{rest}");
        let allowed = matches!(read(&rules, &below, Some(&c)), Decision::Allow { .. });
        prop_assert!(allowed, "{} not granted by /{}", below, a);
    }
}
