//! The origins' files: one per object the workload asks for, at its path and of its (scaled)
//! size, with content that is a function of the object id, so that every byte a client
//! receives can be checked without keeping a copy.

use reef_sim::workload::mix64;
use std::io::Write;
use std::path::Path;

/// The bytes of object `id`, `size` long: 8-byte words `mix64(id ^ k)` for word `k`.
pub fn content(id: u64, size: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(size as usize + 8);
    let mut k = 0u64;
    while (out.len() as u64) < size {
        out.extend_from_slice(&mix64(id ^ k).to_le_bytes());
        k += 1;
    }
    out.truncate(size as usize);
    out
}

/// Writes object `id` as `export/path` (directories created).
pub fn write(export: &Path, path: &str, id: u64, size: u64) -> std::io::Result<()> {
    let file = export.join(path);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::File::create(&file)?.write_all(&content(id, size))
}

/// Whether `file` holds exactly object `id` of `size` bytes.
pub fn holds(file: &Path, id: u64, size: u64) -> bool {
    std::fs::read(file).is_ok_and(|got| got == content(id, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_a_function_of_the_id_and_has_the_size() {
        assert_eq!(content(7, 13).len(), 13);
        assert_eq!(content(7, 13), content(7, 13));
        assert_ne!(content(7, 16), content(8, 16));
        assert_eq!(&content(7, 16)[..8], &mix64(7).to_le_bytes());
        assert_eq!(content(7, 0), Vec::<u8>::new());
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "d0/f1", 7, 1000).unwrap();
        assert!(holds(&dir.path().join("d0/f1"), 7, 1000));
        assert!(!holds(&dir.path().join("d0/f1"), 8, 1000));
        assert!(!holds(&dir.path().join("d0/f1"), 7, 999));
    }
}
