//! Architecture invariants of reef-core, checked on every test run so they cannot silently
//! break: no I/O, clock or global randomness in its sources, and no runtime or network crate in
//! its dependency tree.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Things that read the world: a wall clock, a global or OS random source, files, sockets,
/// threads, environment, async runtimes.
const FORBIDDEN_IN_SOURCE: &[&str] = &[
    "Instant::now",
    "SystemTime",
    "thread_rng",
    "rand::rng(",
    "rand::random",
    "OsRng",
    "from_entropy",
    "from_os_rng",
    "getrandom",
    "RandomState",
    "HashMap::new",
    "HashSet::new",
    // std's maps seed their hasher from the OS unless given a fixed one (`crate::Map`).
    "HashMap<",
    "HashSet<",
    "std::fs",
    "std::net",
    "std::thread",
    "std::env",
    "std::process",
    "std::io::stdin",
    "tokio",
    "async fn",
    "println!",
    "eprintln!",
];

/// Crates that would bring I/O into the core.
const FORBIDDEN_DEPENDENCIES: &[&str] = &[
    "tokio",
    "hyper",
    "async-std",
    "smol",
    "mio",
    "reqwest",
    "socket2",
    "futures",
    "polars",
    "plotters",
    "getrandom",
    "rayon",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines of code with comments stripped, so that docs may name what the code must not do.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split("//").next().unwrap_or("")))
        .filter(|(_, l)| !l.trim().is_empty())
}

/// Returns the forbidden uses found in `text`, as `line: pattern`.
fn violations(text: &str) -> Vec<String> {
    code_lines(text)
        .flat_map(|(n, line)| {
            FORBIDDEN_IN_SOURCE
                .iter()
                .filter(move |p| line.contains(*p) && !(p.starts_with("Hash") && line.contains("FixedState")))
                .map(move |p| format!("line {n}: `{p}`"))
        })
        .collect()
}

#[test]
fn core_sources_do_no_io_and_read_no_clock_or_global_randomness() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() >= 5, "found only {} source files under {}", files.len(), src.display());
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        for v in violations(&text) {
            found.push(format!("{}: {v}", file.display()));
        }
    }
    assert!(found.is_empty(), "reef-core must stay sans-IO and deterministic:\n{}", found.join("\n"));
}

#[test]
fn the_source_check_catches_a_clock_read() {
    // The check above must be able to fail: a planted clock read and socket are found.
    let planted =
        "fn f() {\n    let t = std::time::Instant::now();\n    let s = std::net::TcpStream::connect(\"x\");\n}\n";
    let v = violations(planted);
    assert_eq!(v, vec!["line 2: `Instant::now`".to_string(), "line 3: `std::net`".to_string()]);
    assert!(violations("// Instant::now is forbidden here\n").is_empty());
    // A map with std's OS-seeded hasher is found; one with the fixed hasher is not.
    assert_eq!(violations("let m: HashMap<u64, u32> = x;\n"), vec!["line 1: `HashMap<`".to_string()]);
    assert!(violations("type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;\n").is_empty());
}

#[test]
fn core_depends_on_no_runtime_or_network_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", "reef-core", "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8(out.stdout).expect("utf-8 tree");
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.contains(&"reef-core") && crates.contains(&"serde"), "unexpected tree:\n{tree}");
    let bad: Vec<&&str> = crates.iter().filter(|c| FORBIDDEN_DEPENDENCIES.contains(c)).collect();
    assert!(bad.is_empty(), "reef-core must not depend on {bad:?}:\n{tree}");
}
