//! Flow-level network model: every transfer is a flow over a route of links, and the flows that
//! share links get max-min fair rates (progressive filling, as in SimGrid's flow model).
//!
//! Rates are re-solved only for the connected component of flows touched by a change (a flow
//! starting or ending, a link changing capacity): flows elsewhere keep their rates. Each solved
//! component gets a new epoch and one wake-up at its earliest completion; a wake-up whose epoch
//! is no longer current is stale and ignored. So a start or an end costs one heap push, not one
//! per flow of the component.

use reef_core::{Duration, Time};

/// A link's index in the network.
pub type LinkIdx = u32;

/// A flow handle; stale handles (of finished flows) are recognised by their generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowId {
    index: u32,
    generation: u32,
}

/// The network asks to be woken up at a time with this token (see [`Network::wake`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wakeup {
    flow: u32,
    epoch: u64,
}

#[derive(Debug)]
struct Link {
    /// Nominal capacity in bytes per second.
    capacity: f64,
    /// Fraction of the capacity available (degradations); 0 when the link is down.
    factor: f64,
    flows: Vec<u32>,
    /// Bytes of completed transfers that crossed this link.
    bytes: u64,
    // Scratch state of the solver.
    mark: u64,
    solved: u64,
    remaining: f64,
    unfixed: u32,
}

#[derive(Debug)]
struct Flow<T> {
    generation: u32,
    live: bool,
    links: Vec<LinkIdx>,
    bytes: u64,
    remaining: f64,
    /// Bytes per second.
    rate: f64,
    updated: Time,
    epoch: u64,
    mark: u64,
    tag: T,
}

/// A finished or broken flow handed back to the caller.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ended<T> {
    pub id: FlowId,
    pub tag: T,
}

/// The links and the flows on them.
#[derive(Debug)]
pub struct Network<T> {
    links: Vec<Link>,
    flows: Vec<Flow<T>>,
    free: Vec<u32>,
    epoch: u64,
    mark: u64,
    // Scratch buffers reused by every solve.
    comp_flows: Vec<u32>,
    comp_links: Vec<u32>,
    stack: Vec<u32>,
    seeds: Vec<u32>,
    solve_round: u64,
    active: usize,
}

impl<T: Copy> Default for Network<T> {
    fn default() -> Self {
        Network {
            links: Vec::new(),
            flows: Vec::new(),
            free: Vec::new(),
            epoch: 0,
            mark: 0,
            comp_flows: Vec::new(),
            comp_links: Vec::new(),
            stack: Vec::new(),
            seeds: Vec::new(),
            solve_round: 0,
            active: 0,
        }
    }
}

/// A flow is done when less than this many bytes are left (float rounding of rate × time).
const DONE_BYTES: f64 = 1e-3;

