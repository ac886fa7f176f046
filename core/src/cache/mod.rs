//! The cache engine: a size-aware index of cached objects, an eviction policy, admission rules
//! and per-namespace shares. Every Reef cache, simulated or deployed, decides with this code.
//!
//! Layout (all O(1) amortised per operation except the heap policies' O(log n)):
//! - `slab`: 32-byte entries addressed by `u32`, with intrusive list links;
//! - `table`: id -> entry through an 8-byte-per-slot fingerprint table;
//! - `policy/*`: the policies, dispatched by `match`;
//! - `admission`, `quota`: admission rules and namespace shares;
//! - `ghost`, `heap`: shared building blocks of the policies;
//! - `prefetch`: hints for the memory an access will read (a replay gives them for the
//!   requests ahead of the one it serves; an eviction, for the next victim).
//!
//! Pinned objects (being served or filled) are detached from their policy, so no policy ever
//! picks one; they re-enter as recently used when the last pin goes.

mod admission;
mod config;
mod ghost;
mod heap;
mod policy;
mod prefetch;
mod quota;
mod slab;
mod table;

pub use admission::Admission;
pub use config::{CacheConfig, ConfigError, PolicyKind};
pub use quota::{EgressQuota, FillQuota, NamespaceQuota, NamespaceShare, egress_limits, quotas_for_cache};

use crate::ids::{NamespaceId, ObjectId};
use admission::AdmissionFilter;
use policy::Policy;
use quota::Quotas;
use serde::{Deserialize, Serialize};
use slab::Slab;
use table::{FpTable, fingerprint, hash_id};

/// "Not accessed again": the next-access time to pass when it is unknown.
pub const NEVER: u64 = u64::MAX;

/// Why an object left the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EvictReason {
    /// Chosen by the policy to make room (bytes over the high watermark).
    Capacity,
    /// Chosen from its namespace's partition because that namespace was over its share.
    Quota,
    /// Chosen to stay within the maximum number of objects.
    ObjectLimit,
    /// Removed on request (an operator, an invalidation).
    Removed,
    /// The store could not produce it intact (missing, truncated, failed verification).
    Lost,
    /// Older than its mutable namespace's `max_age` when asked for (see `NodeConfig::max_age`).
    Expired,
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
    /// Refused by an admission rule (or, for Belady, not worth an eviction).
    NotAdmitted,
    /// Cannot fit: larger than the cache, or no room because what remains is pinned.
    Rejected,
}

/// What `access` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessOutcome {
    Hit,
    /// A miss; the object is now cached.
    Inserted,
    /// A miss; the object was not admitted.
    NotAdmitted,
    /// A miss; the object cannot fit.
    Rejected,
}

/// Memory the cache uses for bookkeeping (not the cached data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryUse {
    /// Entries and the id table.
    pub index: usize,
    /// Policy state besides the entries (heaps, ghosts, sketches) and admission filters.
    pub policy: usize,
}

/// A size-aware object index with an eviction policy, admission rules and namespace shares.
#[derive(Debug)]
pub struct Cache {
    config: CacheConfig,
    slab: Slab,
    table: FpTable,
    /// One policy per partition (see `quota`); a single one without shares.
    policies: Vec<Policy>,
    quotas: Quotas,
    admission: AdmissionFilter,
    used: u64,
    high: u64,
    low: u64,
    max_objects: u64,
    pinned_bytes: u64,
    /// Bytes promised to fills in flight (see `reserve`): cached bytes plus these stay within
    /// the capacity, so a fill never runs out of room half way.
    reserved: u64,
    pinned_count: u64,
}

impl Cache {
    /// A cache for a valid configuration.
    ///
    /// # Panics
    /// If the configuration is invalid; check untrusted ones with [`CacheConfig::validate`] or
    /// use [`Cache::try_new`].
    pub fn new(config: CacheConfig) -> Cache {
        Cache::try_new(config).unwrap_or_else(|e| panic!("invalid cache configuration: {e}"))
    }

