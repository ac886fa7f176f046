//! Outages: nodes, sites (their nodes and WAN links), links, partitions and degradations
//! starting and ending, and what happens to inputs sent to a node that is down.

use super::*;

impl World {
    /// The input reached a node that is down.
    pub(super) fn undeliverable(&mut self, n: u32, input: Input) {
        let now = self.now();
        match input {
            Input::Request(r) => {
                if let Some(c) = self.clients.remove(&r.id.0) {
                    // The client's connection attempt times out; it tries its next cache.
                    self.client_failover(r.id.0, c, CONNECT_TIMEOUT);
                } else if let Some(pr) = self.peer_reqs.remove(&r.id.0)
                    && self.fetches.remove(&(pr.requester, pr.fetch.0)).is_some()
                {
                    let lat = self.latency(n, pr.requester);
                    let done =
                        Input::FetchDone { fetch: pr.fetch, result: FetchResult::Failed(FetchError::Unreachable) };
                    self.deliver(now + lat, pr.requester, done);
                }
            }
            Input::Message { from, .. } => {
                let lat = self.latency(n, from.0);
                self.deliver(now + lat, from.0, Input::PeerUnreachable { peer: NodeId(n) });
            }
            // Results and timers of a down node are lost with it; when it comes back, its own
            // fetch timeouts fail over.
            _ => {}
        }
    }

    pub(super) fn outage(&mut self, index: usize, start: bool) {
        let target = self.outages[index].target.clone();
        match target {
            Target::Nodes(nodes) => {
                for n in nodes {
                    self.set_node_down(n, start);
                }
            }
            Target::Site(site) => {
                for n in self.layout.nodes_of_site(site) {
                    self.set_node_down(n, start);
                }
                // No transit through a site that is down.
                let links: Vec<u32> = (0..self.topo.links.len() as u32)
                    .filter(|&l| self.topo.links[l as usize].a == site || self.topo.links[l as usize].b == site)
                    .collect();
                for l in links {
                    self.set_link_down(l, start);
                }
            }
            Target::Corrupt { nodes, .. } if start => {
                for n in nodes {
                    let held: Vec<u64> =
                        self.nodes[n as usize].core.cache().map_or(Vec::new(), |c| c.ids().map(|id| id.0).collect());
                    self.corrupt.extend(held.into_iter().map(|id| (n, id)));
                }
            }
            Target::Corrupt { .. } => {}
            Target::DiskFull(nodes) => {
                for n in nodes {
                    let full = &mut self.nodes[n as usize].disk_full;
                    if start { *full += 1 } else { *full -= 1 }
                }
            }
            Target::Link(l) => self.set_link_down(l, start),
            Target::Partition(a, b) => self.set_partition(a, b, start),
            Target::Degrade(l, factor) => {
                self.link_factor[l as usize] = if start { factor } else { 1.0 };
                if self.link_down[l as usize] == 0 {
                    let now = self.now();
                    self.net.set_factor(now, l, self.link_factor[l as usize], &mut self.wakeups);
                    self.flush_wakeups();
                }
            }
        }
    }

    /// The first block of a fill reached node `n`, whose disk is full. As in reef-node: the
    /// write fails, the core lets the fill pass through, nothing is read while the node waits
    /// for room (the transfer stops), and after [`NO_ROOM_WAIT`] the fetch fails with
    /// `no_space`. (Room that comes back within the wait is not modelled: the fill fails.)
    fn no_room(&mut self, n: u32, fetch: FetchId) {
        self.no_room.insert((n, fetch.0));
        self.feed(n, Input::FetchNoSpace { fetch });
        self.cancel_fetch(n, fetch);
        let done = Input::FetchDone { fetch, result: FetchResult::Failed(FetchError::NoSpace) };
        self.deliver(self.now() + NO_ROOM_WAIT, n, done);
    }

    /// What node `n` makes of `input` given its disk: a fill's first block on a full disk
    /// starts the wait for room ([`World::no_room`]); the end of a transfer that such a fill
    /// stopped reading is never seen (the source may have sent its last byte already).
    pub(super) fn no_room_filter(&mut self, n: u32, input: Input) -> Option<Input> {
        match input {
            Input::FetchReceiving { fetch, .. } if self.nodes[n as usize].disk_full > 0 => {
                self.no_room(n, fetch);
                None
            }
            Input::FetchDone { fetch, result: FetchResult::Failed(FetchError::NoSpace) }
                if self.no_room_cancelled.contains_key(&(n, fetch.0)) =>
            {
                let stale = self.no_room_cancelled.get_mut(&(n, fetch.0)).expect("checked");
                *stale -= 1;
                if *stale == 0 {
                    self.no_room_cancelled.remove(&(n, fetch.0));
                }
                None
            }
            Input::FetchDone { fetch, result } if self.no_room.contains(&(n, fetch.0)) => {
                let gave_up = result == FetchResult::Failed(FetchError::NoSpace);
                if gave_up {
                    self.no_room.remove(&(n, fetch.0));
                }
                gave_up.then_some(input)
            }
            _ => Some(input),
        }
    }

