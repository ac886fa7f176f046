//! `reef get` resumes a transfer that broke, with a range on the same representation, and
//! verifies the result; it refuses a file whose checksum does not match.

use crate::common::*;
use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};

const SIZE: usize = 1 << 20;

fn reef_get(url: &str, out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reef")).args(["get", url, "-o", path_str(out)]).output().unwrap()
}

#[test]
fn a_broken_download_is_resumed_with_a_range() {
    let body = bytes(SIZE, 21);
    let digest = format!("sha-256={}", sha256_b64(&body));
    let ranges: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = ranges.clone();
    let port = fake_server(move |head, stream| {
        let range = head.iter().find_map(|l| l.strip_prefix("range: bytes=")).map(str::to_string);
        let if_range = head.iter().any(|l| l == "if-range: \"v1\"");
        match range {
            None => {
                seen.lock().unwrap().push("full".into());
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\nETag: \"v1\"\r\nDigest: {digest}\r\n\r\n"
                );
                let _ = stream.write_all(&body[..SIZE / 2]);
                false // breaks halfway
            }
            Some(r) => {
                seen.lock().unwrap().push(format!("{r} if-range={if_range}"));
                let start: usize = r.trim_end_matches('-').parse().unwrap();
                let _ = write!(
                    stream,
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{SIZE}\r\nETag: \"v1\"\r\n\r\n",
                    SIZE - start,
                    SIZE - 1
                );
                stream.write_all(&body[start..]).is_ok()
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("f.bin");
    let out = reef_get(&format!("http://127.0.0.1:{port}/atlas/f.bin"), &out_file);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(&out_file).unwrap() == bytes(SIZE, 21));
    assert_eq!(*ranges.lock().unwrap(), vec!["full".to_string(), format!("{}- if-range=true", SIZE / 2)]);
}

#[test]
fn a_checksum_mismatch_fails_the_download() {
    let port = fake_server(move |_, stream| {
        let body = b"not what the digest says";
        let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nDigest: adler32=00000001\r\n\r\n", body.len());
        stream.write_all(body).is_ok()
    });
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("f.bin");
    let out = reef_get(&format!("http://127.0.0.1:{port}/atlas/f.bin"), &out_file);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum mismatch"));
    assert!(!out_file.exists());
}
