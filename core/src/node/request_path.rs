//! The request path of a cache: local store, then nearby holders in order of proximity, then
//! the object's origins, with failover at every step and one upstream fetch per object however
//! many clients miss on it at once.
//!
//! Per object in flight there is one `Fill`: first it waits for discovery (`sources` empty,
//! `current` none), then it tries its sources in turn. A fill that fails or breaks half way
//! never becomes a cached object; only a complete, verified one is committed.
//!
//! Streaming: once the current source has answered (`FetchReceiving`), waiting requests are
//! answered with `Stream` and become the fill's readers. Readers stay with the fill across
//! failovers (they resume from the next source at the byte they reached, so the sizes must
//! agree); a fill that fails for good breaks its readers (`Event::StreamBroken`).

use super::{Node, Role, Timer};
use crate::cache::InsertOutcome;
use crate::discovery::Candidate;
use crate::event::Event;
use crate::http_caching::Validity;
use crate::ids::{NodeId, ObjectId};
use crate::membership::Health;
use crate::protocol::{
    Failure, FetchError, FetchId, FetchKind, FetchResult, ObjectRef, Output, Request, RequestId, RequestKind, Response,
    Source, patience_for_child,
};
use crate::shaper::{Admission, Pace};
use crate::units::{Duration, Time};
use std::collections::VecDeque;

/// Who a new fill is for: the requests waiting on it (`node_waiters`: other nodes' among them),
/// the child it must never fetch from, and how long an attempt may go without progress.
struct Waiting {
    waiters: Vec<RequestId>,
    node_waiters: Vec<RequestId>,
    exclude: Option<NodeId>,
    patience: Duration,
}

impl Waiting {
    /// The requests an ended fill leaves waiting, for a fill of their own.
    fn left_by(fill: Fill) -> Waiting {
        let node_waiters = fill.node_waiters.into_iter().filter(|r| fill.waiters.contains(r)).collect();
        Waiting { waiters: fill.waiters, node_waiters, exclude: fill.exclude, patience: fill.patience }
    }
}

/// An upstream fetch and the requests waiting on it (coalesced misses).
#[derive(Debug)]
pub(super) struct Fill {
    pub(super) object: ObjectRef,
    /// Sources still to try, in order.
    pub(super) sources: VecDeque<Candidate>,
    /// The source being tried; `None` while discovery runs.
    pub(super) current: Option<Candidate>,
    pub(super) attempt: u32,
    /// When the current attempt started or last reported progress.
    pub(super) progress_at: Time,
    /// How long an attempt may go without progress: `fetch_timeout`, less for a child that
    /// waits less ([`patience_for_child`]).
    pub(super) patience: Duration,
    pub(super) waiters: Vec<RequestId>,
    /// The size the current source announced (`FetchReceiving`); `None` until it answers.
    pub(super) receiving: Option<u64>,
    /// Requests answered with `Stream`, and the size they were told.
    pub(super) readers: Vec<RequestId>,
    pub(super) streamed_size: Option<u64>,
    /// Bytes the cache promised this fill (`Cache::reserve`), given back when it ends.
    pub(super) reserved: u64,
    /// No room for the whole object: it is streamed through to its readers and not kept
    /// (`Output::PassThrough`); requests that come later wait for a fill of their own.
    pub(super) passing: bool,
    /// A child that asked us: never fetch from it (that would loop).
    pub(super) exclude: Option<NodeId>,
    /// Whether discovery is consulted (not for a rendezvous home's own children).
    pub(super) discover: bool,
    /// Since when the current source has been answering that it is staging the object, and
    /// whether the fill is now waiting to ask it again (no request is out meanwhile).
    pub(super) staging_since: Option<Time>,
    pub(super) polling: bool,
    /// When the staging source is asked next.
    pub(super) poll_at: Time,
    /// Waiters that are other nodes' fetches: told to ask again while the fill stages.
    pub(super) node_waiters: Vec<RequestId>,
    /// A conditional fetch of a stale copy held here (see `Node::stale`).
    pub(super) revalidate: bool,
    /// Split across several holders (`super::parts`), once its size is known.
    pub(super) split: Option<super::parts::Split>,
}

impl Fill {
    /// A peer may join this fill unless it is itself fed by a peer: discovery only points at
    /// holders and origin fetchers, so chains of waiting caches stay one link long and no two
    /// caches can ever wait on each other.
    fn joinable_by_peer(&self) -> bool {
        self.current.is_none_or(|c| c.kind != FetchKind::Peer)
    }
}

