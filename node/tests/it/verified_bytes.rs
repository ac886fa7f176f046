//! Bytes that are always right: a cache releases only blocks checked against the origin's
//! block list, and a stored copy that goes bad is dropped and fetched again, never served.

use crate::common;
use crate::common::*;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const SIZE: usize = 4 << 20;
/// An ETag and the bytes a fake serves under it.
type TaggedBody = (String, Vec<u8>);
const BAD_AT: usize = (2 << 20) + 12_345; // inside block 2 (1 MiB blocks)

/// The origin's ETag of `path`.
fn etag(c: &Cluster, path: &str) -> String {
    let (_, head, _) = get(&c.url(1, path), &["-I"]);
    head.lines().find_map(|l| l.strip_prefix("etag: ")).expect("an ETag").trim().to_string()
}

#[test]
fn a_peer_serving_a_corrupt_block_never_reaches_a_client() {
    // Cache 11's parent, 21, is a fake cache: it serves the object with the origin's ETag but
    // one flipped byte in block 2, slowly enough that clients are reading when it gets there.
    // (It never answers probes: cache 11 suspects it, but only declares it dead after a minute.)
    let fake: Arc<Mutex<Option<TaggedBody>>> = Arc::default();
    let (shared, served_bad) = (fake.clone(), Arc::new(AtomicUsize::new(0)));
    let counter = served_bad.clone();
    let port = fake_server(move |head, stream| {
        let Some((tag, bad)) = shared.lock().unwrap().clone() else { return false };
        if !head[0].starts_with("get /atlas/obj.bin") {
            return false;
        }
        counter.fetch_add(1, Ordering::SeqCst);
        let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\nETag: {tag}\r\n\r\n");
        for piece in bad.chunks(256 << 10) {
            if stream.write_all(piece).is_err() {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
        true
    });
    let parent = Spec { external: Some(port), ..cache(21, "site-b") };
    let membership = "probe_interval = \"200ms\"\nsuspect_timeout = \"60s\"\n";
    let child = Spec { strategy: "parent", parents: vec![21], membership, ..cache(11, "site-a") };
    let c = Cluster::start(&[origin(1), child, parent]);
    let body = c.put("obj.bin", bytes(SIZE, 8));
    let mut bad = body.clone();
    bad[BAD_AT] ^= 0x40;
    *fake.lock().unwrap() = Some((etag(&c, "/atlas/obj.bin"), bad.clone()));
    let url = c.url(11, "/atlas/obj.bin");
    let around = format!("Range: bytes={}-{}", BAD_AT - 10, BAD_AT + 10);
    let multi = format!("Range: bytes=0-99,{}-{},{}-", BAD_AT - 1, BAD_AT + 1, SIZE - 100);
    let clients: Vec<std::thread::JoinHandle<(u16, String, Vec<u8>)>> =
        [vec![], vec![], vec!["-H", &around], vec!["-H", &multi]]
            .into_iter()
            .map(|extra| {
                let (url, extra): (String, Vec<String>) = (url.clone(), extra.iter().map(|s| s.to_string()).collect());
                std::thread::spawn(move || {
                    let args: Vec<&str> = extra.iter().map(String::as_str).collect();
                    get(&url, &args)
                })
            })
            .collect();
    let results: Vec<_> = clients.into_iter().map(|t| t.join().unwrap()).collect();
    for (status, _, got) in &results[..2] {
        assert_eq!(*status, 200);
        assert!(*got == body, "a whole-object client got wrong bytes");
    }
    let (status, _, got) = &results[2];
    assert_eq!(*status, 206);
    assert_eq!(got[..], body[BAD_AT - 10..=BAD_AT + 10], "the range around the bad byte is right");
    let (status, head, got) = &results[3];
    assert_eq!(*status, 206);
    assert!(head.contains("multipart/byteranges"), "{head}");
    let text = String::from_utf8_lossy(got);
    assert!(!got.windows(3).any(|w| w == &bad[BAD_AT - 1..=BAD_AT + 1]), "the corrupt byte was sent: {}", text.len());
    assert!(got.windows(3).any(|w| w == &body[BAD_AT - 1..=BAD_AT + 1]), "the right bytes are there");
    assert!(served_bad.load(Ordering::SeqCst) >= 1, "the fake parent was asked");
    // The object ends up cached, correct, from the origin.
    wait_until("the object is committed", || c.metric(11, "reef_cache_admitted_total") == 1.0);
    let (status, head, got) = get(&url, &[]);
    assert!(status == 200 && got == body && head.contains("hit"), "{head}");
}

/// The one stored data file of cache 11.
fn stored_file(c: &Cluster) -> std::path::PathBuf {
    let dir = c.dir.path().join("n11/store/objects");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_none())
        .expect("a stored object")
}

#[test]
fn a_stored_copy_that_is_flipped_truncated_or_deleted_is_fetched_again() {
    let c = Cluster::start(&[origin(1), cache(11, "site-a")]);
    let url = c.url(11, "/atlas/f.bin");
    for (round, size) in [(1, 3 << 20), (2, 3 << 20), (3, 3 << 20), (4, 5000), (5, 5000)] {
        let body = c.put("f.bin", bytes(size, round));
        // (A new version at the origin is a new object for the cache only once the old copy
        // is gone, so each round starts from an empty cache.)
        let _ = std::fs::remove_dir_all(c.dir.path().join("n11/store/objects"));
        let _ = std::fs::create_dir_all(c.dir.path().join("n11/store/objects"));
        let (status, _, got) = get(&url, &[]);
        assert!(status == 200 && got == body, "round {round}: first fetch");
        wait_until("committed", || stored_file_exists(&c));
        let file = stored_file(&c);
        if round == 5 {
            // A hit first: the small object's verified copy is now also in memory, and the
            // flipped byte below must still be found (its file's stamp changed).
            let (status, head, got) = get(&url, &[]);
            assert!(status == 200 && got == body && head.contains("; hit"), "round 5: a hit");
            assert_eq!(c.metric(11, "reef_memory_cache_bytes"), size as f64);
        }
        let before = c.origin_served(1);
        match round {
            1 | 4 | 5 => {
                // Flip one byte in place (the last block; or the only one).
                let mut data = std::fs::read(&file).unwrap();
                let at = data.len() - 7;
                data[at] ^= 1;
                std::fs::OpenOptions::new().write(true).open(&file).unwrap().write_all(&data).unwrap();
            }
            2 => std::fs::OpenOptions::new().write(true).open(&file).unwrap().set_len(1000).unwrap(),
            _ => std::fs::remove_file(&file).unwrap(),
        }
        // The next requests never get wrong bytes or a 500; within two requests the object is
        // served right again, fetched from the origin.
        let mut right = false;
        for _ in 0..2 {
            let out = curl(&["-s", "-o", "/dev/null", "-w", "%{http_code}", &url]);
            let code = String::from_utf8_lossy(&out.stdout).to_string();
            assert_ne!(code, "500", "round {round}");
            let (status, _, got) = get_lenient(&url);
            if status == 200 && got == body {
                right = true;
                break;
            }
            assert!(got.len() < body.len() || got == body, "round {round}: wrong bytes served");
        }
        assert!(right, "round {round}: not served right again");
        assert!(c.origin_served(1) > before, "round {round}: fetched again from the origin");
    }
    assert!(
        c.metric(11, "reef_cache_evictions_total{reason=\"lost\"}") >= 1.0
            || c.metric(11, "reef_store_lost_total") >= 1.0
    );
}

fn stored_file_exists(c: &Cluster) -> bool {
    let dir = c.dir.path().join("n11/store/objects");
    std::fs::read_dir(dir).is_ok_and(|d| d.filter_map(Result::ok).any(|e| e.path().extension().is_none()))
}

#[test]
fn the_scrub_finds_a_corrupt_copy_before_a_client_does() {
    let c = Cluster::start(&[
        origin(1),
        Spec { node: "scrub_rate = \"2Gbit/s\"\nscrub_interval = \"1s\"\n", ..cache(11, "site-a") },
    ]);
    let url = c.url(11, "/atlas/s.bin");
    let body = c.put("s.bin", bytes(2 << 20, 9));
    assert_eq!(get(&url, &[]).2, body);
    wait_until("committed", || stored_file_exists(&c));
    wait_until("the scrub has read it", || c.metric(11, "reef_scrubbed_objects_total") >= 1.0);
    let file = stored_file(&c);
    let mut data = std::fs::read(&file).unwrap();
    data[100] ^= 0x80;
    std::fs::OpenOptions::new().write(true).open(&file).unwrap().write_all(&data).unwrap();
    wait_until("the scrub reports it lost", || c.metric(11, "reef_store_lost_total") >= 1.0);
    let before = c.origin_served(1);
    let (status, head, got) = get(&url, &[]);
    assert!(status == 200 && got == body, "served right");
    assert!(head.contains("fwd=miss"), "fetched again: {head}");
    assert!(c.origin_served(1) > before);
}

#[test]
fn the_scrub_reads_a_small_store_once_per_interval_not_in_a_loop() {
    // Default scrub settings (100 Mbit/s, a pass at most every hour): a 4 KiB object is charged
    // 64 KiB of the rate, and once the pass is over nothing is read until the next.
    let c = Cluster::start(&[origin(1), cache(11, "site-a")]);
    let url = c.url(11, "/atlas/small.bin");
    let body = c.put("small.bin", bytes(4096, 3));
    assert_eq!(get(&url, &[]).2, body);
    wait_until("committed", || stored_file_exists(&c));
    let next_pass = || c.metric(11, "reef_scrub_next_pass_timestamp_seconds");
    wait_until("the first pass is over", || next_pass() > 0.0);
    // One pass read the object once, and the next is an hour away (before the fix this store
    // was re-read about 3,000 times a second).
    assert_eq!(c.metric(11, "reef_scrubbed_objects_total"), 1.0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let wait = next_pass() - now;
    assert!((3_500.0..=3_600.0).contains(&wait), "next pass in {wait:.0} s");
}

#[test]
fn a_store_on_a_small_disk_serves_every_object_whole_and_keeps_nothing_partial() {
    // A 64 MiB tmpfs (mounted by the test; root only) under a cache configured for 1 GiB: the
    // node caps its capacity to the disk, and each fill reserves its size before it writes, so
    // evictions make room first and no fill runs out of space half way; an object bigger than
    // the disk streams through, whole and right, and is not kept.
    let Some(disk) = SmallDisk::mount() else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let c = Cluster::start(&[origin(1), Spec { store: Some(disk.path().to_path_buf()), ..cache(11, "site-a") }]);
    let disk = disk.path();
    // The last one is bigger than the disk: it passes through, a window at a time.
    let objects: Vec<(String, Vec<u8>)> = [25, 25, 25, 40, 30, 40, 100]
        .iter()
        .enumerate()
        .map(|(i, mib)| (format!("big{i}.bin"), c.put(&format!("big{i}.bin"), bytes(mib << 20, i as u64))))
        .collect();
    for round in 0..2 {
        for (name, body) in &objects {
            let (status, _, got) = get_lenient(&c.url(11, &format!("/atlas/{name}")));
            assert_eq!(status, 200, "round {round}: {name}");
            assert!(got == *body, "round {round}: {name}: {}", common::difference(&got, body));
        }
    }
    // Ranges out of order on an object passing through, near each other and further apart than
    // its window (16 MiB): it is read once, front to back, so the parts come in ascending order
    // and every byte is right.
    let (name, body) = objects.last().unwrap();
    for far in [5_000_000, 50_000_000] {
        let ranges = format!("Range: bytes={far}-{},0-99", far + 99);
        let (status, head, got) = get(&c.url(11, &format!("/atlas/{name}")), &["-H", &ranges, "--max-time", "60"]);
        assert!(status == 206 && head.contains("multipart/byteranges"), "{status} {head}");
        let at = |a: usize| got.windows(100).position(|w| w == &body[a..a + 100]);
        let (low, high) = (at(0).expect("bytes 0..100 are right"), at(far).expect("the far range is right"));
        assert!(low < high, "ascending order");
    }
    let big = c.metric(11, "reef_cache_not_admitted_total");
    assert!(big >= 2.0, "the big object was not kept ({big})");
    // Everything on the disk is a complete object with its sidecar (no fill left over).
    let tmp = disk.join("tmp");
    wait_until("no fill left in tmp", || std::fs::read_dir(&tmp).unwrap().count() == 0);
    for entry in std::fs::read_dir(disk.join("objects")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none() {
            let len = std::fs::metadata(&path).unwrap().len();
            assert!(objects.iter().any(|(_, b)| b.len() as u64 == len), "a partial object: {len} bytes");
        }
    }
}

/// A 64 MiB tmpfs in a temporary directory, unmounted when dropped.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    /// `None` unless running as root (mounting needs it).
    fn mount() -> Option<SmallDisk> {
        if !is_root() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
            .arg(dir.path())
            .status();
        assert!(mounted.unwrap().success(), "mount a tmpfs");
        Some(SmallDisk(dir))
    }

    fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[test]
fn a_disk_that_fills_up_under_a_fill_makes_it_pass_through_whole() {
    // Another user of the disk takes most of it after the node started: the cache's accounting
    // says there is room, the disk says no half way. The fill passes through instead (freeing
    // what its reader has had), so the client still gets every byte, and nothing is kept.
    let Some(disk) = SmallDisk::mount() else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let store = disk.path().join("store");
    let c = Cluster::start(&[origin(1), Spec { store: Some(store.clone()), ..cache(11, "site-a") }]);
    std::fs::write(disk.path().join("other-user"), vec![1u8; 50 << 20]).unwrap();
    let body = c.put("late.bin", bytes(30 << 20, 77));
    let (status, _, got) = get_lenient(&c.url(11, "/atlas/late.bin"));
    assert_eq!(status, 200);
    assert!(got == body, "{}", common::difference(&got, &body));
    wait_until("not kept", || c.metric(11, "reef_cache_not_admitted_total") >= 1.0);
    wait_until("no fill left in tmp", || std::fs::read_dir(store.join("tmp")).unwrap().count() == 0);
}
