//! davix, the HEP HTTP client (Debian package `davix`, listed in .ci/packages), through the
//! director: whole-file download, a range read, and the checksum request it makes
//! (`HEAD` with `Want-Digest: adler32`).

use crate::common::*;
use std::process::Command;

#[test]
fn davix_reads_through_the_director() {
    let c = Cluster::start(&[origin(1), cache(11, "site-a"), director(5)]);
    let data = c.put("data/file.root", bytes(1 << 20, 5));
    let url = c.url(5, "/atlas/data/file.root?site=site-a");

    let out_file = c.dir.path().join("davix.root");
    let out = Command::new("davix-get").arg(&url).arg(&out_file).output().expect("davix-get (package davix)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(&out_file).unwrap() == data);

    let out = Command::new("davix-http").args(["-H", "Range: bytes=1000-1999", &url]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, &data[1000..2000]);

    let out = Command::new("davix-http")
        .args(["-X", "HEAD", "-H", "Want-Digest: adler32", "--trace", "header", &url])
        .output()
        .unwrap();
    assert!(out.status.success());
    let trace = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(trace.contains(&format!("digest: adler32={}", adler32_hex(&data))), "{trace}");
}
