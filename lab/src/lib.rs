//! reef-lab: emulates a scenario's sites and links on one machine so that real reef-node
//! processes run the scenario's workload (issue 14). This crate holds the parts that are
//! done: [`relay`], the user-space link emulation (this kernel has no `netem`, so latency is
//! added in user space; rates could also be shaped with `tbf`).

pub mod cluster;
pub mod netns;
pub mod plan;
pub mod relay;
mod timer;
