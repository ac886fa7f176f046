//! HTTP done properly, on a cache and on the origin: ranges, multi-ranges, digests, validators,
//! HEAD, HTTP/2, and bad input that gets a 4xx without hurting the node.

use crate::common::*;

fn semantics(c: &Cluster, node: u32, data: &[u8]) {
    let url = c.url(node, "/atlas/obj.bin");
    let n = data.len();

    let (status, head, _) = get(&url, &["-I"]);
    assert_eq!(status, 200);
    assert_eq!(header(&head, "content-length").unwrap(), n.to_string());
    assert_eq!(header(&head, "accept-ranges").unwrap(), "bytes");

    let (status, head, body) = get(&url, &["-H", "Range: bytes=100-199"]);
    assert_eq!(status, 206);
    assert_eq!(body, &data[100..200]);
    assert_eq!(header(&head, "content-range").unwrap(), format!("bytes 100-199/{n}"));
    assert_eq!(header(&head, "content-length").unwrap(), "100");

    let (status, _, body) = get(&url, &["-H", "Range: bytes=-500"]);
    assert_eq!(status, 206);
    assert_eq!(body, &data[n - 500..]);

    let (status, head, body) = get(&url, &["-H", "Range: bytes=0-9, 70000-70099, 5-6"]);
    assert_eq!(status, 206);
    let ctype = header(&head, "content-type").unwrap();
    let boundary = ctype.split("boundary=").nth(1).unwrap();
    assert_eq!(header(&head, "content-length").unwrap(), body.len().to_string());
    // Parse the parts back: each has its Content-Range and exactly those bytes.
    let delimiter = format!("--{boundary}");
    let text = body.clone();
    let mut parts = Vec::new();
    let mut rest = &text[..];
    while let Some(start) = find(rest, delimiter.as_bytes()) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").unwrap();
        let part_head = String::from_utf8_lossy(&rest[..head_end]).to_lowercase();
        let range = part_head.lines().find_map(|l| l.strip_prefix("content-range: bytes ")).unwrap().to_string();
        let (a, b) = range.split('/').next().unwrap().split_once('-').unwrap();
        let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
        let payload = &rest[head_end + 4..head_end + 4 + (b - a + 1)];
        assert_eq!(payload, &data[a..=b]);
        parts.push((a, b));
        rest = &rest[head_end + 4 + (b - a + 1)..];
    }
    // `5-6` lies inside `0-9`: overlapping ranges are merged (RFC 9110 §14.2), in order.
    assert_eq!(parts, vec![(0, 9), (70000, 70099)]);

    let (status, head, body) = get(&url, &["-H", &format!("Range: bytes={n}-")]);
    assert_eq!(status, 416);
    assert_eq!(header(&head, "content-range").unwrap(), format!("bytes */{n}"));
    assert!(body.is_empty());
    // A malformed Range is ignored (RFC 9110): the whole object.
    let (status, _, body) = get(&url, &["-H", "Range: bytes=9-1"]);
    assert_eq!(status, 200);
    assert_eq!(body.len(), n);

    let (_, head, _) = get(&url, &["-I", "-H", "Want-Digest: adler32"]);
    assert_eq!(header(&head, "digest").unwrap(), format!("adler32={}", adler32_hex(data)));
    let (_, head, _) = get(&url, &["-I", "-H", "Want-Digest: SHA-256;q=0.9, adler32;q=0.1"]);
    assert_eq!(header(&head, "digest").unwrap(), format!("sha-256={},adler32={}", sha256_b64(data), adler32_hex(data)));

    let etag = header(&head, "etag").unwrap().to_string();
    assert!(etag.starts_with('"'), "strong etag: {etag}");
    let last_modified = header(&head, "last-modified").unwrap().to_string();
    let (status, _, body) = get(&url, &["-H", &format!("If-None-Match: {etag}")]);
    assert_eq!(status, 304);
    assert!(body.is_empty());
    assert_eq!(get(&url, &["-H", &format!("If-Modified-Since: {last_modified}")]).0, 304);
    assert_eq!(get(&url, &["-H", "If-None-Match: \"other\""]).0, 200);
    assert_eq!(get(&url, &["-H", "If-Match: \"other\""]).0, 412);
    // If-Range with a stale validator: the whole object instead of the range.
    let (status, _, body) = get(&url, &["-H", "Range: bytes=0-9", "-H", "If-Range: \"old\""]);
    assert_eq!(status, 200);
    assert_eq!(body.len(), n);
    let (status, _, body) = get(&url, &["-H", "Range: bytes=0-9", "-H", &format!("If-Range: {etag}")]);
    assert_eq!((status, body.len()), (206, 10));

    // HTTP/2 (prior knowledge, cleartext) and keep-alive on one connection.
    let (status, _, body) = get(&url, &["--http2-prior-knowledge"]);
    assert_eq!(status, 200);
    assert!(body == data);
    let out = curl(&["-s", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects}\n", &url, &url]);
    let connects: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(connects, vec!["1", "0"], "the second request reuses the connection");
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn ranges_digests_and_validators_on_cache_and_origin() {
    let c = Cluster::start(&[origin(1), cache(11, "site-a")]);
    let data = c.put("obj.bin", bytes(300_000, 11));
    semantics(&c, 11, &data); // the first request fills the cache
    semantics(&c, 11, &data); // now from the store
    semantics(&c, 1, &data);
}

#[test]
fn bad_input_gets_4xx_and_the_node_keeps_serving() {
    let c = Cluster::start(&[origin(1), cache(11, "site-a")]);
    let data = c.put("ok.txt", b"fine\n".to_vec());
    std::os::unix::fs::symlink("/etc/passwd", c.data().join("escape")).unwrap();
    std::fs::create_dir_all(c.data().join("sub")).unwrap();
    for node in [1, 11] {
        let port = c.nodes[&node].port;
        let raw =
            |target: &str| http_status(port, &format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        for target in [
            "/atlas/../../etc/passwd",
            "/atlas/%2e%2e/%2e%2e/etc/passwd",
            "/atlas/sub%2f..%2f..%2fetc%2fpasswd",
            "/atlas/..%5c..%5cetc",
            "/atlas/ok.txt%00.jpg",
            "/atlas//etc/passwd",
            "/atlas/%ff%fe",
            "/%2e%2e/atlas/ok.txt",
        ] {
            let status = raw(target).unwrap();
            assert!((400..500).contains(&status), "{target} on n{node}: {status}");
        }
        // A symlink out of the export and a directory are not objects.
        assert_eq!(raw("/atlas/escape"), Some(403), "n{node}");
        assert_eq!(raw("/atlas/sub"), Some(404), "n{node}");
        assert_eq!(raw("/nosuchns/x"), Some(404));
        assert_eq!(raw("/atlas/ok.txt?site=atlantis"), Some(400));
        assert_eq!(http_status(port, "GARBAGE\r\n\r\n"), Some(400));
        assert_eq!(http_status(port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), Some(400));
        let big = format!("X-Big: {}", "a".repeat(100_000));
        assert_eq!(get(&c.url(node, "/atlas/ok.txt"), &["-H", &big]).0, 431);
        assert_eq!(
            http_status(port, "DELETE /atlas/ok.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            Some(405)
        );
        assert_eq!(
            http_status(port, "GET /atlas/ok.txt HTTP/1.1\r\nHost: x\r\nReef-Peer: me\r\nConnection: close\r\n\r\n"),
            Some(400)
        );
        // A malformed message from a peer of the node (node 1 and node 11 know each other).
        let junk = "{\"Ping\":17}";
        let peer = if node == 1 { 11 } else { 1 };
        // A child's patience is a whole number of milliseconds; a child's request with one is
        // served (however small: the core waits at least half its own timeout).
        let child = |patience: &str| {
            let head =
                format!("GET /atlas/ok.txt HTTP/1.1\r\nHost: x\r\nReef-Child: {peer}\r\nReef-Patience: {patience}");
            http_status(port, &format!("{head}\r\nConnection: close\r\n\r\n"))
        };
        assert_eq!(child("soon"), Some(400), "n{node}");
        assert_eq!(child("-5"), Some(400), "n{node}");
        assert_eq!(child("5000"), Some(200), "n{node}");
        assert_eq!(child("1"), Some(200), "n{node}");
        let msg = format!(
            "POST /.reef/v1/message HTTP/1.1\r\nHost: x\r\nReef-Peer: {peer}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{junk}",
            junk.len()
        );
        assert_eq!(http_status(port, &msg), Some(400));
        assert_eq!(get(&c.url(node, "/atlas/ok.txt"), &["-H", "Range: bytes=99-"]).0, 416);
        // Still serving.
        let (status, _, body) = get(&c.url(node, "/atlas/ok.txt"), &[]);
        assert_eq!((status, body), (200, data.clone()));
        assert_eq!(get(&c.url(node, "/healthz"), &[]).0, 200);
    }
}

#[test]
fn special_files_in_an_export_are_refused_without_blocking() {
    let c = Cluster::start(&[origin(1)]);
    let body = c.put("ok.bin", bytes(1000, 5));
    let fifo = c.data().join("pipe");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // Opening a FIFO would wait for a writer; the origin refuses it at once instead.
    let (status, _, _) = get(&c.url(1, "/atlas/pipe"), &["--max-time", "5"]);
    assert_eq!(status, 403);
    let (status, _, got) = get(&c.url(1, "/atlas/ok.bin"), &[]);
    assert!(status == 200 && got == body);
}

#[test]
fn overlapping_ranges_cost_one_copy_of_the_object() {
    let c = Cluster::start(&[origin(1), cache(11, "site-a")]);
    let body = c.put("small.bin", bytes(200, 6));
    let many = format!("Range: bytes={}", vec!["0-"; 64].join(","));
    for node in [1, 11] {
        let (status, _, got) = get(&c.url(node, "/atlas/small.bin"), &["-H", &many]);
        assert_eq!(status, 206, "node {node}");
        assert_eq!(got, body, "node {node}: one range, the whole object");
    }
}

#[test]
fn a_node_outside_the_federation_is_refused_not_learnt() {
    let c = Cluster::start(&[origin(1), cache(11, "site-a")]);
    let body = c.put("f.bin", bytes(5000, 2));
    let status = |args: &[&str]| {
        let mut all = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&curl(&all).stdout).to_string()
    };
    let message = c.url(11, "/.reef/v1/message");
    let ping = r#"{"Ping":{"seq":1,"gossip":[]}}"#;
    let outsider = ["-H", "Reef-Peer: 999", "-H", "Reef-Node-Url: http://127.0.0.1:9"];
    // A control-plane message and a peer fetch from an id the federation does not know.
    assert_eq!(status(&[&outsider[..], &["-X", "POST", "--data", ping, &message]].concat()), "403");
    assert_eq!(status(&[&outsider[..], &[&c.url(11, "/atlas/f.bin")]].concat()), "403");
    // The same from a configured peer is served; a plain client is unaffected.
    assert_eq!(status(&["-H", "Reef-Peer: 1", "-X", "POST", "--data", ping, &message]), "204");
    let (code, _, got) = get(&c.url(11, "/atlas/f.bin"), &[]);
    assert!(code == 200 && got == body);
}
