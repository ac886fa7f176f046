//! Multi-source fetch. A fill of a large object, once its first source has said how big it is
//! (`FetchReceiving`), is split into contiguous ranges of whole blocks: the first source (the
//! lead, part 0) keeps the first range, and other holders of the object (the fill's next
//! sources: other origins, peers that discovery found) fetch the others at the same time
//! (`Output::FetchParts`). The driver verifies every block of every range against the origin's
//! block list as it arrives. A range whose source fails or stalls is shared out again, from the
//! first byte it had not verified, among the holders left (`Output::FetchPart` each): spare
//! sources first, then the holders least busy. The fill ends as before, with the
//! driver's `FetchDone` once every byte is verified; only if every holder has failed does it
//! fail.

use super::request_path::Fill;
use super::{Node, Timer};
use crate::discovery::Candidate;
use crate::event::Event;
use crate::ids::NodeId;
use crate::protocol::{FetchError, FetchId, Output, Part};
use crate::units::Time;
use serde::{Deserialize, Serialize};

/// When to split a fill (`NodeConfig::multi_source`; `policy.multi_source_min` and
/// `multi_source_max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiSource {
    /// Objects at least this big are split.
    pub min_size: u64,
    /// Most holders a fill takes ranges from at once (at least 2).
    pub max_sources: u8,
    /// Ranges are whole blocks of this size (the block lists' block size), so each range is
    /// checked block by block on its own.
    pub block_size: u64,
}

/// Splits `[0, size)` into at most `n` contiguous ranges of whole `block` blocks, as equal as
/// blocks allow (the first ranges take one block more); the last ends at `size`.
pub fn plan(size: u64, block: u64, n: usize) -> Vec<(u64, u64)> {
    let blocks = size.div_ceil(block.max(1));
    let n = (n as u64).clamp(1, blocks.max(1));
    let (each, extra) = (blocks / n, blocks % n);
    let mut start = 0;
    (0..n)
        .map(|i| {
            let end = (start + (each + u64::from(i < extra)) * block).min(size);
            let range = (start, end);
            start = end;
            range
        })
        .collect()
}

/// A fill's ranges and who fetches them.
#[derive(Debug, Default)]
pub(super) struct Split {
    /// Every part handed out, by id (a range handed on gets a new part).
    parts: Vec<PartState>,
    /// Holders that failed this fill: never asked again for it.
    failed: Vec<NodeId>,
}

#[derive(Debug)]
struct PartState {
    part: Part,
    /// The first byte of the range not yet verified, as last reported.
    reached: u64,
    progress_at: Time,
    state: PartPhase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PartPhase {
    Running,
    Done,
    /// Failed or overdue; its remaining range went to another part.
    HandedOn,
}

impl Split {
    fn running_on(&self, node: NodeId) -> usize {
        self.parts.iter().filter(|p| p.state == PartPhase::Running && p.part.from == node).count()
    }
}

impl Node {
    /// A fill's source said the object has `size` bytes: split it if it is big enough and
    /// other holders are at hand.
    pub(super) fn maybe_split(&mut self, now: Time, fetch: FetchId, size: u64) {
        let Some(multi) = self.config.multi_source else { return };
        let fill = self.fills.get_mut(&fetch).expect("live fill");
        if size < multi.min_size || fill.split.is_some() || fill.passing || fill.revalidate {
            return;
        }
        let Some(lead) = fill.current else { return };
        let members = &self.membership;
        let mut helpers: Vec<Candidate> = Vec::new();
        fill.sources.retain(|c| {
            let take = helpers.len() + 1 < usize::from(multi.max_sources)
                && c.node != lead.node
                && members.usable(c.node)
                && !helpers.iter().any(|h| h.node == c.node);
            if take {
                helpers.push(*c);
            }
            !take
        });
        if helpers.is_empty() {
            return;
        }
        let ranges = plan(size, multi.block_size, helpers.len() + 1);
        if ranges.len() < 2 {
            fill.sources.extend(helpers);
            return;
        }
        let holders = std::iter::once(lead).chain(helpers.iter().copied());
        let patience = fill.patience;
        let parts: Vec<Part> = holders
            .zip(&ranges)
            .enumerate()
            .map(|(id, (c, &(start, end)))| Part { id: id as u32, from: c.node, kind: c.kind, start, end, patience })
            .collect();
        // (Holders left over by a short plan stay spares.)
        fill.sources.extend(helpers.into_iter().skip(ranges.len() - 1));
        let mut split = Split::default();
        for &part in &parts {
            split.parts.push(PartState { part, reached: part.start, progress_at: now, state: PartPhase::Running });
            self.timers.set(now + patience, Timer::Part { fetch, part: part.id });
        }
        fill.split = Some(split);
        let object = fill.object.id;
        self.emit(Event::Split { object, parts: parts.len() as u32 });
        let lead_end = parts[0].end;
        let helpers = parts[1..].to_vec();
        self.outputs.push_back(Output::FetchParts { fetch, lead_end, parts: helpers });
    }

    /// A part reports bytes verified up to `reached`.
    pub(super) fn on_part_progress(&mut self, now: Time, fetch: FetchId, part: u32, reached: u64) {
        if let Some(p) = self.part_mut(fetch, part).filter(|p| p.state == PartPhase::Running) {
            p.progress_at = now;
            p.reached = p.reached.max(reached.min(p.part.end));
        }
    }

