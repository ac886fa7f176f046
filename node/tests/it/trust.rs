//! Trust between nodes and with users, on a real cluster with real TLS (certificates from
//! `reef-node ca`) and real tokens from a test issuer: every way an outsider or a wrong peer
//! could speak for a node is refused, and private objects reach only holders of a token that
//! grants them. The decision rules themselves are tested in core/tests/it/access.rs.

use crate::common;

use crate::common::issuer::{Issuer, now};
use crate::common::{Cluster, Options, Spec, bytes, cache, curl, director, origin, wait_until};
use serde_json::json;

/// Origin 1, caches 2 (site-a) and 3 (site-b), director 9; namespace `atlas` public, `cms`
/// private to the test issuer's tokens, fetched from the origin by cache 2 and the director
/// only (cache 3 is not allowed).
fn cluster(issuer: &Issuer, issuer_extra: &str) -> Cluster {
    let specs: Vec<Spec> = vec![origin(1), cache(2, "site-a"), cache(3, "site-b"), director(9)];
    let options = Options {
        tls: true,
        namespaces: vec![("cms", "private = true\nnodes = [2, 9]\n".into())],
        extra: issuer.config(issuer_extra),
        ..Options::default()
    };
    Cluster::start_with(&specs, &options)
}

/// curl with a bearer token (and the federation's CA): (status, head, body).
fn get_with_token(c: &Cluster, url: &str, token: Option<&str>, extra: &[&str]) -> (u16, String, Vec<u8>) {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut args: Vec<&str> = extra.to_vec();
    if let Some(a) = &auth {
        args.extend(["-H", a.as_str()]);
    }
    c.get(url, &args)
}

