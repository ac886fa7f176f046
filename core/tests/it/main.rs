//! reef-core's integration tests, one module per subject, built as one test binary (one link
//! instead of one per file, and the tests of every subject share the test threads).

mod access;
mod cache_analytic;
mod cache_behaviour;
mod cache_reference;
mod common;
mod director;
mod discovery;
mod egress;
mod freshness;
mod harness_properties;
mod invariants;
mod metadata;
mod multi_source;
mod quotas;
mod request_path;
mod staging;
mod third_party;
