//! What goes into and comes out of a core node: the sans-IO contract both drivers implement.
//!
//! The driver feeds [`Input`]s to [`crate::Node::handle`] and drains [`Output`]s with
//! [`crate::Node::poll`]. Control-plane [`Message`]s between nodes are serde types: reef-node
//! sends them over HTTP, reef-sim hands them over after a modelled latency.

use crate::event::Event;
use crate::http_caching::Validity;
use crate::ids::{NamespaceId, NodeId, ObjectId, SiteId};
use crate::peer::PeerInfo;
use crate::shaper::Pace;
use crate::units::Duration;
use serde::{Deserialize, Serialize};

/// How long a driver waits for a peer to accept a control-plane [`Message`] before it tells
/// the core [`Input::PeerUnreachable`]. A path that loses everything (a cut link) is noticed
/// only this way.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a fetch waits for one node's block list before it asks the next one (the
/// namespace's origins in order, then the source itself).
pub const BLOCK_LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a fill whose store is full waits for room (bytes its readers are done with being
/// freed) before its driver reports [`FetchError::NoSpace`].
pub const NO_ROOM_WAIT: Duration = Duration::from_secs(10);

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
    /// Another Reef node fetching from us: serve only what is here (or already being filled
    /// here), never cascade to other sources (stops loops).
    Peer { from: NodeId },
    /// A child in a hierarchy (a worker node below its site cache, a cache asking an object's
    /// rendezvous home): run the request path, but never hand the request back down to `from`.
    /// `patience`: how long the child waits without progress before it gives up on us
    /// ([`patience_for_child`] bounds how long we wait on our own sources for it).
    Child { from: NodeId, patience: Duration },
}

/// How a fetch asks its source, which decides the `RequestKind` the source's core sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FetchKind {
    /// Only-if-cached from a peer cache (`RequestKind::Peer`).
    Peer,
    /// From a parent or home cache that fetches upstream if it must (`RequestKind::Child`).
    Parent,
    /// From the object's origin (`RequestKind::Peer`: the origin serves its own namespace).
    Origin,
}

impl FetchKind {
    /// The contract between two cores: what the source's core sees when `requester` fetches
    /// with this kind. Every driver and the harness call this; none re-derives it.
    /// `patience`: the requester's fetch timeout for this attempt (`Output::Fetch`).
    pub fn request_kind(self, requester: NodeId, patience: Duration) -> RequestKind {
        match self {
            FetchKind::Parent => RequestKind::Child { from: requester, patience },
            FetchKind::Peer | FetchKind::Origin => RequestKind::Peer { from: requester },
        }
    }
}

/// How long a node waits without progress on its own source for a child that waits
/// `child` on it: at most its own `fetch_timeout`, and a tenth less than the child, but never
/// under half its own (a child, misconfigured or hostile, cannot make a parent judge its
/// sources, origins included, on a much shorter wait than its operator chose). Of two
/// nested timers the inner one then fires first, with time left to fail over and answer,
/// whatever order two equal timers would fire in on real machines (where each runs late by up
/// to a scheduler tick). Equal timers made the drivers disagree: the simulator fired the inner
/// one first, real nodes either one, and a child gave up on a parent that was about to answer.
pub fn patience_for_child(own: Duration, child: Duration) -> Duration {
    own.min(Duration(child.0 / 10 * 9)).max(Duration(own.0 / 2))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: RequestId,
    pub object: ObjectRef,
    pub kind: RequestKind,
    /// The client's site, when known (the director uses it to pick a cache).
    pub client_site: Option<SiteId>,
    /// The most bytes the client will read, when it asked for a byte range of known length
    /// (`None`: the whole object). An egress limit charges the response this much.
    #[serde(default)]
    pub length: Option<u64>,
    /// Only the object's metadata is wanted (a `HEAD`, a stat): answered from the store, from a
    /// fill already in flight, or by the origin (`Response::Describe`), never by a new fill.
    #[serde(default)]
    pub metadata_only: bool,
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
    /// The source kept answering that it is bringing the object online (`FetchResult::Staging`)
    /// for longer than `NodeConfig::stage_timeout` (raised by the core itself).
    StagingTimedOut,
    /// This node's store has no room for the fill, not even passing through, and none came
    /// within [`NO_ROOM_WAIT`]: the problem is here, so no other source is tried.
    NoSpace,
}

