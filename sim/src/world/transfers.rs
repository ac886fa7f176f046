//! The data plane: a core's fetch becomes a request to the source's core, its `Serve` or
//! `Stream` a flow on the route; the requester hears `FetchReceiving` once the first block has
//! crossed; a flow's end (or break) is told to both ends, and moving flows report progress.

use super::*;
use reef_core::http_caching::{Exchange, ResponseFields, Validity};

impl World {
    /// Tells the requester of every flow that moves that its fetch made progress.
    pub(super) fn progress_sweep(&mut self) {
        let now = self.now();
        let mut moving: Vec<(u32, FetchId, u32, FlowId)> = Vec::new();
        for (&(requester, fetch), f) in &self.fetches {
            if let Some(flow) = f.flow.filter(|&flow| self.net.rate(flow).is_some_and(|r| r > 0.0)) {
                moving.push((requester, FetchId(fetch), f.source, flow));
            }
        }
        moving.sort_unstable_by_key(|&(r, f, _, _)| (r, f.0));
        for (requester, fetch, source, flow) in moving {
            self.note_part_progress(requester, fetch.0, flow);
            let at = now + self.latency(source, requester);
            self.deliver(at, requester, Input::FetchProgress { fetch });
        }
        self.engine.schedule_in(self.progress_every, Ev::ProgressSweep);
    }

    pub(super) fn start_fetch(
        &mut self,
        n: u32,
        fetch: FetchId,
        object: ObjectRef,
        src: u32,
        kind: RequestKind,
        revalidate: bool,
    ) {
        let now = self.now();
        let lat = self.latency(n, src);
        if !self.reachable(n, src) {
            // A cut path loses the request and tells nobody: the core's fetch timeout decides.
            return;
        }
        let id = self.next_request;
        self.next_request += 1;
        let request =
            Request { id: RequestId(id), object, kind, client_site: None, length: None, metadata_only: false };
        self.peer_reqs.insert(id, PeerReq { requester: n, fetch, request, revalidate });
        let list_at = now + self.block_list_delay(n, object, src);
        let state = FetchState { object, source: src, request: RequestId(id), flow: None, list_at };
        self.fetches.insert((n, fetch.0), state);
        self.deliver(now + lat, src, Input::Request(request));
    }

    /// How long node `n` waits for the object's block list, asked at the same time as the
    /// object (the bytes are checked against it). As reef-node does, it asks the namespace's
    /// origins in order, then the source: a node that is down refuses within a round trip, one
    /// behind a cut path costs [`BLOCK_LIST_TIMEOUT`], the first that can answer does.
    fn block_list_delay(&self, n: u32, object: ObjectRef, src: u32) -> Duration {
        let origins = &self.layout.origins[usize::from(object.namespace.0)];
        let asked = origins.iter().copied().chain((!origins.contains(&src)).then_some(src));
        let mut waited = Duration::ZERO;
        for node in asked {
            let round_trip = self.latency(n, node) + self.latency(node, n);
            if !self.reachable(n, node) {
                waited = waited + BLOCK_LIST_TIMEOUT;
            } else if self.nodes[node as usize].down > 0 {
                waited = waited + round_trip;
            } else {
                return waited + round_trip;
            }
        }
        waited
    }

    pub(super) fn cancel_fetch(&mut self, n: u32, fetch: FetchId) {
        // Not answered yet: the answer will find no fetch and be released then.
        if let Some(FetchState { source, request, flow: Some(flow), .. }) = self.fetches.get(&(n, fetch.0)).copied() {
            let now = self.now();
            self.stop_flow(flow);
            self.fetches.remove(&(n, fetch.0));
            self.drop_stream_reader(source, request.0);
            self.deliver(now, source, Input::ServeDone { request });
        }
    }

    /// A flow streaming from a fill of `source` ended early: it no longer reads that fill.
    pub(super) fn drop_stream_reader(&mut self, source: u32, request: u64) {
        let Some(st) = self.stream_transfers.remove(&request) else { return };
        let key = (source, st.fill);
        if let Some(readers) = self.readers.get_mut(&key) {
            readers.retain(|r| match r {
                Reader::Flow(q) => *q != request,
                Reader::Parked(t) => t.request.0 != request,
                Reader::Client { .. } => true,
            });
            if readers.is_empty() {
                self.readers.remove(&key);
            }
        }
    }

