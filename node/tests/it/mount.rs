//! `reef mount`: a namespace as a read-only file system, on a real cluster, read with real
//! tools (`cat`, `cp`, `md5sum`, `dd`, Python). Needs `/dev/fuse` and root: skipped with a
//! message elsewhere, never in CI (where both are there).

use crate::common;

use crate::common::{Cluster, bytes, cache, curl, director, origin, sha256_b64, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Whether this machine can mount; in CI it must.
fn can_mount() -> bool {
    let root = rustix::process::geteuid().is_root();
    let ok = Path::new("/dev/fuse").exists() && root;
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI must run the mount tests: /dev/fuse and root are needed");
        eprintln!("skipped: mounting needs /dev/fuse and root");
    }
    ok
}

/// A running `reef mount`, unmounted (SIGTERM, then a lazy unmount) when dropped.
struct Mounted {
    child: Option<Child>,
    dir: PathBuf,
    log: PathBuf,
}

impl Mounted {
    fn start(c: &Cluster, via: &[u32], cache_dir: &Path) -> Mounted {
        let dir = c.dir.path().join("mnt");
        std::fs::create_dir_all(&dir).unwrap();
        let log = c.dir.path().join("mount.log");
        let mut args = vec![
            "mount".to_string(),
            "atlas".into(),
            dir.display().to_string(),
            "--origin".into(),
            c.url(1, ""),
            "--cache-dir".into(),
            cache_dir.display().to_string(),
            "--listing-ttl".into(),
            "1s".into(),
            "--timeout".into(),
            "3s".into(),
            "--readahead".into(),
            "4".into(),
        ];
        for id in via {
            args.extend(["--via".into(), c.url(*id, "")]);
        }
        let child = Command::new(env!("CARGO_BIN_EXE_reef"))
            .args(&args)
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let m = Mounted { child: Some(child), dir, log };
        wait_until("the namespace is mounted", || {
            std::fs::read_to_string("/proc/mounts").unwrap().contains(&m.dir.display().to_string())
        });
        m
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ =
                rustix::process::kill_process(rustix::process::Pid::from_child(&child), rustix::process::Signal::TERM);
            let _ = child.wait();
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        self.stop();
        if std::fs::read_to_string("/proc/mounts").unwrap_or_default().contains(&self.dir.display().to_string()) {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

fn run(cmd: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn a_mounted_namespace_lists_reads_fails_over_and_works_offline() {
    if !can_mount() {
        return;
    }
    let mut c = Cluster::start(&[origin(1), cache(2, "site-a"), cache(3, "site-a"), director(9)]);
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("hello.txt", b"hello, mount\n".to_vec()),
        ("empty", Vec::new()),
        ("name with space.txt", bytes(777, 1)),
        ("data/one.bin", bytes((3 << 20) + 12_345, 2)),
        ("data/deep/two.bin", bytes(1 << 20, 3)),
        ("big.bin", bytes(24 << 20, 4)),
    ];
    for (name, data) in &files {
        c.put(name, data.clone());
    }
    let cache_dir = c.dir.path().join("blocks");
    // Reads go through the director (which redirects to a cache), then to the caches directly.
    let mut m = Mounted::start(&c, &[9, 2, 3], &cache_dir);

    // Listings and attributes come from the origin's export.
    let mut root: Vec<String> =
        std::fs::read_dir(&m.dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    root.sort();
    assert_eq!(root, ["big.bin", "data", "empty", "hello.txt", "name with space.txt"]);
    for (name, data) in &files {
        let md = std::fs::metadata(m.path(name)).unwrap();
        let origin_md = std::fs::metadata(c.data().join(name)).unwrap();
        assert_eq!(md.len(), data.len() as u64, "{name}");
        assert!(md.is_file());
        assert_eq!(
            md.modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            origin_md.modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            "{name}"
        );
    }
    assert!(std::fs::metadata(m.path("data/deep")).unwrap().is_dir());
    assert!(std::fs::metadata(m.path("nothing-here")).is_err());
    let ls = String::from_utf8(run("ls", &["-l", m.path("data").to_str().unwrap()])).unwrap();
    assert!(ls.contains(&format!("{} ", (3 << 20) + 12_345)) && ls.contains("one.bin"), "{ls}");
    assert_eq!(run("cat", &[m.path("hello.txt").to_str().unwrap()]), b"hello, mount\n");

    let served = |c: &Cluster, id| c.metric(id, "reef_requests_total{role=\"cache\",outcome=\"miss\"}");
    let (first, other) = if served(&c, 2) > 0.0 { (2, 3) } else { (3, 2) };
    assert_eq!((served(&c, first), served(&c, other)), (1.0, 0.0), "the director sent the first read to one cache");
    // That cache dies: reads go on through the other one (the director's next pick, or directly).
    c.kill(first);
    for (name, data) in &files {
        let got = std::fs::read(m.path(name)).unwrap();
        assert_eq!(sha256_b64(&got), sha256_b64(data), "{name}: {}", common::difference(&got, data));
    }
    let copy = c.dir.path().join("copy.bin");
    run("cp", &[m.path("big.bin").to_str().unwrap(), copy.to_str().unwrap()]);
    assert_eq!(std::fs::read(&copy).unwrap(), files[5].1);
    let md5 = |p: &Path| String::from_utf8(run("md5sum", &[p.to_str().unwrap()])).unwrap()[..32].to_string();
    assert_eq!(md5(&m.path("data/one.bin")), md5(&c.data().join("data/one.bin")));
    let dd = run("dd", &[&format!("if={}", m.path("big.bin").display()), "bs=1M", "skip=5", "count=3", "status=none"]);
    assert_eq!(dd, files[5].1[5 << 20..8 << 20]);
    assert!(served(&c, other) > 0.0, "the other cache served");

    // Random reads from Python: each (offset, length, sha-256) checked against the original.
    let script = "import base64, hashlib, os, random, sys\n\
        r = random.Random(7); f = open(sys.argv[1], 'rb'); size = os.fstat(f.fileno()).st_size\n\
        for _ in range(64):\n\
        \x20   off = r.randrange(size); n = r.randrange(1, 300000); f.seek(off); d = f.read(n)\n\
        \x20   print(off, len(d), base64.b64encode(hashlib.sha256(d).digest()).decode())\n";
    let out = String::from_utf8(run("python3", &["-c", script, m.path("data/one.bin").to_str().unwrap()])).unwrap();
    let one = &files[3].1;
    for line in out.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let (off, n): (usize, usize) = (parts[0].parse().unwrap(), parts[1].parse().unwrap());
        assert_eq!(n, (one.len() - off).min(n), "{line}");
        assert_eq!(parts[2], sha256_b64(&one[off..off + n]), "bytes {off}+{n}");
    }
    assert_eq!(out.lines().count(), 64);

    // Read-only.
    assert!(std::fs::write(m.path("new.txt"), b"x").is_err());
    assert!(std::fs::OpenOptions::new().append(true).open(m.path("hello.txt")).is_err());

    // The origin and every cache go down: what is cached still lists and reads.
    for id in [1, other, 9] {
        c.kill(id);
    }
    assert!(!curl(&["-s", "-o", "/dev/null", &c.url(1, "/healthz")]).status.success(), "the origin is down");
    std::thread::sleep(std::time::Duration::from_millis(1100)); // past the listing TTL
    let mut again: Vec<String> =
        std::fs::read_dir(&m.dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    again.sort();
    assert_eq!(again, root, "the listing held answers while the origin is down");
    for (name, data) in &files {
        assert_eq!(std::fs::read(m.path(name)).unwrap(), *data, "{name} offline");
    }
    m.stop();
    assert!(
        !std::fs::read_to_string("/proc/mounts").unwrap().contains(&m.dir.display().to_string()),
        "unmounted on SIGTERM: {}",
        std::fs::read_to_string(&m.log).unwrap_or_default()
    );
}