fn source_of(c: Candidate) -> Source {
    match c.kind {
        FetchKind::Origin => Source::Origin { node: c.node },
        FetchKind::Peer | FetchKind::Parent => Source::Peer { node: c.node, level: c.level },
    }
}

impl Node {
    pub(super) fn respond(&mut self, request: RequestId, object: ObjectId, response: Response) {
        self.shaped.remove(&request);
        let outcome = match response {
            Response::Serve { source, .. } | Response::Stream { source, .. } => Ok(source),
            Response::Fail(f) => Err(f),
            Response::Throttled { .. } => Err(Failure::Throttled),
            Response::Redirect { to } => Ok(Source::Peer { node: to, level: self.membership.level(to) }),
            Response::Describe { origin, .. } => Ok(Source::Origin { node: origin }),
            Response::Staging { .. } => {
                // Not completed: the requester asks again.
                self.outputs.push_back(Output::Respond { request, response });
                return;
            }
        };
        self.outputs.push_back(Output::Respond { request, response });
        self.emit(Event::Completed { request, object, outcome });
    }

    pub(super) fn on_request(&mut self, now: Time, req: Request) {
        let object = req.object.id;
        match self.config.role {
            Role::Origin => {
                let response = if self.config.serves.contains(&req.object.namespace) {
                    Response::Serve { source: Source::Local, size: req.object.size, fetch: None, pace: None }
                } else {
                    Response::Fail(Failure::NotFound)
                };
                self.respond(req.id, object, response);
            }
            Role::Director => self.direct(req),
            Role::Cache | Role::WorkerPeer => self.cache_request(now, req),
        }
    }

    fn cache_request(&mut self, now: Time, req: Request) {
        let object = req.object.id;
        if self.negative.get(&object).is_some_and(|&until| until > now) {
            return self.respond(req.id, object, Response::Fail(Failure::NotFound));
        }
        let ns = req.object.namespace;
        if req.kind == RequestKind::Client && self.shapers.get(usize::from(ns.0)).is_some_and(Option::is_some) {
            self.shaped.insert(req.id, (ns, req.length));
        }
        let stale = self.stale(now, object);
        if !stale && self.serve_local(now, req.id, object, !req.metadata_only) {
            return;
        }
        let fill = self.fill_of_object.get(&object).map(|&f| (f, self.fills[&f].joinable_by_peer()));
        match (req.kind, fill) {
            (RequestKind::Peer { .. } | RequestKind::Child { .. }, Some((fetch, _)))
                if self.fills[&fetch].staging_since.is_some() =>
            {
                let retry_after = self.fills[&fetch].poll_at.saturating_since(now).max(super::STAGE_POLL_MIN);
                self.respond(req.id, object, Response::Staging { retry_after });
            }
            (RequestKind::Peer { .. }, Some((fetch, true)))
            | (RequestKind::Client | RequestKind::Child { .. }, Some((fetch, _))) => {
                let patience = self.patience_for(req.kind);
                let fill = self.fills.get_mut(&fetch).expect("indexed fill");
                fill.waiters.push(req.id);
                if req.kind != RequestKind::Client {
                    fill.node_waiters.push(req.id);
                }
                // (A less patient child shortens the fill's next wait, not the one running.)
                fill.patience = fill.patience.min(patience);
                self.emit(Event::Coalesced { request: req.id, object });
                self.stream_waiters(now, fetch);
            }
            (RequestKind::Peer { .. }, _) => self.respond(req.id, object, Response::Fail(Failure::NotCached)),
            (RequestKind::Client | RequestKind::Child { .. }, None) if req.metadata_only => self.describe(req),
            (RequestKind::Client, None) => self.start_fill(now, req, None, stale),
            (RequestKind::Child { from, .. }, None) => self.start_fill(now, req, Some(from), stale),
        }
    }

    /// The pace of a response to `request` for an object of `size` bytes under its namespace's
    /// egress limit (`None`: not limited), or, refused, after how long a retry would be
    /// admitted. A byte range is charged its length.
    fn admit(&mut self, now: Time, request: RequestId, size: u64) -> Result<Option<Pace>, Duration> {
        let Some(&(namespace, length)) = self.shaped.get(&request) else { return Ok(None) };
        let Some(shaper) = self.shapers.get_mut(usize::from(namespace.0)).and_then(Option::as_mut) else {
            return Ok(None);
        };
        let (result, wait, refused) = match shaper.admit(now, length.map_or(size, |l| l.min(size))) {
            Admission::Paced(pace) => (Ok(Some(pace)), pace.start - now, false),
            Admission::Refused { retry_after } => (Err(retry_after), retry_after + shaper.limit().max_delay, true),
        };
        if wait > Duration::ZERO {
            self.emit(Event::Throttled { request, namespace, wait, refused });
        }
        result
    }