    pub fn try_new(config: CacheConfig) -> Result<Cache, ConfigError> {
        config.validate()?;
        let quotas = Quotas::new(config.capacity, &config.quotas);
        let policies = quotas.parts.iter().map(|p| Policy::new(config.policy, p.share)).collect();
        let fraction = |f: f64| (config.capacity as f64 * f).round() as u64;
        Ok(Cache {
            slab: Slab::default(),
            table: FpTable::default(),
            policies,
            quotas,
            admission: AdmissionFilter::new(&config.admission, config.seed),
            used: 0,
            high: fraction(config.high_watermark).min(config.capacity),
            low: fraction(config.low_watermark).min(config.capacity),
            max_objects: config.max_objects.unwrap_or(u64::MAX),
            pinned_bytes: 0,
            pinned_count: 0,
            reserved: 0,
            config,
        })
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
    pub fn reserved_bytes(&self) -> u64 {
        self.reserved
    }

    /// Promises `size` bytes to a fill of `namespace`, evicting (by the policy) until cached
    /// and promised bytes fit in the capacity. False, evicting nothing, if even evicting
    /// everything unpinned could not make room.
    pub fn reserve(&mut self, size: u64, namespace: NamespaceId, evicted: &mut Vec<Eviction>) -> bool {
        let room = self.config.capacity.saturating_sub(self.pinned_bytes + self.reserved);
        let part = self.quotas.partition_of(namespace);
        if size > room || !self.quotas.parts[part].could_fit(size) {
            return false;
        }
        if !self.within_limits(part, size, 0, evicted) {
            return false;
        }
        self.make_room(part, size, self.config.capacity, evicted);
        if self.used + self.reserved + size > self.config.capacity {
            return false;
        }
        self.reserved += size;
        self.quotas.parts[part].reserved += size;
        true
    }

    /// Gives back a promise made by `reserve` for `namespace` (the fill ended, or is about to
    /// be inserted).
    pub fn unreserve(&mut self, size: u64, namespace: NamespaceId) {
        self.reserved = self.reserved.saturating_sub(size);
        let part = self.quotas.partition_of(namespace);
        let reserved = &mut self.quotas.parts[part].reserved;
        *reserved = reserved.saturating_sub(size);
    }

    /// Evicts partition `part`'s own objects (by its policy) until `size` more bytes and
    /// `objects` more objects fit under its hard limits. False if they cannot (what is left is
    /// pinned or promised).
    fn within_limits(&mut self, part: usize, size: u64, objects: u64, evicted: &mut Vec<Eviction>) -> bool {
        while self.quotas.parts[part].over_limit(size, objects) {
            let Some(victim) = self.policies[part].victim(&mut self.slab.entries) else {
                return false;
            };
            self.drop_entry(victim, EvictReason::Quota, evicted);
        }
        true
    }

    /// Changes the quotas of a running cache (a node's configuration reloaded): shares and
    /// limits of the namespaces that have one; a namespace over a lowered limit evicts its own
    /// objects now (appended to `evicted`). Which namespaces have a quota cannot change (their
    /// objects would have to move between policies): that needs a restart.
    pub fn set_quotas(&mut self, quotas: Vec<NamespaceShare>, evicted: &mut Vec<Eviction>) -> Result<(), String> {
        let had: Vec<NamespaceId> = self.config.quotas.iter().map(|q| q.namespace).collect();
        if quotas.iter().map(|q| q.namespace).ne(had.iter().copied()) {
            return Err("the namespaces with a quota changed: that takes a restart".into());
        }
        let mut config = self.config.clone();
        config.quotas = quotas;
        config.validate().map_err(|e| e.to_string())?;
        let fresh = Quotas::new(config.capacity, &config.quotas);
        for (part, new) in self.quotas.parts.iter_mut().zip(fresh.parts) {
            (part.share, part.share_objects, part.max_bytes, part.max_objects) =
                (new.share, new.share_objects, new.max_bytes, new.max_objects);
        }
        self.config = config;
        for p in 0..self.quotas.parts.len() {
            // What is pinned or promised stays until it is released.
            self.within_limits(p, 0, 0, evicted);
        }
        Ok(())
    }

    /// Bytes and objects held per namespace with a quota (the others are counted together
    /// under `None`).
    pub fn usage(&self) -> impl Iterator<Item = (Option<NamespaceId>, u64, u64)> + '_ {
        let namespaces = self.config.quotas.iter().map(|q| Some(q.namespace));
        std::iter::once(None).chain(namespaces).zip(&self.quotas.parts).map(|(ns, p)| (ns, p.used, p.count))
    }
    pub fn len(&self) -> usize {
        self.table.len()
    }
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Bookkeeping memory in use.
    pub fn memory(&self) -> MemoryUse {
        MemoryUse {
            index: self.slab.memory_bytes() + self.table.memory_bytes(),
            policy: self.policies.iter().map(Policy::memory_bytes).sum::<usize>() + self.admission.memory_bytes(),
        }
    }

