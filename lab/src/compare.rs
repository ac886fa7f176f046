//! The two drivers side by side: per request (did the bytes come from the same kind of
//! store?), per site and source, origin transfers, bytes per WAN link, transfer times and
//! failures, with the relative difference; written as Markdown.
//!
//! Definitions (the report repeats them):
//! - *source*: where a served request's bytes came from, seen from the client's site (the
//!   simulator's `BytesFrom`: worker_node, site_cache, parent_tier, other_site, origin), from
//!   the node that held them: in the lab, the first member of the `Cache-Status` list.
//! - *origin transfers*: completed transfers out of origins (the simulator's
//!   `origin_transfers`; in the lab, origin access-log lines of whole `served` GETs).
//! - *relative difference*: (lab - sim) / sim; `-` when sim is 0.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// One request's ending in one driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub site: String,
    /// A source name, or `failed`.
    pub source: String,
    pub duration: Duration,
}

/// What one driver produced.
#[derive(Debug, Clone, Default)]
pub struct Side {
    /// By request, in the replay's order.
    pub requests: Vec<Ending>,
    pub origin_transfers: u64,
    /// Damaged stored copies found when read (and fetched again).
    pub damaged_found: u64,
    /// Fills that found their node's disk full (the core's `NoRoom` event).
    pub no_room: u64,
    /// Bytes that crossed each WAN link (both directions).
    pub link_bytes: Vec<u64>,
    /// Failed requests by reason.
    pub failures: BTreeMap<String, u64>,
}

#[derive(Debug, Clone)]
pub struct Comparison {
    pub sim: Side,
    pub lab: Side,
    pub link_names: Vec<String>,
    /// How the lab was run, said at the top of the report.
    pub setup: String,
}

/// (lab - sim) / sim, if sim is not 0.
pub fn relative(sim: f64, lab: f64) -> Option<f64> {
    (sim != 0.0).then(|| (lab - sim) / sim)
}

fn pct(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{:+.1}%", r * 100.0))
}

/// The `q` quantile (nearest rank) of `values`, in ms.
pub fn quantile_ms(values: &mut [Duration], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1].as_secs_f64() * 1e3
}

impl Side {
    /// Requests by (site, source).
    pub fn by_site_source(&self) -> BTreeMap<(String, String), u64> {
        let mut out = BTreeMap::new();
        for r in &self.requests {
            *out.entry((r.site.clone(), r.source.clone())).or_default() += 1;
        }
        out
    }

    fn durations(&self, source: &str) -> Vec<Duration> {
        self.requests.iter().filter(|r| r.source == source).map(|r| r.duration).collect()
    }
}

impl Comparison {
    /// Requests whose source differs between the drivers.
    pub fn disagreements(&self) -> usize {
        self.sim.requests.iter().zip(&self.lab.requests).filter(|(s, l)| s.source != l.source).count()
    }

    /// The largest relative difference over the (site, source) counts, taken against the
    /// number of requests of the site (so a count of 1 against 2 in a site of 500 requests
    /// is 0.2%, not 100%).
    pub fn worst_site_source_difference(&self) -> f64 {
        let (s, l) = (self.sim.by_site_source(), self.lab.by_site_source());
        let mut per_site: BTreeMap<&str, u64> = BTreeMap::new();
        for r in &self.sim.requests {
            *per_site.entry(&r.site).or_default() += 1;
        }
        s.keys()
            .chain(l.keys())
            .map(|k| {
                let (a, b) = (s.get(k).copied().unwrap_or(0), l.get(k).copied().unwrap_or(0));
                a.abs_diff(b) as f64 / per_site.get(k.0.as_str()).copied().unwrap_or(1).max(1) as f64
            })
            .fold(0.0, f64::max)
    }

    /// The report in Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# reef-lab: the simulator and a real cluster, side by side\n");
        let _ = writeln!(out, "{}\n", self.setup);
        let n = self.sim.requests.len();
        let _ = writeln!(
            out,
            "{n} requests; {} got their bytes from another kind of store in the lab than in the simulation.\n",
            self.disagreements()
        );
        let _ = writeln!(out, "| figure | simulator | lab | difference |\n|---|---:|---:|---:|");
        let row = |out: &mut String, name: &str, a: u64, b: u64| {
            let _ = writeln!(out, "| {name} | {a} | {b} | {} |", pct(relative(a as f64, b as f64)));
        };
        row(&mut out, "origin transfers", self.sim.origin_transfers, self.lab.origin_transfers);
        row(&mut out, "damaged copies found", self.sim.damaged_found, self.lab.damaged_found);
        row(&mut out, "fills without room", self.sim.no_room, self.lab.no_room);
        let failed = |s: &Side| s.requests.iter().filter(|r| r.source == "failed").count() as u64;
        row(&mut out, "failed requests", failed(&self.sim), failed(&self.lab));

        let _ = writeln!(out, "\n## Requests by site and source\n");
        let _ = writeln!(out, "| site | source | simulator | lab | difference |\n|---|---|---:|---:|---:|");
        let (s, l) = (self.sim.by_site_source(), self.lab.by_site_source());
        let keys: std::collections::BTreeSet<_> = s.keys().chain(l.keys()).collect();
        for k in keys {
            let (a, b) = (s.get(k).copied().unwrap_or(0), l.get(k).copied().unwrap_or(0));
            let _ = writeln!(out, "| {} | {} | {a} | {b} | {} |", k.0, k.1, pct(relative(a as f64, b as f64)));
        }