    /// Whether the copy held here is past its freshness (its namespace's `max_age`, or what
    /// its third-party origin's headers allow). It is not served as it is: a request for it
    /// revalidates it with the origin (a conditional fetch) and waits for the answer; the copy
    /// stays meanwhile.
    fn stale(&self, now: Time, object: ObjectId) -> bool {
        self.fresh_until.get(&object).is_some_and(|f| now >= f.until)
    }

    /// Whether a stale copy may be served now that its origin cannot be reached.
    fn may_serve_stale(&self, now: Time, object: ObjectId) -> bool {
        self.fresh_until.get(&object).is_some_and(|f| f.stale_until.is_some_and(|until| now <= until))
    }

    /// Whether a namespace's copies follow their third-party origin's headers (RFC 9111).
    fn follows_headers(&self, namespace: crate::ids::NamespaceId) -> bool {
        self.config.third_party.get(&namespace).is_some_and(|t| !t.immutable)
    }

    /// A copy of `object` is kept: fetched now with `validity` (what its origin's headers
    /// allow, for a third-party namespace), or found on disk (`fetched` false: its age is
    /// unknown and it counts as stale). Only mutable namespaces are tracked.
    fn track_freshness(&mut self, now: Time, object: ObjectRef, validity: Option<Validity>, fetched: bool) {
        let ns = object.namespace;
        let validity = if self.follows_headers(ns) {
            // (A copy of unknown age or headers is asked about before use and never served
            // stale: its origin may have forbidden that.)
            let unknown = Validity { store: true, fresh_for: Duration::ZERO, on_error_for: None };
            // (A 304 that forbids storing leaves a copy that is asked about before every use.)
            validity.filter(|v| fetched && v.store).unwrap_or(unknown)
        } else if let Some(&max_age) = self.config.max_age.get(&ns) {
            let fresh_for = if fetched { max_age } else { Duration::ZERO };
            Validity { store: true, fresh_for, on_error_for: Some(Duration::MAX) }
        } else {
            return;
        };
        let until = now + validity.fresh_for;
        let stale_until = validity.on_error_for.map(|d| now + d);
        self.fresh_until.insert(object.id, Freshness { until, stale_until });
    }

    /// Metadata of an object neither here nor in flight comes from an origin (the authority on
    /// it; a live one first), never from a fill, which would move the whole object for a `HEAD`.
    fn describe(&mut self, req: Request) {
        let origins = self.config.origins.get(&req.object.namespace).map_or(&[][..], Vec::as_slice);
        let alive = origins.iter().find(|&&o| self.membership.health(o) != Some(Health::Dead));
        let response = match alive.or(origins.first()) {
            Some(&origin) => Response::Describe { origin, within: self.config.fetch_timeout },
            None => Response::Fail(Failure::NoOrigin),
        };
        self.respond(req.id, req.object.id, response);
    }

    /// Serves a hit from the store, pinning the object until the driver says it is sent. A
    /// metadata-only request (`touch` false) leaves the policy's view of the object as it was.
    fn serve_local(&mut self, now: Time, request: RequestId, object: ObjectId, touch: bool) -> bool {
        let Some(cache) = self.cache.as_mut() else { return false };
        let held = if touch { cache.get(object) } else { cache.contains(object) };
        if !held {
            return false;
        }
        let size = cache.size_of(object);
        let pace = match self.admit(now, request, size.unwrap_or(0)) {
            Ok(pace) => pace,
            Err(retry_after) => {
                self.respond(request, object, Response::Throttled { retry_after });
                return true;
            }
        };
        if touch {
            // (A pin moves the object in the policy's order when released, as an access does:
            // a metadata answer has no body to protect from eviction, so it takes none.)
            self.cache.as_mut().expect("checked above").pin(object);
            self.serving.insert(request, object);
        }
        self.emit(Event::Hit { request, object });
        self.respond(request, object, Response::Serve { source: Source::Local, size, fetch: None, pace });
        if touch {
            self.with_discovery(now, |d, ctx| d.served(ctx, object));
        }
        true
    }

    /// A fill for `req` (a child's if `exclude`); `stale`: the copy held here is past its
    /// `max_age`, and the fill revalidates it.
    fn start_fill(&mut self, now: Time, req: Request, exclude: Option<NodeId>, stale: bool) {
        if stale {
            self.emit(Event::Expired { object: req.object.id, namespace: req.object.namespace });
        }
        // (A child's request is the only other node's request that starts a fill.)
        let node_waiters = if exclude.is_some() { vec![req.id] } else { Vec::new() };
        let waiting = Waiting { waiters: vec![req.id], node_waiters, exclude, patience: self.patience_for(req.kind) };
        self.start_fill_for(now, req.object, waiting, stale);
    }

