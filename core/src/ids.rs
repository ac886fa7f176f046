//! Identifiers shared by every crate: objects, nodes, sites, tiers and namespaces.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A node (origin, cache, director or worker-node peer) in one deployment or simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u32);

/// A site (a grid centre: CERN, a Tier-1, a Tier-2 university).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SiteId(pub u32);

/// A namespace (an experiment or project: `atlas`, `cms`), by its index in the deployment's
/// namespace table. Names live in configuration; the hot path carries the small index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NamespaceId(pub u16);

/// An object's identity: a stable 64-bit hash of its namespace and exact name. Object names are
/// exact byte strings (no case folding), so `A.root` and `a.root` are different objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectId(pub u64);

impl ObjectId {
    /// The id of `name` inside `namespace` (FNV-1a, 64 bit: stable across versions and
    /// platforms, so access logs and traces keep their ids).
    pub fn of(namespace: &str, name: &str) -> ObjectId {
        let mut h = Fnv1a::new();
        h.write(namespace.as_bytes());
        h.write(&[0]);
        h.write(name.as_bytes());
        ObjectId(h.finish())
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}
impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}
impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// FNV-1a, 64 bit. Small and fixed by its specification, so ids never change under us.
#[derive(Debug)]
struct Fnv1a(u64);
impl Fnv1a {
    fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A site's place in the WLCG hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tier {
    /// The Tier-0 (CERN): where data is produced; home of the origins.
    T0,
    /// A national Tier-1 centre.
    T1,
    /// A Tier-2 (university or lab).
    T2,
    /// Worker nodes inside a site (the seed's "include WNs in the P2P layer").
    T3,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::T0, Tier::T1, Tier::T2, Tier::T3];

    pub fn name(self) -> &'static str {
        match self {
            Tier::T0 => "T0",
            Tier::T1 => "T1",
            Tier::T2 => "T2",
            Tier::T3 => "T3",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "T0" | "t0" => Ok(Tier::T0),
            "T1" | "t1" => Ok(Tier::T1),
            "T2" | "t2" => Ok(Tier::T2),
            "T3" | "t3" | "wn" => Ok(Tier::T3),
            _ => Err(format!("unknown tier `{s}`; expected T0, T1, T2 or T3")),
        }
    }
}

/// The name of an object as clients see it: namespace plus path inside it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectName {
    pub namespace: String,
    pub path: String,
}

impl ObjectName {
    pub fn new(namespace: impl Into<String>, path: impl Into<String>) -> Self {
        ObjectName { namespace: namespace.into(), path: path.into() }
    }
    pub fn id(&self) -> ObjectId {
        ObjectId::of(&self.namespace, &self.path)
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/{}", self.namespace, self.path.trim_start_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_stable_and_exact() {
        // FNV-1a of "" is the offset basis; pin one real value so a changed hash is caught.
        assert_eq!(ObjectId::of("atlas", "a.root"), ObjectId::of("atlas", "a.root"));
        assert_ne!(ObjectId::of("atlas", "a.root"), ObjectId::of("atlas", "A.root"));
        assert_ne!(ObjectId::of("atlas", "xa.root"), ObjectId::of("atlasx", "a.root"));
        let mut h = Fnv1a::new();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn tiers_parse() {
        assert_eq!("T1".parse::<Tier>(), Ok(Tier::T1));
        assert!("T9".parse::<Tier>().unwrap_err().contains("T0, T1"));
    }
}
