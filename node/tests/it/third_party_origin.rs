//! A cache in front of a third-party HTTP origin (a namespace's `origin_url`): it follows the
//! origin's caching headers as a shared cache must (RFC 9111, RFC 9213 `CDN-Cache-Control`,
//! RFC 5861 `stale-if-error`), revalidates with the origin's validators, and with
//! `immutable = true` keeps write-once data whatever the headers say. The origin is a small
//! HTTP server scripted by each test, which also records every request it gets.

use crate::common::{Cluster, Options, bytes, cache, fake_server, header, sha256_b64};
use reef_core::http_caching::format_http_date;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// What the scripted origin answers.
#[derive(Clone)]
struct Reply {
    status: u16,
    /// Header lines, each ending in `\r\n`.
    headers: String,
    body: Vec<u8>,
}

fn ok(headers: &str, body: &[u8]) -> Reply {
    Reply { status: 200, headers: headers.to_string(), body: body.to_vec() }
}

fn status(code: u16, headers: &str) -> Reply {
    Reply { status: code, headers: headers.to_string(), body: Vec::new() }
}

type Script = Box<dyn Fn(&[String]) -> Reply + Send>;

/// A scripted third-party origin and a cache in front of it (namespace `web`).
struct Setup {
    cluster: Cluster,
    /// The head (lowercased lines) of every request the origin got, in order.
    seen: Arc<Mutex<Vec<Vec<String>>>>,
    script: Arc<Mutex<Script>>,
}

impl Setup {
    fn start(namespace_keys: &str, script: impl Fn(&[String]) -> Reply + Send + 'static) -> Setup {
        let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let script: Arc<Mutex<Script>> = Arc::new(Mutex::new(Box::new(script)));
        let (log, answer) = (seen.clone(), script.clone());
        let port = fake_server(move |head, stream| {
            log.lock().unwrap().push(head.to_vec());
            let reply = (answer.lock().unwrap())(head);
            let reason = if reply.status == 200 { "OK" } else { "X" };
            let body: &[u8] = if head[0].starts_with("head ") || reply.status == 304 { &[] } else { &reply.body };
            let length =
                if reply.status == 304 { String::new() } else { format!("Content-Length: {}\r\n", reply.body.len()) };
            let _ = write!(stream, "HTTP/1.1 {} {reason}\r\n{length}{}\r\n", reply.status, reply.headers);
            stream.write_all(body).is_ok()
        });
        let keys = format!("origin_url = \"http://127.0.0.1:{port}/store/\"\n{namespace_keys}");
        let options = Options { namespaces: vec![("web", keys)], ..Options::default() };
        let cluster = Cluster::start_with(&[cache(2, "site-a")], &options);
        Setup { cluster, seen, script }
    }

    /// Changes what the origin answers from now on.
    fn answer(&self, script: impl Fn(&[String]) -> Reply + Send + 'static) {
        *self.script.lock().unwrap() = Box::new(script);
    }

    /// GETs `/web/<name>` from the cache: (status, head, body).
    fn get(&self, name: &str) -> (u16, String, Vec<u8>) {
        self.cluster.get(&self.cluster.url(2, &format!("/web/{name}")), &[])
    }

    /// The origin's requests so far: (request line, conditional headers).
    fn requests(&self) -> Vec<(String, Vec<String>)> {
        let seen = self.seen.lock().unwrap();
        let conditional = |h: &Vec<String>| {
            h.iter()
                .filter(|l| l.starts_with("if-none-match:") || l.starts_with("if-modified-since:"))
                .cloned()
                .collect()
        };
        seen.iter().map(|h| (h[0].clone(), conditional(h))).collect()
    }

    fn metric(&self, series: &str) -> f64 {
        self.cluster.metric(2, series)
    }
}

