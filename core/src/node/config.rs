//! A core node's configuration: role, store, origins, peers, discovery and timers.

use crate::cache::CacheConfig;
use crate::discovery::DiscoveryConfig;
use crate::ids::{NamespaceId, NodeId, SiteId};
use crate::membership::MembershipConfig;
use crate::peer::{PeerInfo, Role};
use crate::shaper::RateLimit;
use crate::units::Duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeConfig {
    pub id: NodeId,
    pub site: SiteId,
    pub role: Role,
    /// Seed of this node's own random generator.
    pub seed: u64,
    /// The local store (caches and worker-node peers).
    pub cache: Option<CacheConfig>,
    /// Namespaces an origin serves.
    pub serves: Vec<NamespaceId>,
    /// For each namespace, its origins in order of preference.
    pub origins: BTreeMap<NamespaceId, Vec<NodeId>>,
    /// Peers known at start (the seed list); membership gossip finds the rest.
    pub peers: Vec<PeerInfo>,
    pub discovery: DiscoveryConfig,
    pub membership: MembershipConfig,
    /// A fetch that has not completed by then is abandoned and the next source is tried.
    pub fetch_timeout: Duration,
    /// How long a fill waits for a source that keeps answering that it is staging the object
    /// (`FetchResult::Staging`) before it tries the next source. Staging is not idleness: the
    /// fetch timeout does not run while the fill waits to ask again.
    #[serde(default = "default_stage_timeout")]
    pub stage_timeout: Duration,
    /// How long an origin's "not found" is remembered (CoralCDN caches negative results).
    pub negative_ttl: Duration,
    /// Serve waiting requests from a fill as soon as its first block arrives (`Stream`); if
    /// not, they are answered once the whole object is verified (store and forward).
    pub stream: bool,
    /// Bytes of a fill passing through (too big to keep) held at a time, ahead of its readers.
    pub pass_window: u64,
    /// Director: for a client site, the other sites in order of preference (after its own).
    pub site_preference: BTreeMap<SiteId, Vec<SiteId>>,
    /// Cache: namespaces whose egress to clients is limited (`crate::shaper`).
    #[serde(default)]
    pub egress: Vec<(NamespaceId, RateLimit)>,
    /// Cache: namespaces whose objects may be replaced at their origin (not write-once). A copy
    /// is served for at most this long after it was fetched; a request after that fetches the
    /// object again (the stale copy is dropped first). Namespaces not listed are immutable.
    #[serde(default)]
    pub max_age: BTreeMap<NamespaceId, Duration>,
    /// Namespaces whose origin is a third-party HTTP server rather than a Reef origin. Their
    /// objects are fetched from that origin alone (it vouches for no block list, so no other
    /// cache could prove its copy is the origin's) and, unless `immutable`, kept and reused only
    /// as the origin's response headers allow (`crate::http_caching`).
    #[serde(default)]
    pub third_party: BTreeMap<NamespaceId, ThirdParty>,
    /// Split fills of large objects across several holders (`super::parts`); `None`: never.
    #[serde(default)]
    pub multi_source: Option<super::parts::MultiSource>,
}

/// A namespace in front of a third-party HTTP origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThirdParty {
    /// Write-once objects (science data): kept until evicted whatever the headers say.
    pub immutable: bool,
}

/// Two days: a recall queued behind a reprocessing campaign at a Tier-1 can take hours.
pub fn default_stage_timeout() -> Duration {
    Duration::from_secs(2 * 86_400)
}

impl NodeConfig {
    /// A node with no store, no peers, no discovery and default timers.
    pub fn new(id: NodeId, site: SiteId, role: Role, seed: u64) -> Self {
        NodeConfig {
            id,
            site,
            role,
            seed,
            cache: None,
            serves: Vec::new(),
            origins: BTreeMap::new(),
            peers: Vec::new(),
            discovery: DiscoveryConfig::None,
            membership: MembershipConfig::default(),
            fetch_timeout: Duration::from_secs(30),
            stage_timeout: default_stage_timeout(),
            negative_ttl: Duration::from_secs(60),
            stream: true,
            pass_window: 16 << 20,
            site_preference: BTreeMap::new(),
            egress: Vec::new(),
            max_age: BTreeMap::new(),
            third_party: BTreeMap::new(),
            multi_source: None,
        }
    }

    pub fn info(&self) -> PeerInfo {
        PeerInfo::new(self.id, self.site, self.role)
    }
}
