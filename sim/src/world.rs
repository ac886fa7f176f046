//! The simulated world: one reef-core node per cache, worker node and origin, driven through
//! its sans-IO interface, with the data plane played on the flow network.
//!
//! A node's `Fetch` becomes a request to the source node's core (after the one-way latency);
//! the source's `Serve` becomes a flow on the route between them; the flow's end becomes
//! `ServeDone` at the source and `FetchDone` at the requester (after the latency). Messages
//! travel with the route's latency. Nothing here decides what to cache or where to fetch from:
//! that is the core's job; the world only moves bytes and messages and fails what breaks.
//!
//! Every served request is attributed to the node whose store (or origin) its bytes came from:
//! a transfer carries its bytes' holder and the number of fills they passed through, so a
//! worker node's fetch from its site cache counts as an origin fetch when the site cache
//! itself fetched the object from the origin.

use crate::engine::Engine;
use crate::layout::Layout;
use crate::network::{Ended, FlowId, LinkIdx, Network, Wakeup};
use crate::outage::{self, Outage, Target};
use crate::scenario::Scenario;
use crate::series::{SampledRequest, Series};
use crate::stats::{BytesFrom, Stats};
use crate::topology::Topology;
use crate::workload::{Demand, Workload};
use reef_core::{
    BitRate, Duration, Event, Failure, FetchError, FetchId, FetchKind, FetchResult, Input, NodeId, ObjectRef, Output,
    Request, RequestId, RequestKind, Response, Role, SiteId, Source, Tier, Time,
};
use std::collections::HashMap;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// How long a sender waits before it learns that a peer with no route is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const NO_JOB: u32 = u32::MAX;
/// Moving flows report progress this many times per fetch timeout (in one sweep over all
/// flows, so no per-flow events wait in the queue), so the core's idle `fetch_timeout` means
/// what it means in reef-node: a transfer that moves is never cut.
const PROGRESS_PER_TIMEOUT: u64 = 2;

#[derive(Clone, Copy, Debug)]
enum Ev {
    /// Hand the input in this slot to its node.
    Deliver(u32),
    /// The node asked for a tick at this time.
    Tick(u32),
    Net(Wakeup),
    /// Every moving flow reports progress to its requester (see `PROGRESS_PER_TIMEOUT`).
    ProgressSweep,
    Arrival,
    /// The job reads its next file.
    JobNext(u32),
    Outage {
        index: u32,
        start: bool,
    },
}

#[derive(Debug)]
struct SimNode {
    core: reef_core::Node,
    site: u32,
    role: Role,
    /// Outages holding this node down (they may overlap).
    down: u32,
    /// When the pending `Tick` is due (`Time::MAX`: none pending).
    tick_at: Time,
}

#[derive(Clone, Copy, Debug)]
struct ClientReq {
    node: u32,
    site: u32,
    object: ObjectRef,
    tier: Tier,
    size: u64,
    issued: Time,
    job: u32,
    /// Whether this request gets a row in the `requests` table.
    sampled: bool,
    /// The node the client was sent to first, and how many caches it asked so far (it fails
    /// over to the next when one is down).
    first: u32,
    tries: u8,
    /// Where the served bytes came from, once a node answered: (holder, fills on the way).
    from: Option<(u32, u8)>,
}