    /// The core of `n` broke a streamed response (its fill failed for good): a client tries
    /// its next cache; a flow ends as broken, and its requester fails over.
    pub(super) fn stream_broken(&mut self, n: u32, request: RequestId) {
        let now = self.now();
        if let Some(&c) = self.clients.get(&request.0).filter(|c| c.node == n && c.stream.is_some()) {
            let key = (n, c.stream.expect("checked"));
            if let Some(readers) = self.readers.get_mut(&key) {
                readers.retain(|r| !matches!(r, Reader::Client { id, .. } if *id == request.0));
                if readers.is_empty() {
                    self.readers.remove(&key);
                }
            }
            self.clients.remove(&request.0);
            self.deliver(now, n, Input::ServeDone { request });
            self.client_failover(request.0, c, Duration::ZERO);
            return;
        }
        let Some(&st) = self.stream_transfers.get(&request.0) else { return };
        self.drop_stream_reader(n, request.0);
        if let Some(f) = self.fetches.get(&(st.requester, st.fetch)).copied() {
            if let Some(flow) = f.flow {
                self.stop_flow(flow);
            }
            self.fetches.remove(&(st.requester, st.fetch));
            self.stats.transfers_broken += 1;
            self.deliver(now, n, Input::ServeDone { request });
            let lat = self.latency(n, st.requester);
            let done = Input::FetchDone { fetch: FetchId(st.fetch), result: FetchResult::Failed(FetchError::Broken) };
            self.deliver(now + lat, st.requester, done);
        }
    }

    pub(super) fn respond(&mut self, n: u32, request: RequestId, response: Response) {
        let now = self.now();
        if let Response::Serve { fetch: None, .. } = response
            && !self.corrupt.is_empty()
            && self.reread_damaged(n, request)
        {
            return;
        }
        if let Response::Serve { fetch: None, .. } = response
            && self.nodes[n as usize].role == Role::Origin
            && (self.not_modified(n, request) || self.staging(n, request))
        {
            return;
        }
        if let Response::Staging { retry_after } = response {
            return self.answer_staging(n, request, retry_after);
        }
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
        let served = match response {
            // (A part of a split fill moves its range only.)
            Response::Serve { size, fetch, .. } => {
                let size = size.or(pr.request.object.size).unwrap_or(0);
                Some((self.part_bytes(pr.requester, pr.fetch.0).unwrap_or(size), self.holder_of(n, fetch), None))
            }
            // The holder is known once the fill it streams from is complete.
            Response::Stream { size, fetch, .. } => {
                Some((self.part_bytes(pr.requester, pr.fetch.0).unwrap_or(size), (n, 0), Some(fetch)))
            }
            // (A fetch wants the bytes: never answered with `Describe`.)
            Response::Fail(_)
            | Response::Redirect { .. }
            | Response::Throttled { .. }
            | Response::Describe { .. }
            | Response::Staging { .. } => None,
        };
        let reason = match (served, response) {
            (Some((size, (holder, relays), streams_from)), _) => {
                if self.fill_route(n, pr.requester) {
                    let limit = (pr.requester, pr.request.object.namespace.0);
                    if self.nodes[n as usize].role == Role::Origin
                        && let Some(&link) = self.fill_links.get(&limit)
                    {
                        self.route.push(link);
                    }
                    let (requester, fetch) = (pr.requester, pr.fetch);
                    let namespace = pr.request.object.namespace;
                    let tag = Transfer {
                        requester,
                        fetch,
                        source: n,
                        request,
                        size,
                        holder,
                        relays,
                        streams_from,
                        namespace,
                    };
                    let flow = self.net.start(now, &self.route, size, tag, &mut self.wakeups);
                    self.flush_wakeups();
                    let state = self.fetches.get_mut(&key).expect("checked above");
                    state.flow = Some(flow);
                    let list_at = state.list_at;
                    if let Some(fill) = streams_from {
                        self.readers.entry((n, fill.0)).or_default().push(Reader::Flow(request.0));
                        let st = StreamTransfer { requester, fetch: fetch.0, fill: fill.0, holder: None };
                        self.stream_transfers.insert(request.0, st);
                    }
                    // The first block crosses at the rate the flow starts with.
                    let rate = self.net.rate(flow).unwrap_or(0.0);
                    let block = self.first_block.min(size) as f64;
                    let first = if rate > 0.0 { Duration((block / rate * 1e9) as u64) } else { Duration::ZERO };
                    self.deliver((now + lat + first).max(list_at), requester, Input::FetchReceiving { fetch, size });
                    return;
                }
                self.deliver(now, n, Input::ServeDone { request });
                FetchError::Unreachable
            }
            (None, Response::Fail(failure)) => failure.fetch_error(),
            (None, _) => FetchError::Refused,
        };
        self.fetches.remove(&key);
        self.deliver(
            now + lat,
            pr.requester,
            Input::FetchDone { fetch: pr.fetch, result: FetchResult::Failed(reason) },
        );
    }

    /// Origin `n` answers a conditional fetch: objects never change in the simulator, so the
    /// requester's copy is current (no bytes move, no tape is read). Whether it was one.
    fn not_modified(&mut self, n: u32, request: RequestId) -> bool {
        if !self.peer_reqs.get(&request.0).is_some_and(|pr| pr.revalidate) {
            return false;
        }
        let pr = self.peer_reqs.remove(&request.0).expect("checked above");
        let now = self.now();
        self.deliver(now, n, Input::ServeDone { request });
        if self.fetches.remove(&(pr.requester, pr.fetch.0)).is_some() {
            let validity = self.answer_validity(n, pr.request.object.namespace);
            let done = Input::FetchDone { fetch: pr.fetch, result: FetchResult::NotModified { validity } };
            self.deliver(now + self.latency(n, pr.requester), pr.requester, done);
        }
        true
    }

