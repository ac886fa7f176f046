//! reef-lab: a scenario's sites and links emulated on one machine (network namespaces, veth
//! links shaped by `tbf`, latency added by user-space relays), real reef-node processes laid
//! out as the simulator lays out its cores, the simulator's client requests replayed with the
//! real client, and the two drivers compared (issue 14). Needs root and iproute2.

pub mod cluster;
pub mod compare;
pub mod export;
pub mod netns;
pub mod plan;
pub mod relay;
pub mod replay;
pub mod run;
pub mod scale;
mod timer;
