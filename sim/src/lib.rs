//! reef-sim: a deterministic discrete-event driver of reef-core.
//!
//! Code map: [`engine`] (event queue and virtual clock), [`topology`] and [`generate`] (sites,
//! links, routes), [`network`] (max-min fair flows), [`layout`] (which core nodes run where),
//! [`workload`] (catalog, popularity, jobs, arrivals), [`outage`] (failures), [`world`] (the
//! nodes and the data plane between them), [`stats`], [`scenario`] (files and their errors) and
//! [`run`] (the `run` command).

pub mod compare;
pub mod engine;
pub mod generate;
pub mod layout;
pub mod network;
pub mod outage;
pub mod output;
pub mod replay;
pub mod run;
pub mod scenario;
pub mod series;
pub mod stats;
pub mod tape;
pub mod topology;
pub mod trace;
pub mod workload;
pub mod world;
