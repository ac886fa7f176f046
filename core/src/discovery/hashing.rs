//! Hashes for placing objects on nodes: fixed functions, so every node computes the same.

use crate::ids::{NodeId, ObjectId};

/// SplitMix64's finaliser: a fast, well-mixed bijection on u64.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A node's position in the DSHT key space.
pub fn node_key(node: NodeId) -> u64 {
    mix(u64::from(node.0) ^ 0x5265_6566_4b65_7921)
}

/// Rendezvous (highest-random-weight) score of `node` for `object`.
pub fn weight(object: ObjectId, node: NodeId) -> u64 {
    mix(object.0 ^ node_key(node))
}
