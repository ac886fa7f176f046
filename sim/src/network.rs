//! Flow-level network model: every transfer is a flow over a route of links, and the flows that
//! share links get max-min fair rates (progressive filling, as in SimGrid's flow model).
//!
//! Flows on the same route always get the same rate, so they are solved as one *class* with a
//! multiplicity: the cost of a change is in routes, not flows, which keeps heavy load (thousands
//! of concurrent transfers from one origin) cheap. A class tracks how many bytes each of its
//! flows has moved so far (`progress`); a flow ends when that reaches its own `target`, so the
//! class keeps its flows in a min-heap of targets.
//!
//! Rates are re-solved only for the connected component (links and classes) touched by a change:
//! a flow starting or ending, a link changing capacity. Each solved component gets a new epoch
//! and one wake-up at its earliest completion; a wake-up whose epoch is no longer current is
//! stale and ignored. So a start or an end costs one heap push, not one per flow.
//!
//! With a meter (`Network::metered`), every link also records the bytes it carried in each time
//! bucket, integrated exactly from the solved rates (rate × time, split at bucket edges), so a
//! bucket never shows more than the link's capacity.

use foldhash::fast::FixedState;
use reef_core::{Duration, Time};
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

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
    class: u32,
    epoch: u32,
}

#[derive(Debug)]
struct Link {
    /// Nominal capacity in bytes per second.
    capacity: f64,
    /// Fraction of the capacity available (degradations); 0 when the link is down.
    factor: f64,
    /// Classes with flows on this link.
    classes: Vec<u32>,
    /// Bytes of completed transfers that crossed this link.
    bytes: u64,
    /// Bytes carried in each meter bucket (empty without a meter).
    carried: Vec<f64>,
    /// Bytes per second its flows carry since `metered`, as last solved.
    used: f64,
    metered: Time,
    // Scratch state of the solver.
    mark: u64,
    solved: u64,
    remaining: f64,
    unfixed: u64,
}

/// A flow's completion target, ordered by `f64::total_cmp` (targets are finite).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Target(f64);
impl Eq for Target {}
impl PartialOrd for Target {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Target {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The flows of one route.
#[derive(Debug)]
struct Class {
    links: Vec<LinkIdx>,
    /// Live flows.
    count: u64,
    /// Rate of each flow, bytes per second.
    rate: f64,
    /// Bytes each flow of the class has moved since the class was created.
    progress: f64,
    updated: Time,
    epoch: u32,
    mark: u64,
    /// (target, flow index, generation); entries of stopped flows are skipped when they surface.
    flows: BinaryHeap<Reverse<(Target, u32, u32)>>,
}

#[derive(Debug)]
struct Flow<T> {
    generation: u32,
    live: bool,
    class: u32,
    bytes: u64,
    /// Its class's progress when it started.
    start: f64,
    tag: T,
}

/// A finished or broken flow handed back to the caller.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ended<T> {
    pub id: FlowId,
    /// The route it took (see [`Network::route_links`]).
    pub route: RouteId,
    pub tag: T,
}

/// A route's index: flows over the same links share one, for the life of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteId(u32);

/// The links and the flows on them.
#[derive(Debug)]
pub struct Network<T> {
    links: Vec<Link>,
    classes: Vec<Class>,
    class_of_route: HashMap<Vec<LinkIdx>, u32, FixedState>,
    flows: Vec<Flow<T>>,
    free: Vec<u32>,
    epoch: u32,
    mark: u64,
    solve_round: u64,
    active: usize,
    /// The meter's bucket in nanoseconds (0: no meter).
    meter_bucket: u64,
    // Scratch buffers reused by every solve.
    comp_classes: Vec<u32>,
    comp_links: Vec<u32>,
    stack: Vec<u32>,
    seeds: Vec<u32>,
}

impl<T: Copy> Default for Network<T> {
    fn default() -> Self {
        Network {
            links: Vec::new(),
            classes: Vec::new(),
            class_of_route: HashMap::default(),
            flows: Vec::new(),
            free: Vec::new(),
            epoch: 0,
            mark: 0,
            solve_round: 0,
            active: 0,
            meter_bucket: 0,
            comp_classes: Vec::new(),
            comp_links: Vec::new(),
            stack: Vec::new(),
            seeds: Vec::new(),
        }
    }
}

/// A flow is done when less than this many bytes are left (float rounding of rate × time).
const DONE_BYTES: f64 = 1e-3;

impl<T: Copy> Network<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// A network whose links record the bytes they carry per `bucket` of time.
    pub fn metered(bucket: Duration) -> Self {
        Network { meter_bucket: bucket.as_nanos().max(1), ..Self::default() }
    }

