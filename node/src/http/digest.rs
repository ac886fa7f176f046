//! RFC 3230 instance digests: `Want-Digest` parsing and `Digest` values. adler32 is written as
//! 8 zero-padded lowercase hex digits (what HEP clients such as davix and gfal2 expect), sha-256
//! as base64.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The checksums of a complete object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digests {
    pub adler32: u32,
    /// base64 of the SHA-256.
    pub sha256: String,
}

/// The algorithms this node computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Adler32,
    Sha256,
}

/// Computes both checksums incrementally as bytes arrive.
#[derive(Debug, Default)]
pub struct Hasher {
    adler: adler2::Adler32,
    sha: Sha256,
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.adler.write_slice(bytes);
        self.sha.update(bytes);
    }
    pub fn finish(self) -> Digests {
        Digests {
            adler32: self.adler.checksum(),
            sha256: base64::engine::general_purpose::STANDARD.encode(self.sha.finalize()),
        }
    }
}

impl Digests {
    pub fn value(&self, alg: Algorithm) -> String {
        match alg {
            Algorithm::Adler32 => format!("{:08x}", self.adler32),
            Algorithm::Sha256 => self.sha256.clone(),
        }
    }

    /// The `Digest` header value for the algorithms asked.
    pub fn header(&self, algs: &[Algorithm]) -> String {
        algs.iter().map(|&a| format!("{}={}", name(a), self.value(a))).collect::<Vec<_>>().join(",")
    }

    /// Checks every algorithm we know in an upstream `Digest` header; unknown ones are skipped.
    /// Returns false on any mismatch.
    pub fn matches_header(&self, header: &str) -> bool {
        header.split(',').all(|item| {
            let Some((alg, value)) = item.trim().split_once('=') else {
                return true;
            };
            match algorithm(alg) {
                Some(Algorithm::Adler32) => u32::from_str_radix(value.trim(), 16).is_ok_and(|v| v == self.adler32),
                Some(Algorithm::Sha256) => value.trim() == self.sha256,
                None => true,
            }
        })
    }
}

pub fn name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Adler32 => "adler32",
        Algorithm::Sha256 => "sha-256",
    }
}

fn algorithm(token: &str) -> Option<Algorithm> {
    let t = token.trim();
    if t.eq_ignore_ascii_case("adler32") {
        Some(Algorithm::Adler32)
    } else if t.eq_ignore_ascii_case("sha-256") {
        Some(Algorithm::Sha256)
    } else {
        None
    }
}

/// The algorithms a `Want-Digest` header asks for that we support, most preferred first
/// (`q=0` excludes one).
pub fn wanted(header: &str) -> Vec<Algorithm> {
    let mut items: Vec<(Algorithm, f32)> = header
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let alg = algorithm(parts.next()?)?;
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0).then_some((alg, q))
        })
        .collect();
    items.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut algs: Vec<Algorithm> = Vec::new();
    for (a, _) in items {
        if !algs.contains(&a) {
            algs.push(a);
        }
    }
    algs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let mut h = Hasher::default();
        h.update(b"Wikipedia");
        let d = h.finish();
        assert_eq!(d.value(Algorithm::Adler32), "11e60398");
        let mut h = Hasher::default();
        h.update(b"");
        let d = h.finish();
        assert_eq!(d.value(Algorithm::Adler32), "00000001");
        assert_eq!(d.sha256, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        assert!(d.matches_header("adler32=00000001, sha-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=, md5=x"));
        assert!(!d.matches_header("adler32=00000002"));
    }

    #[test]
    fn want_digest() {
        assert_eq!(wanted("adler32"), vec![Algorithm::Adler32]);
        assert_eq!(wanted("ADLER32;q=0.3, sha-256;q=1, md5"), vec![Algorithm::Sha256, Algorithm::Adler32]);
        assert_eq!(wanted("sha-256;q=0"), vec![]);
        assert_eq!(wanted(";;,=,"), vec![]);
    }
}
