//! The parsers a hostile peer or user reaches first, under many random and mutated inputs
//! (proptest): control-plane messages into a core node of a closed federation, and bearer
//! tokens into the verifier. Nothing may panic; no mutated token may verify as anything but
//! itself; no message may teach the node a member.

use crate::common;

use crate::common::issuer::Issuer;
use proptest::prelude::*;
use reef_core::cache::{CacheConfig, PolicyKind};
use reef_core::{Input, Message, NamespaceId, Node, NodeConfig, NodeId, PeerInfo, Role, SiteId, Time};

fn cache_node() -> Node {
    let mut c = NodeConfig::new(NodeId(2), SiteId(1), Role::Cache, 1);
    c.cache = Some(CacheConfig::new(1 << 20, PolicyKind::Lru));
    c.origins.insert(NamespaceId(0), vec![NodeId(1)]);
    c.membership.closed = true;
    c.membership.probe_interval = Some(reef_core::Duration::from_millis(100));
    c.discovery = reef_core::discovery::DiscoveryConfig::default();
    c.peers = vec![PeerInfo::new(NodeId(1), SiteId(0), Role::Origin), PeerInfo::new(NodeId(3), SiteId(1), Role::Cache)];
    Node::new(c)
}

/// Valid messages as JSON, to mutate.
fn templates() -> Vec<String> {
    let info = |i: u32| PeerInfo::new(NodeId(i), SiteId(i % 3), Role::Cache);
    let msgs = [
        Message::Ping { seq: 1, gossip: vec![info(3), info(77)] },
        Message::Ack { seq: 9, gossip: vec![info(1)] },
        Message::PingReq { seq: 4, target: NodeId(1) },
        Message::IndirectAck { seq: 4, target: NodeId(3) },
    ];
    msgs.iter().map(|m| serde_json::to_string(m).unwrap()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn hostile_messages_never_panic_nor_teach_members(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        noise in proptest::collection::vec(any::<u8>(), 0..64),
        raw in any::<bool>(),
    ) {
        let mut bytes = if raw { noise } else { templates()[which].clone().into_bytes() };
        for (at, byte) in edits {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
        }
        let mut node = cache_node();
        if let Ok(msg) = serde_json::from_slice::<Message>(&bytes) {
            node.handle(Time::ZERO, Input::Message { from: NodeId(3), msg });
            node.handle(Time::ZERO + reef_core::Duration::from_secs(1), Input::Tick);
            while node.poll().is_some() {}
        }
        let mut members: Vec<u32> = node.membership().members().map(|m| m.id.0).collect();
        members.sort_unstable();
        prop_assert_eq!(members, vec![1, 3]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, ..ProptestConfig::default() })]

    /// Random text and mutated good tokens: never a panic, never a different set of claims.
    #[test]
    fn tokens_never_verify_as_something_else(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..4),
        noise in "\\PC{0,300}",
        raw in any::<bool>(),
    ) {
        let (_issuer, runtime, tokens, good, claims) = &*TOKENS;
        let text = if raw {
            noise
        } else {
            let mut chars: Vec<char> = good.chars().collect();
            for (at, c) in edits {
                let i = at.index(chars.len());
                chars[i] = c;
            }
            chars.into_iter().collect()
        };
        if let Ok(got) = runtime.block_on(tokens.verify(&text, common::issuer::now())) {
            prop_assert_eq!(&got, claims, "a mutated token verified with other claims");
        }
    }
}

type Fixture = (Issuer, tokio::runtime::Runtime, reef_node::auth::Tokens, String, reef_core::access::Claims);

static TOKENS: std::sync::LazyLock<Fixture> = std::sync::LazyLock::new(|| {
    let issuer = Issuer::start();
    let config: reef_node::config::Config = reef_node::config::Config::parse(&format!(
            "[node]\nid = 1\nrole = \"director\"\nlisten = \"127.0.0.1:1\"\nsite = \"s\"\n[[sites]]\nname = \"s\"\nid = 0\n{}",
            issuer.config("")
        ))
        .unwrap();
    let tokens = reef_node::auth::Tokens::new(&config.issuers).unwrap();
    let good = issuer.sign("es-1", &issuer.claims("storage.read:/a"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let claims = runtime.block_on(tokens.verify(&good, common::issuer::now())).expect("the good token verifies");
    (issuer, runtime, tokens, good, claims)
});