/// A request the world made to a source node on behalf of a fetch.
#[derive(Clone, Copy, Debug)]
struct PeerReq {
    requester: u32,
    fetch: FetchId,
    size: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
struct FetchState {
    source: u32,
    request: RequestId,
    flow: Option<FlowId>,
}

/// What a flow carries: one fetch's bytes.
#[derive(Clone, Copy, Debug)]
struct Transfer {
    requester: u32,
    fetch: FetchId,
    source: u32,
    request: RequestId,
    size: u64,
    /// The node whose store or origin the bytes come from, and the fills they passed through.
    holder: u32,
    relays: u8,
}

#[derive(Clone, Copy, Debug)]
struct Job {
    site: u32,
    node: u32,
    next: u64,
    left: u64,
}

#[derive(Debug)]
pub struct World {
    engine: Engine<Ev>,
    pub topo: Topology,
    pub layout: Layout,
    net: Network<Transfer>,
    nodes: Vec<SimNode>,
    inputs: Vec<Option<(u32, Input)>>,
    free_inputs: Vec<u32>,
    workload: Workload,
    pub stats: Stats,
    pub series: Series,
    /// Hops of the latest lookup per (node, object), kept only while requests are sampled.
    lookups: FastMap<(u32, u64), u32>,
    clients: FastMap<u64, ClientReq>,
    peer_reqs: FastMap<u64, PeerReq>,
    fetches: FastMap<(u32, u64), FetchState>,
    /// Holder and fills of each fill's completed transfer, until its node has handled it.
    filled: FastMap<(u32, u64), (u32, u8)>,
    /// Where each site's clients turn when their cache is down (after the site cache).
    fallback_cache: Vec<Option<u32>>,
    progress_every: Duration,
    jobs: Vec<Job>,
    free_jobs: Vec<u32>,
    active_jobs: usize,
    next_request: u64,
    pub outages: Vec<Outage>,
    link_down: Vec<u32>,
    link_factor: Vec<f64>,
    /// Active partitions between each pair of regions.
    cuts: Vec<u32>,
    client_rate: BitRate,
    via_director: bool,
    job_think: Duration,
    max_time: Time,
    // Scratch buffers.
    route: Vec<LinkIdx>,
    wakeups: Vec<(Time, Wakeup)>,
    ended: Vec<Ended<Transfer>>,
}

impl World {
    /// Builds the world of a scenario run with `seed`.
    pub fn new(scenario: &Scenario, seed: u64) -> Result<World, String> {
        let w = &scenario.workload;
        let topo = crate::generate::build(&scenario.topology, &w.tier_weights, seed)?;
        let layout = Layout::new(&topo, &scenario.namespaces)?;
        let workload = Workload::new(w, &topo, layout.namespaces.len() as u16, seed)?;
        let horizon = Time::ZERO + w.duration.0;
        let max_time = scenario.run.max_time.map_or(horizon + Duration::from_secs(86_400), |s| Time::ZERO + s.0);
        let bucket = scenario.run.bucket.map_or(Duration((w.duration.0.as_nanos() / 120).max(1_000_000_000)), |b| b.0);
        let outages = outage::plan(&scenario.outages, &scenario.random_outages, &topo, &layout, horizon, seed)?;
        let mut net = Network::metered(bucket);
        for l in &topo.links {
            net.add_link(l.bandwidth.bytes_per_sec());
        }
        for s in &topo.sites {
            net.add_link(s.lan.bytes_per_sec());
        }
        let nodes = layout
            .configs(&topo, &scenario.policy, seed)
            .into_iter()
            .zip(&layout.nodes)
            .map(|(config, spec)| SimNode {
                core: reef_core::Node::new(config),
                site: spec.site,
                role: spec.role,
                down: 0,
                tick_at: Time::MAX,
            })
            .collect();
        let regions = topo.regions.len();
        let mut world = World {
            engine: Engine::new(),
            net,
            nodes,
            inputs: Vec::new(),
            free_inputs: Vec::new(),
            workload,
            stats: Stats::default(),
            series: Series::new(bucket, topo.sites.len(), topo.links.len(), scenario.run.sample_requests),
            lookups: FastMap::default(),
            clients: FastMap::default(),
            peer_reqs: FastMap::default(),
            fetches: FastMap::default(),
            filled: FastMap::default(),
            fallback_cache: fallback_caches(&topo, &layout),
            progress_every: Duration((scenario.policy.fetch_timeout.0.as_nanos() / PROGRESS_PER_TIMEOUT).max(1)),
            jobs: Vec::new(),
            free_jobs: Vec::new(),
            active_jobs: 0,
            next_request: 0,
            outages,
            link_down: vec![0; topo.links.len()],
            link_factor: vec![1.0; topo.links.len()],
            cuts: vec![0; regions * regions],
            client_rate: w.client_bandwidth.0,
            via_director: w.via_director,
            job_think: w.jobs.as_ref().map_or(Duration::ZERO, |j| j.think.0),
            max_time,
            route: Vec::new(),
            wakeups: Vec::new(),
            ended: Vec::new(),
            topo,
            layout,
        };
        for n in 0..world.nodes.len() as u32 {
            world.reschedule_tick(n);
        }
        if let Some(t) = world.workload.next_time() {
            world.engine.schedule(t, Ev::Arrival);
        }
        world.engine.schedule_in(world.progress_every, Ev::ProgressSweep);
        for (i, o) in world.outages.iter().enumerate() {
            world.engine.schedule(o.at, Ev::Outage { index: i as u32, start: true });
            world.engine.schedule(o.at + o.duration, Ev::Outage { index: i as u32, start: false });
        }
        Ok(world)
    }

    pub fn now(&self) -> Time {
        self.engine.now()
    }

    pub fn events(&self) -> u64 {
        self.engine.processed()
    }

    /// Requests not yet issued.
    pub fn requests_left(&self) -> u64 {
        self.workload.left()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Bytes of completed transfers that crossed each WAN link.
    pub fn wan_link_bytes(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.topo.links.len() as u32).map(|l| self.net.link_bytes(l))
    }

    fn finished(&self) -> bool {
        self.workload.left() == 0 && self.clients.is_empty() && self.active_jobs == 0
    }

