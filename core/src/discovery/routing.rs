//! A Kademlia routing table: contacts bucketed by the XOR distance of their key to ours, at
//! most `k` per bucket, so a node knows many close contacts and a few far ones and a lookup
//! halves the distance to a key with every hop.

use super::hashing::node_key;
use crate::ids::NodeId;

#[derive(Debug, Clone)]
pub struct RoutingTable {
    me: u64,
    k: usize,
    buckets: Vec<Vec<(u64, NodeId)>>,
}

impl RoutingTable {
    pub fn new(me: NodeId, k: usize) -> Self {
        RoutingTable { me: node_key(me), k, buckets: vec![Vec::new(); 65] }
    }

    fn bucket(&self, key: u64) -> usize {
        (self.me ^ key).leading_zeros() as usize
    }

    /// Adds a contact unless its bucket is full (older contacts are kept: they are the ones
    /// that have stayed up, as in Kademlia).
    pub fn insert(&mut self, node: NodeId) {
        let key = node_key(node);
        if key == self.me {
            return;
        }
        let k = self.k;
        let b = self.bucket(key);
        let bucket = &mut self.buckets[b];
        if bucket.len() < k && !bucket.iter().any(|&(_, n)| n == node) {
            bucket.push((key, node));
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }

    /// The `n` known contacts closest to `key`, closest first, that pass `keep`.
    pub fn closest(&self, key: u64, n: usize, keep: impl Fn(NodeId) -> bool) -> Vec<NodeId> {
        let mut all: Vec<(u64, NodeId)> =
            self.buckets.iter().flatten().filter(|&&(_, node)| keep(node)).map(|&(k, node)| (k ^ key, node)).collect();
        all.sort_unstable();
        all.truncate(n);
        all.into_iter().map(|(_, node)| node).collect()
    }

    /// Whether this node is closer to `key` than every contact that passes `keep`: then it is
    /// the key's root as far as it knows.
    pub fn is_root(&self, key: u64, keep: impl Fn(NodeId) -> bool) -> bool {
        let mine = self.me ^ key;
        !self.buckets.iter().flatten().any(|&(k, node)| (k ^ key) < mine && keep(node))
    }
}

/// XOR distance between a node and a key.
pub fn distance(node: NodeId, key: u64) -> u64 {
    node_key(node) ^ key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_at_most_k_and_closest_is_sorted() {
        let mut t = RoutingTable::new(NodeId(0), 2);
        for i in 1..200 {
            t.insert(NodeId(i));
        }
        assert!(t.len() < 2 * 65 && t.len() >= 10, "{}", t.len());
        let key = 12345;
        let c = t.closest(key, 5, |_| true);
        assert_eq!(c.len(), 5);
        assert!(c.windows(2).all(|w| distance(w[0], key) <= distance(w[1], key)));
    }
}
