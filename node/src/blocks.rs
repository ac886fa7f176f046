//! Block lists: the BLAKE3 hash of every fixed-size block of one version of an object,
//! computed once by its origin (BLAKE3: a cryptographic hash several times faster than
//! SHA-256, so checking every block a cache serves costs little). A fill verifies each block as it arrives and lets readers see only
//! verified bytes; a cache verifies the blocks it serves from its store. So no byte leaves a
//! cache before it has been checked against the origin's reference, and the first byte still
//! comes after one block, not after the whole object.
//!
//! Wire form (`GET /.reef/v1/blocks/<namespace>/<path>`, `application/octet-stream`, with the
//! object's `ETag`): `RBL1`, the block size and the object size as big-endian u64, then one
//! 32-byte BLAKE3 hash per block (the last block may be short).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub const BLOCKS_PATH: &str = "/.reef/v1/blocks";
const MAGIC: &[u8; 4] = b"RBL1";
/// Largest block accepted from the wire (a bigger one would make readers wait too long).
const MAX_BLOCK: u64 = 64 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockList {
    pub block_size: u64,
    pub size: u64,
    pub hashes: Vec<[u8; 32]>,
}

/// A block whose bytes do not match the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("block {index} does not match the origin's block list")]
pub struct BadBlock {
    pub index: u64,
}

impl BlockList {
    fn blocks(size: u64, block_size: u64) -> u64 {
        size.div_ceil(block_size)
    }

    /// Hashes the first `size` bytes of `file` in blocks of `block_size` (blocking I/O).
    pub fn compute(file: &File, size: u64, block_size: u64) -> io::Result<BlockList> {
        let mut hashes = Vec::with_capacity(Self::blocks(size, block_size) as usize);
        let mut buf = vec![0; block_size as usize];
        let mut pos = 0;
        while pos < size {
            let n = (size - pos).min(block_size) as usize;
            file.read_exact_at(&mut buf[..n], pos)?;
            hashes.push(*blake3::hash(&buf[..n]).as_bytes());
            pos += n as u64;
        }
        Ok(BlockList { block_size, size, hashes })
    }

