//! reef-lab's integration tests, one module per subject, built as one test binary (one link
//! instead of one per file, and the tests of every subject share the test threads).

mod agreement;
mod cluster;
mod netns;