    /// Adds a link of `bytes_per_sec` capacity.
    pub fn add_link(&mut self, bytes_per_sec: f64) -> LinkIdx {
        self.links.push(Link {
            capacity: bytes_per_sec,
            factor: 1.0,
            classes: Vec::new(),
            bytes: 0,
            carried: Vec::new(),
            used: 0.0,
            metered: Time::ZERO,
            mark: 0,
            solved: 0,
            remaining: 0.0,
            unfixed: 0,
        });
        (self.links.len() - 1) as LinkIdx
    }

    /// Flows currently transferring.
    pub fn active_flows(&self) -> usize {
        self.active
    }

    /// Bytes of completed transfers that crossed `link`.
    pub fn link_bytes(&self, link: LinkIdx) -> u64 {
        self.links[link as usize].bytes
    }

    /// Bytes `link` carried during meter bucket `bucket` (0 past the end or without a meter).
    pub fn carried(&self, link: LinkIdx, bucket: usize) -> f64 {
        self.links[link as usize].carried.get(bucket).copied().unwrap_or(0.0)
    }

    /// Meter buckets recorded by `link`.
    pub fn carried_buckets(&self, link: LinkIdx) -> usize {
        self.links[link as usize].carried.len()
    }

    /// Brings the meter up to `now`, e.g. at the end of a run.
    pub fn settle(&mut self, now: Time) {
        for l in 0..self.links.len() {
            self.meter_link(l as LinkIdx, now);
        }
    }

    /// Records what `link` carried since it was last metered, at the rate last solved.
    fn meter_link(&mut self, link: LinkIdx, now: Time) {
        let bucket = self.meter_bucket;
        let l = &mut self.links[link as usize];
        if bucket > 0 && l.used > 0.0 && now > l.metered {
            meter(&mut l.carried, bucket, l.metered, now, l.used);
        }
        l.metered = now;
    }

    /// The links of a route.
    pub fn route_links(&self, route: RouteId) -> &[LinkIdx] {
        &self.classes[route.0 as usize].links
    }

    /// Current rate of a flow in bytes per second (`None` once it ended).
    pub fn rate(&self, id: FlowId) -> Option<f64> {
        self.live(id).then(|| self.classes[self.flows[id.index as usize].class as usize].rate)
    }

    /// Bytes a live flow has moved by `now` (`None` once it ended).
    pub fn sent(&self, id: FlowId, now: Time) -> Option<u64> {
        let f = self.flows.get(id.index as usize).filter(|_| self.live(id))?;
        let c = &self.classes[f.class as usize];
        let progress = c.progress + c.rate * (now - c.updated).as_secs_f64();
        Some(((progress - f.start).max(0.0) as u64).min(f.bytes))
    }

    /// The tag a live flow was started with.
    pub fn tag(&self, id: FlowId) -> Option<&T> {
        self.live(id).then(|| &self.flows[id.index as usize].tag)
    }

    fn live(&self, id: FlowId) -> bool {
        self.flows.get(id.index as usize).is_some_and(|f| f.live && f.generation == id.generation)
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
        let class = self.class_for(route);
        // Its neighbours' progress so far was made at the old rates.
        self.advance_class(class, now);
        let c = &mut self.classes[class as usize];
        if c.count == 0 {
            for &l in route {
                self.links[l as usize].classes.push(class);
            }
        }
        c.count += 1;
        let start = c.progress;
        let target = Target(start + bytes as f64);
        let index = match self.free.pop() {
            Some(i) => {
                let f = &mut self.flows[i as usize];
                f.generation = f.generation.wrapping_add(1);
                f.live = true;
                f.class = class;
                f.bytes = bytes;
                f.start = start;
                f.tag = tag;
                i
            }
            None => {
                self.flows.push(Flow { generation: 0, live: true, class, bytes, start, tag });
                (self.flows.len() - 1) as u32
            }
        };
        let generation = self.flows[index as usize].generation;
        self.classes[class as usize].flows.push(Reverse((target, index, generation)));
        self.active += 1;
        self.resolve_links(now, route, wakeups);
        FlowId { index, generation }
    }

    fn class_for(&mut self, route: &[LinkIdx]) -> u32 {
        if let Some(&c) = self.class_of_route.get(route) {
            return c;
        }
        let c = self.classes.len() as u32;
        self.classes.push(Class {
            links: route.to_vec(),
            count: 0,
            rate: 0.0,
            progress: 0.0,
            updated: Time::ZERO,
            epoch: 0,
            mark: 0,
            flows: BinaryHeap::new(),
        });
        self.class_of_route.insert(route.to_vec(), c);
        c
    }

