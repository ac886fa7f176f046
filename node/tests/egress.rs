//! Bandwidth limits on a real cache, measured by a real client (curl) on loopback: a limited
//! namespace's download runs at the configured egress rate (at most 5% over it over 10 s, and
//! at most 15% under it on a loaded machine), a request that would wait past the bound gets
//! `503` with `Retry-After`, the other namespace is not slowed, `SIGHUP` changes the rate
//! without dropping the client's connection, and a fill limit holds a cold object's fill from
//! the origin (and so its streamed download) to its rate.
//! A range whose `If-Range` no longer matches is charged the whole object it turns into.

// Rates measured on the wall clock: a binary of their own, so that no other test's load (the
// integration tests' heavy transfers in tests/it) slows what they measure.
#[path = "it/common/mod.rs"]
mod common;
use common::*;
use std::process::Command;
use std::thread;

/// 16 Mbit/s: 2,000,000 bytes a second.
const RATE: f64 = 2_000_000.0;

fn limited_cluster(max_delay: &str) -> Cluster {
    cluster_with(format!("quota = {{ egress = {{ rate = \"16Mbit/s\", max_delay = \"{max_delay}\" }} }}\n"))
}

fn cluster_with(cms_quota: String) -> Cluster {
    let options = Options { namespaces: vec![("cms", cms_quota)], ..Options::default() };
    Cluster::start_with(&[origin(1), cache(11, "site-a")], &options)
}

/// Fills the cache with `path` by reading one byte of it (a range is charged its length; a
/// HEAD would fill nothing).
fn warm(c: &Cluster, path: &str, admitted: f64) {
    let out = curl(&["-s", "-r", "0-0", "-o", "/dev/null", "-w", "%{http_code}", &c.url(11, path)]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "206");
    wait_until("the object is cached", || c.metric(11, "reef_cache_admitted_total") == admitted);
}

/// curl's per-transfer figures: `(status, connections opened, bytes, seconds)` per URL.
fn timed_get(urls: &[String], out: &std::path::Path) -> Vec<(u16, u32, u64, f64)> {
    let mut args: Vec<String> = vec!["-s".into()];
    for (i, url) in urls.iter().enumerate() {
        args.extend(["-o".into(), format!("{}.{i}", out.display()), url.clone()]);
    }
    args.extend(["-w".into(), "%{http_code} %{num_connects} %{size_download} %{time_total}\n".into()]);
    let output = Command::new("curl").args(&args).output().expect("curl");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap())
        })
        .collect()
}

/// Waits until a download's file has received its first bytes.
fn wait_for_bytes(file: &std::path::Path) {
    wait_until("the download's first bytes", || std::fs::metadata(file).is_ok_and(|m| m.len() > 0));
}

/// The limit holds (at most 5% over it) and is what slows the transfer (at most 15% under it:
/// the other tests of this binary share the machine's two cores with these debug builds).
fn assert_rate(what: &str, bytes: u64, seconds: f64, rate: f64) {
    let measured = bytes as f64 / seconds;
    eprintln!("{what}: {measured:.0} B/s over {seconds:.3} s ({:+.2}% of the limit)", (measured / rate - 1.0) * 100.0);
    assert!(
        (-0.15..=0.05).contains(&(measured / rate - 1.0)),
        "{what}: {measured:.0} B/s over {seconds:.2} s, limit {rate:.0} B/s"
    );
}

#[test]
fn a_limited_namespace_runs_at_its_rate_and_the_other_is_not_slowed() {
    let c = limited_cluster("2s");
    // 20 MB at 2 MB/s: ten seconds.
    let cms = c.put_in("cms", "big", bytes(20_000_000, 1));
    let atlas = c.put("big", bytes(20_000_000, 2));
    warm(&c, "/cms/big", 1.0);
    warm(&c, "/atlas/big", 2.0);
    let out = c.dir.path().join("cms-download");
    let (url, path) = (c.url(11, "/cms/big"), out.clone());
    let slow = thread::spawn(move || timed_get(&[url], &path));
    // Its first bytes have arrived: it was admitted, and the bucket is committed behind it.
    wait_for_bytes(&out.with_extension("0"));

    // A second cms request would wait about 9.5 s for the first, past the 2 s bound.
    let (status, head, _) = get_lenient(&c.url(11, "/cms/big"));
    assert_eq!(status, 503, "{head}");
    assert_eq!(header(&head, "reef-failure"), Some("throttled"));
    let retry: u64 = header(&head, "retry-after").unwrap().parse().unwrap();
    assert!((6..=9).contains(&retry), "a retry is admitted once the queue is within 2 s: {retry}");

    // atlas has no limit: its 20 MB come at loopback speed meanwhile, byte-exact.
    let fast = timed_get(&[c.url(11, "/atlas/big")], &c.dir.path().join("atlas-download"));
    let (status, _, size, seconds) = fast[0];
    assert_eq!((status, size), (200, 20_000_000));
    // (2.5 times the limit: far from a held fill, with room for a loaded machine's debug build.)
    assert!(size as f64 / seconds > 2.5 * RATE, "atlas slowed: {seconds:.2} s");
    assert!(std::fs::read(c.dir.path().join("atlas-download.0")).unwrap() == atlas);

    let slow = slow.join().unwrap();
    let (status, _, size, seconds) = slow[0];
    assert_eq!((status, size), (200, 20_000_000));
    assert_rate("cms", size, seconds, RATE);
    assert!(std::fs::read(out.with_extension("0")).unwrap() == cms, "byte-exact at the limit");

    let throttled = |decision: &str| {
        c.metric(11, &format!("reef_namespace_throttled_total{{namespace=\"cms\",decision=\"{decision}\"}}"))
    };
    assert_eq!(throttled("refused"), 1.0);
    assert_eq!(c.metric(11, "reef_namespace_requests_total{namespace=\"cms\",outcome=\"throttled\"}"), 1.0);
}

