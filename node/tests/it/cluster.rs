//! Origin, two sites and a director as real processes, read with curl and `reef get`.

use crate::common::*;
use std::process::Command;

#[test]
fn first_read_comes_from_the_origin_then_from_the_site_peer() {
    let parent = Spec { strategy: "parent", parents: vec![11], ..cache(12, "site-a") };
    let c = Cluster::start(&[origin(1), cache(11, "site-a"), parent, cache(21, "site-b"), director(5)]);
    let data = c.put("mc23/evt 1.root", bytes(3 << 20, 1));
    let path = "/atlas/mc23/evt%201.root";

    // The director sends a site-a client (by source address) to a site-a cache, and a client
    // saying `site=site-b` to the site-b cache. (It ranks suspect caches last: on a loaded
    // machine a cache may miss a probe for a moment, so its answers are awaited, bounded.)
    let redirect = |url: &str, extra: &[&str]| {
        let (status, head, _) = get(url, extra);
        assert_eq!(status, 302, "{head}");
        header(&head, "location").unwrap().to_string()
    };
    let site_a = |l: &str| l.starts_with(&c.url(11, "")) || l.starts_with(&c.url(12, ""));
    wait_until("a site-a client is sent to a site-a cache", || {
        site_a(&redirect(&c.url(5, path), &["--interface", "127.0.1.7"]))
    });
    wait_until("a site-b client is sent to the site-b cache", || {
        redirect(&c.url(5, &format!("{path}?site=site-b")), &[]).starts_with(&c.url(21, ""))
    });

    let (status, head, body) = get(&c.url(11, path), &["-H", "Want-Digest: sha-256"]);
    assert_eq!(status, 200);
    assert!(body == data, "byte-exact");
    assert_eq!(header(&head, "cache-status").unwrap(), "reef-n11; fwd=miss; detail=origin-n1", "{head}");
    assert_eq!(header(&head, "digest").unwrap(), format!("sha-256={}", sha256_b64(&data)));
    assert_eq!(c.origin_served(1), 1.0);

    // The other cache of the site gets it from its peer; the origin's counter does not move.
    let (status, head, body) = get(&c.url(12, path), &[]);
    assert_eq!(status, 200);
    assert!(body == data, "byte-exact");
    // RFC 9211's list: the peer's own entry (a hit there) first, then this cache's.
    assert_eq!(header(&head, "cache-status").unwrap(), "reef-n11; hit, reef-n12; fwd=miss; detail=peer-n11", "{head}");
    let (_, head, body) = get(&c.url(12, path), &[]);
    assert!(body == data);
    assert_eq!(header(&head, "cache-status").unwrap(), "reef-n12; hit", "{head}");
    // Per-namespace counters: node 12 missed once and hit once in `atlas`.
    let metrics = || String::from_utf8_lossy(&get(&c.url(12, "/metrics"), &[]).2).to_string();
    let bytes = format!("reef_namespace_response_bytes_total{{namespace=\"atlas\"}} {}", 2 * data.len());
    wait_until("both responses counted", || metrics().contains(&bytes));
    let text = metrics();
    for (outcome, n) in [("miss", 1), ("hit", 1)] {
        let line = format!("reef_namespace_requests_total{{namespace=\"atlas\",outcome=\"{outcome}\"}} {n}");
        assert!(text.contains(&line), "no `{line}` in\n{text}");
    }
    // What it holds (no quotas here: everything is `other`).
    for line in [
        format!("reef_namespace_cached_bytes{{namespace=\"other\"}} {}", data.len()),
        "reef_namespace_cached_objects{namespace=\"other\"} 1".to_string(),
    ] {
        assert!(text.contains(&line), "no `{line}` in\n{text}");
    }
    // Through the director, following the redirect, as curl users do (after node 12's counts:
    // the director may pick either site-a cache, node 12 when node 11 is suspect for a moment
    // on a loaded machine).
    let (status, _, body) = get(&c.url(5, path), &["-L", "--interface", "127.0.1.8"]);
    assert_eq!(status, 200);
    assert!(body == data);
    assert_eq!(c.origin_served(1), 1.0);

    // A missing object is a 404 everywhere, and the access log has one JSON line per request.
    assert_eq!(get(&c.url(11, "/atlas/nope"), &[]).0, 404);
    let path = c.dir.path().join("n11/access.log");
    let last_line = || std::fs::read_to_string(&path).unwrap().lines().last().map(str::to_string);
    wait_until("the 404 is logged", || last_line().is_some_and(|l| l.contains("\"status\":404")));
    let last: serde_json::Value = serde_json::from_str(&last_line().unwrap()).unwrap();
    assert_eq!(last["status"], 404);
    assert_eq!(last["object"], "/atlas/nope");
    for key in ["time", "client", "site", "range", "bytes", "outcome", "source", "duration_ms"] {
        assert!(last.get(key).is_some(), "access log lacks {key}");
    }
}

#[test]
fn concurrent_misses_share_one_origin_fetch() {
    let c = Cluster::start(&[origin(1), cache(11, "site-a")]);
    let data = c.put("big.bin", bytes(64 << 20, 7));
    let expected = {
        let out = Command::new("sha256sum").arg(c.data().join("big.bin")).output().unwrap();
        String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
    };
    assert_eq!(data.len(), 64 << 20);
    let url = c.url(11, "/atlas/big.bin");
    let clients: Vec<_> = (0..50)
        .map(|_| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("curl -sf '{url}' | sha256sum"))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for client in clients {
        let out = client.wait_with_output().unwrap();
        assert!(out.status.success());
        let sum = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string();
        assert_eq!(sum, expected, "every client gets the exact object");
    }
    assert_eq!(c.origin_served(1), 1.0, "the origin served the object once");
    assert_eq!(c.metric(11, "reef_fetches_total{source=\"origin\"}"), 1.0);
}

