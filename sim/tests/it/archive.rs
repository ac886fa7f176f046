//! Origins as archives (`[namespace.tape]`, model in `reef_sim::tape`): a fetch of a file on
//! tape waits for its recall, caches ask the origin again instead of timing out, and a cache
//! tier in front of the archive saves it recalls.

use reef_sim::run::{Summary, simulate};
use reef_sim::scenario::parse;
use std::path::Path;

/// One Tier-1 archive, two Tier-2s; a recall of a 1 GB file takes 60 s to mount, 10 s to seek
/// and 10 s to read at 100 MB/s: 80 s. The origin tells readers to ask again after 30 s. The
/// caches' fetch timeout (10 s) is far shorter than a recall.
const SCENARIO: &str = r#"
name = "archive-test"

[policy]
discovery = "parent"
fetch_timeout = "10s"

[topology.generate]
t1 = 1
t2 = 2
t2_worker_nodes = 0
t0_cache = "0B"
t1_cache = "T1_CACHE"
t2_cache = "T2_CACHE"
same_region_latency = "5ms"

[[namespace]]
name = "raw"
origins = ["T1-01"]
tape = { share = 1.0, drives = 1, tapes = 4, mount = "60s", seek = "10s", rate = "800Mbit/s", buffer = "BUFFER", poll = "30s" }

[workload]
requests = REQUESTS
duration = "DURATION"
objects = OBJECTS
dataset_files = 10
size = { dist = "fixed", value = "1GB" }
zipf = 0.8
tier_weights = { T0 = 0.0, T1 = 0.0, T2 = 1.0, T3 = 0.0 }
"#;

fn run(t1_cache: &str, t2_cache: &str, buffer: &str, requests: u64, objects: u64, duration: &str) -> Summary {
    let text = SCENARIO
        .replace("T1_CACHE", t1_cache)
        .replace("T2_CACHE", t2_cache)
        .replace("BUFFER", buffer)
        .replace("REQUESTS", &requests.to_string())
        .replace("OBJECTS", &objects.to_string())
        .replace("DURATION", duration);
    let scenario = parse(Path::new("archive-test.toml"), &text, &[]).unwrap();
    let outcome = simulate(&scenario, 3, &mut |_| {}).unwrap();
    let summary = outcome.summary;
    assert_eq!(summary.completed, summary.requests, "every request served: {:?}", summary.failures);
    // The per-bucket table adds up to the summary.
    let (rows, a) = (&outcome.results.archive, summary.archive.as_ref().expect("an archive"));
    let sum = |f: fn(&reef_results::ArchiveRow) -> u64| rows.iter().map(f).sum::<u64>();
    assert_eq!((sum(|r| r.reads), sum(|r| r.recalls), sum(|r| r.mounts)), (a.reads, a.recalls, a.mounts));
    assert_eq!((sum(|r| r.buffer_hits), sum(|r| r.polls)), (a.buffer_hits, a.polls));
    let busy: f64 = rows.iter().map(|r| r.drive_busy_s).sum();
    assert!((busy - a.drive_busy_hours * 3600.0).abs() < 1e-6, "{busy} s");
    assert_eq!(summary.failovers, 0, "a staging origin is slow, not dead");
    summary
}

#[test]
fn one_read_waits_for_one_recall_asking_again_every_poll() {
    let s = run("10TB", "10TB", "10TB", 1, 1, "1s");
    let a = s.archive.as_ref().expect("an archive");
    // Asked first at about 0 s (a few ms of latency): staging; asked again at about 30 s and
    // 60 s: still staging (the recall ends at about 80 s); at about 90 s: served.
    assert_eq!((a.reads, a.recalls, a.mounts, a.buffer_hits), (1, 1, 1, 0));
    assert_eq!((a.staging_answers, a.polls), (3, 3));
    assert!((a.drive_busy_hours * 3600.0 - 80.0).abs() < 1e-6, "{}", a.drive_busy_hours);
    assert_eq!(a.queue_wait_max_s, 0.0);
    // The client's first byte comes after the third ask again (90 s and a few round trips),
    // however short the caches' fetch timeout.
    let first_byte_s = s.latency_ms.p50 / 1000.0;
    assert!((90.0..91.0).contains(&first_byte_s), "first byte after {first_byte_s} s");
}

#[test]
fn a_cache_tier_saves_the_archive_recalls_on_repeated_reads() {
    // 60 files read 600 times over 6 hours by the two Tier-2s; the archive's buffer holds two
    // files, so a file read again later is mostly recalled again.
    let bare = run("0B", "0B", "2GB", 600, 60, "6h");
    let cached = run("100GB", "0B", "2GB", 600, 60, "6h");
    let (a, b) = (bare.archive.as_ref().unwrap(), cached.archive.as_ref().unwrap());
    // With a Tier-1 cache that holds every file, each file read is fetched from the archive
    // once (the Tier-2s fetch through it), never found in the buffer.
    assert_eq!(cached.origin_fetches, b.reads);
    assert!(b.reads <= 60 && b.buffer_hits == 0, "{b:?}");
    // At least one recall per read; more only when a recalled file left the two-file buffer
    // before its reader asked again.
    assert!(b.recalls >= b.reads, "{b:?}");
    // Without caches every read reaches the archive.
    assert!(a.reads + a.buffer_hits >= a.recalls);
    assert!(a.recalls > 2 * b.recalls, "recalls without caches {}, with {}", a.recalls, b.recalls);
    assert!(a.drive_busy_hours > b.drive_busy_hours);
    // Every recall costs at least a seek and a read; a mount at most once each.
    for x in [a, b] {
        let busy = x.drive_busy_hours * 3600.0;
        assert!(
            busy >= 20.0 * x.recalls as f64 - 1e-6 && busy <= 20.0 * x.recalls as f64 + 60.0 * x.mounts as f64 + 1e-6
        );
        assert!(x.mounts <= x.recalls);
    }
}

#[test]
fn bad_tape_settings_say_what_and_where() {
    let cases = [
        ("drives = 1", "drives = 0", "at least 1"),
        ("share = 1.0", "share = 1.5", "between 0 and 1"),
        ("rate = \"800Mbit/s\"", "rate = \"0bit/s\"", "rate and buffer must be more than zero"),
        ("poll = \"30s\"", "poll = \"0s\"", "more than zero"),
        ("seek = \"10s\"", "seek = \"10s\", heads = 2", "unknown field `heads`"),
    ];
    for (good, bad, said) in cases {
        let text = SCENARIO
            .replace(good, bad)
            .replace("T1_CACHE", "0B")
            .replace("T2_CACHE", "0B")
            .replace("BUFFER", "1GB")
            .replace("REQUESTS", "1")
            .replace("OBJECTS", "1")
            .replace("DURATION", "1s");
        let error = match parse(Path::new("archive-test.toml"), &text, &[]) {
            Err(e) => e.to_string(),
            Ok(s) => simulate(&s, 1, &mut |_| {}).map(|_| ()).map_err(|e| format!("{e:#}")).unwrap_err(),
        };
        assert!(error.contains(said) && error.contains("archive-test.toml"), "{bad}: {error}");
        assert!(error.contains("tape"), "{bad}: names the key: {error}");
    }
}
