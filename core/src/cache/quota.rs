//! Per-namespace storage shares. Each namespace with a share gets its own partition (its own
//! policy instance); all other namespaces share a default partition sized by what remains. The
//! shares are soft: a partition may grow past its share while there is room, and under pressure
//! the partition furthest over its share is evicted from first.

use crate::ids::NamespaceId;
use serde::{Deserialize, Serialize};

/// A namespace's share of a cache, in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceShare {
    pub namespace: NamespaceId,
    pub bytes: u64,
}

#[derive(Debug)]
pub(crate) struct Partition {
    pub share: u64,
    pub used: u64,
}

/// Namespace -> partition, and each partition's share and usage. Partition 0 is the default.
#[derive(Debug)]
pub(crate) struct Quotas {
    by_namespace: Vec<u16>,
    pub parts: Vec<Partition>,
}

impl Quotas {
    /// `shares` must be valid (distinct namespaces, total at most `capacity`).
    pub fn new(capacity: u64, shares: &[NamespaceShare]) -> Quotas {
        let shared: u64 = shares.iter().map(|s| s.bytes).sum();
        let mut parts = vec![Partition { share: capacity.saturating_sub(shared), used: 0 }];
        let mut by_namespace = Vec::new();
        for s in shares {
            let ns = usize::from(s.namespace.0);
            if by_namespace.len() <= ns {
                by_namespace.resize(ns + 1, 0);
            }
            by_namespace[ns] = parts.len() as u16;
            parts.push(Partition { share: s.bytes, used: 0 });
        }
        Quotas { by_namespace, parts }
    }

    #[inline]
    pub fn partition_of(&self, ns: NamespaceId) -> usize {
        self.by_namespace.get(usize::from(ns.0)).map_or(0, |&p| usize::from(p))
    }

    /// The partition to evict from: the one furthest over its share, counting the `incoming`
    /// bytes about to join partition `into`, among those with something evictable; and whether it
    /// is over its share at all. Ties go to the lower partition.
    pub fn pick(&self, into: usize, incoming: u64, evictable: impl Fn(usize) -> bool) -> Option<(usize, bool)> {
        if self.parts.len() == 1 {
            return evictable(0).then_some((0, false));
        }
        self.parts
            .iter()
            .enumerate()
            .filter(|&(p, _)| evictable(p))
            .map(|(p, part)| {
                let used = part.used + if p == into { incoming } else { 0 };
                (p, i128::from(used) - i128::from(part.share))
            })
            .max_by_key(|&(p, over)| (over, std::cmp::Reverse(p)))
            .map(|(p, over)| (p, over > 0))
    }
}
