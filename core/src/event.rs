//! Metrics events: the core reports every decision; each driver turns them into statistics.

use crate::cache::EvictReason;
use crate::ids::{NamespaceId, NodeId, ObjectId};
use crate::protocol::{Failure, FetchError, RequestId, Source};
use crate::units::Duration;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// A request was served from the local store.
    Hit { request: RequestId, object: ObjectId },
    /// A miss that joined a fetch already in flight for the same object.
    Coalesced { request: RequestId, object: ObjectId },
    /// A fetch started from a peer or an origin.
    FetchStarted { object: ObjectId, source: Source },
    /// A source answered that it is bringing the object online (an archive's recall): the fill
    /// waits and asks it again after `retry_after`.
    Staging { object: ObjectId, from: NodeId, retry_after: Duration },
    /// A request found the copy held here past its freshness (its namespace's `max_age`, or
    /// its third-party origin's headers): it is revalidated
    /// with the origin (the request waits for the answer).
    Expired { object: ObjectId, namespace: NamespaceId },
    /// A revalidation ended: the copy was current (`modified` false: it is fresh again, no
    /// bytes moved) or a new version came (it replaces the copy unless a response still reads
    /// the old one).
    Revalidated { object: ObjectId, modified: bool },
    /// A revalidation failed (the origin did not answer): the stale copy was served rather
    /// than nothing (it is a complete, verified earlier version).
    ServedStale { request: RequestId, object: ObjectId },
    /// A fill was split across `parts` holders (multi-source fetch).
    Split { object: ObjectId, parts: u32 },
    /// A part of a split fill failed or stalled; its remaining range went to another holder.
    PartFailover { object: ObjectId, from: NodeId, reason: FetchError },
    /// A source failed and the next one is tried.
    Failover { object: ObjectId, from: NodeId, reason: FetchError },
    /// A client request's response was held back by its namespace's egress limit for `wait`,
    /// or refused (`refused`: it would have waited `wait`, more than the limit allows).
    Throttled { request: RequestId, namespace: NamespaceId, wait: Duration, refused: bool },
    /// A request was answered: served from `source` (a stream's first byte is on its way), or
    /// failed.
    Completed { request: RequestId, object: ObjectId, outcome: Result<Source, Failure> },
    /// A streamed response cannot be finished: its fill failed for good after the first byte
    /// (every source tried), or the next source holds another version. The driver aborts it,
    /// so the client sees an incomplete response, never wrong bytes.
    StreamBroken { request: RequestId, object: ObjectId },
    /// A fill became a cached object.
    Admitted { object: ObjectId, size: u64 },
    /// A fill was not kept (too big, or no room).
    NotAdmitted { object: ObjectId, size: u64 },
    /// A third-party origin's response may not be kept by a shared cache (`no-store`,
    /// `private`, `Vary`): it was passed to its requests and not kept (`NotAdmitted` follows).
    NotStorable { object: ObjectId, size: u64 },
    /// An object of `namespace` left the cache.
    Evicted { object: ObjectId, namespace: NamespaceId, size: u64, reason: EvictReason },
    /// Discovery answered: `found` sources besides the origins, after `hops` sequential messages.
    Lookup { object: ObjectId, hops: u32, found: u32 },
    /// A peer stopped answering probes.
    PeerDown { peer: NodeId },
    /// A peer answered again.
    PeerUp { peer: NodeId },
    /// A fill found no room on this node's disk, not even passing through: it failed here
    /// (`Failure::NoSpace`) and no other source was tried.
    NoRoom { object: ObjectId },
}
