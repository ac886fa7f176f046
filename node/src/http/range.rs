//! `Range: bytes=...` (RFC 9110 §14): parsing and resolving against a representation's size.

/// An inclusive byte range already resolved against the size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

impl ByteRange {
    pub fn content_range(self, size: u64) -> String {
        format!("bytes {}-{}/{size}", self.first, self.last)
    }
}

/// What a `Range` header asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable `Range` header (absent, another unit, or malformed): send the whole thing.
    Full,
    /// One or more satisfiable ranges: in the order asked, or sorted and merged when some
    /// overlap (so a response is never longer than the representation).
    Ranges(Vec<ByteRange>),
    /// Syntactically fine, but no range overlaps the representation: 416.
    Unsatisfiable,
}

/// More ranges than this in one request is treated as abuse and answered in full.
const MAX_RANGES: usize = 64;

#[derive(Clone, Copy)]
enum Spec {
    From(u64, Option<u64>),
    Suffix(u64),
}

/// Resolves `header` against `size`. Malformed headers are ignored, as RFC 9110 allows.
pub fn resolve(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(specs) = header.and_then(parse) else {
        return RangeRequest::Full;
    };
    if specs.len() > MAX_RANGES {
        return RangeRequest::Full;
    }
    let ranges: Vec<ByteRange> = specs
        .into_iter()
        .filter_map(|spec| match spec {
            Spec::From(first, _) if first >= size => None,
            Spec::From(first, last) => Some(ByteRange { first, last: last.map_or(size - 1, |l| l.min(size - 1)) }),
            Spec::Suffix(0) => None,
            Spec::Suffix(_) if size == 0 => None,
            Spec::Suffix(n) => Some(ByteRange { first: size.saturating_sub(n), last: size - 1 }),
        })
        .collect();
    if ranges.is_empty() { RangeRequest::Unsatisfiable } else { RangeRequest::Ranges(coalesce(ranges)) }
}

/// The most bytes `header` can ask for whatever the representation's size, if it says (an
/// open-ended range, none or a malformed one: `None`, the whole representation).
pub fn most_bytes(header: Option<&str>) -> Option<u64> {
    let specs = parse(header?)?;
    if specs.len() > MAX_RANGES {
        return None;
    }
    specs.into_iter().try_fold(0u64, |sum, spec| match spec {
        Spec::From(first, Some(last)) => sum.checked_add(last - first + 1),
        Spec::Suffix(n) => sum.checked_add(n),
        Spec::From(_, None) => None,
    })
}

/// Ranges that overlap are sorted and merged (RFC 9110 §14.2 lets a server coalesce them), so
/// 64 copies of `0-` cost one copy of the object, not 64. Disjoint ranges keep their order.
fn coalesce(mut ranges: Vec<ByteRange>) -> Vec<ByteRange> {
    let mut sorted = ranges.clone();
    sorted.sort_unstable_by_key(|r| r.first);
    if sorted.windows(2).all(|w| w[0].last < w[1].first) {
        return ranges;
    }
    ranges.clear();
    for r in sorted {
        match ranges.last_mut() {
            Some(prev) if r.first <= prev.last.saturating_add(1) => prev.last = prev.last.max(r.last),
            _ => ranges.push(r),
        }
    }
    ranges
}

fn parse(header: &str) -> Option<Vec<Spec>> {
    let (unit, set) = header.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    for part in set.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue; // RFC 9110 allows empty list elements
        }
        let (a, b) = part.split_once('-')?;
        let (a, b) = (a.trim(), b.trim());
        let spec = if a.is_empty() {
            Spec::Suffix(number(b)?)
        } else {
            let first = number(a)?;
            let last = if b.is_empty() { None } else { Some(number(b)?) };
            if last.is_some_and(|l| l < first) {
                return None;
            }
            Spec::From(first, last)
        };
        specs.push(spec);
    }
    (!specs.is_empty()).then_some(specs)
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(first: u64, last: u64) -> ByteRange {
        ByteRange { first, last }
    }

    #[test]
    fn single_and_multi() {
        assert_eq!(resolve(Some("bytes=0-9"), 100), RangeRequest::Ranges(vec![r(0, 9)]));
        assert_eq!(resolve(Some("bytes=90-"), 100), RangeRequest::Ranges(vec![r(90, 99)]));
        assert_eq!(resolve(Some("bytes=-10"), 100), RangeRequest::Ranges(vec![r(90, 99)]));
        assert_eq!(resolve(Some("bytes=-500"), 100), RangeRequest::Ranges(vec![r(0, 99)]));
        assert_eq!(resolve(Some("bytes=95-200"), 100), RangeRequest::Ranges(vec![r(95, 99)]));
        assert_eq!(resolve(Some("bytes=0-0, 5-6,,200-300"), 100), RangeRequest::Ranges(vec![r(0, 0), r(5, 6)]));
    }

    #[test]
    fn overlapping_ranges_are_merged_and_disjoint_ones_keep_their_order() {
        let many = format!("bytes={}", vec!["0-"; 64].join(","));
        assert_eq!(resolve(Some(&many), 200), RangeRequest::Ranges(vec![r(0, 199)]));
        assert_eq!(
            resolve(Some("bytes=50-60, 0-9, 55-70, 10-12"), 100),
            RangeRequest::Ranges(vec![r(0, 12), r(50, 70)])
        );
        assert_eq!(resolve(Some("bytes=50-60, 0-9"), 100), RangeRequest::Ranges(vec![r(50, 60), r(0, 9)]));
        assert_eq!(resolve(Some("bytes=-10, 0-"), 100), RangeRequest::Ranges(vec![r(0, 99)]));
    }

    #[test]
    fn unsatisfiable_and_malformed() {
        assert_eq!(resolve(Some("bytes=100-"), 100), RangeRequest::Unsatisfiable);
        assert_eq!(resolve(Some("bytes=-0"), 100), RangeRequest::Unsatisfiable);
        assert_eq!(resolve(Some("bytes=0-"), 0), RangeRequest::Unsatisfiable);
        for bad in [
            "bytes=5-1",
            "bytes=a-b",
            "items=0-1",
            "bytes=",
            "bytes=--1",
            "bytes=+1-2",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(resolve(Some(bad), 100), RangeRequest::Full, "{bad}");
        }
        assert_eq!(resolve(None, 100), RangeRequest::Full);
    }
}
