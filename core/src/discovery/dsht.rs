//! Coral-style distributed sloppy hash table. It stores pointers to holders, not data.
//!
//! - Nodes sit in clusters by RTT level (CoralCDN: 20 ms, 60 ms, global); each level has its
//!   own Kademlia routing table of the members at that level or closer.
//! - A lookup walks towards the key's root in the innermost cluster first and widens only when
//!   that cluster knows no holder, so nearby copies are found first and cheaply.
//! - At the global level the lookup may *claim* the key: the root records the asker as the one
//!   fetching it, and later askers are pointed at that fetcher instead of the origin, so a crowd
//!   does not hit the origin at once. Fetching pointers live briefly (about 20 s).
//! - Insertion is sloppy: a pointer is stored one hop short of a root that is already full for
//!   the key, which spreads the load of hot keys.
//! - Pointers expire; holders refresh the pointers of objects they keep serving.

use super::hashing::mix;
use super::routing::{RoutingTable, distance};
use super::{Candidate, Ctx, Found};
use crate::Map;
use crate::ids::{NodeId, ObjectId};
use crate::membership::Membership;
use crate::peer::Role;
use crate::protocol::{DshtMessage, FetchKind, Message, Pointer};
use crate::timers::Timers;
use crate::units::{Duration, Time};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DshtConfig {
    /// Contacts per routing-table bucket (Kademlia's k).
    pub k: usize,
    /// Pointers a node keeps per key; a node at this count is "full" for the key.
    pub max_pointers: usize,
    /// Pointers returned in one answer.
    pub returned: usize,
    /// Lifetime of a pointer to a complete copy.
    pub pointer_ttl: Duration,
    /// Lifetime of a pointer to a node that is fetching (CoralCDN: about 20 s).
    pub fetching_ttl: Duration,
    /// A lookup step that gets no answer in this time moves on to the next contact.
    pub query_timeout: Duration,
}

