//! The core node: one sans-IO state machine per origin, cache or director.
//!
//! `handle(now, input)` feeds it, `poll()` drains what it decided, `poll_timeout()` says when it
//! next needs a `Tick`. It owns its random generator, seeded from its configuration, so a run is
//! a pure function of the seed and the inputs.

use crate::cache::{Cache, CacheConfig, InsertOutcome};
use crate::event::Event;
use crate::ids::{NamespaceId, NodeId, ObjectId, SiteId};
use crate::protocol::{
    Failure, FetchError, FetchId, FetchKind, FetchResult, Input, Message, ObjectRef, Output, Request, RequestId, RequestKind,
    Response, Source,
};
use crate::timers::Timers;
use crate::units::{Duration, Time};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// What a node does for the deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Holds the master copy of its namespaces.
    Origin,
    /// A site's caching proxy.
    Cache,
    /// Sends each client to a close, healthy cache.
    Director,
    /// A small cache on a worker node that shares with the other workers of its site.
    WorkerPeer,
}

/// Another node this one knows about from its configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub id: NodeId,
    pub site: SiteId,
    pub role: Role,
}

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
    /// Peers known at start (the seed list).
    pub peers: Vec<PeerInfo>,
    /// A fetch that has not completed by then is abandoned and the next source is tried.
    pub fetch_timeout: Duration,
    /// Period of liveness probes to peers; `None` disables probing.
    pub probe_interval: Option<Duration>,
}

impl NodeConfig {
    /// A node with no store, no peers and default timers.
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
            fetch_timeout: Duration::from_secs(30),
            probe_interval: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The fetch's attempt number `attempt` is overdue.
    Fetch {
        fetch: FetchId,
        attempt: u32,
    },
    Probe,
    /// No ack for probe `seq` to `peer`.
    ProbeDeadline {
        peer: NodeId,
        seq: u64,
    },
}

/// An upstream fetch and the requests waiting on it (coalesced misses).
#[derive(Debug)]
struct Fill {
    object: ObjectRef,
    /// Sources still to try, in order.
    remaining: VecDeque<NodeId>,
    current: NodeId,
    attempt: u32,
    waiters: Vec<RequestId>,
}

#[derive(Debug, Default)]
struct PeerHealth {
    alive: bool,
    awaiting: Option<u64>,
}

#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    rng: Xoshiro256PlusPlus,
    cache: Option<Cache>,
    outputs: VecDeque<Output>,
    timers: Timers<Timer>,
    fills: HashMap<FetchId, Fill>,
    fill_of_object: HashMap<ObjectId, FetchId>,
    /// Requests being served from the store: the object stays pinned until `ServeDone`.
    serving: HashMap<RequestId, ObjectId>,
    peers: BTreeMap<NodeId, PeerHealth>,
    next_fetch: u64,
    next_probe_seq: u64,
    evicted: Vec<crate::cache::Eviction>,
}

impl Node {
    pub fn new(config: NodeConfig) -> Node {
        let rng = Xoshiro256PlusPlus::seed_from_u64(config.seed);
        let cache = config.cache.clone().map(Cache::new);
        let peers = config.peers.iter().map(|p| (p.id, PeerHealth { alive: true, awaiting: None })).collect();
        let mut node = Node {
            config,
            rng,
            cache,
            outputs: VecDeque::new(),
            timers: Timers::default(),
            fills: HashMap::new(),
            fill_of_object: HashMap::new(),
            serving: HashMap::new(),
            peers,
            next_fetch: 0,
            next_probe_seq: 0,
            evicted: Vec::new(),
        };
        if let Some(every) = node.config.probe_interval {
            // Spread the first probes so that nodes started together do not probe in lockstep.
            let jitter = node.rng.random_range(0..=every.as_nanos());
            node.timers.set(Time(jitter), Timer::Probe);
        }
        node
    }