    /// The core gave up a fetch (its timeout) while the node waited for room: as reef-node
    /// stops that wait, the `no_space` answer it would have given is never seen (nor taken for
    /// a later attempt's answer: the core's fetch ids last across attempts).
    pub(super) fn forget_no_room(&mut self, n: u32, fetch: FetchId) {
        if self.no_room.remove(&(n, fetch.0)) {
            *self.no_room_cancelled.entry((n, fetch.0)).or_default() += 1;
        }
    }

    pub(super) fn set_node_down(&mut self, n: u32, start: bool) {
        let node = &mut self.nodes[n as usize];
        if !start {
            node.down -= 1;
            if node.down == 0 {
                node.tick_at = Time::MAX;
                self.reschedule_tick(n);
            }
            return;
        }
        node.down += 1;
        if node.down > 1 {
            return;
        }
        let mut lost: Vec<(u64, ClientReq)> =
            self.clients.iter().filter(|(_, c)| c.node == n).map(|(&k, &c)| (k, c)).collect();
        lost.sort_unstable_by_key(|(id, _)| *id);
        for (id, c) in lost {
            self.clients.remove(&id);
            // The connection broke: the client tries its next cache at once.
            self.client_failover(id, c, Duration::ZERO);
        }
        let mut touched: Vec<((u32, u64), FetchState)> = self
            .fetches
            .iter()
            .filter(|((requester, _), f)| *requester == n || f.source == n)
            .map(|(&k, &f)| (k, f))
            .collect();
        touched.sort_unstable_by_key(|(k, _)| *k);
        let now = self.now();
        for ((requester, fetch), f) in touched {
            let tag = f.flow.and_then(|flow| self.stop_flow(flow));
            self.flush_wakeups();
            match tag {
                Some(t) => self.break_transfer(t),
                None if f.source == n => {
                    // Asked but not answered (or parked on a fill): the requester learns that its
                    // source died.
                    self.drop_stream_reader(n, f.request.0);
                    self.fetches.remove(&(requester, fetch));
                    let lat = self.latency(n, requester);
                    let done =
                        Input::FetchDone { fetch: FetchId(fetch), result: FetchResult::Failed(FetchError::Broken) };
                    self.deliver(now + lat, requester, done);
                }
                None => {
                    self.drop_stream_reader(f.source, f.request.0);
                    self.fetches.remove(&(requester, fetch));
                }
            }
        }
        // The node's fills are gone with it (its clients have failed over above).
        self.readers.retain(|&(node, _), _| node != n);
    }

    pub(super) fn set_link_down(&mut self, l: u32, start: bool) {
        let now = self.now();
        let count = &mut self.link_down[l as usize];
        if start {
            *count += 1;
            if *count > 1 {
                return;
            }
            self.net.set_factor(now, l, 0.0, &mut self.wakeups);
            self.recompute_routes();
            // A transfer whose ends are cut off from each other stalls (nothing crosses, nobody
            // is told: the requester's fetch timeout decides, and a heal in time resumes it);
            // one whose ends still have a route is broken (its next attempt takes that route).
            for flow in self.net.flows_on(l) {
                let ends = self.net.tag(flow).map(|t| (t.source, t.requester));
                if ends.is_some_and(|(a, b)| !self.reachable(a, b)) {
                    continue;
                }
                if let Some(t) = self.stop_flow(flow) {
                    self.break_transfer(t);
                }
            }
        } else {
            *count -= 1;
            if *count > 0 {
                return;
            }
            self.net.set_factor(now, l, self.link_factor[l as usize], &mut self.wakeups);
            self.recompute_routes();
        }
        self.flush_wakeups();
    }

    fn recompute_routes(&mut self) {
        let down = &self.link_down;
        self.topo.compute_routes(&|link| down[link as usize] == 0);
    }

    pub(super) fn set_partition(&mut self, a: u16, b: u16, start: bool) {
        let regions = self.topo.regions.len();
        for (x, y) in [(a, b), (b, a)] {
            let c = &mut self.cuts[x as usize * regions + y as usize];
            if start { *c += 1 } else { *c -= 1 }
        }
        if !start {
            return;
        }
        let region = |w: &World, n: u32| w.topo.sites[w.site_of(n) as usize].region;
        let mut cut: Vec<((u32, u64), FlowId)> = self
            .fetches
            .iter()
            .filter_map(|(&k, f)| f.flow.map(|flow| (k, f.source, flow)))
            .filter(|&((requester, _), source, _)| {
                let (r1, r2) = (region(self, requester), region(self, source));
                (r1, r2) == (a, b) || (r1, r2) == (b, a)
            })
            .map(|(k, _, flow)| (k, flow))
            .collect();
        cut.sort_unstable_by_key(|(k, _)| *k);
        for (_, flow) in cut {
            if let Some(t) = self.stop_flow(flow) {
                self.break_transfer(t);
            }
        }
        self.flush_wakeups();
    }
}