    /// The list of bytes held in memory.
    pub fn of_bytes(data: &[u8], block_size: u64) -> BlockList {
        let hashes = data.chunks(block_size as usize).map(|b| *blake3::hash(b).as_bytes()).collect();
        BlockList { block_size, size: data.len() as u64, hashes }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + 32 * self.hashes.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.block_size.to_be_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        for h in &self.hashes {
            out.extend_from_slice(h);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<BlockList, String> {
        let rest = bytes.strip_prefix(MAGIC).ok_or("not a block list (no RBL1 header)")?;
        if rest.len() < 16 {
            return Err("block list header cut short".into());
        }
        let block_size = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
        let size = u64::from_be_bytes(rest[8..16].try_into().expect("8 bytes"));
        if block_size == 0 || block_size > MAX_BLOCK {
            return Err(format!("block size {block_size} outside 1..={MAX_BLOCK}"));
        }
        let body = &rest[16..];
        let expected = Self::blocks(size, block_size);
        if body.len() as u64 != expected * 32 {
            return Err(format!("{} bytes of digests for {expected} blocks", body.len()));
        }
        let hashes = body.chunks_exact(32).map(|c| c.try_into().expect("32 bytes")).collect();
        Ok(BlockList { block_size, size, hashes })
    }

    /// Bytes `start..end` of block `index`.
    pub fn span(&self, index: u64) -> (u64, u64) {
        let start = index * self.block_size;
        (start, (start + self.block_size).min(self.size))
    }

    pub fn index_of(&self, pos: u64) -> u64 {
        pos / self.block_size
    }

    /// Checks block `index` (all of its bytes).
    pub fn check(&self, index: u64, data: &[u8]) -> Result<(), BadBlock> {
        let ok = self.hashes.get(index as usize).is_some_and(|h| blake3::hash(data) == *h);
        if ok { Ok(()) } else { Err(BadBlock { index }) }
    }

    /// Reads block `index` from `file` and checks it (blocking I/O). A short or failed read
    /// is an I/O error; wrong bytes are `InvalidData`.
    pub fn read_checked(&self, file: &File, index: u64) -> io::Result<Vec<u8>> {
        let (start, end) = self.span(index);
        let mut buf = vec![0; (end - start) as usize];
        file.read_exact_at(&mut buf, start)?;
        self.check(index, &buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(buf)
    }
}

/// Checks a fill's bytes block by block as they arrive.
#[derive(Debug)]
pub struct Verifier {
    list: std::sync::Arc<BlockList>,
    /// The bytes are their own reference (a third-party origin's): each block's hash is
    /// recorded into `list` rather than checked, and every byte counts as verified.
    recording: bool,
    hasher: blake3::Hasher,
    /// Bytes hashed into the current block, and blocks verified so far.
    in_block: u64,
    done: u64,
}

impl Verifier {
    pub fn new(list: std::sync::Arc<BlockList>) -> Verifier {
        Verifier { list, recording: false, hasher: blake3::Hasher::new(), in_block: 0, done: 0 }
    }

    /// Records the block list of `size` bytes in blocks of `block_size` as they arrive.
    pub fn recording(size: u64, block_size: u64) -> Verifier {
        let hashes = Vec::with_capacity(BlockList::blocks(size, block_size).min(1 << 20) as usize);
        let list = std::sync::Arc::new(BlockList { block_size, size, hashes });
        Verifier { list, recording: true, hasher: blake3::Hasher::new(), in_block: 0, done: 0 }
    }

    /// Feeds the next bytes; returns how many bytes from the start are verified.
    pub fn update(&mut self, mut data: &[u8]) -> Result<u64, BadBlock> {
        while !data.is_empty() {
            let (start, end) = self.list.span(self.done);
            let want = (end - start - self.in_block) as usize;
            let take = want.min(data.len());
            self.hasher.update(&data[..take]);
            self.in_block += take as u64;
            data = &data[take..];
            if take == want {
                let digest = self.hasher.finalize();
                self.hasher.reset();
                if self.recording {
                    let list = std::sync::Arc::get_mut(&mut self.list).expect("a recording verifier owns its list");
                    list.hashes.push(*digest.as_bytes());
                } else if self.list.hashes.get(self.done as usize).is_none_or(|h| digest != *h) {
                    return Err(BadBlock { index: self.done });
                }
                self.done += 1;
                self.in_block = 0;
            }
        }
        Ok(self.verified())
    }

    pub fn verified(&self) -> u64 {
        let whole = self.done * self.list.block_size;
        if self.recording { (whole + self.in_block).min(self.list.size) } else { whole.min(self.list.size) }
    }

    /// The reference list of a checking verifier (`None` while recording one).
    pub fn reference(&self) -> Option<std::sync::Arc<BlockList>> {
        (!self.recording).then(|| self.list.clone())
    }

    /// The list, once the fill is complete.
    pub fn into_list(self) -> BlockList {
        std::sync::Arc::unwrap_or_clone(self.list)
    }
}

/// Stored in an object's metadata sidecar as base64 of the wire form.
impl Serialize for BlockList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(self.encode()))
    }
}

impl<'de> Deserialize<'de> for BlockList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine;
        let text = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(serde::de::Error::custom)?;
        BlockList::decode(&bytes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;

    fn file_with(data: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(data).unwrap();
        f
    }

    #[test]
    fn a_list_round_trips_and_verifies_in_any_chunking() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let list = BlockList::compute(&file_with(&data), data.len() as u64, 4096).unwrap();
        assert_eq!(list.hashes.len(), 3);
        assert_eq!(BlockList::decode(&list.encode()).unwrap(), list);
        for chunk in [1, 100, 4096, 5000, 10_000] {
            let mut v = Verifier::new(Arc::new(list.clone()));
            let mut verified = 0;
            for piece in data.chunks(chunk) {
                let now = v.update(piece).unwrap();
                assert!(now >= verified && now % 4096 == 0 || now == 10_000);
                verified = now;
            }
            assert_eq!(verified, 10_000, "chunks of {chunk}");
        }
    }

    #[test]
    fn a_flipped_byte_is_caught_in_its_block() {
        let data = vec![7u8; 10_000];
        let list = Arc::new(BlockList::compute(&file_with(&data), 10_000, 4096).unwrap());
        let mut bad = data.clone();
        bad[5000] ^= 1;
        let mut v = Verifier::new(list.clone());
        assert_eq!(v.update(&bad[..4096]), Ok(4096));
        assert_eq!(v.update(&bad[4096..]), Err(BadBlock { index: 1 }));
        let f = file_with(&bad);
        assert!(list.read_checked(&f, 0).is_ok());
        assert_eq!(list.read_checked(&f, 1).unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert!(BlockList::decode(&list.encode()[..30]).is_err());
    }
}