fn hit(head: &str) -> bool {
    header(head, "cache-status").is_some_and(|s| s.ends_with("; hit"))
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The same object twice: (was the second a hit, how many requests the origin got).
fn twice(setup: &Setup, name: &str, body: &[u8]) -> (bool, usize) {
    let (code, _, first) = setup.get(name);
    assert_eq!((code, sha256_b64(&first)), (200, sha256_b64(body)));
    let (code, head, second) = setup.get(name);
    assert_eq!((code, sha256_b64(&second)), (200, sha256_b64(body)));
    (hit(&head), setup.requests().len())
}

#[test]
fn max_age_keeps_a_copy_fresh_and_an_etag_revalidates_it_without_its_bytes() {
    let data = bytes(300_000, 1);
    let body = data.clone();
    let s = Setup::start("", move |head| {
        if head.iter().any(|l| l == "if-none-match: \"v1\"") {
            status(304, "ETag: \"v1\"\r\nCache-Control: max-age=3600\r\n")
        } else if head[0].contains("/fresh") {
            ok("ETag: \"v1\"\r\nCache-Control: max-age=3600\r\n", &body)
        } else {
            ok("ETag: \"v1\"\r\nCache-Control: max-age=0\r\n", &body)
        }
    });
    // Fresh for an hour: the second read is a hit, the origin asked once, at its URL.
    assert_eq!(twice(&s, "fresh", &data), (true, 1));
    assert_eq!(s.requests()[0].0, "get /store/fresh http/1.1");
    // Fresh for no time: the second read asks with If-None-Match and gets 304, no bytes; the
    // 304's max-age=3600 then makes the copy fresh, so a third read is a hit again.
    assert_eq!(twice(&s, "now", &data), (true, 3));
    assert_eq!(s.requests()[2], ("get /store/now http/1.1".into(), vec!["if-none-match: \"v1\"".into()]));
    assert_eq!(s.metric("reef_revalidations_total{result=\"not_modified\"}"), 1.0);
    let (_, head, third) = s.get("now");
    assert!(hit(&head) && third == data, "{head}");
    assert_eq!(s.requests().len(), 3);
}

#[test]
fn last_modified_alone_revalidates_with_if_modified_since() {
    let data = bytes(10_000, 2);
    let modified = format_http_date(now() - 86_400);
    let (body, lm) = (data.clone(), modified.clone());
    let s = Setup::start("", move |head| {
        if head.iter().any(|l| l.starts_with("if-modified-since:")) {
            status(304, "")
        } else {
            ok(&format!("Last-Modified: {lm}\r\nCache-Control: no-cache\r\n"), &body)
        }
    });
    assert_eq!(twice(&s, "f", &data), (true, 2));
    // No ETag was given, so none made up by the cache is sent: only the date.
    assert_eq!(s.requests()[1].1, vec![format!("if-modified-since: {}", modified.to_lowercase())]);
}

#[test]
fn a_new_version_found_on_revalidation_replaces_the_copy() {
    let (v1, v2) = (bytes(50_000, 3), bytes(60_000, 4));
    let s = Setup::start("", {
        let v1 = v1.clone();
        move |_| ok("ETag: \"v1\"\r\nCache-Control: max-age=0\r\n", &v1)
    });
    assert_eq!(s.get("f").2, v1);
    let new = v2.clone();
    s.answer(move |_| ok("ETag: \"v2\"\r\nCache-Control: max-age=3600\r\n", &new));
    let (_, head, body) = s.get("f");
    assert_eq!(sha256_b64(&body), sha256_b64(&v2));
    assert!(!hit(&head));
    let (_, head, body) = s.get("f");
    assert!(hit(&head) && body == v2, "{head}");
    assert_eq!(s.metric("reef_revalidations_total{result=\"modified\"}"), 1.0);
}

#[test]
fn s_maxage_overrides_max_age_in_a_shared_cache() {
    let data = bytes(1000, 5);
    let body = data.clone();
    let s = Setup::start("", move |_| ok("Cache-Control: max-age=3600, s-maxage=0\r\n", &body));
    assert_eq!(twice(&s, "f", &data), (false, 2));
}

#[test]
fn expires_counts_from_the_origins_date() {
    let data = bytes(1000, 6);
    let body = data.clone();
    let s = Setup::start("", move |head| {
        let t = now();
        let expires = if head[0].contains("/later") { t + 3600 } else { t.saturating_sub(1) };
        ok(&format!("Date: {}\r\nExpires: {}\r\n", format_http_date(t), format_http_date(expires)), &body)
    });
    assert_eq!(twice(&s, "later", &data), (true, 1));
    assert_eq!(twice(&s, "gone", &data), (false, 3));
}

#[test]
fn age_on_arrival_is_taken_off_the_lifetime() {
    let data = bytes(1000, 7);
    let body = data.clone();
    let s = Setup::start("", move |head| {
        let age = if head[0].contains("/young") { 100 } else { 600 };
        ok(&format!("Cache-Control: max-age=600\r\nAge: {age}\r\n"), &body)
    });
    assert_eq!(twice(&s, "young", &data), (true, 1));
    assert_eq!(twice(&s, "old", &data), (false, 3));
}

/// A response a shared cache may not keep reaches its client whole and is fetched again.
fn never_stored(headers: &str) {
    let data = bytes(200_000, 8);
    let (body, headers) = (data.clone(), headers.to_string());
    let s = Setup::start("", move |_| ok(&headers, &body));
    assert_eq!(twice(&s, "f", &data), (false, 2));
    assert!(s.requests().iter().all(|(_, conditional)| conditional.is_empty()), "nothing kept to revalidate");
    assert_eq!(s.metric("reef_not_storable_total"), 2.0);
}

#[test]
fn no_store_is_never_kept() {
    never_stored("Cache-Control: no-store, max-age=3600\r\n");
}

#[test]
fn private_is_never_kept_by_a_shared_cache() {
    never_stored("Cache-Control: private, max-age=3600\r\n");
}

#[test]
fn a_varying_response_is_never_kept() {
    never_stored("Cache-Control: max-age=3600\r\nVary: Accept-Language\r\n");
}

/// The origin answers `head` first, then fails with 503: what does the client get for a copy
/// fetched with `headers` that is stale by then?
fn when_the_origin_fails(headers: &str) -> (u16, Vec<u8>, Vec<u8>) {
    let data = bytes(20_000, 9);
    let (body, headers) = (data.clone(), headers.to_string());
    let s = Setup::start("", move |_| ok(&headers, &body));
    assert_eq!(s.get("f").2, data);
    s.answer(|_| status(503, ""));
    let (code, _, body) = s.get("f");
    (code, body, data)
}

#[test]
fn a_stale_copy_is_served_when_the_origin_fails_unless_it_must_revalidate() {
    let (code, body, data) = when_the_origin_fails("ETag: \"a\"\r\nCache-Control: max-age=0\r\n");
    assert_eq!((code, sha256_b64(&body)), (200, sha256_b64(&data)));
    let (code, _, _) = when_the_origin_fails("ETag: \"a\"\r\nCache-Control: max-age=0, must-revalidate\r\n");
    assert!(code >= 500, "must-revalidate: an error, not the stale copy (got {code})");
}

#[test]
fn stale_if_error_bounds_how_long_a_stale_copy_may_stand_in() {
    let (code, body, data) = when_the_origin_fails("ETag: \"a\"\r\nCache-Control: max-age=0, stale-if-error=3600\r\n");
    assert_eq!((code, body == data), (200, true));
    // Stale for 600 s on arrival (Age) with a 60 s allowance: no longer.
    let (code, _, _) =
        when_the_origin_fails("ETag: \"a\"\r\nCache-Control: max-age=60, stale-if-error=60\r\nAge: 660\r\n");
    assert!(code >= 500, "past stale-if-error: an error (got {code})");
}

#[test]
fn a_304_updates_the_stored_rules_for_the_next_revalidation() {
    let data = bytes(20_000, 14);
    let body = data.clone();
    let s = Setup::start("", move |_| ok("ETag: \"a\"\r\nCache-Control: max-age=0\r\n", &body));
    assert_eq!(s.get("f").2, data);
    // The origin now says must-revalidate, in a 304 ...
    s.answer(|_| status(304, "ETag: \"a\"\r\nCache-Control: max-age=0, must-revalidate\r\n"));
    assert_eq!(s.get("f").2, data);
    // ... and then answers 304s that repeat no Cache-Control: the stored rules are the updated
    // ones (RFC 9111, 4.3.4), so when the origin fails the stale copy is not served.
    s.answer(|_| status(304, "ETag: \"a\"\r\n"));
    assert_eq!(s.get("f").2, data);
    s.answer(|_| status(503, ""));
    let (code, _, _) = s.get("f");
    assert!(code >= 500, "must-revalidate kept from the earlier 304 (got {code})");
    assert_eq!(s.metric("reef_revalidations_total{result=\"not_modified\"}"), 2.0);
}

#[test]
fn cdn_cache_control_takes_precedence_over_cache_control() {
    let data = bytes(1000, 10);
    let body = data.clone();
    let s = Setup::start("", move |_| ok("Cache-Control: no-store\r\nCDN-Cache-Control: max-age=3600\r\n", &body));
    assert_eq!(twice(&s, "f", &data), (true, 1));
}

#[test]
fn an_immutable_namespace_keeps_its_copies_whatever_the_headers_say() {
    let data = bytes(1000, 11);
    let body = data.clone();
    let s = Setup::start("immutable = true\n", move |_| ok("Cache-Control: no-store, max-age=0\r\n", &body));
    assert_eq!(twice(&s, "f", &data), (true, 1));
    let (_, head, again) = s.get("f");
    assert!(hit(&head) && again == data);
    assert_eq!(s.requests().len(), 1);
}

#[test]
fn redirects_are_followed_and_metadata_comes_from_the_origin() {
    let data = bytes(5000, 12);
    let body = data.clone();
    let s = Setup::start("", move |head| {
        if head[0].contains("/store/door/") {
            status(302, "Location: /pool7/f\r\n")
        } else {
            ok("ETag: \"p\"\r\nCache-Control: max-age=3600\r\n", &body)
        }
    });
    assert_eq!(twice(&s, "door/f", &data), (true, 2));
    let lines: Vec<String> = s.requests().into_iter().map(|(line, _)| line).collect();
    assert_eq!(lines, ["get /store/door/f http/1.1", "get /pool7/f http/1.1"]);
    // A HEAD of an object not held is answered from the origin's HEAD, nothing fetched.
    let url = s.cluster.url(2, "/web/other");
    let out = crate::common::curl(&["-s", "-I", &url]);
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(s.requests().last().unwrap().0, "head /store/other http/1.1");
}

/// A real HTTPS server (Python's, serving a directory) with a certificate from a private CA.
struct HttpsServer {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SERVE_HTTPS: &str = r#"
import functools, http.server, ssl, sys
port_file, directory, cert, key = sys.argv[1:]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(cert, key)
server.socket = tls.wrap_socket(server.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os; os.rename(port_file + ".tmp", port_file)
server.serve_forever()
"#;

fn https_server() -> HttpsServer {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    crate::common::reef_node_cmd(&["ca", "init", "--dir", ca.to_str().unwrap()]);
    crate::common::reef_node_cmd(&["ca", "issue", "--dir", ca.to_str().unwrap(), "--id", "99", "--host", "127.0.0.1"]);
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let port_file = dir.path().join("port");
    let child = std::process::Command::new("python3")
        .args(["-c", SERVE_HTTPS, port_file.to_str().unwrap(), files.to_str().unwrap()])
        .arg(ca.join("node-99.pem"))
        .arg(ca.join("node-99.key"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 is installed");
    let mut port = 0;
    crate::common::wait_until("the HTTPS server listens", || {
        port = std::fs::read_to_string(&port_file).ok().and_then(|p| p.parse().ok()).unwrap_or(0);
        port != 0
    });
    HttpsServer { child, port, dir }
}

#[test]
fn an_https_origin_is_reached_with_its_ca_and_revalidated_with_if_modified_since() {
    let server = https_server();
    let data = bytes(100_000, 13);
    std::fs::write(server.dir.path().join("files/f.bin"), &data).unwrap();
    let ca = server.dir.path().join("ca/ca.pem");
    let keys = format!("origin_url = \"https://127.0.0.1:{}\"\norigin_ca = \"{}\"\n", server.port, ca.display());
    let c =
        Cluster::start_with(&[cache(2, "site-a")], &Options { namespaces: vec![("web", keys)], ..Options::default() });
    let url = c.url(2, "/web/f.bin");
    let (code, _, body) = c.get(&url, &[]);
    assert_eq!((code, sha256_b64(&body)), (200, sha256_b64(&data)));
    // Modified just now, no lifetime given: 10% of its age is nothing, so the next read asks
    // again (If-Modified-Since) and the server's 304 keeps the copy.
    let (code, _, body) = c.get(&url, &[]);
    assert_eq!((code, body == data), (200, true));
    assert_eq!(c.metric(2, "reef_revalidations_total{result=\"not_modified\"}"), 1.0);

    // Without the CA its certificate is not trusted: the cache fetches nothing from it.
    let keys = format!("origin_url = \"https://127.0.0.1:{}\"\n", server.port);
    let c =
        Cluster::start_with(&[cache(2, "site-a")], &Options { namespaces: vec![("web", keys)], ..Options::default() });
    let (code, _, _) = c.get(&c.url(2, "/web/f.bin"), &[]);
    assert!(code >= 500, "untrusted origin: got {code}");
}
