//! Listings as HEP clients ask for them: WebDAV PROPFIND (curl, `davix-ls`) and directory
//! pages, at the origin and through a cache (which asks the origin, never for file contents).

use crate::common::{Cluster, bytes, cache, curl, director, origin};
use std::process::Command;

fn propfind(url: &str, depth: &str) -> (u16, String) {
    let out = curl(&["-s", "-X", "PROPFIND", "-H", &format!("Depth: {depth}"), "-w", "\n%{http_code}", url]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

/// `2026-12-03 04:05:06`: a time as the listing tools print it (this machine runs in UTC).
fn utc_seconds(t: std::time::SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    let (month, day) = (u8::from(t.month()), t.day());
    format!("{:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", t.year(), t.hour(), t.minute(), t.second())
}

#[test]
fn directories_list_with_sizes_and_times_at_the_origin_and_through_a_cache() {
    let c = Cluster::start(&[origin(1), cache(2, "site-a"), director(9)]);
    c.put("data/a.root", bytes(1000, 1));
    c.put("data/sub/b.root", bytes(10, 2));
    c.put("data/x y.txt", b"hi".to_vec());
    let mtime = std::fs::metadata(c.data().join("data/a.root")).unwrap().modified().unwrap();
    let date = httpdate::fmt_http_date(mtime);

    let (code, xml) = propfind(&c.url(1, "/atlas/data/"), "1");
    assert_eq!(code, 207, "{xml}");
    for needle in [
        "<D:href>/atlas/data/</D:href>",
        "<D:href>/atlas/data/a.root</D:href>",
        "<D:href>/atlas/data/sub/</D:href>",
        "<D:href>/atlas/data/x%20y.txt</D:href>",
        "<D:getcontentlength>1000</D:getcontentlength>",
        &format!("<D:getlastmodified>{date}</D:getlastmodified>"),
    ] {
        assert!(xml.contains(needle), "{needle} not in {xml}");
    }
    assert_eq!(xml.matches("<D:response>").count(), 4);
    let (code, xml) = propfind(&c.url(1, "/atlas/data/a.root"), "0");
    assert_eq!((code, xml.matches("<D:response>").count()), (207, 1));
    assert!(xml.contains("<D:resourcetype/>") && xml.contains("<D:getetag>"));
    assert_eq!(propfind(&c.url(1, "/atlas/data/"), "infinity").0, 403);
    assert_eq!(propfind(&c.url(1, "/atlas/nothing/"), "1").0, 404);

    // Through the cache and the director: the origin's answer, and no file fetched for it.
    let (code, via_cache) = propfind(&c.url(2, "/atlas/data/"), "1");
    assert_eq!((code, via_cache.matches("<D:response>").count()), (207, 4));
    assert_eq!(propfind(&c.url(9, "/atlas/data/"), "1").1.matches("<D:response>").count(), 4);
    let davix =
        Command::new("davix-ls").args(["-l", &c.url(2, "/atlas/data/")]).output().expect("davix-ls (package davix)");
    let listed = String::from_utf8_lossy(&davix.stdout);
    assert!(davix.status.success(), "{}", String::from_utf8_lossy(&davix.stderr));
    assert!(listed.lines().any(|l| l.contains("a.root") && l.contains("1000")), "{listed}");
    // davix shows names as the hrefs spell them (percent-encoded, as RFC 4918 requires).
    assert!(listed.contains("sub") && listed.contains("x%20y.txt"), "{listed}");
    // rclone's WebDAV remote (no configuration file: the remote is given on the command line).
    if let Ok(out) = Command::new("rclone")
        .args(["lsf", "--config", "/dev/null", "--format", "pst", "--separator", ";"])
        .args(["--webdav-url", &c.url(2, "/atlas"), ":webdav:data"])
        .output()
    {
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(listed.lines().any(|l| l == format!("a.root;1000;{}", utc_seconds(mtime))), "{listed}");
        assert!(listed.lines().any(|l| l.starts_with("sub/;")) && listed.contains("x y.txt;2;"), "{listed}");
    } else {
        assert!(std::env::var_os("CI").is_none(), "CI installs rclone (.ci/packages)");
        eprintln!("skipped rclone: not installed");
    }
    assert_eq!(c.origin_served(1), 0.0, "a listing never fetches file contents");

    // Directory pages: HEAD answers, GET is an index with links.
    let (code, _, _) = c.get(&c.url(1, "/atlas/"), &["-I"]);
    assert_eq!(code, 200);
    let (code, head, page) = c.get(&c.url(2, "/atlas/data/"), &[]);
    let page = String::from_utf8(page).unwrap();
    assert_eq!(code, 200);
    assert!(head.contains("text/html"));
    assert!(page.contains("<a href=\"/atlas/data/a.root\">a.root</a> 1000 bytes"), "{page}");

    // gfal2's own tools (gfal2-util-scripts with the HTTP plugin), through the cache.
    let gfal =
        |tool: &str, url: &str| Command::new(tool).env("GFAL_PYTHONBIN", "/usr/bin/python3").args(["-l", url]).output();
    let Ok(out) = gfal("gfal-ls", &c.url(2, "/atlas/data/")) else {
        assert!(std::env::var_os("CI").is_none(), "CI installs gfal2-util-scripts (.ci/packages)");
        return eprintln!("skipped gfal: not installed");
    };
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(listed.lines().any(|l| l.contains("a.root") && l.contains(" 1000 ")), "{listed}");
    let stat = Command::new("gfal-stat")
        .env("GFAL_PYTHONBIN", "/usr/bin/python3")
        .arg(c.url(2, "/atlas/data/a.root"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&stat.stdout);
    assert!(text.contains(&format!("Modify: {}", utc_seconds(mtime))) && text.contains("Size: 1000"), "{text}");
}
