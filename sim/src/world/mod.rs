//! The simulated world: one reef-core node per cache, worker node and origin, driven through
//! its sans-IO interface, with the data plane played on the flow network.
//!
//! A node's `Fetch` becomes a request to the source node's core (after the one-way latency);
//! the source's `Serve` becomes a flow on the route between them; the flow's end becomes
//! `ServeDone` at the source and `FetchDone` at the requester (after the latency). Messages
//! travel with the route's latency. Nothing here decides what to cache or where to fetch from:
//! that is the core's job; the world only moves bytes and messages and fails what breaks.
//!
//! Streaming: a `Stream` answer starts the client's download (or the requester's flow) at
//! once; the requester of a flow hears `FetchReceiving` when the first block has crossed (at
//! the flow's rate when it started). A streamed download cannot end before the fill it reads:
//! a client's last byte comes at the later of its own pace and the fill's completion, and a
//! flow that has sent all its bytes waits ("parked") for the fill it streams from. A relay's
//! flow is not capped by its fill's rate, so its link shows the bytes a little early.
//!
//! Every served request is attributed to the node whose store (or origin) its bytes came from:
//! a transfer carries its bytes' holder and the number of fills they passed through, so a
//! worker node's fetch from its site cache counts as an origin fetch when the site cache
//! itself fetched the object from the origin.

mod clients;
pub use clients::{bytes_from, client_sources, fallback_caches};
mod faults;
mod parts;
mod tape;
mod transfers;

use crate::engine::Engine;
use crate::layout::Layout;
use crate::network::{Ended, FlowId, LinkIdx, Network, Wakeup};
use crate::outage::{self, Outage, Target};
use crate::scenario::Scenario;
use crate::series::{SampledRequest, Series, count_outcome};
use crate::stats::{BytesFrom, Stats};
use crate::topology::Topology;
use crate::workload::{Demand, Workload};
use reef_core::{
    BLOCK_LIST_TIMEOUT, BitRate, Duration, Event, Failure, FetchError, FetchId, FetchResult, Input, MESSAGE_TIMEOUT,
    NO_ROOM_WAIT, NamespaceId, NodeId, ObjectRef, Output, Request, RequestId, RequestKind, Response, Role, SiteId,
    Source, Tier, Time,
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
    /// A client's last byte arrived (`tries` tells a stale download from a retried request's).
    Downloaded {
        id: u64,
        tries: u8,
    },
    Outage {
        index: u32,
        start: bool,
    },
    /// A recall of this origin's tape library may have ended.
    Tape(u32),
}

/// The kinds of events a run counts (`World::events_by_kind`); a `Deliver` counts as its input.
#[derive(Clone, Copy, Debug)]
enum EventKind {
    Request,
    Message,
    FetchReceiving,
    FetchDone,
    FetchProgress,
    ServeDone,
    PeerUnreachable,
    OtherInput,
    Tick,
    Network,
    ProgressSweep,
    Arrival,
    JobNext,
    Downloaded,
    Fault,
}

impl EventKind {
    const ALL: [EventKind; 15] = {
        use EventKind::*;
        [
            Request,
            Message,
            FetchReceiving,
            FetchDone,
            FetchProgress,
            ServeDone,
            PeerUnreachable,
            OtherInput,
            Tick,
            Network,
            ProgressSweep,
            Arrival,
            JobNext,
            Downloaded,
            Fault,
        ]
    };

    fn name(self) -> &'static str {
        match self {
            EventKind::Request => "request",
            EventKind::Message => "message",
            EventKind::FetchReceiving => "fetch_receiving",
            EventKind::FetchDone => "fetch_done",
            EventKind::FetchProgress => "fetch_progress",
            EventKind::ServeDone => "serve_done",
            EventKind::PeerUnreachable => "peer_unreachable",
            EventKind::OtherInput => "other_input",
            EventKind::Tick => "tick",
            EventKind::Network => "network",
            EventKind::ProgressSweep => "progress_sweep",
            EventKind::Arrival => "arrival",
            EventKind::JobNext => "job_next",
            EventKind::Downloaded => "downloaded",
            EventKind::Fault => "fault",
        }
    }
}