fn post_message(c: &Cluster, to: u32, identity: &[String], claimed: u32) -> (u16, String) {
    let url = c.url(to, "/.reef/v1/message");
    let claimed = format!("Reef-Peer: {claimed}");
    let mut args: Vec<&str> = vec!["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"];
    args.extend(identity.iter().map(String::as_str));
    args.extend([
        "-H",
        &claimed,
        "-H",
        "Content-Type: application/json",
        "--data",
        r#"{"Ping":{"seq":1,"gossip":[]}}"#,
        &url,
    ]);
    let out = curl(&args);
    (String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn only_a_node_holding_its_certificate_speaks_for_it() {
    let issuer = Issuer::start();
    let c = cluster(&issuer, "");
    let fed = c.fed.clone().unwrap();

    // No certificate at all: a header alone names nobody.
    let (status, err) = post_message(&c, 2, &c.trust(), 3);
    assert_eq!(status, 403, "{err}");
    wait_until("cache 2 logs the refusal", || c.log(2).contains("refused a node request without a node certificate"));

    // Node 1's certificate, claiming to be node 3.
    let (status, _) = post_message(&c, 2, &c.as_node(1), 3);
    assert_eq!(status, 403);
    wait_until("cache 2 logs the mismatch", || c.log(2).contains("the header names another node than the certificate"));

    // A certificate naming node 3 from another CA does not even get a TLS session.
    let rogue = c.dir.path().join("rogue");
    common::reef_node_cmd(&["ca", "init", "--dir", rogue.to_str().unwrap()]);
    common::reef_node_cmd(&["ca", "issue", "--dir", rogue.to_str().unwrap(), "--id", "3", "--host", "127.0.0.1"]);
    let rogue_identity: Vec<String> = vec![
        "--cacert".into(),
        fed.join("ca.pem").display().to_string(),
        "--cert".into(),
        rogue.join("node-3.pem").display().to_string(),
        "--key".into(),
        rogue.join("node-3.key").display().to_string(),
    ];
    let (status, _) = post_message(&c, 2, &rogue_identity, 3);
    assert_eq!(status, 0, "no HTTP answer to a certificate of another CA");

    // A peer fetch (only-if-cached, no cascade) without the node's certificate.
    c.put("a.bin", bytes(1000, 1));
    let (status, _, body) = c.get(&c.url(2, "/atlas/a.bin"), &["-H", "Reef-Peer: 3"]);
    assert_eq!(status, 403);
    assert!(body.len() < 200);

    // The real node 3, as itself: accepted.
    let (status, _) = post_message(&c, 2, &c.as_node(3), 3);
    assert_eq!(status, 204);
    assert!(c.metric(2, "reef_node_requests_refused_total{reason=\"identity\"}") >= 3.0);
}

#[test]
fn tls_serves_users_over_http2_and_http1() {
    let issuer = Issuer::start();
    let c = cluster(&issuer, "");
    let body = c.put("h.bin", bytes(50_000, 2));
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let url = c.url(2, "/atlas/h.bin");
        let mut args = vec!["-s", "-o", "/dev/null", "-w", "%{http_version} %{http_code} %{size_download}", flag];
        let trust = c.trust();
        args.extend(trust.iter().map(String::as_str));
        args.push(&url);
        let out = curl(&args);
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{version} 200 {}", body.len()));
    }
    // Plain HTTP on the TLS port is not served.
    let plain = c.url(2, "/atlas/h.bin").replace("https://", "http://");
    let out = curl(&["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", &plain]);
    assert_ne!(String::from_utf8_lossy(&out.stdout), "200");
}

/// Every bad token × every way of reading, at a cache, the director and the origin: refused
/// with 401/403 and a reason, not one byte of the object; good tokens read it.
#[test]
fn a_matrix_of_tokens_reads_exactly_what_it_should() {
    let issuer = Issuer::start();
    let c = cluster(&issuer, "");
    let secret = c.put_in("cms", "foobar/secret.bin", bytes(300_000, 3));
    let public = c.put("open.bin", bytes(10_000, 4));

    let good = issuer.claims("storage.read:/");
    let mut bad: Vec<(&str, String, u16)> = Vec::new();
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = issuer.claims("storage.read:/");
        f(&mut claims);
        claims
    };
    bad.push(("expired", issuer.sign("es-1", &with(&|c| c["exp"] = json!(now() - 1))), 401));
    bad.push(("future nbf", issuer.sign("es-1", &with(&|c| c["nbf"] = json!(now() + 300))), 401));
    bad.push(("wrong aud", issuer.sign("es-1", &with(&|c| c["aud"] = json!("reef2"))), 401));
    bad.push(("wrong iss", issuer.sign("es-1", &with(&|c| c["iss"] = json!("https://elsewhere.example"))), 401));
    bad.push(("unknown kid", issuer.sign_unpublished("es-9", &good), 401));
    bad.push(("forged with a published kid", issuer.sign_unpublished("es-1", &good), 401));
    bad.push(("HS256", issuer.sign_hs256(&good), 401));
    bad.push(("none", issuer.unsigned(&good), 401));
    bad.push(("/foo against /foobar", issuer.sign("es-1", &issuer.claims("storage.read:/foo")), 403));
    // A storage.* word without a path grants nothing: the token is valid, the scope absent.
    bad.push(("storage.read without a path", issuer.sign("es-1", &issuer.claims("storage.read")), 403));
    bad.push(("no token", String::new(), 401));

    let object = "/cms/foobar/secret.bin";
    let good_es = issuer.sign("es-1", &good);
    let good_rs = issuer.sign("rs-1", &good);
    let scoped = issuer.sign("es-1", &issuer.claims("storage.read:/foobar"));

    // A miss at cache 2 with a good token (ES256) fills it; then the bad tokens against the
    // miss path at the origin and the director, and the hit path at cache 2.
    let ways: [(&str, &[&str]); 3] = [("GET", &[]), ("HEAD", &["-I"]), ("range", &["-r", "100-199"])];
    let (status, _, body) = get_with_token(&c, &c.url(2, object), Some(&good_es), &[]);
    assert_eq!((status, body == secret), (200, true));
    for (name, token, want) in &bad {
        for node in [2, 9, 1] {
            for (way, args) in ways {
                let token = (!token.is_empty()).then_some(token.as_str());
                let (status, head, body) = get_with_token(&c, &c.url(node, object), token, args);
                assert_eq!(status, *want, "{name}, {way} at node {node}");
                assert!(!head.contains("content-length: 300000"), "{name}, {way} at node {node}: size revealed");
                assert!(!leaks(&body, &secret), "{name}, {way} at node {node}: {}", String::from_utf8_lossy(&body));
                assert!(head.contains("www-authenticate: Bearer") || *want == 403, "{name}: {head}");
            }
        }
    }
    // Good tokens: RS256 too, a scope for exactly the directory, at every node and every way.
    for token in [&good_es, &good_rs, &scoped] {
        let (status, _, body) = get_with_token(&c, &c.url(2, object), Some(token), &["-r", "100-199"]);
        assert_eq!((status, body.as_slice()), (206, &secret[100..200]));
        let (status, _, body) = get_with_token(&c, &c.url(1, object), Some(token), &[]);
        assert_eq!((status, body == secret), (200, true));
        let (status, head, _) = get_with_token(&c, &c.url(9, object), Some(token), &[]);
        assert_eq!(status, 302, "{head}");
        // The redirect is followed with the token (curl sends it on only when trusted).
        let (status, _, body) = get_with_token(&c, &c.url(9, object), Some(token), &["-L", "--location-trusted"]);
        assert_eq!((status, body == secret), (200, true));
    }
    // Public namespaces: no token needed, a bad one ignored.
    let (status, _, body) = c.get(&c.url(2, "/atlas/open.bin"), &[]);
    assert_eq!((status, body == public), (200, true));
    let (status, _, _) = get_with_token(&c, &c.url(2, "/atlas/open.bin"), Some("garbage"), &[]);
    assert_eq!(status, 200);

    // Cache 3 may not fetch `cms` from the origin: a good token still gets 403 there, and
    // the origin says why.
    let (status, _, body) = get_with_token(&c, &c.url(3, object), Some(&good_es), &[]);
    assert_eq!(status, 403);
    assert!(!leaks(&body, &secret));
    wait_until("the origin counts the refused node", || {
        c.metric(1, "reef_requests_denied_total{reason=\"node_not_allowed\"}") >= 1.0
    });
    // A peer fetch of the private object from cache 2, as node 3 (authenticated): refused.
    let mut as_3 = c.as_node(3);
    as_3.extend(["-H".into(), "Reef-Peer: 3".into()]);
    let args: Vec<&str> = as_3.iter().map(String::as_str).collect();
    let (status, _, _) = common::get(&c.url(2, object), &args[..]);
    assert_eq!(status, 403);

    // No token, no Authorization value ever reaches a log or a metric.
    let mut tokens: Vec<&str> = bad.iter().map(|b| b.1.as_str()).filter(|t| !t.is_empty()).collect();
    tokens.extend([good_es.as_str(), good_rs.as_str(), scoped.as_str()]);
    for id in [1, 2, 3, 9] {
        let log =
            c.log(id) + &std::fs::read_to_string(c.dir.path().join(format!("n{id}/access.log"))).unwrap_or_default();
        let (_, _, metrics) = c.get(&c.url(id, "/metrics"), &[]);
        let metrics = String::from_utf8_lossy(&metrics).to_string();
        for t in &tokens {
            let sig = t.rsplit('.').next().unwrap();
            let needle = if sig.len() > 8 { sig } else { t };
            assert!(!log.contains(needle) && !metrics.contains(needle), "a token reached node {id}'s log or metrics");
        }
    }
}