    /// How long a fill for a request of `kind` waits on each source without progress.
    fn patience_for(&self, kind: RequestKind) -> Duration {
        match kind {
            RequestKind::Child { patience, .. } => patience_for_child(self.config.fetch_timeout, patience),
            RequestKind::Client | RequestKind::Peer { .. } => self.config.fetch_timeout,
        }
    }

    /// A new fill; `revalidate`: of a stale copy held here, asked of its origins only and
    /// conditionally.
    fn start_fill_for(&mut self, now: Time, object: ObjectRef, waiting: Waiting, revalidate: bool) {
        let Waiting { waiters, node_waiters, exclude, patience } = waiting;
        let fetch = FetchId(self.next_fetch);
        self.next_fetch += 1;
        let child_role = exclude.map(|child| self.membership.info(child).map(|p| p.role));
        // (Only an origin can say whether a copy is still current, and only a Reef origin's
        // block list lets a copy from elsewhere be checked.)
        let discover = !revalidate
            && !self.config.third_party.contains_key(&object.namespace)
            && child_role.is_none_or(|role| self.discovery.rediscovers_for(role));
        let fill = Fill {
            object,
            sources: VecDeque::new(),
            current: None,
            attempt: 0,
            progress_at: now,
            patience,
            waiters,
            receiving: None,
            readers: Vec::new(),
            streamed_size: None,
            reserved: 0,
            passing: false,
            exclude,
            discover,
            staging_since: None,
            polling: false,
            poll_at: now,
            node_waiters,
            revalidate,
            split: None,
        };
        self.fills.insert(fetch, fill);
        self.fill_of_object.insert(object.id, fetch);
        if discover {
            self.with_discovery(now, |d, ctx| d.lookup(ctx, object.id, exclude.is_some()));
        } else {
            self.sources_found(now, fetch, Vec::new(), 0);
        }
    }

    /// Picks up lookups that discovery finished (now or in reply to messages).
    pub(super) fn after_discovery(&mut self, now: Time) {
        while let Some(found) = self.found.pop() {
            let Some(&fetch) = self.fill_of_object.get(&found.object) else { continue };
            if self.fills[&fetch].current.is_none() && self.fills[&fetch].sources.is_empty() {
                self.sources_found(now, fetch, found.candidates, found.hops);
            }
        }
    }

    /// Orders the sources: discovered holders (usable ones) first, then the origins, usable
    /// ones first and dead ones only as a last resort.
    fn sources_found(&mut self, now: Time, fetch: FetchId, candidates: Vec<Candidate>, hops: u32) {
        let fill = &self.fills[&fetch];
        let (object, exclude) = (fill.object, fill.exclude);
        let me = self.config.id;
        let members = &self.membership;
        let mut sources: VecDeque<Candidate> = candidates
            .into_iter()
            .filter(|c| c.node != me && Some(c.node) != exclude && members.usable(c.node))
            .collect();
        if fill.discover {
            self.outputs.push_back(Output::Event(Event::Lookup {
                object: object.id,
                hops,
                found: sources.len() as u32,
            }));
        }
        let origins = self.config.origins.get(&object.namespace).map_or(&[][..], Vec::as_slice);
        let dead = |o: &&NodeId| members.health(**o) == Some(Health::Dead);
        let (alive, down) = (origins.iter().filter(|o| !dead(o)), origins.iter().filter(dead));
        sources.extend(alive.chain(down).map(|&node| Candidate { node, kind: FetchKind::Origin, level: u8::MAX }));
        if sources.is_empty() {
            let failure = if self.config.origins.contains_key(&object.namespace) {
                Failure::AllSourcesDown
            } else {
                Failure::NoOrigin
            };
            return self.fail_fill(now, fetch, failure);
        }
        let fill = self.fills.get_mut(&fetch).expect("live fill");
        fill.sources = sources;
        self.next_source(now, fetch);
    }

    /// Tries the next source, or fails the fill if none is left.
    fn next_source(&mut self, now: Time, fetch: FetchId) {
        let fill = self.fills.get_mut(&fetch).expect("live fill");
        let Some(source) = fill.sources.pop_front() else {
            return self.fail_fill(now, fetch, Failure::AllSourcesDown);
        };
        fill.current = Some(source);
        fill.staging_since = None;
        let object = fill.object.id;
        self.emit(Event::FetchStarted { object, source: source_of(source) });
        self.send_fetch(now, fetch);
        if source.kind == FetchKind::Origin {
            // Others may fetch from us while we fetch (CoralCDN's short-lived "fetching" pointer).
            self.with_discovery(now, |d, ctx| d.fetching(ctx, object));
        }
    }

