//! `reef-sim replay` end to end: the real binary on small trace files written to a temp dir.

use reef_sim::trace::{Request, write_oracle_general};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn reef_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reef-sim")).arg("replay").args(args).output().expect("run reef-sim")
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write trace");
    path
}

/// Runs a replay that must succeed and returns its JSON array.
fn replay_json(trace: &Path, format: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--trace", trace.to_str().unwrap(), "--format", format, "--json", "--quiet"];
    args.extend_from_slice(extra);
    let out = reef_sim(&args);
    assert!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).expect("JSON output").as_array().expect("an array").clone()
}

fn stderr_of_failure(args: &[&str]) -> String {
    let out = reef_sim(args);
    assert!(!out.status.success(), "expected a failure for {args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Objects 1 and 2 (10 bytes each) alternate, then 3 (a 1 KB object) comes once.
const CSV: &str = "time,obj_id,obj_size\n0,1,10\n1,2,10\n2,1,10\n3,2,10\n4,3,1KB\n";

#[test]
fn csv_every_pair_with_exact_ratios() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write(dir.path(), "t.csv", CSV);
    let rows = replay_json(&trace, "csv", &["--policy", "lru,fifo", "--cache-size", "100,2KB"]);
    assert_eq!(rows.len(), 4);
    let pairs: Vec<(&str, u64)> =
        rows.iter().map(|r| (r["policy"].as_str().unwrap(), r["cache_size"].as_u64().unwrap())).collect();
    assert_eq!(pairs, vec![("lru", 100), ("lru", 2000), ("fifo", 100), ("fifo", 2000)]);
    for r in &rows {
        assert_eq!(r["requests"], 5);
        // Misses: 1, 2 and 3 the first time; the second 1 and 2 hit.
        assert_eq!(r["object_miss_ratio"].as_f64().unwrap(), 3.0 / 5.0);
        assert!((r["byte_miss_ratio"].as_f64().unwrap() - 1020.0 / 1040.0).abs() < 1e-12);
        assert!(r["requests_per_second"].as_f64().unwrap() > 0.0);
        assert!(r["trace_load_seconds"].as_f64().unwrap() >= 0.0, "the load time is reported apart");
    }
}

#[test]
fn warmup_requests_shape_the_cache_but_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write(dir.path(), "t.csv", CSV);
    let rows = replay_json(&trace, "csv", &["--policy", "lru", "--cache-size", "2KB", "--warmup", "2"]);
    assert_eq!(rows[0]["requests"], 3);
    assert_eq!(rows[0]["object_miss_ratio"].as_f64().unwrap(), 1.0 / 3.0);
}

#[test]
fn csv_column_names_and_sizes_are_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write(dir.path(), "t.csv", "ts,key,len\n0,\"a.root\",4GiB\n1,a.root,4GiB\n");
    let rows = replay_json(
        &trace,
        "csv",
        &["--policy", "sieve", "--cache-size", "5GiB", "--id-column", "key", "--size-column", "len"],
    );
    assert_eq!(rows[0]["object_miss_ratio"].as_f64().unwrap(), 0.5);
}

fn zipf_like_requests() -> Vec<Request> {
    // A deterministic skewed sequence: object k appears about 1/k as often.
    (0..20_000u64)
        .map(|i| (i * 2_654_435_761) % 1000)
        .map(|x| 1000 / (x + 1))
        .map(|id| Request { id, size: 1 + id % 7 })
        .collect()
}

#[test]
fn oracle_general_plain_and_zstd_agree_and_belady_bounds_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    write_oracle_general(&mut bytes, &zipf_like_requests()).unwrap();
    let plain = write(dir.path(), "t.oracleGeneral", &bytes);
    // Compressed, and named without `.zst`: the magic number gives it away.
    let packed = write(dir.path(), "t.bin", zstd::encode_all(&bytes[..], 3).unwrap());
    let args = ["--policy", "lru,s3fifo,wtinylfu,belady", "--cache-size", "200", "--threads", "2"];
    let a = replay_json(&plain, "oracle-general", &args);
    let b = replay_json(&packed, "oracle-general", &args);
    let ratios = |rows: &[Value]| rows.iter().map(|r| r["object_miss_ratio"].as_f64().unwrap()).collect::<Vec<_>>();
    assert_eq!(ratios(&a), ratios(&b));
    assert_eq!(a[0]["requests"], 20_000);
    let belady = ratios(&a)[3];
    assert!(ratios(&a)[..3].iter().all(|&r| r >= belady), "{:?}", ratios(&a));
}

