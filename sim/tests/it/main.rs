//! reef-sim's integration tests, one module per subject, built as one test binary (one link
//! instead of one per file, and the tests of every subject share the test threads).

mod archive;
mod determinism;
mod freshness;
mod ingest;
mod lab_contract;
mod multi_source;
mod outages;
mod planning;
mod private_namespaces;
mod quotas;
mod replay_cli;
mod results;
mod scenario_errors;
mod slurm_sweep;
mod small_fixes;
mod trace_workload;
