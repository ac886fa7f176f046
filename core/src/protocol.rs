//! What goes into and comes out of a core node: the sans-IO contract both drivers implement.
//!
//! The driver feeds [`Input`]s to [`crate::Node::handle`] and drains [`Output`]s with
//! [`crate::Node::poll`]. Control-plane [`Message`]s between nodes are serde types: reef-node
//! sends them over HTTP, reef-sim hands them over after a modelled latency.

use crate::event::Event;
use crate::ids::{NamespaceId, NodeId, ObjectId, SiteId};
use serde::{Deserialize, Serialize};

/// A request, numbered by the driver; unique per node while it is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId(pub u64);

/// A fetch (a transfer into this node), numbered by the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FetchId(pub u64);

/// The object a request or fetch is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub id: ObjectId,
    pub namespace: NamespaceId,
    /// The size when the driver knows it (a simulator's catalog); `None` for a real client.
    pub size: Option<u64>,
}

/// Who is asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RequestKind {
    /// A user or job: the full request path runs.
    Client,
    /// Another Reef node fetching from us: serve only what is here, never cascade (stops loops).
    Peer { from: NodeId },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: RequestId,
    pub object: ObjectRef,
    pub kind: RequestKind,
    /// The client's site, when known (the director uses it to pick a cache).
    pub client_site: Option<SiteId>,
}

/// Why a fetch did not deliver the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FetchError {
    /// The source answered that the object does not exist (authoritative from an origin).
    NotFound,
    /// The source refused (a peer that no longer holds it, or is overloaded).
    Refused,
    /// The source could not be reached.
    Unreachable,
    /// The transfer started and broke (or failed verification): the partial data is discarded.
    Broken,
    /// The source said we are not allowed.
    Unauthorized,
    /// No answer within the fetch timeout (raised by the core itself).
    TimedOut,
}

impl FetchError {
    pub fn name(self) -> &'static str {
        match self {
            FetchError::NotFound => "not_found",
            FetchError::Refused => "refused",
            FetchError::Unreachable => "unreachable",
            FetchError::Broken => "broken",
            FetchError::Unauthorized => "unauthorized",
            FetchError::TimedOut => "timed_out",
        }
    }
}

/// What a driver reports about a fetch it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FetchResult {
    /// The whole object arrived and was verified.
    Complete {
        size: u64,
    },
    Failed(FetchError),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// A client or a peer asks for an object.
    Request(Request),
    /// A control-plane message from another node.
    Message { from: NodeId, msg: Message },
    /// A fetch this node started has ended.
    FetchDone { fetch: FetchId, result: FetchResult },
    /// The driver finished sending a response (releases the object's pin).
    ServeDone { request: RequestId },
    /// The driver could not deliver a message to `peer` (connection refused, partition).
    PeerUnreachable { peer: NodeId },
    /// Time has passed `poll_timeout()`: run due timers.
    Tick,
}

/// Where the bytes of a response come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    /// This node's own store (a cache hit, or an origin serving its namespace).
    Local,
    /// Another cache; `level` is the proximity level it was found at (0 = same site).
    Peer { node: NodeId, level: u8 },
    /// The object's origin server.
    Origin { node: NodeId },
}

/// Why a request could not be served. Every request ends with a response: never a hang.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Failure {
    /// The origin says the object does not exist.
    NotFound,
    /// Every source (peers and origins) failed or timed out.
    AllSourcesDown,
    /// The client may not read this namespace.
    Unauthorized,
    /// A peer asked for something this node does not hold (only-if-cached).
    NotCached,
    /// No origin is configured for the namespace.
    NoOrigin,
}

impl Failure {
    pub fn name(self) -> &'static str {
        match self {
            Failure::NotFound => "not_found",
            Failure::AllSourcesDown => "all_sources_down",
            Failure::Unauthorized => "unauthorized",
            Failure::NotCached => "not_cached",
            Failure::NoOrigin => "no_origin",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Send the object. With `fetch`, the bytes are those of that (completed) fill.
    Serve {
        source: Source,
        size: Option<u64>,
        fetch: Option<FetchId>,
    },
    /// Send the client to another node (a director's answer).
    Redirect {
        to: NodeId,
    },
    Fail(Failure),
}

/// A control-plane message between core nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Liveness probe; the receiver answers with `Ack` carrying the same sequence number.
    Ping {
        seq: u64,
    },
    Ack {
        seq: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Output {
    /// Send a control-plane message.
    Send { to: NodeId, msg: Message },
    /// Fetch an object from another node into a temporary fill, then report `FetchDone`.
    Fetch {
        fetch: FetchId,
        object: ObjectRef,
        from: NodeId,
    },
    /// Abandon a fetch (its result, if any arrives, is ignored).
    CancelFetch { fetch: FetchId },
    /// The completed fill becomes a cached object (rename the temporary into the store).
    Commit { fetch: FetchId, object: ObjectId },
    /// The completed fill is not kept (not admitted); delete it once its readers are done.
    Discard { fetch: FetchId },
    /// Delete a cached object from the store.
    Evict { object: ObjectId },
    /// Answer a request.
    Respond {
        request: RequestId,
        response: Response,
    },
    /// A metrics event: one for every decision.
    Event(Event),
}
