//! Every eviction policy against a small, obviously-correct reference model, on random
//! operation sequences with varied sizes, pins, removals, watermarks, object limits, admission
//! and namespace shares.
//!
//! The model keeps resident objects in a plain `Vec`; a "list" is the set of entries with the
//! same tag, ordered by a stamp taken when an entry goes to the list's head, so head and tail are
//! a max and a min over a scan. Ghosts are `Vec`s of ids; heaps are a min over a scan. Nothing
//! is incremental, so there is little to get wrong. After every operation the cache and the model
//! must agree on the outcome, the evictions (in order, with reasons), the bytes and the count.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use reef_core::cache::{
    AccessOutcome, Admission, Cache, CacheConfig, EvictReason, Eviction, NEVER, NamespaceShare, PolicyKind,
};
use reef_core::ids::{NamespaceId, ObjectId};
use std::collections::HashMap;

const OBJECTS: u8 = 24;

#[derive(Clone, Debug)]
enum Op {
    Access(u8),
    Pin(u8),
    Unpin(u8),
    Remove(u8),
}

#[derive(Clone, Debug)]
struct REntry {
    id: u64,
    size: u64,
    ns: u16,
    pins: u32,
    freq: u32,
    list: u8,
    flag: bool,
    key: u64,
    tie: u64,
    order: u64,
}

/// Per-partition policy state of the model.
#[derive(Clone, Debug, Default)]
struct RPolicy {
    share: u64,
    used: u64,
    hand: Option<u64>,
    ghost: Vec<(u64, u64)>,
    ghost2: Vec<(u64, u64)>,
    pending: bool,
    /// ARC: the target of `T1`, which ghost list the access hit (0: none) and the newcomer's size.
    target: f64,
    ghost_hit: u8,
    incoming: u64,
    age: u64,
    stamp: u64,
    counts: HashMap<u64, u8>,
    additions: u64,
    evicted_once: bool,
    /// GDSF: the priority of the object about to be inserted, set before making room.
    newcomer: Option<u64>,
}

struct Model {
    kind: PolicyKind,
    capacity: u64,
    high: u64,
    low: u64,
    max_objects: u64,
    max_size: Option<u64>,
    quotas: bool,
    entries: Vec<REntry>,
    parts: Vec<RPolicy>,
    t: u64,
    pinned_bytes: u64,
    pinned_count: u64,
}

fn ghost_take(g: &mut Vec<(u64, u64)>, id: u64) -> Option<u64> {
    let pos = g.iter().position(|&(x, _)| x == id)?;
    Some(g.remove(pos).1)
}
fn ghost_push(g: &mut Vec<(u64, u64)>, id: u64, size: u64) {
    ghost_take(g, id);
    g.push((id, size));
}
fn ghost_bytes(g: &[(u64, u64)]) -> u64 {
    g.iter().map(|&(_, s)| s).sum()
}

impl Model {
    fn new(cfg: &CacheConfig) -> Model {
        let shared: u64 = cfg.quotas.iter().map(|q| q.bytes).sum();
        let mut shares = vec![cfg.capacity - shared];
        shares.extend(cfg.quotas.iter().map(|q| q.bytes));
        let frac = |f: f64| ((cfg.capacity as f64 * f).round() as u64).min(cfg.capacity);
        Model {
            kind: cfg.policy,
            capacity: cfg.capacity,
            high: frac(cfg.high_watermark),
            low: frac(cfg.low_watermark),
            max_objects: cfg.max_objects.unwrap_or(u64::MAX),
            max_size: cfg.admission.iter().find_map(|a| match a {
                Admission::MaxSize { bytes } => Some(*bytes),
                _ => None,
            }),
            quotas: !cfg.quotas.is_empty(),
            entries: Vec::new(),
            parts: shares.into_iter().map(|share| RPolicy { share, ..RPolicy::default() }).collect(),
            t: 0,
            pinned_bytes: 0,
            pinned_count: 0,
        }
    }

