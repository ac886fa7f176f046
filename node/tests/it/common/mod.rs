//! A real cluster of `reef-node` processes on 127.0.0.1 ephemeral ports, driven with curl.
//! Readiness is awaited by polling (bounded), never by sleeping a fixed time.
#![allow(dead_code)] // each test file uses part of the harness

pub mod issuer;
pub mod relay;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Spec {
    pub id: u32,
    pub role: &'static str,
    pub site: &'static str,
    /// For caches: the discovery strategy ("" for none) and its parent cache ids.
    pub strategy: &'static str,
    pub parents: Vec<u32>,
    /// A server the test runs itself on this port instead of a reef-node process.
    pub external: Option<u16>,
    /// Extra lines for the `[node]` section.
    pub node: &'static str,
    /// The `[policy.membership]` section, if not the default probing.
    pub membership: &'static str,
    /// A cache's store directory, if not one in the cluster's directory.
    pub store: Option<PathBuf>,
    /// Extra lines for the `[policy]` section.
    pub policy: &'static str,
}

/// A node of `role` at `site` with every option at its default.
fn spec(id: u32, role: &'static str, site: &'static str) -> Spec {
    Spec {
        id,
        role,
        site,
        strategy: "",
        parents: vec![],
        external: None,
        node: "",
        membership: "",
        store: None,
        policy: "",
    }
}

pub fn origin(id: u32) -> Spec {
    spec(id, "origin", "t0")
}
pub fn cache(id: u32, site: &'static str) -> Spec {
    spec(id, "cache", site)
}
pub fn director(id: u32) -> Spec {
    spec(id, "director", "t0")
}

pub struct Node {
    pub spec: Spec,
    pub port: u16,
    pub config: PathBuf,
    pub child: Option<Child>,
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: BTreeMap<u32, Node>,
    /// With TLS: the federation's certificates (`ca.pem`, `node-<id>.pem`/`.key`).
    pub fed: Option<PathBuf>,
}

/// What a cluster has beyond the default (plain HTTP, one public namespace `atlas`).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Mutual TLS between nodes, TLS for clients; certificates from `reef-node ca`.
    pub tls: bool,
    /// More namespaces: (name, extra keys); each origin exports `data-<name>`.
    pub namespaces: Vec<(&'static str, String)>,
    /// Text added to every node's file (e.g. `[[issuers]]`).
    pub extra: String,
    /// Every peer gets `dns_address = "10.0.0.<id>"` (what a DNS director answers for it).
    pub dns_addresses: bool,
}

/// A free port, and its listener: held until every port of a cluster is picked, so that no
/// two nodes get the same one.
fn free_port() -> (u16, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    (listener.local_addr().unwrap().port(), listener)
}

impl Cluster {
    /// Writes configurations for `specs` (one origin exporting `data/` as namespace `atlas`;
    /// sites `t0`, `site-a` on 127.0.1.0/24 and `site-b` on 127.0.2.0/24) and starts every node.
    pub fn start(specs: &[Spec]) -> Cluster {
        Cluster::start_with(specs, &Options::default())
    }

