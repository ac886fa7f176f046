//! Multi-source fetch on real nodes: a cache fetches a 256 MiB object from three origins at once
//! (the core splits the fill into three ranges once the first origin has answered); one origin
//! is killed mid-way, then the lead; each range goes on from the first byte not yet verified
//! to a holder still alive, and the object arrives whole and correct.

use crate::common;

use crate::common::{Cluster, Options, Spec, cache, header, origin, wait_until};

use std::process::Command;

/// Large enough for three ranges of several seconds each at the paced rate; a quarter of the
/// gibibyte this test first used, with the rate and thresholds scaled alike (the same timing,
/// a quarter of the hashing: it was the node tests' longest, 43 s of 146).
const SIZE: u64 = 256 << 20;

fn sha256sum(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

#[test]
fn a_large_object_from_three_origins_survives_two_killed_mid_way() {
    // Fills from origins are paced at 400 Mbit/s in all, so the three ranges take seconds and
    // the kills land in the middle of them.
    let options = Options {
        namespaces: vec![("big", "quota = { fill = { rate = \"400Mbit/s\" } }\n".to_string())],
        ..Options::default()
    };
    let split = Spec { policy: "multi_source_min = \"64MiB\"\n", ..cache(4, "site-a") };
    let mut c = Cluster::start_with(&[origin(1), origin(2), origin(3), split], &options);
    let file = c.dir.path().join("data-big/run.raw");
    let made = Command::new("head").args(["-c", &SIZE.to_string(), "/dev/urandom"]).output().unwrap();
    std::fs::write(&file, &made.stdout).unwrap();
    drop(made);
    let want = sha256sum(&file);

    let got = c.dir.path().join("got");
    let url = c.url(4, "/big/run.raw");
    let client = Command::new("curl")
        .args(["-s", "-o", got.to_str().unwrap(), "-w", "%{http_code} %{size_download}", &url])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the cache splits the fill", || c.metric(4, "reef_split_fills_total") >= 1.0);
    // The client receives the verified prefix, the lead's range: with every range paced
    // alike, 25 MB there means each origin is about a third through its range (85 MiB), and
    // 62.5 MB that the lead is still in its own. Origin 2 dies then, then the lead, origin 1:
    // origin 3 takes on what both had not verified.
    let received = |at_least: u64| std::fs::metadata(&got).is_ok_and(|m| m.len() >= at_least);
    wait_until("the client has 25 MB", || received(25_000_000));
    c.kill(2);
    wait_until("the client has 62.5 MB", || received(62_500_000));
    c.kill(1);
    let out = client.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("200 {SIZE}"));
    assert_eq!(sha256sum(&got), want, "the object arrived whole and correct");
    let handed_on = c.metric(4, "reef_part_failovers_total{reason=\"broken\"}")
        + c.metric(4, "reef_part_failovers_total{reason=\"unreachable\"}");
    assert!(handed_on >= 2.0, "origin 2's range and the lead's were handed on ({handed_on})");
    // The copy is kept: a second read is a hit with the same bytes.
    std::fs::remove_file(&got).unwrap();
    let out = common::curl(&["-s", "-D", "-", "-o", got.to_str().unwrap(), &url]);
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(header(&head, "cache-status").is_some_and(|s| s.ends_with("; hit")), "{head}");
    assert_eq!(sha256sum(&got), want);
}