impl Ev {
    fn kind(self, inputs: &[Option<(u32, Input)>]) -> EventKind {
        match self {
            Ev::Deliver(slot) => match inputs[slot as usize].as_ref().map(|(_, input)| input) {
                Some(Input::Request(_)) => EventKind::Request,
                Some(Input::Message { .. }) => EventKind::Message,
                Some(Input::FetchReceiving { .. }) => EventKind::FetchReceiving,
                Some(Input::FetchDone { .. }) => EventKind::FetchDone,
                Some(Input::FetchProgress { .. }) => EventKind::FetchProgress,
                Some(Input::ServeDone { .. }) => EventKind::ServeDone,
                Some(Input::PeerUnreachable { .. }) => EventKind::PeerUnreachable,
                Some(_) | None => EventKind::OtherInput,
            },
            Ev::Tick(_) => EventKind::Tick,
            Ev::Net(_) => EventKind::Network,
            Ev::ProgressSweep => EventKind::ProgressSweep,
            Ev::Arrival => EventKind::Arrival,
            Ev::JobNext(_) => EventKind::JobNext,
            Ev::Downloaded { .. } => EventKind::Downloaded,
            Ev::Outage { .. } | Ev::Tape(_) => EventKind::Fault,
        }
    }
}

#[derive(Debug)]
struct SimNode {
    core: reef_core::Node,
    site: u32,
    role: Role,
    /// Outages holding this node down (they may overlap).
    down: u32,
    /// Outages filling this node's disk: its fills find no room.
    disk_full: u32,
    /// When the pending `Tick` is due (`Time::MAX`: none pending).
    tick_at: Time,
}

/// One client request as it ended, kept when [`World::record_requests`] asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// The catalog's object index (`None` for a trace's object).
    pub index: Option<u64>,
    pub object: ObjectRef,
    pub issued: Time,
    pub site: u32,
    /// The node the client asked first.
    pub node: u32,
    /// Where the bytes came from (a `BytesFrom` name, or `failed`), and the node that held
    /// them (its store or, for an origin, its export).
    pub source: &'static str,
    pub holder: Option<u32>,
    pub first_byte: Duration,
    pub duration: Duration,
}

#[derive(Clone, Copy, Debug)]
struct ClientReq {
    /// The catalog's object index, if the object is the catalog's.
    index: Option<u64>,
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
    /// Where the served bytes came from, once known: (holder, fills on the way).
    from: Option<(u32, u8)>,
    /// Time to the first byte, once the node answered; the lookup hops behind the answer.
    first_byte: Option<Duration>,
    hops: u32,
    /// The fill of `node` this request streams from.
    stream: Option<u64>,
    /// How long the answer held the response back (its namespace's egress limit).
    held: Duration,
}

/// Who reads a fill that is still arriving (a `Stream` answer), until it completes.
#[derive(Clone, Copy, Debug)]
enum Reader {
    Client {
        id: u64,
        tries: u8,
        /// When the client's download started, and when its namespace's egress limit lets the
        /// last byte go (`Time::ZERO`: no limit).
        started: Time,
        paced_end: Time,
    },
    /// A flow to another node's fill, by the source's request id, still moving...
    Flow(u64),
    /// ... or done with its bytes and waiting for the fill.
    Parked(Transfer),
}

/// A flow streaming from a fill: whose fetch it feeds and, once the fill is complete, where
/// its bytes came from.
#[derive(Clone, Copy, Debug)]
struct StreamTransfer {
    requester: u32,
    fetch: u64,
    fill: u64,
    holder: Option<(u32, u8)>,
}

/// A request the world made to a source node on behalf of a fetch.
#[derive(Clone, Copy, Debug)]
struct PeerReq {
    requester: u32,
    fetch: FetchId,
    /// The request as sent (asked again if the source's copy turns out damaged).
    request: Request,
    /// A conditional fetch of a stale copy (`Output::Fetch { revalidate }`).
    revalidate: bool,
}

#[derive(Clone, Copy, Debug)]
struct FetchState {
    object: ObjectRef,
    source: u32,
    request: RequestId,
    flow: Option<FlowId>,
    /// When the origin's block list arrives: no byte is released to readers, and the fill
    /// does not complete, before the requester can check them (see `start_fetch`).
    list_at: Time,
}