    /// Asks the fill's current source for the object (a new attempt, with its own timer).
    fn send_fetch(&mut self, now: Time, fetch: FetchId) {
        let fill = self.fills.get_mut(&fetch).expect("live fill");
        let source = fill.current.expect("a source to ask");
        fill.receiving = None;
        fill.polling = false;
        fill.attempt += 1;
        fill.progress_at = now;
        let (object, attempt) = (fill.object, fill.attempt);
        let (revalidate, patience) = (fill.revalidate, fill.patience);
        self.outputs.push_back(Output::Fetch {
            fetch,
            object,
            from: source.node,
            kind: source.kind,
            revalidate,
            patience,
        });
        self.timers.set(now + patience, Timer::Fetch { fetch, attempt });
    }

    /// The current source is bringing the object online: ask it again later, unless it has
    /// been staging for longer than `stage_timeout`, then the next source is tried. The fill
    /// keeps its waiters (later requests still join it), so one recall serves them all.
    fn on_staging(&mut self, now: Time, fetch: FetchId, retry_after: Duration) {
        let stage_timeout = self.config.stage_timeout;
        let fill = self.fills.get_mut(&fetch).expect("live fill");
        let since = *fill.staging_since.get_or_insert(now);
        if now.saturating_since(since) >= stage_timeout {
            return self.failover(now, fetch, FetchError::StagingTimedOut);
        }
        fill.polling = true;
        let wait = retry_after.clamp(super::STAGE_POLL_MIN, super::STAGE_POLL_MAX);
        fill.poll_at = now + wait;
        let (object, from, attempt) = (fill.object.id, fill.current.expect("staging source").node, fill.attempt);
        // Other nodes' fetches waiting here are told to wait too (they would time out).
        let mut told = std::mem::take(&mut fill.node_waiters);
        told.retain(|r| fill.waiters.contains(r));
        fill.waiters.retain(|r| !told.contains(r));
        for request in told {
            self.respond(request, object, Response::Staging { retry_after: wait });
        }
        self.emit(Event::Staging { object, from, retry_after: wait });
        self.timers.set(now + wait, Timer::StagePoll { fetch, attempt });
    }

    pub(super) fn poll_staging(&mut self, now: Time, fetch: FetchId, attempt: u32) {
        if self.fills.get(&fetch).is_some_and(|f| f.polling && f.attempt == attempt) {
            self.send_fetch(now, fetch);
        }
    }

    /// The current source answered with `size` bytes: the fill's readers (re)start, and
    /// waiting requests become readers when the node streams.
    pub(super) fn on_fetch_receiving(&mut self, now: Time, fetch: FetchId, size: u64) {
        let Some(fill) = self.fills.get_mut(&fetch).filter(|f| f.current.is_some()) else { return };
        fill.progress_at = now;
        fill.receiving = Some(size);
        fill.staging_since = None;
        // Room for the whole object is made now, by the policy, not when it is complete: a fill
        // never runs out of space half way. One that cannot get room is still fetched (and
        // not kept).
        // One that cannot get room passes through: only a window of it is held at a time.
        if !fill.passing
            && fill.reserved != size
            && let Some(cache) = self.cache.as_mut()
        {
            cache.unreserve(fill.reserved, fill.object.namespace);
            if cache.reserve(size, fill.object.namespace, &mut self.evicted) {
                fill.reserved = size;
            } else {
                let window = size.min(self.config.pass_window);
                fill.reserved =
                    if cache.reserve(window, fill.object.namespace, &mut self.evicted) { window } else { 0 };
                fill.passing = true;
                self.outputs.push_back(Output::PassThrough { fetch });
            }
        }
        let stale = fill.streamed_size.is_some_and(|s| s != size);
        self.evict_reported(now);
        if stale {
            // Readers cannot resume from a source with another version of the object.
            self.break_readers(fetch);
        }
        self.stream_waiters(now, fetch);
        self.maybe_split(now, fetch, size);
    }