/// Whether `body` carries any 16 bytes of `secret` (an error text is short: only its
/// windows are compared).
fn leaks(body: &[u8], secret: &[u8]) -> bool {
    let windows: std::collections::HashSet<&[u8]> = body.windows(16).collect();
    body.len() >= 1000 || secret.windows(16).any(|w| windows.contains(w))
}

/// Waiters coalesced on one fill are each checked: a bad token waiting on a fill that a good
/// token started gets nothing.
#[test]
fn a_coalesced_waiter_is_checked_too() {
    let issuer = Issuer::start();
    let c = cluster(&issuer, "");
    let big = c.put_in("cms", "big.bin", bytes(40 << 20, 5));
    let good = issuer.sign("es-1", &issuer.claims("storage.read:/"));
    let expired = issuer.sign("es-1", &{
        let mut claims = issuer.claims("storage.read:/");
        claims["exp"] = json!(now() - 1);
        claims
    });
    let url = c.url(2, "/cms/big.bin");
    std::thread::scope(|s| {
        let first = s.spawn(|| get_with_token(&c, &url, Some(&good), &["--limit-rate", "20M"]));
        wait_until("the fill is under way", || {
            c.metric(2, "reef_fetches_total{source=\"origin\"}") >= 1.0 || first.is_finished()
        });
        let (status, _, body) = get_with_token(&c, &url, Some(&expired), &[]);
        assert_eq!(status, 401);
        assert!(body.len() < 200);
        let (status, _, body) = get_with_token(&c, &url, None, &[]);
        assert_eq!(status, 401);
        assert!(body.len() < 200);
        let (status, _, body) = first.join().unwrap();
        assert_eq!((status, body.len(), body == big), (200, big.len(), true));
    });
}

