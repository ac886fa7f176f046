//! Trace formats read by `reef-sim replay`: CSV with named columns, libCacheSim's
//! `oracle-general` binary records, and Reef's own JSON-lines access log. Any of them may be
//! zstd-compressed (recognised by its magic number or a `.zst` extension).

mod csv;
mod oracle;
mod reef_log;
mod synthetic;

pub use csv::CsvColumns;
pub use oracle::{RECORD_BYTES, write_oracle_general};
pub use synthetic::ZipfTrace;

use reef_core::cache::NEVER;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// One request of a trace: an object and its size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub size: u64,
}

/// A trace in memory.
#[derive(Debug, Default)]
pub struct Trace {
    pub requests: Vec<Request>,
    /// Each request's next access (an index into `requests`, [`NEVER`] if none), when the file
    /// carries it (oracle-general does).
    pub next: Option<Vec<u64>>,
}

impl Trace {
    /// Each request's next access, from the file or computed.
    pub fn next_accesses(&self) -> Vec<u64> {
        match &self.next {
            Some(next) => next.clone(),
            None => next_accesses(&self.requests),
        }
    }
}

/// Computes each request's next access by scanning backwards.
pub fn next_accesses(requests: &[Request]) -> Vec<u64> {
    let mut last: HashMap<u64, u64, foldhash::fast::FixedState> = HashMap::default();
    let mut next = vec![NEVER; requests.len()];
    for (k, r) in requests.iter().enumerate().rev() {
        next[k] = last.insert(r.id, k as u64).unwrap_or(NEVER);
    }
    next
}

/// The trace formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// libCacheSim's oracleGeneral: 24-byte little-endian records (time u32, object id u64,
    /// size u32, next access i64).
    OracleGeneral,
    /// Reef's JSON-lines access log (`object` or `object_id`, `size` or `bytes`).
    ReefLog,
}

/// Why a trace could not be read. Every message names the file, and the line or record.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot open trace {}: {source}", path.display())]
    Open { path: PathBuf, source: std::io::Error },
    #[error("cannot read trace {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: the CSV trace has no header row", path.display())]
    NoHeader { path: PathBuf },
    #[error("{}: no column `{column}` in the header (columns: {found}); choose one with {flag}", path.display())]
    MissingColumn { path: PathBuf, column: String, found: String, flag: &'static str },
    #[error("{}:{line}: {what}", path.display())]
    BadLine { path: PathBuf, line: u64, what: String },
    #[error(
        "{}: truncated oracle-general trace: record {record} (counting from 1) has {got} of {RECORD_BYTES} bytes",
        path.display()
    )]
    Truncated { path: PathBuf, record: u64, got: usize },
}

/// Opens a trace file, decompressing zstd transparently.
fn open(path: &Path) -> Result<Box<dyn BufRead>, TraceError> {
    let file = File::open(path).map_err(|source| TraceError::Open { path: path.into(), source })?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let head = reader.fill_buf().map_err(|source| TraceError::Read { path: path.into(), source })?;
    let zstd_magic = head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    if zstd_magic || path.extension().is_some_and(|e| e == "zst") {
        let decoder = zstd::stream::read::Decoder::with_buffer(reader)
            .map_err(|source| TraceError::Open { path: path.into(), source })?;
        Ok(Box::new(BufReader::with_capacity(1 << 20, decoder)))
    } else {
        Ok(Box::new(reader))
    }
}

/// Reads a whole trace into memory.
pub fn load(path: &Path, format: Format, columns: &CsvColumns) -> Result<Trace, TraceError> {
    let reader = open(path)?;
    match format {
        Format::Csv => csv::read(path, reader, columns),
        Format::OracleGeneral => oracle::read(path, reader),
        Format::ReefLog => reef_log::read(path, reader),
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// An object id from a trace's text: a decimal integer as is, anything else hashed as a name.
fn text_id(s: &str) -> u64 {
    s.parse::<u64>().unwrap_or_else(|_| reef_core::ObjectId::of("", s).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_access_indices() {
        let r = |id| Request { id, size: 1 };
        let next = next_accesses(&[r(1), r(2), r(1), r(1), r(3)]);
        assert_eq!(next, vec![2, NEVER, 3, NEVER, NEVER]);
    }
}
