//! The local example cluster (`node/examples/local`) as its README tells users to run it: a
//! copy of the folder, `cluster.sh start` read through a pipe (it must return: the nodes are
//! detached and hold no pipe open), a download through the director, `cluster.sh stop`.

use crate::common::curl;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn cluster_sh(dir: &std::path::Path, action: &str) -> String {
    let script = dir.join("cluster.sh");
    let mut child = Command::new("bash")
        .arg("-c")
        // Through a pipe, as `cluster.sh start | tee log` would read it.
        .arg(format!("'{}' {action} | cat", script.display()))
        .env("REEF_NODE", env!("CARGO_BIN_EXE_reef-node"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cluster.sh {action} did not return within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50)); // polling interval, not synchronisation
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "cluster.sh {action}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_example_cluster_starts_through_a_pipe_serves_and_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local");
    for entry in std::fs::read_dir(&example).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let started = cluster_sh(tmp.path(), "start");
    let up = started.lines().filter(|l| l.contains(" up on 127.0.0.1:")).count();
    let stop_anyway = Stop(tmp.path().to_path_buf());
    assert_eq!(up, 6, "{started}");

    let ca = tmp.path().join("data/fed/ca.pem");
    let out =
        curl(&["-sfL", "--cacert", &ca.display().to_string(), "https://127.0.0.1:18430/atlas/hello.txt?site=site-a"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from the origin\n");
    // A HEAD at a cache for an object no cache holds: described by the origin over mutual
    // TLS, with its checksum.
    std::fs::write(tmp.path().join("data/origin/atlas/new.txt"), "new\n").unwrap();
    let head = curl(&[
        "-sfI",
        "--cacert",
        &ca.display().to_string(),
        "-H",
        "Want-Digest: adler32",
        "https://127.0.0.1:18412/atlas/new.txt",
    ]);
    let head = String::from_utf8_lossy(&head.stdout).to_lowercase();
    assert!(head.contains("detail=origin-n1-metadata") && head.contains("digest: adler32="), "{head}");

    drop(stop_anyway);
    let status = cluster_sh(tmp.path(), "status");
    assert_eq!(status.lines().filter(|l| l.ends_with(" down")).count(), 6, "{status}");
}

/// Stops the cluster when dropped (also when an assertion fails half way).
struct Stop(std::path::PathBuf);

impl Drop for Stop {
    fn drop(&mut self) {
        let stopped = cluster_sh(&self.0, "stop");
        assert!(
            std::thread::panicking() || stopped.lines().filter(|l| l.ends_with(" stopped")).count() == 6,
            "{stopped}"
        );
    }
}