#[test]
fn sighup_changes_the_rate_without_dropping_the_connection() {
    let c = limited_cluster("30s");
    // 4 MB: two seconds at 2 MB/s, one at 4 MB/s.
    let data = c.put_in("cms", "f", bytes(4_000_000, 3));
    warm(&c, "/cms/f", 1.0);
    let out = c.dir.path().join("download");
    let (urls, path) = (vec![c.url(11, "/cms/f"), c.url(11, "/cms/f")], out.clone());
    // Two downloads on one connection; the rate doubles during the first.
    let both = thread::spawn(move || timed_get(&urls, &path));
    wait_for_bytes(&out.with_extension("0"));
    let node = &c.nodes[&11];
    let text = std::fs::read_to_string(&node.config).unwrap().replace("16Mbit/s", "32Mbit/s");
    std::fs::write(&node.config, text).unwrap();
    let pid = node.child.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    wait_until("the quotas reloaded", || c.log(11).contains("reloaded the namespaces' quotas"));

    let both = both.join().unwrap();
    assert_eq!(both.len(), 2, "{both:?}");
    let ((s1, connects1, size1, t1), (s2, connects2, size2, t2)) = (both[0], both[1]);
    assert_eq!((s1, s2, size1, size2), (200, 200, 4_000_000, 4_000_000));
    assert_eq!((connects1, connects2), (1, 0), "the second download reused the connection");
    // The first keeps the pace it was admitted at; the second gets the new rate.
    assert_rate("before the reload", size1, t1, RATE);
    assert_rate("after the reload", size2, t2, 2.0 * RATE);
    for i in 0..2 {
        assert!(std::fs::read(out.with_extension(i.to_string())).unwrap() == data);
    }
}

#[test]
fn a_fill_limit_holds_fills_from_the_origin_to_its_rate() {
    let c = cluster_with("quota = { fill = { rate = \"16Mbit/s\" } }\n".into());
    // 4 MB, not cached: the cache fills it from the origin at 2 MB/s and streams it on.
    let cms = c.put_in("cms", "cold", bytes(4_000_000, 4));
    let atlas = c.put("cold", bytes(4_000_000, 5));
    let out = c.dir.path().join("fill");
    let (url, path) = (c.url(11, "/cms/cold"), out.clone());
    let slow = thread::spawn(move || timed_get(&[url], &path));
    // atlas's fills are not limited: its cold object comes at loopback speed meanwhile.
    let fast = timed_get(&[c.url(11, "/atlas/cold")], &c.dir.path().join("atlas-fill"));
    let (status, _, size, seconds) = fast[0];
    assert_eq!((status, size), (200, 4_000_000));
    // (2.5 times the limit: far from a held fill, with room for a loaded machine's debug build.)
    assert!(size as f64 / seconds > 2.5 * RATE, "atlas slowed: {seconds:.2} s");
    assert!(std::fs::read(c.dir.path().join("atlas-fill.0")).unwrap() == atlas);
    let (status, _, size, seconds) = slow.join().unwrap()[0];
    assert_eq!((status, size), (200, 4_000_000));
    assert_rate("cms fill", size, seconds, RATE);
    assert!(std::fs::read(out.with_extension("0")).unwrap() == cms);
    // Once cached, the object is served without the fill limit.
    wait_until("the cms object is cached", || c.metric(11, "reef_cache_admitted_total") == 2.0);
    let (status, _, size, seconds) = timed_get(&[c.url(11, "/cms/cold")], &c.dir.path().join("hit"))[0];
    assert_eq!((status, size), (200, 4_000_000));
    assert!(size as f64 / seconds > 2.5 * RATE, "a hit is not a fill: {seconds:.2} s");
}

#[test]
fn a_range_with_a_stale_if_range_is_charged_the_whole_object() {
    let c = limited_cluster("2s");
    let cms = c.put_in("cms", "big", bytes(20_000_000, 1));
    warm(&c, "/cms/big", 1.0);
    let url = c.url(11, "/cms/big");
    // One byte is charged one byte: requests right after each other all go through.
    for _ in 0..3 {
        let (status, head, body) = get(&url, &["-H", "Range: bytes=0-0"]);
        assert_eq!((status, body.as_slice()), (206, &cms[..1]), "{head}");
    }
    // The same range with a validator that no longer matches is answered with the whole 20 MB,
    // so it is charged them: ten seconds at the rate, and the next request would wait past the
    // 2 s bound.
    let out = c.dir.path().join("if-range-download");
    let (u, o) = (url.clone(), out.clone());
    let whole = thread::spawn(move || {
        let output = Command::new("curl")
            .args(["-s", "-H", "Range: bytes=0-0", "-H", "If-Range: \"stale\"", "-o", o.to_str().unwrap()])
            .args(["-w", "%{http_code} %{size_download}", &u])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&output.stdout).into_owned()
    });
    wait_for_bytes(&out);
    let (status, head, _) = get_lenient(&url);
    assert_eq!(status, 503, "{head}");
    assert_eq!(header(&head, "reef-failure"), Some("throttled"));
    assert_eq!(whole.join().unwrap(), "200 20000000");
    assert!(std::fs::read(&out).unwrap() == cms, "the whole object, byte-exact");
}
