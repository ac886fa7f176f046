//! Peer discovery: where, besides the origin, can a cache get an object? Every strategy answers
//! a lookup with candidate sources in order of preference; the request path then tries them in
//! turn and falls back to the origins. Strategies are selected by name per deployment.

mod directory;
mod dsht;
mod hashing;
mod routing;

pub use directory::{Catalogue, Directory};
pub use dsht::{Dsht, DshtConfig};
pub use hashing::weight;

use crate::ids::{NodeId, ObjectId};
use crate::membership::Membership;
use crate::peer::Role;
use crate::protocol::{FetchKind, Message, Output};
use crate::units::{Duration, Time};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A source to try before the origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub node: NodeId,
    pub kind: FetchKind,
    /// Proximity level of the source as this node sees it (0 = closest cluster).
    pub level: u8,
}

/// The answer to one lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub object: ObjectId,
    pub candidates: Vec<Candidate>,
    /// Messages sent one after another to find the answer (0 for local decisions).
    pub hops: u32,
}

/// Which strategy, with its parameters, as written in configuration and scenario files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "lowercase")]
pub enum DiscoveryConfig {
    /// Straight to the origin: the baseline.
    #[default]
    None,
    /// A static hierarchy (worker node, site cache, Tier-1 cache), tried in order; a parent
    /// fetches upstream itself, as Squid and XCache parents do.
    Parent { parents: Vec<NodeId> },
    /// Coral-style distributed sloppy hash table of pointers to holders.
    Dsht(DshtConfig),
    /// Each object has a home cache among the caches up to `max_level` (highest random weight).
    Rendezvous { max_level: u8 },
    /// A directory node tracks which caches hold what.
    Directory { directory: NodeId, timeout: Duration },
    /// Worker nodes: the object's home among the usable worker peers of this node's site
    /// (highest random weight), then the parents (the site cache). A home asked by another
    /// worker goes straight to the parents, so requests never wander between workers.
    Site { parents: Vec<NodeId> },
}

impl DiscoveryConfig {
    pub const NAMES: &'static str = "none, parent, dsht, rendezvous, directory, site";

    pub fn name(&self) -> &'static str {
        match self {
            DiscoveryConfig::None => "none",
            DiscoveryConfig::Parent { .. } => "parent",
            DiscoveryConfig::Dsht(_) => "dsht",
            DiscoveryConfig::Rendezvous { .. } => "rendezvous",
            DiscoveryConfig::Directory { .. } => "directory",
            DiscoveryConfig::Site { .. } => "site",
        }
    }

    /// The strategy `name` with default parameters; parents and the directory node come from
    /// the deployment (`with_parents`, `with_directory`).
    pub fn by_name(name: &str) -> Result<DiscoveryConfig, String> {
        Ok(match name {
            "none" => DiscoveryConfig::None,
            "parent" => DiscoveryConfig::Parent { parents: Vec::new() },
            "dsht" => DiscoveryConfig::Dsht(DshtConfig::default()),
            "rendezvous" => DiscoveryConfig::Rendezvous { max_level: 0 },
            "directory" => DiscoveryConfig::Directory { directory: NodeId(0), timeout: Duration::from_secs(1) },
            "site" => DiscoveryConfig::Site { parents: Vec::new() },
            _ => return Err(format!("unknown discovery strategy `{name}`; expected one of: {}", Self::NAMES)),
        })
    }
}

/// What a strategy may touch while it works.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub now: Time,
    pub me: NodeId,
    pub members: &'a Membership,
    pub out: &'a mut VecDeque<Output>,
    pub rng: &'a mut Xoshiro256PlusPlus,
    /// Finished lookups, for the request path to pick up.
    pub found: &'a mut Vec<Found>,
}

impl Ctx<'_> {
    fn send(&mut self, to: NodeId, msg: Message) {
        self.out.push_back(Output::Send { to, msg });
    }
}

/// The running strategy of one node.
#[derive(Debug)]
pub enum Discovery {
    None,
    Parent(Vec<NodeId>),
    Dsht(Box<Dsht>),
    Rendezvous(u8),
    Directory(Directory),
    Site(Vec<NodeId>),
}

impl Discovery {
    pub fn new(config: &DiscoveryConfig, me: NodeId) -> Discovery {
        match config {
            DiscoveryConfig::None => Discovery::None,
            DiscoveryConfig::Parent { parents } => Discovery::Parent(parents.clone()),
            DiscoveryConfig::Dsht(c) => Discovery::Dsht(Box::new(Dsht::new(c.clone(), me))),
            DiscoveryConfig::Rendezvous { max_level } => Discovery::Rendezvous(*max_level),
            DiscoveryConfig::Directory { directory, timeout } => {
                Discovery::Directory(Directory::new(*directory, *timeout))
            }
            DiscoveryConfig::Site { parents } => Discovery::Site(parents.clone()),
        }
    }

