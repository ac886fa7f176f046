//! Request paths to object names. Each segment is percent-decoded exactly once and checked, so
//! `..`, encoded slashes, NUL bytes and other tricks never reach the file system.

use percent_encoding::percent_decode_str;

/// `/namespace/path/inside` split and decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectPath {
    pub namespace: String,
    /// The decoded segments after the namespace.
    pub segments: Vec<String>,
}

impl ObjectPath {
    /// The object's name inside its namespace (segments joined with `/`).
    pub fn name(&self) -> String {
        self.segments.join("/")
    }
}

/// Why a path is refused (always a 400).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must look like /namespace/object")]
    Shape,
    #[error("path segment `{0}` is not allowed")]
    Segment(String),
    #[error("the path is not valid percent-encoded UTF-8")]
    Encoding,
}

pub fn parse(path: &str) -> Result<ObjectPath, PathError> {
    if path.ends_with('/') {
        return Err(PathError::Segment(String::new())); // a directory, not an object
    }
    let p = parse_dir(path)?;
    if p.segments.is_empty() {
        return Err(PathError::Shape);
    }
    Ok(p)
}

/// Like [`parse`], but the path may name the namespace alone (a directory listing of its
/// root); a trailing `/` is allowed.
pub fn parse_dir(path: &str) -> Result<ObjectPath, PathError> {
    let rest = path.strip_prefix('/').ok_or(PathError::Shape)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let mut decoded = Vec::new();
    for raw in rest.split('/') {
        let seg = percent_decode_str(raw).decode_utf8().map_err(|_| PathError::Encoding)?;
        let bad = seg.is_empty()
            || seg == "."
            || seg == ".."
            || seg.contains(['/', '\\', '\0'])
            || seg.chars().any(char::is_control);
        if bad {
            return Err(PathError::Segment(raw.to_string()));
        }
        decoded.push(seg.into_owned());
    }
    let namespace = decoded.remove(0);
    Ok(ObjectPath { namespace, segments: decoded })
}

/// The path of an object as a URL path (each segment percent-encoded again).
pub fn encode(namespace: &str, name: &str) -> String {
    encode_segments(std::iter::once(namespace).chain(name.split('/')))
}

/// `/seg1/seg2...`, each segment percent-encoded.
pub fn encode_segments<'a>(segments: impl IntoIterator<Item = &'a str>) -> String {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    const SEGMENT: &AsciiSet =
        &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'?').add(b'<').add(b'>').add(b'`').add(b'{').add(b'}');
    let mut out = String::new();
    for seg in segments {
        out.push('/');
        out.extend(utf8_percent_encode(seg, SEGMENT));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories() {
        assert_eq!(parse_dir("/atlas").unwrap().segments, Vec::<String>::new());
        assert_eq!(parse_dir("/atlas/").unwrap().segments, Vec::<String>::new());
        assert_eq!(parse_dir("/atlas/a%20b/").unwrap().segments, ["a b"]);
        assert!(parse_dir("/atlas//x").is_err());
        assert!(parse_dir("/").is_err());
        assert!(parse("/atlas/").is_err());
    }

    #[test]
    fn good_paths() {
        let p = parse("/atlas/mc23/evt%201.root").unwrap();
        assert_eq!(p.namespace, "atlas");
        assert_eq!(p.name(), "mc23/evt 1.root");
        assert_eq!(encode("atlas", &p.name()), "/atlas/mc23/evt%201.root");
    }

    #[test]
    fn tricks_are_refused() {
        for bad in [
            "/atlas/../etc/passwd",
            "/atlas/%2e%2e/x",
            "/atlas/a%2fb",
            "/atlas/a%5cb",
            "/atlas/a%00",
            "/atlas//x",
            "/atlas/x/",
            "/atlas/%ff",
            "/atlas",
            "atlas/x",
            "/atlas/./x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