    /// Stops a flow before it finished (cancelled, or its endpoint died). Returns its tag if it
    /// was still live.
    pub fn stop(&mut self, now: Time, id: FlowId, wakeups: &mut Vec<(Time, Wakeup)>) -> Option<T> {
        if !self.live(id) {
            return None;
        }
        let class = self.flows[id.index as usize].class;
        // Progress of the component is brought up to date by the re-solve below, at the old
        // rates, before the rates change.
        let tag = self.remove(id.index);
        let seeds = self.seeds_of(class);
        self.resolve_links(now, &seeds, wakeups);
        self.seeds = seeds;
        Some(tag)
    }

    /// Sets the available fraction of a link's capacity (1 = nominal, 0 = down) and re-solves
    /// the flows on it. A link at 0 keeps its flows at rate 0 until it is back (callers that
    /// end some of them use [`Network::flows_on`] and [`Network::stop`]).
    pub fn set_factor(&mut self, now: Time, link: LinkIdx, factor: f64, wakeups: &mut Vec<(Time, Wakeup)>) {
        // Advance first: the progress so far was made at the old capacity.
        self.collect_component(&[link]);
        self.advance_component(now);
        self.links[link as usize].factor = factor.max(0.0);
        self.resolve_links(now, &[link], wakeups);
    }

    /// The live flows crossing `link`, in a deterministic order.
    pub fn flows_on(&self, link: LinkIdx) -> Vec<FlowId> {
        let mut out: Vec<FlowId> = self.links[link as usize]
            .classes
            .iter()
            .flat_map(|&c| self.classes[c as usize].flows.iter())
            .map(|Reverse((_, index, generation))| FlowId { index: *index, generation: *generation })
            .filter(|&id| self.live(id))
            .collect();
        out.sort_unstable_by_key(|f| (f.index, f.generation));
        out
    }

    /// Handles a wake-up at `now`: flows that finished are removed and appended to `ended`;
    /// the rest of their component is re-solved.
    pub fn wake(&mut self, now: Time, wakeup: Wakeup, ended: &mut Vec<Ended<T>>, wakeups: &mut Vec<(Time, Wakeup)>) {
        let c = &self.classes[wakeup.class as usize];
        if c.count == 0 || c.epoch != wakeup.epoch {
            return; // the component changed since: a newer wake-up is scheduled
        }
        let seeds = self.seeds_of(wakeup.class);
        self.collect_component(&seeds);
        self.seeds = seeds;
        self.advance_component(now);
        for k in 0..self.comp_classes.len() {
            let ci = self.comp_classes[k];
            loop {
                let c = &self.classes[ci as usize];
                let Some(&Reverse((Target(target), index, generation))) = c.flows.peek() else { break };
                let f = &self.flows[index as usize];
                let stale = !f.live || f.generation != generation;
                // Done when what is left would take under a nanosecond.
                if !stale && target - c.progress > DONE_BYTES.max(c.rate * 1e-9) {
                    break;
                }
                self.classes[ci as usize].flows.pop();
                if stale {
                    continue;
                }
                let bytes = self.flows[index as usize].bytes;
                for k in 0..self.classes[ci as usize].links.len() {
                    let l = self.classes[ci as usize].links[k];
                    self.links[l as usize].bytes += bytes;
                }
                let tag = self.remove(index);
                ended.push(Ended { id: FlowId { index, generation }, route: RouteId(ci), tag });
            }
        }
        // Re-solve the whole old component from its links: it may have split.
        let seeds = std::mem::take(&mut self.comp_links);
        self.resolve_links(now, &seeds, wakeups);
        self.comp_links = seeds;
    }

    /// A copy of a class's links in the reusable seed buffer (the solver mutates the classes).
    fn seeds_of(&mut self, class: u32) -> Vec<LinkIdx> {
        let mut seeds = std::mem::take(&mut self.seeds);
        seeds.clear();
        seeds.extend_from_slice(&self.classes[class as usize].links);
        seeds
    }

    /// Takes a live flow out of its class (its heap entry is skipped later).
    fn remove(&mut self, index: u32) -> T {
        let f = &mut self.flows[index as usize];
        f.live = false;
        let class = f.class;
        let tag = f.tag;
        self.free.push(index);
        self.active -= 1;
        let c = &mut self.classes[class as usize];
        c.count -= 1;
        if c.count == 0 {
            // An idle class leaves its links; its heap holds only dead entries now. Progress
            // restarts from 0, so that a busy route's counter never grows past f64 precision.
            c.flows.clear();
            c.rate = 0.0;
            c.progress = 0.0;
            for &l in &c.links {
                let on = &mut self.links[l as usize].classes;
                let pos = on.iter().position(|&x| x == class).expect("class is on its links");
                on.swap_remove(pos);
            }
        }
        tag
    }