/// What a flow carries: one fetch's bytes.
#[derive(Clone, Copy, Debug)]
struct Transfer {
    requester: u32,
    fetch: FetchId,
    source: u32,
    request: RequestId,
    size: u64,
    /// The node whose store or origin the bytes come from, and the fills they passed through
    /// (for a stream, known when its fill completes).
    holder: u32,
    relays: u8,
    /// A `Stream` answer: the source's fill it reads.
    streams_from: Option<FetchId>,
    /// The object's namespace (a third-party origin's answer carries its caching headers).
    namespace: NamespaceId,
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
    /// Fills split across holders (`parts.rs`), by (node, fetch).
    splits: FastMap<(u32, u64), parts::SimSplit>,
    /// Holder and fills of each fill's completed transfer, until its node has handled it.
    filled: FastMap<(u32, u64), (u32, u8)>,
    /// Readers of each fill (node, fetch) that is still arriving.
    readers: FastMap<(u32, u64), Vec<Reader>>,
    /// Flows streaming from a fill, by the source's request id.
    stream_transfers: FastMap<u64, StreamTransfer>,
    /// Bytes of a fill that must arrive before its readers start (`policy.block_size`).
    first_block: u64,
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
    /// Clients' tokens for private namespaces (see `clients::Tokens`).
    tokens: clients::Tokens,
    via_director: bool,
    job_think: Duration,
    /// `workload.sequential`: the next arrival waits for the last one to finish.
    sequential: bool,
    /// Every client request, as it ended (when recorded).
    log: Option<Vec<RequestRecord>>,
    /// Sequential runs: faults that came while a request was in flight, applied once it ends.
    deferred: Vec<(u32, bool)>,
    /// Copies damaged by a `corrupt` fault, by (node, object), until read, evicted or replaced.
    corrupt: std::collections::BTreeSet<(u32, u64)>,
    /// Fills, by (node, fetch), whose node found its disk full: they read nothing more and
    /// fail with `no_space` when the wait for room is over.
    no_room: std::collections::BTreeSet<(u32, u64)>,
    /// Of those, the ones the core gave up first: how many `no_space` answers to drop.
    no_room_cancelled: std::collections::BTreeMap<(u32, u64), u32>,
    max_time: Time,
    /// The tape library behind each origin whose namespace has one (by node).
    pub tapes: Vec<Option<crate::tape::TapeLibrary>>,
    /// The dataset of each catalog object clients asked for (kept only with tape libraries:
    /// a dataset's files share a cartridge).
    dataset_of: Option<FastMap<u64, u64>>,
    /// Fetches, by (origin, requesting node, fetch), that the origin told to wait for a recall:
    /// their next ask of it is an ask again. (A fetch that then goes elsewhere leaves its entry:
    /// at most one per staged fetch.)
    staged: std::collections::HashSet<(u32, u32, u64), foldhash::fast::FixedState>,
    // Scratch buffers.
    route: Vec<LinkIdx>,
    /// The link standing for a (cache, namespace)'s fill limit, if it has one.
    fill_links: FastMap<(u32, u16), LinkIdx>,
    wakeups: Vec<(Time, Wakeup)>,
    ended: Vec<Ended<Transfer>>,
    /// Events handled, by kind (indexed by `EventKind as usize`).
    kinds: [u64; EventKind::ALL.len()],
}