    #[inline]
    fn lookup(&self, id: ObjectId, hash: u64) -> Option<u32> {
        let entries = &self.slab.entries;
        self.table.find(fingerprint(hash), |i| entries[i as usize].id == id).map(|pos| self.table.payload(pos))
    }

    fn find(&self, id: ObjectId) -> Option<u32> {
        self.lookup(id, hash_id(id))
    }

    /// The first of two prefetch hints for a coming `access(id, ..)`: its table slot and the
    /// policy's ghost or sketch slots. A replay gives it some requests ahead, then
    /// [`Cache::prefetch_entry`] a few requests later, so that the processor fetches the cache
    /// lines of many requests at once instead of one miss at a time. Changes nothing.
    #[inline]
    pub fn prefetch_slot(&self, id: ObjectId) {
        let hash = hash_id(id);
        self.table.prefetch_home(fingerprint(hash));
        if let Some(p) = self.policies.first() {
            p.prefetch(hash);
        }
    }

    /// The second hint (see [`Cache::prefetch_slot`]): reads the table slot, by now cached, and
    /// hints the entry it names.
    #[inline]
    pub fn prefetch_entry(&self, id: ObjectId) {
        if let Some(e) = self.home_entry(id) {
            prefetch::hint(e);
        }
    }

    /// After an eviction, hints what the next one will read: the next victim's table slot (its
    /// removal) and its list neighbour (which becomes the list's end). Evictions come a few
    /// requests apart, so these lines arrive in time instead of being waited for.
    #[inline]
    fn prefetch_next_victim(&self, part: usize) {
        let entries = &self.slab.entries;
        let Some(v) = self.policies[part].next_victim().and_then(|v| entries.get(v as usize)) else { return };
        self.table.prefetch_home(fingerprint(hash_id(v.id)));
        if let Some(before) = entries.get(v.prev as usize) {
            prefetch::hint(before);
        }
    }

    /// The entry in `id`'s home slot, if the slot's fingerprint matches (a hint: no probing).
    #[inline]
    fn home_entry(&self, id: ObjectId) -> Option<&slab::Entry> {
        self.table.home_payload(fingerprint(hash_id(id))).and_then(|i| self.slab.entries.get(i as usize))
    }

