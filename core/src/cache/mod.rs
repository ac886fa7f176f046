//! The cache engine: a size-aware index of cached objects with a pluggable eviction policy.
//!
//! This first version is a plain, obviously-correct LRU: the public API below is the contract the
//! request path and the drivers use; the fast index and the full policy zoo replace the internals.

use crate::ids::{NamespaceId, ObjectId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Eviction policy, selectable by name (`lru`, `fifo`, ...).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    #[default]
    Lru,
}

impl PolicyKind {
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Lru => "lru",
        }
    }
}

impl std::str::FromStr for PolicyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "lru" => Ok(PolicyKind::Lru),
            _ => Err(format!(
                "unknown eviction policy `{s}`; expected one of: lru"
            )),
        }
    }
}

/// How a cache is sized and which policy it runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheConfig {
    /// Capacity in bytes.
    pub capacity: u64,
    pub policy: PolicyKind,
}

impl CacheConfig {
    pub fn new(capacity: u64, policy: PolicyKind) -> Self {
        CacheConfig { capacity, policy }
    }
}

/// Why an object left the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EvictReason {
    /// Chosen by the policy to make room.
    Capacity,
    /// Removed on request (an operator, an invalidation).
    Removed,
}

/// One object that left the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eviction {
    pub id: ObjectId,
    pub size: u64,
    pub namespace: NamespaceId,
    pub reason: EvictReason,
}

/// What `insert` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InsertOutcome {
    Inserted,
    AlreadyPresent,
    /// Not admitted: too large for the cache, or no room because everything is pinned.
    Rejected,
}

#[derive(Debug, Clone)]
struct Entry {
    size: u64,
    namespace: NamespaceId,
    stamp: u64,
    pins: u32,
}

/// A size-aware object index with an eviction policy.
#[derive(Debug)]
pub struct Cache {
    config: CacheConfig,
    entries: HashMap<ObjectId, Entry>,
    order: BTreeMap<u64, ObjectId>,
    clock: u64,
    used: u64,
}

impl Cache {
    pub fn new(config: CacheConfig) -> Cache {
        Cache {
            config,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            clock: 0,
            used: 0,
        }
    }
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }
    pub fn capacity(&self) -> u64 {
        self.config.capacity
    }
    pub fn used_bytes(&self) -> u64 {
        self.used
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Whether `id` is cached, without counting an access.
    pub fn contains(&self, id: ObjectId) -> bool {
        self.entries.contains_key(&id)
    }
    /// Size of a cached object.
    pub fn size_of(&self, id: ObjectId) -> Option<u64> {
        self.entries.get(&id).map(|e| e.size)
    }
    /// Looks `id` up and, if present, records an access (a hit).
    pub fn get(&mut self, id: ObjectId) -> bool {
        self.clock += 1;
        let clock = self.clock;
        match self.entries.get_mut(&id) {
            Some(e) => {
                self.order.remove(&e.stamp);
                e.stamp = clock;
                self.order.insert(clock, id);
                true
            }
            None => false,
        }
    }
    /// Inserts an object, evicting as needed; the evicted objects are appended to `evicted`.
    pub fn insert(
        &mut self,
        id: ObjectId,
        size: u64,
        namespace: NamespaceId,
        evicted: &mut Vec<Eviction>,
    ) -> InsertOutcome {
        if self.entries.contains_key(&id) {
            return InsertOutcome::AlreadyPresent;
        }
        if size > self.config.capacity {
            return InsertOutcome::Rejected;
        }
        let pinned: u64 = self
            .entries
            .values()
            .filter(|e| e.pins > 0)
            .map(|e| e.size)
            .sum();
        if pinned + size > self.config.capacity {
            return InsertOutcome::Rejected;
        }
        while self.used + size > self.config.capacity {
            let victim = self
                .order
                .values()
                .copied()
                .find(|v| self.entries[v].pins == 0)
                .expect("unpinned bytes exceed the shortfall");
            self.evict(victim, EvictReason::Capacity, evicted);
        }
        self.clock += 1;
        self.order.insert(self.clock, id);
        self.entries.insert(
            id,
            Entry {
                size,
                namespace,
                stamp: self.clock,
                pins: 0,
            },
        );
        self.used += size;
        InsertOutcome::Inserted
    }
    /// Removes an object (an operator's request); pinned objects stay. Returns whether it left.
    pub fn remove(&mut self, id: ObjectId, evicted: &mut Vec<Eviction>) -> bool {
        match self.entries.get(&id) {
            Some(e) if e.pins == 0 => {
                self.evict(id, EvictReason::Removed, evicted);
                true
            }
            _ => false,
        }
    }
    /// Pins an object so that it is not evicted while it is served or filled.
    pub fn pin(&mut self, id: ObjectId) -> bool {
        match self.entries.get_mut(&id) {
            Some(e) => {
                e.pins += 1;
                true
            }
            None => false,
        }
    }
    pub fn unpin(&mut self, id: ObjectId) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.pins = e.pins.saturating_sub(1);
        }
    }
    fn evict(&mut self, id: ObjectId, reason: EvictReason, evicted: &mut Vec<Eviction>) {
        let e = self.entries.remove(&id).expect("evicting a cached object");
        self.order.remove(&e.stamp);
        self.used -= e.size;
        evicted.push(Eviction {
            id,
            size: e.size,
            namespace: e.namespace,
            reason,
        });
    }
}