/// A token used every 200 ms is refused within a second after its `exp`, on the hit path
/// (where a memoised decision would be tempting).
#[test]
fn a_token_is_refused_within_a_second_after_exp() {
    let issuer = Issuer::start();
    let c = cluster(&issuer, "");
    let secret = c.put_in("cms", "s.bin", bytes(1000, 6));
    let exp = now() + 3;
    let mut claims = issuer.claims("storage.read:/");
    claims["exp"] = json!(exp);
    let token = issuer.sign("es-1", &claims);
    let url = c.url(2, "/cms/s.bin");
    let start = std::time::Instant::now();
    let refused_at = loop {
        assert!(start.elapsed() < std::time::Duration::from_secs(15), "never refused");
        let (status, _, body) = get_with_token(&c, &url, Some(&token), &[]);
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        match status {
            200 => {
                assert_eq!(body, secret);
                assert!(t < exp as f64 + 0.05, "served at {t}, after exp {exp}");
            }
            401 => break t,
            other => panic!("unexpected {other}"),
        }
        std::thread::sleep(std::time::Duration::from_millis(200)); // the client's pace
    };
    assert!(refused_at < exp as f64 + 1.0, "refused only at {refused_at}, exp {exp}");
}

/// Keys: a rotation is picked up by one refetch; an unknown `kid` flood does not hammer the
/// issuer; with the issuer down, the last keys serve for the grace, then every token is
/// refused (fail closed).
#[test]
fn issuer_keys_rotate_and_fail_closed() {
    let issuer = Issuer::start();
    let c = cluster(&issuer, "refresh = \"2s\"\ngrace = \"2s\"\nrefetch = \"1s\"\n");
    let secret = c.put_in("cms", "k.bin", bytes(1000, 7));
    let url = c.url(2, "/cms/k.bin");
    let read = |token: &str| get_with_token(&c, &url, Some(token), &[]).0;
    let first = issuer.sign("es-1", &issuer.claims("storage.read:/"));
    assert_eq!(read(&first), 200);

    // A flood of unknown kids: refused, and at most about one fetch per `refetch`.
    let before = issuer.fetches.load(std::sync::atomic::Ordering::SeqCst);
    let t0 = std::time::Instant::now();
    for i in 0..30 {
        let forged = issuer.sign_unpublished(&format!("x-{i}"), &issuer.claims("storage.read:/"));
        assert_eq!(read(&forged), 401);
    }
    let fetched = issuer.fetches.load(std::sync::atomic::Ordering::SeqCst) - before;
    let allowed = 2 + t0.elapsed().as_secs() as usize * 2;
    assert!(fetched <= allowed, "{fetched} key fetches for 30 unknown kids in {:?}", t0.elapsed());

    // Rotation: a new key is found by a refetch.
    issuer.add_key("es-2", jsonwebtoken::Algorithm::ES256);
    let rotated = issuer.sign("es-2", &issuer.claims("storage.read:/"));
    wait_until("the rotated key is accepted", || read(&rotated) == 200);

    // The issuer goes down: new tokens under known keys work within refresh + grace, then
    // fail closed.
    issuer.up.store(false, std::sync::atomic::Ordering::SeqCst);
    let fresh = || issuer.sign("es-1", &issuer.claims("storage.read:/"));
    assert_eq!(read(&fresh()), 200, "within the grace");
    wait_until("tokens are refused once the grace is over", || read(&fresh()) == 401);
    assert!(c.log(2).contains("cannot fetch the issuer's keys"), "the refusal follows failed fetches");
    // Back up: accepted again.
    issuer.up.store(true, std::sync::atomic::Ordering::SeqCst);
    wait_until("the issuer's keys are fetched again", || read(&fresh()) == 200);
    let (_, _, body) = get_with_token(&c, &url, Some(&fresh()), &[]);
    assert_eq!(body, secret);
}