impl FetchError {
    /// Whether this failure of a fetch from `from` says that `from` itself is unreachable. A
    /// cache that took the request but did not answer in time may be waiting on its own
    /// source (a cut link upstream, a stalled transfer; its shorter patience,
    /// [`patience_for_child`], makes it answer first in most cases, not all). Blaming it would make its children bypass a healthy cache,
    /// and what it holds, until it is heard from again; an origin has no source to wait on.
    pub fn blames_source(self, from_origin: bool) -> bool {
        match self {
            FetchError::Unreachable => true,
            FetchError::TimedOut => from_origin,
            _ => false,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FetchError::NotFound => "not_found",
            FetchError::Refused => "refused",
            FetchError::Unreachable => "unreachable",
            FetchError::Broken => "broken",
            FetchError::Unauthorized => "unauthorized",
            FetchError::TimedOut => "timed_out",
            FetchError::StagingTimedOut => "staging_timed_out",
            FetchError::NoSpace => "no_space",
        }
    }
}

/// A range of an object fetched from one holder, as part of a split fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub id: u32,
    pub from: NodeId,
    pub kind: FetchKind,
    /// Bytes `start..end` of the object (whole blocks, but for the object's last).
    pub start: u64,
    pub end: u64,
    /// How long without progress before the part is handed on (its fill's patience).
    pub patience: Duration,
}

/// What a driver reports about a fetch it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FetchResult {
    /// The whole object arrived and was verified. `validity`: what a third-party origin's
    /// response headers allow (`crate::http_caching`); `None` from Reef nodes.
    Complete {
        size: u64,
        validity: Option<Validity>,
    },
    Failed(FetchError),
    /// A conditional fetch (`Output::Fetch { revalidate: true }`): the copy held here is still
    /// the origin's current version. Nothing was received. `validity`: as for `Complete`, from
    /// the answer's headers merged over the stored ones.
    NotModified {
        validity: Option<Validity>,
    },
    /// The source holds the object on slow media (an archive's tape) and is bringing it online:
    /// not an error and not a sign of a dead source. The core asks the same source again after
    /// `retry_after` (bounded, see `Node`), for up to `NodeConfig::stage_timeout`.
    Staging {
        retry_after: Duration,
    },
}

impl From<FetchError> for FetchResult {
    fn from(e: FetchError) -> Self {
        FetchResult::Failed(e)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// A client or a peer asks for an object.
    Request(Request),
    /// A control-plane message from another node.
    Message { from: NodeId, msg: Message },
    /// A fetch this node started has ended.
    FetchDone { fetch: FetchId, result: FetchResult },
    /// The source of a fetch answered: the object has `size` bytes and its first block has
    /// arrived (verified where the driver verifies blocks). Readers may stream from now on,
    /// and it counts as progress.
    FetchReceiving { fetch: FetchId, size: u64 },
    /// The store ran out of space under a fill (the disk holds more than the cache knows of):
    /// the core lets it pass through (`PassThrough`) and does not keep it.
    FetchNoSpace { fetch: FetchId },
    /// A fetch is still receiving bytes: its `fetch_timeout` counts from now. A driver that
    /// never reports progress makes `fetch_timeout` a bound on the whole transfer.
    FetchProgress { fetch: FetchId },
    /// The driver finished sending a response (releases the object's pin).
    ServeDone { request: RequestId },
    /// The driver could not deliver a message to `peer` (connection refused, partition).
    PeerUnreachable { peer: NodeId },
    /// The store cannot produce this object intact (its file is missing, truncated, or failed
    /// verification): the core drops it (`Evict`), and the next request fetches it afresh.
    Lost { object: ObjectId },
    /// The store already holds this complete, verified object (found on disk at start-up).
    /// The cache engine decides whether it stays: if not, the node answers `Evict`.
    Recovered { object: ObjectRef, size: u64 },
    /// A part of a split fill (`Output::FetchParts`) has verified its range up to `reached`
    /// (exclusive); counts as that part's progress.
    PartProgress { fetch: FetchId, part: u32, reached: u64 },
    /// A part of a split fill ended: its whole range verified, or failed with the bytes up to
    /// `reached` verified (the rest of its range is handed to another holder).
    PartDone { fetch: FetchId, part: u32, result: Result<(), FetchError>, reached: u64 },
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
    /// The node's disk had no room for the object (HTTP 507).
    NoSpace,
    /// The namespace's egress limit would hold the response back too long (HTTP 503, see
    /// `Response::Throttled`).
    Throttled,
}

impl Failure {
    /// The contract between two cores: what the requester's fetch fails with when its source
    /// answered with this failure. Only "no such object" and "not allowed" end the fill; any
    /// other refusal makes the requester fail over to its next source.
    pub fn fetch_error(self) -> FetchError {
        match self {
            Failure::NotFound => FetchError::NotFound,
            Failure::Unauthorized => FetchError::Unauthorized,
            Failure::AllSourcesDown
            | Failure::NotCached
            | Failure::NoOrigin
            | Failure::NoSpace
            | Failure::Throttled => FetchError::Refused,
        }
    }