    /// What an answer from `source` says about reuse: a third-party origin's `Cache-Control`,
    /// judged by the core's rules as of now (the simulated clock stands for the wall clock; the
    /// answer is new, so its age is the exchange's, nothing).
    fn answer_validity(&self, source: u32, ns: NamespaceId) -> Option<Validity> {
        let cache_control = self.layout.cache_control.get(usize::from(ns.0))?.as_deref()?;
        if self.nodes[source as usize].role != Role::Origin {
            return None;
        }
        let t = self.now().as_nanos() / 1_000_000_000;
        let fields = ResponseFields { cache_control: Some(cache_control), ..Default::default() };
        Some(Validity::of(&fields, Exchange { request_sent: t, response_received: t }))
    }

    /// Node `n` was about to serve `request` from its store: if that copy is damaged, the node
    /// finds out reading it (as reef-node checks a changed file against its block list before
    /// serving), drops it and takes the request again, now a miss. Whether it was.
    fn reread_damaged(&mut self, n: u32, id: RequestId) -> bool {
        let asked = match (self.clients.get(&id.0), self.peer_reqs.get(&id.0)) {
            (Some(c), _) => Request {
                id,
                object: c.object,
                kind: RequestKind::Client,
                client_site: Some(SiteId(c.site)),
                length: None,
                metadata_only: false,
            },
            (None, Some(p)) => p.request,
            (None, None) => return false,
        };
        if !self.corrupt.remove(&(n, asked.object.id.0)) {
            return false;
        }
        let now = self.now();
        self.stats.damaged_found += 1;
        self.deliver(now, n, Input::ServeDone { request: id });
        self.deliver(now, n, Input::Lost { object: asked.object.id });
        self.deliver(now, n, Input::Request(asked));
        true
    }

    pub(super) fn transfer_done(&mut self, mut t: Transfer) {
        if let Some(fill) = t.streams_from {
            // All bytes sent, but the fill they stream from is still arriving: wait for it.
            if let Some(readers) = self.readers.get_mut(&(t.source, fill.0))
                && let Some(r) = readers.iter_mut().find(|r| matches!(r, Reader::Flow(q) if *q == t.request.0))
            {
                *r = Reader::Parked(t);
                return;
            }
            if let Some(st) = self.stream_transfers.remove(&t.request.0) {
                (t.holder, t.relays) = st.holder.unwrap_or((t.source, 0));
            }
        }
        let now = self.now();
        let list_at = self.fetches.remove(&(t.requester, t.fetch.0)).map_or(Time::ZERO, |f| f.list_at);
        if parts::part_of(t.fetch.0).is_none() {
            self.filled.insert((t.requester, t.fetch.0), (t.holder, t.relays));
        }
        self.deliver(now, t.source, Input::ServeDone { request: t.request });
        let lat = self.latency(t.source, t.requester);
        let validity = self.answer_validity(t.source, t.namespace);
        let done = Input::FetchDone { fetch: t.fetch, result: FetchResult::Complete { size: t.size, validity } };
        self.deliver((now + lat).max(list_at), t.requester, done);
        self.stats.transfers += 1;
        if self.nodes[t.source as usize].role == Role::Origin {
            self.stats.origin_transfers += 1;
        }
        self.count_bytes(t.source, t.requester, t.size);
    }

    /// `bytes` moved from `source` to `requester`.
    pub(super) fn count_bytes(&mut self, source: u32, requester: u32, bytes: u64) {
        let now = self.now();
        let s = &mut self.stats;
        if self.nodes[source as usize].role == Role::Origin {
            s.bytes_from_origin += bytes;
            self.series.origin_sent(now, self.nodes[source as usize].site, bytes);
        }
        if self.nodes[source as usize].site == self.nodes[requester as usize].site {
            s.bytes_lan += bytes;
        } else {
            s.bytes_wan += bytes;
        }
    }

    /// A transfer that broke (an end went down, its link was cut): both ends are told.
    pub(super) fn break_transfer(&mut self, t: Transfer) {
        let now = self.now();
        self.drop_stream_reader(t.source, t.request.0);
        self.fetches.remove(&(t.requester, t.fetch.0));
        self.stats.transfers_broken += 1;
        self.deliver(now, t.source, Input::ServeDone { request: t.request });
        let lat = self.latency(t.source, t.requester);
        let done = Input::FetchDone { fetch: t.fetch, result: FetchResult::Failed(FetchError::Broken) };
        self.deliver(now + lat, t.requester, done);
    }

    /// Fills `self.route` with the links a transfer from `a` to `b` crosses: the site LAN inside
    /// a site; between sites the WAN route, plus the LAN of an end that is a worker node.
    pub(super) fn fill_route(&mut self, a: u32, b: u32) -> bool {
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
}
