//! A small multi-node test harness (in the spirit of quinn-proto's test `Pair`): it steps several
//! core nodes against a virtual clock, delivers their messages after a configurable latency and
//! plays the data plane (a fetch asks the source node's core; its first byte arrives after the
//! latency, its last after the transfer time too, and a streamed transfer never before the fill
//! it streams from). Failures are injected by taking nodes down or cutting links.
//!
//! It is pure and deterministic like the core itself, so core tests use it without sockets.

use crate::Map;
use crate::event::Event;
use crate::ids::{NodeId, ObjectId};
use crate::node::Node;
use crate::protocol::{
    FetchError, FetchId, FetchResult, Input, ObjectRef, Output, Request, RequestId, RequestKind, Response,
};
use crate::units::{BitRate, Duration, Time};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

/// One thing a node said, with when: the harness's full record of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub at: Time,
    pub node: NodeId,
    pub output: Output,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    /// Deliver an input to a node.
    Deliver(NodeId, DeliverKey),
    /// A transfer's last byte arrives.
    TransferDone(u64),
}

/// Inputs are not `Ord`; the queue orders by (time, sequence) and keeps inputs aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct DeliverKey(u64);

#[derive(Debug)]
struct Transfer {
    requester: NodeId,
    fetch: FetchId,
    source: NodeId,
    source_request: RequestId,
    size: u64,
    /// The requester's attempt this answers (see `Harness::attempts`).
    attempt: u32,
    /// A `Stream` answer: the source's fill it reads (it cannot end before that fill does).
    fill: Option<FetchId>,
}

/// Who reads a streamed response, until the fill it streams from completes.
#[derive(Debug, Clone, Copy)]
enum Reader {
    Client(RequestId),
    /// A transfer whose bytes have all been sent but whose fill is still arriving.
    Transfer(u64),
}

/// How long a message takes between two nodes.
pub type LatencyFn = Box<dyn Fn(NodeId, NodeId) -> Duration>;

pub struct Harness {
    pub nodes: BTreeMap<NodeId, Node>,
    now: Time,
    seq: u64,
    queue: BinaryHeap<Reverse<(Time, u64, Action)>>,
    inputs: Map<u64, Input>,
    latency: LatencyFn,
    bandwidth: BitRate,
    /// A fill's first block: its requester hears `FetchReceiving` once it has crossed.
    pub first_block: u64,
    down: BTreeSet<NodeId>,
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Paths where everything sent is lost without a word (no refusal): only timers end a wait.
    black_holes: BTreeSet<(NodeId, NodeId)>,
    /// Each node's one pending tick (a later or repeated one is not queued).
    tick_at: BTreeMap<NodeId, Time>,
    next_request: u64,
    /// Requests the harness made on another node's behalf, to play a fetch.
    peer_requests: Map<(NodeId, RequestId), (NodeId, FetchId, u32)>,
    /// Each fill's current attempt, as the node driver counts them: an answer to an earlier
    /// (timed out, cancelled) attempt is dropped, never taken for the next one's, which keeps
    /// the fetch id.
    attempts: Map<(NodeId, FetchId), u32>,
    /// The fetch and attempt a queued input answers, by its key.
    answers: Map<u64, (FetchId, u32)>,
    transfers: BTreeMap<u64, Transfer>,
    /// Readers waiting for the fill (node, fetch) they stream from to complete.
    waiting_on_fill: BTreeMap<(NodeId, FetchId), Vec<Reader>>,
    /// Every output of every node, in order.
    pub log: Vec<Record>,
    /// Client responses: (when, node, request, response).
    pub responses: Vec<(Time, NodeId, RequestId, Response)>,
    /// Fetches whose complete transfer a live node was told of (`FetchDone` with `Complete`).
    pub completed: BTreeSet<(NodeId, FetchId)>,
    /// Client requests whose streamed response broke (`Event::StreamBroken`).
    pub broken_streams: BTreeSet<(NodeId, RequestId)>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").field("now", &self.now).field("nodes", &self.nodes.len()).finish()
    }
}

impl Harness {
    /// A harness with a uniform one-way latency and link bandwidth.
    pub fn new(nodes: impl IntoIterator<Item = Node>, latency: Duration, bandwidth: BitRate) -> Harness {
        Self::with_latency(nodes, Box::new(move |_, _| latency), bandwidth)
    }

