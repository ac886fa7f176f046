//! Clients: arrivals, jobs, requests to a cache with failover to the next (as `reef get`
//! does), and each served request's attribution to the store its bytes came from.

use super::*;
use reef_core::access::{Asker, Claims, Decision, Denial, Issuer, NamespaceAccess, Operation, Scope, decide};

impl World {
    /// The node whose store or origin bytes that `n` serves come from, and the fills they
    /// passed through: `n` itself for a serve from its store, else its fill's holder.
    pub(super) fn holder_of(&self, n: u32, fill: Option<FetchId>) -> (u32, u8) {
        match fill.and_then(|f| self.filled.get(&(n, f.0))) {
            Some(&(holder, relays)) => (holder, relays.saturating_add(1)),
            None => (n, 0),
        }
    }

    /// Where a client at `site` got bytes held by `holder`.
    pub(super) fn bytes_from(&self, site: u32, holder: u32) -> BytesFrom {
        bytes_from(&self.topo, &self.layout, site, holder)
    }

    pub(super) fn respond_to_client(&mut self, n: u32, request: RequestId, response: Response) {
        let now = self.now();
        let Some(&c) = self.clients.get(&request.0) else { return };
        match response {
            // The download ties up the node (the object's pin) for the transfer time, at the
            // client's pace and its namespace's egress pace, whichever is slower.
            Response::Serve { size, fetch, pace, .. } => {
                let from = self.holder_of(n, fetch);
                let started = pace.map_or(now, |p| p.start);
                let client = self.clients.get_mut(&request.0).expect("open request");
                (client.from, client.held) = (Some(from), started - now);
                let size = size.unwrap_or(c.size);
                let sent = (started + self.client_rate.transfer_time(size)).max(pace.map_or(now, |p| p.end()));
                let at = sent + self.client_latency(c.site, n);
                self.engine.schedule(at, Ev::Downloaded { id: request.0, tries: c.tries });
            }
            // The download reads the fill as it arrives; it ends once the fill is complete.
            Response::Stream { fetch, pace, .. } => {
                let started = pace.map_or(now, |p| p.start);
                let client = self.clients.get_mut(&request.0).expect("open request");
                (client.stream, client.held) = (Some(fetch.0), started - now);
                let paced_end = pace.map_or(Time::ZERO, |p| p.end());
                let reader = Reader::Client { id: request.0, tries: c.tries, started, paced_end };
                self.readers.entry((n, fetch.0)).or_default().push(reader);
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
                    length: None,
                    metadata_only: false,
                };
                self.deliver(at, to.0, Input::Request(request));
            }
            // (Simulated clients read whole objects: never answered with `Describe`.)
            // (Clients wait on a staging fill: only other nodes are told to ask again.)
            Response::Fail(_) | Response::Throttled { .. } | Response::Describe { .. } | Response::Staging { .. } => {}
        }
    }

    /// A client's last byte arrived: the request is served.
    pub(super) fn downloaded(&mut self, id: u64, tries: u8) {
        let Some(&c) = self.clients.get(&id).filter(|c| c.tries == tries) else { return };
        self.clients.remove(&id);
        // Now, not queued: it is the same instant (a down node gets it too: it keeps state).
        self.feed(c.node, Input::ServeDone { request: RequestId(id) });
        let (holder, relays) = c.from.unwrap_or((c.node, 0));
        let outcome = Ok((self.bytes_from(c.site, holder), relays));
        let duration = self.now() - c.issued;
        self.client_done(&c, outcome, c.first_byte.unwrap_or(duration), duration, c.hops);
    }

    /// Fill `fetch` of node `n` is complete: its readers finish. A client's last byte comes at
    /// the later of its own pace and now; a parked flow ends now.
    pub(super) fn fill_complete(&mut self, n: u32, fetch: u64) {
        let Some(readers) = self.readers.remove(&(n, fetch)) else { return };
        let now = self.now();
        let from = self.holder_of(n, Some(FetchId(fetch)));
        for reader in readers {
            match reader {
                Reader::Client { id, tries, started, paced_end } => {
                    let Some(c) = self.clients.get_mut(&id).filter(|c| c.tries == tries && c.stream == Some(fetch))
                    else {
                        continue;
                    };
                    c.from = Some(from);
                    let (site, size) = (c.site, c.size);
                    let sent = now.max(started + self.client_rate.transfer_time(size)).max(paced_end);
                    let end = sent + self.client_latency(site, n);
                    self.engine.schedule(end, Ev::Downloaded { id, tries });
                }
                Reader::Flow(request) => {
                    if let Some(st) = self.stream_transfers.get_mut(&request) {
                        st.holder = Some(from);
                    }
                }
                Reader::Parked(mut t) => {
                    self.stream_transfers.remove(&t.request.0);
                    (t.holder, t.relays, t.streams_from) = (from.0, from.1, None);
                    self.transfer_done(t);
                }
            }
        }
    }

    /// A client request ended with the core's outcome: its first byte after `latency`, its
    /// last after `duration`. Counted, sampled, and its job moves on.
    pub(super) fn client_done(
        &mut self,
        c: &ClientReq,
        outcome: Result<(BytesFrom, u8), Failure>,
        latency: Duration,
        duration: Duration,
        hops: u32,
    ) {
        let now = self.now();
        self.stats.completed(c.tier, c.object.namespace, c.size, outcome, latency.as_nanos(), duration.as_nanos());
        if let Some(n) = self.series.namespace(now, c.object.namespace) {
            count_outcome(n, outcome.ok().map(|(from, _)| from), c.size);
        }
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
        let holder = outcome.ok().map(|_| c.from.map_or(c.node, |(holder, _)| holder));
        self.record(c, source, holder, latency, duration);
        self.sample(c, source, latency, hops);
        self.job_step(c.job);
    }

    /// A client request failed in the simulator (its node was down, or the run stopped).
    pub(super) fn client_failed(&mut self, c: &ClientReq, reason: &'static str) {
        self.stats.failed_in_driver(c.tier, c.object.namespace, reason);
        self.client_failed_counted(c);
    }

    /// The rest of a failed request's bookkeeping, once its stats are counted.
    fn client_failed_counted(&mut self, c: &ClientReq) {
        // At the hard stop the clock may already stand at the first event past it.
        let now = self.now().min(self.max_time);
        self.series.failed(now, c.site);
        if let Some(n) = self.series.namespace(now, c.object.namespace) {
            count_outcome(n, None, 0);
        }
        self.record(c, "failed", None, now - c.issued, now - c.issued);
        self.sample(c, "failed", now - c.issued, 0);
        self.job_step(c.job);
    }

    fn record(
        &mut self,
        c: &ClientReq,
        source: &'static str,
        holder: Option<u32>,
        first_byte: Duration,
        duration: Duration,
    ) {
        if let Some(log) = &mut self.log {
            log.push(RequestRecord {
                index: c.index,
                object: c.object,
                issued: c.issued,
                site: c.site,
                node: c.first,
                source,
                holder,
                first_byte,
                duration,
            });
        }
    }

    pub(super) fn sample(&mut self, c: &ClientReq, source: &'static str, latency: Duration, lookup_hops: u32) {
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

    pub(super) fn arrival(&mut self) {
        let now = self.now();
        let a = self.workload.take(now);
        if let Some(t) = self.workload.next_time().filter(|_| !self.sequential) {
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
            Demand::Object(index) => self.issue(node, a.site, Some(index), self.object_ref(index), NO_JOB),
            Demand::Traced { id, size } => {
                let namespace = reef_core::NamespaceId(self.workload.catalog.namespace_of_id(id));
                let object = ObjectRef { id: reef_core::ObjectId(id), namespace, size: Some(size) };
                self.issue(node, a.site, None, object, NO_JOB)
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
                self.issue(node, a.site, Some(first), self.object_ref(first), j);
            }
        }
    }

    /// A client at `site` asks `node` for `object`.
    pub(super) fn issue(&mut self, node: u32, site: u32, index: Option<u64>, object: ObjectRef, job: u32) {
        let now = self.now();
        self.note_dataset(object, index);
        let size = object.size.unwrap_or(0);
        let tier = self.topo.sites[site as usize].tier;
        let id = self.next_request;
        self.next_request += 1;
        let sampled = self.series.samples(self.stats.all.requests);
        self.stats.issued(tier, object.namespace, size);
        if let Some(n) = self.series.namespace(now, object.namespace) {
            n.requests += 1;
        }
        self.series.issued(now, site);
        let c = ClientReq {
            index,
            node,
            site,
            object,
            tier,
            size,
            issued: now,
            job,
            sampled,
            first: node,
            tries: 1,
            from: None,
            first_byte: None,
            hops: 0,
            stream: None,
            held: Duration::ZERO,
        };
        self.send_client_request(id, c, now);
    }

    pub(super) fn send_client_request(&mut self, id: u64, c: ClientReq, at: Time) {
        // The node asked decides, as reef-node does, before anything else: the core's rule on
        // the client's token.
        let arrives = at + self.client_latency(c.site, c.node);
        if let Some(denial) = self.tokens.denied(id, c.object, arrives) {
            self.stats.denied(c.tier, c.object.namespace, denial);
            self.client_failed_counted(&c);
            return;
        }
        self.clients.insert(id, c);
        let request = Request {
            id: RequestId(id),
            object: c.object,
            kind: RequestKind::Client,
            client_site: Some(SiteId(c.site)),
            length: None,
            metadata_only: false,
        };
        let at = at + self.client_latency(c.site, c.node);
        self.deliver(at, c.node, Input::Request(request));
    }

    /// The caches a client at `site` tries, in order, as `reef get` tries its sources: the one
    /// it was sent to, its site cache, then the cache of the nearest other site.
    pub(super) fn client_sources(&self, site: u32, first: u32) -> [Option<u32>; 3] {
        client_sources(&self.layout, self.fallback_cache[site as usize], site, first)
    }

    /// The node a client asked is down: it asks the next cache on its list after `wait`, or
    /// fails when none is left.
    pub(super) fn client_failover(&mut self, id: u64, c: ClientReq, wait: Duration) {
        match self.next_client_source(&c) {
            Some(node) => self.client_retry(id, c, node, wait),
            None => self.client_failed(&c, "node_down"),
        }
    }

    /// The cache a client tries next after `c.tries` attempts, if one is left. A cache the
    /// client cannot reach (its own site's links are down) is no option.
    pub(super) fn next_client_source(&self, c: &ClientReq) -> Option<u32> {
        self.client_sources(c.site, c.first)
            .into_iter()
            .flatten()
            .skip(c.tries as usize)
            .find(|&n| self.site_of(n) == c.site || self.site_reachable(c.site, self.site_of(n)))
    }

    /// The client asks `node` after `wait`.
    pub(super) fn client_retry(&mut self, id: u64, mut c: ClientReq, node: u32, wait: Duration) {
        self.stats.client_failovers += 1;
        c.node = node;
        c.tries += 1;
        (c.from, c.first_byte, c.stream) = (None, None, None);
        let at = self.now() + wait;
        self.send_client_request(id, c, at);
    }

    /// The catalog's object `index`, with its size (the simulator knows every size).
    pub(super) fn object_ref(&self, index: u64) -> ObjectRef {
        let catalog = &self.workload.catalog;
        ObjectRef {
            id: catalog.id(index),
            namespace: reef_core::NamespaceId(catalog.namespace(index)),
            size: Some(catalog.size(index)),
        }
    }

    /// A job's read ended: read the next file after the think time, or finish.
    pub(super) fn job_step(&mut self, j: u32) {
        // Sequential: the read is over; the faults it held back happen now, before the next
        // read (of this job or of the next arrival), as reef-lab applies them between requests.
        if self.sequential {
            for (index, start) in std::mem::take(&mut self.deferred) {
                self.outage(index as usize, start);
            }
        }
        if j != NO_JOB && self.jobs[j as usize].left > 0 {
            self.engine.schedule_in(self.job_think, Ev::JobNext(j));
            return;
        }
        if j != NO_JOB {
            self.free_jobs.push(j);
            self.active_jobs -= 1;
        }
        // Sequential: the arrival is over; the next one comes now or at its own time.
        if self.sequential {
            if let Some(t) = self.workload.next_time() {
                self.engine.schedule(t.max(self.now()), Ev::Arrival);
            }
        }
    }
}

