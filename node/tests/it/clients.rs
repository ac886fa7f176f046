//! The rest of the client matrix (node/CLIENTS.md): wget (with `-c` resume), aria2c (4
//! connections, its own sha-256 check), xrdcp with the HTTP plugin and gfal2 (`gfal-copy` with
//! its ADLER32 check, `gfal-sum`), each downloading through the director and checked byte for
//! byte.

use crate::common;

use crate::common::{Cluster, adler32_hex, bytes, cache, director, origin, sha256_b64};
use std::process::Command;

fn installed(tool: &str) -> bool {
    let ok = Command::new(tool).arg("--version").output().is_ok();
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI installs {tool} (.ci/packages)");
        eprintln!("skipped {tool}: not installed");
    }
    ok
}

fn hex_sha256(data: &[u8]) -> String {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.decode(sha256_b64(data)).unwrap();
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

fn run(tool: &str, args: &[&str]) -> String {
    // Debian's gfal scripts call `python`, which Debian 12 lacks: name the interpreter.
    let out = Command::new(tool).env("GFAL_PYTHONBIN", "/usr/bin/python3").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn wget_aria2c_xrdcp_and_gfal_download_through_the_director() {
    let c = Cluster::start(&[origin(1), cache(2, "site-a"), director(9)]);
    let data = c.put("data/run.root", bytes(3 << 20, 77));
    let url = c.url(9, "/atlas/data/run.root?site=site-a");
    let dir = c.dir.path();
    let check = |name: &str| {
        let got = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(sha256_b64(&got), sha256_b64(&data), "{name}: {}", common::difference(&got, &data));
    };

    if installed("wget") {
        let out = dir.join("wget.root");
        run("wget", &["-q", "-O", out.to_str().unwrap(), &url]);
        check("wget.root");
        // `-c` continues a partial file with a range request.
        std::fs::write(&out, &data[..1 << 20]).unwrap();
        run("wget", &["-q", "-c", "-O", out.to_str().unwrap(), &url]);
        check("wget.root");
    }
    if installed("aria2c") {
        let checksum = format!("--checksum=sha-256={}", hex_sha256(&data));
        run(
            "aria2c",
            &[
                "-q",
                "-x4",
                "-s4",
                "--min-split-size=1M",
                &checksum,
                "-d",
                dir.to_str().unwrap(),
                "-o",
                "aria.root",
                &url,
            ],
        );
        check("aria.root");
    }
    if installed("xrdcp") {
        // Plain http:// needs --allow-http (xrootd-client-http-plugins).
        run("xrdcp", &["--silent", "--allow-http", &url, dir.join("xrd.root").to_str().unwrap()]);
        check("xrd.root");
    }
    if installed("gfal-copy") {
        // gfal-copy compares the source's ADLER32 (asked with Want-Digest) with the copy's.
        let target = format!("file://{}", dir.join("gfal.root").display());
        run("gfal-copy", &["-K", "ADLER32", &url, &target]);
        check("gfal.root");
        let sum = run("gfal-sum", &[&url, "ADLER32"]);
        assert_eq!(sum.split_whitespace().last(), Some(adler32_hex(&data).as_str()), "{sum}");
    }
}
