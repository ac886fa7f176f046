//! An origin in front of an emulated tape (`nearline` namespaces): a file is staged once
//! however many clients read it at once through the caches, the caches wait through a staging
//! delay longer than their fetch timeout without failing over (also a child cache behind its
//! parent), and the metrics show the staging.

use crate::common;

use crate::common::{Cluster, Options, Spec, bytes, cache, header, origin, sha256_b64};

#[test]
fn a_nearline_file_is_staged_once_for_twenty_concurrent_cached_reads() {
    // Staging takes 5 s; the caches' fetch timeout is 3 s (see common::Cluster).
    let keys = "nearline = { delay = \"5s\", retry_after = \"1s\" }\n".to_string();
    let options = Options { namespaces: vec![("tape", keys)], ..Options::default() };
    let child = Spec { strategy: "parent", parents: vec![2], ..cache(3, "site-b") };
    let c = Cluster::start_with(&[origin(1), cache(2, "site-a"), child], &options);
    let data = bytes(3_000_000, 7);
    c.put_in("tape", "run1.raw", data.clone());

    // 15 clients at the cache, 5 at its child, all at once.
    let answers: Vec<(u16, String, Vec<u8>)> = std::thread::scope(|s| {
        let readers: Vec<_> = (0..20)
            .map(|i| {
                let url = c.url(if i < 15 { 2 } else { 3 }, "/tape/run1.raw");
                let c = &c;
                s.spawn(move || c.get(&url, &["--max-time", "60"]))
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for (code, head, body) in &answers {
        assert_eq!(*code, 200, "{head}");
        assert_eq!(sha256_b64(body), sha256_b64(&data), "whole and right");
        assert!(header(head, "cache-status").is_some_and(|s| s.contains("fwd=miss")), "{head}");
    }

    // One staging, one fetch from the origin (the parent's), none from the child there; the
    // child fetched from its parent once; nobody failed over or gave a source up.
    assert_eq!(c.metric(1, "reef_staging_started_total"), 1.0);
    let answered = c.metric(1, "reef_staging_answers_total");
    assert!((3.0..=12.0).contains(&answered), "{answered} staging answers: one ask a second for 5 s");
    assert_eq!(c.metric(1, "reef_staging_files"), 1.0, "set when last answered: still staging then");
    assert_eq!(c.metric(2, "reef_fetches_total{source=\"origin\"}"), 1.0);
    assert_eq!(c.metric(3, "reef_fetches_total{source=\"origin\"}"), 0.0);
    assert_eq!(c.metric(3, "reef_fetches_total{source=\"peer\"}"), 1.0);
    for node in [2, 3] {
        assert_eq!(c.metric(node, "reef_failovers_total"), 0.0, "node {node} failed over");
    }
    assert!(c.metric(2, "reef_staging_waits_total") >= 2.0);
    assert!(c.metric(3, "reef_staging_waits_total") >= 1.0, "the child waited on its parent");
    // The origin's access log shows the staging answers, then the one read: no byte left
    // before the file was staged.
    let log = std::fs::read_to_string(c.dir.path().join("n1/access.log")).unwrap();
    let outcomes: Vec<String> = (log.lines())
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["object"] == "/tape/run1.raw")
        .map(|r| r["outcome"].as_str().unwrap().to_string())
        .collect();
    let staging = outcomes.iter().take_while(|o| *o == "staging").count();
    assert_eq!(staging as f64, answered, "{outcomes:?}");
    assert_eq!(&outcomes[staging..], ["served"], "{outcomes:?}");

    // Online now: a read at the origin is served at once; a HEAD of another nearline file
    // answers its metadata without staging it.
    let (code, _, body) = c.get(&c.url(1, "/tape/run1.raw"), &[]);
    assert_eq!((code, body.len()), (200, data.len()));
    c.put_in("tape", "run2.raw", bytes(1000, 8));
    let (code, head, _) = c.get(&c.url(1, "/tape/run2.raw"), &["-I"]);
    assert_eq!(code, 200, "{head}");
    assert_eq!(c.metric(1, "reef_staging_started_total"), 1.0);
    // A conditional read of an unstaged file whose version the reader holds (a cache
    // revalidating its copy) is answered 304 without staging it.
    let etag = header(&head, "etag").expect("an ETag").to_string();
    let (code, _, _) = c.get(&c.url(1, "/tape/run2.raw"), &["-H", &format!("If-None-Match: {etag}")]);
    assert_eq!(code, 304);
    assert_eq!(c.metric(1, "reef_staging_started_total"), 1.0);
    // A plain client reading an unstaged file at the origin hears 503 with Retry-After.
    let (code, head, _) = c.get(&c.url(1, "/tape/run2.raw"), &[]);
    assert_eq!(code, 503, "{head}");
    assert_eq!(header(&head, "retry-after"), Some("1"));
    assert_eq!(header(&head, "reef-staging"), Some("staging"));
}

/// The tool at `/usr/bin/NAME` run with Debian's python (its scripts call `python`).
fn gfal(tool: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(tool).env("GFAL_PYTHONBIN", "/usr/bin/python3").args(args).output().unwrap()
}

#[test]
fn the_tape_rest_api_stages_files_for_gfal_bringonline_and_reports_locality() {
    let keys = "nearline = { delay = \"2s\", retry_after = \"1s\" }\n".to_string();
    let options = Options { namespaces: vec![("tape", keys)], ..Options::default() };
    let c = Cluster::start_with(&[origin(1), cache(2, "site-a")], &options);
    c.put_in("tape", "a.raw", bytes(10_000, 1));
    c.put("disk.raw", bytes(10_000, 2));
    let origin_url = |p: &str| c.url(1, p);

    // Discovery names this origin's API.
    let (code, _, body) = c.get(&origin_url("/.well-known/wlcg-tape-rest-api"), &[]);
    assert_eq!(code, 200);
    let found: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(found["endpoints"][0]["version"], "v1");
    assert_eq!(found["endpoints"][0]["uri"], origin_url("/api/v1"));

    // Locality before: on tape only; a file outside nearline namespaces is on disk; a missing
    // one is an error of its own.
    let post = |path: &str, body: &str| {
        c.get(&origin_url(path), &["-X", "POST", "-H", "Content-Type: application/json", "--data", body])
    };
    let info = |paths: &str| -> serde_json::Value {
        let (code, head, body) = post("/api/v1/archiveinfo", &format!("{{\"paths\": [{paths}]}}"));
        assert_eq!(code, 200, "{head}");
        serde_json::from_slice(&body).unwrap()
    };
    let before = info("\"/tape/a.raw\", \"/atlas/disk.raw\", \"/tape/missing.raw\"");
    assert_eq!(before[0]["locality"], "TAPE");
    assert_eq!(before[1]["locality"], "DISK");
    assert_eq!(before[2]["error"], "no such file");
    assert_eq!(c.metric(1, "reef_staging_started_total"), 0.0, "asking does not stage");

    if std::path::Path::new("/usr/bin/gfal-bringonline").exists() {
        // gfal2's HTTP plugin: discovery, POST stage, then GET stage/ID until the file is on disk.
        let out = gfal("gfal-bringonline", &["--polling-timeout", "60", &origin_url("/tape/a.raw")]);
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        // (It exits 0 after a failed call too: its words say.)
        assert!(out.status.success() && !said.contains("FAILED"), "{said}");
    } else {
        eprintln!("gfal-bringonline not installed: staging through the API with curl only");
        let (code, _, body) = post("/api/v1/stage", "{\"files\": [{\"path\": \"/tape/a.raw\"}]}");
        assert_eq!(code, 201);
        let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["requestId"].as_str().unwrap().to_string();
        common::wait_until("the stage request completes", || {
            let (_, _, body) = c.get(&origin_url(&format!("/api/v1/stage/{id}")), &[]);
            let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
            status["files"][0]["onDisk"] == true
        });
    }
    assert_eq!(c.metric(1, "reef_staging_started_total"), 1.0);
    common::wait_until("the file is online", || info("\"/tape/a.raw\"")[0]["locality"] == "DISK_AND_TAPE");
    // Staged ahead: a cache reads it at once, no staging answer.
    let answered = c.metric(1, "reef_staging_answers_total");
    let (code, _, body) = c.get(&c.url(2, "/tape/a.raw"), &[]);
    assert_eq!((code, body.len()), (200, 10_000));
    assert_eq!(c.metric(1, "reef_staging_answers_total"), answered);

    // A stage request's status, file by file; bad requests are refused with what is wrong.
    let (code, _, body) = post("/api/v1/stage", "{\"files\": [{\"path\": \"/tape/a.raw\"}, {\"path\": \"/nope/x\"}]}");
    assert_eq!(code, 201);
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["requestId"].as_str().unwrap().to_string();
    let (_, _, body) = c.get(&origin_url(&format!("/api/v1/stage/{id}")), &[]);
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status["id"], id.as_str());
    assert_eq!(
        (status["files"][0]["state"].as_str(), status["files"][0]["onDisk"].as_bool()),
        (Some("COMPLETED"), Some(true))
    );
    assert_eq!(status["files"][1]["error"], "no such namespace");
    assert_eq!(post("/api/v1/stage", "{\"files\": []}").0, 400);
    let (code, _, body) = post("/api/v1/stage", "{\"files\": [{\"path\": \"/tape/missing.raw\"}]}");
    assert_eq!(code, 400, "nothing to stage is not remembered");
    assert!(String::from_utf8_lossy(&body).contains("no such file"));
    assert_eq!(post("/api/v1/stage", "not json").0, 400);
    assert_eq!(c.get(&origin_url("/api/v1/stage/unknown"), &[]).0, 404);
    assert_eq!(c.get(&origin_url(&format!("/api/v1/stage/{id}")), &["-X", "DELETE"]).0, 200);
    assert_eq!(c.get(&origin_url(&format!("/api/v1/stage/{id}")), &[]).0, 404);
    // Only an origin has the API.
    assert_eq!(c.get(&c.url(2, "/.well-known/wlcg-tape-rest-api"), &[]).0, 404);
}