    /// Runs to the end, calling `progress` every `every` events.
    pub fn run(&mut self, every: u64, progress: &mut dyn FnMut(&World)) {
        let every = every.max(1);
        while !self.finished() {
            let Some((now, ev)) = self.engine.pop() else { break };
            if now > self.max_time {
                break;
            }
            self.dispatch(ev);
            if self.engine.processed() % every == 0 {
                progress(self);
            }
        }
        // Requests still open at the hard stop are counted, never dropped.
        let mut open: Vec<(u64, ClientReq)> = self.clients.drain().collect();
        open.sort_unstable_by_key(|(id, _)| *id);
        for (_, c) in open {
            self.client_failed(&c, "unfinished");
        }
        let unissued = self.workload.left();
        for _ in 0..unissued {
            self.stats.all.requests += 1;
            *self.stats.failures.entry("never_issued").or_default() += 1;
            self.stats.all.failed += 1;
        }
        // Flows cut off by the hard stop carried bytes until then.
        self.net.settle(self.now().min(self.max_time));
        for l in 0..self.topo.links.len() as u32 {
            let buckets = self.net.carried_buckets(l);
            self.series.record_link(l, (0..buckets).map(|b| self.net.carried(l, b)));
        }
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver(slot) => {
                let (node, input) = self.inputs[slot as usize].take().expect("queued input");
                self.free_inputs.push(slot);
                let done = match input {
                    Input::FetchDone { fetch, .. } => Some(fetch.0),
                    _ => None,
                };
                if self.nodes[node as usize].down > 0 && !matches!(input, Input::ServeDone { .. }) {
                    self.undeliverable(node, input);
                } else {
                    self.feed(node, input);
                }
                if let Some(fetch) = done {
                    self.filled.remove(&(node, fetch));
                }
            }
            Ev::ProgressSweep => self.progress_sweep(),
            Ev::Tick(n) => {
                let node = &mut self.nodes[n as usize];
                if node.tick_at != self.engine.now() {
                    return; // superseded by an earlier tick
                }
                node.tick_at = Time::MAX;
                if node.down == 0 {
                    self.feed(n, Input::Tick);
                }
            }
            Ev::Net(w) => {
                let now = self.now();
                let mut ended = std::mem::take(&mut self.ended);
                self.net.wake(now, w, &mut ended, &mut self.wakeups);
                self.flush_wakeups();
                for e in ended.drain(..) {
                    self.transfer_done(e.tag);
                }
                self.ended = ended;
            }
            Ev::Arrival => self.arrival(),
            Ev::JobNext(j) => {
                let job = &mut self.jobs[j as usize];
                let (site, node, index) = (job.site, job.node, job.next);
                job.next += 1;
                job.left -= 1;
                self.issue(node, site, self.object_ref(index), j);
            }
            Ev::Outage { index, start } => self.outage(index as usize, start),
        }
    }

    /// Tells the requester of every flow that moves that its fetch made progress.
    fn progress_sweep(&mut self) {
        let now = self.now();
        let mut moving: Vec<(u32, FetchId, u32)> = Vec::new();
        for (&(requester, fetch), f) in &self.fetches {
            if f.flow.and_then(|flow| self.net.rate(flow)).is_some_and(|r| r > 0.0) {
                moving.push((requester, FetchId(fetch), f.source));
            }
        }
        moving.sort_unstable_by_key(|&(r, f, _)| (r, f.0));
        for (requester, fetch, source) in moving {
            let at = now + self.latency(source, requester);
            self.deliver(at, requester, Input::FetchProgress { fetch });
        }
        self.engine.schedule_in(self.progress_every, Ev::ProgressSweep);
    }

    /// Queues `input` for `node` at `at`.
    fn deliver(&mut self, at: Time, node: u32, input: Input) {
        let slot = match self.free_inputs.pop() {
            Some(s) => {
                self.inputs[s as usize] = Some((node, input));
                s
            }
            None => {
                self.inputs.push(Some((node, input)));
                (self.inputs.len() - 1) as u32
            }
        };
        self.engine.schedule(at, Ev::Deliver(slot));
    }

    fn feed(&mut self, n: u32, input: Input) {
        let now = self.now();
        self.nodes[n as usize].core.handle(now, input);
        while let Some(out) = self.nodes[n as usize].core.poll() {
            self.output(n, out);
        }
        self.reschedule_tick(n);
    }

    fn reschedule_tick(&mut self, n: u32) {
        let now = self.now();
        let node = &mut self.nodes[n as usize];
        if let Some(t) = node.core.poll_timeout() {
            let t = t.max(now);
            if t < node.tick_at {
                node.tick_at = t;
                self.engine.schedule(t, Ev::Tick(n));
            }
        }
    }

    fn flush_wakeups(&mut self) {
        for (t, w) in self.wakeups.drain(..) {
            self.engine.schedule(t, Ev::Net(w));
        }
    }

