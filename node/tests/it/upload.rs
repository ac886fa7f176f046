//! Getting data in: uploads into an origin (`PUT`), `reef put` over a link that breaks, and the
//! `reef ingest` daemon, on a real TLS cluster with real tokens, driven by curl and the real
//! binaries. What the origin publishes is compared byte for byte (sha-256) with what was sent.

use crate::common::issuer::Issuer;
use crate::common::relay::Relay;
use crate::common::{Cluster, Options, bytes, cache, curl, origin, sha256_b64, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Origin 1 and cache 2 with TLS; `atlas` write-once, `scratch` replaceable and limited to 1 MiB.
fn cluster(issuer: &Issuer) -> Cluster {
    let options = Options {
        tls: true,
        namespaces: vec![("scratch", "replace = true\nmax_upload = \"1MiB\"\n".into())],
        extra: issuer.config(""),
        ..Options::default()
    };
    Cluster::start_with(&[origin(1), cache(2, "site-a")], &options)
}

struct Put {
    status: u16,
    head: String,
    /// Body bytes curl sent.
    uploaded: u64,
}

/// `curl -T file` (a PUT) over HTTP/1.1, as HEP clients upload, with an optional token and
/// extra options. (Over HTTP/2 an answer before the body resets the stream, which curl
/// reports as its own error instead of the answer.)
fn curl_put(c: &Cluster, url: &str, token: Option<&str>, file: &Path, extra: &[&str]) -> Put {
    let head = c.dir.path().join("put-head");
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut args: Vec<String> = c.trust();
    args.extend(["-sS", "-o", "/dev/null", "-D"].map(String::from));
    args.push(head.display().to_string());
    args.extend(["--http1.1", "-w", "%{http_code} %{size_upload}", "-T"].map(String::from));
    args.push(file.display().to_string());
    if let Some(a) = auth {
        args.extend(["-H".into(), a]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(url.into());
    let out = curl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut parts = text.split_whitespace();
    let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let uploaded = parts.next().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
    let mut head = std::fs::read_to_string(head).unwrap_or_default().to_lowercase();
    head += &String::from_utf8_lossy(&out.stderr);
    Put { status, head, uploaded }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().rev().find_map(|l| l.strip_prefix(&format!("{name}: "))).map(|v| v.trim().to_string())
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path
}

/// The staging files an origin holds for unfinished uploads.
fn staged(export: &Path) -> Vec<String> {
    std::fs::read_dir(export.join(".reef-uploads"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

fn repr_digest(data: &[u8]) -> String {
    format!("Repr-Digest: sha-256=:{}:", sha256_b64(data))
}

#[test]
fn an_upload_is_authorised_checked_and_published_whole() {
    let issuer = Issuer::start();
    let c = cluster(&issuer);
    let create = issuer.sign("es-1", &issuer.claims("storage.create:/ storage.read:/"));
    let read = issuer.sign("es-1", &issuer.claims("storage.read:/"));
    let data = bytes(3 << 20, 1);
    let file = write(c.dir.path(), "up.bin", &data);
    let url = c.url(1, "/atlas/runs/up.bin");
    let continue_first = ["-H", "Expect: 100-continue", "--expect100-timeout", "30"];

    // Refusals come before the body: curl waits for `100 Continue` and never gets it.
    for (token, status) in [(None, 401), (Some(read.as_str()), 403)] {
        let put = curl_put(&c, &url, token, &file, &continue_first);
        assert_eq!((put.status, put.uploaded), (status, 0), "{token:?}: {}", put.head);
    }
    // How far an upload got is asked with `bytes */size`; a piece must start there.
    let digest = repr_digest(&data);
    let empty = write(c.dir.path(), "empty", b"");
    let probe = ["-H", "Content-Range: bytes */3145728", "-H", digest.as_str()];
    let put = curl_put(&c, &url, Some(&create), &empty, &probe);
    assert_eq!((put.status, header(&put.head, "upload-offset").as_deref()), (204, Some("0")), "{}", put.head);
    let tail = write(c.dir.path(), "tail", &data[1000..]);
    let late = ["-H", "Content-Range: bytes 1000-3145727/3145728", "-H", digest.as_str()];
    let put = curl_put(&c, &url, Some(&create), &tail, &late);
    assert_eq!((put.status, header(&put.head, "upload-offset").as_deref()), (409, Some("0")), "{}", put.head);
    let put = curl_put(&c, &url, Some(&create), &tail, &late[..2]);
    assert_eq!(put.status, 400, "a resumable piece must state its checksum");

    // A wrong checksum publishes nothing and leaves nothing staged.
    let wrong = repr_digest(b"other bytes");
    let put = curl_put(&c, &url, Some(&create), &file, &["-H", &wrong]);
    assert_eq!(put.status, 400);
    assert_eq!(c.get(&url, &[]).0, 404, "nothing visible after a checksum mismatch");
    assert!(!c.data().join("runs/up.bin").exists());
    assert_eq!(staged(&c.data()), Vec::<String>::new());

    // The right bytes: created once, served by the origin and through the cache.
    let put = curl_put(&c, &url, Some(&create), &file, &["-H", &digest]);
    assert_eq!(put.status, 201, "{}", put.head);
    let etag = header(&put.head, "etag").expect("an ETag");
    let (status, head, body) = c.get(&url, &[]);
    assert_eq!((status, sha256_b64(&body)), (200, sha256_b64(&data)));
    assert_eq!(header(&head, "etag"), Some(etag.clone()));
    let (status, _, body) = c.get(&c.url(2, "/atlas/runs/up.bin"), &[]);
    assert_eq!((status, sha256_b64(&body)), (200, sha256_b64(&data)), "through the cache");
    assert_eq!(staged(&c.data()), Vec::<String>::new());

    // Write-once: other bytes conflict; the same bytes again are "already there".
    let other = write(c.dir.path(), "other.bin", &bytes(1000, 2));
    assert_eq!(curl_put(&c, &url, Some(&create), &other, &[]).status, 409);
    let again = curl_put(&c, &url, Some(&create), &file, &["-H", &digest]);
    assert_eq!((again.status, header(&again.head, "etag")), (200, Some(etag)));
    assert_eq!(std::fs::read(c.data().join("runs/up.bin")).unwrap(), data);

    // Unfinished uploads are nobody's objects; caches and directors take no uploads.
    assert_eq!(c.get(&c.url(1, "/atlas/.reef-uploads/x.part"), &[]).0, 404);
    assert_eq!(curl_put(&c, &c.url(1, "/atlas/.reef-uploads/x"), Some(&create), &other, &[]).status, 403);
    assert_eq!(curl_put(&c, &c.url(2, "/atlas/new.bin"), Some(&create), &other, &[]).status, 405);
    assert_eq!(c.metric(1, "reef_uploads_total{outcome=\"created\"}"), 1.0);
}

#[test]
fn a_replaceable_namespace_takes_new_versions_from_modify_tokens_only() {
    let issuer = Issuer::start();
    let c = cluster(&issuer);
    let create = issuer.sign("es-1", &issuer.claims("storage.create:/ storage.read:/"));
    let modify = issuer.sign("es-1", &issuer.claims("storage.modify:/ storage.read:/"));
    let url = c.url(1, "/scratch/cal.db");
    let (v1, v2) = (bytes(5000, 3), bytes(7000, 4));
    let (f1, f2) = (write(c.dir.path(), "v1", &v1), write(c.dir.path(), "v2", &v2));
    let first = curl_put(&c, &url, Some(&create), &f1, &[]);
    assert_eq!(first.status, 201);
    let via_cache = c.url(2, "/scratch/cal.db");
    assert_eq!(c.get(&via_cache, &[]).2, v1, "cache 2 holds the first version");
    assert_eq!(curl_put(&c, &url, Some(&create), &f2, &[]).status, 403, "replacing needs storage.modify");
    let second = curl_put(&c, &url, Some(&modify), &f2, &[]);
    assert_eq!(second.status, 201);
    assert_ne!(header(&first.head, "etag"), header(&second.head, "etag"), "a new version has a new ETag");
    let (status, head, body) = c.get(&url, &[]);
    assert_eq!((status, &body), (200, &v2));
    assert_eq!(header(&head, "etag"), header(&second.head, "etag"));
    // The cache serves one version or the other, whole, never a mix of the two.
    for range in ["", "-r", "-r"] {
        let args: Vec<&str> = if range.is_empty() { vec![] } else { vec![range, "4000-5999"] };
        let (_, _, body) = c.get(&via_cache, &args);
        let whole = body == v1 || body == v2;
        let part = body == v1[4000..] || body == v2[4000..6000];
        assert!(whole || part, "a mix of two versions: {} bytes", body.len());
    }

    // Over the namespace's limit: refused before the body.
    let big = write(c.dir.path(), "big", &bytes((1 << 20) + 1, 5));
    let put = curl_put(&c, &c.url(1, "/scratch/big"), Some(&create), &big, &["-H", "Expect: 100-continue"]);
    assert_eq!((put.status, put.uploaded), (413, 0));
}

fn token_file(c: &Cluster, issuer: &Issuer, scope: &str) -> PathBuf {
    let path = c.dir.path().join(format!("token-{}", scope.len()));
    std::fs::write(&path, issuer.sign("es-1", &issuer.claims(scope))).unwrap();
    path
}

fn reef(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reef")).args(args).output().unwrap()
}

/// A large file of pseudo-random bytes, written in pieces (never whole in memory).
fn large_file(path: &Path, size: u64, seed: u64) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = seed | 1;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..size / chunk.len() as u64 {
        for word in chunk.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        out.write_all(&chunk).unwrap();
    }
}

fn sha256_file(path: &Path) -> String {
    reef_node::client::hash_file(path, &std::sync::atomic::AtomicU64::new(0)).unwrap().sha256
}

#[test]
fn reef_put_resumes_a_1_gib_upload_cut_twice_and_it_is_published_once() {
    let issuer = Issuer::start();
    let c = cluster(&issuer);
    let token = token_file(&c, &issuer, "storage.create:/");
    let file = c.dir.path().join("big.bin");
    large_file(&file, 1 << 30, 42);
    // The link breaks twice: at 300 MiB and at 700 MiB of the stream towards the origin.
    let relay = Relay::start(c.port(1), vec![300 << 20, 700 << 20], None);
    let url = format!("https://127.0.0.1:{}/atlas/big/run1.bin", relay.port);
    let ca = c.fed.as_ref().unwrap().join("ca.pem");
    let out = reef(
        &["put", file.to_str().unwrap(), &url, "--ca", ca.to_str().unwrap(), "--json", "--token-file"]
            .into_iter()
            .chain([token.to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "reef put failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(relay.cut.load(std::sync::atomic::Ordering::SeqCst), 2, "the link broke twice");
    let resumed: Vec<u64> = report["resumed_from"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(resumed.len(), 2, "{report}");
    assert!(
        resumed[0] > 0 && resumed[0] <= 300 << 20 && resumed[1] > resumed[0] && resumed[1] <= 700 << 20,
        "{resumed:?}"
    );
    // Resumed, not restarted: what was sent is the file and the little lost at each cut.
    let sent = report["sent"].as_u64().unwrap();
    assert!(sent < (1 << 30) + (64 << 20), "sent {sent} bytes for a 1 GiB file");
    let want = sha256_file(&file);
    assert_eq!(report["sha256"], want.as_str());
    assert_eq!(sha256_file(&c.data().join("big/run1.bin")), want, "the published file");
    assert_eq!(c.metric(1, "reef_uploads_total{outcome=\"created\"}"), 1.0, "published once");
    assert_eq!(staged(&c.data()), Vec::<String>::new());
}

#[test]
fn concurrent_uploads_of_different_names_all_land_intact() {
    let issuer = Issuer::start();
    let c = cluster(&issuer);
    let token = token_file(&c, &issuer, "storage.create:/");
    let ca = c.fed.as_ref().unwrap().join("ca.pem");
    let files: Vec<(PathBuf, Vec<u8>)> = (0..4)
        .map(|i| (write(c.dir.path(), &format!("f{i}"), &bytes((2 << 20) + i, 10 + i as u64)), i))
        .map(|(p, _)| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    std::thread::scope(|s| {
        for (i, (path, _)) in files.iter().enumerate() {
            let url = c.url(1, &format!("/atlas/many/f{i}"));
            let (token, ca) = (token.clone(), ca.clone());
            s.spawn(move || {
                let out = reef(&[
                    "put",
                    path.to_str().unwrap(),
                    &url,
                    "--ca",
                    ca.to_str().unwrap(),
                    "--token-file",
                    token.to_str().unwrap(),
                ]);
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            });
        }
    });
    for (i, (_, data)) in files.iter().enumerate() {
        let (status, _, body) = c.get(&c.url(1, &format!("/atlas/many/f{i}")), &[]);
        assert_eq!((status, sha256_b64(&body)), (200, sha256_b64(data)), "f{i}");
    }
    assert_eq!(c.metric(1, "reef_uploads_total{outcome=\"created\"}"), 4.0);
}

#[test]
fn the_ingest_daemon_survives_a_kill_mid_upload_and_uploads_each_file_once() {
    let issuer = Issuer::start();
    let c = cluster(&issuer);
    let token = token_file(&c, &issuer, "storage.create:/");
    let ca = c.fed.as_ref().unwrap().join("ca.pem");
    let outbox = c.dir.path().join("outbox");
    std::fs::create_dir_all(outbox.join("sub")).unwrap();
    let big = outbox.join("a-big.bin");
    large_file(&big, 64 << 20, 7);
    std::fs::write(outbox.join("sub/small.txt"), b"hello ingest\n").unwrap();
    std::fs::write(outbox.join("taken.bin"), b"mine").unwrap();
    // Another object already has the name `taken.bin`: a permanent refusal.
    c.put("in/taken.bin", b"theirs".to_vec());
    // A slow link (16 MiB/s), so that the kill lands mid-upload.
    let relay = Relay::start(c.port(1), vec![], Some(16 << 20));
    let to = format!("https://127.0.0.1:{}/atlas/in", relay.port);
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let args = |once: bool| {
        let mut a = vec![
            "ingest".to_string(),
            "--watch".into(),
            outbox.display().to_string(),
            "--to".into(),
            to.clone(),
            "--interval".into(),
            "200ms".into(),
            "--settle".into(),
            "0s".into(),
            "--ca".into(),
            ca.display().to_string(),
            "--token-file".into(),
            token.display().to_string(),
            "--metrics".into(),
            metrics.clone(),
        ];
        if once {
            a.push("--once".into());
        }
        a
    };
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_reef")).args(args(false)).stderr(Stdio::null()).spawn().unwrap();
    // The big file goes first (names in order); kill -9 once a quarter of it is staged.
    wait_until("a quarter of the big file is staged", || {
        std::fs::read_dir(c.data().join(".reef-uploads"))
            .map(|d| d.flatten().any(|e| e.metadata().is_ok_and(|m| m.len() >= 16 << 20)))
            .unwrap_or(false)
    });
    let scraped = curl(&["-s", &format!("http://{metrics}/metrics")]);
    assert!(String::from_utf8_lossy(&scraped.stdout).contains("reef_ingest_pending_files 3"));
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert!(!c.data().join("in/a-big.bin").exists(), "killed before the big file was published");

    let out = Command::new(env!("CARGO_BIN_EXE_reef")).args(args(true)).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("set aside: taken.bin"), "{stderr}");
    assert_eq!(sha256_file(&c.data().join("in/a-big.bin")), sha256_file(&big));
    assert_eq!(std::fs::read(c.data().join("in/sub/small.txt")).unwrap(), b"hello ingest\n");
    assert_eq!(std::fs::read(c.data().join("in/taken.bin")).unwrap(), b"theirs", "never overwritten");
    assert_eq!(c.metric(1, "reef_uploads_total{outcome=\"created\"}"), 2.0);
    // Resumed: the origin received the big file about once, not twice.
    let received = c.metric(1, "reef_upload_bytes_total");
    assert!(received < (64 << 20) as f64 * 1.25, "the origin received {received} bytes");

    // The journal: each file settled once; a third run has nothing to do.
    let journal = std::fs::read_to_string(outbox.join(".reef-ingest.jsonl")).unwrap();
    let settled = |file: &str| {
        journal
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["file"] == file && e["event"] != "retry")
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(settled("a-big.bin"), ["uploaded"]);
    assert_eq!(settled("sub/small.txt"), ["uploaded"]);
    assert_eq!(settled("taken.bin"), ["failed"]);
    let out = Command::new(env!("CARGO_BIN_EXE_reef")).args(args(true)).output().unwrap();
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(outbox.join(".reef-ingest.jsonl")).unwrap(), journal, "nothing done again");
    assert_eq!(c.metric(1, "reef_uploads_total{outcome=\"created\"}"), 2.0);
}

#[test]
fn davix_put_uploads_with_a_token() {
    let issuer = Issuer::start();
    let c = cluster(&issuer);
    let token = issuer.sign("es-1", &issuer.claims("storage.create:/"));
    // davix trusts a CA directory in OpenSSL's hashed layout.
    let capath = c.dir.path().join("capath");
    std::fs::create_dir_all(&capath).unwrap();
    std::fs::copy(c.fed.as_ref().unwrap().join("ca.pem"), capath.join("ca.pem")).unwrap();
    let rehash = Command::new("openssl").args(["rehash", capath.to_str().unwrap()]).output().unwrap();
    assert!(rehash.status.success(), "{}", String::from_utf8_lossy(&rehash.stderr));
    let data = bytes((2 << 20) + 3, 9);
    let file = write(c.dir.path(), "davix.bin", &data);
    let url = c.url(1, "/atlas/davix/run.bin");
    let auth = format!("Authorization: Bearer {token}");
    let davix_put = || {
        Command::new("davix-put")
            .args(["--capath", capath.to_str().unwrap(), "-H", &auth, file.to_str().unwrap(), &url])
            .output()
            .expect("davix-put (package davix)")
    };
    let out = davix_put();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(c.data().join("davix/run.bin")).unwrap(), data);
    assert!(!davix_put().status.success(), "write-once: a second upload of the name is refused");
    assert_eq!(std::fs::read(c.data().join("davix/run.bin")).unwrap(), data);
}
