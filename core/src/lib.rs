//! reef-core: every decision a Reef node makes (caching, peer discovery, origin fallback),
//! as sans-IO state machines. No sockets, files, threads, async runtime, wall clock or global
//! randomness: time is an argument, randomness comes from a seeded generator each node owns.
//! reef-sim and reef-node drive the very same code.

pub mod access;
pub mod cache;
pub mod discovery;
pub mod event;
pub mod harness;
pub mod http_caching;
pub mod ids;
pub mod membership;
pub mod node;
pub mod peer;
pub mod policy;
pub mod protocol;
pub mod shaper;
pub mod timers;
pub mod units;

pub use event::Event;
pub use ids::{NamespaceId, NodeId, ObjectId, ObjectName, SiteId, Tier};
pub use node::{Node, NodeConfig};
pub use peer::{PeerInfo, Role};
pub use policy::Policy;
pub use protocol::{
    BLOCK_LIST_TIMEOUT, Failure, FetchError, FetchId, FetchKind, FetchResult, Input, MESSAGE_TIMEOUT, Message,
    NO_ROOM_WAIT, ObjectRef, Output, Part, Request, RequestId, RequestKind, Response, Source, patience_for_child,
};
pub use units::{BitRate, Duration, Time};

/// The core's hash map: a fixed-seed hasher, fast and the same on every run (std's default
/// seeds itself from the OS, which the core must not touch). Maps are looked up, never
/// iterated where the order could reach an output.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