#[test]
fn reef_access_logs_replay() {
    let dir = tempfile::tempdir().unwrap();
    let log = [
        r#"{"time":1.0,"method":"GET","object":"/atlas/a.root","bytes":100,"size":100,"status":200}"#,
        r#"{"time":2.0,"method":"HEAD","object":"/atlas/a.root","bytes":0,"status":200}"#,
        r#"{"time":3.0,"object":"/atlas/a.root","bytes":100}"#,
        r#"{"time":4.0,"object":"/cms/b.root","bytes":50,"size":400}"#,
        r#"{"time":5.0,"method":"GET","object":"/cms/nope","bytes":0,"size":null,"status":404}"#,
        r#"{"time":6.0,"method":"GET","object":"/cms/b.root","bytes":0,"size":null,"status":302}"#,
        "",
    ]
    .join("\n");
    let trace = write(dir.path(), "access.log", log);
    let rows = replay_json(&trace, "reef-log", &["--policy", "lru", "--cache-size", "1MB"]);
    assert_eq!(rows[0]["requests"], 3, "the HEAD, 404 and redirect lines are skipped");
    assert!((rows[0]["byte_miss_ratio"].as_f64().unwrap() - 500.0 / 600.0).abs() < 1e-12);
}

#[test]
fn prints_a_table_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write(dir.path(), "t.csv", CSV);
    let out = reef_sim(&[
        "--trace",
        trace.to_str().unwrap(),
        "--format",
        "csv",
        "--policy",
        "2q,gdsf",
        "--cache-size",
        "1KB",
    ]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("policy"), "{table}");
    assert!(table.contains("2q") && table.contains("gdsf") && table.contains("0.6000"), "{table}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("loaded 5 requests"));
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.csv");
    let err = stderr_of_failure(&[
        "--trace",
        missing.to_str().unwrap(),
        "--format",
        "csv",
        "--policy",
        "lru",
        "--cache-size",
        "1MB",
    ]);
    assert!(err.contains("cannot open trace") && err.contains("nope.csv"), "{err}");

    let csv = write(dir.path(), "cols.csv", "id,size\n1,10\n");
    let err = stderr_of_failure(&[
        "--trace",
        csv.to_str().unwrap(),
        "--format",
        "csv",
        "--policy",
        "lru",
        "--cache-size",
        "1MB",
    ]);
    assert!(err.contains("no column `obj_id`") && err.contains("id, size") && err.contains("--id-column"), "{err}");

    let csv = write(dir.path(), "value.csv", "obj_id,obj_size\n1,10\n2,ten\n");
    let err = stderr_of_failure(&[
        "--trace",
        csv.to_str().unwrap(),
        "--format",
        "csv",
        "--policy",
        "lru",
        "--cache-size",
        "1MB",
    ]);
    assert!(err.contains("value.csv:3") && err.contains("obj_size") && err.contains("ten"), "{err}");

    let mut bytes = Vec::new();
    write_oracle_general(&mut bytes, &zipf_like_requests()[..3]).unwrap();
    let cut = write(dir.path(), "cut.oracleGeneral", &bytes[..24 * 2 + 10]);
    let err = stderr_of_failure(&[
        "--trace",
        cut.to_str().unwrap(),
        "--format",
        "oracle-general",
        "--policy",
        "lru",
        "--cache-size",
        "1MB",
    ]);
    assert!(err.contains("truncated") && err.contains("record 3") && err.contains("10 of 24 bytes"), "{err}");

    let err = stderr_of_failure(&[
        "--trace",
        csv.to_str().unwrap(),
        "--format",
        "csv",
        "--policy",
        "lru,mru",
        "--cache-size",
        "1MB",
    ]);
    assert!(err.contains("unknown eviction policy `mru`") && err.contains("wtinylfu"), "{err}");

    let err = stderr_of_failure(&[
        "--trace",
        csv.to_str().unwrap(),
        "--format",
        "csv",
        "--policy",
        "lru",
        "--cache-size",
        "10 GIB",
    ]);
    assert!(err.contains("unknown unit"), "{err}");

    let log = write(dir.path(), "bad.log", "{\"object\":\"/a/b\",\"bytes\":1}\n{\"object\":\"/a/c\"}\n");
    let err = stderr_of_failure(&[
        "--trace",
        log.to_str().unwrap(),
        "--format",
        "reef-log",
        "--policy",
        "lru",
        "--cache-size",
        "1MB",
    ]);
    assert!(err.contains("bad.log:2") && err.contains("`size` or `bytes`"), "{err}");
}

