//! reef-node: the networked driver of reef-core (origin, cache, director over HTTP).
//! The core decides; this crate moves bytes, messages and time.

/// The version reported by `--version` and in the `Server` header.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