    fn site_of(&self, n: u32) -> u32 {
        self.nodes[n as usize].site
    }

    fn reachable(&self, a: u32, b: u32) -> bool {
        self.site_reachable(self.site_of(a), self.site_of(b))
    }

    fn site_reachable(&self, sa: u32, sb: u32) -> bool {
        if sa == sb {
            return true;
        }
        let regions = self.topo.regions.len();
        let (ra, rb) = (self.topo.sites[sa as usize].region as usize, self.topo.sites[sb as usize].region as usize);
        self.cuts[ra * regions + rb] == 0 && self.topo.route(sa, sb).is_some()
    }

    /// One-way latency between a client at `site` and node `n`.
    fn client_latency(&self, site: u32, n: u32) -> Duration {
        let s = self.site_of(n);
        if s == site {
            return self.topo.lan_latency;
        }
        self.topo.route(site, s).map_or(CONNECT_TIMEOUT, |(d, _)| d)
    }

    /// One-way latency between two nodes.
    fn latency(&self, a: u32, b: u32) -> Duration {
        let (sa, sb) = (self.site_of(a), self.site_of(b));
        if sa == sb {
            return self.topo.lan_latency;
        }
        self.topo.route(sa, sb).map_or(CONNECT_TIMEOUT, |(d, _)| d)
    }

    /// Fills `self.route` with the links a transfer from `a` to `b` crosses: the site LAN inside
    /// a site; between sites the WAN route, plus the LAN of an end that is a worker node.
    fn fill_route(&mut self, a: u32, b: u32) -> bool {
        let (sa, sb) = (self.site_of(a), self.site_of(b));
        let lan = |s: u32| (self.topo.links.len() as u32) + s;
        self.route.clear();
        if sa == sb {
            self.route.push(lan(sa));
            return true;
        }
        let Some((_, links)) = self.topo.route(sa, sb) else { return false };
        self.route.extend_from_slice(links);
        for (n, s) in [(a, sa), (b, sb)] {
            if self.nodes[n as usize].role == Role::WorkerPeer {
                self.route.push(lan(s));
            }
        }
        true
    }

    fn output(&mut self, n: u32, out: Output) {
        let now = self.now();
        match out {
            Output::Send { to, msg } => {
                let to = to.0;
                let lat = self.latency(n, to);
                if self.reachable(n, to) {
                    self.deliver(now + lat, to, Input::Message { from: NodeId(n), msg });
                } else {
                    self.deliver(now + lat, n, Input::PeerUnreachable { peer: NodeId(to) });
                }
            }
            Output::Fetch { fetch, object, from, kind } => self.start_fetch(n, fetch, object, from.0, kind),
            Output::CancelFetch { fetch } => self.cancel_fetch(n, fetch),
            Output::Respond { request, response } => self.respond(n, request, response),
            Output::Event(e) => self.on_event(n, e),
            // The store is virtual: what it holds is the core's cache index.
            Output::Commit { .. } | Output::Discard { .. } | Output::Evict { .. } => {}
        }
    }

    fn start_fetch(&mut self, n: u32, fetch: FetchId, object: ObjectRef, src: u32, kind: FetchKind) {
        let now = self.now();
        let lat = self.latency(n, src);
        if !self.reachable(n, src) {
            let done = Input::FetchDone { fetch, result: FetchResult::Failed(FetchError::Unreachable) };
            self.deliver(now + lat + lat, n, done);
            return;
        }
        let id = self.next_request;
        self.next_request += 1;
        self.peer_reqs.insert(id, PeerReq { requester: n, fetch, size: object.size });
        self.fetches.insert((n, fetch.0), FetchState { source: src, request: RequestId(id), flow: None });
        let request = Request { id: RequestId(id), object, kind: kind.request_kind(NodeId(n)), client_site: None };
        self.deliver(now + lat, src, Input::Request(request));
    }

    fn cancel_fetch(&mut self, n: u32, fetch: FetchId) {
        // Not answered yet: the answer will find no fetch and be released then.
        if let Some(FetchState { source, request, flow: Some(flow) }) = self.fetches.remove(&(n, fetch.0)) {
            let now = self.now();
            self.net.stop(now, flow, &mut self.wakeups);
            self.flush_wakeups();
            self.deliver(now, source, Input::ServeDone { request });
        }
    }