impl World {
    /// Builds the world of a scenario run with `seed`.
    pub fn new(scenario: &Scenario, seed: u64) -> Result<World, String> {
        let w = &scenario.workload;
        let topo = crate::generate::build(&scenario.topology, &w.tier_weights, seed)?;
        let layout = Layout::new(&topo, &scenario.namespaces)?;
        let workload = Workload::new(w, &topo, &layout.namespaces, seed)?;
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
        // A namespace's fill limit in a cache is a link of that capacity on the way in from
        // its origins: the cache's fills of the namespace share it.
        let mut fill_links = FastMap::default();
        for (n, spec) in layout.nodes.iter().enumerate() {
            if matches!(spec.role, Role::Cache | Role::WorkerPeer) {
                for (ns, quota) in layout.quotas.iter().enumerate() {
                    if let Some(fill) = quota.fill {
                        fill_links.insert((n as u32, ns as u16), net.add_link(fill.rate.0.bytes_per_sec()));
                    }
                }
            }
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
                disk_full: 0,
                tick_at: Time::MAX,
            })
            .collect();
        let regions = topo.regions.len();
        // Every origin of a namespace has the same files on tape (salted by the namespace).
        let tapes = (0..layout.nodes.len() as u32)
            .map(|n| {
                let ns = layout.origins.iter().position(|o| o.contains(&n))?;
                let params = layout.tape[ns].clone()?;
                Some(crate::tape::TapeLibrary::new(params, crate::workload::mix64(seed ^ ns as u64), bucket))
            })
            .collect::<Vec<_>>();
        let dataset_of = tapes.iter().any(Option::is_some).then(FastMap::default);
        let mut world = World {
            engine: Engine::new(),
            net,
            fill_links,
            nodes,
            inputs: Vec::new(),
            free_inputs: Vec::new(),
            workload,
            stats: Stats::default(),
            series: Series::new(
                bucket,
                topo.sites.len(),
                topo.links.len(),
                layout.namespaces.len(),
                scenario.run.sample_requests,
            ),
            lookups: FastMap::default(),
            clients: FastMap::default(),
            peer_reqs: FastMap::default(),
            fetches: FastMap::default(),
            splits: FastMap::default(),
            filled: FastMap::default(),
            readers: FastMap::default(),
            stream_transfers: FastMap::default(),
            first_block: scenario.policy.block_size.0,
            fallback_cache: clients::fallback_caches(&topo, &layout),
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
            tokens: clients::Tokens::new(&layout.private, w.invalid_tokens, seed),
            via_director: w.via_director,
            job_think: w.jobs.as_ref().map_or(Duration::ZERO, |j| j.think.0),
            sequential: w.sequential,
            log: None,
            corrupt: Default::default(),
            no_room: Default::default(),
            no_room_cancelled: Default::default(),
            deferred: Vec::new(),
            max_time,
            tapes,
            dataset_of,
            staged: Default::default(),
            route: Vec::new(),
            wakeups: Vec::new(),
            ended: Vec::new(),
            kinds: [0; EventKind::ALL.len()],
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

    /// Events handled so far by kind (a delivered input by the input's kind; "fault": outages
    /// and tape recalls): where a run's events come from.
    pub fn events_by_kind(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        EventKind::ALL.iter().map(|&k| (k.name(), self.kinds[k as usize]))
    }

    /// Requests not yet issued.
    pub fn requests_left(&self) -> u64 {
        self.workload.left()
    }

    /// Keeps a record of every client request from now on (see [`World::requests`]).
    pub fn record_requests(&mut self) {
        self.log.get_or_insert_with(Vec::new);
    }

    /// The recorded requests, in the order they ended.
    pub fn requests(&self) -> &[RequestRecord] {
        self.log.as_deref().unwrap_or_default()
    }

    /// The catalog the workload draws from (objects' paths, namespaces and sizes).
    pub fn catalog(&self) -> &crate::workload::Catalog {
        &self.workload.catalog
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
        self.kinds[ev.kind(&self.inputs) as usize] += 1;
        match ev {
            Ev::Deliver(slot) => {
                let (node, input) = self.inputs[slot as usize].take().expect("queued input");
                self.free_inputs.push(slot);
                // (What arrives for a part of a split fill is the part's news.)
                let Some(input) = self.part_input(node, input) else { return };
                let done = match input {
                    Input::FetchDone { fetch, result } => {
                        Some((fetch.0, matches!(result, FetchResult::Complete { .. })))
                    }
                    _ => None,
                };
                let mut delivered = self.nodes[node as usize].down == 0;
                if !delivered && !matches!(input, Input::ServeDone { .. }) {
                    self.undeliverable(node, input);
                } else if let Some(input) = self.no_room_filter(node, input) {
                    self.feed(node, input);
                } else {
                    delivered = false;
                }
                if let Some((fetch, complete)) = done {
                    if complete && delivered {
                        self.fill_complete(node, fetch);
                    }
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
                self.issue(node, site, Some(index), self.object_ref(index), j);
            }
            // One request at a time, faults come between requests (a job's think time is
            // between requests too): a request never straddles one, so that `reef-lab` can
            // apply them between its requests.
            Ev::Outage { index, start } if self.sequential && !self.clients.is_empty() => {
                self.deferred.push((index, start));
            }
            Ev::Outage { index, start } => self.outage(index as usize, start),
            Ev::Downloaded { id, tries } => self.downloaded(id, tries),
            Ev::Tape(n) => self.tape_wake(n),
        }
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

    fn output(&mut self, n: u32, out: Output) {
        let now = self.now();
        match out {
            Output::Send { to, msg } => {
                let to = to.0;
                let lat = self.latency(n, to);
                if self.reachable(n, to) {
                    self.deliver(now + lat, to, Input::Message { from: NodeId(n), msg });
                } else {
                    // Lost on a cut path: the sender's driver gives up after its timeout.
                    self.deliver(now + MESSAGE_TIMEOUT, n, Input::PeerUnreachable { peer: NodeId(to) });
                }
            }
            Output::Fetch { fetch, object, from, kind, revalidate, patience } => {
                self.start_fetch(n, fetch, object, from.0, kind.request_kind(NodeId(n), patience), revalidate)
            }
            Output::CancelFetch { fetch } => {
                self.forget_no_room(n, fetch);
                self.cancel_parts(n, fetch);
                self.cancel_fetch(n, fetch)
            }
            Output::FetchParts { fetch, lead_end, parts } => self.split_fill(n, fetch, lead_end, parts),
            Output::FetchPart { fetch, part } => {
                if let Some(object) = self.split_object(n, fetch) {
                    self.start_part(n, fetch, part, object);
                }
            }
            Output::CancelPart { fetch, part } => self.cancel_part(n, fetch, part),
            Output::Respond { request, response } => self.respond(n, request, response),
            Output::Event(e) => self.on_event(n, e),
            // The store is virtual: what it holds is the core's cache index (a new or gone copy
            // is no longer a damaged one).
            Output::Commit { object, .. } | Output::Evict { object } => {
                self.corrupt.remove(&(n, object.0));
            }
            Output::Discard { .. } | Output::PassThrough { .. } => {}
        }
    }

    fn on_event(&mut self, n: u32, e: Event) {
        let s = &mut self.stats;
        match e {
            Event::Completed { request, object, outcome } => {
                // A director's redirect is not the end of the request.
                if self.nodes[n as usize].role == Role::Director && outcome.is_ok() {
                    return;
                }
                let hops = self.lookups.remove(&(n, object.0)).unwrap_or(0);
                if let Some(c) = self.clients.get(&request.0) {
                    let latency = (self.now() - c.issued) + self.client_latency(c.site, n);
                    match outcome {
                        // Served: the request ends with its last byte (`downloaded`).
                        Ok(_) => {
                            let c = self.clients.get_mut(&request.0).expect("open request");
                            c.first_byte = Some(latency + c.held);
                            c.hops = hops;
                        }
                        Err(failure) => {
                            let c = self.clients.remove(&request.0).expect("open request");
                            // As `reef get` does, the client tries its next source after an
                            // error answer too, once the answer is back and after its back-off.
                            match self.next_client_source(&c).filter(|_| failure.client_retries()) {
                                Some(next) => {
                                    let backoff = Failure::client_backoff(u32::from(c.tries));
                                    let wait = self.client_latency(c.site, n) + backoff;
                                    self.client_retry(request.0, c, next, wait);
                                }
                                None => self.client_done(&c, Err(failure), latency, latency, hops),
                            }
                        }
                    }
                }
            }
            Event::Throttled { namespace, wait, refused, .. } => {
                let c = s.namespace(namespace);
                if refused {
                    c.egress_refused += 1;
                } else {
                    c.egress_delayed += 1;
                    c.egress_delay_ns += wait.as_nanos();
                }
                let now = self.now();
                if let Some(c) = self.series.namespace(now, namespace) {
                    *(if refused { &mut c.egress_refused } else { &mut c.egress_delayed }) += 1;
                }
            }
            Event::StreamBroken { request, .. } => {
                s.streams_broken += 1;
                self.stream_broken(n, request);
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
            Event::Expired { namespace, .. } => s.namespace(namespace).expired += 1,
            Event::Evicted { namespace, .. } => {
                s.evicted += 1;
                let counters = s.namespace(namespace);
                counters.evicted += 1;
                let now = self.now();
                if let Some(c) = self.series.namespace(now, namespace) {
                    c.evicted += 1;
                }
            }
            Event::PeerDown { .. } => s.peer_down += 1,
            Event::NoRoom { .. } => s.no_room += 1,
            _ => {}
        }
    }
}