    fn advance_class(&mut self, class: u32, now: Time) {
        let c = &mut self.classes[class as usize];
        c.progress += c.rate * (now - c.updated).as_secs_f64();
        c.updated = now;
    }

    fn advance_component(&mut self, now: Time) {
        for k in 0..self.comp_classes.len() {
            let c = self.comp_classes[k];
            self.advance_class(c, now);
        }
    }

    /// Marks the component reachable from `seeds` into `comp_classes` / `comp_links`.
    fn collect_component(&mut self, seeds: &[LinkIdx]) {
        self.mark += 1;
        let mark = self.mark;
        self.comp_classes.clear();
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
            for k in 0..self.links[l as usize].classes.len() {
                let ci = self.links[l as usize].classes[k];
                let c = &mut self.classes[ci as usize];
                if c.mark == mark {
                    continue;
                }
                c.mark = mark;
                self.comp_classes.push(ci);
                for &cl in &c.links {
                    let link = &mut self.links[cl as usize];
                    if link.mark != mark {
                        link.mark = mark;
                        self.stack.push(cl);
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
                // What the link carried so far was carried at the old rates.
                self.meter_link(l, now);
            }
            if self.comp_classes.is_empty() {
                for &l in &self.comp_links {
                    self.links[l as usize].used = 0.0;
                }
                continue;
            }
            // Progress so far was made at the old rates.
            self.advance_component(now);
            self.fill_progressively();
            for &l in &self.comp_links {
                let link = &mut self.links[l as usize];
                link.used = (link.capacity * link.factor - link.remaining).max(0.0);
            }
            // Wraps after 2^32 solves; a stale wake-up matching by chance only wakes early, and
            // an early wake-up just re-solves. 32 bits keep the simulator's events small.
            self.epoch = self.epoch.wrapping_add(1);
            let epoch = self.epoch;
            let mut next: Option<(Duration, u32)> = None;
            for &ci in &self.comp_classes {
                let c = &mut self.classes[ci as usize];
                c.epoch = epoch;
                if c.rate <= 0.0 {
                    continue;
                }
                // The class's first live flow ends first (stale entries only make this early,
                // and an early wake-up just re-solves).
                if let Some(Reverse((Target(target), _, _))) = c.flows.peek() {
                    let ns = ((target - c.progress).max(0.0) / c.rate * 1e9).ceil().min(u64::MAX as f64 / 2.0);
                    let d = Duration(ns as u64);
                    if next.is_none_or(|(best, _)| d < best) {
                        next = Some((d, ci));
                    }
                }
            }
            if let Some((d, class)) = next {
                wakeups.push((now + d, Wakeup { class, epoch }));
            }
        }
    }

    /// Max-min fair rates for the classes in `comp_classes` over `comp_links`: repeatedly find
    /// the link with the smallest fair share per flow, give that share to the flows of its
    /// unfixed classes, remove them.
    fn fill_progressively(&mut self) {
        for &l in &self.comp_links {
            let link = &mut self.links[l as usize];
            link.remaining = link.capacity * link.factor;
            link.unfixed = 0;
        }
        for &ci in &self.comp_classes {
            let c = &self.classes[ci as usize];
            for &l in &c.links {
                self.links[l as usize].unfixed += c.count;
            }
        }
        self.mark += 1;
        let fixed = self.mark;
        let mut left = self.comp_classes.len();
        while left > 0 {
            let mut best: Option<(f64, u32)> = None;
            for &l in &self.comp_links {
                let link = &self.links[l as usize];
                if link.unfixed == 0 {
                    continue;
                }
                let share = link.remaining.max(0.0) / link.unfixed as f64;
                if best.is_none_or(|(s, _)| share < s) {
                    best = Some((share, l));
                }
            }
            let Some((share, bottleneck)) = best else { break };
            for k in 0..self.links[bottleneck as usize].classes.len() {
                let ci = self.links[bottleneck as usize].classes[k];
                let c = &mut self.classes[ci as usize];
                if c.mark == fixed {
                    continue;
                }
                c.mark = fixed;
                c.rate = share;
                left -= 1;
                for &cl in &c.links {
                    let link = &mut self.links[cl as usize];
                    link.remaining -= share * c.count as f64;
                    link.unfixed -= c.count;
                }
            }
        }
    }
}

/// Adds `rate` bytes per second from `from` to `to` to a link's buckets, split at their edges.
fn meter(carried: &mut Vec<f64>, bucket: u64, from: Time, to: Time, rate: f64) {
    let (start, end) = (from.as_nanos(), to.as_nanos());
    let (first, last) = ((start / bucket) as usize, ((end - 1) / bucket) as usize);
    if carried.len() <= last {
        carried.resize(last + 1, 0.0);
    }
    for (b, slot) in carried.iter_mut().enumerate().take(last + 1).skip(first) {
        let lo = start.max(b as u64 * bucket);
        let hi = end.min((b as u64 + 1) * bucket);
        *slot += rate * (hi - lo) as f64 * 1e-9;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the network until every flow ended; returns each tag's completion time.
    fn run(net: &mut Network<u32>, mut wakeups: Vec<(Time, Wakeup)>) -> Vec<(u32, Time)> {
        let mut done = Vec::new();
        let mut ended = Vec::new();
        while !wakeups.is_empty() {
            wakeups.sort_by_key(|(t, _)| Reverse(*t));
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
    fn many_flows_on_a_shared_route_split_it_with_the_others() {
        // Three flows on route [a, b] and one on [a]: link b (6) gives each of the three 2; the
        // flow alone on a (capacity 10) gets the 4 that is left.
        let mut net = Network::new();
        let a = net.add_link(10.0);
        let b = net.add_link(6.0);
        let mut w = Vec::new();
        let shared: Vec<FlowId> = (0..3).map(|i| net.start(Time::ZERO, &[a, b], 100, i, &mut w)).collect();
        let alone = net.start(Time::ZERO, &[a], 100, 9, &mut w);
        for f in shared {
            assert_eq!(net.rate(f), Some(2.0));
        }
        assert_eq!(net.rate(alone), Some(4.0));
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
    fn a_flow_joining_later_shares_from_then_on() {
        // A 2000-byte flow alone on a 1000 B/s link for 1 s (1000 bytes left), then a second
        // 500-byte flow joins: both at 500 B/s; the second ends at 2 s, the first at 2.5 s.
        let mut net = Network::new();
        let l = net.add_link(1000.0);
        let mut w = Vec::new();
        net.start(Time::ZERO, &[l], 2000, 0, &mut w);
        w.clear();
        net.start(Time(1_000_000_000), &[l], 500, 1, &mut w);
        let done = run(&mut net, w);
        assert_eq!(done, vec![(1, Time(2_000_000_000)), (0, Time(2_500_000_000))]);
    }

    #[test]
    fn the_meter_integrates_solved_rates_per_bucket() {
        // A 1000 B/s link, 1 s buckets. Flow 0 (1500 bytes) alone from 0 s; flow 1 (500 bytes)
        // joins at 0.5 s; both run at 500 B/s until flow 1 ends at 1.5 s, then flow 0's last
        // 500 bytes at 1000 B/s. Each bucket carries exactly the capacity (1000 bytes), and
        // nothing after 2 s.
        let mut net = Network::metered(Duration::from_secs(1));
        let l = net.add_link(1000.0);
        let mut w = Vec::new();
        net.start(Time::ZERO, &[l], 1500, 0, &mut w);
        w.clear();
        net.start(Time(500_000_000), &[l], 500, 1, &mut w);
        let done = run(&mut net, w);
        assert_eq!(done, vec![(1, Time(1_500_000_000)), (0, Time(2_000_000_000))]);
        let per_bucket: Vec<f64> = (0..3).map(|b| net.carried(l, b)).collect();
        assert!((per_bucket[0] - 1000.0).abs() < 1e-6, "{per_bucket:?}");
        assert!((per_bucket[1] - 1000.0).abs() < 1e-6, "{per_bucket:?}");
        assert_eq!(per_bucket[2], 0.0);
        assert_eq!(net.carried_buckets(l), 2);
    }

    #[test]
    fn a_stopped_flow_keeps_the_bytes_it_carried() {
        // Alone at 1000 B/s for 0.25 s, then stopped: 250 bytes in bucket 0, nothing after.
        let mut net = Network::metered(Duration::from_secs(1));
        let l = net.add_link(1000.0);
        let mut w = Vec::new();
        let f = net.start(Time::ZERO, &[l], 10_000, 0, &mut w);
        net.stop(Time(250_000_000), f, &mut w);
        net.settle(Time(3_000_000_000));
        assert!((net.carried(l, 0) - 250.0).abs() < 1e-6, "{}", net.carried(l, 0));
        assert_eq!(net.carried(l, 1), 0.0);
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
        assert_eq!(net.flows_on(a), vec![fa1]);
    }
}
