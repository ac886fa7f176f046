//! HTTP semantics shared by every role: ranges, digests, validators, object paths, bodies and
//! the response builder.

pub mod body;
pub mod conditional;
pub mod connection;
pub mod digest;
pub mod object_path;
pub mod pacing;
pub mod range;
pub mod respond;
