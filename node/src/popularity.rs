//! The most requested objects of a node, in bounded memory: the Space-Saving algorithm
//! (Metwally et al., 2005) over `capacity` counters. An object that enters when the table is
//! full takes the place of the least counted one and inherits its count as `error`, so a
//! reported count is at most `error` too high, and every object requested more than
//! total/capacity times is in the table.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug)]
pub struct TopObjects {
    capacity: usize,
    counters: Mutex<HashMap<String, Counter>>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counter {
    pub requests: u64,
    pub bytes: u64,
    /// How much of `requests` may belong to objects it replaced.
    pub error: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Popular {
    pub object: String,
    #[serde(flatten)]
    pub counter: Counter,
}

impl TopObjects {
    pub fn new(capacity: usize) -> TopObjects {
        TopObjects { capacity: capacity.max(1), counters: Mutex::default() }
    }

    pub fn record(&self, object: &str, bytes: u64) {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = counters.get_mut(object) {
            c.requests += 1;
            c.bytes += bytes;
            return;
        }
        let mut counter = Counter { requests: 1, bytes, error: 0 };
        if counters.len() >= self.capacity {
            let least =
                counters.iter().min_by_key(|(name, c)| (c.requests, name.as_str())).map(|(n, c)| (n.clone(), *c));
            if let Some((name, c)) = least {
                counters.remove(&name);
                counter = Counter { requests: c.requests + 1, bytes, error: c.requests };
            }
        }
        counters.insert(object.to_string(), counter);
    }

    /// The `n` most requested, most first (ties by name).
    pub fn top(&self, n: usize) -> Vec<Popular> {
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<Popular> =
            counters.iter().map(|(object, counter)| Popular { object: object.clone(), counter: *counter }).collect();
        all.sort_by(|a, b| b.counter.requests.cmp(&a.counter.requests).then_with(|| a.object.cmp(&b.object)));
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequent_objects_are_kept_and_counted_within_the_error() {
        let top = TopObjects::new(5);
        // a: 10, b: 6, then 8 one-off objects (sharing 3 counters), then c: 5.
        for _ in 0..10 {
            top.record("a", 100);
        }
        for _ in 0..6 {
            top.record("b", 1);
        }
        for i in 0..8 {
            top.record(&format!("once{i}"), 1);
        }
        for _ in 0..5 {
            top.record("c", 1);
        }
        let got = top.top(3);
        let find = |name: &str| got.iter().find(|p| p.object == name).map(|p| p.counter);
        assert_eq!(got[0], Popular { object: "a".into(), counter: Counter { requests: 10, bytes: 1000, error: 0 } });
        assert_eq!(find("b"), Some(Counter { requests: 6, bytes: 6, error: 0 }), "counted exactly: never replaced");
        // c entered over a one-off: its count is its 5 plus what it inherited (`error`).
        let c = find("c").expect("c is frequent enough to be kept");
        assert_eq!(c.requests - c.error, 5, "{c:?}");
        assert_eq!(top.top(1).len(), 1);
    }
}
