//! The owner of the core `Node`: it feeds inputs with the real clock converted to core time,
//! drains outputs and executes them (fetches, store operations, messages, answers to waiting
//! request handlers). It decides nothing itself.
//!
//! The node sits behind a mutex. A request handler takes the lock, hands its request to the
//! core and finds the answer in its channel when it lets go: a cache hit costs no wake-up of
//! another task, just a critical section of a few microseconds. Fill tasks, the store thread
//! and peers report through a channel; a direct call first hands the core what is queued there
//! and a deadline already passed, so inputs reach it in the order they happened (the lab's
//! agreement with the simulator depends on it). A task feeds the channel and the core's timer
//! to it between requests, and is woken when a direct call moves the deadline earlier.

use crate::config::Config;
use crate::fill::{Fill, Reader, State};
use crate::http::pacing::Pacer;
use crate::metrics::Metrics;
use crate::peer_transport::{Attempt, AttemptEnd, FillReport, Transport};
use crate::store::{ObjectMeta, Store};
use crate::third_party::Held;
use reef_core::cache::NamespaceShare;
use reef_core::shaper::RateLimit;
use reef_core::{
    Event, Failure, FetchId, FetchKind, FetchResult, Input, Message, NamespaceId, Node, NodeId, ObjectId, ObjectName,
    ObjectRef, Output, Part, Request, RequestId, RequestKind, Response, Source, Time,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// What the core decided about a request, as the request handler needs it.
#[derive(Debug)]
pub enum Answer {
    /// Stream from a fill while it arrives (the core's `Stream`), as `reader`.
    Stream {
        source: Source,
        fill: Arc<Fill>,
        reader: Reader,
        pacer: Option<Pacer>,
    },
    Serve {
        source: Source,
        from: ServeFrom,
        pacer: Option<Pacer>,
    },
    Redirect {
        to: NodeId,
    },
    /// Ask `origin` for the object's metadata alone (the core's `Describe`).
    Describe {
        origin: NodeId,
        within: std::time::Duration,
    },
    Fail {
        failure: Failure,
    },
    /// The namespace's egress limit refused the response: retry after this long.
    Throttled {
        retry_after: std::time::Duration,
    },
    /// To another node: the object is being staged upstream; ask again after this long.
    Staging {
        retry_after: std::time::Duration,
    },
}

#[derive(Debug)]
pub enum ServeFrom {
    /// The local store (a cache) or the exported tree (an origin).
    Store,
    /// A completed fill (just fetched, or still being committed to the store).
    Fill(Arc<Fill>),
}

#[derive(Debug)]
enum Cmd {
    Request {
        req: Request,
        name: ObjectName,
        answers: mpsc::Sender<Answer>,
    },
    FetchDone {
        fetch: FetchId,
        attempt: u32,
        result: FetchResult,
    },
    FetchReceiving {
        fetch: FetchId,
        attempt: u32,
        size: u64,
    },
    FetchProgress {
        fetch: FetchId,
        attempt: u32,
    },
    FetchNoSpace {
        fetch: FetchId,
        attempt: u32,
    },
    PartProgress {
        fetch: FetchId,
        attempt: u32,
        part: u32,
        reached: u64,
    },
    PartDone {
        fetch: FetchId,
        attempt: u32,
        part: u32,
        result: Result<(), reef_core::FetchError>,
        reached: u64,
    },
    SetQuotas {
        quotas: Vec<NamespaceShare>,
        egress: Vec<(NamespaceId, RateLimit)>,
        done: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    ServeDone(RequestId),
    Lost(ObjectId),
    Message {
        from: NodeId,
        msg: Message,
    },
    PeerUnreachable(NodeId),
    Stored {
        object: ObjectId,
        ok: bool,
    },
}

/// A handle to the node; cheap to clone.
#[derive(Debug, Clone)]
pub struct Driver {
    shared: Arc<Shared>,
}

struct Shared {
    actor: Mutex<Actor>,
    tx: mpsc::UnboundedSender<Cmd>,
    /// Told when a direct call moved the core's deadline before the one the timer waits for.
    deadline_moved: Notify,
    next_request: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Actor> {
        // A panic inside the core leaves it in an unknown state: no request may use it after.
        self.actor.lock().expect("the core panicked while handling an input")
    }

    /// Runs `f` on the actor in the caller's task, after what reached the core before it: the
    /// commands already queued (a fill's end, a full disk) and a deadline already passed, in
    /// the order the simulator would see them.
    fn direct(&self, f: impl FnOnce(&mut Actor)) {
        let mut actor = self.lock();
        while let Ok(cmd) = actor.inbox.try_recv() {
            actor.on_cmd(cmd);
        }
        if actor.node.poll_timeout().is_some_and(|t| t <= actor.now()) {
            actor.handle(Input::Tick);
        }
        f(&mut actor);
        let moved = match (actor.node.poll_timeout(), actor.armed) {
            (Some(next), Some(armed)) => next < armed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        drop(actor);
        if moved {
            self.deadline_moved.notify_one();
        }
    }
}

impl Driver {
    /// Starts the actor. `recovered` are the objects found in the store at start.
    pub fn start(
        config: Arc<Config>,
        transport: Arc<Transport>,
        store: Option<Arc<Store>>,
        recovered: Vec<(ObjectId, ObjectMeta)>,
        metrics: Arc<Metrics>,
    ) -> Driver {
        let (tx, rx) = mpsc::unbounded_channel();
        let store_ops = store.clone().map(|s| spawn_store_worker(s, tx.clone()));
        let mut actor = Actor {
            inbox: rx,
            node: Node::new(config.node_config()),
            armed: None,
            runtime: tokio::runtime::Handle::current(),
            start: Instant::now(),
            config,
            transport,
            store,
            store_ops,
            tx: tx.clone(),
            metrics,
            pending: HashMap::new(),
            names: HashMap::new(),
            fills: HashMap::new(),
            fill_of_object: HashMap::new(),
            committing: HashMap::new(),
            ending: Vec::new(),
            preloading: false,
        };
        actor.preload(recovered);
        let shared = Arc::new(Shared {
            actor: Mutex::new(actor),
            tx,
            deadline_moved: Notify::new(),
            next_request: AtomicU64::new(1 << 32),
        });
        tokio::spawn(run(shared.clone()));
        Driver { shared }
    }

    /// Submits a request; answers arrive on the returned channel.
    pub fn request(
        &self,
        object: ObjectRef,
        name: ObjectName,
        kind: RequestKind,
        client_site: Option<reef_core::SiteId>,
        length: Option<u64>,
        metadata_only: bool,
    ) -> (RequestId, mpsc::Receiver<Answer>) {
        let id = RequestId(self.shared.next_request.fetch_add(1, Ordering::Relaxed));
        let (answers, rx) = mpsc::channel(2);
        let req = Request { id, object, kind, client_site, length, metadata_only };
        self.shared.direct(|actor| actor.on_cmd(Cmd::Request { req, name, answers }));
        (id, rx)
    }

    pub fn serve_done(&self, request: RequestId) {
        self.shared.direct(|actor| actor.on_cmd(Cmd::ServeDone(request)));
    }

    /// How this node's core sees `peer` (for the director's live view).
    pub fn health(&self, peer: NodeId) -> Option<reef_core::membership::Health> {
        let mut health = None;
        self.shared.direct(|actor| health = actor.node.membership().health(peer));
        health
    }

    /// `peer` did not answer a request this node's core asked the driver to make.
    pub fn peer_unreachable(&self, peer: NodeId) {
        self.shared.direct(|actor| actor.on_cmd(Cmd::PeerUnreachable(peer)));
    }

    /// The store cannot produce `object` intact: the core drops it (before the caller's next
    /// request, which may ask for the object again).
    pub fn lost(&self, object: ObjectId) {
        self.shared.direct(|actor| actor.on_cmd(Cmd::Lost(object)));
    }

    pub fn message(&self, from: NodeId, msg: Message) {
        self.shared.direct(|actor| actor.on_cmd(Cmd::Message { from, msg }));
    }

    /// Changes the cache's namespace quotas (a reloaded configuration); the core decides what
    /// leaves the cache now.
    pub async fn set_quotas(
        &self,
        quotas: Vec<NamespaceShare>,
        egress: Vec<(NamespaceId, RateLimit)>,
    ) -> Result<(), String> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.shared.tx.send(Cmd::SetQuotas { quotas, egress, done }).map_err(|_| "the node is stopping".to_string())?;
        answer.await.map_err(|_| "the node is stopping".to_string())?
    }
}

#[derive(Debug)]
struct Pending {
    object: ObjectId,
    answers: mpsc::Sender<Answer>,
}

#[derive(Debug)]
struct LiveFill {
    fill: Arc<Fill>,
    attempt: u32,
    task: Option<AbortHandle>,
    /// A split fill's other parts, by id.
    parts: HashMap<u32, AbortHandle>,
}

impl LiveFill {
    /// Stops the attempt and every part.
    fn abort(&self) {
        self.task.iter().chain(self.parts.values()).for_each(AbortHandle::abort);
    }
}

/// What a fill's tasks report, as commands to the driver.
fn reporter(tx: mpsc::UnboundedSender<Cmd>, fetch: FetchId, attempt: u32) -> impl Fn(FillReport) {
    move |r: FillReport| {
        let _ = tx.send(match r {
            FillReport::Receiving { size } => Cmd::FetchReceiving { fetch, attempt, size },
            FillReport::Progress => Cmd::FetchProgress { fetch, attempt },
            FillReport::PartProgress { part, reached } => Cmd::PartProgress { fetch, attempt, part, reached },
            FillReport::NoSpace => Cmd::FetchNoSpace { fetch, attempt },
        });
    }
}

#[derive(Debug)]
enum StoreOp {
    Commit { object: ObjectId, temp: PathBuf, meta: Arc<ObjectMeta> },
    DeleteTemp(PathBuf),
    Remove(ObjectId),
}

/// The task that feeds the core what arrives through the channel and its timer's ticks.
async fn run(shared: Arc<Shared>) {
    // One timer, moved only when the core's deadline changes (not re-created per command).
    let far = || Instant::now() + std::time::Duration::from_secs(86_400 * 365);
    let timer = tokio::time::sleep_until(far());
    tokio::pin!(timer);
    let mut armed = None;
    loop {
        let (deadline, start) = {
            let mut actor = shared.lock();
            actor.armed = actor.node.poll_timeout();
            (actor.armed, actor.start)
        };
        if deadline != armed {
            timer.as_mut().reset(deadline.map_or_else(far, |t| start + std::time::Duration::from_nanos(t.0)));
            armed = deadline;
        }
        tokio::select! {
            // The inbox lives with the core (direct calls drain it first), so it is polled
            // under the lock, never held across an await.
            cmd = std::future::poll_fn(|cx| shared.lock().inbox.poll_recv(cx)) => match cmd {
                Some(cmd) => {
                    let mut actor = shared.lock();
                    actor.on_cmd(cmd);
                    // Take some of what else is queued before going back to the timer (a
                    // bounded batch, so that timers are never starved under load).
                    for _ in 0..128 {
                        let Ok(cmd) = actor.inbox.try_recv() else { break };
                        actor.on_cmd(cmd);
                    }
                }
                None => return,
            },
            () = &mut timer => {
                // Parked far away until the core names its next deadline.
                timer.as_mut().reset(far());
                armed = None;
                shared.lock().handle(Input::Tick);
            }
            () = shared.deadline_moved.notified() => {}
        }
    }
}

/// Store operations run in order on one thread: the fsyncs stay off the runtime, and an
/// eviction can never overtake the commit of the same object.
fn spawn_store_worker(store: Arc<Store>, tx: mpsc::UnboundedSender<Cmd>) -> std::sync::mpsc::Sender<StoreOp> {
    let (ops, rx) = std::sync::mpsc::channel::<StoreOp>();
    std::thread::Builder::new()
        .name("reef-store".into())
        .spawn(move || {
            for op in rx {
                match op {
                    StoreOp::Commit { object, temp, meta } => {
                        let result = store.commit(object, &temp, &meta);
                        if let Err(e) = &result {
                            tracing::error!(%object, error = %e, "commit failed; serving from the fill");
                        }
                        let _ = tx.send(Cmd::Stored { object, ok: result.is_ok() });
                    }
                    StoreOp::DeleteTemp(path) => {
                        let _ = std::fs::remove_file(path);
                    }
                    StoreOp::Remove(object) => {
                        if let Err(e) = store.remove(object) {
                            tracing::error!(%object, error = %e, "cannot delete an evicted object");
                        }
                    }
                }
            }
        })
        .expect("spawn the store thread");
    ops
}

struct Actor {
    /// Reports from fill tasks, the store thread and peers' transports, in the order sent.
    inbox: mpsc::UnboundedReceiver<Cmd>,
    node: Node,
    /// The core deadline the timer task waits for.
    armed: Option<Time>,
    /// Where tasks are spawned (a direct call may come from outside the runtime's threads).
    runtime: tokio::runtime::Handle,
    start: Instant,
    config: Arc<Config>,
    transport: Arc<Transport>,
    store: Option<Arc<Store>>,
    store_ops: Option<std::sync::mpsc::Sender<StoreOp>>,
    tx: mpsc::UnboundedSender<Cmd>,
    metrics: Arc<Metrics>,
    pending: HashMap<RequestId, Pending>,
    /// Names of objects with requests in flight, and how many (the core's refs carry only ids,
    /// and it may start a fetch long after the request, when a lookup answers).
    names: HashMap<ObjectId, (ObjectName, u32)>,
    fills: HashMap<FetchId, LiveFill>,
    fill_of_object: HashMap<ObjectId, FetchId>,
    /// Committed fills whose rename into the store has not finished yet.
    committing: HashMap<ObjectId, Arc<Fill>>,
    /// Fills whose attempt ended; dropped unless the core starts another attempt.
    ending: Vec<(FetchId, u32)>,
    preloading: bool,
}

impl Actor {
    fn now(&self) -> Time {
        Time(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    fn hold_name(&mut self, id: ObjectId, name: ObjectName) {
        self.names.entry(id).or_insert((name, 0)).1 += 1;
    }

    fn release_name(&mut self, id: ObjectId) {
        if let Some((_, count)) = self.names.get_mut(&id) {
            *count -= 1;
            if *count == 0 {
                self.names.remove(&id);
            }
        }
    }

    fn handle(&mut self, input: Input) {
        let now = self.now();
        tracing::trace!(?now, ?input, "input");
        self.node.handle(now, input);
        self.drain();
    }

    /// Registers the objects found on disk with the core's cache (`Input::Recovered`); the core
    /// decides which stay, and the ones it does not keep come back as `Evict` and are deleted.
    /// Their events are not counted again in the metrics.
    fn preload(&mut self, recovered: Vec<(ObjectId, ObjectMeta)>) {
        self.preloading = true;
        let count = recovered.len();
        for (id, meta) in recovered {
            let Some(namespace) = self.config.namespace(&meta.namespace) else {
                if let Some(ops) = &self.store_ops {
                    let _ = ops.send(StoreOp::Remove(id));
                }
                continue;
            };
            let object = ObjectRef { id, namespace, size: Some(meta.size) };
            self.handle(Input::Recovered { object, size: meta.size });
        }
        tracing::info!(objects = count, "store recovered");
        self.preloading = false;
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Request { req, name, answers } => {
                let object = req.object.id;
                self.hold_name(object, name);
                self.pending.insert(req.id, Pending { object, answers });
                self.handle(Input::Request(req));
            }
            Cmd::FetchDone { fetch, attempt, result } => {
                let current = self.fills.get(&fetch).map(|l| l.attempt);
                if current != Some(attempt) {
                    return; // a cancelled attempt finishing late
                }
                // (After a staging answer the core usually asks again later, but it may also
                // have given the fill up: the check below asks it.)
                if let FetchResult::Failed(_) | FetchResult::NotModified { .. } | FetchResult::Staging { .. } = result {
                    self.ending.push((fetch, attempt));
                }
                self.handle(Input::FetchDone { fetch, result });
            }
            Cmd::FetchReceiving { fetch, attempt, size } => {
                if self.fills.get(&fetch).is_some_and(|l| l.attempt == attempt) {
                    self.handle(Input::FetchReceiving { fetch, size });
                }
            }
            Cmd::FetchNoSpace { fetch, attempt } => {
                if self.fills.get(&fetch).is_some_and(|l| l.attempt == attempt) {
                    self.handle(Input::FetchNoSpace { fetch });
                }
            }
            Cmd::FetchProgress { fetch, attempt } => {
                if self.fills.get(&fetch).is_some_and(|l| l.attempt == attempt) {
                    self.handle(Input::FetchProgress { fetch });
                }
            }
            Cmd::PartProgress { fetch, attempt, part, reached } => {
                if self.fills.get(&fetch).is_some_and(|l| l.attempt == attempt) {
                    self.handle(Input::PartProgress { fetch, part, reached });
                }
            }
            Cmd::PartDone { fetch, attempt, part, result, reached } => {
                if let Some(live) = self.fills.get_mut(&fetch).filter(|l| l.attempt == attempt) {
                    live.parts.remove(&part);
                    let done = result.is_ok();
                    self.handle(Input::PartDone { fetch, part, result, reached });
                    if done {
                        self.try_finish(fetch);
                    }
                }
            }
            Cmd::ServeDone(request) => self.handle(Input::ServeDone { request }),
            Cmd::Lost(object) => self.handle(Input::Lost { object }),
            Cmd::SetQuotas { quotas, egress, done } => {
                let now = self.now();
                let result = self.node.set_quotas(now, quotas, egress);
                self.drain();
                let _ = done.send(result);
            }
            Cmd::Message { from, msg } => self.handle(Input::Message { from, msg }),
            Cmd::PeerUnreachable(peer) => self.handle(Input::PeerUnreachable { peer }),
            Cmd::Stored { object, ok } => {
                if ok {
                    self.committing.remove(&object);
                }
            }
        }
    }

    fn drain(&mut self) {
        let mut finished: HashMap<FetchId, Arc<Fill>> = HashMap::new();
        let mut contents_changed = false;
        while let Some(out) = self.node.poll() {
            // The core's inputs and decisions, one line each: `RUST_LOG=reef_node::driver=trace`.
            tracing::trace!(?out, "output");
            match out {
                Output::Send { to, msg } => {
                    let (transport, tx) = (self.transport.clone(), self.tx.clone());
                    self.runtime.spawn(async move {
                        if let Err(e) = transport.send(to, &msg).await {
                            tracing::debug!(%to, error = %e, "peer unreachable");
                            let _ = tx.send(Cmd::PeerUnreachable(to));
                        }
                    });
                }
                Output::Fetch { fetch, object, from, kind, revalidate, patience } => {
                    self.start_fetch(fetch, object, from, kind, revalidate, patience)
                }
                Output::CancelFetch { fetch } => {
                    if let Some(live) = self.fills.get(&fetch) {
                        live.abort();
                        live.fill.set(live.attempt, State::Failed);
                        self.ending.push((fetch, live.attempt));
                    }
                }
                Output::FetchParts { fetch, lead_end, parts } => {
                    if let Some(live) = self.fills.get(&fetch) {
                        live.fill.split(lead_end);
                    }
                    for part in parts {
                        self.start_part(fetch, part);
                    }
                }
                Output::FetchPart { fetch, part } => self.start_part(fetch, part),
                Output::CancelPart { fetch, part } => {
                    if let Some(live) = self.fills.get_mut(&fetch) {
                        // (Part 0 is the lead: the attempt's own task.)
                        let task = if part == 0 { live.task.take() } else { live.parts.remove(&part) };
                        if let Some(task) = task {
                            task.abort();
                        }
                        // It may have verified its whole range first: the fill may be whole.
                        self.try_finish(fetch);
                    }
                }
                Output::Commit { fetch, object } => {
                    if let Some(live) = self.end_fill(fetch) {
                        if let State::Complete { temp, meta, .. } = live.fill.snapshot().state
                            && let Some(ops) = &self.store_ops
                        {
                            self.committing.insert(object, live.fill.clone());
                            if let Some(store) = &self.store {
                                store.stage(object, meta.clone());
                            }
                            let _ = ops.send(StoreOp::Commit { object, temp, meta });
                        }
                        // The core holds the object now: readers may have the last byte.
                        live.fill.settle();
                        finished.insert(fetch, live.fill);
                    }
                }
                Output::Discard { fetch } => {
                    if let Some(live) = self.end_fill(fetch) {
                        let op = match live.fill.snapshot().state {
                            State::Complete { temp, .. } => Some(StoreOp::DeleteTemp(temp)),
                            _ => None,
                        };
                        // Readers keep their open file; unlinking does not disturb them.
                        if let (Some(op), Some(ops)) = (op, &self.store_ops) {
                            let _ = ops.send(op);
                        }
                        live.fill.settle();
                        finished.insert(fetch, live.fill);
                    }
                }
                Output::PassThrough { fetch } => {
                    if let Some(live) = self.fills.get(&fetch) {
                        live.fill.pass_through(self.node.config().pass_window);
                    }
                }
                Output::Evict { object } => {
                    self.committing.remove(&object);
                    if let Some(ops) = &self.store_ops {
                        let _ = ops.send(StoreOp::Remove(object));
                    }
                }
                Output::Respond { request, response } => self.answer(request, response, &finished),
                Output::Event(event) => {
                    contents_changed |= matches!(event, Event::Admitted { .. } | Event::Evicted { .. });
                    if !self.preloading {
                        self.namespace_event(&event);
                    }
                    if !self.preloading {
                        self.metrics.core_event(&event);
                    }
                }
            }
        }
        for (fetch, attempt) in std::mem::take(&mut self.ending) {
            // No new attempt and no fill left in the core: it gave the fill up, and its readers
            // stop waiting.
            if self.fills.get(&fetch).is_some_and(|l| l.attempt == attempt)
                && !self.node.has_fill(fetch)
                && let Some(live) = self.end_fill(fetch)
            {
                live.fill.abandon();
            }
        }
        if contents_changed || self.preloading {
            self.publish_usage();
        }
    }

    /// What the cache holds per namespace with a quota (the others together as `other`).
    fn publish_usage(&self) {
        let Some(cache) = self.node.cache() else { return };
        for (namespace, bytes, objects) in cache.usage() {
            let name = namespace.and_then(|ns| self.config.namespaces.get(usize::from(ns.0))).map(|n| n.name.as_str());
            let labels = [("namespace", name.unwrap_or("other"))];
            self.metrics.set("reef_namespace_cached_bytes", &labels, bytes as f64);
            self.metrics.set("reef_namespace_cached_objects", &labels, objects as f64);
        }
    }

    fn end_fill(&mut self, fetch: FetchId) -> Option<LiveFill> {
        let live = self.fills.remove(&fetch)?;
        // (A lead or parts still running hold only bytes the fill no longer needs.)
        live.abort();
        let object = live.fill.name.id();
        if self.fill_of_object.get(&object) == Some(&fetch) {
            self.fill_of_object.remove(&object);
        }
        Some(live)
    }

    fn start_fetch(
        &mut self,
        fetch: FetchId,
        object: ObjectRef,
        from: NodeId,
        kind: FetchKind,
        revalidate: bool,
        patience: reef_core::Duration,
    ) {
        let attempt = match self.fills.get_mut(&fetch) {
            Some(live) => {
                live.attempt += 1;
                live.attempt
            }
            None => {
                let Some((name, _)) = self.names.get(&object.id).cloned() else {
                    // The core asked for an object no request named: nothing to fetch.
                    let _ = self.tx.send(Cmd::FetchDone {
                        fetch,
                        attempt: 0,
                        result: FetchResult::Failed(reef_core::FetchError::NotFound),
                    });
                    return;
                };
                self.fills.insert(
                    fetch,
                    LiveFill { fill: Arc::new(Fill::new(fetch, name)), attempt: 0, task: None, parts: HashMap::new() },
                );
                0
            }
        };
        self.fill_of_object.insert(object.id, fetch);
        let live = self.fills.get_mut(&fetch).expect("just inserted");
        live.fill.begin(attempt);
        let source = match kind {
            FetchKind::Origin => Source::Origin { node: from },
            FetchKind::Peer | FetchKind::Parent => {
                Source::Peer { node: from, level: self.node.membership().level(from) }
            }
        };
        let Some(store) = self.store.clone() else {
            let _ = self.tx.send(Cmd::FetchDone {
                fetch,
                attempt,
                result: FetchResult::Failed(reef_core::FetchError::Refused),
            });
            return;
        };
        let (fill, transport, tx) = (live.fill.clone(), self.transport.clone(), self.tx.clone());
        // The origin's block list: from the namespace's origins, or the source as a last resort.
        let namespace = self.config.namespaces.get(usize::from(object.namespace.0));
        let origins = namespace.map(|ns| ns.origins.clone()).unwrap_or_default();
        let private = namespace.is_some_and(|ns| ns.access.private);
        let mut reference_from = origins.clone();
        if !reference_from.contains(&from) {
            reference_from.push(from);
        }
        // A revalidation asks for anything but the version stored here.
        let held = revalidate.then(|| store.meta(object.id)).flatten();
        let block_size = self.config.policy.block_size.0;
        let task = self.runtime.spawn(async move {
            let report = reporter(tx.clone(), fetch, attempt);
            let attempt_of = Attempt {
                fill: &fill,
                number: attempt,
                from,
                kind,
                patience,
                source,
                reference_from: &reference_from,
                origins: &origins,
                private,
                held: held.as_deref().map(|m| Held {
                    etag: &m.etag,
                    last_modified: m.last_modified,
                    caching: m.caching.as_ref(),
                }),
                block_size,
            };
            match transport.fetch(&store, attempt_of, report).await {
                AttemptEnd::Fetch(result) => {
                    let _ = tx.send(Cmd::FetchDone { fetch, attempt, result });
                }
                AttemptEnd::Lead { result, reached } => {
                    let _ = tx.send(Cmd::PartDone { fetch, attempt, part: 0, result, reached });
                }
            }
        });
        live.task = Some(task.abort_handle());
    }

    /// A part of split fill `fetch` ended or was stopped: if every block is verified, the fill
    /// is finished (checksums, then `FetchDone`) by a task of its own, which no cancel of a
    /// part can cut short, once.
    fn try_finish(&self, fetch: FetchId) {
        let Some(live) = self.fills.get(&fetch) else { return };
        let attempt = live.attempt;
        let Some(assembly) = live.fill.assembly().filter(|a| a.of.attempt == attempt) else { return };
        let (fill, transport, tx) = (live.fill.clone(), self.transport.clone(), self.tx.clone());
        self.runtime.spawn(async move {
            if let Some(result) = transport.finish_split(&fill, assembly).await {
                let _ = tx.send(Cmd::FetchDone { fetch, attempt, result });
            }
        });
    }

    /// Starts a part of a split fill (`Output::FetchParts`, `Output::FetchPart`): its range
    /// from its holder into the fill's shared file.
    fn start_part(&mut self, fetch: FetchId, part: Part) {
        let Some(live) = self.fills.get_mut(&fetch) else { return };
        let attempt = live.attempt;
        let Some(assembly) = live.fill.assembly().filter(|a| a.of.attempt == attempt) else {
            // (The core splits only fills whose first block was checked, which made the file.)
            tracing::error!(object = %live.fill.name, "a split fill without a shared file");
            let result = Err(reef_core::FetchError::Refused);
            let _ = self.tx.send(Cmd::PartDone { fetch, attempt, part: part.id, result, reached: part.start });
            return;
        };
        let private = self.config.namespaces.iter().any(|ns| ns.name == live.fill.name.namespace && ns.access.private);
        let (fill, transport, tx) = (live.fill.clone(), self.transport.clone(), self.tx.clone());
        let task = self.runtime.spawn(async move {
            let report = reporter(tx.clone(), fetch, attempt);
            let (result, reached) = transport.fetch_part(&fill, &assembly, part, private, report).await;
            let _ = tx.send(Cmd::PartDone { fetch, attempt, part: part.id, result, reached });
        });
        live.parts.insert(part.id, task.abort_handle());
    }

    /// Per-namespace metrics of a core event.
    fn namespace_event(&self, event: &Event) {
        let namespace = match event {
            Event::Evicted { namespace, .. } | Event::Throttled { namespace, .. } => namespace,
            _ => return,
        };
        let Some(ns) = self.config.namespaces.get(usize::from(namespace.0)) else { return };
        let labels = [("namespace", ns.name.as_str())];
        match *event {
            Event::Evicted { .. } => self.metrics.add("reef_namespace_evictions_total", &labels, 1.0),
            Event::Throttled { wait, refused, .. } => {
                let decision = if refused { "refused" } else { "delayed" };
                let labels = [labels[0], ("decision", decision)];
                self.metrics.add("reef_namespace_throttled_total", &labels, 1.0);
                if !refused {
                    self.metrics.add("reef_namespace_throttle_wait_seconds_total", &labels[..1], wait.as_secs_f64());
                }
            }
            _ => {}
        }
    }

    fn answer(&mut self, request: RequestId, response: Response, finished: &HashMap<FetchId, Arc<Fill>>) {
        let Some(pending) = self.pending.remove(&request) else {
            // A preload request, or a handler that went away: release the object's pin.
            if let Response::Serve { .. } | Response::Stream { .. } = response {
                let _ = self.tx.send(Cmd::ServeDone(request));
            }
            return;
        };
        let object = pending.object;
        self.release_name(object);
        let pacer = |pace: Option<reef_core::shaper::Pace>| pace.map(|p| Pacer::new(p, self.start));
        let answer = match response {
            Response::Stream { source, fetch, pace, .. } => match self.fills.get(&fetch) {
                Some(live) => Answer::Stream {
                    source,
                    fill: live.fill.clone(),
                    reader: live.fill.new_reader(),
                    pacer: pacer(pace),
                },
                // Already ended in this step: committed or discarded, so complete.
                None => {
                    let fill = finished.get(&fetch).or_else(|| self.committing.get(&object)).cloned();
                    Answer::Serve { source, from: fill.map_or(ServeFrom::Store, ServeFrom::Fill), pacer: pacer(pace) }
                }
            },
            Response::Serve { source, fetch, pace, .. } => {
                let fill = fetch
                    .and_then(|f| finished.get(&f).or_else(|| self.fills.get(&f).map(|l| &l.fill)))
                    .or_else(|| self.committing.get(&object))
                    .cloned();
                Answer::Serve { source, from: fill.map_or(ServeFrom::Store, ServeFrom::Fill), pacer: pacer(pace) }
            }
            Response::Redirect { to } => Answer::Redirect { to },
            Response::Describe { origin, within } => Answer::Describe { origin, within: within.into() },
            Response::Fail(failure) => Answer::Fail { failure },
            Response::Throttled { retry_after } => Answer::Throttled { retry_after: retry_after.into() },
            Response::Staging { retry_after } => Answer::Staging { retry_after: retry_after.into() },
        };
        if pending.answers.try_send(answer).is_err() {
            let _ = self.tx.send(Cmd::ServeDone(request));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The core's answer to a request it decides at once (an origin serving its export) is in
    /// the handler's channel when `request` returns: no other task had to run for it.
    #[tokio::test(flavor = "current_thread")]
    async fn an_immediate_answer_is_there_when_request_returns() {
        let export = tempfile::tempdir().unwrap();
        let text = format!(
            "[node]\nid = 1\nrole = \"origin\"\nlisten = \"127.0.0.1:0\"\nsite = \"a\"\n\n\
             [[sites]]\nname = \"a\"\nid = 1\n\n\
             [[namespaces]]\nname = \"atlas\"\norigins = [1]\nexport = \"{}\"\n",
            export.path().display()
        );
        let config = Arc::new(Config::parse(&text).unwrap());
        let tls = crate::tls::client_trusting(None).unwrap();
        let transport = Arc::new(Transport::new(config.id, config.advertise.clone(), Vec::new(), tls, None));
        let driver = Driver::start(config, transport, None, Vec::new(), Arc::new(Metrics::default()));
        for path in ["a", "b", "a"] {
            let name = ObjectName::new("atlas", path);
            let object = ObjectRef { id: name.id(), namespace: NamespaceId(0), size: None };
            let (request, mut answers) = driver.request(object, name, RequestKind::Client, None, None, false);
            match answers.try_recv() {
                Ok(Answer::Serve { source: Source::Local, from: ServeFrom::Store, .. }) => {}
                other => panic!("expected the origin's answer at once, got {other:?}"),
            }
            driver.serve_done(request);
        }
    }
}