/// A repetitive trace of equal-sized objects (about a thousand distinct ids).
fn skewed_requests(n: u64) -> Vec<Request> {
    (0..n).map(|k| Request { id: (k * k) % 211 + (k % 5) * 1000, size: 100 }).collect()
}

#[test]
fn shards_at_rate_one_is_the_exact_lru_curve_for_equal_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    write_oracle_general(&mut bytes, &skewed_requests(20_000)).unwrap();
    let path = write(dir.path(), "t.bin", bytes);
    let rows = replay_json(
        &path,
        "oracle-general",
        &["--policy", "lru", "--cache-size", "1000,100000", "--points", "12", "--shards", "1", "--warmup", "500"],
    );
    let (exact, approx): (Vec<&Value>, Vec<&Value>) = rows.iter().partition(|r| r["sampling_rate"].is_null());
    let sizes: Vec<u64> = exact.iter().map(|r| r["cache_size"].as_u64().unwrap()).collect();
    // Twelve sizes from 1000 to 100000 at a constant ratio of 100^(1/11).
    assert_eq!(sizes.len(), 12);
    assert_eq!((sizes[0], sizes[11]), (1000, 100_000));
    for w in sizes.windows(2) {
        assert!((w[1] as f64 / w[0] as f64 - 100f64.powf(1.0 / 11.0)).abs() < 0.01, "{sizes:?}");
    }
    assert_eq!(approx.len(), 12);
    let mut distinct = std::collections::BTreeSet::new();
    for (e, a) in exact.iter().zip(&approx) {
        assert_eq!(a["cache_size"], e["cache_size"]);
        assert_eq!(a["sampling_rate"].as_f64(), Some(1.0));
        assert_eq!(a["misses"], e["misses"], "size {}", e["cache_size"]);
        assert_eq!(a["miss_bytes"], e["miss_bytes"]);
        distinct.insert(e["misses"].as_u64().unwrap());
    }
    assert!(distinct.len() > 4, "the sizes span a curve, not one point: {distinct:?}");
}

#[test]
fn shards_sampling_estimates_the_curve_and_bad_rates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Ids below 3,000, uniform below a bound that cycles through 1..=3000: id j comes with a
    // weight of about ln(3000 / j), a skewed mix.
    let reqs: Vec<Request> =
        (1..=60_000u64).map(|k| Request { id: (k * 2_654_435_761) % (k % 3000 + 1), size: 64 }).collect();
    let mut bytes = Vec::new();
    write_oracle_general(&mut bytes, &reqs).unwrap();
    let path = write(dir.path(), "t.bin", bytes);
    let rows =
        replay_json(&path, "oracle-general", &["--policy", "lru", "--cache-size", "6400,64000", "--shards", "0.25"]);
    let (exact, approx): (Vec<&Value>, Vec<&Value>) = rows.iter().partition(|r| r["sampling_rate"].is_null());
    for (e, a) in exact.iter().zip(&approx) {
        let (e, a) = (e["object_miss_ratio"].as_f64().unwrap(), a["object_miss_ratio"].as_f64().unwrap());
        assert!((e - a).abs() < 0.05, "exact {e}, estimate {a}");
    }
    for bad in ["0", "1.5", "x"] {
        let err = stderr_of_failure(&[
            "--trace",
            path.to_str().unwrap(),
            "--format",
            "oracle-general",
            "--cache-size",
            "1MB",
            "--shards",
            bad,
        ]);
        assert!(err.contains("sampling rate"), "{err}");
    }
}