    fn respond(&mut self, n: u32, request: RequestId, response: Response) {
        let now = self.now();
        let Some(pr) = self.peer_reqs.remove(&request.0) else {
            self.respond_to_client(n, request, response);
            return;
        };
        let key = (pr.requester, pr.fetch.0);
        if !self.fetches.contains_key(&key) {
            if let Response::Serve { .. } = response {
                self.deliver(now, n, Input::ServeDone { request });
            }
            return;
        }
        let lat = self.latency(n, pr.requester);
        let reason = match response {
            Response::Serve { size, fetch, .. } => {
                if self.fill_route(n, pr.requester) {
                    let size = size.or(pr.size).unwrap_or(0);
                    let (holder, relays) = self.holder_of(n, fetch);
                    let (requester, fetch) = (pr.requester, pr.fetch);
                    let tag = Transfer { requester, fetch, source: n, request, size, holder, relays };
                    let flow = self.net.start(now, &self.route, size, tag, &mut self.wakeups);
                    self.flush_wakeups();
                    self.fetches.get_mut(&key).expect("checked above").flow = Some(flow);
                    return;
                }
                self.deliver(now, n, Input::ServeDone { request });
                FetchError::Unreachable
            }
            Response::Fail(failure) => failure.fetch_error(),
            Response::Redirect { .. } => FetchError::Refused,
        };
        self.fetches.remove(&key);
        self.deliver(
            now + lat,
            pr.requester,
            Input::FetchDone { fetch: pr.fetch, result: FetchResult::Failed(reason) },
        );
    }

    /// The node whose store or origin bytes that `n` serves come from, and the fills they
    /// passed through: `n` itself for a serve from its store, else its fill's holder.
    fn holder_of(&self, n: u32, fill: Option<FetchId>) -> (u32, u8) {
        match fill.and_then(|f| self.filled.get(&(n, f.0))) {
            Some(&(holder, relays)) => (holder, relays.saturating_add(1)),
            None => (n, 0),
        }
    }

    /// Where a client at `site` got bytes held by `holder`.
    fn bytes_from(&self, site: u32, holder: u32) -> BytesFrom {
        let node = &self.nodes[holder as usize];
        let (own, theirs) = (&self.topo.sites[site as usize], &self.topo.sites[node.site as usize]);
        match node.role {
            Role::Origin => BytesFrom::Origin,
            Role::WorkerPeer if node.site == site => BytesFrom::WorkerNode,
            _ if node.site == site => BytesFrom::SiteCache,
            _ if theirs.tier < own.tier => BytesFrom::ParentTier,
            _ => BytesFrom::OtherSite,
        }
    }

    fn respond_to_client(&mut self, n: u32, request: RequestId, response: Response) {
        let now = self.now();
        let Some(&c) = self.clients.get(&request.0) else { return };
        match response {
            // The download ties up the node (the object's pin) for the transfer time.
            Response::Serve { size, fetch, .. } => {
                let from = self.holder_of(n, fetch);
                self.clients.get_mut(&request.0).expect("open request").from = Some(from);
                let size = size.unwrap_or(c.size);
                let at = now + self.client_latency(c.site, n) + self.client_rate.transfer_time(size);
                self.deliver(at, n, Input::ServeDone { request });
            }
            // The client follows the redirect: back to the client, then on to the cache.
            Response::Redirect { to } => {
                let at = now + self.client_latency(c.site, n) + self.client_latency(c.site, to.0);
                self.clients.get_mut(&request.0).expect("open request").node = to.0;
                let request = Request {
                    id: request,
                    object: c.object,
                    kind: RequestKind::Client,
                    client_site: Some(SiteId(c.site)),
                };
                self.deliver(at, to.0, Input::Request(request));
            }
            Response::Fail(_) => {}
        }
    }

    fn transfer_done(&mut self, t: Transfer) {
        let now = self.now();
        self.fetches.remove(&(t.requester, t.fetch.0));
        self.filled.insert((t.requester, t.fetch.0), (t.holder, t.relays));
        self.deliver(now, t.source, Input::ServeDone { request: t.request });
        let lat = self.latency(t.source, t.requester);
        let done = Input::FetchDone { fetch: t.fetch, result: FetchResult::Complete { size: t.size } };
        self.deliver(now + lat, t.requester, done);
        let s = &mut self.stats;
        s.transfers += 1;
        if self.nodes[t.source as usize].role == Role::Origin {
            s.origin_transfers += 1;
            s.bytes_from_origin += t.size;
            self.series.origin_sent(now, self.nodes[t.source as usize].site, t.size);
        }
        if self.nodes[t.source as usize].site == self.nodes[t.requester as usize].site {
            s.bytes_lan += t.size;
        } else {
            s.bytes_wan += t.size;
        }
    }

    /// A transfer that broke (an end went down, its link was cut): both ends are told.
    fn break_transfer(&mut self, t: Transfer) {
        let now = self.now();
        self.fetches.remove(&(t.requester, t.fetch.0));
        self.stats.transfers_broken += 1;
        self.deliver(now, t.source, Input::ServeDone { request: t.request });
        let lat = self.latency(t.source, t.requester);
        let done = Input::FetchDone { fetch: t.fetch, result: FetchResult::Failed(FetchError::Broken) };
        self.deliver(now + lat, t.requester, done);
    }

