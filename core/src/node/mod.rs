//! The core node: one sans-IO state machine per origin, cache, director or worker-node peer.
//!
//! `handle(now, input)` feeds it, `poll()` drains what it decided, `poll_timeout()` says when it
//! next needs a `Tick`. It owns its random generator, seeded from its configuration, so a run is
//! a pure function of the seed and the inputs.

mod config;
mod director;
mod parts;
mod request_path;

pub use crate::peer::{PeerInfo, Role};
pub use config::{NodeConfig, ThirdParty, default_stage_timeout};
pub use parts::MultiSource;

use crate::Map;
use crate::cache::{Cache, Eviction};
use crate::discovery::{Catalogue, Ctx, Discovery, Found};
use crate::event::Event;
use crate::ids::{NamespaceId, NodeId, ObjectId};
use crate::membership::{Health, Membership};
use crate::protocol::{FetchId, Input, Message, Output, RequestId};
use crate::shaper::{RateLimit, Shaper};
use crate::timers::Timers;
use crate::units::{Duration, Time};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use request_path::Fill;
use std::collections::VecDeque;

/// Makes `shapers` hold exactly `limits`, keeping the state of buckets that stay.
fn set_limits(shapers: &mut Vec<Option<Shaper>>, limits: &[(NamespaceId, RateLimit)]) {
    let mut kept: Vec<Option<Shaper>> = Vec::new();
    for &(ns, limit) in limits {
        let i = usize::from(ns.0);
        if kept.len() <= i {
            kept.resize(i + 1, None);
        }
        let mut shaper = shapers.get_mut(i).and_then(Option::take).unwrap_or_else(|| Shaper::new(limit));
        shaper.set_limit(limit);
        kept[i] = Some(shaper);
    }
    *shapers = kept;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// Attempt `attempt` of a fetch is overdue.
    Fetch { fetch: FetchId, attempt: u32 },
    /// Time to ask a staging source again (after attempt `attempt` said it is staging).
    StagePoll { fetch: FetchId, attempt: u32 },
    /// A part of a split fill may be overdue.
    Part { fetch: FetchId, part: u32 },
}

/// A staging source is asked again no sooner than this (one that says "now" would spin)...
pub const STAGE_POLL_MIN: Duration = Duration::from_secs(1);
/// ... and no later than this, whatever it asks for, so a staged file is read soon after.
pub const STAGE_POLL_MAX: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    rng: Xoshiro256PlusPlus,
    cache: Option<Cache>,
    membership: Membership,
    discovery: Discovery,
    catalogue: Catalogue,
    outputs: VecDeque<Output>,
    timers: Timers<Timer>,
    fills: Map<FetchId, Fill>,
    fill_of_object: Map<ObjectId, FetchId>,
    /// Requests being served from the store: the object stays pinned until `ServeDone`.
    serving: Map<RequestId, ObjectId>,
    /// Requests streaming from a fill in flight (its readers), until it completes.
    streaming: Map<RequestId, FetchId>,
    /// Objects the origin said do not exist, until when.
    negative: Map<ObjectId, Time>,
    /// Size of `negative` at which expired entries are dropped.
    negative_prune_at: usize,
    /// Objects of mutable namespaces (`NodeConfig::max_age`, `NodeConfig::third_party`) held
    /// here, and how long each copy may be served.
    fresh_until: Map<ObjectId, request_path::Freshness>,
    next_fetch: u64,
    /// Egress limits by namespace index (`crate::shaper`).
    shapers: Vec<Option<Shaper>>,
    /// Client requests of a namespace with an egress limit (and the byte range's length they
    /// asked for), until they are answered.
    shaped: Map<RequestId, (NamespaceId, Option<u64>)>,
    /// Scratch buffers reused across calls, so the hot path does not allocate.
    evicted: Vec<Eviction>,
    found: Vec<Found>,
}

impl Node {
    pub fn new(config: NodeConfig) -> Node {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(config.seed);
        let cache = config.cache.clone().map(Cache::new);
        let membership = Membership::new(config.info(), &config.peers, config.membership.clone(), &mut rng);
        let discovery = Discovery::new(&config.discovery, config.id);
        let mut shapers = Vec::new();
        set_limits(&mut shapers, &config.egress);
        Node {
            config,
            rng,
            cache,
            membership,
            discovery,
            catalogue: Catalogue::default(),
            outputs: VecDeque::new(),
            timers: Timers::default(),
            fills: Map::default(),
            fill_of_object: Map::default(),
            serving: Map::default(),
            streaming: Map::default(),
            negative: Map::default(),
            negative_prune_at: 1024,
            fresh_until: Map::default(),
            next_fetch: 0,
            shapers,
            shaped: Map::default(),
            evicted: Vec::new(),
            found: Vec::new(),
        }
    }

