//! Replaying the simulated clients' requests against the real cluster, each with `reef get`
//! (the client the simulator models: it tries the cache it was sent to, then its site cache,
//! then the nearest other site's) run inside the client's site. Either one request after
//! another (sequential: the next starts once the client has the last one's last byte),
//! or each at its simulated issue time with many in flight (timed).

use crate::netns::Network;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One client request, as the simulator issued it.
#[derive(Debug, Clone)]
pub struct LabRequest {
    /// Issue time from the start of the run.
    pub at: Duration,
    pub site: usize,
    /// The nodes the client tries, in order.
    pub sources: Vec<usize>,
    /// `/namespace/path`.
    pub path: String,
    pub id: u64,
    pub size: u64,
}

/// What became of one request in the lab.
#[derive(Debug, Clone, Default)]
pub struct LabOutcome {
    /// The serving cache's `Cache-Status` (the whole path the bytes took).
    pub cache_status: Option<String>,
    /// The node whose store or export held the bytes, read from `cache_status`.
    pub holder: Option<u32>,
    /// Why it failed (`None`: the right bytes arrived).
    pub error: Option<String>,
    /// A failure's reason as the simulator names it: the failure the last Reef node named,
    /// `node_down` if no node answered at all, otherwise the client's error.
    pub reason: Option<String>,
    /// The client's own measure, from its first request to the verified file (process
    /// start-up excluded); for a failure, from starting the client to its exit.
    pub duration: Duration,
    /// How much later than its issue time it started (timed replay).
    pub late: Duration,
}

#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// One at a time, with no pause in between: a node marks a fill complete for its readers
    /// and tells its core in the same step of the fetch task, microseconds before the next
    /// request can arrive (a new `reef get` process, milliseconds away). A request that came
    /// first would show as a disagreement, which the CI lab requires none of.
    Sequential,
    /// At the issue times, at most `parallel` at once.
    Timed { parallel: usize },
}

/// The node that held the bytes, from an RFC 9211 `Cache-Status` list as Reef caches write
/// it: the first member (nearest the origin) is a hit at `reef-nX` (X held them) or a miss
/// there that went to `origin-nY` (Y did).
pub fn holder(cache_status: &str) -> Option<u32> {
    let first = cache_status.split(',').next()?.trim();
    let mut params = first.split(';').map(str::trim);
    let node = params.next()?.strip_prefix("reef-n")?.parse().ok()?;
    let mut hit = false;
    let mut origin = None;
    for p in params {
        if p == "hit" {
            hit = true;
        } else if let Some(o) = p.strip_prefix("detail=origin-n") {
            origin = o.parse().ok();
        }
    }
    if hit { Some(node) } else { origin }
}

/// Runs `requests` (in order) against the nodes at `urls` with the `reef` client; `before(k)`
/// runs before request `k` in sequential mode (fault injection).
pub fn replay(
    net: &Network,
    urls: &[String],
    requests: &[LabRequest],
    mode: Mode,
    reef: &Path,
    dir: &Path,
    mut before: impl FnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<LabOutcome>> {
    std::fs::create_dir_all(dir)?;
    let one = |k: usize, worker: usize, late: Duration| {
        let file = dir.join(format!("get-{worker}"));
        let mut out = fetch(net, urls, &requests[k], reef, &file);
        out.late = late;
        out
    };
    match mode {
        Mode::Sequential => {
            let mut outcomes = Vec::with_capacity(requests.len());
            for k in 0..requests.len() {
                before(k)?;
                outcomes.push(one(k, 0, Duration::ZERO));
            }
            Ok(outcomes)
        }
        Mode::Timed { parallel } => {
            let next = AtomicUsize::new(0);
            let outcomes = Mutex::new(vec![LabOutcome::default(); requests.len()]);
            let start = Instant::now();
            std::thread::scope(|s| {
                for worker in 0..parallel.max(1) {
                    let (next, outcomes, one) = (&next, &outcomes, &one);
                    s.spawn(move || {
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            let Some(r) = requests.get(k) else { break };
                            let due = start + r.at;
                            let now = Instant::now();
                            if due > now {
                                std::thread::sleep(due - now);
                            }
                            let late = Instant::now().saturating_duration_since(due);
                            let out = one(k, worker, late);
                            outcomes.lock().expect("no panics while held")[k] = out;
                        }
                    });
                }
            });
            Ok(outcomes.into_inner().expect("no panics while held"))
        }
    }
}

/// One `reef get` in the client's site, checked byte for byte.
fn fetch(net: &Network, urls: &[String], r: &LabRequest, reef: &Path, file: &PathBuf) -> LabOutcome {
    let started = Instant::now();
    let _ = std::fs::remove_file(file);
    let mut cmd = net.command(r.site, &reef.to_string_lossy());
    cmd.arg("get").arg(format!("{}{}", urls[r.sources[0]], r.path)).arg("-o").arg(file).arg("--json");
    for &m in &r.sources[1..] {
        cmd.args(["--mirror", &urls[m]]);
    }
    cmd.args(["--attempts", &r.sources.len().to_string()]);
    let result = cmd.output().context("running reef get");
    let duration = started.elapsed();
    let fail = |error: String| LabOutcome { error: Some(error), duration, ..LabOutcome::default() };
    let out = match result {
        Ok(out) => out,
        Err(e) => return fail(format!("{e:#}")),
    };
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let error = text.lines().last().unwrap_or("reef get failed").trim().to_string();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let reason = match (report["failure"].as_str(), report["answered"].as_bool()) {
            (Some(name), _) => name.to_string(),
            (None, Some(false)) => "node_down".to_string(),
            _ => error.chars().take(80).collect(),
        };
        return LabOutcome { reason: Some(reason), ..fail(error) };
    }
    let report: serde_json::Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(e) => return fail(format!("reef get printed no report: {e}")),
    };
    let cache_status = report["cache_status"].as_str().map(str::to_string);
    if !crate::export::holds(file, r.id, r.size) {
        return LabOutcome { reason: Some("wrong_bytes".into()), ..fail(format!("wrong bytes for {}", r.path)) };
    }
    let duration = report["seconds"].as_f64().map_or(duration, Duration::from_secs_f64);
    LabOutcome {
        holder: cache_status.as_deref().and_then(holder),
        cache_status,
        error: None,
        reason: None,
        duration,
        late: Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::holder;

    #[test]
    fn the_holder_is_the_first_member_of_the_cache_status_list() {
        assert_eq!(holder("reef-n4; hit"), Some(4));
        assert_eq!(holder("reef-n4; fwd=miss; detail=origin-n0"), Some(0));
        assert_eq!(holder("reef-n3; hit, reef-n7; fwd=miss; detail=peer-n3"), Some(3));
        assert_eq!(holder("reef-n2; fwd=miss; detail=origin-n1, reef-n9; fwd=miss; detail=peer-n2"), Some(1));
        assert_eq!(holder("reef-n2; fwd=miss; detail=peer-n5"), None, "a miss that names no origin");
        assert_eq!(holder("squid; hit"), None);
        assert_eq!(holder(""), None);
    }
}