    fn on_event(&mut self, n: u32, e: Event) {
        let s = &mut self.stats;
        match e {
            Event::Completed { request, object, outcome } => {
                // A director's redirect is not the end of the request.
                if self.nodes[n as usize].role == Role::Director && outcome.is_ok() {
                    return;
                }
                if let Some(c) = self.clients.remove(&request.0) {
                    let hops = self.lookups.remove(&(n, c.object.id.0)).unwrap_or(0);
                    let latency = (self.now() - c.issued) + self.client_latency(c.site, n);
                    let outcome = outcome.map(|_| {
                        let (holder, relays) = c.from.unwrap_or((n, 0));
                        (self.bytes_from(c.site, holder), relays)
                    });
                    self.client_done(&c, outcome, latency, hops);
                } else {
                    self.lookups.remove(&(n, object.0));
                }
            }
            Event::Lookup { object, hops, found } => {
                if self.series.sampling() {
                    self.lookups.insert((n, object.0), hops);
                }
                s.lookups += 1;
                s.lookup_hops += u64::from(hops);
                s.lookups_found += u64::from(found > 0);
            }
            Event::FetchStarted { source, .. } => match source {
                Source::Origin { .. } => s.origin_fetches += 1,
                Source::Peer { .. } => s.peer_fetches += 1,
                Source::Local => {}
            },
            Event::Failover { .. } => s.failovers += 1,
            Event::Coalesced { .. } => s.coalesced += 1,
            Event::Admitted { size, .. } => {
                s.admitted += 1;
                let (now, site) = (self.now(), self.nodes[n as usize].site);
                self.series.admitted(now, site, size);
            }
            Event::NotAdmitted { .. } => s.not_admitted += 1,
            Event::Evicted { .. } => s.evicted += 1,
            Event::PeerDown { .. } => s.peer_down += 1,
            _ => {}
        }
    }

    /// A client request ended with the core's outcome after `latency`: counted, sampled, and
    /// its job moves on.
    fn client_done(&mut self, c: &ClientReq, outcome: Result<(BytesFrom, u8), Failure>, latency: Duration, hops: u32) {
        let now = self.now();
        self.stats.completed(c.tier, c.size, outcome, latency.as_nanos());
        let source = match outcome {
            Ok((from, relays)) => {
                self.series.completed(now, c.site, c.tier, c.size, from, relays, latency);
                from.name()
            }
            Err(_) => {
                self.series.failed(now, c.site);
                "failed"
            }
        };
        self.sample(c, source, latency, hops);
        self.job_step(c.job);
    }

    /// A client request failed in the simulator (its node was down, or the run stopped).
    fn client_failed(&mut self, c: &ClientReq, reason: &'static str) {
        // At the hard stop the clock may already stand at the first event past it.
        let now = self.now().min(self.max_time);
        self.stats.failed_in_driver(c.tier, reason);
        self.series.failed(now, c.site);
        self.sample(c, "failed", now - c.issued, 0);
        self.job_step(c.job);
    }

    fn sample(&mut self, c: &ClientReq, source: &'static str, latency: Duration, lookup_hops: u32) {
        if c.sampled {
            self.series.sample(SampledRequest {
                issued: c.issued,
                site: c.site,
                tier: c.tier,
                object: c.object.id.0,
                bytes: c.size,
                source,
                latency,
                lookup_hops,
            });
        }
    }

    /// The input reached a node that is down.
    fn undeliverable(&mut self, n: u32, input: Input) {
        let now = self.now();
        match input {
            Input::Request(r) => {
                if let Some(c) = self.clients.remove(&r.id.0) {
                    // The client's connection attempt times out; it tries its next cache.
                    self.client_failover(r.id.0, c, CONNECT_TIMEOUT);
                } else if let Some(pr) = self.peer_reqs.remove(&r.id.0)
                    && self.fetches.remove(&(pr.requester, pr.fetch.0)).is_some()
                {
                    let lat = self.latency(n, pr.requester);
                    let done =
                        Input::FetchDone { fetch: pr.fetch, result: FetchResult::Failed(FetchError::Unreachable) };
                    self.deliver(now + lat, pr.requester, done);
                }
            }
            Input::Message { from, .. } => {
                let lat = self.latency(n, from.0);
                self.deliver(now + lat, from.0, Input::PeerUnreachable { peer: NodeId(n) });
            }
            // Results and timers of a down node are lost with it; when it comes back, its own
            // fetch timeouts fail over.
            _ => {}
        }
    }