/// `SIGHUP` reloads the certificate: new connections see the new one, without a restart.
#[test]
fn a_renewed_certificate_is_picked_up_on_sighup() {
    let issuer = Issuer::start();
    let c = cluster(&issuer, "");
    let fed = c.fed.clone().unwrap();
    let serial = || {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl s_client -connect 127.0.0.1:{} -CAfile {}/ca.pem </dev/null 2>/dev/null | openssl x509 -noout -serial",
                c.port(2),
                fed.display()
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let old = serial();
    assert!(old.starts_with("serial="), "{old}");
    // Renew: a new certificate for node 2 from the same CA, moved into place.
    let renew = c.dir.path().join("renew");
    std::fs::create_dir_all(&renew).unwrap();
    for f in ["ca.pem", "ca.key"] {
        std::fs::copy(fed.join(f), renew.join(f)).unwrap();
    }
    common::reef_node_cmd(&["ca", "issue", "--dir", renew.to_str().unwrap(), "--id", "2", "--host", "127.0.0.1"]);
    for f in ["node-2.pem", "node-2.key"] {
        std::fs::rename(renew.join(f), fed.join(f)).unwrap();
    }
    let pid = c.nodes[&2].child.as_ref().unwrap().id();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap().success());
    wait_until("the new certificate is served", || {
        let now = serial();
        now.starts_with("serial=") && now != old
    });
    // The node still works, as node 2, for its peers and users.
    c.put("r.bin", bytes(5000, 8));
    let (status, _, _) = c.get(&c.url(2, "/atlas/r.bin"), &[]);
    assert_eq!(status, 200);
}

/// With the origin down, a cache takes an object from a peer only with the origin's seal on
/// its block list: a good seal serves the right bytes, a tampered one serves nothing.
#[test]
fn a_peer_copy_is_taken_only_under_the_origins_seal() {
    let issuer = Issuer::start();
    let child = Spec { strategy: "parent", parents: vec![11], ..cache(12, "site-a") };
    let options = Options { tls: true, extra: issuer.config(""), ..Options::default() };
    let mut c = Cluster::start_with(&[origin(1), cache(11, "site-a"), child], &options);
    let a = c.put("a.bin", bytes(2 << 20, 11));
    let b = c.put("b.bin", bytes(2 << 20, 12));
    for name in ["a.bin", "b.bin"] {
        let (status, _, _) = c.get(&c.url(11, &format!("/atlas/{name}")), &[]);
        assert_eq!(status, 200);
    }
    let objects = c.dir.path().join("n11/store/objects");
    wait_until("both objects are on disk", || std::fs::read_dir(&objects).unwrap().count() == 4);
    c.kill(1);

    // A good seal: the child takes b from its parent and serves the origin's bytes.
    let (status, head, body) = c.get(&c.url(12, "/atlas/b.bin"), &[]);
    assert_eq!(status, 200);
    assert!(body == b);
    assert!(common::header(&head, "cache-status").unwrap().contains("detail=peer-n11"), "{head}");

    // The parent's copy of a gets a tampered seal (as a compromised cache could send).
    c.kill(11);
    let mut tampered = 0;
    for entry in std::fs::read_dir(&objects).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let Ok(mut meta) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        if meta["path"] != "a.bin" {
            continue;
        }
        let seal = meta["seal"].as_str().expect("the parent kept the origin's seal").to_string();
        let mut parts: Vec<String> = seal.split(' ').map(str::to_string).collect();
        // Another signature of the right length: the first bytes changed.
        let sig = &mut parts[3];
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        sig.replace_range(0..1, flipped);
        meta["seal"] = json!(parts.join(" "));
        std::fs::write(&path, meta.to_string()).unwrap();
        tampered += 1;
    }
    assert_eq!(tampered, 1);
    c.launch(11);
    let (status, _, body) = c.get(&c.url(12, "/atlas/a.bin"), &[]);
    assert_ne!(status, 200);
    assert!(!leaks(&body, &a));
    wait_until("the child logs the bad seal", || c.log(12).contains("a block list's seal does not hold"));
}

/// A cache configured with a private namespace as public refuses it (fail closed) instead of
/// serving the origin's private bytes to anyone, and says why.
#[test]
fn a_cache_that_thinks_a_private_namespace_public_refuses_it() {
    let issuer = Issuer::start();
    let mut c = cluster(&issuer, "");
    let secret = c.put_in("cms", "x.bin", bytes(5000, 9));
    let config = c.nodes[&2].config.clone();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("private = true\n", "")).unwrap();
    c.kill(2);
    c.launch(2);
    let (status, _, body) = c.get(&c.url(2, "/cms/x.bin"), &[]);
    assert_eq!(status, 403);
    assert!(!leaks(&body, &secret));
    wait_until("the cache says why", || c.log(2).contains("private upstream but public here"));
}
