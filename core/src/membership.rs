//! Membership and failure detection, SWIM-style: each period a node probes one member in
//! round-robin order; a member that misses its direct probe is probed indirectly through a few
//! others, then suspected, then declared dead. Probes also measure round-trip times, which place
//! every member at a proximity level (Coral's RTT clusters), and carry a little gossip so that a
//! node that knows only its seeds learns the whole membership.
//!
//! Health is each node's own view (from its probes and failed transfers); dead members keep
//! being probed, so views converge again when a partition heals.

use crate::Map;
use crate::event::Event;
use crate::ids::NodeId;
use crate::peer::{PeerInfo, Role};
use crate::protocol::{Message, Output};
use crate::timers::Timers;
use crate::units::{Duration, Time};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Failure-detector and proximity settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MembershipConfig {
    /// One member is probed per period; `None` turns probing off (static health).
    pub probe_interval: Option<Duration>,
    /// How long to wait for a direct ack before asking others to probe indirectly.
    pub probe_timeout: Duration,
    /// How many members relay an indirect probe.
    pub indirect_probes: usize,
    /// How long a suspected member has to answer before it is declared dead.
    pub suspect_timeout: Duration,
    /// Members piggybacked on each probe and ack.
    pub gossip: usize,
    /// RTT thresholds of the proximity levels (CoralCDN: 20 ms and 60 ms); a member whose RTT is
    /// below `levels[i]` is at level `i`, above them all at level `levels.len()`.
    pub levels: Vec<Duration>,
    /// A closed federation: only the seeds (the configured peers) are members. Gossip naming
    /// anyone else is ignored, and a pointer or holder naming an unknown node is not usable.
    pub closed: bool,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            probe_interval: None,
            probe_timeout: Duration::from_millis(500),
            indirect_probes: 3,
            suspect_timeout: Duration::from_secs(2),
            gossip: 3,
            levels: vec![Duration::from_millis(20), Duration::from_millis(60)],
            closed: false,
        }
    }
}

/// What this node believes about a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    Alive,
    /// Missed its probes; still used, but last.
    Suspect,
    Dead,
}

#[derive(Debug)]
struct Member {
    info: PeerInfo,
    health: Health,
    /// Smoothed round-trip time from direct probes.
    rtt: Option<Duration>,
    /// The open probe: its sequence number and when it was sent.
    probe: Option<(u64, Time)>,
    /// When the current suspicion started (it ends in death unless the member answers).
    suspected_at: Option<Time>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Period,
    DirectDeadline { member: NodeId, seq: u64 },
    ProbeDeadline { member: NodeId, seq: u64 },
    SuspectDeadline { member: NodeId, since: Time },
}

#[derive(Debug)]
pub struct Membership {
    me: PeerInfo,
    config: MembershipConfig,
    members: BTreeMap<NodeId, Member>,
    timers: Timers<Timer>,
    order: Vec<NodeId>,
    cursor: usize,
    next_seq: u64,
    /// Indirect probes this node runs for others: our seq -> (requester, their seq, target).
    relaying: Map<u64, (NodeId, u64, NodeId)>,
    /// Bumped whenever the member set or a member's level changes (routing tables follow it).
    version: u64,
}

impl Membership {
    pub fn new(me: PeerInfo, seeds: &[PeerInfo], config: MembershipConfig, rng: &mut Xoshiro256PlusPlus) -> Self {
        let mut m = Membership {
            me,
            config,
            members: BTreeMap::new(),
            timers: Timers::default(),
            order: Vec::new(),
            cursor: 0,
            next_seq: 0,
            relaying: Map::default(),
            version: 0,
        };
        for seed in seeds.iter().take(MAX_MEMBERS) {
            m.add(*seed);
        }
        if let Some(every) = m.config.probe_interval {
            // Spread the first probes so that nodes started together do not probe in lockstep.
            let jitter = rng.random_range(0..=every.as_nanos());
            m.timers.set(Time(jitter), Timer::Period);
        }
        m
    }

