//! libCacheSim's `oracleGeneral` format: packed little-endian 24-byte records
//! `{ time: u32, obj_id: u64, obj_size: u32, next_access_vtime: i64 }`, where the last field is
//! the index of the object's next request (-1: none).

use super::{Request, Trace, TraceError, read_up_to};
use reef_core::cache::NEVER;
use std::io::{BufRead, Write};
use std::path::Path;

pub const RECORD_BYTES: usize = 24;

pub(super) fn read(path: &Path, mut reader: Box<dyn BufRead>) -> Result<Trace, TraceError> {
    let mut requests = Vec::new();
    let mut next = Vec::new();
    let mut rec = [0u8; RECORD_BYTES];
    loop {
        let got = read_up_to(&mut reader, &mut rec).map_err(|source| TraceError::Read { path: path.into(), source })?;
        if got == 0 {
            break;
        }
        if got < RECORD_BYTES {
            return Err(TraceError::Truncated { path: path.into(), record: requests.len() as u64 + 1, got });
        }
        let u64_at = |at: usize| u64::from_le_bytes(rec[at..at + 8].try_into().expect("8 bytes"));
        let id = u64_at(4);
        let size = u32::from_le_bytes(rec[12..16].try_into().expect("4 bytes"));
        let vtime = u64_at(16) as i64;
        requests.push(Request { id, size: u64::from(size) });
        next.push(if vtime < 0 { NEVER } else { vtime as u64 });
    }
    Ok(Trace { requests, next: Some(next) })
}

/// Writes requests as an oracle-general trace (times are the request indices; sizes above
/// 4 GiB - 1 are clamped, as the format stores 32 bits).
pub fn write_oracle_general(mut out: impl Write, requests: &[Request]) -> std::io::Result<()> {
    let next = super::next_accesses(requests);
    for (k, (r, &nx)) in requests.iter().zip(&next).enumerate() {
        let mut rec = [0u8; RECORD_BYTES];
        rec[0..4].copy_from_slice(&(k as u32).to_le_bytes());
        rec[4..12].copy_from_slice(&r.id.to_le_bytes());
        rec[12..16].copy_from_slice(&(r.size.min(u64::from(u32::MAX)) as u32).to_le_bytes());
        let vtime: i64 = if nx == NEVER { -1 } else { nx as i64 };
        rec[16..24].copy_from_slice(&vtime.to_le_bytes());
        out.write_all(&rec)?;
    }
    Ok(())
}