    /// The disk is full under a fill: it passes through and is not kept (its promise of room
    /// is given back: the room was not there).
    pub(super) fn on_fetch_no_space(&mut self, now: Time, fetch: FetchId) {
        let Some(fill) = self.fills.get_mut(&fetch).filter(|f| f.current.is_some() && !f.passing) else { return };
        if fill.split.is_some() {
            // (Ranges arriving out of order cannot pass through a window.)
            self.outputs.push_back(Output::CancelFetch { fetch });
            self.emit(Event::NoRoom { object: self.fills[&fetch].object.id });
            return self.fail_fill(now, fetch, Failure::NoSpace);
        }
        fill.passing = true;
        if let Some(cache) = self.cache.as_mut() {
            cache.unreserve(fill.reserved, fill.object.namespace);
        }
        fill.reserved = 0;
        self.outputs.push_back(Output::PassThrough { fetch });
    }

    /// Answers the fill's waiting requests with `Stream` if its source is sending (once only
    /// for a fill passing through: its start is gone by the time others come).
    fn stream_waiters(&mut self, now: Time, fetch: FetchId) {
        let fill = self.fills.get_mut(&fetch).expect("live fill");
        let (Some(size), Some(current), true) = (fill.receiving, fill.current, self.config.stream) else { return };
        if fill.passing && fill.streamed_size.is_some() {
            return;
        }
        let (object, waiters) = (fill.object.id, std::mem::take(&mut fill.waiters));
        fill.streamed_size = Some(size);
        for request in waiters {
            let response = match self.admit(now, request, size) {
                Ok(pace) => {
                    self.fills.get_mut(&fetch).expect("live fill").readers.push(request);
                    self.streaming.insert(request, fetch);
                    Response::Stream { source: source_of(current), size, fetch, pace }
                }
                Err(retry_after) => Response::Throttled { retry_after },
            };
            self.respond(request, object, response);
        }
    }

    /// Ends every reader of a fill: their responses cannot be completed.
    fn break_readers(&mut self, fetch: FetchId) {
        let fill = self.fills.get_mut(&fetch).expect("live fill");
        let (object, readers) = (fill.object.id, std::mem::take(&mut fill.readers));
        fill.streamed_size = None;
        for request in readers {
            self.streaming.remove(&request);
            self.emit(Event::StreamBroken { request, object });
        }
    }

    /// A reader's response ended before its fill did (the client went away).
    pub(super) fn reader_done(&mut self, request: RequestId) {
        if let Some(fetch) = self.streaming.remove(&request)
            && let Some(fill) = self.fills.get_mut(&fetch)
        {
            fill.readers.retain(|&r| r != request);
        }
    }

    pub(super) fn on_fetch_progress(&mut self, now: Time, fetch: FetchId) {
        if let Some(fill) = self.fills.get_mut(&fetch)
            && fill.current.is_some()
        {
            fill.progress_at = now;
        }
    }

    pub(super) fn fetch_overdue(&mut self, now: Time, fetch: FetchId, attempt: u32) {
        let Some(fill) = self
            .fills
            .get(&fetch)
            .filter(|f| f.attempt == attempt && f.current.is_some() && !f.polling && f.split.is_none())
        else {
            return; // (A split fill's parts have timers of their own.)
        };
        // Progress since the timer was set: one timer per attempt, moved on when it fires.
        let deadline = fill.progress_at + fill.patience;
        if now < deadline {
            self.timers.set(deadline, Timer::Fetch { fetch, attempt });
            return;
        }
        self.outputs.push_back(Output::CancelFetch { fetch });
        self.failover(now, fetch, FetchError::TimedOut);
    }

    pub(super) fn on_fetch_done(&mut self, now: Time, fetch: FetchId, result: FetchResult) {
        if self.fills.get(&fetch).is_none_or(|f| f.current.is_none() || f.polling) {
            return; // cancelled or timed out earlier: late results are ignored
        }
        if self.fills[&fetch].split.is_some() {
            match result {
                FetchResult::Complete { .. } => {}
                // The lead failed before it heard of the split: its range is handed on.
                FetchResult::Failed(e) => return self.on_part_done(now, fetch, 0, Err(e), 0),
                FetchResult::NotModified { .. } | FetchResult::Staging { .. } => {
                    self.outputs.push_back(Output::CancelFetch { fetch });
                    return self.fail_fill(now, fetch, Failure::AllSourcesDown);
                }
            }
        }
        match result {
            FetchResult::Complete { size, validity } => self.finish_fill(now, fetch, size, validity),
            FetchResult::Staging { retry_after } => self.on_staging(now, fetch, retry_after),
            FetchResult::NotModified { validity } => self.not_modified(now, fetch, validity),
            FetchResult::Failed(FetchError::NotFound) => {
                let object = self.fills[&fetch].object.id;
                // Expired entries are dropped once the map doubles: bounded, amortised O(1).
                if self.negative.len() >= self.negative_prune_at {
                    self.negative.retain(|_, until| *until > now);
                    self.negative_prune_at = (2 * self.negative.len()).max(1024);
                }
                self.negative.insert(object, now + self.config.negative_ttl);
                self.fail_fill(now, fetch, Failure::NotFound)
            }
            FetchResult::Failed(FetchError::Unauthorized) => self.fail_fill(now, fetch, Failure::Unauthorized),
            FetchResult::Failed(FetchError::NoSpace) => {
                self.emit(Event::NoRoom { object: self.fills[&fetch].object.id });
                self.fail_fill(now, fetch, Failure::NoSpace)
            }
            FetchResult::Failed(reason) => self.failover(now, fetch, reason),
        }
    }

