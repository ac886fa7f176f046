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

/// The checksums a client states for the object it uploads, from `Repr-Digest` (RFC 9530:
/// `sha-256=:<base64>:`, `adler=:<base64 of 4 bytes>:`) and `Digest` (RFC 3230, as gfal2 and
/// davix send it: `adler32=<hex>`, `sha-256=<base64>`). Unknown algorithms are skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    pub adler32: Option<u32>,
    /// base64 of the SHA-256, canonical (re-encoded from the decoded bytes).
    pub sha256: Option<String>,
}

impl Expected {
    /// Both headers, merged; a malformed value of a known algorithm or two headers that
    /// disagree are an error naming the header.
    pub fn from_headers(headers: &http::HeaderMap) -> Result<Expected, String> {
        let mut out = Expected::default();
        for (header, structured) in [("repr-digest", true), ("digest", false)] {
            for value in headers.get_all(header) {
                let text = value.to_str().map_err(|_| format!("`{header}` is not ASCII"))?;
                for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    let Some((alg, raw)) = item.split_once('=') else {
                        return Err(format!("`{header}`: `{item}` is not `algorithm=value`"));
                    };
                    let alg = alg.trim().to_ascii_lowercase();
                    let raw = raw.trim();
                    let bytes = |raw: &str| -> Result<Vec<u8>, String> {
                        let b64 = if structured {
                            raw.strip_prefix(':').and_then(|r| r.strip_suffix(':')).ok_or_else(|| {
                                format!("`{header}`: the {alg} value must be a byte sequence `:<base64>:`")
                            })?
                        } else {
                            raw
                        };
                        base64::engine::general_purpose::STANDARD
                            .decode(b64)
                            .map_err(|_| format!("`{header}`: the {alg} value is not base64"))
                    };
                    let (adler, sha) = match (alg.as_str(), structured) {
                        ("sha-256", _) => {
                            let b = bytes(raw)?;
                            if b.len() != 32 {
                                return Err(format!("`{header}`: a sha-256 value has 32 bytes, got {}", b.len()));
                            }
                            (None, Some(base64::engine::general_purpose::STANDARD.encode(b)))
                        }
                        ("adler" | "adler32", true) => {
                            let b: [u8; 4] = bytes(raw)?
                                .try_into()
                                .map_err(|_| format!("`{header}`: an adler value has 4 bytes"))?;
                            (Some(u32::from_be_bytes(b)), None)
                        }
                        ("adler32", false) => match u32::from_str_radix(raw, 16) {
                            Ok(v) if raw.len() <= 8 => (Some(v), None),
                            _ => return Err(format!("`{header}`: adler32 is 8 hex digits, got `{raw}`")),
                        },
                        _ => (None, None),
                    };
                    if let Some(a) = adler {
                        if out.adler32.is_some_and(|x| x != a) {
                            return Err("two different adler32 values".into());
                        }
                        out.adler32 = Some(a);
                    }
                    if let Some(s) = sha {
                        if out.sha256.as_ref().is_some_and(|x| *x != s) {
                            return Err("two different sha-256 values".into());
                        }
                        out.sha256 = Some(s);
                    }
                }
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.adler32.is_none() && self.sha256.is_none()
    }

    /// Which stated checksum the bytes received do not have, if any.
    pub fn mismatch(&self, got: &Digests) -> Option<String> {
        if let Some(a) = self.adler32.filter(|&a| a != got.adler32) {
            return Some(format!("adler32: stated {a:08x}, received bytes have {:08x}", got.adler32));
        }
        match &self.sha256 {
            Some(s) if *s != got.sha256 => Some(format!("sha-256: stated {s}, received bytes have {}", got.sha256)),
            _ => None,
        }
    }

    /// The `Repr-Digest` value stating these checksums (what `reef put` sends).
    pub fn repr_digest(digests: &Digests) -> String {
        let adler = base64::engine::general_purpose::STANDARD.encode(digests.adler32.to_be_bytes());
        format!("sha-256=:{}:, adler=:{adler}:", digests.sha256)
    }

    /// A canonical text of the stated checksums (part of an upload's identity).
    pub fn canonical(&self) -> String {
        format!("{:?}/{}", self.adler32, self.sha256.as_deref().unwrap_or(""))
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

    #[test]
    fn stated_checksums() {
        let mut h = Hasher::default();
        h.update(b"Wikipedia");
        let d = h.finish();
        let mut headers = http::HeaderMap::new();
        headers.insert("repr-digest", Expected::repr_digest(&d).parse().unwrap());
        let e = Expected::from_headers(&headers).unwrap();
        assert_eq!(e.adler32, Some(0x11e6_0398));
        assert_eq!(e.sha256.as_deref(), Some(d.sha256.as_str()));
        assert_eq!(e.mismatch(&d), None);
        headers.insert("digest", "adler32=11e60399".parse().unwrap());
        assert_eq!(Expected::from_headers(&headers).unwrap_err(), "two different adler32 values");
        headers.insert("digest", "ADLER32=11e60398, md5=xyz".parse().unwrap());
        assert_eq!(Expected::from_headers(&headers).unwrap(), e);
        let mut other = Hasher::default();
        other.update(b"wikipedia");
        assert!(e.mismatch(&other.finish()).unwrap().starts_with("adler32: stated 11e60398"));
        for bad in ["sha-256=abc", "sha-256=:AAAA:", "adler=:AAAAAAA=:", "nonsense"] {
            let mut h = http::HeaderMap::new();
            h.insert("repr-digest", bad.parse().unwrap());
            assert!(Expected::from_headers(&h).is_err(), "{bad}");
        }
        assert!(Expected::from_headers(&http::HeaderMap::new()).unwrap().is_empty());
    }
}
