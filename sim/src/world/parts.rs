//! Multi-source fetch in the simulator (`reef_core::node::parts` decides; this plays it as
//! reef-node does). When a node's core splits a fill (`Output::FetchParts`), its running
//! transfer (the lead) is cut short at `lead_end`: the flow stops and a new one carries the rest
//! of the lead's range from the same source. Every other part is a request to its holder and a
//! flow of its range. A part is a fetch of its own in the world's books, under a key that adds
//! the part's number to the fill's fetch id, so outages, cuts and cancels reach it like any
//! transfer; what arrives for such a key is handed to the core as `PartProgress`/`PartDone`,
//! and once every byte of the object has arrived, the fill's `FetchDone`. A part that breaks
//! keeps the whole blocks it had moved.

use super::*;
use reef_core::Part;
use std::collections::BTreeMap;

/// Bits of a world fetch key above the core's fetch ids: the part's number plus one.
const PART_SHIFT: u32 = 40;

/// The world's key for part `part` of fill `fetch`.
pub(super) fn part_key(fetch: u64, part: u32) -> u64 {
    fetch | ((u64::from(part) + 1) << PART_SHIFT)
}

/// The fill and the part a world fetch key stands for (`None`: a plain fetch).
pub(super) fn part_of(key: u64) -> Option<(u64, u32)> {
    let part = key >> PART_SHIFT;
    (part > 0).then(|| (key & ((1 << PART_SHIFT) - 1), (part - 1) as u32))
}

/// A split fill of a node, as the world plays it.
#[derive(Debug)]
pub(super) struct SimSplit {
    size: u64,
    block: u64,
    /// Each part: the first byte of its range, its end, the first byte its flow started at,
    /// and how far it has moved whole blocks.
    parts: BTreeMap<u32, PartRange>,
    /// Bytes of the object whose ranges have arrived.
    done: u64,
    /// Where the lead's bytes came from (what the fill's readers are told).
    holder: (u32, u8),
}

#[derive(Clone, Copy, Debug)]
struct PartRange {
    start: u64,
    end: u64,
    /// Where its flow's first byte falls in the object.
    offset: u64,
    /// The end of the whole blocks its flow has moved.
    reached: u64,
    /// The most the core has been told it reached (where the core hands its rest on from).
    reported: u64,
}

impl PartRange {
    fn new(start: u64, end: u64) -> PartRange {
        PartRange { start, end, offset: start, reached: start, reported: start }
    }
}

impl World {
    /// Node `n`'s core split fill `fetch`: cuts the lead short and starts the other parts.
    pub(super) fn split_fill(&mut self, n: u32, fetch: FetchId, lead_end: u64, parts: Vec<Part>) {
        let now = self.now();
        // (A lead that ended already has its end on the way to the core, which settles the fill.)
        let Some(lead) = self.fetches.get(&(n, fetch.0)).copied() else { return };
        let Some(flow) = lead.flow else { return };
        let Some(sent) = self.net.sent(flow, now) else { return };
        let Some(tag) = self.net.stop(now, flow, &mut self.wakeups) else { return };
        self.flush_wakeups();
        self.fetches.remove(&(n, fetch.0));
        self.count_bytes(tag.source, n, sent);
        let block = self.first_block.max(1);
        let mut split =
            SimSplit { size: tag.size, block, parts: BTreeMap::new(), done: 0, holder: (tag.holder, tag.relays) };
        let reached = (sent / block * block).min(lead_end);
        split.parts.insert(0, PartRange { offset: sent, reached, ..PartRange::new(0, lead_end) });
        self.splits.insert((n, fetch.0), split);
        // The lead goes on from the byte it reached, to its range's end, on the same connection.
        let key = part_key(fetch.0, 0);
        let rest = lead_end.saturating_sub(sent);
        let state = FetchState { flow: None, ..lead };
        self.fetches.insert((n, key), state);
        if rest == 0 || !self.fill_route(tag.source, n) {
            let t = Transfer { fetch: FetchId(key), size: 0, ..tag };
            self.transfer_done(t);
        } else {
            let t = Transfer { fetch: FetchId(key), size: rest, ..tag };
            let flow = self.net.start(now, &self.route, rest, t, &mut self.wakeups);
            self.flush_wakeups();
            self.fetches.get_mut(&(n, key)).expect("just inserted").flow = Some(flow);
        }
        for p in parts {
            self.start_part(n, fetch, p, lead.object);
        }
    }

    /// A part handed on (`Output::FetchPart`), or one of the first split.
    pub(super) fn start_part(&mut self, n: u32, fetch: FetchId, p: Part, object: ObjectRef) {
        if let Some(split) = self.splits.get_mut(&(n, fetch.0)) {
            split.parts.insert(p.id, PartRange::new(p.start, p.end));
            let kind = p.kind.request_kind(NodeId(n), p.patience);
            self.start_fetch(n, FetchId(part_key(fetch.0, p.id)), object, p.from.0, kind, false);
        }
    }