    fn add(&mut self, info: PeerInfo) -> bool {
        if info.id == self.me.id || self.members.contains_key(&info.id) || self.members.len() >= MAX_MEMBERS {
            return false;
        }
        self.members
            .insert(info.id, Member { info, health: Health::Alive, rtt: None, probe: None, suspected_at: None });
        self.order.push(info.id);
        self.version += 1;
        true
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn health(&self, id: NodeId) -> Option<Health> {
        self.members.get(&id).map(|m| m.health)
    }

    /// Whether `id` should be used: alive or merely suspected (in an open federation, unknown
    /// nodes are given a chance; in a closed one they are never used).
    pub fn usable(&self, id: NodeId) -> bool {
        match self.members.get(&id) {
            Some(m) => m.health != Health::Dead,
            None => !self.config.closed,
        }
    }

    pub fn info(&self, id: NodeId) -> Option<&PeerInfo> {
        self.members.get(&id).map(|m| &m.info)
    }

    pub fn rtt(&self, id: NodeId) -> Option<Duration> {
        self.members.get(&id).and_then(|m| m.rtt.or(m.info.rtt_hint))
    }

    /// The proximity level of a member: measured RTT first, the configured hint otherwise.
    pub fn level(&self, id: NodeId) -> u8 {
        if id == self.me.id {
            return 0;
        }
        level_of(&self.config.levels, self.rtt(id))
    }

    /// The outermost level (the global cluster).
    pub fn top_level(&self) -> u8 {
        self.config.levels.len() as u8
    }

    /// This node's own site.
    pub fn site(&self) -> crate::ids::SiteId {
        self.me.site
    }

    /// All known members (any health), in id order.
    pub fn members(&self) -> impl Iterator<Item = &PeerInfo> {
        self.members.values().map(|m| &m.info)
    }

    /// Known members with a role, usable ones first, then by level and id.
    pub fn by_role(&self, role: Role) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self.members.values().filter(|m| m.info.role == role).map(|m| m.info.id).collect();
        ids.sort_by_key(|&id| (!self.usable(id), self.level(id), id));
        ids
    }

    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.next()
    }

    /// A transfer to or message for `id` failed: treat it like a missed probe. Without
    /// probing there is no way back from suspicion, so the member is taken for dead at once
    /// (and revived by any message from it).
    pub fn unreachable(&mut self, now: Time, id: NodeId, out: &mut VecDeque<Output>) {
        if self.config.probe_interval.is_none() {
            self.set_health(id, Health::Dead, out);
        } else {
            self.suspect(now, id, out);
        }
    }

    /// Starts suspecting an alive member; it is declared dead if it stays silent.
    fn suspect(&mut self, now: Time, id: NodeId, out: &mut VecDeque<Output>) {
        let Some(m) = self.members.get_mut(&id) else { return };
        if m.health == Health::Alive {
            m.suspected_at = Some(now);
            self.set_health(id, Health::Suspect, out);
            self.timers.set(now + self.config.suspect_timeout, Timer::SuspectDeadline { member: id, since: now });
        }
    }

    fn set_health(&mut self, id: NodeId, health: Health, out: &mut VecDeque<Output>) {
        let Some(m) = self.members.get_mut(&id) else { return };
        let was = m.health;
        m.health = health;
        if health == Health::Alive {
            m.suspected_at = None;
        }
        if was != Health::Dead && health == Health::Dead {
            out.push_back(Output::Event(Event::PeerDown { peer: id }));
        } else if was == Health::Dead && health != Health::Dead {
            out.push_back(Output::Event(Event::PeerUp { peer: id }));
        }
    }

    fn gossip(&self, rng: &mut Xoshiro256PlusPlus) -> Vec<PeerInfo> {
        let n = self.members.len();
        if n == 0 {
            return vec![self.me];
        }
        let mut out = vec![self.me];
        for _ in 0..self.config.gossip.min(n) {
            let i = rng.random_range(0..n);
            let m = self.members.values().nth(i).expect("index in range");
            // Gossip carries no RTT hint: that was our view, not the receiver's.
            let info = PeerInfo { rtt_hint: None, ..m.info };
            if m.health != Health::Dead && !out.contains(&info) {
                out.push(info);
            }
        }
        out
    }

    /// Handles a membership message; returns false if `msg` is not one.
    pub fn on_message(
        &mut self,
        now: Time,
        from: NodeId,
        msg: &Message,
        out: &mut VecDeque<Output>,
        rng: &mut Xoshiro256PlusPlus,
    ) -> bool {
        match msg {
            Message::Ping { seq, gossip } => {
                self.learn(gossip);
                let gossip = self.gossip(rng);
                out.push_back(Output::Send { to: from, msg: Message::Ack { seq: *seq, gossip } });
            }
            Message::Ack { seq, gossip } => {
                self.learn(gossip);
                if let Some((requester, their_seq, target)) = self.relaying.remove(seq) {
                    let msg = Message::IndirectAck { seq: their_seq, target };
                    out.push_back(Output::Send { to: requester, msg });
                }
                self.acked(now, from, *seq, true, out);
            }
            Message::PingReq { seq, target } => {
                self.next_seq += 1;
                let ours = self.next_seq;
                self.relaying.insert(ours, (from, *seq, *target));
                let gossip = self.gossip(rng);
                out.push_back(Output::Send { to: *target, msg: Message::Ping { seq: ours, gossip } });
            }
            Message::IndirectAck { seq, target } => self.acked(now, *target, *seq, false, out),
            _ => return false,
        }
        true
    }

    /// Members named in gossip are added, up to bounds: one message is read only so far, and
    /// the member list stops growing at `MAX_MEMBERS`, so a flood of fake members costs little.
    fn learn(&mut self, gossip: &[PeerInfo]) {
        if self.config.closed {
            return; // the roster is the configuration: nobody is learnt
        }
        for info in gossip.iter().take(GOSSIP_READ) {
            self.add(*info);
        }
    }

    /// An answer to our probe `seq` of `id`: only an open probe's answer counts, so a spoofed
    /// or replayed `Ack` cannot keep a dead member alive.
    fn acked(&mut self, now: Time, id: NodeId, seq: u64, direct: bool, out: &mut VecDeque<Output>) {
        let Some(m) = self.members.get_mut(&id) else { return };
        if let Some((open, sent)) = m.probe
            && open == seq
        {
            m.probe = None;
            if direct {
                let levels = &self.config.levels;
                let before = level_of(levels, m.rtt.or(m.info.rtt_hint));
                let sample = now - sent;
                // Smooth like TCP's SRTT (1/8 gain) so one slow ack does not move a peer's level.
                m.rtt = Some(match m.rtt {
                    Some(old) => Duration((old.0 / 8) * 7 + sample.0 / 8),
                    None => sample,
                });
                if level_of(levels, m.rtt) != before {
                    self.version += 1;
                }
            }
            self.set_health(id, Health::Alive, out);
        }
    }

    pub fn on_tick(&mut self, now: Time, out: &mut VecDeque<Output>, rng: &mut Xoshiro256PlusPlus) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::Period => self.probe_next(now, out, rng),
                Timer::DirectDeadline { member, seq } if self.open(member, seq) => {
                    let helpers: Vec<NodeId> = self
                        .members
                        .values()
                        .filter(|m| m.info.id != member && m.health == Health::Alive)
                        .map(|m| m.info.id)
                        .collect();
                    for &h in helpers.iter().take(self.config.indirect_probes) {
                        out.push_back(Output::Send { to: h, msg: Message::PingReq { seq, target: member } });
                    }
                }
                Timer::ProbeDeadline { member, seq } if self.open(member, seq) => self.suspect(now, member, out),
                Timer::SuspectDeadline { member, since } => {
                    let m = &self.members[&member];
                    if m.health == Health::Suspect && m.suspected_at == Some(since) {
                        self.set_health(member, Health::Dead, out);
                    }
                }
                _ => {} // a deadline for a probe that was answered
            }
        }
    }

    fn open(&self, member: NodeId, seq: u64) -> bool {
        self.members.get(&member).and_then(|m| m.probe).is_some_and(|(s, _)| s == seq)
    }

    fn probe_next(&mut self, now: Time, out: &mut VecDeque<Output>, rng: &mut Xoshiro256PlusPlus) {
        let Some(every) = self.config.probe_interval else { return };
        self.timers.set(now + every, Timer::Period);
        if self.order.is_empty() {
            return;
        }
        if self.cursor == 0 {
            // A fresh random order each round, as SWIM does, so detection time is bounded.
            self.order.shuffle(rng);
        }
        let member = self.order[self.cursor];
        self.cursor = (self.cursor + 1) % self.order.len();
        // An unanswered probe still open from an earlier round is superseded.
        self.next_seq += 1;
        let seq = self.next_seq;
        self.members.get_mut(&member).expect("ordered member").probe = Some((seq, now));
        let gossip = self.gossip(rng);
        out.push_back(Output::Send { to: member, msg: Message::Ping { seq, gossip } });
        let timeout = self.config.probe_timeout;
        self.timers.set(now + timeout, Timer::DirectDeadline { member, seq });
        self.timers.set(now + timeout + timeout + timeout, Timer::ProbeDeadline { member, seq });
    }
}

/// Most members a node keeps.
const MAX_MEMBERS: usize = 100_000;
/// Gossip entries read from one message.
const GOSSIP_READ: usize = 64;

/// The proximity level of a round-trip time: the number of thresholds it reaches.
fn level_of(levels: &[Duration], rtt: Option<Duration>) -> u8 {
    match rtt {
        Some(rtt) => levels.iter().take_while(|&&t| rtt >= t).count() as u8,
        None => levels.len() as u8,
    }
}