    pub fn id(&self) -> NodeId {
        self.config.id
    }
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }
    /// Changes the namespace quotas: storage (see `Cache::set_quotas`; objects over a lowered
    /// limit are evicted now, `Output::Evict`) and egress (a namespace that keeps a limit keeps
    /// what its bucket has admitted; one that loses it is no longer limited). All or nothing:
    /// on an error nothing changes.
    pub fn set_quotas(
        &mut self,
        now: Time,
        quotas: Vec<crate::cache::NamespaceShare>,
        egress: Vec<(NamespaceId, RateLimit)>,
    ) -> Result<(), String> {
        for (ns, limit) in &egress {
            limit.validate().map_err(|e| format!("namespace {}: egress: {e}", ns.0))?;
        }
        let Some(cache) = self.cache.as_mut() else { return Err("this node has no cache".into()) };
        cache.set_quotas(quotas, &mut self.evicted)?;
        self.evict_reported(now);
        set_limits(&mut self.shapers, &egress);
        self.config.egress = egress;
        Ok(())
    }

    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }
    pub fn membership(&self) -> &Membership {
        &self.membership
    }
    /// Requests being served (from the store, each holding a pin, or streaming from a fill)
    /// and fills in flight.
    pub fn open_work(&self) -> (usize, usize) {
        (self.serving.len() + self.streaming.len(), self.fills.len())
    }

    /// Whether fill `fetch` is still in flight (a driver ends its side of a fill the core no
    /// longer has).
    pub fn has_fill(&self, fetch: FetchId) -> bool {
        self.fills.contains_key(&fetch)
    }

    /// Whether this node believes `peer` is alive (`None` if it does not know it).
    pub fn peer_alive(&self, peer: NodeId) -> Option<bool> {
        self.membership.health(peer).map(|h| h != Health::Dead)
    }

    /// Feeds one input at time `now`.
    pub fn handle(&mut self, now: Time, input: Input) {
        let before = self.outputs.len();
        match input {
            Input::Request(req) => self.on_request(now, req),
            Input::Message { from, msg } => self.on_message(now, from, msg),
            Input::FetchDone { fetch, result } => self.on_fetch_done(now, fetch, result),
            Input::FetchReceiving { fetch, size } => self.on_fetch_receiving(now, fetch, size),
            Input::FetchProgress { fetch } => self.on_fetch_progress(now, fetch),
            Input::FetchNoSpace { fetch } => self.on_fetch_no_space(now, fetch),
            Input::PartProgress { fetch, part, reached } => self.on_part_progress(now, fetch, part, reached),
            Input::PartDone { fetch, part, result, reached } => self.on_part_done(now, fetch, part, result, reached),
            Input::ServeDone { request } => match self.serving.remove(&request) {
                Some(object) => {
                    if let Some(cache) = self.cache.as_mut() {
                        cache.unpin(object);
                    }
                }
                None => self.reader_done(request),
            },
            Input::PeerUnreachable { peer } => self.membership.unreachable(now, peer, &mut self.outputs),
            Input::Recovered { object, size } => self.recovered(now, object, size),
            Input::Lost { object } => self.lost(now, object),
            Input::Tick => self.on_tick(now),
        }
        self.after_discovery(now);
        self.after_health_changes(now, before);
    }

    /// Reacts to members that died or came back during this step: a dead node is dropped from
    /// the catalogue (nobody is sent to it); one that returns after a partition gets our
    /// pointers again, so discovery converges.
    fn after_health_changes(&mut self, now: Time, from: usize) {
        let changes: Vec<(NodeId, bool)> = self
            .outputs
            .range(from..)
            .filter_map(|o| match o {
                Output::Event(Event::PeerDown { peer }) => Some((*peer, false)),
                Output::Event(Event::PeerUp { peer }) => Some((*peer, true)),
                _ => None,
            })
            .collect();
        for (peer, up) in changes {
            if up {
                self.with_discovery(now, |d, ctx| d.peer_up(ctx, peer));
            } else {
                self.catalogue.forget(peer);
            }
        }
    }

    /// The next decision, until `None`.
    pub fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the node next needs a `Tick`.
    pub fn poll_timeout(&self) -> Option<Time> {
        [self.timers.next(), self.membership.poll_timeout(), self.discovery.poll_timeout()].into_iter().flatten().min()
    }

    fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    /// Runs `f` on the discovery strategy with everything it may touch.
    fn with_discovery<R>(&mut self, now: Time, f: impl FnOnce(&mut Discovery, &mut Ctx) -> R) -> R {
        let mut ctx = Ctx {
            now,
            me: self.config.id,
            members: &self.membership,
            out: &mut self.outputs,
            rng: &mut self.rng,
            found: &mut self.found,
        };
        f(&mut self.discovery, &mut ctx)
    }

    fn on_message(&mut self, now: Time, from: NodeId, msg: Message) {
        if self.membership.on_message(now, from, &msg, &mut self.outputs, &mut self.rng) {
            return;
        }
        if let Message::Directory(m) = &msg
            && let Some(reply) = self.catalogue.handle(from, m)
        {
            self.outputs.push_back(Output::Send { to: from, msg: Message::Directory(reply) });
            return;
        }
        self.with_discovery(now, |d, ctx| d.on_message(ctx, from, &msg));
    }

    fn on_tick(&mut self, now: Time) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::Fetch { fetch, attempt } => self.fetch_overdue(now, fetch, attempt),
                Timer::StagePoll { fetch, attempt } => self.poll_staging(now, fetch, attempt),
                Timer::Part { fetch, part } => self.part_overdue(now, fetch, part),
            }
        }
        self.membership.on_tick(now, &mut self.outputs, &mut self.rng);
        self.with_discovery(now, |d, ctx| d.on_tick(ctx));
    }
}