    /// Whether a `Child` request from a node of role `child_role` (`None`: not a member) runs
    /// discovery again. Every strategy does, but for one case: a rendezvous cache asked by
    /// anything but one of its worker nodes is the object's home (passing the request on
    /// could loop when views of membership differ). A site cache asked by its worker nodes
    /// looks for holders as it would for a client.
    pub fn rediscovers_for(&self, child_role: Option<Role>) -> bool {
        match self {
            Discovery::Rendezvous(_) => child_role == Some(Role::WorkerPeer),
            _ => true,
        }
    }

    /// Starts looking for `object`, for a client or (`for_child`) for a node below this one;
    /// the answer lands in `ctx.found`, now or later.
    pub fn lookup(&mut self, ctx: &mut Ctx, object: ObjectId, for_child: bool) {
        let parent =
            |ctx: &Ctx, node: NodeId| Candidate { node, kind: FetchKind::Parent, level: ctx.members.level(node) };
        let candidates = match self {
            Discovery::None => Vec::new(),
            Discovery::Parent(parents) => parents.iter().map(|&node| parent(ctx, node)).collect(),
            Discovery::Site(parents) => {
                let home = if for_child { None } else { site_home(ctx, object) };
                home.into_iter().chain(parents.iter().copied()).map(|node| parent(ctx, node)).collect()
            }
            Discovery::Rendezvous(max_level) => rendezvous_home(ctx, object, *max_level)
                .map(|node| Candidate { node, kind: FetchKind::Parent, level: ctx.members.level(node) })
                .into_iter()
                .collect(),
            Discovery::Dsht(d) => return d.lookup(ctx, object),
            Discovery::Directory(d) => return d.lookup(ctx, object),
        };
        ctx.found.push(Found { object, candidates, hops: 0 });
    }

    /// This node now holds `object` (a fill was committed).
    pub fn holding(&mut self, ctx: &mut Ctx, object: ObjectId) {
        match self {
            Discovery::Dsht(d) => d.announce(ctx, object, true),
            Discovery::Directory(d) => d.register(ctx, object, true),
            _ => {}
        }
    }

    /// This node started fetching `object` from its origin (others may come to us for it).
    pub fn fetching(&mut self, ctx: &mut Ctx, object: ObjectId) {
        if let Discovery::Dsht(d) = self {
            d.announce(ctx, object, false);
        }
    }

    /// This node served `object` from its store (keeps popular pointers fresh).
    pub fn served(&mut self, ctx: &mut Ctx, object: ObjectId) {
        if let Discovery::Dsht(d) = self {
            d.refresh(ctx, object);
        }
    }

    /// This node no longer holds `object` (evicted) or gave up fetching it.
    pub fn dropped(&mut self, ctx: &mut Ctx, object: ObjectId) {
        match self {
            Discovery::Dsht(d) => d.withdraw(ctx, object),
            Discovery::Directory(d) => d.register(ctx, object, false),
            _ => {}
        }
    }

    /// A member came back (a partition healed): make what we hold findable again.
    pub fn peer_up(&mut self, ctx: &mut Ctx, _peer: NodeId) {
        if let Discovery::Dsht(d) = self {
            d.reannounce_all(ctx);
        }
    }

    /// Handles a discovery message; returns false if `msg` is not one.
    pub fn on_message(&mut self, ctx: &mut Ctx, from: NodeId, msg: &Message) -> bool {
        match (self, msg) {
            (Discovery::Dsht(d), Message::Dsht(m)) => d.on_message(ctx, from, m),
            (Discovery::Directory(d), Message::Directory(m)) => d.on_message(ctx, from, m),
            _ => return false,
        }
        true
    }

    pub fn on_tick(&mut self, ctx: &mut Ctx) {
        match self {
            Discovery::Dsht(d) => d.on_tick(ctx),
            Discovery::Directory(d) => d.on_tick(ctx),
            _ => {}
        }
    }

    pub fn poll_timeout(&self) -> Option<Time> {
        match self {
            Discovery::Dsht(d) => d.poll_timeout(),
            Discovery::Directory(d) => d.poll_timeout(),
            _ => None,
        }
    }
}

/// The object's home among usable caches up to `max_level` (this node included): highest
/// random weight, so each object has one home and few move when caches come and go.
fn rendezvous_home(ctx: &Ctx, object: ObjectId, max_level: u8) -> Option<NodeId> {
    let members = ctx.members;
    home_among(ctx, object, |p| p.role == Role::Cache && members.level(p.id) <= max_level)
}

/// The object's home among the usable worker peers of this node's site (this node included).
fn site_home(ctx: &Ctx, object: ObjectId) -> Option<NodeId> {
    let site = ctx.members.site();
    home_among(ctx, object, |p| p.role == Role::WorkerPeer && p.site == site)
}

/// The highest-random-weight node among usable members that pass `eligible`, and this node;
/// `None` when that is this node.
fn home_among(ctx: &Ctx, object: ObjectId, eligible: impl Fn(&crate::peer::PeerInfo) -> bool) -> Option<NodeId> {
    let members = ctx.members;
    let home = members
        .members()
        .filter(|p| eligible(p) && members.usable(p.id))
        .map(|p| p.id)
        .chain(std::iter::once(ctx.me))
        .max_by_key(|&n| (hashing::weight(object, n), n))?;
    (home != ctx.me).then_some(home)
}
