//! Who a node is to the others: its role and what a node knows of a peer. Below `node`,
//! `discovery`, `membership` and `protocol`, which all speak of peers.

use crate::ids::{NodeId, SiteId};
use crate::units::Duration;
use serde::{Deserialize, Serialize};

/// What a node does for the deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Holds the master copy of its namespaces.
    Origin,
    /// A site's caching proxy.
    Cache,
    /// Sends each client to a close, healthy cache; keeps the directory's catalogue.
    Director,
    /// A small cache on a worker node that shares with the other workers of its site.
    WorkerPeer,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "origin" => Ok(Role::Origin),
            "cache" => Ok(Role::Cache),
            "director" => Ok(Role::Director),
            "worker_peer" | "worker-peer" => Ok(Role::WorkerPeer),
            _ => Err(format!("unknown role `{s}`; expected origin, cache, director or worker_peer")),
        }
    }
}

/// Another node, as this one knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PeerInfo {
    pub id: NodeId,
    pub site: SiteId,
    pub role: Role,
    /// Expected round-trip time, used for proximity until probes have measured it.
    #[serde(default)]
    pub rtt_hint: Option<Duration>,
}

impl PeerInfo {
    pub fn new(id: NodeId, site: SiteId, role: Role) -> Self {
        PeerInfo { id, site, role, rtt_hint: None }
    }
    pub fn with_rtt(mut self, rtt: Duration) -> Self {
        self.rtt_hint = Some(rtt);
        self
    }
}
