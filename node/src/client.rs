//! `reef get`: placeholder until written.
