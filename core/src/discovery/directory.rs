//! The directory strategy: a directory node (a Rucio- or Pelican-like catalogue) is told which
//! caches hold what, and answers "who holds X?". One round trip per lookup; a lookup that gets
//! no answer in time goes to the origin.

use super::{Candidate, Ctx, Found};
use crate::Map;
use crate::ids::{NodeId, ObjectId};
use crate::protocol::{DirectoryMessage, FetchKind, Message};
use crate::timers::Timers;
use crate::units::{Duration, Time};

#[derive(Debug)]
pub struct Directory {
    directory: NodeId,
    timeout: Duration,
    /// Open queries: object -> token of the current one.
    pending: Map<ObjectId, u64>,
    timers: Timers<(u64, ObjectId)>,
    next: u64,
}

impl Directory {
    pub fn new(directory: NodeId, timeout: Duration) -> Self {
        Directory { directory, timeout, pending: Map::default(), timers: Timers::default(), next: 0 }
    }

    pub fn lookup(&mut self, ctx: &mut Ctx, object: ObjectId) {
        if self.directory == ctx.me || !ctx.members.usable(self.directory) {
            ctx.found.push(Found { object, candidates: Vec::new(), hops: 0 });
            return;
        }
        self.next += 1;
        self.pending.insert(object, self.next);
        self.timers.set(ctx.now + self.timeout, (self.next, object));
        ctx.send(self.directory, Message::Directory(DirectoryMessage::Query { object }));
    }

    pub fn register(&mut self, ctx: &mut Ctx, object: ObjectId, holding: bool) {
        if self.directory == ctx.me {
            return;
        }
        let msg = if holding { DirectoryMessage::Register { object } } else { DirectoryMessage::Unregister { object } };
        ctx.send(self.directory, Message::Directory(msg));
    }

    pub fn on_message(&mut self, ctx: &mut Ctx, _from: NodeId, msg: &DirectoryMessage) {
        let DirectoryMessage::Holders { object, holders } = msg else { return };
        if self.pending.remove(object).is_none() {
            return; // answered after the timeout: the request went on without it
        }
        let members = ctx.members;
        let mut candidates: Vec<Candidate> = holders
            .iter()
            .filter(|&&h| h != ctx.me && members.usable(h))
            .map(|&node| Candidate { node, kind: FetchKind::Peer, level: members.level(node) })
            .collect();
        candidates.sort_by_key(|c| (c.level, c.node));
        ctx.found.push(Found { object: *object, candidates, hops: 1 });
    }

    pub fn on_tick(&mut self, ctx: &mut Ctx) {
        while let Some((token, object)) = self.timers.pop_due(ctx.now) {
            if self.pending.get(&object) == Some(&token) {
                self.pending.remove(&object);
                ctx.found.push(Found { object, candidates: Vec::new(), hops: 1 });
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.next()
    }
}

/// The catalogue a directory node keeps: which nodes hold which objects.
#[derive(Debug, Default)]
pub struct Catalogue {
    holders: Map<ObjectId, Vec<NodeId>>,
}

impl Catalogue {
    /// Answers queries and records registrations; returns the reply to send, if any.
    pub fn handle(&mut self, from: NodeId, msg: &DirectoryMessage) -> Option<DirectoryMessage> {
        match msg {
            DirectoryMessage::Query { object } => {
                let holders = self.holders.get(object).cloned().unwrap_or_default();
                Some(DirectoryMessage::Holders { object: *object, holders })
            }
            DirectoryMessage::Register { object } => {
                let list = self.holders.entry(*object).or_default();
                if !list.contains(&from) {
                    list.push(from);
                }
                None
            }
            DirectoryMessage::Unregister { object } => {
                if let Some(list) = self.holders.get_mut(object) {
                    list.retain(|&h| h != from);
                    if list.is_empty() {
                        self.holders.remove(object);
                    }
                }
                None
            }
            DirectoryMessage::Holders { .. } => None,
        }
    }

    /// Forgets a node (it died): no client is sent to a holder that is gone.
    pub fn forget(&mut self, node: NodeId) {
        self.holders.retain(|_, list| {
            list.retain(|&h| h != node);
            !list.is_empty()
        });
    }
}