    fn failover(&mut self, now: Time, fetch: FetchId, reason: FetchError) {
        let fill = &self.fills[&fetch];
        let source = fill.current.expect("an attempt in progress");
        let (object, from) = (fill.object.id, source.node);
        if reason.blames_source(source.kind == FetchKind::Origin) {
            self.membership.unreachable(now, from, &mut self.outputs);
        }
        self.emit(Event::Failover { object, from, reason });
        self.next_source(now, fetch);
    }

    /// An object the driver's store already holds: admitted like a fill, or evicted at once.
    pub(super) fn recovered(&mut self, now: Time, object: ObjectRef, size: u64) {
        let outcome = match self.cache.as_mut() {
            Some(cache) => cache.insert(object.id, size, object.namespace, &mut self.evicted),
            None => InsertOutcome::Rejected,
        };
        self.evict_reported(now);
        match outcome {
            InsertOutcome::Inserted => {
                self.track_freshness(now, object, None, false);
                self.emit(Event::Admitted { object: object.id, size });
                self.with_discovery(now, |d, ctx| d.holding(ctx, object.id));
            }
            InsertOutcome::AlreadyPresent => {}
            _ => {
                self.outputs.push_back(Output::Evict { object: object.id });
                self.emit(Event::NotAdmitted { object: object.id, size });
            }
        }
    }

    /// The store lost an object: it leaves the cache whatever its pins (their releases are
    /// forgotten, so they cannot unpin a later copy).
    pub(super) fn lost(&mut self, now: Time, object: ObjectId) {
        let Some(cache) = self.cache.as_mut() else { return };
        if cache.remove_lost(object, &mut self.evicted) {
            self.serving.retain(|_, o| *o != object);
            self.evict_reported(now);
        }
    }

    /// Turns the cache engine's eviction report into outputs, events and withdrawn pointers.
    pub(super) fn evict_reported(&mut self, now: Time) {
        for ev in std::mem::take(&mut self.evicted) {
            self.fresh_until.remove(&ev.id);
            self.outputs.push_back(Output::Evict { object: ev.id });
            self.emit(Event::Evicted { object: ev.id, namespace: ev.namespace, size: ev.size, reason: ev.reason });
            self.with_discovery(now, |d, ctx| d.dropped(ctx, ev.id));
        }
    }

    /// `validity`: what a third-party origin's headers allow (`None` from a Reef source).
    fn finish_fill(&mut self, now: Time, fetch: FetchId, size: u64, validity: Option<Validity>) {
        if self.fills[&fetch].streamed_size.is_some_and(|s| s != size) {
            self.break_readers(fetch);
        }
        let fill = self.take_fill(fetch);
        let object = fill.object.id;
        let source = source_of(fill.current.expect("a completed attempt"));
        if fill.revalidate {
            self.emit(Event::Revalidated { object, modified: true });
            // The new version replaces the stale copy, unless a response still reads that one
            // (then the new one is served to this fill's requests and not kept).
            if let Some(cache) = self.cache.as_mut()
                && cache.remove_for(object, crate::cache::EvictReason::Expired, &mut self.evicted)
            {
                self.evict_reported(now);
            }
        }
        let storable = !self.follows_headers(fill.object.namespace) || validity.is_none_or(|v| v.store);
        if !storable {
            self.emit(Event::NotStorable { object, size });
        }
        let admitted = match self.cache.as_mut() {
            Some(_) if fill.passing || !storable => InsertOutcome::Rejected,
            Some(cache) => cache.insert(object, size, fill.object.namespace, &mut self.evicted),
            None => InsertOutcome::Rejected,
        };
        self.evict_reported(now);
        let kept = admitted == InsertOutcome::Inserted;
        if kept {
            self.track_freshness(now, fill.object, validity, true);
            self.outputs.push_back(Output::Commit { fetch, object });
            self.emit(Event::Admitted { object, size });
            self.with_discovery(now, |d, ctx| d.holding(ctx, object));
        } else {
            self.outputs.push_back(Output::Discard { fetch });
            self.emit(Event::NotAdmitted { object, size });
            self.with_discovery(now, |d, ctx| d.dropped(ctx, object));
        }
        for &request in fill.readers.iter().chain(&fill.waiters) {
            self.streaming.remove(&request);
            if kept {
                // Each reader pins the new object until the driver has sent it.
                let cache = self.cache.as_mut().expect("kept in a cache");
                cache.pin(object);
                self.serving.insert(request, object);
            }
        }
        if fill.passing && !fill.waiters.is_empty() {
            // They came after the start had passed through: a fill of their own.
            let object = fill.object;
            return self.start_fill_for(now, object, Waiting::left_by(fill), false);
        }
        for request in fill.waiters {
            let response = match self.admit(now, request, size) {
                Ok(pace) => Response::Serve { source, size: Some(size), fetch: Some(fetch), pace },
                Err(retry_after) => {
                    if let Some(object) = self.serving.remove(&request) {
                        self.cache.as_mut().expect("pinned in a cache").unpin(object);
                    }
                    Response::Throttled { retry_after }
                }
            };
            self.respond(request, object, response);
        }
    }