    pub fn id(&self) -> NodeId {
        self.config.id
    }
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }
    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }
    /// Whether this node believes `peer` is alive.
    pub fn peer_alive(&self, peer: NodeId) -> Option<bool> {
        self.peers.get(&peer).map(|p| p.alive)
    }

    /// Feeds one input at time `now`.
    pub fn handle(&mut self, now: Time, input: Input) {
        match input {
            Input::Request(req) => self.on_request(now, req),
            Input::Message { from, msg } => self.on_message(from, msg),
            Input::FetchDone { fetch, result } => self.on_fetch_done(now, fetch, result),
            Input::ServeDone { request } => {
                if let (Some(object), Some(cache)) = (self.serving.remove(&request), self.cache.as_mut()) {
                    cache.unpin(object);
                }
            }
            Input::PeerUnreachable { peer } => self.mark_peer(peer, false),
            Input::Tick => self.on_tick(now),
        }
    }

    /// The next decision, until `None`.
    pub fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the node next needs a `Tick`.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.next()
    }

    fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    fn respond(&mut self, request: RequestId, object: ObjectId, response: Response) {
        let outcome = match response {
            Response::Serve { source, .. } => Ok(source),
            Response::Fail(f) => Err(f),
            Response::Redirect { to } => Ok(Source::Peer { node: to, level: 0 }),
        };
        self.outputs.push_back(Output::Respond { request, response });
        self.emit(Event::Completed { request, object, outcome });
    }

    fn on_request(&mut self, now: Time, req: Request) {
        let object = req.object.id;
        match self.config.role {
            Role::Origin => {
                let response = if self.config.serves.contains(&req.object.namespace) {
                    Response::Serve { source: Source::Local, size: req.object.size, fetch: None }
                } else {
                    Response::Fail(Failure::NotFound)
                };
                self.respond(req.id, object, response);
            }
            Role::Director => self.respond(req.id, object, Response::Fail(Failure::NoOrigin)),
            Role::Cache | Role::WorkerPeer => self.cache_request(now, req),
        }
    }

    fn cache_request(&mut self, now: Time, req: Request) {
        let object = req.object.id;
        let hit = self.cache.as_mut().is_some_and(|c| c.get(object));
        if hit {
            let cache = self.cache.as_mut().expect("hit implies a cache");
            cache.pin(object);
            let size = cache.size_of(object);
            self.serving.insert(req.id, object);
            self.emit(Event::Hit { request: req.id, object });
            self.respond(req.id, object, Response::Serve { source: Source::Local, size, fetch: None });
            return;
        }
        if let RequestKind::Peer { .. } = req.kind {
            self.respond(req.id, object, Response::Fail(Failure::NotCached));
            return;
        }
        if let Some(&fetch) = self.fill_of_object.get(&object) {
            self.fills.get_mut(&fetch).expect("indexed fill exists").waiters.push(req.id);
            self.emit(Event::Coalesced { request: req.id, object });
            return;
        }
        let sources: VecDeque<NodeId> =
            self.config.origins.get(&req.object.namespace).into_iter().flatten().copied().collect();
        let Some(first) = sources.front().copied() else {
            self.respond(req.id, object, Response::Fail(Failure::NoOrigin));
            return;
        };
        let fetch = FetchId(self.next_fetch);
        self.next_fetch += 1;
        let mut remaining = sources;
        remaining.pop_front();
        self.fills
            .insert(fetch, Fill { object: req.object, remaining, current: first, attempt: 0, waiters: vec![req.id] });
        self.fill_of_object.insert(object, fetch);
        self.start_attempt(now, fetch);
    }

    fn start_attempt(&mut self, now: Time, fetch: FetchId) {
        let fill = &self.fills[&fetch];
        let (object, from, attempt) = (fill.object, fill.current, fill.attempt);
        self.outputs.push_back(Output::Fetch { fetch, object, from, kind: FetchKind::Origin });
        self.emit(Event::FetchStarted { object: object.id, source: Source::Origin { node: from } });
        self.timers.set(now + self.config.fetch_timeout, Timer::Fetch { fetch, attempt });
    }

    fn on_fetch_done(&mut self, now: Time, fetch: FetchId, result: FetchResult) {
        if !self.fills.contains_key(&fetch) {
            return; // cancelled or timed out earlier: late results are ignored
        }
        match result {
            FetchResult::Complete { size } => self.finish_fill(fetch, size),
            FetchResult::Failed(FetchError::NotFound) => self.fail_fill(fetch, Failure::NotFound),
            FetchResult::Failed(FetchError::Unauthorized) => self.fail_fill(fetch, Failure::Unauthorized),
            FetchResult::Failed(reason) => self.failover(now, fetch, reason),
        }
    }

    fn failover(&mut self, now: Time, fetch: FetchId, reason: FetchError) {
        let fill = self.fills.get_mut(&fetch).expect("failover of a live fill");
        let (object, from) = (fill.object.id, fill.current);
        match fill.remaining.pop_front() {
            Some(next) => {
                fill.current = next;
                fill.attempt += 1;
                self.emit(Event::Failover { object, from, reason });
                self.start_attempt(now, fetch);
            }
            None => {
                self.emit(Event::Failover { object, from, reason });
                self.fail_fill(fetch, Failure::AllSourcesDown);
            }
        }
    }

    fn finish_fill(&mut self, fetch: FetchId, size: u64) {
        let fill = self.take_fill(fetch);
        let object = fill.object.id;
        let source = Source::Origin { node: fill.current };
        let admitted = match self.cache.as_mut() {
            Some(cache) => cache.insert(object, size, fill.object.namespace, &mut self.evicted),
            None => InsertOutcome::Rejected,
        };
        for ev in std::mem::take(&mut self.evicted) {
            self.outputs.push_back(Output::Evict { object: ev.id });
            self.emit(Event::Evicted { object: ev.id, size: ev.size, reason: ev.reason });
        }
        if admitted == InsertOutcome::Inserted {
            self.outputs.push_back(Output::Commit { fetch, object });
            self.emit(Event::Admitted { object, size });
        } else {
            self.outputs.push_back(Output::Discard { fetch });
            self.emit(Event::NotAdmitted { object, size });
        }
        for request in fill.waiters {
            let response = Response::Serve { source, size: Some(size), fetch: Some(fetch) };
            self.respond(request, object, response);
        }
    }

    fn fail_fill(&mut self, fetch: FetchId, failure: Failure) {
        let fill = self.take_fill(fetch);
        for request in fill.waiters {
            self.respond(request, fill.object.id, Response::Fail(failure));
        }
    }

    fn take_fill(&mut self, fetch: FetchId) -> Fill {
        let fill = self.fills.remove(&fetch).expect("taking a live fill");
        self.fill_of_object.remove(&fill.object.id);
        fill
    }

    fn on_message(&mut self, from: NodeId, msg: Message) {
        match msg {
            Message::Ping { seq, .. } => {
                self.outputs.push_back(Output::Send { to: from, msg: Message::Ack { seq, gossip: Vec::new() } })
            }
            Message::Ack { seq, .. } => {
                if let Some(p) = self.peers.get_mut(&from)
                    && p.awaiting == Some(seq)
                {
                    p.awaiting = None;
                }
                self.mark_peer(from, true);
            }
            _ => {}
        }
    }

    fn mark_peer(&mut self, peer: NodeId, alive: bool) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.alive != alive {
            p.alive = alive;
            self.emit(if alive { Event::PeerUp { peer } } else { Event::PeerDown { peer } });
        }
    }

    fn on_tick(&mut self, now: Time) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::Fetch { fetch, attempt } => {
                    if self.fills.get(&fetch).is_some_and(|f| f.attempt == attempt) {
                        self.outputs.push_back(Output::CancelFetch { fetch });
                        self.failover(now, fetch, FetchError::TimedOut);
                    }
                }
                Timer::Probe => self.probe(now),
                Timer::ProbeDeadline { peer, seq } => {
                    if self.peers.get(&peer).is_some_and(|p| p.awaiting == Some(seq)) {
                        self.mark_peer(peer, false);
                    }
                }
            }
        }
    }

    fn probe(&mut self, now: Time) {
        let Some(every) = self.config.probe_interval else {
            return;
        };
        let ids: Vec<NodeId> = self.peers.keys().copied().collect();
        for peer in ids {
            self.next_probe_seq += 1;
            let seq = self.next_probe_seq;
            self.peers.get_mut(&peer).expect("known peer").awaiting = Some(seq);
            self.outputs.push_back(Output::Send { to: peer, msg: Message::Ping { seq, gossip: Vec::new() } });
            self.timers.set(now + self.config.fetch_timeout.min(every), Timer::ProbeDeadline { peer, seq });
        }
        self.timers.set(now + every, Timer::Probe);
    }
}