impl<T: Copy> Network<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a link of `bytes_per_sec` capacity.
    pub fn add_link(&mut self, bytes_per_sec: f64) -> LinkIdx {
        self.links.push(Link {
            capacity: bytes_per_sec,
            factor: 1.0,
            flows: Vec::new(),
            bytes: 0,
            mark: 0,
            solved: 0,
            remaining: 0.0,
            unfixed: 0,
        });
        (self.links.len() - 1) as LinkIdx
    }

    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Flows currently transferring.
    pub fn active_flows(&self) -> usize {
        self.active
    }

    /// Bytes of completed transfers that crossed `link`.
    pub fn link_bytes(&self, link: LinkIdx) -> u64 {
        self.links[link as usize].bytes
    }

    /// Current rate of a flow in bytes per second (`None` once it ended).
    pub fn rate(&self, id: FlowId) -> Option<f64> {
        self.flow(id).map(|f| f.rate)
    }

    fn flow(&self, id: FlowId) -> Option<&Flow<T>> {
        self.flows.get(id.index as usize).filter(|f| f.live && f.generation == id.generation)
    }

    /// Starts a flow of `bytes` over `route` (which must not be empty). Wake-ups to schedule
    /// are appended to `wakeups`.
    pub fn start(
        &mut self,
        now: Time,
        route: &[LinkIdx],
        bytes: u64,
        tag: T,
        wakeups: &mut Vec<(Time, Wakeup)>,
    ) -> FlowId {
        assert!(!route.is_empty(), "a flow needs at least one link");
        let index = match self.free.pop() {
            Some(i) => {
                let f = &mut self.flows[i as usize];
                f.generation = f.generation.wrapping_add(1);
                f.live = true;
                f.links.clear();
                f.links.extend_from_slice(route);
                f.bytes = bytes;
                f.remaining = bytes as f64;
                f.rate = 0.0;
                f.updated = now;
                f.tag = tag;
                i
            }
            None => {
                self.flows.push(Flow {
                    generation: 0,
                    live: true,
                    links: route.to_vec(),
                    bytes,
                    remaining: bytes as f64,
                    rate: 0.0,
                    updated: now,
                    epoch: 0,
                    mark: 0,
                    tag,
                });
                (self.flows.len() - 1) as u32
            }
        };
        for &l in route {
            self.links[l as usize].flows.push(index);
        }
        self.active += 1;
        self.resolve_links(now, route, wakeups);
        FlowId { index, generation: self.flows[index as usize].generation }
    }

    /// Stops a flow before it finished (cancelled, or its endpoint died). Returns its tag if it
    /// was still live.
    pub fn stop(&mut self, now: Time, id: FlowId, wakeups: &mut Vec<(Time, Wakeup)>) -> Option<T> {
        self.flow(id)?;
        let links: SmallLinks = self.flows[id.index as usize].links.iter().copied().collect();
        let tag = self.remove(id.index);
        self.resolve_links(now, &links, wakeups);
        Some(tag)
    }

    /// Sets the available fraction of a link's capacity (1 = nominal, 0 = down) and re-solves
    /// the flows on it. A link at 0 keeps its flows at rate 0: callers that model a cut link
    /// break those flows with [`Network::flows_on`] and [`Network::stop`].
    pub fn set_factor(&mut self, now: Time, link: LinkIdx, factor: f64, wakeups: &mut Vec<(Time, Wakeup)>) {
        self.links[link as usize].factor = factor.max(0.0);
        self.resolve_links(now, &[link], wakeups);
    }

    /// The live flows crossing `link`.
    pub fn flows_on(&self, link: LinkIdx) -> Vec<FlowId> {
        self.links[link as usize]
            .flows
            .iter()
            .map(|&i| FlowId { index: i, generation: self.flows[i as usize].generation })
            .collect()
    }

    /// Handles a wake-up at `now`: flows that finished are removed and appended to `ended`;
    /// the rest of their component is re-solved.
    pub fn wake(&mut self, now: Time, wakeup: Wakeup, ended: &mut Vec<Ended<T>>, wakeups: &mut Vec<(Time, Wakeup)>) {
        let f = &self.flows[wakeup.flow as usize];
        if !f.live || f.epoch != wakeup.epoch {
            return; // the component changed since: a newer wake-up is scheduled
        }
        let links: SmallLinks = f.links.iter().copied().collect();
        self.collect_component(&links);
        let mut seeds = std::mem::take(&mut self.seeds);
        seeds.clear();
        seeds.extend_from_slice(&self.comp_links);
        for k in 0..self.comp_flows.len() {
            let i = self.comp_flows[k];
            self.advance(i, now);
            let f = &self.flows[i as usize];
            // Done when what is left would take under a nanosecond.
            if f.remaining <= DONE_BYTES.max(f.rate * 1e-9) {
                let (generation, bytes) = (f.generation, f.bytes);
                for k in 0..self.flows[i as usize].links.len() {
                    let l = self.flows[i as usize].links[k];
                    self.links[l as usize].bytes += bytes;
                }
                let tag = self.remove(i);
                ended.push(Ended { id: FlowId { index: i, generation }, tag });
            }
        }
        // Re-solve the whole old component from its links: it may have split.
        self.resolve_links(now, &seeds, wakeups);
        self.seeds = seeds;
    }

    fn remove(&mut self, index: u32) -> T {
        let f = &mut self.flows[index as usize];
        f.live = false;
        f.rate = 0.0;
        for &l in &f.links {
            let on = &mut self.links[l as usize].flows;
            let pos = on.iter().position(|&x| x == index).expect("flow is on its links");
            on.swap_remove(pos);
        }
        self.free.push(index);
        self.active -= 1;
        f.tag
    }

    fn advance(&mut self, index: u32, now: Time) {
        let f = &mut self.flows[index as usize];
        let dt = (now - f.updated).as_secs_f64();
        f.remaining = (f.remaining - f.rate * dt).max(0.0);
        f.updated = now;
    }

    /// Marks the component reachable from `seeds` into `comp_flows` / `comp_links`.
    fn collect_component(&mut self, seeds: &[LinkIdx]) {
        self.mark += 1;
        let mark = self.mark;
        self.comp_flows.clear();
        self.comp_links.clear();
        self.stack.clear();
        for &l in seeds {
            if self.links[l as usize].mark != mark {
                self.links[l as usize].mark = mark;
                self.stack.push(l);
            }
        }
        while let Some(l) = self.stack.pop() {
            self.comp_links.push(l);
            for k in 0..self.links[l as usize].flows.len() {
                let fi = self.links[l as usize].flows[k];
                let f = &mut self.flows[fi as usize];
                if f.mark == mark {
                    continue;
                }
                f.mark = mark;
                self.comp_flows.push(fi);
                for &fl in &f.links {
                    let link = &mut self.links[fl as usize];
                    if link.mark != mark {
                        link.mark = mark;
                        self.stack.push(fl);
                    }
                }
            }
        }
    }

    /// Re-solves every component touching `seeds`, each with its own epoch and wake-up.
    fn resolve_links(&mut self, now: Time, seeds: &[LinkIdx], wakeups: &mut Vec<(Time, Wakeup)>) {
        self.solve_round += 1;
        let round = self.solve_round;
        for &seed in seeds {
            if self.links[seed as usize].solved == round {
                continue; // already part of a component solved in this round
            }
            self.collect_component(&[seed]);
            for k in 0..self.comp_links.len() {
                let l = self.comp_links[k];
                self.links[l as usize].solved = round;
            }
            if self.comp_flows.is_empty() {
                continue;
            }
            // Progress so far was made at the old rates.
            for k in 0..self.comp_flows.len() {
                let i = self.comp_flows[k];
                self.advance(i, now);
            }
            self.fill_progressively();
            self.epoch += 1;
            let epoch = self.epoch;
            let mut next: Option<(Duration, u32)> = None;
            for &i in &self.comp_flows {
                let f = &mut self.flows[i as usize];
                f.epoch = epoch;
                if f.rate > 0.0 {
                    let ns = (f.remaining / f.rate * 1e9).ceil().min(u64::MAX as f64 / 2.0);
                    let d = Duration(ns as u64);
                    if next.is_none_or(|(best, _)| d < best) {
                        next = Some((d, i));
                    }
                }
            }
            if let Some((d, flow)) = next {
                wakeups.push((now + d, Wakeup { flow, epoch }));
            }
        }
    }

    /// Max-min fair rates for the flows in `comp_flows` over `comp_links`: repeatedly find the
    /// link with the smallest fair share, give that share to its unfixed flows, remove them.
    fn fill_progressively(&mut self) {
        for &l in &self.comp_links {
            let link = &mut self.links[l as usize];
            link.remaining = link.capacity * link.factor;
            link.unfixed = link.flows.len() as u32;
        }
        self.mark += 1;
        let fixed = self.mark;
        let mut left = self.comp_flows.len();
        while left > 0 {
            let mut best: Option<(f64, u32)> = None;
            for &l in &self.comp_links {
                let link = &self.links[l as usize];
                if link.unfixed == 0 {
                    continue;
                }
                let share = link.remaining.max(0.0) / f64::from(link.unfixed);
                if best.is_none_or(|(s, _)| share < s) {
                    best = Some((share, l));
                }
            }
            let Some((share, bottleneck)) = best else {
                break;
            };
            for k in 0..self.links[bottleneck as usize].flows.len() {
                let fi = self.links[bottleneck as usize].flows[k];
                let f = &mut self.flows[fi as usize];
                if f.mark == fixed {
                    continue;
                }
                f.mark = fixed;
                f.rate = share;
                left -= 1;
                for &fl in &f.links {
                    let link = &mut self.links[fl as usize];
                    link.remaining -= share;
                    link.unfixed -= 1;
                }
            }
        }
    }
}