    pub fn with_latency(nodes: impl IntoIterator<Item = Node>, latency: LatencyFn, bandwidth: BitRate) -> Harness {
        let mut h = Harness {
            nodes: nodes.into_iter().map(|n| (n.id(), n)).collect(),
            now: Time::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            inputs: Map::default(),
            latency,
            bandwidth,
            first_block: crate::Policy::default().block_size.0,
            down: BTreeSet::new(),
            cut: BTreeSet::new(),
            black_holes: BTreeSet::new(),
            tick_at: BTreeMap::new(),
            next_request: 1 << 32,
            peer_requests: Map::default(),
            transfers: BTreeMap::new(),
            waiting_on_fill: BTreeMap::new(),
            attempts: Map::default(),
            answers: Map::default(),
            log: Vec::new(),
            responses: Vec::new(),
            completed: BTreeSet::new(),
            broken_streams: BTreeSet::new(),
        };
        let ids: Vec<NodeId> = h.nodes.keys().copied().collect();
        for id in ids {
            h.schedule_tick(id);
        }
        h
    }

    pub fn now(&self) -> Time {
        self.now
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[&id]
    }

    /// A client request to `node` at time `at`; returns its id.
    pub fn request(&mut self, at: Time, node: NodeId, object: ObjectRef) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        let input = Input::Request(Request {
            id,
            object,
            kind: RequestKind::Client,
            client_site: None,
            length: None,
            metadata_only: false,
        });
        self.push_input(at.max(self.now), node, input);
        id
    }

    /// Delivers any input to a node now (for requests with fields `request` does not set).
    pub fn deliver(&mut self, node: NodeId, input: Input) {
        self.push_input(self.now, node, input);
    }

    /// Takes a node down now: it receives nothing, and transfers it was sending break.
    pub fn kill(&mut self, id: NodeId) {
        self.down.insert(id);
        let broken: Vec<u64> = self.transfers.iter().filter(|(_, t)| t.source == id).map(|(&k, _)| k).collect();
        for k in broken {
            let t = self.transfers.remove(&k).expect("listed transfer");
            let done = Input::FetchDone { fetch: t.fetch, result: FetchResult::Failed(FetchError::Broken) };
            self.push_answer(self.now, t.requester, (t.fetch, t.attempt), done);
            self.push_input(self.now, t.source, Input::ServeDone { request: t.source_request });
        }
    }

    /// Brings a node back (with the state it had: a process restart that kept its store).
    pub fn revive(&mut self, id: NodeId) {
        self.down.remove(&id);
        self.schedule_tick(id);
    }

    /// Cuts (or heals) the path between two nodes, both ways.
    pub fn set_cut(&mut self, a: NodeId, b: NodeId, cut: bool) {
        set_both_ways(&mut self.cut, a, b, cut);
    }

    /// Makes (or stops making) the path between two nodes a black hole, both ways: fetches
    /// and messages across it get no answer at all, as across a cut link of the simulator.
    pub fn set_black_hole(&mut self, a: NodeId, b: NodeId, on: bool) {
        set_both_ways(&mut self.black_holes, a, b, on);
    }

    fn reachable(&self, from: NodeId, to: NodeId) -> bool {
        // A node the harness does not run (one only named in gossip) is unreachable.
        self.nodes.contains_key(&to)
            && !self.down.contains(&to)
            && !self.down.contains(&from)
            && !self.cut.contains(&(from, to))
    }

    fn push(&mut self, at: Time, action: Action) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, action)));
    }

    fn push_input(&mut self, at: Time, node: NodeId, input: Input) -> u64 {
        self.seq += 1;
        let key = self.seq;
        self.inputs.insert(key, input);
        self.push(at, Action::Deliver(node, DeliverKey(key)));
        key
    }

    /// Queues an answer to attempt `attempt` of `node`'s fetch: delivered only if that attempt
    /// is still the fetch's current one then.
    fn push_answer(&mut self, at: Time, node: NodeId, attempt: (FetchId, u32), input: Input) {
        let key = self.push_input(at, node, input);
        self.answers.insert(key, attempt);
    }

    fn schedule_tick(&mut self, id: NodeId) {
        let Some(at) = self.nodes[&id].poll_timeout() else { return };
        let at = at.max(self.now);
        if self.tick_at.get(&id).is_some_and(|&pending| pending >= self.now && pending <= at) {
            return; // that tick comes first, and the node asks again then
        }
        self.tick_at.insert(id, at);
        self.push_input(at, id, Input::Tick);
    }

    /// Runs until nothing is left to do before `until`; the clock ends at `until`.
    pub fn run_until(&mut self, until: Time) {
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if *at > until {
                break;
            }
            let Reverse((at, _, action)) = self.queue.pop().expect("peeked");
            self.now = at;
            self.step(action);
        }
        self.now = until;
    }

    /// Runs `d` more virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    fn step(&mut self, action: Action) {
        match action {
            Action::Deliver(node, DeliverKey(key)) => {
                let input = self.inputs.remove(&key).expect("queued input");
                if let Some((fetch, attempt)) = self.answers.remove(&key)
                    && self.attempts.get(&(node, fetch)) != Some(&attempt)
                {
                    return; // an earlier attempt's answer: that attempt was given up
                }
                // A down node receives nothing, but for the end of its own uploads (it keeps its
                // state, and the bytes it sent are done with, as in the simulator).
                if self.down.contains(&node) && !matches!(input, Input::ServeDone { .. }) {
                    return;
                }
                let is_tick = matches!(input, Input::Tick);
                if is_tick {
                    if self.tick_at.get(&node) != Some(&self.now) {
                        return; // superseded by an earlier tick
                    }
                    self.tick_at.remove(&node);
                }
                if let Input::FetchDone { fetch, result: FetchResult::Complete { .. } } = input {
                    self.completed.insert((node, fetch));
                    self.fill_completed(node, fetch);
                }
                self.nodes.get_mut(&node).expect("known node").handle(self.now, input);
                self.drain(node);
                if !is_tick || self.nodes[&node].poll_timeout().is_some() {
                    self.schedule_tick(node);
                }
            }
            Action::TransferDone(k) => {
                let Some(t) = self.transfers.get(&k) else {
                    return;
                };
                // A stream cannot end before the fill it reads: it waits for it.
                if let Some(fill) = t.fill.filter(|&f| !self.completed.contains(&(t.source, f))) {
                    self.waiting_on_fill.entry((t.source, fill)).or_default().push(Reader::Transfer(k));
                    return;
                }
                self.end_transfer(k, None);
            }
        }
    }

    /// Ends transfer `k`: complete, or failed with `error`.
    fn end_transfer(&mut self, k: u64, error: Option<FetchError>) {
        let Some(t) = self.transfers.remove(&k) else { return };
        self.push_input(self.now, t.source, Input::ServeDone { request: t.source_request });
        let result = match error {
            None => FetchResult::Complete { size: t.size, validity: None },
            Some(e) => FetchResult::Failed(e),
        };
        self.push_answer(self.now, t.requester, (t.fetch, t.attempt), Input::FetchDone { fetch: t.fetch, result });
    }

    /// Fill `fetch` of `node` completed: the readers that were waiting for it end.
    fn fill_completed(&mut self, node: NodeId, fetch: FetchId) {
        for reader in self.waiting_on_fill.remove(&(node, fetch)).unwrap_or_default() {
            match reader {
                Reader::Client(request) => {
                    self.push_input(self.now, node, Input::ServeDone { request });
                }
                Reader::Transfer(k) => self.end_transfer(k, None),
            }
        }
    }

    /// A streamed response of `node` broke: its client or its transfer ends now.
    fn stream_broken(&mut self, node: NodeId, request: RequestId) {
        let transfer = self.transfers.iter().find(|(_, t)| t.source == node && t.source_request == request);
        match transfer.map(|(&k, _)| k) {
            Some(k) => self.end_transfer(k, Some(FetchError::Broken)),
            None => {
                self.broken_streams.insert((node, request));
                self.push_input(self.now, node, Input::ServeDone { request });
            }
        }
        for readers in self.waiting_on_fill.values_mut() {
            readers.retain(|r| match *r {
                Reader::Client(r) => r != request,
                Reader::Transfer(k) => self.transfers.contains_key(&k),
            });
        }
    }

    fn drain(&mut self, node: NodeId) {
        while let Some(output) = self.nodes.get_mut(&node).expect("known node").poll() {
            self.log.push(Record { at: self.now, node, output: output.clone() });
            match output {
                Output::Send { to, .. } if self.black_holes.contains(&(node, to)) => {}
                Output::Send { to, msg } => {
                    if self.reachable(node, to) {
                        let at = self.now + (self.latency)(node, to);
                        self.push_input(at, to, Input::Message { from: node, msg });
                    } else {
                        let at = self.now + (self.latency)(node, to);
                        self.push_input(at, node, Input::PeerUnreachable { peer: to });
                    }
                }
                // (A revalidation is played as a whole fetch here: the harness has no versions.)
                Output::Fetch { fetch, object, from, kind, patience, .. } => {
                    self.start_fetch(node, fetch, object, from, kind.request_kind(node, patience))
                }
                Output::CancelFetch { fetch } => {
                    // Its answer, if one still comes, belongs to no attempt now.
                    *self.attempts.entry((node, fetch)).or_default() += 1;
                }
                Output::Respond { request, response } => self.on_respond(node, request, response),
                Output::FetchParts { .. } | Output::FetchPart { .. } | Output::CancelPart { .. } => {
                    panic!("the harness plays no split fills: leave NodeConfig::multi_source off")
                }
                Output::Event(Event::StreamBroken { request, .. }) => self.stream_broken(node, request),
                Output::Commit { .. }
                | Output::Discard { .. }
                | Output::PassThrough { .. }
                | Output::Evict { .. }
                | Output::Event(_) => {}
            }
        }
    }

    fn start_fetch(&mut self, node: NodeId, fetch: FetchId, object: ObjectRef, from: NodeId, kind: RequestKind) {
        if self.black_holes.contains(&(node, from)) {
            return;
        }
        let attempt = {
            let a = self.attempts.entry((node, fetch)).or_default();
            *a += 1;
            *a
        };
        let one_way = (self.latency)(node, from);
        if !self.reachable(node, from) {
            let done = Input::FetchDone { fetch, result: FetchResult::Failed(FetchError::Unreachable) };
            self.push_answer(self.now + one_way + one_way, node, (fetch, attempt), done);
            return;
        }
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.peer_requests.insert((from, id), (node, fetch, attempt));
        let input = Input::Request(Request { id, object, kind, client_site: None, length: None, metadata_only: false });
        self.push_input(self.now + one_way, from, input);
    }

    fn on_respond(&mut self, node: NodeId, request: RequestId, response: Response) {
        let Some((requester, fetch, attempt)) = self.peer_requests.remove(&(node, request)) else {
            self.responses.push((self.now, node, request, response));
            match response {
                // A client takes its bytes at once here (or at its namespace's egress pace):
                // then the object's pin is released.
                Response::Serve { pace, .. } => {
                    let sent = pace.map_or(self.now, |p| p.end().max(self.now));
                    self.push_input(sent, node, Input::ServeDone { request });
                }
                // ... or, streaming, once the fill has all of them.
                Response::Stream { fetch, .. } => {
                    self.waiting_on_fill.entry((node, fetch)).or_default().push(Reader::Client(request))
                }
                // A metadata answer is the origin's head: nothing to take.
                Response::Fail(_)
                | Response::Redirect { .. }
                | Response::Throttled { .. }
                | Response::Describe { .. }
                | Response::Staging { .. } => {}
            }
            return;
        };
        let one_way = (self.latency)(node, requester);
        let (size, fill) = match response {
            Response::Serve { size, .. } => (size.unwrap_or(1), None),
            Response::Stream { size, fetch: upstream, .. } => (size, Some(upstream)),
            Response::Fail(failure) => {
                let done = Input::FetchDone { fetch, result: FetchResult::Failed(failure.fetch_error()) };
                return self.push_answer(self.now + one_way, requester, (fetch, attempt), done);
            }
            Response::Staging { retry_after } => {
                let done = Input::FetchDone { fetch, result: FetchResult::Staging { retry_after } };
                return self.push_answer(self.now + one_way, requester, (fetch, attempt), done);
            }
            // (A fetch wants the object's bytes: never answered with `Describe`.)
            Response::Redirect { .. } | Response::Throttled { .. } | Response::Describe { .. } => {
                let done = Input::FetchDone { fetch, result: FetchResult::Failed(FetchError::Refused) };
                return self.push_answer(self.now + one_way, requester, (fetch, attempt), done);
            }
        };
        let first = self.bandwidth.transfer_time(size.min(self.first_block));
        let receiving = Input::FetchReceiving { fetch, size };
        self.push_answer(self.now + one_way + first, requester, (fetch, attempt), receiving);
        let at = self.now + one_way + self.bandwidth.transfer_time(size);
        self.seq += 1;
        let k = self.seq;
        let t = Transfer { requester, fetch, source: node, source_request: request, size, attempt, fill };
        self.transfers.insert(k, t);
        self.push(at, Action::TransferDone(k));
    }

    /// The response a client request got, if any yet.
    pub fn response(&self, request: RequestId) -> Option<(Time, Response)> {
        self.responses.iter().find(|(_, _, r, _)| *r == request).map(|(t, _, _, resp)| (*t, *resp))
    }

    /// All metrics events of one node, in order.
    pub fn events(&self, node: NodeId) -> impl Iterator<Item = &Event> {
        self.log.iter().filter(move |r| r.node == node).filter_map(|r| match &r.output {
            Output::Event(e) => Some(e),
            _ => None,
        })
    }

    /// How many fetches of `object` any node asked of `source`.
    pub fn fetches_from(&self, source: NodeId, object: ObjectId) -> usize {
        self.log
            .iter()
            .filter(|r| matches!(&r.output, Output::Fetch { object: o, from, .. } if o.id == object && *from == source))
            .count()
    }
}

/// Adds (or removes) the path between `a` and `b` to `paths`, both ways.
fn set_both_ways(paths: &mut BTreeSet<(NodeId, NodeId)>, a: NodeId, b: NodeId, on: bool) {
    for pair in [(a, b), (b, a)] {
        if on {
            paths.insert(pair);
        } else {
            paths.remove(&pair);
        }
    }
}
