//! What a simulator run hands to the results layer: plain rows, no dataframe types, so the
//! simulator never depends on polars or plotters.

use serde::{Deserialize, Serialize};

/// What one site's clients asked for and got in one time bucket: requests count in the bucket
/// they were issued in, outcomes in the bucket they ended in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteCounts {
    pub requests: u64,
    pub completed: u64,
    pub failed: u64,
    /// Served requests by where their bytes came from: a node of the client's own site (a
    /// worker node or the site cache), another site's cache, or an origin; however many caches
    /// relayed them on the way.
    pub hits_local: u64,
    pub hits_peer: u64,
    pub hits_origin: u64,
    /// Bytes served to the site's clients, by the same sources.
    pub bytes_local: u64,
    pub bytes_peer: u64,
    pub bytes_origin: u64,
    /// The finer split: `hits_local` = worker node + site cache, `hits_peer` = parent tier
    /// (a site of a higher tier) + other site.
    pub from_worker_node: u64,
    pub from_site_cache: u64,
    pub from_parent_tier: u64,
    pub from_other_site: u64,
    /// Served requests whose bytes were copied by two or more caches' fills on the way.
    pub relayed: u64,
    /// Bytes the site's caches filled (admitted) in the bucket.
    pub cache_fill_bytes: u64,
    /// Bytes the site's origins sent (completed transfers) in the bucket.
    pub origin_egress_bytes: u64,
}

/// What one namespace's clients asked for and got in one time bucket (all sites), what the
/// caches evicted of it, and what its egress limit held back or refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceCounts {
    pub requests: u64,
    pub completed: u64,
    pub failed: u64,
    /// Served requests whose bytes were at the client's site (a worker node or the site cache).
    pub site_hits: u64,
    pub bytes_served: u64,
    pub evicted: u64,
    pub egress_delayed: u64,
    pub egress_refused: u64,
}

/// One time bucket of one namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NamespaceRow {
    /// Start of the bucket, seconds of simulated time.
    pub time_s: f64,
    pub namespace: String,
    #[serde(flatten)]
    pub counts: NamespaceCounts,
}

/// One time bucket of one site.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeseriesRow {
    /// Start of the bucket, seconds of simulated time.
    pub time_s: f64,
    pub site: String,
    pub tier: String,
    #[serde(flatten)]
    pub counts: SiteCounts,
}

/// One time bucket of one WAN link.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkRow {
    pub time_s: f64,
    pub link: String,
    pub bytes: u64,
    /// Mean utilisation over the bucket: bytes carried / (capacity × bucket length), from the
    /// flow model's rates; never above 1 but for rounding, and not capped.
    pub utilisation: f64,
}

/// One time bucket of one origin's tape library: reads of tape files and buffer hits as they
/// were asked, a recall's queue wait and mount when a drive started it, a recall and its drive
/// time (mount, seek, read) when it ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArchiveRow {
    pub time_s: f64,
    pub origin: String,
    pub reads: u64,
    pub buffer_hits: u64,
    pub staging_answers: u64,
    pub polls: u64,
    pub recalls: u64,
    pub mounts: u64,
    pub drive_busy_s: f64,
    pub queue_wait_s: f64,
}

/// One sampled request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRow {
    pub time_s: f64,
    pub site: String,
    pub tier: String,
    pub object: u64,
    pub bytes: u64,
    /// `local`, `peer`, `origin` or `failed`.
    pub source: String,
    pub latency_ms: f64,
    pub lookup_hops: u32,
}

/// A period when something was down, for shading figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutageWindow {
    pub start_s: f64,
    pub end_s: f64,
    pub what: String,
}

/// A latency distribution: (latency in ms, fraction of requests at or below it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cdf {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Everything one run produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// The `--json` summary fields and the scenario's parameters, flat (nested keys joined
    /// with `_`), in a stable order.
    pub summary: Vec<(String, Value)>,
    /// Time bucket width, seconds.
    pub bucket_s: f64,
    pub timeseries: Vec<TimeseriesRow>,
    /// Per time bucket and namespace (empty with one namespace).
    pub namespaces: Vec<NamespaceRow>,
    pub links: Vec<LinkRow>,
    pub requests: Vec<RequestRow>,
    pub latency: Vec<Cdf>,
    pub outages: Vec<OutageWindow>,
    /// Per time bucket and origin with a tape library (empty without `[namespace.tape]`).
    #[serde(default)]
    pub archive: Vec<ArchiveRow>,
}

/// A summary value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Value {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Text(_) => None,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:.4}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

/// Flattens a JSON object into summary fields (`latency_ms.p50` becomes `latency_ms_p50`).
pub fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, Value)>) {
    let key = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}_{k}") };
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                flatten(&key(k), v, out);
            }
        }
        serde_json::Value::Number(n) => {
            let v = match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            };
            out.push((prefix.to_string(), v));
        }
        serde_json::Value::Bool(b) => out.push((prefix.to_string(), Value::Int(i64::from(*b)))),
        serde_json::Value::String(s) => out.push((prefix.to_string(), Value::Text(s.clone()))),
        serde_json::Value::Array(items) => {
            let text = items.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",");
            out.push((prefix.to_string(), Value::Text(text)));
        }
        serde_json::Value::Null => out.push((prefix.to_string(), Value::Text(String::new()))),
    }
}

impl RunResults {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.summary.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}
