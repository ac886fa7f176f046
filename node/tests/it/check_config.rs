//! `reef-node check-config` on the example federation (one shared file, six node files), and
//! on a copy where the shared file lists a node at the wrong address.

use std::path::Path;
use std::process::Command;

fn check(dir: &Path) -> (bool, String, String) {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    let out = Command::new(env!("CARGO_BIN_EXE_reef-node")).arg("check-config").args(&files).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn the_example_federation_is_consistent_and_a_wrong_address_is_named() {
    let work = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local");
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, work.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir_all(work.path().join("data/origin/atlas")).unwrap();
    let (ok, stdout, stderr) = check(work.path());
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().filter(|l| l.starts_with('n')).count(), 6, "{stdout}");
    assert!(stdout.contains("n1 origin at t0") && stdout.contains("6 nodes: the federation is consistent"), "{stdout}");

    let shared = work.path().join("federation.toml");
    let text = std::fs::read_to_string(&shared).unwrap().replace("https://127.0.0.1:18412", "https://127.0.0.1:19999");
    std::fs::write(&shared, text).unwrap();
    let (ok, _, stderr) = check(work.path());
    assert!(!ok);
    // Node 12's own file refuses the shared entry that names it elsewhere; the others cannot
    // be checked against a node whose file does not load, and say so.
    assert!(stderr.contains("node id 12 is this node's id, but listed at `https://127.0.0.1:19999`"), "{stderr}");
    assert!(stderr.contains("federation.toml` included") && !stderr.contains("(line "), "{stderr}");
    assert!(stderr.contains("n11 names peer n12, which is not among the files checked"), "{stderr}");
}