    fn part(&self, ns: u16) -> usize {
        if self.quotas && (ns == 1 || ns == 2) { ns as usize } else { 0 }
    }
    fn pos(&self, id: u64) -> Option<usize> {
        self.entries.iter().position(|e| e.id == id)
    }
    fn members(&self, p: usize, list: u8) -> impl Iterator<Item = usize> + '_ {
        (0..self.entries.len()).filter(move |&i| {
            let e = &self.entries[i];
            e.pins == 0 && self.part(e.ns) == p && e.list == list
        })
    }
    fn attached(&self, p: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.entries.len()).filter(move |&i| self.entries[i].pins == 0 && self.part(self.entries[i].ns) == p)
    }
    fn tail(&self, p: usize, list: u8) -> Option<usize> {
        self.members(p, list).min_by_key(|&i| self.entries[i].order)
    }
    fn head(&self, p: usize, list: u8) -> Option<usize> {
        self.members(p, list).max_by_key(|&i| self.entries[i].order)
    }
    fn bytes(&self, p: usize, list: u8) -> u64 {
        self.members(p, list).map(|i| self.entries[i].size).sum()
    }
    fn count(&self, p: usize, list: u8) -> usize {
        self.members(p, list).count()
    }
    /// The list neighbour towards the head (next larger stamp), SIEVE's hand movement.
    fn newer(&self, p: usize, i: usize) -> Option<usize> {
        let o = self.entries[i].order;
        self.members(p, 0).filter(|&j| self.entries[j].order > o).min_by_key(|&j| self.entries[j].order)
    }
    fn move_to_head(&mut self, i: usize) {
        self.t += 1;
        self.entries[i].order = self.t;
    }
    fn sketch(&self, p: usize, id: u64) -> u8 {
        self.parts[p].counts.get(&id).copied().unwrap_or(0)
    }
    fn sketch_add(&mut self, p: usize, id: u64) {
        let r = &mut self.parts[p];
        let c = r.counts.entry(id).or_insert(0);
        *c = (*c + 1).min(15);
        r.additions += 1;
        if r.additions >= 10 * 1024 {
            r.counts.values_mut().for_each(|c| *c /= 2);
            r.additions = 0;
        }
    }
    fn tick(&mut self, p: usize) -> u64 {
        self.parts[p].stamp += 1;
        self.parts[p].stamp
    }
    fn priority_key(&self, p: usize, e: &REntry, next: u64) -> u64 {
        match self.kind {
            PolicyKind::Lfu => u64::from(e.freq),
            PolicyKind::LfuDa => self.parts[p].age + u64::from(e.freq),
            PolicyKind::Gdsf => {
                (f64::from_bits(self.parts[p].age) + f64::from(e.freq) / e.size.max(1) as f64).max(0.0).to_bits()
            }
            _ => !next,
        }
    }
    fn is_priority(&self) -> bool {
        matches!(self.kind, PolicyKind::Lfu | PolicyKind::LfuDa | PolicyKind::Gdsf | PolicyKind::Belady)
    }

    fn on_insert(&mut self, i: usize, next: u64) {
        let p = self.part(self.entries[i].ns);
        let cap = self.parts[p].share;
        self.move_to_head(i);
        match self.kind {
            PolicyKind::Lfu | PolicyKind::LfuDa | PolicyKind::Gdsf | PolicyKind::Belady => {
                self.entries[i].freq = 1;
                let key = self.priority_key(p, &self.entries[i], next);
                self.entries[i].key = self.parts[p].newcomer.take().unwrap_or(key);
                self.entries[i].tie = self.tick(p);
            }
            PolicyKind::S3Fifo => {
                let small_target = (self.parts[p].share as f64 * 0.1) as u64;
                // (The new entry is already in list 0 here: its own bytes do not count.)
                let small_bytes = self.bytes(p, 0) - self.entries[i].size;
                let filling = !self.parts[p].evicted_once && small_bytes >= small_target;
                self.entries[i].list = u8::from(std::mem::take(&mut self.parts[p].pending) || filling);
                self.entries[i].freq = 0;
            }
            PolicyKind::TwoQ => {
                self.entries[i].list = u8::from(std::mem::take(&mut self.parts[p].pending));
                self.entries[i].freq = 0;
            }
            PolicyKind::Arc => self.entries[i].list = u8::from(std::mem::take(&mut self.parts[p].ghost_hit) != 0),
            PolicyKind::WTinyLfu => {
                self.entries[i].list = 0;
                while self.bytes(p, 0) > cap / 100 {
                    let Some(t) = self.tail(p, 0) else { break };
                    self.entries[t].list = 1;
                    self.move_to_head(t);
                }
            }
            _ => {}
        }
    }

    fn on_hit(&mut self, i: usize, next: u64) {
        let p = self.part(self.entries[i].ns);
        let attached = self.entries[i].pins == 0;
        match self.kind {
            PolicyKind::Lru if attached => self.move_to_head(i),
            PolicyKind::Clock | PolicyKind::Sieve => self.entries[i].flag = true,
            PolicyKind::Lfu | PolicyKind::LfuDa | PolicyKind::Gdsf | PolicyKind::Belady => {
                self.entries[i].freq = (self.entries[i].freq + 1).min(u32::from(u16::MAX));
                self.entries[i].key = self.priority_key(p, &self.entries[i], next);
                if attached {
                    self.entries[i].tie = self.tick(p);
                }
            }
            PolicyKind::S3Fifo => self.entries[i].freq = (self.entries[i].freq + 1).min(3),
            PolicyKind::TwoQ if attached && self.entries[i].list == 1 => self.move_to_head(i),
            PolicyKind::Arc => {
                self.entries[i].list = 1;
                if attached {
                    self.move_to_head(i);
                }
            }
            PolicyKind::WTinyLfu => {
                self.sketch_add(p, self.entries[i].id);
                if attached {
                    self.move_to_head(i);
                    if self.entries[i].list == 1 {
                        self.entries[i].list = 2;
                        let target = (self.parts[p].share - self.parts[p].share / 100) / 10 * 8;
                        while self.bytes(p, 2) > target {
                            let Some(t) = self.tail(p, 2) else { break };
                            self.entries[t].list = 1;
                            self.move_to_head(t);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn prepare(&mut self, p: usize, id: u64, size: u64) {
        let r = &mut self.parts[p];
        match self.kind {
            PolicyKind::S3Fifo | PolicyKind::TwoQ => r.pending = ghost_take(&mut r.ghost, id).is_some(),
            PolicyKind::Arc => {
                let (b1, b2) = (ghost_bytes(&r.ghost) as f64, ghost_bytes(&r.ghost2) as f64);
                r.incoming = size;
                r.ghost_hit = if ghost_take(&mut r.ghost, id).is_some() {
                    r.target = (r.target + (b2 / b1).max(1.0)).min(r.share as f64);
                    1
                } else if ghost_take(&mut r.ghost2, id).is_some() {
                    r.target = (r.target - (b1 / b2).max(1.0)).max(0.0);
                    2
                } else {
                    0
                };
            }
            _ => {}
        }
    }

    fn admits(&self, p: usize, next: u64) -> bool {
        if self.kind != PolicyKind::Belady {
            return true;
        }
        let min = self.attached(p).map(|i| (self.entries[i].key, self.entries[i].tie)).min();
        min.is_none_or(|(key, _)| next < !key)
    }

    fn detach(&mut self, i: usize) {
        let p = self.part(self.entries[i].ns);
        if self.kind == PolicyKind::Sieve && self.parts[p].hand == Some(self.entries[i].id) {
            self.parts[p].hand = self.newer(p, i).map(|j| self.entries[j].id);
        }
    }

    fn reattach(&mut self, i: usize) {
        let p = self.part(self.entries[i].ns);
        self.move_to_head(i);
        if self.is_priority() {
            self.entries[i].tie = self.tick(p);
        }
    }

    /// Picks, and takes out of the model, the policy's victim in partition `p`.
    fn victim(&mut self, p: usize) -> Option<REntry> {
        let cap = self.parts[p].share;
        let i = match self.kind {
            PolicyKind::Lru | PolicyKind::Fifo => self.tail(p, 0)?,
            PolicyKind::Clock => loop {
                let t = self.tail(p, 0)?;
                if !self.entries[t].flag {
                    break t;
                }
                self.entries[t].flag = false;
                self.move_to_head(t);
            },
            PolicyKind::Sieve => {
                let tail = self.tail(p, 0)?;
                let mut o = self.parts[p].hand.and_then(|id| self.pos(id)).unwrap_or(tail);
                while self.entries[o].flag {
                    self.entries[o].flag = false;
                    o = self.newer(p, o).unwrap_or(tail);
                }
                self.parts[p].hand = self.newer(p, o).map(|j| self.entries[j].id);
                o
            }
            PolicyKind::Lfu | PolicyKind::LfuDa | PolicyKind::Gdsf | PolicyKind::Belady => {
                let i = self.attached(p).min_by_key(|&i| (self.entries[i].key, self.entries[i].tie))?;
                if self.kind != PolicyKind::Belady {
                    self.parts[p].age = self.entries[i].key;
                }
                i
            }
            PolicyKind::S3Fifo => {
                self.parts[p].evicted_once = true;
                let small_target = (cap as f64 * 0.1) as u64;
                let mut found = None;
                if self.bytes(p, 1) <= cap - small_target {
                    while let Some(t) = self.tail(p, 0) {
                        if self.entries[t].freq >= 2 {
                            self.entries[t].freq = 0;
                            self.entries[t].list = 1;
                            self.move_to_head(t);
                            continue;
                        }
                        let (id, size) = (self.entries[t].id, self.entries[t].size);
                        let g = &mut self.parts[p].ghost;
                        ghost_push(g, id, size);
                        while ghost_bytes(g) > (cap as f64 * 0.9) as u64 {
                            g.remove(0);
                        }
                        found = Some(t);
                        break;
                    }
                }
                match found {
                    Some(t) => t,
                    None => loop {
                        let t = self.tail(p, 1)?;
                        if self.entries[t].freq > 0 {
                            self.entries[t].freq -= 1;
                            self.move_to_head(t);
                        } else {
                            break t;
                        }
                    },
                }
            }
            PolicyKind::TwoQ => {
                if self.count(p, 0) > 0 && (self.bytes(p, 0) > (cap as f64 * 0.25) as u64 || self.count(p, 1) == 0) {
                    let t = self.tail(p, 0)?;
                    let (id, size) = (self.entries[t].id, self.entries[t].size);
                    let g = &mut self.parts[p].ghost;
                    ghost_push(g, id, size);
                    while ghost_bytes(g) > (cap as f64 * 0.5) as u64 {
                        g.remove(0);
                    }
                    t
                } else {
                    self.tail(p, 1)?
                }
            }
            PolicyKind::Arc => {
                let (t1, t2) = (self.bytes(p, 0), self.bytes(p, 1));
                let (t1_empty, t2_empty) = (self.count(p, 0) == 0, self.count(p, 1) == 0);
                let r = &mut self.parts[p];
                let (b1, b2) = (ghost_bytes(&r.ghost), ghost_bytes(&r.ghost2));
                let mut ghost = true;
                if r.ghost_hit == 0 {
                    if t1 + b1 + r.incoming > cap {
                        if r.ghost.is_empty() {
                            ghost = t1_empty;
                        } else {
                            r.ghost.remove(0);
                        }
                    } else if t1 + t2 + b1 + b2 >= 2 * cap && !r.ghost2.is_empty() {
                        r.ghost2.remove(0);
                    }
                }
                let from_t1 = !ghost
                    || (!t1_empty && (t1 as f64 > r.target || (t1 as f64 == r.target && r.ghost_hit == 2)))
                    || t2_empty;
                let t = self.tail(p, if from_t1 { 0 } else { 1 })?;
                let (id, size) = (self.entries[t].id, self.entries[t].size);
                let r = &mut self.parts[p];
                if ghost {
                    ghost_push(if from_t1 { &mut r.ghost } else { &mut r.ghost2 }, id, size);
                }
                t
            }
            PolicyKind::WTinyLfu => match (self.head(p, 1), self.tail(p, 1)) {
                (Some(newest), Some(oldest)) => {
                    let (fn_, fo) = (self.sketch(p, self.entries[newest].id), self.sketch(p, self.entries[oldest].id));
                    if newest != oldest && fn_ > fo { oldest } else { newest }
                }
                _ => self.tail(p, 2).or_else(|| self.tail(p, 0))?,
            },
        };
        Some(self.entries.remove(i))
    }

    fn access(&mut self, id: u64, size: u64, ns: u16, next: u64, ev: &mut Vec<Eviction>) -> AccessOutcome {
        if let Some(i) = self.pos(id) {
            self.on_hit(i, next);
            return AccessOutcome::Hit;
        }
        let p = self.part(ns);
        if self.kind == PolicyKind::WTinyLfu {
            self.sketch_add(p, id);
        }
        if size > self.capacity {
            return AccessOutcome::Rejected;
        }
        if self.max_size.is_some_and(|m| size > m) {
            return AccessOutcome::NotAdmitted;
        }
        if self.kind == PolicyKind::S3Fifo && size >= (self.parts[p].share as f64 * 0.1) as u64 {
            return AccessOutcome::NotAdmitted;
        }
        if self.kind == PolicyKind::TwoQ && size > (self.parts[p].share as f64 * 0.25) as u64 {
            return AccessOutcome::NotAdmitted;
        }
        let used: u64 = self.entries.iter().map(|e| e.size).sum();
        let over_bytes = used + size > self.high;
        let needs_room = over_bytes || self.entries.len() as u64 + 1 > self.max_objects;
        if needs_room {
            if self.pinned_bytes + size > self.capacity || self.pinned_count + 1 > self.max_objects {
                return AccessOutcome::Rejected;
            }
            if !self.admits(p, next) {
                return AccessOutcome::NotAdmitted;
            }
        }
        self.prepare(p, id, size);
        if self.kind == PolicyKind::Gdsf {
            let l = f64::from_bits(self.parts[p].age);
            self.parts[p].newcomer = Some((l + 1.0 / size.max(1) as f64).max(0.0).to_bits());
        }
        if needs_room {
            let target = if over_bytes { self.low } else { u64::MAX };
            loop {
                let used: u64 = self.entries.iter().map(|e| e.size).sum();
                let bytes_over = used + size > target;
                if !bytes_over && (self.entries.len() as u64) < self.max_objects {
                    break;
                }
                let pick = (0..self.parts.len())
                    .filter(|&q| self.attached(q).next().is_some())
                    .map(|q| {
                        let incoming = if q == p { size } else { 0 };
                        (q, i128::from(self.parts[q].used + incoming) - i128::from(self.parts[q].share))
                    })
                    .fold(None, |best: Option<(usize, i128)>, (q, over)| match best {
                        Some((_, b)) if b >= over => best,
                        _ => Some((q, over)),
                    });
                let Some((q, over)) = pick else { break };
                if q == p
                    && let Some(newcomer) = self.parts[p].newcomer
                    && self.attached(p).map(|i| self.entries[i].key).min().is_some_and(|lowest| newcomer < lowest)
                {
                    // The newcomer is worth least: it is the one that leaves.
                    self.parts[p].age = newcomer;
                    self.parts[p].newcomer = None;
                    return AccessOutcome::NotAdmitted;
                }
                let Some(v) = self.victim(q) else { break };
                self.parts[q].used -= v.size;
                let reason = if self.quotas && over > 0 {
                    EvictReason::Quota
                } else if bytes_over {
                    EvictReason::Capacity
                } else {
                    EvictReason::ObjectLimit
                };
                ev.push(Eviction { id: ObjectId(v.id), size: v.size, namespace: NamespaceId(v.ns), reason });
            }
        }
        // 2Q's `Am` keeps to three quarters of its partition on its own.
        if self.kind == PolicyKind::TwoQ && self.parts[p].pending {
            let am_target = self.parts[p].share - (self.parts[p].share as f64 * 0.25) as u64;
            while self.bytes(p, 1) + size > am_target {
                let Some(t) = self.tail(p, 1) else { break };
                let v = self.entries.remove(t);
                self.parts[p].used -= v.size;
                ev.push(Eviction {
                    id: ObjectId(v.id),
                    size: v.size,
                    namespace: NamespaceId(v.ns),
                    reason: EvictReason::Capacity,
                });
            }
        }
        self.entries.push(REntry { id, size, ns, pins: 0, freq: 0, list: 0, flag: false, key: 0, tie: 0, order: 0 });
        self.parts[p].used += size;
        let i = self.entries.len() - 1;
        self.on_insert(i, next);
        AccessOutcome::Inserted
    }

    fn pin(&mut self, id: u64) -> bool {
        let Some(i) = self.pos(id) else { return false };
        if self.entries[i].pins == 0 {
            self.pinned_bytes += self.entries[i].size;
            self.pinned_count += 1;
            self.detach(i);
        }
        self.entries[i].pins += 1;
        true
    }

    fn unpin(&mut self, id: u64) {
        let Some(i) = self.pos(id) else { return };
        if self.entries[i].pins == 0 {
            return;
        }
        self.entries[i].pins -= 1;
        if self.entries[i].pins == 0 {
            self.pinned_bytes -= self.entries[i].size;
            self.pinned_count -= 1;
            self.reattach(i);
        }
    }

    fn remove(&mut self, id: u64, ev: &mut Vec<Eviction>) -> bool {
        match self.pos(id) {
            Some(i) if self.entries[i].pins == 0 => {
                self.detach(i);
                let e = self.entries.remove(i);
                let p = self.part(e.ns);
                self.parts[p].used -= e.size;
                ev.push(Eviction {
                    id: ObjectId(e.id),
                    size: e.size,
                    namespace: NamespaceId(e.ns),
                    reason: EvictReason::Removed,
                });
                true
            }
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
struct Case {
    capacity: u64,
    sizes: Vec<u64>,
    watermarks: (f64, f64),
    max_objects: Option<u64>,
    quotas: bool,
    max_size: bool,
    ops: Vec<Op>,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        16 => (0..OBJECTS).prop_map(Op::Access),
        1 => (0..OBJECTS).prop_map(Op::Pin),
        1 => (0..OBJECTS).prop_map(Op::Unpin),
        1 => (0..OBJECTS).prop_map(Op::Remove),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        40u64..=200,
        prop::collection::vec(1u64..=40, OBJECTS as usize),
        prop_oneof![Just((1.0, 1.0)), Just((0.9, 0.6))],
        prop_oneof![Just(None), Just(Some(5u64))],
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(op(), 1..300),
    )
        .prop_map(|(capacity, sizes, watermarks, max_objects, quotas, max_size, ops)| Case {
            capacity,
            sizes,
            watermarks,
            max_objects,
            quotas,
            max_size,
            ops,
        })
}

fn config(policy: PolicyKind, c: &Case) -> CacheConfig {
    let mut cfg = CacheConfig::new(c.capacity, policy);
    (cfg.high_watermark, cfg.low_watermark) = c.watermarks;
    cfg.max_objects = c.max_objects;
    if c.quotas {
        cfg.quotas = vec![
            NamespaceShare { namespace: NamespaceId(1), bytes: c.capacity / 3, ..Default::default() },
            NamespaceShare { namespace: NamespaceId(2), bytes: c.capacity / 4, ..Default::default() },
        ];
    }
    if c.max_size {
        cfg.admission = vec![Admission::MaxSize { bytes: 30 }];
    }
    cfg
}

/// Next-access position of each operation (only accesses count), for Belady.
fn next_accesses(ops: &[Op]) -> Vec<u64> {
    let mut next = vec![NEVER; ops.len()];
    let mut seen: HashMap<u8, u64> = HashMap::new();
    for (k, op) in ops.iter().enumerate().rev() {
        if let Op::Access(o) = op {
            next[k] = seen.get(o).copied().unwrap_or(NEVER);
            seen.insert(*o, k as u64);
        }
    }
    next
}

fn check(policy: PolicyKind, c: &Case) -> Result<(), TestCaseError> {
    let cfg = config(policy, c);
    let mut cache = Cache::try_new(cfg.clone()).expect("valid config");
    let mut model = Model::new(&cfg);
    let next = next_accesses(&c.ops);
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for (k, op) in c.ops.iter().enumerate() {
        got.clear();
        want.clear();
        match *op {
            Op::Access(o) => {
                let (id, size, ns) = (u64::from(o), c.sizes[o as usize], u16::from(o % 3));
                let a = cache.access(ObjectId(id), size, NamespaceId(ns), next[k], &mut got);
                let b = model.access(id, size, ns, next[k], &mut want);
                prop_assert_eq!(a, b, "op {} {:?}", k, op);
            }
            Op::Pin(o) => prop_assert_eq!(cache.pin(ObjectId(o.into())), model.pin(o.into()), "op {}", k),
            Op::Unpin(o) => {
                cache.unpin(ObjectId(o.into()));
                model.unpin(o.into());
            }
            Op::Remove(o) => {
                let a = cache.remove(ObjectId(o.into()), &mut got);
                prop_assert_eq!(a, model.remove(o.into(), &mut want), "op {}", k);
            }
        }
        prop_assert_eq!(&got, &want, "evictions at op {} {:?}", k, op);
        prop_assert_eq!(cache.len(), model.entries.len(), "count at op {}", k);
        prop_assert_eq!(cache.used_bytes(), model.entries.iter().map(|e| e.size).sum::<u64>(), "bytes at op {}", k);
        prop_assert!(cache.used_bytes() <= c.capacity);
    }
    for o in 0..OBJECTS {
        prop_assert_eq!(cache.contains(ObjectId(o.into())), model.pos(o.into()).is_some(), "object {}", o);
    }
    Ok(())
}

fn runner_config() -> Config {
    Config { cases: 96, rng_seed: RngSeed::Fixed(0x2eef_cac4e), failure_persistence: None, ..Config::default() }
}

macro_rules! policy_tests {
    ($($name:ident => $kind:expr),* $(,)?) => {
        $(
            proptest! {
                #![proptest_config(runner_config())]
                #[test]
                fn $name(c in case()) {
                    check($kind, &c)?;
                }
            }
        )*
    };
}

policy_tests! {
    lru_matches_model => PolicyKind::Lru,
    fifo_matches_model => PolicyKind::Fifo,
    clock_matches_model => PolicyKind::Clock,
    sieve_matches_model => PolicyKind::Sieve,
    lfu_matches_model => PolicyKind::Lfu,
    lfuda_matches_model => PolicyKind::LfuDa,
    gdsf_matches_model => PolicyKind::Gdsf,
    belady_matches_model => PolicyKind::Belady,
    s3fifo_matches_model => PolicyKind::S3Fifo,
    twoq_matches_model => PolicyKind::TwoQ,
    arc_matches_model => PolicyKind::Arc,
    wtinylfu_matches_model => PolicyKind::WTinyLfu,
}

#[test]
fn the_model_check_can_fail() {
    // A model that disagrees (FIFO checked against LRU's behaviour) must be caught.
    let c = Case {
        capacity: 20,
        sizes: vec![10; OBJECTS as usize],
        watermarks: (1.0, 1.0),
        max_objects: None,
        quotas: false,
        max_size: false,
        ops: vec![Op::Access(0), Op::Access(1), Op::Access(0), Op::Access(2)],
    };
    let cfg = config(PolicyKind::Lru, &c);
    let mut cache = Cache::new(config(PolicyKind::Fifo, &c));
    let mut model = Model::new(&cfg);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for op in &c.ops {
        if let Op::Access(o) = op {
            cache.access(ObjectId(u64::from(*o)), 10, NamespaceId(0), NEVER, &mut a);
            model.access(u64::from(*o), 10, 0, NEVER, &mut b);
        }
    }
    assert_ne!(a, b, "LRU keeps 0, FIFO evicts it");
    assert!(check(PolicyKind::Lru, &c).is_ok());
}
