//! reef-sim: a deterministic discrete-event driver of reef-core.

pub mod replay;
pub mod trace;
