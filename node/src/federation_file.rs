//! One federation file shared by every node: a node's file says `include = "federation.toml"`
//! and keeps only what is its own (`[node]`, its `[policy]`, `[tls]` paths, an origin's
//! `export`). The two are merged before the configuration is read: `sites`, `peers` and
//! `issuers` are the federation's followed by the node's; `namespaces` are merged by name (the
//! node's keys, such as `export` or `quota`, added to the federation's entry); tables such as
//! `[policy]` are merged key by key, the node's value winning. Relative paths are taken from
//! the node file's directory.

use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// `text` with its include merged in, and the included file's path; `text` unchanged (so that
/// errors keep its lines and columns) when it includes nothing.
pub fn resolve(text: &str, path: &Path) -> Result<(String, Option<PathBuf>), String> {
    let mut node: Table = match text.parse() {
        Ok(t) => t,
        Err(_) => return Ok((text.to_string(), None)), // the parser proper reports it, with its place
    };
    let Some(include) = node.remove("include") else { return Ok((text.to_string(), None)) };
    let Value::String(include) = include else {
        return Err("`include`: expected the path of a federation file".into());
    };
    let file = path.parent().unwrap_or(Path::new(".")).join(include);
    let shared = std::fs::read_to_string(&file).map_err(|e| format!("`include` ({}): {e}", file.display()))?;
    let shared: Table = shared.parse().map_err(|e| format!("`include` ({}): {e}", file.display()))?;
    for own in ["node", "include"] {
        if shared.contains_key(own) {
            return Err(format!(
                "`include` ({}): a federation file has no `{own}`; that is each node's own",
                file.display()
            ));
        }
    }
    let merged = merge(shared, node);
    let text = toml::to_string(&merged).map_err(|e| format!("merging `include` ({}): {e}", file.display()))?;
    Ok((text, Some(file)))
}

fn merge(mut shared: Table, node: Table) -> Table {
    for (key, value) in node {
        let merged = match (shared.remove(&key), value) {
            (Some(Value::Array(mut a)), Value::Array(b)) if key == "namespaces" => {
                for entry in b {
                    let name = entry.get("name").cloned();
                    match a.iter_mut().find(|e| name.is_some() && e.get("name") == name.as_ref()) {
                        Some(Value::Table(have)) => {
                            if let Value::Table(add) = entry {
                                *have = merge(std::mem::take(have), add);
                            }
                        }
                        _ => a.push(entry),
                    }
                }
                Value::Array(a)
            }
            (Some(Value::Array(mut a)), Value::Array(b)) => {
                a.extend(b);
                Value::Array(a)
            }
            (Some(Value::Table(a)), Value::Table(b)) => Value::Table(merge(a, b)),
            (_, value) => value,
        };
        shared.insert(key, merged);
    }
    shared
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_file_takes_the_federation_and_adds_its_own() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("fed.toml"),
            "[policy]\nfetch_timeout = \"5s\"\nstream = true\n\n[[sites]]\nname = \"t0\"\nid = 0\n\n\
             [[namespaces]]\nname = \"atlas\"\norigins = [1]\n\n[[peers]]\nid = 1\nrole = \"origin\"\nsite = \"t0\"\nurl = \"http://127.0.0.1:1\"\n",
        )
        .unwrap();
        let node = "include = \"fed.toml\"\n[node]\nid = 1\n[policy]\nfetch_timeout = \"9s\"\n\
                    [[namespaces]]\nname = \"atlas\"\nexport = \"data\"\n[[namespaces]]\nname = \"cms\"\norigins = [1]\n";
        let (text, file) = resolve(node, &dir.path().join("n1.toml")).unwrap();
        assert_eq!(file, Some(dir.path().join("fed.toml")));
        let t: Table = text.parse().unwrap();
        assert_eq!(t["policy"]["fetch_timeout"].as_str(), Some("9s"), "the node's value wins");
        assert_eq!(t["policy"]["stream"].as_bool(), Some(true), "the federation's other keys stay");
        let ns = t["namespaces"].as_array().unwrap();
        assert_eq!(ns.len(), 2);
        assert_eq!(ns[0]["export"].as_str(), Some("data"));
        assert_eq!(ns[0]["origins"].as_array().unwrap().len(), 1);
        assert_eq!(t["peers"].as_array().unwrap().len(), 1);
        assert!(!t.contains_key("include"));
        // Without an include the text is left as it is.
        assert_eq!(resolve("[node]\nid = 1\n", Path::new("x.toml")).unwrap(), ("[node]\nid = 1\n".into(), None));
        std::fs::write(dir.path().join("bad.toml"), "[node]\nid = 2\n").unwrap();
        let err = resolve("include = \"bad.toml\"\n", &dir.path().join("n.toml")).unwrap_err();
        assert!(err.contains("no `node`"), "{err}");
        let err = resolve("include = \"missing.toml\"\n", &dir.path().join("n.toml")).unwrap_err();
        assert!(err.contains("missing.toml"), "{err}");
    }
}
