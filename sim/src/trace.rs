//! Trace formats read by `reef-sim replay` (and the workload generator).