#[test]
fn a_dead_cache_gets_no_clients_and_serves_its_objects_after_restart() {
    let mut c = Cluster::start(&[origin(1), cache(11, "site-a"), cache(21, "site-b"), director(5)]);
    let data = c.put("run/evt.root", bytes(2 << 20, 3));
    let url = c.url(5, "/atlas/run/evt.root?site=site-a");
    let (status, _, body) = get(&url, &["-L"]);
    assert_eq!(status, 200);
    assert!(body == data);
    let redirect_target = || {
        let out = curl(&["-s", "-o", "/dev/null", "-w", "%{redirect_url}", &url]);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(redirect_target().starts_with(&c.url(11, "")));

    // The fill is committed to disk asynchronously; kill only once it is (data and sidecar).
    let objects = c.dir.path().join("n11/store/objects");
    wait_until("the object is on disk", || std::fs::read_dir(&objects).unwrap().count() == 2);
    c.kill(11);
    // A client that does not know yet: `reef get` fails over and completes elsewhere.
    let out_file = c.dir.path().join("got.root");
    let out = Command::new(env!("CARGO_BIN_EXE_reef")).args(["get", &url, "-o", path_str(&out_file)]).output().unwrap();
    assert!(out.status.success(), "reef get: {}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(&out_file).unwrap() == data);
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum sha-256="));
    // The director stops sending clients to the dead cache.
    wait_until("the director avoids the dead cache", || redirect_target().starts_with(&c.url(21, "")));

    // Restarted, it serves the objects it had, from its disk.
    c.launch(11);
    let (status, head, body) = get(&c.url(11, "/atlas/run/evt.root"), &[]);
    assert_eq!(status, 200);
    assert!(body == data);
    assert!(header(&head, "cache-status").unwrap().ends_with("hit"), "{head}");
    wait_until("the director sends site-a clients home again", || redirect_target().starts_with(&c.url(11, "")));
}

#[test]
fn dsht_caches_find_each_others_copies_over_the_network() {
    // Lookups answer asynchronously (messages between caches), after the request was handled.
    let dsht = |id, site| Spec { strategy: "dsht", ..cache(id, site) };
    let c = Cluster::start(&[origin(1), dsht(11, "site-a"), dsht(12, "site-a"), dsht(21, "site-b")]);
    let data = c.put("dsht.bin", bytes(1 << 20, 3));
    let (status, head, body) = get(&c.url(11, "/atlas/dsht.bin"), &[]);
    assert_eq!(status, 200, "{head}");
    assert!(body == data, "byte-exact");
    assert!(header(&head, "cache-status").unwrap().contains("detail=origin-n1"), "{head}");
    wait_until("cache 11 committed its copy", || c.metric(11, "reef_cache_admitted_total") == 1.0);

    for reader in [12, 21] {
        let (status, head, body) = get(&c.url(reader, "/atlas/dsht.bin"), &[]);
        assert_eq!(status, 200, "{head}");
        assert!(body == data, "byte-exact through {reader}");
        assert!(header(&head, "cache-status").unwrap().contains("detail=peer-n"), "{reader}: {head}");
    }
    assert_eq!(c.origin_served(1), 1.0, "the origin served the object once");
}

#[test]
fn sighup_reloads_storage_quotas_and_a_lowered_limit_evicts_at_once() {
    let options = Options { namespaces: vec![("cms", "quota = { max_objects = 3 }\n".into())], ..Options::default() };
    let c = Cluster::start_with(&[origin(1), cache(11, "site-a")], &options);
    let files: Vec<Vec<u8>> = (0..3).map(|k| c.put_in("cms", &format!("f{k}"), bytes(10_000, k))).collect();
    let cached = "reef_namespace_cached_objects{namespace=\"cms\"}";
    for k in 0..3 {
        assert_eq!(get(&c.url(11, &format!("/cms/f{k}")), &[]).2, files[k as usize]);
    }
    wait_until("three cms objects cached", || c.metric(11, cached) == 3.0);
    // The operator lowers the limit in the file and sends SIGHUP: the same process keeps
    // serving, and the two least recently used cms objects leave now.
    let node = &c.nodes[&11];
    let text = std::fs::read_to_string(&node.config).unwrap().replace("max_objects = 3", "max_objects = 1");
    std::fs::write(&node.config, text).unwrap();
    let pid = node.child.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    wait_until("the lowered limit applied", || c.metric(11, cached) == 1.0);
    assert_eq!(c.metric(11, "reef_namespace_evictions_total{namespace=\"cms\"}"), 2.0);
    assert!(c.log(11).contains("reloaded the namespaces' quotas"));
    let (status, head, body) = get(&c.url(11, "/cms/f2"), &[]);
    assert_eq!((status, body == files[2]), (200, true));
    assert_eq!(header(&head, "cache-status").unwrap(), "reef-n11; hit", "the most recent one stayed");
    // A bad quota is refused and the old one kept.
    let text = std::fs::read_to_string(&node.config).unwrap().replace("max_objects = 1", "max_share = 2.0");
    std::fs::write(&node.config, text).unwrap();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    wait_until("the bad quota reported", || c.log(11).contains("cannot reload the quotas"));
    assert_eq!(c.metric(11, cached), 1.0);
}