    /// Whether a client (`reef get`) tries its next source after this answer: after every
    /// failure but "no such object" and "not authorized", which another cache would give too.
    pub fn client_retries(self) -> bool {
        !matches!(self, Failure::NotFound | Failure::Unauthorized)
    }

    /// How long a client waits before its attempt number `attempt` (0 for the first): 100 ms
    /// more per attempt, at most 1 s (a director needs a moment to notice that a cache died).
    pub fn client_backoff(attempt: u32) -> crate::Duration {
        crate::Duration::from_millis(100 * u64::from(attempt.min(10)))
    }

    pub const ALL: [Failure; 7] = [
        Failure::NotFound,
        Failure::AllSourcesDown,
        Failure::Unauthorized,
        Failure::NotCached,
        Failure::NoOrigin,
        Failure::NoSpace,
        Failure::Throttled,
    ];

    /// The failure called `name` (see [`Failure::name`]).
    pub fn from_name(name: &str) -> Option<Failure> {
        Failure::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Failure::NotFound => "not_found",
            Failure::AllSourcesDown => "all_sources_down",
            Failure::Unauthorized => "unauthorized",
            Failure::NotCached => "not_cached",
            Failure::NoOrigin => "no_origin",
            Failure::NoSpace => "no_space",
            Failure::Throttled => "throttled",
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
        /// The namespace's egress limit: when each byte may leave (`None`: at once).
        pace: Option<Pace>,
    },
    /// Stream the object from fill `fetch` while it arrives. The reader follows the fill: when
    /// an attempt breaks, the core fails over and the reader resumes at the byte it reached
    /// from the next source (same size and version); only if the fill fails for good is the
    /// response aborted (`Event::StreamBroken`). The driver reports `ServeDone` at the end.
    Stream {
        source: Source,
        size: u64,
        fetch: FetchId,
        pace: Option<Pace>,
    },
    /// Send the client to another node (a director's answer).
    Redirect {
        to: NodeId,
    },
    /// A metadata-only request for an object neither stored here nor in flight: ask `origin`
    /// for its metadata alone (one `HEAD`, waiting at most `within`) and answer with that. An
    /// ask that fails is answered `Failure::AllSourcesDown` (the client tries elsewhere).
    Describe {
        origin: NodeId,
        within: Duration,
    },
    Fail(Failure),
    /// To another node's fetch (a child's or a peer's): the object is being staged upstream
    /// (this node's fill of it waits for a recall); ask again after `retry_after`. The
    /// requester's driver reports it as `FetchResult::Staging`, so a chain of caches waits for
    /// the archive instead of timing out and failing over past its parent.
    Staging {
        retry_after: Duration,
    },
    /// Refused under the namespace's egress limit (`Failure::Throttled`): a retry after
    /// `retry_after` would be admitted.
    Throttled {
        retry_after: Duration,
    },
}

/// A control-plane message between core nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// Liveness probe, with a little membership gossip; answered by `Ack` with the same `seq`.
    Ping {
        seq: u64,
        gossip: Vec<PeerInfo>,
    },
    Ack {
        seq: u64,
        gossip: Vec<PeerInfo>,
    },
    /// Probe `target` for me (SWIM's indirect probe); answered by `IndirectAck`.
    PingReq {
        seq: u64,
        target: NodeId,
    },
    IndirectAck {
        seq: u64,
        target: NodeId,
    },
    /// The Coral-style distributed sloppy hash table.
    Dsht(DshtMessage),
    /// The directory (catalogue) strategy.
    Directory(DirectoryMessage),
}