/// Routes are short (a few hops): keep a copy of one on the stack while the network mutates.
type SmallLinks = smallvec::SmallVec<[LinkIdx; 8]>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the network until every flow ended; returns each tag's completion time.
    fn run(net: &mut Network<u32>, mut wakeups: Vec<(Time, Wakeup)>) -> Vec<(u32, Time)> {
        let mut done = Vec::new();
        let mut ended = Vec::new();
        while !wakeups.is_empty() {
            wakeups.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
            let (t, w) = wakeups.pop().unwrap();
            net.wake(t, w, &mut ended, &mut wakeups);
            done.extend(ended.drain(..).map(|e| (e.tag, t)));
        }
        done
    }

    #[test]
    fn equal_flows_on_one_bottleneck_each_get_a_share() {
        for n in [1u32, 2, 3, 7] {
            let mut net = Network::new();
            let link = net.add_link(1000.0);
            let mut w = Vec::new();
            let ids: Vec<FlowId> = (0..n).map(|i| net.start(Time::ZERO, &[link], 1000, i, &mut w)).collect();
            for id in &ids {
                let r = net.rate(*id).unwrap();
                assert!((r - 1000.0 / f64::from(n)).abs() < 1e-9, "n={n} rate={r}");
            }
            // All finish together after n seconds.
            let done = run(&mut net, w);
            assert_eq!(done.len(), n as usize);
            for (_, t) in done {
                assert_eq!(t, Time(u64::from(n) * 1_000_000_000));
            }
        }
    }

    #[test]
    fn classic_two_bottleneck_example() {
        // Links A (capacity 10) and B (capacity 4); flow 0 crosses both, flow 1 only A,
        // flow 2 only B. Max-min: B is the bottleneck, flows 0 and 2 get 2 each; flow 1 gets
        // what A has left, 8.
        let mut net = Network::new();
        let a = net.add_link(10.0);
        let b = net.add_link(4.0);
        let mut w = Vec::new();
        let f0 = net.start(Time::ZERO, &[a, b], 100, 0, &mut w);
        let f1 = net.start(Time::ZERO, &[a], 100, 1, &mut w);
        let f2 = net.start(Time::ZERO, &[b], 100, 2, &mut w);
        let rates = [f0, f1, f2].map(|f| net.rate(f).unwrap());
        assert_eq!(rates, [2.0, 8.0, 2.0]);
    }

    #[test]
    fn ending_flows_free_bandwidth_for_the_rest() {
        // Two flows of 1000 and 3000 bytes on a 1000 B/s link: both at 500 B/s until the first
        // ends at t=2 s; the second then runs alone: 2000 bytes left at 1000 B/s, ends at 4 s.
        let mut net = Network::new();
        let l = net.add_link(1000.0);
        let mut w = Vec::new();
        net.start(Time::ZERO, &[l], 1000, 0, &mut w);
        net.start(Time::ZERO, &[l], 3000, 1, &mut w);
        let done = run(&mut net, w);
        assert_eq!(done, vec![(0, Time(2_000_000_000)), (1, Time(4_000_000_000))]);
        assert_eq!(net.link_bytes(l), 4000);
        assert_eq!(net.active_flows(), 0);
    }

    #[test]
    fn stopping_and_degrading_re_solve_only_what_is_connected() {
        let mut net = Network::new();
        let a = net.add_link(100.0);
        let b = net.add_link(100.0);
        let mut w = Vec::new();
        let fa1 = net.start(Time::ZERO, &[a], 1000, 0, &mut w);
        let fa2 = net.start(Time::ZERO, &[a], 1000, 1, &mut w);
        let fb = net.start(Time::ZERO, &[b], 1000, 2, &mut w);
        assert_eq!(net.rate(fa1), Some(50.0));
        w.clear();
        assert_eq!(net.stop(Time(1), fa2, &mut w), Some(1));
        assert_eq!(net.rate(fa1), Some(100.0));
        assert_eq!(w.len(), 1, "only link a's component was re-solved");
        assert_eq!(net.stop(Time(1), fa2, &mut w), None, "a stopped flow stays stopped");
        net.set_factor(Time(1), b, 0.25, &mut w);
        assert_eq!(net.rate(fb), Some(25.0));
        assert_eq!(net.flows_on(b), vec![fb]);
    }
}
