//! Prometheus text-format metrics: counters keyed by name and labels, and request latency
//! histograms. Core events (hits, fetches, failovers, admissions, evictions, peer health) are
//! counted as the core reports them.

use reef_core::{Event, Source};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Debug, Default)]
pub struct Metrics {
    /// Keyed by `name SEP labels`: one string, so that a lookup needs no allocation.
    counters: Mutex<BTreeMap<String, f64>>,
    /// Values that go up and down (what the cache holds), keyed as the counters.
    gauges: Mutex<BTreeMap<String, f64>>,
    histograms: Mutex<BTreeMap<String, Histogram>>,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

fn help(name: &str) -> &'static str {
    match name {
        "reef_requests_total" => "Requests answered, by role and outcome.",
        "reef_response_bytes_total" => "Body bytes sent to clients, by where they came from.",
        "reef_cache_hits_total" => "Requests served from the local store.",
        "reef_coalesced_total" => "Misses that joined a fetch already in flight.",
        "reef_fetches_total" => "Fetches started, by source kind (origin or peer).",
        "reef_failovers_total" => "Sources that failed and were replaced by the next one.",
        "reef_split_fills_total" => "Fills of large objects split across several holders (multi-source fetch).",
        "reef_part_failovers_total" => {
            "Ranges of split fills whose holder failed or stalled, handed on to another holder."
        }
        "reef_cache_admitted_total" => "Fills admitted into the cache.",
        "reef_cache_admitted_bytes_total" => "Bytes of fills admitted into the cache.",
        "reef_cache_not_admitted_total" => "Fills not kept.",
        "reef_not_storable_total" => {
            "Third-party responses a shared cache may not keep (no-store, private, Vary): passed on, not kept."
        }
        "reef_cache_evictions_total" => "Objects evicted.",
        "reef_cache_evicted_bytes_total" => "Bytes evicted.",
        "reef_peer_state_changes_total" => "Peers seen going down or coming back.",
        "reef_namespace_cached_bytes" => "Bytes the cache holds, by namespace with a quota (`other`: the rest).",
        "reef_namespace_cached_objects" => "Objects the cache holds, by namespace with a quota (`other`: the rest).",
        "reef_namespace_evictions_total" => "Objects evicted, by namespace.",
        "reef_namespace_requests_total" => "Requests answered, by namespace and outcome (hit, miss, ...).",
        "reef_namespace_response_bytes_total" => "Body bytes sent, by namespace.",
        "reef_namespace_throttled_total" => {
            "Client requests held back (`delayed`) or refused with 503 (`refused`) by the namespace's egress limit."
        }
        "reef_namespace_throttle_wait_seconds_total" => "Seconds delayed responses waited for their egress limit.",
        "reef_fills_no_room_total" => "Fills that found no room on the disk, even passing through (answered 507).",
        "reef_memory_cache_bytes" => "Bytes of small objects' verified copies held in memory (node.memory_cache).",
        "reef_store_lost_total" => "Stored copies found missing, truncated or corrupt (dropped and fetched again).",
        "reef_scrubbed_objects_total" => "Stored objects the scrub read and found intact.",
        "reef_scrub_next_pass_timestamp_seconds" => {
            "When the scrub's next pass starts (Unix time), set as a pass ends."
        }
        "reef_requests_denied_total" => "Requests refused by the access decision, by reason.",
        "reef_node_requests_refused_total" => {
            "Node requests refused: identity not proven by the certificate, or an unknown node."
        }
        "reef_tls_handshake_failures_total" => {
            "TLS handshakes that failed (bad or foreign certificates, plain HTTP on the TLS port)."
        }
        "reef_uploads_total" => {
            "Uploads (PUT) answered, by outcome (created, partial, probe, conflict, mismatch, ...)."
        }
        "reef_upload_bytes_total" => "Upload body bytes received.",
        "reef_ingest_files_total" => {
            "Files the ingest daemon handled, by outcome (uploaded, already_there, failed, retry)."
        }
        "reef_ingest_bytes_total" => "Bytes the ingest daemon sent.",
        "reef_ingest_pending_files" => "Files waiting to be uploaded at the last scan.",
        "reef_ingest_failed_files" => "Files set aside: the origin refused them.",
        "reef_site_requests_total" => "Requests answered, by the client's site (as configured in [[sites]]).",
        "reef_dns_queries_total" => "DNS queries a director answered, by answer (answered, nxdomain, no_cache, ...).",
        "reef_revalidations_total" => {
            "Stale copies (past their namespace's max_age) revalidated with the origin, by result."
        }
        "reef_served_stale_total" => "Requests served a stale copy because no origin answered its revalidation.",
        "reef_staging_started_total" => "Nearline files whose staging a read started (emulated tape recalls).",
        "reef_staging_answers_total" => "Reads of nearline files answered 503 staging (ask again after Retry-After).",
        "reef_staging_files" => "Nearline files being staged, as of the last staging answer.",
        "reef_staging_waits_total" => "Fetches told by their source that it is staging the object (asked again later).",
        "reef_connections_refused_total" => "Connections closed on arrival: the connection limit was reached.",
        _ => "",
    }
}

/// Whether this node exports a metric of that name (a series, or a histogram's part).
pub fn exported(name: &str) -> bool {
    let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
    !help(name).is_empty() || base == "reef_request_duration_seconds"
}

/// Separates a counter's name from its labels in the map key (never in a name or a label).
const SEP: char = '\u{1}';