/// A pointer to a node that holds an object (`complete`) or is fetching it right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    pub holder: NodeId,
    pub complete: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DshtMessage {
    /// Who holds `key`? Asked of nodes ever closer to the key in the `level` cluster. With
    /// `claim`, the key's global root records the asker as the fetcher when nobody holds it.
    FindValue { lookup: u64, key: ObjectId, level: u8, claim: bool },
    /// Pointers known for the key, or contacts closer to it; `full` if this node stores as many
    /// pointers for the key as it keeps (sloppy insertion then stops one hop earlier).
    Value { lookup: u64, key: ObjectId, pointers: Vec<Pointer>, closer: Vec<NodeId>, full: bool, claimed: bool },
    /// Store (ttl > 0) or withdraw (ttl = 0) a pointer to `pointer.holder` for `key`.
    Store { key: ObjectId, pointer: Pointer, ttl: Duration },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectoryMessage {
    Query { object: ObjectId },
    Holders { object: ObjectId, holders: Vec<NodeId> },
    Register { object: ObjectId },
    Unregister { object: ObjectId },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Output {
    /// Send a control-plane message.
    Send { to: NodeId, msg: Message },
    /// Fetch an object from another node into a temporary fill, then report `FetchDone`. With
    /// `revalidate`, the store holds a copy past its freshness: ask the origin
    /// conditionally (the stored copy's ETag), so that an unchanged object moves no bytes
    /// (`FetchResult::NotModified`).
    /// `patience`: how long without progress before this attempt is given up (the fetch
    /// timeout), which a `Parent` source is told (`RequestKind::Child`).
    Fetch { fetch: FetchId, object: ObjectRef, from: NodeId, kind: FetchKind, revalidate: bool, patience: Duration },
    /// Abandon a fetch (its result, if any arrives, is ignored).
    CancelFetch { fetch: FetchId },
    /// Split fill `fetch` across holders: its running attempt (the lead, part 0) stops at
    /// byte `lead_end`, and each of `parts` fetches its range at the same time into the same
    /// fill. From now on the driver reports `PartProgress`/`PartDone` for every part (the lead
    /// included) and `FetchDone` once the whole object is verified.
    FetchParts { fetch: FetchId, lead_end: u64, parts: Vec<Part> },
    /// A range of a split fill handed on to another holder (its earlier part failed).
    FetchPart { fetch: FetchId, part: Part },
    /// Stop a part of a split fill (it stalled); its range was handed on.
    CancelPart { fetch: FetchId, part: u32 },
    /// The completed fill becomes a cached object (rename the temporary into the store).
    Commit { fetch: FetchId, object: ObjectId },
    /// The completed fill is not kept (not admitted); delete it once its readers are done.
    Discard { fetch: FetchId },
    /// The fill has no room to be kept: hold only `NodeConfig::pass_window` bytes of it at a
    /// time, ahead of its slowest reader (it ends with `Discard`).
    PassThrough { fetch: FetchId },
    /// Delete a cached object from the store.
    Evict { object: ObjectId },
    /// Answer a request.
    Respond { request: RequestId, response: Response },
    /// A metrics event: one for every decision.
    Event(Event),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_waits_a_tenth_less_than_its_child_within_its_own_timeout_and_the_floor() {
        let s = Duration::from_secs;
        assert_eq!(patience_for_child(s(30), s(30)), s(27));
        // Three hops below a 30 s client: 27, 24.3, 21.87 s.
        let (a, b, c) = (s(30), patience_for_child(s(30), s(30)), Duration::from_millis(24_300));
        assert_eq!((patience_for_child(a, b), patience_for_child(a, c)), (c, Duration::from_millis(21_870)));
        // Never longer than the node's own timeout, never under half of it.
        assert_eq!(patience_for_child(s(5), s(60)), s(5));
        assert_eq!(patience_for_child(s(5), Duration::from_millis(50)), Duration::from_millis(2_500));
        assert_eq!(patience_for_child(s(5), Duration::ZERO), Duration::from_millis(2_500));
        assert_eq!(patience_for_child(s(5), Duration(u64::MAX)), s(5));
    }

    #[test]
    fn only_an_origin_that_times_out_or_a_source_that_cannot_be_reached_is_blamed() {
        // A cache that does not answer in time may be waiting on its own source.
        assert!(!FetchError::TimedOut.blames_source(false));
        assert!(FetchError::TimedOut.blames_source(true));
        assert!(FetchError::Unreachable.blames_source(false) && FetchError::Unreachable.blames_source(true));
        assert!(!FetchError::NotFound.blames_source(true));
    }
}