    fn arrival(&mut self) {
        let now = self.now();
        let a = self.workload.take(now);
        if let Some(t) = self.workload.next_time() {
            self.engine.schedule(t, Ev::Arrival);
        }
        let workers = self.layout.site_workers[a.site as usize].clone();
        // Jobs run on worker nodes and read through their caches; other clients go to the
        // site cache, or ask the director for one.
        let node = if !workers.is_empty() {
            workers.start + a.pick % (workers.end - workers.start)
        } else if self.via_director {
            self.layout.director
        } else {
            self.layout.site_cache[a.site as usize]
        };
        match a.demand {
            Demand::Object(index) => self.issue(node, a.site, self.object_ref(index), NO_JOB),
            Demand::Traced { id, size } => {
                let namespace = reef_core::NamespaceId(self.workload.catalog.namespace_of_id(id));
                self.issue(node, a.site, ObjectRef { id: reef_core::ObjectId(id), namespace, size: Some(size) }, NO_JOB)
            }
            Demand::Job { first, files } => {
                let job = Job { site: a.site, node, next: first + 1, left: files - 1 };
                let j = match self.free_jobs.pop() {
                    Some(j) => {
                        self.jobs[j as usize] = job;
                        j
                    }
                    None => {
                        self.jobs.push(job);
                        (self.jobs.len() - 1) as u32
                    }
                };
                self.active_jobs += 1;
                self.issue(node, a.site, self.object_ref(first), j);
            }
        }
    }

    /// A client at `site` asks `node` for `object`.
    fn issue(&mut self, node: u32, site: u32, object: ObjectRef, job: u32) {
        let now = self.now();
        let size = object.size.unwrap_or(0);
        let tier = self.topo.sites[site as usize].tier;
        let id = self.next_request;
        self.next_request += 1;
        let sampled = self.series.samples(self.stats.all.requests);
        self.stats.issued(tier, size);
        self.series.issued(now, site);
        let c =
            ClientReq { node, site, object, tier, size, issued: now, job, sampled, first: node, tries: 1, from: None };
        self.send_client_request(id, c, now);
    }

    fn send_client_request(&mut self, id: u64, c: ClientReq, at: Time) {
        self.clients.insert(id, c);
        let request = Request {
            id: RequestId(id),
            object: c.object,
            kind: RequestKind::Client,
            client_site: Some(SiteId(c.site)),
        };
        let at = at + self.client_latency(c.site, c.node);
        self.deliver(at, c.node, Input::Request(request));
    }

    /// The caches a client at `site` tries, in order, as `reef get` tries its sources: the one
    /// it was sent to, its site cache, then the cache of the nearest other site.
    fn client_sources(&self, site: u32, first: u32) -> [Option<u32>; 3] {
        let site_cache = self.layout.site_cache[site as usize];
        [Some(first), (site_cache != first).then_some(site_cache), self.fallback_cache[site as usize]]
    }

    /// The node a client asked is down: it asks the next cache on its list after `wait`, or
    /// fails when none is left.
    fn client_failover(&mut self, id: u64, mut c: ClientReq, wait: Duration) {
        // A cache the client cannot reach (its own site's links are down) is no option.
        let next = self
            .client_sources(c.site, c.first)
            .into_iter()
            .flatten()
            .skip(c.tries as usize)
            .find(|&n| self.site_of(n) == c.site || self.site_reachable(c.site, self.site_of(n)));
        match next {
            Some(node) => {
                self.stats.client_failovers += 1;
                c.node = node;
                c.tries += 1;
                let at = self.now() + wait;
                self.send_client_request(id, c, at);
            }
            None => self.client_failed(&c, "node_down"),
        }
    }

    /// The catalog's object `index`, with its size (the simulator knows every size).
    fn object_ref(&self, index: u64) -> ObjectRef {
        let catalog = &self.workload.catalog;
        ObjectRef {
            id: catalog.id(index),
            namespace: reef_core::NamespaceId(catalog.namespace(index)),
            size: Some(catalog.size(index)),
        }
    }

    /// A job's read ended: read the next file after the think time, or finish.
    fn job_step(&mut self, j: u32) {
        if j == NO_JOB {
            return;
        }
        if self.jobs[j as usize].left > 0 {
            self.engine.schedule_in(self.job_think, Ev::JobNext(j));
        } else {
            self.free_jobs.push(j);
            self.active_jobs -= 1;
        }
    }

    fn outage(&mut self, index: usize, start: bool) {
        let target = self.outages[index].target.clone();
        match target {
            Target::Nodes(nodes) => {
                for n in nodes {
                    self.set_node_down(n, start);
                }
            }
            Target::Site(site) => {
                for n in self.layout.nodes_of_site(site) {
                    self.set_node_down(n, start);
                }
                // No transit through a site that is down.
                let links: Vec<u32> = (0..self.topo.links.len() as u32)
                    .filter(|&l| self.topo.links[l as usize].a == site || self.topo.links[l as usize].b == site)
                    .collect();
                for l in links {
                    self.set_link_down(l, start);
                }
            }
            Target::Link(l) => self.set_link_down(l, start),
            Target::Partition(a, b) => self.set_partition(a, b, start),
            Target::Degrade(l, factor) => {
                self.link_factor[l as usize] = if start { factor } else { 1.0 };
                if self.link_down[l as usize] == 0 {
                    let now = self.now();
                    self.net.set_factor(now, l, self.link_factor[l as usize], &mut self.wakeups);
                    self.flush_wakeups();
                }
            }
        }
    }