    /// The cached objects (in slot order: deterministic, but not by any policy's order).
    pub fn ids(&self) -> impl Iterator<Item = ObjectId> + '_ {
        let entries = &self.slab.entries;
        (0..entries.len() as u32)
            .filter(|&i| self.find(entries[i as usize].id) == Some(i))
            .map(|i| entries[i as usize].id)
    }

    /// Whether `id` is cached, without counting an access.
    pub fn contains(&self, id: ObjectId) -> bool {
        self.find(id).is_some()
    }

    /// Size of a cached object.
    pub fn size_of(&self, id: ObjectId) -> Option<u64> {
        self.find(id).map(|i| self.slab.entries[i as usize].size)
    }

    /// Looks `id` up and, if present, records an access (a hit).
    pub fn get(&mut self, id: ObjectId) -> bool {
        let hash = hash_id(id);
        match self.lookup(id, hash) {
            Some(i) => {
                self.hit(i, NEVER);
                true
            }
            None => {
                for p in &mut self.policies {
                    p.on_miss(fingerprint(hash));
                }
                false
            }
        }
    }

    #[inline]
    fn hit(&mut self, i: u32, next: u64) {
        let part = self.quotas.partition_of(self.slab.entries[i as usize].namespace);
        self.policies[part].on_hit(&mut self.slab.entries, i, next);
    }

    /// One request, as a trace replays it: a lookup and, on a miss, an insert, with a single
    /// hash. `next_access` is when the object is requested next (any monotonic clock, such as
    /// the request's position in the trace; [`NEVER`] if not again): only Belady uses it.
    #[inline]
    pub fn access(
        &mut self,
        id: ObjectId,
        size: u64,
        namespace: NamespaceId,
        next_access: u64,
        evicted: &mut Vec<Eviction>,
    ) -> AccessOutcome {
        let hash = hash_id(id);
        if let Some(i) = self.lookup(id, hash) {
            self.hit(i, next_access);
            return AccessOutcome::Hit;
        }
        let part = self.quotas.partition_of(namespace);
        self.policies[part].on_miss(fingerprint(hash));
        match self.insert_new(id, hash, size, namespace, next_access, evicted) {
            InsertOutcome::NotAdmitted => AccessOutcome::NotAdmitted,
            InsertOutcome::Rejected => AccessOutcome::Rejected,
            InsertOutcome::Inserted | InsertOutcome::AlreadyPresent => AccessOutcome::Inserted,
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
        let hash = hash_id(id);
        if self.lookup(id, hash).is_some() {
            return InsertOutcome::AlreadyPresent;
        }
        self.insert_new(id, hash, size, namespace, NEVER, evicted)
    }

    fn insert_new(
        &mut self,
        id: ObjectId,
        hash: u64,
        size: u64,
        namespace: NamespaceId,
        next: u64,
        evicted: &mut Vec<Eviction>,
    ) -> InsertOutcome {
        let part = self.quotas.partition_of(namespace);
        if size > self.config.capacity || !self.quotas.parts[part].could_fit(size) {
            return InsertOutcome::Rejected;
        }
        if !self.policies[part].fits(size) || !self.admission.admit(hash, size) {
            return InsertOutcome::NotAdmitted;
        }
        let over_bytes = self.used + self.reserved + size > self.high;
        let needs_room = over_bytes || self.len() as u64 + 1 > self.max_objects;
        if needs_room {
            // Everything unpinned can go; if that is not enough, refuse before evicting.
            if self.pinned_bytes + size > self.config.capacity || self.pinned_count + 1 > self.max_objects {
                return InsertOutcome::Rejected;
            }
            if !self.policies[part].admits(next) {
                return InsertOutcome::NotAdmitted;
            }
        }
        // A namespace at a hard limit makes room among its own objects only.
        if !self.within_limits(part, size, 1, evicted) {
            return InsertOutcome::Rejected;
        }
        self.policies[part].prepare(hash, size);
        if needs_room {
            let byte_target = if over_bytes { self.low } else { u64::MAX };
            if !self.make_room(part, size, byte_target, evicted) {
                return InsertOutcome::NotAdmitted;
            }
        }
        while let Some(victim) = self.policies[part].own_victim(&mut self.slab.entries, size) {
            self.drop_entry(victim, EvictReason::Capacity, evicted);
        }
        if needs_room {
            self.prefetch_next_victim(part);
        }
        let i = self.slab.alloc(id, size, namespace);
        self.table.insert(fingerprint(hash), i);
        self.used += size;
        self.quotas.parts[part].used += size;
        self.quotas.parts[part].count += 1;
        self.policies[part].on_insert(&mut self.slab.entries, i, next);
        InsertOutcome::Inserted
    }

    /// Evicts until `size` more bytes (for partition `into`), besides those reserved, fit under
    /// `byte_target` and one more object fits. False if the object about to be inserted turned
    /// out to be the policy's next victim (it is then not inserted).
    fn make_room(&mut self, into: usize, size: u64, byte_target: u64, evicted: &mut Vec<Eviction>) -> bool {
        loop {
            let bytes_over = self.used + self.reserved + size > byte_target;
            if !bytes_over && (self.len() as u64) < self.max_objects {
                return true;
            }
            let policies = &self.policies;
            let Some((part, over_share)) = self.quotas.pick(into, size, |p| !policies[p].is_empty()) else {
                return true;
            };
            if part == into && self.policies[part].newcomer_leaves() {
                return false;
            }
            let Some(victim) = self.policies[part].victim(&mut self.slab.entries) else {
                return true;
            };
            let reason = if over_share {
                EvictReason::Quota
            } else if bytes_over {
                EvictReason::Capacity
            } else {
                EvictReason::ObjectLimit
            };
            self.drop_entry(victim, reason, evicted);
        }
    }

    /// Forgets entry `i`, which its policy no longer tracks.
    fn drop_entry(&mut self, i: u32, reason: EvictReason, evicted: &mut Vec<Eviction>) {
        let e = &self.slab.entries[i as usize];
        let (id, size, namespace) = (e.id, e.size, e.namespace);
        let pos = self.table.find(fingerprint(hash_id(id)), |p| p == i).expect("a cached entry is in the table");
        self.table.remove_at(pos);
        self.used -= size;
        let part = self.quotas.partition_of(namespace);
        self.quotas.parts[part].used -= size;
        self.quotas.parts[part].count -= 1;
        self.slab.release(i);
        evicted.push(Eviction { id, size, namespace, reason });
    }

    /// Removes an object (an operator's request); pinned objects stay. Returns whether it left.
    pub fn remove(&mut self, id: ObjectId, evicted: &mut Vec<Eviction>) -> bool {
        self.remove_for(id, EvictReason::Removed, evicted)
    }

    /// Removes an unpinned object for `reason`. Returns whether it left.
    pub fn remove_for(&mut self, id: ObjectId, reason: EvictReason, evicted: &mut Vec<Eviction>) -> bool {
        match self.find(id) {
            Some(i) if self.slab.entries[i as usize].attached() => {
                let entries = &mut self.slab.entries;
                let part = self.quotas.partition_of(entries[i as usize].namespace);
                self.policies[part].detach(entries, i);
                self.drop_entry(i, reason, evicted);
                true
            }
            _ => false,
        }
    }

    /// Drops an object the store has lost, pinned or not (its readers' later unpins find
    /// nothing). Returns whether it was cached.
    pub fn remove_lost(&mut self, id: ObjectId, evicted: &mut Vec<Eviction>) -> bool {
        let Some(i) = self.find(id) else { return false };
        let e = &mut self.slab.entries[i as usize];
        if e.pins > 0 {
            self.pinned_bytes -= e.size;
            self.pinned_count -= 1;
        } else {
            let part = self.quotas.partition_of(e.namespace);
            self.policies[part].detach(&mut self.slab.entries, i);
        }
        self.drop_entry(i, EvictReason::Lost, evicted);
        true
    }

    /// Objects held by at least one pin.
    pub fn pinned_objects(&self) -> u64 {
        self.pinned_count
    }

    /// Pins an object so that it is not evicted while it is served or filled. Pins nest; false
    /// if the object is not cached (or already holds 65535 pins).
    pub fn pin(&mut self, id: ObjectId) -> bool {
        let Some(i) = self.find(id) else {
            return false;
        };
        let e = &self.slab.entries[i as usize];
        if e.pins == u16::MAX {
            return false;
        }
        if e.pins == 0 {
            self.pinned_bytes += e.size;
            self.pinned_count += 1;
            let part = self.quotas.partition_of(self.slab.entries[i as usize].namespace);
            self.policies[part].detach(&mut self.slab.entries, i);
        }
        self.slab.entries[i as usize].pins += 1;
        true
    }

    /// Releases one pin; the object is evictable again once its last pin is gone.
    pub fn unpin(&mut self, id: ObjectId) {
        let Some(i) = self.find(id) else {
            return;
        };
        let e = &mut self.slab.entries[i as usize];
        if e.pins == 0 {
            return;
        }
        e.pins -= 1;
        if e.pins == 0 {
            self.pinned_bytes -= e.size;
            self.pinned_count -= 1;
            let part = self.quotas.partition_of(e.namespace);
            self.policies[part].reattach(&mut self.slab.entries, i);
        }
    }
}