/// Where a client at `site` got bytes held by node `holder` (its store, or an origin's).
pub fn bytes_from(topo: &Topology, layout: &Layout, site: u32, holder: u32) -> BytesFrom {
    let node = &layout.nodes[holder as usize];
    let (own, theirs) = (&topo.sites[site as usize], &topo.sites[node.site as usize]);
    match node.role {
        Role::Origin => BytesFrom::Origin,
        Role::WorkerPeer if node.site == site => BytesFrom::WorkerNode,
        _ if node.site == site => BytesFrom::SiteCache,
        _ if theirs.tier < own.tier => BytesFrom::ParentTier,
        _ => BytesFrom::OtherSite,
    }
}

/// The caches a client at `site` tries, in order, as `reef get` tries its sources: the one
/// it was sent to (`first`), its site cache, then `fallback` (see [`fallback_caches`]).
pub fn client_sources(layout: &Layout, fallback: Option<u32>, site: u32, first: u32) -> [Option<u32>; 3] {
    let site_cache = layout.site_cache[site as usize];
    [Some(first), (site_cache != first).then_some(site_cache), fallback]
}

/// For each site, the cache of the nearest other site by route latency (ties: lower site
/// index), where its clients turn when their own site's caches are down.
pub fn fallback_caches(topo: &Topology, layout: &Layout) -> Vec<Option<u32>> {
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

/// The tokens clients present for private namespaces. Each request's token is drawn from a
/// hash of the run's seed and the request number (reproducible, and independent of the order
/// events run in): valid (a `storage.read:/` scope, no expiry within the run) or, for a share
/// `invalid` of requests, one of three bad ones. The decision on it is the core's.
#[derive(Debug)]
pub(super) struct Tokens {
    rules: Vec<NamespaceAccess>,
    invalid: f64,
    salt: u64,
}

const SIM_ISSUER: &str = "https://issuer.sim";

impl Tokens {
    pub(super) fn new(private: &[bool], invalid: f64, seed: u64) -> Tokens {
        let rules = private
            .iter()
            .map(|&private| NamespaceAccess {
                private,
                issuers: vec![Issuer { issuer: SIM_ISSUER.into(), audiences: vec!["reef".into()] }],
                base_path: "/".into(),
                nodes: None,
            })
            .collect();
        Tokens { rules, invalid, salt: crate::workload::mix64(seed ^ 0x746f_6b65_6e73) }
    }

    /// Why request `id` for `object`, arriving at `at`, is refused, if it is.
    pub(super) fn denied(&self, id: u64, object: ObjectRef, at: Time) -> Option<Denial> {
        let rules = &self.rules[usize::from(object.namespace.0)];
        if !rules.private {
            return None;
        }
        let now = at.0 / 1_000_000_000;
        let h = crate::workload::mix64(self.salt ^ id);
        let bad = ((h >> 11) as f64 / (1u64 << 53) as f64) < self.invalid;
        let claims = |scope: &str, expires: u64| Claims {
            issuer: SIM_ISSUER.into(),
            audiences: vec!["reef".into()],
            expires: Some(expires),
            not_before: None,
            scopes: Scope::parse_claim(scope),
        };
        let token = match (bad, h % 3) {
            (false, _) => Some(claims("storage.read:/", u64::MAX)),
            (true, 0) => None,
            (true, 1) => Some(claims("storage.read:/", now)),
            (true, _) => Some(claims("storage.read:/elsewhere", u64::MAX)),
        };
        let path = format!("/{}", object.id.0);
        match decide(now, 0, rules, &path, Operation::Read, Asker::Client(token.as_ref())) {
            Decision::Allow { .. } => None,
            Decision::Deny(d) => Some(d),
        }
    }
}