impl Default for DshtConfig {
    fn default() -> Self {
        DshtConfig {
            k: 8,
            max_pointers: 4,
            returned: 4,
            pointer_ttl: Duration::from_secs(3600),
            fetching_ttl: Duration::from_secs(20),
            query_timeout: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Stored {
    pointer: Pointer,
    expires: Time,
}

#[derive(Debug)]
struct Lookup {
    object: ObjectId,
    key: u64,
    level: u8,
    /// Known contacts, closest to the key first.
    shortlist: Vec<NodeId>,
    /// Every contact the answers named, for this level and wider ones: the nodes near the key
    /// know its neighbourhood far better than we do.
    pool: Vec<NodeId>,
    asked: Vec<NodeId>,
    /// The closest node that answered at this level, and the one before it.
    best: NodeId,
    before_best: NodeId,
    best_full: bool,
    waiting: Option<(NodeId, u32)>,
    step: u32,
    hops: u32,
    /// Where this node's pointer goes, per level walked.
    roots: Vec<NodeId>,
}

#[derive(Debug)]
struct Announced {
    roots: Vec<NodeId>,
    at: Time,
}

#[derive(Debug)]
pub struct Dsht {
    config: DshtConfig,
    me: NodeId,
    tables: Vec<RoutingTable>,
    tables_version: Option<u64>,
    store: Map<ObjectId, Vec<Stored>>,
    lookups: Map<u64, Lookup>,
    timers: Timers<(u64, u32)>,
    next_lookup: u64,
    /// Insertion points learnt by lookups, for objects being fetched or held.
    roots: Map<ObjectId, Vec<NodeId>>,
    announced: Map<ObjectId, Announced>,
}

fn key_of(object: ObjectId) -> u64 {
    // Object ids in simulations may be small integers: mix them over the key space.
    mix(object.0)
}

impl Dsht {
    pub fn new(config: DshtConfig, me: NodeId) -> Self {
        Dsht {
            config,
            me,
            tables: Vec::new(),
            tables_version: None,
            store: Map::default(),
            lookups: Map::default(),
            timers: Timers::default(),
            next_lookup: 0,
            roots: Map::default(),
            announced: Map::default(),
        }
    }

    /// Rebuilds the per-level routing tables when membership or proximity changed.
    fn refresh_tables(&mut self, members: &Membership) {
        if self.tables_version == Some(members.version()) {
            return;
        }
        self.tables = (0..=members.top_level()).map(|_| RoutingTable::new(self.me, self.config.k)).collect();
        // Only caches take part: an origin, a director or a worker node (which shares within its
        // site by the `site` strategy) never answers a lookup, and one that sat nearest to a key
        // would stall every lookup for it and leave the key unclaimed.
        for info in members.members().filter(|i| i.role == Role::Cache) {
            let level = members.level(info.id);
            for table in &mut self.tables[usize::from(level)..] {
                table.insert(info.id);
            }
        }
        self.tables_version = Some(members.version());
    }

    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.next()
    }

    /// Live pointers stored here for `object`, complete copies first, newest first.
    fn pointers(&mut self, now: Time, object: ObjectId, members: &Membership, skip: NodeId) -> Vec<Pointer> {
        let Some(list) = self.store.get_mut(&object) else { return Vec::new() };
        list.retain(|s| s.expires > now && members.usable(s.pointer.holder));
        let mut live: Vec<Stored> = list.iter().filter(|s| s.pointer.holder != skip).copied().collect();
        live.sort_by_key(|s| (!s.pointer.complete, std::cmp::Reverse(s.expires), s.pointer.holder));
        live.into_iter().take(self.config.returned).map(|s| s.pointer).collect()
    }

    fn full(&self, object: ObjectId) -> bool {
        self.store.get(&object).is_some_and(|l| l.len() >= self.config.max_pointers)
    }

    fn put(&mut self, now: Time, object: ObjectId, pointer: Pointer, ttl: Duration) {
        let list = self.store.entry(object).or_default();
        list.retain(|s| s.pointer.holder != pointer.holder && s.expires > now);
        if ttl > Duration::ZERO {
            list.push(Stored { pointer, expires: now + ttl });
            if list.len() > self.config.max_pointers {
                let soonest = (0..list.len()).min_by_key(|&i| list[i].expires).expect("non-empty");
                list.swap_remove(soonest);
            }
        }
        if list.is_empty() {
            self.store.remove(&object);
        }
    }

    pub fn lookup(&mut self, ctx: &mut Ctx, object: ObjectId) {
        self.refresh_tables(ctx.members);
        let local = self.pointers(ctx.now, object, ctx.members, ctx.me);
        if !local.is_empty() {
            let candidates = candidates(ctx.members, &local);
            ctx.found.push(Found { object, candidates, hops: 0 });
            return;
        }
        self.next_lookup += 1;
        let id = self.next_lookup;
        let mut lookup = Lookup {
            object,
            key: key_of(object),
            level: 0,
            shortlist: Vec::new(),
            pool: Vec::new(),
            asked: Vec::new(),
            best: ctx.me,
            before_best: ctx.me,
            best_full: false,
            waiting: None,
            step: 0,
            hops: 0,
            roots: Vec::new(),
        };
        self.start_level(ctx, &mut lookup);
        self.lookups.insert(id, lookup);
        self.advance(ctx, id);
    }

    /// Seeds the shortlist of a level. A wider level goes on from the closest node found so far
    /// (it is a member of the wider cluster too) and never asks a node twice, as CoralCDN does.
    fn start_level(&self, ctx: &Ctx, l: &mut Lookup) {
        let members = ctx.members;
        let me = ctx.me;
        let level = l.level;
        let mut shortlist =
            self.tables[usize::from(level)].closest(l.key, self.config.k, |n| n != me && members.usable(n));
        for &n in &l.pool {
            if !shortlist.contains(&n) && members.level(n) <= level && members.usable(n) {
                shortlist.push(n);
            }
        }
        shortlist.retain(|n| !l.asked.contains(n));
        let key = l.key;
        shortlist.sort_by_key(|&n| distance(n, key));
        l.shortlist = shortlist;
    }

    /// Asks the next contact, or closes the level (and widens, or finishes).
    fn advance(&mut self, ctx: &mut Ctx, id: u64) {
        loop {
            let l = self.lookups.get_mut(&id).expect("open lookup");
            let best_distance = distance(l.best, l.key);
            let next =
                l.shortlist.iter().copied().find(|n| !l.asked.contains(n) && distance(*n, l.key) < best_distance);
            if let Some(to) = next {
                l.step += 1;
                l.hops += 1;
                l.asked.push(to);
                l.waiting = Some((to, l.step));
                let msg = DshtMessage::FindValue { lookup: id, key: l.object, level: l.level, claim: true };
                self.timers.set(ctx.now + self.config.query_timeout, (id, l.step));
                ctx.send(to, Message::Dsht(msg));
                return;
            }
            // Nobody closer: `best` is this level's root (one hop short if it is full).
            l.roots.push(if l.best_full { l.before_best } else { l.best });
            if l.level < ctx.members.top_level() {
                l.level += 1;
                let mut l = self.lookups.remove(&id).expect("open lookup");
                self.start_level(ctx, &mut l);
                self.lookups.insert(id, l);
                continue;
            }
            if l.best == ctx.me {
                // This node is the key's global root and nobody holds it: it claims the key itself.
                let object = l.object;
                let ttl = self.config.fetching_ttl;
                self.put(ctx.now, object, Pointer { holder: ctx.me, complete: false }, ttl);
            }
            return self.finish(ctx, id, Vec::new());
        }
    }

    fn finish(&mut self, ctx: &mut Ctx, id: u64, candidates: Vec<Candidate>) {
        let l = self.lookups.remove(&id).expect("open lookup");
        self.roots.insert(l.object, l.roots);
        ctx.found.push(Found { object: l.object, candidates, hops: l.hops });
    }

    pub fn on_message(&mut self, ctx: &mut Ctx, from: NodeId, msg: &DshtMessage) {
        self.refresh_tables(ctx.members);
        match msg {
            DshtMessage::FindValue { lookup, key, level, claim } => {
                let pointers = self.pointers(ctx.now, *key, ctx.members, from);
                let top = ctx.members.top_level();
                let table = &self.tables[usize::from((*level).min(top))];
                let members = ctx.members;
                let usable = |n: NodeId| n != from && members.usable(n);
                let hashed = key_of(*key);
                let mut claimed = false;
                let mut closer = Vec::new();
                if pointers.is_empty() {
                    closer = table.closest(hashed, self.config.k, usable);
                    // Also our closest in the widest cluster, for when the asker widens.
                    for n in self.tables[usize::from(top)].closest(hashed, self.config.k, usable) {
                        if !closer.contains(&n) {
                            closer.push(n);
                        }
                    }
                    // Only the key's global root claims, so there is one fetcher per key.
                    if *claim && self.tables[usize::from(top)].is_root(hashed, usable) {
                        claimed = true;
                        let ttl = self.config.fetching_ttl;
                        self.put(ctx.now, *key, Pointer { holder: from, complete: false }, ttl);
                    }
                }
                let full = self.full(*key);
                let reply = DshtMessage::Value { lookup: *lookup, key: *key, pointers, closer, full, claimed };
                ctx.send(from, Message::Dsht(reply));
            }
            DshtMessage::Value { lookup, pointers, closer, full, claimed, .. } => {
                let id = *lookup;
                let Some(l) = self.lookups.get_mut(&id) else { return };
                if l.waiting.map(|(n, _)| n) != Some(from) {
                    return; // a late answer from a contact we already gave up on
                }
                l.waiting = None;
                l.before_best = l.best;
                l.best = from;
                l.best_full = *full;
                let members = ctx.members;
                let found: Vec<Pointer> =
                    pointers.iter().filter(|p| p.holder != ctx.me && members.usable(p.holder)).copied().collect();
                if !found.is_empty() {
                    l.roots.push(if *full { l.before_best } else { from });
                    let candidates = candidates(members, &found);
                    return self.finish(ctx, id, candidates);
                }
                if *claimed {
                    l.roots.push(from);
                    return self.finish(ctx, id, Vec::new());
                }
                let level = l.level;
                for &n in closer {
                    if n == ctx.me || l.pool.contains(&n) {
                        continue;
                    }
                    l.pool.push(n);
                    if !l.shortlist.contains(&n) && members.level(n) <= level && members.usable(n) {
                        l.shortlist.push(n);
                    }
                }
                let key = l.key;
                l.shortlist.sort_by_key(|&n| distance(n, key));
                self.advance(ctx, id);
            }
            DshtMessage::Store { key, pointer, ttl } => self.put(ctx.now, *key, *pointer, *ttl),
        }
    }

    pub fn on_tick(&mut self, ctx: &mut Ctx) {
        while let Some((id, step)) = self.timers.pop_due(ctx.now) {
            let Some(l) = self.lookups.get_mut(&id) else { continue };
            if l.waiting.is_some_and(|(_, s)| s == step) {
                l.waiting = None; // that contact stays in `asked`, so it is skipped
                self.advance(ctx, id);
            }
        }
    }

    /// Inserts a pointer to this node at the roots the lookup found (every level walked).
    pub fn announce(&mut self, ctx: &mut Ctx, object: ObjectId, complete: bool) {
        self.refresh_tables(ctx.members);
        let roots = match self.roots.get(&object) {
            Some(r) if !r.is_empty() => r.clone(),
            _ => {
                // Filled without a lookup of ours: insert at the closest contact per level.
                let key = key_of(object);
                let members = ctx.members;
                self.tables.iter().filter_map(|t| t.closest(key, 1, |n| members.usable(n)).first().copied()).collect()
            }
        };
        let ttl = if complete { self.config.pointer_ttl } else { self.config.fetching_ttl };
        let pointer = Pointer { holder: ctx.me, complete };
        let mut sent = Vec::with_capacity(roots.len());
        for &root in &roots {
            if sent.contains(&root) {
                continue;
            }
            sent.push(root);
            if root == ctx.me {
                self.put(ctx.now, object, pointer, ttl);
            } else {
                ctx.send(root, Message::Dsht(DshtMessage::Store { key: object, pointer, ttl }));
            }
        }
        if complete {
            self.announced.insert(object, Announced { roots: sent, at: ctx.now });
        }
    }

    /// Re-announces a held object whose pointers are past half their life (popular objects stay
    /// findable; cold ones fade out).
    pub fn refresh(&mut self, ctx: &mut Ctx, object: ObjectId) {
        let half = Duration(self.config.pointer_ttl.as_nanos() / 2);
        if self.announced.get(&object).is_some_and(|a| ctx.now - a.at >= half) {
            self.announce(ctx, object, true);
        }
    }

    /// Re-inserts pointers for everything held, at the roots the current tables give: after a
    /// partition heals, the other side learns again what this side holds.
    pub fn reannounce_all(&mut self, ctx: &mut Ctx) {
        let mut held: Vec<ObjectId> = self.announced.keys().copied().collect();
        held.sort_unstable(); // map order is not part of the contract
        for object in held {
            self.roots.remove(&object);
            self.announce(ctx, object, true);
        }
    }

    /// Withdraws this node's pointers for `object`.
    pub fn withdraw(&mut self, ctx: &mut Ctx, object: ObjectId) {
        self.roots.remove(&object);
        let Some(a) = self.announced.remove(&object) else { return };
        let pointer = Pointer { holder: ctx.me, complete: true };
        for root in a.roots {
            if root == ctx.me {
                self.put(ctx.now, object, pointer, Duration::ZERO);
            } else {
                ctx.send(root, Message::Dsht(DshtMessage::Store { key: object, pointer, ttl: Duration::ZERO }));
            }
        }
    }
}

/// Sources from pointers: complete copies before fetchers, then the closest first.
fn candidates(members: &Membership, pointers: &[Pointer]) -> Vec<Candidate> {
    let mut c: Vec<(bool, Candidate)> = pointers
        .iter()
        .map(|p| (!p.complete, Candidate { node: p.holder, kind: FetchKind::Peer, level: members.level(p.holder) }))
        .collect();
    c.sort_by_key(|(fetching, c)| (*fetching, c.level, c.node));
    c.into_iter().map(|(_, c)| c).collect()
}