    pub fn start_with(specs: &[Spec], options: &Options) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let fed = options.tls.then(|| {
            let fed = dir.path().join("fed");
            reef_node_cmd(&["ca", "init", "--dir", path_str(&fed)]);
            for s in specs.iter().filter(|s| s.external.is_none()) {
                let id = s.id.to_string();
                reef_node_cmd(&[
                    "ca",
                    "issue",
                    "--dir",
                    path_str(&fed),
                    "--id",
                    &id,
                    "--host",
                    "127.0.0.1",
                    "--host",
                    "localhost",
                ]);
            }
            fed
        });
        let scheme = if fed.is_some() { "https" } else { "http" };
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let held: Vec<(u32, u16, Option<TcpListener>)> = specs
            .iter()
            .map(|s| match s.external {
                Some(port) => (s.id, port, None),
                None => {
                    let (port, listener) = free_port();
                    (s.id, port, Some(listener))
                }
            })
            .collect();
        let ports: BTreeMap<u32, u16> = held.iter().map(|&(id, port, _)| (id, port)).collect();
        drop(held);
        // Every origin serves the namespace, in the order given.
        let origin_ids: Vec<u32> = specs.iter().filter(|s| s.role == "origin").map(|s| s.id).collect();
        let mut peers = String::new();
        for s in specs {
            peers += &format!(
                "\n[[peers]]\nid = {}\nrole = \"{}\"\nsite = \"{}\"\nurl = \"{scheme}://127.0.0.1:{}\"\n",
                s.id, s.role, s.site, ports[&s.id]
            );
            if options.dns_addresses {
                peers += &format!("dns_address = \"10.0.0.{}\"\n", s.id);
            }
        }
        let mut nodes = BTreeMap::new();
        for s in specs {
            let mut text = format!(
                "[node]\nid = {}\nrole = \"{}\"\nlisten = \"127.0.0.1:{}\"\nsite = \"{}\"\naccess_log = \"n{}/access.log\"\n",
                s.id, s.role, ports[&s.id], s.site, s.id
            );
            if s.role == "cache" {
                let store = s.store.clone().unwrap_or_else(|| PathBuf::from(format!("n{}/store", s.id)));
                text += &format!("store = \"{}\"\ncapacity = \"4GiB\"\n", store.display());
            }
            text += s.node;
            // Idle timeout: transfers that keep moving are never cut.
            text += &format!("\n[policy]\nfetch_timeout = \"3s\"\n{}\n", s.policy);
            if !s.strategy.is_empty() {
                text += &format!("discovery = \"{}\"\n", s.strategy);
            }
            let probe = if s.role == "director" { "100ms" } else { "200ms" };
            let membership = match s.membership {
                "" => format!("probe_interval = \"{probe}\"\n"),
                custom => custom.to_string(),
            };
            text += &format!("\n[policy.membership]\n{membership}");
            if !s.parents.is_empty() {
                text += &format!("\n[discovery]\nparents = {:?}\n", s.parents);
            }
            text += "\n[[sites]]\nname = \"t0\"\nid = 0\nnetworks = [\"127.0.0.1/32\"]\n";
            text += "\n[[sites]]\nname = \"site-a\"\nid = 1\nnetworks = [\"127.0.1.0/24\"]\nprefer = [\"site-b\"]\n";
            text += "\n[[sites]]\nname = \"site-b\"\nid = 2\nnetworks = [\"127.0.2.0/24\"]\nprefer = [\"site-a\"]\n";
            text += &format!("\n[[namespaces]]\nname = \"atlas\"\norigins = {origin_ids:?}\n");
            if s.role == "origin" {
                text += "export = \"data\"\n";
            }
            for (name, keys) in &options.namespaces {
                if keys.contains("origin_url") {
                    // In front of a third-party origin: no Reef origin, no export.
                    text += &format!("\n[[namespaces]]\nname = \"{name}\"\n{keys}\n");
                    continue;
                }
                text += &format!("\n[[namespaces]]\nname = \"{name}\"\norigins = {origin_ids:?}\n{keys}\n");
                if s.role == "origin" {
                    std::fs::create_dir_all(dir.path().join(format!("data-{name}"))).unwrap();
                    text += &format!("export = \"data-{name}\"\n");
                }
            }
            if let Some(fed) = &fed {
                text += &format!(
                    "\n[tls]\nca = \"{0}/ca.pem\"\ncert = \"{0}/node-{1}.pem\"\nkey = \"{0}/node-{1}.key\"\n",
                    fed.display(),
                    s.id
                );
            }
            text += &options.extra;
            text += &peers;
            let config = dir.path().join(format!("n{}.toml", s.id));
            std::fs::write(&config, text).unwrap();
            nodes.insert(s.id, Node { spec: s.clone(), port: ports[&s.id], config, child: None });
        }
        let mut cluster = Cluster { dir, nodes, fed };
        let ids: Vec<u32> = cluster.nodes.keys().copied().collect();
        for id in ids {
            cluster.launch(id);
        }
        cluster
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Writes an object into the origin's export; returns its bytes.
    pub fn put(&self, name: &str, bytes: Vec<u8>) -> Vec<u8> {
        let path = self.data().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &bytes).unwrap();
        bytes
    }

    pub fn port(&self, id: u32) -> u16 {
        self.nodes[&id].port
    }

    pub fn url(&self, id: u32, path: &str) -> String {
        let scheme = if self.fed.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.nodes[&id].port)
    }

    /// Writes an object into a namespace's export at the origin (see `Options::namespaces`).
    pub fn put_in(&self, namespace: &str, name: &str, bytes: Vec<u8>) -> Vec<u8> {
        let path = self.dir.path().join(format!("data-{namespace}")).join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &bytes).unwrap();
        bytes
    }

    /// curl options to trust the federation's CA (none without TLS).
    pub fn trust(&self) -> Vec<String> {
        match &self.fed {
            Some(fed) => vec!["--cacert".into(), fed.join("ca.pem").display().to_string()],
            None => vec![],
        }
    }

    /// curl options presenting node `id`'s certificate (as that node would).
    pub fn as_node(&self, id: u32) -> Vec<String> {
        let fed = self.fed.as_ref().expect("a TLS cluster");
        let mut opts = self.trust();
        opts.extend([
            "--cert".into(),
            fed.join(format!("node-{id}.pem")).display().to_string(),
            "--key".into(),
            fed.join(format!("node-{id}.key")).display().to_string(),
        ]);
        opts
    }

    /// GET with curl, trusting the federation's CA.
    pub fn get(&self, url: &str, extra: &[&str]) -> (u16, String, Vec<u8>) {
        let mut args: Vec<&str> = Vec::new();
        let trust = self.trust();
        args.extend(trust.iter().map(String::as_str));
        args.extend_from_slice(extra);
        get(url, &args)
    }

    pub fn log(&self, id: u32) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("n{id}.log"))).unwrap_or_default()
    }

    pub fn launch(&mut self, id: u32) {
        let node = self.nodes.get_mut(&id).unwrap();
        if node.spec.external.is_some() {
            return;
        }
        let log = std::fs::File::create(self.dir.path().join(format!("n{id}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_reef-node"))
            .arg("--config")
            .arg(&node.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        node.child = Some(child);
        let port = node.port;
        if self.fed.is_some() {
            let url = self.url(id, "/healthz");
            let trust = self.trust();
            wait_until(&format!("node {id} answers /healthz"), || {
                let mut args = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}"];
                args.extend(trust.iter().map(String::as_str));
                args.push(&url);
                curl(&args).stdout == b"200"
            });
            return;
        }
        wait_until(&format!("node {id} answers /healthz"), || {
            http_status(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == Some(200)
        });
    }

    /// Kills a node abruptly (SIGKILL: no chance to tidy up, like a crash).
    pub fn kill(&mut self, id: u32) {
        if let Some(mut child) = self.nodes.get_mut(&id).unwrap().child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// A counter from a node's /metrics (0 when absent).
    pub fn metric(&self, id: u32, series: &str) -> f64 {
        let url = self.url(id, "/metrics");
        let mut args = vec!["-s"];
        let trust = self.trust();
        args.extend(trust.iter().map(String::as_str));
        args.push(&url);
        let out = curl(&args);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    /// How many GETs the origin has served.
    pub fn origin_served(&self, origin: u32) -> f64 {
        self.metric(origin, "reef_requests_total{role=\"origin\",outcome=\"served\"}")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Polls `cond` until it holds; panics after a generous bound.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pause = Duration::from_millis(5);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(pause); // polling interval, not synchronisation
        pause = (pause * 2).min(Duration::from_millis(200));
    }
    panic!("timed out waiting until {what}");
}

/// Sends raw bytes and returns the response status, if one came back.
pub fn http_status(port: u16, raw: &str) -> Option<u16> {
    raw_request(port, raw.as_bytes()).and_then(|resp| {
        let text = String::from_utf8_lossy(&resp).to_string();
        text.split_whitespace().nth(1)?.parse().ok()
    })
}

pub fn raw_request(port: u16, raw: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    // The server may answer and close before reading everything we send.
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (!out.is_empty()).then_some(out)
}

/// Runs the reef-node binary to completion (e.g. `ca init`); panics with its stderr on failure.
pub fn reef_node_cmd(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_reef-node")).args(args).output().unwrap();
    assert!(out.status.success(), "reef-node {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

pub fn curl(args: &[&str]) -> Output {
    Command::new("curl").args(args).output().expect("curl is installed (.ci/packages)")
}

/// GET with curl: (status, headers as lowercase text, body).
pub fn get(url: &str, extra: &[&str]) -> (u16, String, Vec<u8>) {
    let (ok, response) = get_with(url, extra);
    assert!(ok, "curl {url} failed");
    response
}

/// GET with curl that may end early (an aborted body): what arrived, and status 0 if nothing.
pub fn get_lenient(url: &str) -> (u16, String, Vec<u8>) {
    get_with(url, &[]).1
}

fn get_with(url: &str, extra: &[&str]) -> (bool, (u16, String, Vec<u8>)) {
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("h");
    let body = dir.path().join("b");
    let mut args = vec!["-s", "-D", headers.to_str().unwrap(), "-o", body.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(url);
    let out = curl(&args);
    // Header names are case-insensitive: lowercase them, keep the values as sent.
    let head: String = std::fs::read_to_string(headers)
        .unwrap()
        .split_inclusive('\n')
        .map(|line| match line.split_once(':') {
            Some((name, value)) if !line.starts_with("HTTP/") => format!("{}:{value}", name.to_lowercase()),
            _ => line.to_lowercase(),
        })
        .collect();
    // With redirects followed, keep the last response's head.
    let last = head.rsplit("\r\n\r\n").find(|h| h.starts_with("http/")).unwrap_or(&head).to_string();
    let status = last.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (out.status.success(), (status, last, std::fs::read(body).unwrap_or_default()))
}

pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).map(str::trim)
}

/// How `got` differs from `want`, for a failure message: its length, and where the first
/// wrong byte is and what the bytes there look like (zeros mean a hole).
pub fn difference(got: &[u8], want: &[u8]) -> String {
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    let wrong = match first {
        Some(i) => {
            let end = (i + 16).min(got.len());
            let zeros = got[i..].iter().take_while(|&&b| b == 0).count();
            format!("first wrong byte at {i} (got {:02x?}, then {zeros} zero bytes)", &got[i..end])
        }
        None => "no wrong byte".into(),
    };
    format!("{} of {} bytes; {wrong}", got.len(), want.len())
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn sha256_b64(data: &[u8]) -> String {
    let mut h = reef_node::http::digest::Hasher::default();
    h.update(data);
    h.finish().sha256
}

pub fn adler32_hex(data: &[u8]) -> String {
    let mut h = reef_node::http::digest::Hasher::default();
    h.update(data);
    format!("{:08x}", h.finish().adler32)
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A minimal HTTP/1.1 server for upstreams that misbehave on purpose. `respond` gets the
/// request head (lowercased lines) and the stream; it returns false to drop the connection.
/// POSTs (control messages) are acknowledged with 204. Returns the port.
pub fn fake_server(respond: impl Fn(&[String], &mut TcpStream) -> bool + Send + Sync + 'static) -> u16 {
    use std::io::BufRead;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let respond = std::sync::Arc::new(respond);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let respond = respond.clone();
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut head = Vec::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push(line.trim_end().to_lowercase());
                    }
                    if head[0].starts_with("post") {
                        let len: usize = head
                            .iter()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        let mut body = vec![0; len];
                        reader.read_exact(&mut body).unwrap();
                        let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
                        continue;
                    }
                    if !respond(&head, &mut stream) {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// For a fake origin: answers a block-list request (`GET /.reef/v1/blocks/...`) with the list
/// of `body` and ETag `"v1"`; returns false for any other request.
pub fn answer_block_list(head: &[String], stream: &mut TcpStream, body: &[u8]) -> bool {
    if !head[0].starts_with("get /.reef/v1/blocks/") {
        return false;
    }
    let list = reef_node::blocks::BlockList::of_bytes(body, 1 << 20).encode();
    let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"v1\"\r\n\r\n", list.len());
    let _ = stream.write_all(&list);
    true
}