    /// The object a split fill's parts fetch (from any of its parts' books).
    pub(super) fn split_object(&self, n: u32, fetch: FetchId) -> Option<ObjectRef> {
        let split = self.splits.get(&(n, fetch.0))?;
        split.parts.keys().find_map(|&p| self.fetches.get(&(n, part_key(fetch.0, p))).map(|f| f.object))
    }

    /// Bytes a part's flow carries: its range from where its flow starts.
    pub(super) fn part_bytes(&self, n: u32, key: u64) -> Option<u64> {
        let (fetch, part) = part_of(key)?;
        let r = self.splits.get(&(n, fetch))?.parts.get(&part)?;
        Some(r.end.saturating_sub(r.offset))
    }

    /// Records how far a part's flow has moved (whole blocks) before it is stopped or reported.
    pub(super) fn note_part_progress(&mut self, n: u32, key: u64, flow: FlowId) {
        let now = self.now();
        let Some((fetch, part)) = part_of(key) else { return };
        let Some(sent) = self.net.sent(flow, now) else { return };
        if let Some(split) = self.splits.get_mut(&(n, fetch))
            && let Some(r) = split.parts.get_mut(&part)
        {
            let at = (r.offset + sent).min(r.end);
            let whole = if at == r.end { at } else { at / split.block * split.block };
            r.reached = r.reached.max(whole);
        }
    }

    /// Stops a flow, keeping what a part's flow had moved (its bytes crossed, and its whole
    /// blocks stay in the fill).
    pub(super) fn stop_flow(&mut self, flow: FlowId) -> Option<Transfer> {
        let now = self.now();
        let t = *self.net.tag(flow)?;
        if part_of(t.fetch.0).is_some() {
            self.note_part_progress(t.requester, t.fetch.0, flow);
            let sent = self.net.sent(flow, now).unwrap_or(0);
            self.count_bytes(t.source, t.requester, sent);
        }
        let t = self.net.stop(now, flow, &mut self.wakeups);
        self.flush_wakeups();
        t
    }

    /// What a part's fetch end, progress or first block means to the core, as it arrives at
    /// node `n` (inputs of plain fetches pass as they are).
    pub(super) fn part_input(&mut self, n: u32, input: Input) -> Option<Input> {
        let (key, result) = match input {
            Input::FetchDone { fetch, result } => (fetch.0, Some(result)),
            Input::FetchProgress { fetch } | Input::FetchReceiving { fetch, .. } => (fetch.0, None),
            _ => return Some(input),
        };
        let Some((fetch, part)) = part_of(key) else { return Some(input) };
        let split = self.splits.get_mut(&(n, fetch))?;
        let r = split.parts.get_mut(&part)?;
        let fetch = FetchId(fetch);
        let Some(result) = result else {
            // (The first block of a part says nothing new: the core knows the size.)
            r.reported = r.reached;
            return matches!(input, Input::FetchProgress { .. }).then_some(Input::PartProgress {
                fetch,
                part,
                reached: r.reached,
            });
        };
        let r = split.parts.remove(&part).expect("just found");
        let done = match result {
            FetchResult::Complete { .. } => Ok(()),
            FetchResult::Failed(e) => Err(e),
            // (A holder that would first stage or revalidate cannot serve a range now.)
            FetchResult::NotModified { .. } | FetchResult::Staging { .. } => Err(FetchError::Refused),
        };
        let reached = if done.is_ok() { r.end } else { r.reached };
        // (A failed part's rest is handed on from `reached`: the bytes before it are here.)
        split.done += reached - r.start;
        if split.done >= split.size {
            let (size, holder) = (split.size, split.holder);
            self.splits.remove(&(n, fetch.0));
            self.filled.insert((n, fetch.0), holder);
            let whole = Input::FetchDone { fetch, result: FetchResult::Complete { size, validity: None } };
            self.deliver(self.now(), n, whole);
        }
        Some(Input::PartDone { fetch, part, result: done, reached })
    }

    /// The core stopped a part that stalled (its rest goes on from what the core was told).
    pub(super) fn cancel_part(&mut self, n: u32, fetch: FetchId, part: u32) {
        self.cancel_fetch(n, FetchId(part_key(fetch.0, part)));
        if let Some(split) = self.splits.get_mut(&(n, fetch.0))
            && let Some(r) = split.parts.remove(&part)
        {
            split.done += r.reported - r.start;
        }
    }

    /// A fill's core gave it up or ended it: its parts stop.
    pub(super) fn cancel_parts(&mut self, n: u32, fetch: FetchId) {
        let Some(split) = self.splits.remove(&(n, fetch.0)) else { return };
        for &part in split.parts.keys() {
            self.cancel_fetch(n, FetchId(part_key(fetch.0, part)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{part_key, part_of};

    #[test]
    fn part_keys_keep_the_fill_and_the_part() {
        assert_eq!(part_of(7), None);
        assert_eq!(part_of(part_key(7, 0)), Some((7, 0)));
        assert_eq!(part_of(part_key(123_456, 15)), Some((123_456, 15)));
    }
}
