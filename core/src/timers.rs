//! A deterministic timer queue: earliest deadline first, ties broken by insertion order.

use crate::units::Time;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A cancelled timer is ignored when it fires (its owner checks that the state it refers to is
/// still current); owners with many short-lived timers `retain` the live ones now and then, so
/// the heap stays small. Order is by (deadline, insertion), so pruning never changes it.
#[derive(Debug)]
pub struct Timers<T> {
    heap: BinaryHeap<Reverse<(Time, u64, T)>>,
    seq: u64,
}

impl<T: Ord> Default for Timers<T> {
    fn default() -> Self {
        Timers { heap: BinaryHeap::new(), seq: 0 }
    }
}

impl<T: Ord + Copy> Timers<T> {
    pub fn set(&mut self, at: Time, timer: T) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, timer)));
    }
    /// The earliest deadline.
    pub fn next(&self) -> Option<Time> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }
    pub fn len(&self) -> usize {
        self.heap.len()
    }
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
    /// Drops the timers `keep` says no.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.heap.retain(|Reverse((_, _, t))| keep(t));
    }
    /// Pops one timer due at or before `now`.
    pub fn pop_due(&mut self, now: Time) -> Option<T> {
        match self.heap.peek() {
            Some(Reverse((t, _, _))) if *t <= now => self.heap.pop().map(|Reverse((_, _, x))| x),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_then_insertion_order() {
        let mut t = Timers::default();
        t.set(Time(5), 'b');
        t.set(Time(3), 'a');
        t.set(Time(5), 'c');
        assert_eq!(t.next(), Some(Time(3)));
        assert_eq!(t.pop_due(Time(2)), None);
        assert_eq!(t.pop_due(Time(10)), Some('a'));
        assert_eq!(t.pop_due(Time(10)), Some('b'));
        assert_eq!(t.pop_due(Time(10)), Some('c'));
        assert_eq!(t.next(), None);
    }
}
