//! reef-node's integration tests, one module per subject, built as one test binary (one link
//! instead of one per file, and the tests of every subject share the test threads).

mod broken_upstream;
mod check_config;
mod clients;
mod cluster;
mod common;
mod connections;
mod davix;
mod dns;
mod example_cluster;
mod freshness;
mod fuzz_parsers;
mod http_semantics;
mod listings;
mod live_view;
mod metadata;
mod mount;
mod multi_source;
mod nearline;
mod reef_get;
mod third_party_origin;
mod trust;
mod upload;
mod verified_bytes;
