//! Nearline exports: an origin namespace that emulates an archive's tape (`nearline` in its
//! `[[namespaces]]`). A file is not online until a read asks for it; that read starts staging
//! it, which takes the configured `delay`, and it and every read until then are answered
//! `503` with `Retry-After` and `Reef-Staging: staging` (a cache's core then asks again later,
//! `reef_core::FetchResult::Staging`, instead of failing over). Once staged, a file stays online
//! for the life of the process. A `HEAD` (metadata) never stages.

use reef_core::NamespaceId;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Marks an answer "staging, ask again after `Retry-After`" on the wire.
pub const REEF_STAGING: &str = "reef-staging";

/// What a read of a nearline file hears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Staged {
    Online,
    /// Ask again after `retry_after`; `started`: this read started the staging.
    Staging {
        retry_after: Duration,
        started: bool,
    },
}

#[derive(Debug, Default)]
pub struct Nearline {
    /// Per namespace index: (staging delay, retry-after), for nearline namespaces.
    rules: Vec<Option<(Duration, Duration)>>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When each file's staging started, by (namespace, path).
    started: HashMap<(u16, String), Instant>,
    /// When the stagings still under way end (how many at each instant): the gauge costs no
    /// scan of every file.
    ready_at: BTreeMap<Instant, u32>,
}

impl Nearline {
    pub fn new(rules: Vec<Option<(Duration, Duration)>>) -> Nearline {
        Nearline { rules, state: Mutex::default() }
    }

    /// A read of `path` in namespace `ns` at `now`.
    pub fn read(&self, ns: NamespaceId, path: &str, now: Instant) -> Staged {
        let Some(Some((delay, retry_after))) = self.rules.get(usize::from(ns.0)).copied() else {
            return Staged::Online;
        };
        let mut state = self.state.lock().expect("nearline state");
        let (since, new) = match state.started.get(&(ns.0, path.to_string())) {
            Some(&since) => (since, false),
            None => {
                state.started.insert((ns.0, path.to_string()), now);
                *state.ready_at.entry(now + delay).or_default() += 1;
                (now, true)
            }
        };
        let ready = since + delay;
        if now >= ready && !new || delay.is_zero() {
            return Staged::Online;
        }
        // Never later than the file is ready: a reader that waits longer only loses time.
        let left = ready.saturating_duration_since(now);
        Staged::Staging { retry_after: retry_after.min(left).max(Duration::from_secs(1)), started: new }
    }

    /// Whether `path` is online at `now` without staging it (`None`: not a nearline namespace,
    /// so always online).
    pub fn online(&self, ns: NamespaceId, path: &str, now: Instant) -> Option<bool> {
        let (delay, _) = self.rules.get(usize::from(ns.0)).copied().flatten()?;
        let state = self.state.lock().expect("nearline state");
        Some(state.started.get(&(ns.0, path.to_string())).is_some_and(|&since| now >= since + delay))
    }

    /// Files whose staging has started and not finished at `now`.
    pub fn in_progress(&self, now: Instant) -> usize {
        let mut state = self.state.lock().expect("nearline state");
        // Those ready by now are forgotten here (`started` remembers them as online).
        let mut pending = state.ready_at.split_off(&now);
        pending.remove(&now);
        state.ready_at = pending;
        state.ready_at.values().map(|&n| n as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_staged_once_on_first_read_and_online_after_the_delay() {
        let ns = NamespaceId(1);
        let rules = vec![None, Some((Duration::from_secs(20), Duration::from_secs(5)))];
        let n = Nearline::new(rules);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(n.read(ns, "a", at(0)), Staged::Staging { retry_after: Duration::from_secs(5), started: true });
        assert_eq!(n.read(ns, "a", at(5)), Staged::Staging { retry_after: Duration::from_secs(5), started: false });
        // Three seconds before it is ready: ask again in three.
        assert_eq!(n.read(ns, "a", at(17)), Staged::Staging { retry_after: Duration::from_secs(3), started: false });
        assert_eq!(n.in_progress(at(17)), 1);
        assert_eq!(n.read(ns, "a", at(20)), Staged::Online);
        assert_eq!(n.in_progress(at(20)), 0);
        // Another file starts its own staging; a namespace on disk never stages.
        assert_eq!(n.online(ns, "c", at(20)), Some(false), "asking does not stage");
        assert!(matches!(n.read(ns, "b", at(20)), Staged::Staging { started: true, .. }));
        assert_eq!((n.online(ns, "b", at(39)), n.online(ns, "b", at(40))), (Some(false), Some(true)));
        assert_eq!(n.read(NamespaceId(0), "a", at(0)), Staged::Online);
        assert_eq!(n.online(NamespaceId(0), "a", at(0)), None);
    }
}