    fn set_node_down(&mut self, n: u32, start: bool) {
        let node = &mut self.nodes[n as usize];
        if !start {
            node.down -= 1;
            if node.down == 0 {
                node.tick_at = Time::MAX;
                self.reschedule_tick(n);
            }
            return;
        }
        node.down += 1;
        if node.down > 1 {
            return;
        }
        let mut lost: Vec<(u64, ClientReq)> =
            self.clients.iter().filter(|(_, c)| c.node == n).map(|(&k, &c)| (k, c)).collect();
        lost.sort_unstable_by_key(|(id, _)| *id);
        for (id, c) in lost {
            self.clients.remove(&id);
            // The connection broke: the client tries its next cache at once.
            self.client_failover(id, c, Duration::ZERO);
        }
        let mut touched: Vec<((u32, u64), FetchState)> = self
            .fetches
            .iter()
            .filter(|((requester, _), f)| *requester == n || f.source == n)
            .map(|(&k, &f)| (k, f))
            .collect();
        touched.sort_unstable_by_key(|(k, _)| *k);
        let now = self.now();
        for ((requester, fetch), f) in touched {
            let tag = f.flow.and_then(|flow| self.net.stop(now, flow, &mut self.wakeups));
            self.flush_wakeups();
            match tag {
                Some(t) => self.break_transfer(t),
                None if f.source == n => {
                    // Asked but not answered: the requester learns that its source died.
                    self.fetches.remove(&(requester, fetch));
                    let lat = self.latency(n, requester);
                    let done =
                        Input::FetchDone { fetch: FetchId(fetch), result: FetchResult::Failed(FetchError::Broken) };
                    self.deliver(now + lat, requester, done);
                }
                None => {
                    self.fetches.remove(&(requester, fetch));
                }
            }
        }
    }

    fn set_link_down(&mut self, l: u32, start: bool) {
        let now = self.now();
        let count = &mut self.link_down[l as usize];
        if start {
            *count += 1;
            if *count > 1 {
                return;
            }
            self.net.set_factor(now, l, 0.0, &mut self.wakeups);
            for flow in self.net.flows_on(l) {
                if let Some(t) = self.net.stop(now, flow, &mut self.wakeups) {
                    self.break_transfer(t);
                }
            }
        } else {
            *count -= 1;
            if *count > 0 {
                return;
            }
            self.net.set_factor(now, l, self.link_factor[l as usize], &mut self.wakeups);
        }
        self.flush_wakeups();
        let down = &self.link_down;
        self.topo.compute_routes(&|link| down[link as usize] == 0);
    }

    fn set_partition(&mut self, a: u16, b: u16, start: bool) {
        let regions = self.topo.regions.len();
        for (x, y) in [(a, b), (b, a)] {
            let c = &mut self.cuts[x as usize * regions + y as usize];
            if start { *c += 1 } else { *c -= 1 }
        }
        if !start {
            return;
        }
        let now = self.now();
        let region = |w: &World, n: u32| w.topo.sites[w.site_of(n) as usize].region;
        let mut cut: Vec<((u32, u64), FlowId)> = self
            .fetches
            .iter()
            .filter_map(|(&k, f)| f.flow.map(|flow| (k, f.source, flow)))
            .filter(|&((requester, _), source, _)| {
                let (r1, r2) = (region(self, requester), region(self, source));
                (r1, r2) == (a, b) || (r1, r2) == (b, a)
            })
            .map(|(k, _, flow)| (k, flow))
            .collect();
        cut.sort_unstable_by_key(|(k, _)| *k);
        for (_, flow) in cut {
            if let Some(t) = self.net.stop(now, flow, &mut self.wakeups) {
                self.break_transfer(t);
            }
        }
        self.flush_wakeups();
    }
}

/// For each site, the cache of the nearest other site by route latency (ties: lower site
/// index), where its clients turn when their own site's caches are down.
fn fallback_caches(topo: &Topology, layout: &Layout) -> Vec<Option<u32>> {
    let n = topo.sites.len() as u32;
    (0..n)
        .map(|s| {
            (0..n)
                .filter(|&o| o != s)
                .filter_map(|o| topo.route(s, o).map(|(latency, _)| (latency, o)))
                .min()
                .map(|(_, o)| layout.site_cache[o as usize])
        })
        .collect()
}