    pub(super) fn fail_fill(&mut self, now: Time, fetch: FetchId, failure: Failure) {
        self.break_readers(fetch);
        let fill = self.take_fill(fetch);
        let object = fill.object.id;
        if fill.revalidate && self.cache.as_ref().is_some_and(|c| c.contains(object)) {
            if failure == Failure::NotFound {
                // Gone at the origin: the copy goes too.
                let cache = self.cache.as_mut().expect("checked above");
                if cache.remove_for(object, crate::cache::EvictReason::Expired, &mut self.evicted) {
                    self.evict_reported(now);
                }
            } else if failure == Failure::AllSourcesDown && self.may_serve_stale(now, object) {
                // No origin answered: a complete, verified earlier version beats nothing,
                // unless its origin forbade serving it stale (or only for so long).
                for request in fill.waiters {
                    self.emit(Event::ServedStale { request, object });
                    self.serve_local(now, request, object, true);
                }
                return;
            }
        }
        for request in fill.waiters {
            self.respond(request, object, Response::Fail(failure));
        }
    }

    /// The origin says the stale copy is current: it is fresh again, and the waiting requests
    /// are served from it. If the copy has gone meanwhile, they get a fill of their own.
    fn not_modified(&mut self, now: Time, fetch: FetchId, validity: Option<Validity>) {
        // (Readers of an earlier attempt that sent a body cannot resume from a 304.)
        self.break_readers(fetch);
        let fill = self.take_fill(fetch);
        let object = fill.object;
        if !(fill.revalidate && self.cache.as_ref().is_some_and(|c| c.contains(object.id))) {
            return self.start_fill_for(now, object, Waiting::left_by(fill), false);
        }
        self.track_freshness(now, object, validity, true);
        self.emit(Event::Revalidated { object: object.id, modified: false });
        for request in fill.waiters {
            self.serve_local(now, request, object.id, true);
        }
    }

    fn take_fill(&mut self, fetch: FetchId) -> Fill {
        let fill = self.fills.remove(&fetch).expect("taking a live fill");
        self.fill_of_object.remove(&fill.object.id);
        if let Some(cache) = self.cache.as_mut() {
            cache.unreserve(fill.reserved, fill.object.namespace);
        }
        // Timers of ended fetches wait in the queue until they fire; once they far outnumber
        // the live ones, drop them (amortised O(1) per fill, and a small heap stays fast).
        if self.timers.len() > 4 * (self.fills.len() + 16) {
            let fills = &self.fills;
            self.timers.retain(|timer| match *timer {
                Timer::Fetch { fetch, attempt } | Timer::StagePoll { fetch, attempt } => {
                    fills.get(&fetch).is_some_and(|f| f.attempt == attempt && f.current.is_some())
                }
                Timer::Part { fetch, .. } => fills.get(&fetch).is_some_and(|f| f.split.is_some()),
            });
        }
        fill
    }
}

/// How long a copy held here may be served.
#[derive(Clone, Copy, Debug)]
pub(super) struct Freshness {
    /// From then on, a request revalidates it first.
    until: Time,
    /// Until when it may still be served, stale, if its origin cannot be reached (`None`:
    /// never once stale).
    stale_until: Option<Time>,
}