/// Calls `f` with `name SEP k1="v1",k2="v2"` built in a reused per-thread buffer.
fn with_key<R>(name: &str, labels: &[(&str, &str)], f: impl FnOnce(&str) -> R) -> R {
    thread_local!(static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) });
    KEY.with_borrow_mut(|key| {
        key.clear();
        key.push_str(name);
        key.push(SEP);
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                key.push(',');
            }
            key.push_str(k);
            key.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' | '"' => {
                        key.push('\\');
                        key.push(c);
                    }
                    SEP => key.push(' '),
                    c => key.push(c),
                }
            }
            key.push('"');
        }
        f(key)
    })
}

pub fn source_label(source: Source) -> &'static str {
    match source {
        Source::Local => "local",
        Source::Peer { .. } => "peer",
        Source::Origin { .. } => "origin",
    }
}

impl Metrics {
    /// Sets a gauge.
    pub fn set(&self, name: &'static str, labels: &[(&str, &str)], value: f64) {
        with_key(name, labels, |key| {
            let mut gauges = self.gauges.lock().expect("metrics");
            match gauges.get_mut(key) {
                Some(v) => *v = value,
                None => {
                    gauges.insert(key.to_string(), value);
                }
            }
        });
    }

    pub fn add(&self, name: &'static str, labels: &[(&str, &str)], by: f64) {
        with_key(name, labels, |key| {
            let mut counters = self.counters.lock().expect("metrics");
            match counters.get_mut(key) {
                Some(v) => *v += by,
                None => {
                    counters.insert(key.to_string(), by);
                }
            }
        });
    }

    pub fn observe_request(&self, role: &str, outcome: &str, seconds: f64) {
        let labels = [("role", role), ("outcome", outcome)];
        self.add("reef_requests_total", &labels, 1.0);
        let mut histograms = self.histograms.lock().expect("metrics");
        let h = with_key("", &labels, |key| {
            let labels = &key[SEP.len_utf8()..];
            if !histograms.contains_key(labels) {
                histograms.insert(labels.to_string(), Histogram::default());
            }
            histograms.get_mut(labels).expect("just inserted")
        });
        for (b, le) in h.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= le {
                *b += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    pub fn core_event(&self, event: &Event) {
        match event {
            Event::Hit { .. } => self.add("reef_cache_hits_total", &[], 1.0),
            Event::Coalesced { .. } => self.add("reef_coalesced_total", &[], 1.0),
            Event::FetchStarted { source, .. } => {
                self.add("reef_fetches_total", &[("source", source_label(*source))], 1.0)
            }
            Event::Failover { reason, .. } => self.add("reef_failovers_total", &[("reason", reason.name())], 1.0),
            Event::Split { .. } => self.add("reef_split_fills_total", &[], 1.0),
            Event::PartFailover { reason, .. } => {
                self.add("reef_part_failovers_total", &[("reason", reason.name())], 1.0)
            }
            Event::Admitted { size, .. } => {
                self.add("reef_cache_admitted_total", &[], 1.0);
                self.add("reef_cache_admitted_bytes_total", &[], *size as f64);
            }
            Event::NotAdmitted { .. } => self.add("reef_cache_not_admitted_total", &[], 1.0),
            Event::NotStorable { .. } => self.add("reef_not_storable_total", &[], 1.0),
            Event::Evicted { size, .. } => {
                self.add("reef_cache_evictions_total", &[], 1.0);
                self.add("reef_cache_evicted_bytes_total", &[], *size as f64);
            }
            Event::PeerDown { .. } => self.add("reef_peer_state_changes_total", &[("to", "down")], 1.0),
            Event::PeerUp { .. } => self.add("reef_peer_state_changes_total", &[("to", "up")], 1.0),
            Event::NoRoom { .. } => self.add("reef_fills_no_room_total", &[], 1.0),
            Event::Staging { .. } => self.add("reef_staging_waits_total", &[], 1.0),
            Event::Revalidated { modified, .. } => {
                let result = if *modified { "modified" } else { "not_modified" };
                self.add("reef_revalidations_total", &[("result", result)], 1.0)
            }
            Event::ServedStale { .. } => self.add("reef_served_stale_total", &[], 1.0),
            _ => {}
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = self.counters.lock().expect("metrics").clone();
        let gauges = self.gauges.lock().expect("metrics").clone();
        for (kind, values) in [("counter", &counters), ("gauge", &gauges)] {
            let mut last = "";
            for (key, value) in values {
                let (name, labels) = key.split_once(SEP).unwrap_or((key, ""));
                if name != last {
                    let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", help(name));
                    last = name;
                }
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        }
        let name = "reef_request_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Time from request to the last body byte.\n# TYPE {name} histogram");
        for (labels, h) in self.histograms.lock().expect("metrics").iter() {
            for (b, le) in h.buckets.iter().zip(LATENCY_BUCKETS) {
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {b}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grafana_dashboard_asks_only_for_exported_metrics() {
        let text = include_str!("../grafana/reef.json");
        let dashboard: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut names = Vec::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                let mut rest = expr;
                while let Some(at) = rest.find("reef_") {
                    let name: String = rest[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                        .collect();
                    rest = &rest[at + name.len()..];
                    names.push(name);
                }
            }
        }
        assert!(names.len() >= 12);
        for name in names {
            assert!(exported(&name), "the dashboard asks for `{name}`, which no node exports");
        }
    }

    #[test]
    fn renders_text_format() {
        let m = Metrics::default();
        m.add("reef_fetches_total", &[("source", "origin")], 1.0);
        m.add("reef_fetches_total", &[("source", "origin")], 1.0);
        m.observe_request("cache", "hit", 0.003);
        let text = m.render();
        assert!(text.contains("reef_fetches_total{source=\"origin\"} 2"), "{text}");
        assert!(text.contains("# TYPE reef_requests_total counter"));
        assert!(text.contains("reef_request_duration_seconds_bucket{role=\"cache\",outcome=\"hit\",le=\"0.005\"} 1"));
    }
}