    /// A part ended: its range is all verified, or it failed at `reached` (the first byte it
    /// had not verified) and the rest goes to another holder.
    pub(super) fn on_part_done(
        &mut self,
        now: Time,
        fetch: FetchId,
        part: u32,
        result: Result<(), FetchError>,
        reached: u64,
    ) {
        let Some(p) = self.part_mut(fetch, part).filter(|p| p.state == PartPhase::Running) else { return };
        p.reached = p.reached.max(reached.min(p.part.end));
        match result {
            Ok(()) => p.state = PartPhase::Done,
            Err(reason) => self.hand_on(now, fetch, part, reason),
        }
    }

    /// A part's timer fired: if it has not progressed for its patience (the fill's), its range
    /// is handed on.
    pub(super) fn part_overdue(&mut self, now: Time, fetch: FetchId, part: u32) {
        let Some(p) = self.part_mut(fetch, part).filter(|p| p.state == PartPhase::Running) else { return };
        let deadline = p.progress_at + p.part.patience;
        if now < deadline {
            self.timers.set(deadline, Timer::Part { fetch, part });
            return;
        }
        self.outputs.push_back(Output::CancelPart { fetch, part });
        self.hand_on(now, fetch, part, FetchError::TimedOut);
    }

    /// Hands a failed part's remaining range to another holder, or fails the fill if none is
    /// left.
    fn hand_on(&mut self, now: Time, fetch: FetchId, part: u32, reason: FetchError) {
        let fill = self.fills.get_mut(&fetch).expect("live fill");
        let split = fill.split.as_mut().expect("a split fill");
        let old = &mut split.parts[part as usize];
        old.state = PartPhase::HandedOn;
        let (from, start, end) = (old.part.from, old.reached, old.part.end);
        if !split.failed.contains(&from) {
            split.failed.push(from);
        }
        let object = fill.object;
        let from_origin = self.config.origins.get(&object.namespace).is_some_and(|o| o.contains(&from));
        let object = object.id;
        if reason.blames_source(from_origin) {
            self.membership.unreachable(now, from, &mut self.outputs);
        }
        self.emit(Event::PartFailover { object, from, reason });
        if start >= end {
            return; // (It had verified its whole range before it failed.)
        }
        let fill = self.fills.get_mut(&fetch).expect("live fill");
        let max = self.config.multi_source.map_or(2, |m| usize::from(m.max_sources));
        let next = next_holders(fill, &self.membership, max);
        if next.is_empty() {
            // Every holder failed: the fill fails, and its other parts stop.
            self.outputs.push_back(Output::CancelFetch { fetch });
            return self.fail_fill(now, fetch, crate::protocol::Failure::AllSourcesDown);
        }
        // The rest is shared out again among the holders left, in whole blocks.
        let block = self.config.multi_source.map_or(1, |m| m.block_size);
        let patience = fill.patience;
        let split = fill.split.as_mut().expect("a split fill");
        for (c, (a, b)) in next.iter().zip(plan(end - start, block, next.len())) {
            let (id, from, kind) = (split.parts.len() as u32, c.node, c.kind);
            let part = Part { id, from, kind, start: start + a, end: start + b, patience };
            split.parts.push(PartState { part, reached: part.start, progress_at: now, state: PartPhase::Running });
            self.timers.set(now + patience, Timer::Part { fetch, part: part.id });
            self.outputs.push_back(Output::FetchPart { fetch, part });
        }
    }

    fn part_mut(&mut self, fetch: FetchId, part: u32) -> Option<&mut PartState> {
        self.fills.get_mut(&fetch)?.split.as_mut()?.parts.get_mut(part as usize)
    }
}

/// Who shares a range handed on: the spare sources, then the holders still in the fill, least
/// busy first (a holder whose own range is done before one still running); never one that
/// failed this fill; at most `max`.
fn next_holders(fill: &mut Fill, members: &crate::membership::Membership, max: usize) -> Vec<Candidate> {
    let failed = fill.split.as_ref().expect("a split fill").failed.clone();
    let mut chosen: Vec<Candidate> = Vec::new();
    while chosen.len() < max
        && let Some(c) = fill.sources.pop_front()
    {
        if !failed.contains(&c.node) && members.usable(c.node) && !chosen.iter().any(|x| x.node == c.node) {
            chosen.push(c);
        }
    }
    let split = fill.split.as_ref().expect("a split fill");
    let mut holders: Vec<Part> = Vec::new();
    for p in &split.parts {
        let taken = |node| holders.iter().any(|h: &Part| h.from == node) || chosen.iter().any(|c| c.node == node);
        if p.state != PartPhase::HandedOn && !failed.contains(&p.part.from) && !taken(p.part.from) {
            holders.push(p.part);
        }
    }
    holders.sort_by_key(|h| (split.running_on(h.from), h.id));
    let room = max.saturating_sub(chosen.len());
    chosen.extend(holders.into_iter().take(room).map(|h| Candidate { node: h.from, kind: h.kind, level: u8::MAX }));
    chosen
}

#[cfg(test)]
mod tests {
    use super::plan;

    #[test]
    fn plans_cover_the_object_in_whole_blocks() {
        assert_eq!(plan(10, 1, 3), [(0, 4), (4, 7), (7, 10)]);
        // 1 GiB in 1 MiB blocks over three holders: 342 + 341 + 341 blocks.
        let gib = 1u64 << 30;
        let p = plan(gib, 1 << 20, 3);
        assert_eq!(p, [(0, 342 << 20), (342 << 20, 683 << 20), (683 << 20, gib)]);
        // A partial last block stays with the last range; fewer blocks than holders, fewer ranges.
        assert_eq!(plan(2500, 1000, 2), [(0, 2000), (2000, 2500)]);
        assert_eq!(plan(1500, 1000, 5), [(0, 1000), (1000, 1500)]);
        assert_eq!(plan(0, 1000, 3), [(0, 0)]);
    }
}
