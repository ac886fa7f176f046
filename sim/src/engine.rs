//! The discrete-event engine: a priority queue of events keyed by (time, sequence number).
//!
//! The sequence number breaks ties in scheduling order, so a run never depends on how the heap
//! happens to order equal times: same inputs, same event order, bit for bit. A timer that may be
//! cancelled is known by its sequence number; cancelling marks it and the stale entry is skipped
//! when it surfaces (no search through the heap).
//!
//! Events scheduled for the current time (a large share: replies and releases that happen "now")
//! skip the heap and wait in a FIFO. Order stays exactly (time, sequence): anything still in the
//! heap at the current time was scheduled earlier, so it goes before the FIFO.

use reef_core::Time;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

/// A cancellable timer, as returned by [`Engine::schedule_timer`]: its sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerId(u64);

/// A queued event. Kept small (the heap moves entries on every push and pop): timers are told
/// apart by their sequence number in `Engine::timers`, not by fields of their own.
#[derive(Debug)]
struct Entry<E> {
    at: Time,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    /// Reversed, so that the max-heap pops the earliest (time, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Event queue and virtual clock.
#[derive(Debug)]
pub struct Engine<E> {
    heap: BinaryHeap<Entry<E>>,
    /// Events at the current time, in scheduling order.
    now_queue: VecDeque<Entry<E>>,
    now: Time,
    seq: u64,
    processed: u64,
    /// Timers not yet fired or cancelled, and cancelled ones whose entry is still queued.
    timers: SeqSet,
    cancelled: SeqSet,
}

type SeqSet = std::collections::HashSet<u64, foldhash::fast::FixedState>;

impl<E> Default for Engine<E> {
    fn default() -> Self {
        Engine {
            heap: BinaryHeap::new(),
            now_queue: VecDeque::new(),
            now: Time::ZERO,
            seq: 0,
            processed: 0,
            timers: SeqSet::default(),
            cancelled: SeqSet::default(),
        }
    }
}

impl<E> Engine<E> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The time of the event being processed (or of the last one).
    pub fn now(&self) -> Time {
        self.now
    }

    /// Events popped so far (cancelled timers excluded).
    pub fn processed(&self) -> u64 {
        self.processed
    }

    /// Events waiting, including cancelled timers not yet skipped.
    pub fn pending(&self) -> usize {
        self.heap.len() + self.now_queue.len()
    }

    /// Schedules `event` at `at` (never before now: the past is clamped to now).
    pub fn schedule(&mut self, at: Time, event: E) {
        self.push(at, event);
    }

    /// Schedules `event` after `delay`.
    pub fn schedule_in(&mut self, delay: reef_core::Duration, event: E) {
        self.schedule(self.now + delay, event);
    }

    /// Schedules an event that can be cancelled until it fires.
    pub fn schedule_timer(&mut self, at: Time, event: E) -> TimerId {
        self.push(at, event);
        self.timers.insert(self.seq);
        TimerId(self.seq)
    }

    /// Cancels a timer; returns whether it was still pending.
    pub fn cancel(&mut self, timer: TimerId) -> bool {
        // The queued entry stays and is skipped when it surfaces.
        self.timers.remove(&timer.0) && self.cancelled.insert(timer.0)
    }

    fn push(&mut self, at: Time, event: E) {
        self.seq += 1;
        let entry = Entry { at: at.max(self.now), seq: self.seq, event };
        if entry.at == self.now {
            self.now_queue.push_back(entry);
        } else {
            self.heap.push(entry);
        }
    }

    /// The time of the next event, if any (possibly a cancelled timer's).
    pub fn peek_time(&self) -> Option<Time> {
        if self.now_queue.is_empty() { self.heap.peek().map(|e| e.at) } else { Some(self.now) }
    }

    /// Pops the next live event and advances the clock to it.
    pub fn pop(&mut self) -> Option<(Time, E)> {
        loop {
            let heap_first = self.heap.peek().is_some_and(|h| self.now_queue.is_empty() || h.at == self.now);
            let entry = if heap_first { self.heap.pop() } else { self.now_queue.pop_front() };
            let entry = entry?;
            // Both sets are empty unless timers are in use: no cost for plain events.
            if !self.cancelled.is_empty() && self.cancelled.remove(&entry.seq) {
                continue;
            }
            if !self.timers.is_empty() {
                self.timers.remove(&entry.seq);
            }
            self.now = entry.at;
            self.processed += 1;
            return Some((entry.at, entry.event));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_ties_in_scheduling_order() {
        let mut e = Engine::new();
        e.schedule(Time(5), 'b');
        e.schedule(Time(3), 'a');
        e.schedule(Time(5), 'c');
        e.schedule(Time(4), 'x');
        let order: Vec<char> = std::iter::from_fn(|| e.pop().map(|(_, c)| c)).collect();
        assert_eq!(order, vec!['a', 'x', 'b', 'c']);
        assert_eq!(e.now(), Time(5));
        assert_eq!(e.processed(), 4);
    }

    #[test]
    fn cancelled_timers_never_fire_and_leave_nothing_behind() {
        let mut e = Engine::new();
        let t1 = e.schedule_timer(Time(1), 1);
        let t2 = e.schedule_timer(Time(2), 2);
        assert!(e.cancel(t1));
        assert!(!e.cancel(t1), "a second cancel is a no-op");
        assert_eq!(e.pop(), Some((Time(2), 2)));
        assert!(!e.cancel(t2), "a fired timer cannot be cancelled");
        assert_eq!(e.pop(), None);
        // Stale ids cannot cancel a new timer; nothing is kept once entries surface.
        let t3 = e.schedule_timer(Time(3), 3);
        assert!(!e.cancel(t1));
        assert!(!e.cancel(t2));
        assert_eq!(e.pop(), Some((Time(3), 3)));
        assert!(!e.cancel(t3));
        assert!(e.timers.is_empty() && e.cancelled.is_empty());
    }

    #[test]
    fn events_at_the_current_time_keep_scheduling_order() {
        let mut e = Engine::new();
        e.schedule(Time(1), "first");
        e.schedule(Time(2), "heap at 2, scheduled early");
        e.pop();
        e.schedule(Time(1), "now, after first");
        e.schedule(Time(3), "later");
        assert_eq!(e.pop(), Some((Time(1), "now, after first")));
        assert_eq!(e.pop(), Some((Time(2), "heap at 2, scheduled early")));
        e.schedule(Time(2), "now at 2");
        e.schedule(Time(2), "now at 2, second");
        assert_eq!(e.peek_time(), Some(Time(2)));
        assert_eq!(e.pop(), Some((Time(2), "now at 2")));
        assert_eq!(e.pop(), Some((Time(2), "now at 2, second")));
        assert_eq!(e.pop(), Some((Time(3), "later")));
        assert_eq!(e.pending(), 0);
    }

    #[test]
    fn the_past_is_clamped_to_now() {
        let mut e = Engine::new();
        e.schedule(Time(10), 0);
        e.pop();
        e.schedule(Time(3), 1);
        assert_eq!(e.pop(), Some((Time(10), 1)));
    }
}