        let _ = writeln!(out, "\n## Transfer times (ms, client start to last byte)\n");
        let _ = writeln!(
            out,
            "| source | requests | p50 sim | p50 lab | p90 sim | p90 lab | p99 sim | p99 lab |\n|---|---:|---:|---:|---:|---:|---:|---:|"
        );
        let sources: std::collections::BTreeSet<&str> =
            self.sim.requests.iter().map(|r| r.source.as_str()).filter(|s| *s != "failed").collect();
        for source in sources {
            let (mut a, mut b) = (self.sim.durations(source), self.lab.durations(source));
            let _ = write!(out, "| {source} | {} ", a.len());
            for q in [0.5, 0.9, 0.99] {
                let _ = write!(out, "| {:.1} | {:.1} ", quantile_ms(&mut a, q), quantile_ms(&mut b, q));
            }
            let _ = writeln!(out, "|");
        }

        let _ = writeln!(out, "\n## Bytes per WAN link (MB, both directions)\n");
        let _ = writeln!(
            out,
            "The lab counts what the link's shaper sent: packet headers and the nodes' own messages \
             (membership probes, block lists) as well as the objects' bytes.\n"
        );
        let _ = writeln!(out, "| link | simulator | lab | difference |\n|---|---:|---:|---:|");
        for (i, name) in self.link_names.iter().enumerate() {
            let (a, b) =
                (self.sim.link_bytes.get(i).copied().unwrap_or(0), self.lab.link_bytes.get(i).copied().unwrap_or(0));
            let _ = writeln!(
                out,
                "| {name} | {:.2} | {:.2} | {} |",
                a as f64 / 1e6,
                b as f64 / 1e6,
                pct(relative(a as f64, b as f64))
            );
        }

        let _ = writeln!(out, "\n## Failures by reason\n");
        let reasons: std::collections::BTreeSet<&String> =
            self.sim.failures.keys().chain(self.lab.failures.keys()).collect();
        if reasons.is_empty() {
            let _ = writeln!(out, "None in either driver.");
        } else {
            let _ = writeln!(out, "| reason | simulator | lab |\n|---|---:|---:|");
            for r in reasons {
                let get = |s: &Side| s.failures.get(r).copied().unwrap_or(0);
                let _ = writeln!(out, "| {r} | {} | {} |", get(&self.sim), get(&self.lab));
            }
        }
        out
    }
}

impl Comparison {
    /// Time to last byte per driver, for the served requests whose bytes came from `source`
    /// (all served requests for `None`), as cumulative distributions in ms.
    pub fn cdfs(&self, source: Option<&str>) -> Vec<(String, Vec<(f64, f64)>)> {
        [("simulator", &self.sim), ("lab", &self.lab)]
            .into_iter()
            .map(|(name, side)| {
                let mut ms: Vec<f64> = side
                    .requests
                    .iter()
                    .filter(|r| r.source != "failed" && source.is_none_or(|s| r.source == s))
                    .map(|r| r.duration.as_secs_f64() * 1e3)
                    .collect();
                ms.sort_by(f64::total_cmp);
                let n = ms.len() as f64;
                (name.to_string(), ms.iter().enumerate().map(|(i, &v)| (v, (i + 1) as f64 / n)).collect())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending(site: &str, source: &str, ms: u64) -> Ending {
        Ending { site: site.into(), source: source.into(), duration: Duration::from_millis(ms) }
    }

    #[test]
    fn differences_are_counted_per_request_and_per_site() {
        let sim = Side {
            requests: vec![
                ending("A", "origin", 10),
                ending("A", "site_cache", 1),
                ending("B", "origin", 10),
                ending("B", "origin", 10),
            ],
            origin_transfers: 3,
            ..Side::default()
        };
        let mut lab = sim.clone();
        lab.requests[3].source = "site_cache".into();
        lab.origin_transfers = 2;
        let c = Comparison { sim, lab, link_names: vec![], setup: String::new() };
        assert_eq!(c.disagreements(), 1);
        // Site B: origin 2 -> 1 and site_cache 0 -> 1, each 1 of B's 2 requests.
        assert_eq!(c.worst_site_source_difference(), 0.5);
        assert_eq!(relative(3.0, 2.0), Some(-1.0 / 3.0));
        assert_eq!(relative(0.0, 2.0), None);
        let md = c.markdown();
        assert!(md.contains("| origin transfers | 3 | 2 | -33.3% |"), "{md}");
        assert!(md.contains("| B | origin | 2 | 1 | -50.0% |"), "{md}");
        assert!(md.contains("4 requests; 1 got their bytes"), "{md}");
        // The simulator's origin-served requests: 10 ms each, the two of them.
        assert_eq!(
            c.cdfs(Some("origin"))[0],
            ("simulator".to_string(), vec![(10.0, 1.0 / 3.0), (10.0, 2.0 / 3.0), (10.0, 1.0)])
        );
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut v: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(quantile_ms(&mut v, 0.5), 5.0);
        assert_eq!(quantile_ms(&mut v, 0.9), 9.0);
        assert_eq!(quantile_ms(&mut v, 0.99), 10.0);
        assert_eq!(quantile_ms(&mut [], 0.5), 0.0);
    }
}
