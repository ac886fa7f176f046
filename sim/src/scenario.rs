//! Scenario files: the TOML schema, `--set` overrides, and errors that say where.
//!
//! A file is parsed into toml's spanned tree, overrides are written into that tree, and the tree
//! is deserialized with the key path tracked (serde_path_to_error). A bad value therefore gets
//! `file:line:column`, its key path and what was expected; a bad `--set` value is reported as
//! coming from the command line.

use reef_core::policy::{WORKER_STRATEGY, at_least_one, caches_strategies, fraction, positive_span, positive_span_opt};
use reef_core::units::{Parsed, Rate, Size, Span};
use reef_core::{BitRate, Duration, Policy, Tier};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A whole scenario. Every section has defaults except the workload and a topology.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Shown in reports; defaults to the file's stem.
    #[serde(default)]
    pub name: Option<String>,
    /// Seed of every random choice; `--seed` overrides it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default)]
    pub policy: Policy,
    pub topology: TopologySpec,
    #[serde(default, rename = "namespace")]
    pub namespaces: Vec<NamespaceSpec>,
    pub workload: WorkloadSpec,
    #[serde(default, rename = "outage")]
    pub outages: Vec<OutageSpec>,
    #[serde(default, rename = "random_outage")]
    pub random_outages: Vec<RandomOutageSpec>,
    #[serde(default)]
    pub run: RunSpec,
    /// The file it came from (named in errors found when the world is built).
    #[serde(skip)]
    pub path: PathBuf,
}

fn default_seed() -> u64 {
    1
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologySpec {
    /// A WLCG-like topology made from a few parameters; explicit sites and links are added to it.
    #[serde(default)]
    pub generate: Option<GenerateSpec>,
    #[serde(default, rename = "site")]
    pub sites: Vec<SiteSpec>,
    #[serde(default, rename = "link")]
    pub links: Vec<LinkSpec>,
    /// One-way latency between two nodes of one site.
    #[serde(default = "default_lan_latency")]
    pub lan_latency: Span,
    /// How routes between sites are chosen.
    #[serde(default)]
    pub routing: Routing,
}

/// How routes between sites are chosen (see `topology.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Routing {
    /// As LHCOPN/LHCONE route: the fewest links (a direct tier link first, then the Tier-1
    /// mesh), the lowest latency among those; detours only when a link is down.
    #[default]
    Policy,
    /// The lowest total latency, whatever the number of links.
    Latency,
}

fn default_lan_latency() -> Span {
    Span(Duration::from_micros(100))
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSpec {
    pub name: String,
    pub tier: Parsed<Tier>,
    #[serde(default = "default_region")]
    pub region: String,
    /// Site cache capacity.
    #[serde(default)]
    pub cache: Size,
    #[serde(default)]
    pub worker_nodes: u32,
    /// Cache capacity of each worker node (0: worker nodes do not cache).
    #[serde(default)]
    pub wn_cache: Size,
    #[serde(default = "default_lan")]
    pub lan: Rate,
    /// Relative share of client requests; defaults to the tier's `workload.tier_weights`.
    #[serde(default)]
    pub weight: Option<f64>,
}

fn default_region() -> String {
    "default".into()
}
fn default_lan() -> Rate {
    Rate(BitRate(400_000_000_000))
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    pub a: String,
    pub b: String,
    pub bandwidth: Rate,
    pub latency: Span,
}

/// Parameters of the WLCG-like generator (see `generate.rs`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerateSpec {
    pub t1: u32,
    pub t2: u32,
    /// Region names; the Tier-0 is in the first. Sites are spread over regions round-robin.
    pub regions: Vec<String>,
    pub t0_cache: Size,
    pub t1_cache: Size,
    pub t2_cache: Size,
    pub t1_worker_nodes: u32,
    pub t2_worker_nodes: u32,
    pub wn_cache: Size,
    /// Link classes: each link of a class gets one of the listed bandwidths (picked by the seed).
    pub t0_t1: Vec<Rate>,
    pub t1_t1: Vec<Rate>,
    pub t1_t2: Vec<Rate>,
    pub lan: Rate,
    pub same_region_latency: Span,
    pub cross_region_latency: Span,
    /// Each link's latency is the class latency times a factor in [1 - spread, 1 + spread].
    pub latency_spread: f64,
}

impl Default for GenerateSpec {
    fn default() -> Self {
        let g = |n: u64| Rate(BitRate(n * 1_000_000_000));
        GenerateSpec {
            t1: 12,
            t2: 155,
            regions: vec!["europe".into(), "north-america".into(), "asia".into()],
            t0_cache: Size(1 << 50),
            t1_cache: Size(500 << 40),
            t2_cache: Size(100 << 40),
            t1_worker_nodes: 0,
            t2_worker_nodes: 0,
            wn_cache: Size(0),
            t0_t1: vec![g(100)],
            t1_t1: vec![g(100)],
            t1_t2: vec![g(10), g(40), g(100)],
            lan: g(400),
            same_region_latency: Span(Duration::from_millis(10)),
            cross_region_latency: Span(Duration::from_millis(100)),
            latency_spread: 0.5,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceSpec {
    pub name: String,
    /// The namespace's storage quota in every cache (`reef_core::cache::NamespaceQuota`).
    #[serde(default)]
    pub quota: reef_core::cache::NamespaceQuota,
    /// Sites holding an origin of the namespace, in order of preference; default: the Tier-0.
    #[serde(default)]
    pub origins: Vec<String>,
    /// Readable only with a token that grants it (`reef_core::access`); see
    /// `workload.invalid_tokens`.
    #[serde(default)]
    pub private: bool,
    /// Objects may change at the origin: caches serve a copy for at most this long after its
    /// fetch, then fetch it again (`reef_core::NodeConfig::max_age`). Default: write-once.
    #[serde(default, deserialize_with = "positive_span_opt")]
    pub max_age: Option<Span>,
    /// The namespace's origins are archives with this tape library behind them (each origin
    /// its own); default: every file on disk (`crate::tape` states the model).
    #[serde(default)]
    pub tape: Option<TapeSpec>,
    /// The origins are third-party HTTP servers that answer every fetch with this
    /// `Cache-Control` (such as `"max-age=600"` or `"no-store"`): caches fetch the objects from
    /// them alone and keep and revalidate copies as the header allows
    /// (`reef_core::http_caching`). Default: Reef origins.
    #[serde(default)]
    pub cache_control: Option<String>,
}

/// `[namespace.tape]`: an archive's tape library (see `crate::tape`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TapeSpec {
    /// Share of the namespace's files whose only copy at the origin is on tape (0 to 1).
    #[serde(deserialize_with = "fraction")]
    pub share: f64,
    #[serde(deserialize_with = "at_least_one")]
    pub drives: u64,
    /// Cartridges the tape files are spread over (a dataset's files share one).
    #[serde(deserialize_with = "at_least_one")]
    pub tapes: u64,
    /// Loading a cartridge (unloading the previous one included).
    pub mount: Span,
    /// Positioning to a file on a loaded cartridge.
    pub seek: Span,
    /// Read rate of one drive.
    pub rate: Rate,
    /// The disk buffer recalled files are read from.
    pub buffer: Size,
    /// What the origin tells a reader to wait before asking again while it stages a file.
    #[serde(deserialize_with = "positive_span")]
    pub poll: Span,
}

impl Default for TapeSpec {
    /// A Tier-1 archive's order of magnitude: LTO-9-class drives (about 400 MB/s, a
    /// minute and a half to load, up to a minute to locate a file) and a staging buffer.
    fn default() -> Self {
        TapeSpec {
            share: 1.0,
            drives: 8,
            tapes: 1000,
            mount: Span(Duration::from_secs(90)),
            seek: Span(Duration::from_secs(40)),
            rate: Rate(BitRate(3_200_000_000)),
            buffer: Size(100_000_000_000_000),
            poll: Span(Duration::from_secs(60)),
        }
    }
}

impl TapeSpec {
    pub fn params(&self) -> Result<crate::tape::TapeParams, String> {
        if self.rate.0.0 == 0 || self.buffer.0 == 0 {
            return Err("tape: rate and buffer must be more than zero".into());
        }
        Ok(crate::tape::TapeParams {
            share: self.share,
            drives: u32::try_from(self.drives).map_err(|_| "tape: drives: too many")?,
            tapes: u32::try_from(self.tapes).map_err(|_| "tape: tapes: too many")?,
            mount: self.mount.0,
            seek: self.seek.0,
            rate: self.rate.0.bytes_per_sec(),
            buffer: self.buffer.0,
            poll: self.poll.0,
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Client requests in the run (at least 1).
    #[serde(deserialize_with = "at_least_one")]
    pub requests: u64,
    /// Arrivals are spread over this much simulated time (more than zero).
    #[serde(deserialize_with = "positive_span")]
    pub duration: Span,
    /// Objects in the catalog (at least 1).
    #[serde(deserialize_with = "at_least_one")]
    pub objects: u64,
    /// Files per dataset (datasets are contiguous runs of the catalog; at least 1).
    #[serde(default = "default_dataset_files", deserialize_with = "at_least_one")]
    pub dataset_files: u64,
    #[serde(default)]
    pub size: SizeDist,
    /// Zipf exponent of object (and dataset) popularity.
    #[serde(default = "default_zipf")]
    pub zipf: f64,
    /// Fraction of single requests for objects requested only this once.
    #[serde(default)]
    pub one_timers: f64,
    /// Rate at which one client receives a response (client downloads do not share links).
    #[serde(default = "default_client_bandwidth")]
    pub client_bandwidth: Rate,
    #[serde(default)]
    pub tier_weights: TierWeights,
    /// Clients (at sites without worker nodes) ask the director for a cache instead of going
    /// to their site's cache.
    #[serde(default)]
    pub via_director: bool,
    /// One request in flight at a time: each arrival (a single request, or a job's whole run of
    /// files) waits until the previous one has finished, then comes at its own time or at once
    /// if that has passed. The order of requests is the open workload's. `reef-lab` replays
    /// runs like this one request after another, so that both drivers see the same sequence.
    #[serde(default)]
    pub sequential: bool,
    /// Share (0..1) of requests for private namespaces whose token does not grant them: a
    /// third each without a token, with an expired one, and with a scope for another path.
    #[serde(default, deserialize_with = "fraction")]
    pub invalid_tokens: f64,
    #[serde(default)]
    pub jobs: Option<JobsSpec>,
    #[serde(default)]
    pub diurnal: Option<DiurnalSpec>,
    #[serde(default)]
    pub churn: Option<ChurnSpec>,
    #[serde(default, rename = "flash_crowd")]
    pub flash_crowds: Vec<FlashCrowdSpec>,
    /// Replay a trace instead of drawing objects: the trace gives the objects and sizes in
    /// order; arrival times still follow `duration` and the diurnal shape.
    #[serde(default)]
    pub trace: Option<TraceSpec>,
    #[serde(default)]
    pub ingest: Option<IngestSpec>,
}

/// `[workload.ingest]`: new files are published at the origins during the run (at a steady
/// rate, from the start), and a share of single requests asks for recent ones. Fresh data is
/// in no cache yet: its first requests go to an origin wherever they come from.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSpec {
    /// Files published per hour of simulated time (more than 0).
    pub files_per_hour: f64,
    /// Share (0..1) of single requests for a recently published file.
    #[serde(deserialize_with = "fraction")]
    pub share: f64,
    /// A request for fresh data picks uniformly among the newest this many files (at least 1).
    #[serde(default = "default_recent", deserialize_with = "at_least_one")]
    pub recent: u64,
}

fn default_recent() -> u64 {
    100
}

/// A trace as the workload, in one of the `replay` command's formats.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    /// The trace file; relative paths are relative to the scenario file.
    pub file: PathBuf,
    /// `csv`, `oracle-general` or `reef-log` (zstd-compressed files are recognised).
    pub format: String,
    /// How requests map to client sites: `weights` (drawn by the sites' request weights) or
    /// `round-robin` (each site in turn, among those with a weight).
    #[serde(default = "default_trace_sites")]
    pub sites: String,
    /// CSV columns with object ids and sizes.
    #[serde(default = "default_id_column")]
    pub id_column: String,
    #[serde(default = "default_size_column")]
    pub size_column: String,
}

fn default_trace_sites() -> String {
    "weights".into()
}
fn default_id_column() -> String {
    "obj_id".into()
}
fn default_size_column() -> String {
    "obj_size".into()
}

/// A count that must be at least 1 (`workload.requests`, `workload.objects`): zero is refused
/// when the file is read, with the key and where, rather than failing later in the run.
fn default_dataset_files() -> u64 {
    1000
}
fn default_zipf() -> f64 {
    1.0
}
fn default_client_bandwidth() -> Rate {
    Rate(BitRate(10_000_000_000))
}

/// Object sizes.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum SizeDist {
    Fixed {
        value: Size,
    },
    /// Lognormal with the given median and shape, clamped to [min, max].
    Lognormal {
        median: Size,
        sigma: f64,
        #[serde(default = "default_min_size")]
        min: Size,
        #[serde(default = "default_max_size")]
        max: Size,
    },
    /// Bins of (upper bound, weight): a size is uniform between the previous bound and this one.
    Histogram {
        bins: Vec<(Size, f64)>,
    },
}

fn default_min_size() -> Size {
    Size(1)
}
fn default_max_size() -> Size {
    Size(4_000_000_000)
}

impl Default for SizeDist {
    fn default() -> Self {
        SizeDist::Lognormal { median: Size(1_700_000_000), sigma: 0.7, min: Size(10_000_000), max: default_max_size() }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TierWeights {
    #[serde(rename = "T0")]
    pub t0: f64,
    #[serde(rename = "T1")]
    pub t1: f64,
    #[serde(rename = "T2")]
    pub t2: f64,
    #[serde(rename = "T3")]
    pub t3: f64,
}

impl Default for TierWeights {
    fn default() -> Self {
        TierWeights { t0: 0.0, t1: 2.0, t2: 1.0, t3: 1.0 }
    }
}

impl TierWeights {
    pub fn of(&self, tier: Tier) -> f64 {
        match tier {
            Tier::T0 => self.t0,
            Tier::T1 => self.t1,
            Tier::T2 => self.t2,
            Tier::T3 => self.t3,
        }
    }
}

/// Dataset-level jobs: each reads a contiguous slice of one dataset, file after file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsSpec {
    /// Fraction of all requests that come from jobs.
    pub share: f64,
    /// Files each job reads.
    #[serde(default = "default_job_files")]
    pub files: u64,
    /// Pause between one file's arrival and the next request.
    #[serde(default)]
    pub think: Span,
}

fn default_job_files() -> u64 {
    10
}

/// Request rate over the day: `rate * (1 + amplitude * cos(2π (t - peak) / 1 day))`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiurnalSpec {
    pub amplitude: f64,
    #[serde(default = "default_peak")]
    pub peak: Span,
}

fn default_peak() -> Span {
    Span(Duration::from_secs(15 * 3600))
}

/// Popularity churn: every `every`, the popularity ranking moves `shift` objects further into
/// the catalog, so newer datasets become the hot ones.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnSpec {
    pub every: Span,
    pub shift: u64,
}

/// A flash crowd: from `at` for `duration`, a `share` of requests (at `sites`, or everywhere)
/// go to `objects` objects that were cold.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlashCrowdSpec {
    pub at: Span,
    pub duration: Span,
    pub share: f64,
    #[serde(default = "default_flash_objects")]
    pub objects: u64,
    #[serde(default)]
    pub sites: Vec<String>,
    /// Only files of this namespace (an experiment's burst); default: any.
    #[serde(default)]
    pub namespace: Option<String>,
}

fn default_flash_objects() -> u64 {
    10
}

/// A scheduled outage or degradation, from `at` for `duration`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum OutageSpec {
    /// Every node of a site.
    Site { site: String, at: Span, duration: Span },
    /// One node: `SITE/cache`, `SITE/wnN` or `SITE/origin/NAMESPACE`.
    Node { node: String, at: Span, duration: Span },
    /// A WAN link.
    Link { a: String, b: String, at: Span, duration: Span },
    /// The origins of a namespace (or its origin at one site).
    Origin {
        namespace: String,
        #[serde(default)]
        site: Option<String>,
        at: Span,
        duration: Span,
    },
    /// No traffic between two regions.
    Partition { regions: (String, String), at: Span, duration: Span },
    /// A link at a fraction of its bandwidth.
    Degrade { a: String, b: String, factor: f64, at: Span, duration: Span },
    /// Every object a node (`SITE/cache`, `SITE/wnN`) holds at `at` is damaged on disk (a bad
    /// disk, a stray write). The node finds each when it next reads it, drops it and fetches it
    /// again, as reef-node does; a damaged byte is never served.
    Corrupt { node: String, at: Span },
    /// Every object a node (`SITE/cache`, `SITE/wnN`) holds at `at` loses the second half of
    /// its file (a crash mid-write, a bad copy): found when read, dropped and fetched again,
    /// as `corrupt`.
    Truncate { node: String, at: Span },
    /// A node's (`SITE/cache`, `SITE/wnN`) disk is full (filled by something else): its fills
    /// find no room and fail with `no_space` after the core's `NO_ROOM_WAIT`; what it holds is
    /// still served.
    #[serde(rename = "disk_full")]
    DiskFull { node: String, at: Span, duration: Span },
}

/// Random failures of every site of a tier: up times and repair times are exponential.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomOutageSpec {
    pub tier: Parsed<Tier>,
    pub mtbf: Span,
    pub mttr: Span,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSpec {
    /// Hard stop: requests still open then are counted as failed (`unfinished`). Default: the
    /// workload duration plus a day.
    pub max_time: Option<Span>,
    /// Width of the time buckets of the time-series tables (more than zero). Default: the
    /// workload duration over 120, at least a second.
    #[serde(deserialize_with = "positive_span_opt")]
    pub bucket: Option<Span>,
    /// Fraction of requests written one row each to the `requests` table (0 to 1; 0: none).
    pub sample_requests: f64,
    /// Also write every table as CSV.
    pub csv: bool,
}

/// A scenario error that says where.
#[derive(Debug)]
pub struct ScenarioError {
    pub file: PathBuf,
    /// 1-based line and column, when the error is in the file.
    pub position: Option<(usize, usize)>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Reads and checks a scenario file, applying `overrides` (`key.path=value`).
pub fn load(path: &Path, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    parse(path, &read(path)?, overrides)
}

fn read(path: &Path) -> Result<String, ScenarioError> {
    std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_owned(),
        position: None,
        key: None,
        message: format!("cannot read: {e}"),
    })
}

/// Parses scenario text (`path` only names it in errors).
pub fn parse<'a>(path: &Path, text: &'a str, overrides: &'a [String]) -> Result<Scenario, ScenarioError> {
    let err = |span: Option<std::ops::Range<usize>>, key: Option<String>, message: String| ScenarioError {
        file: path.to_owned(),
        position: span.map(|s| line_col(text, s.start)),
        key,
        message,
    };
    let root = with_overrides(path, text, overrides)?;
    let marker = text.len() + 1..text.len() + 1;
    let de = toml::de::Deserializer::from(root);
    let mut scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let span = inner.span();
        let message = inner.message().to_string();
        match span {
            Some(s) if s.start > text.len() => {
                let o = &overrides[s.start - marker.start];
                ScenarioError {
                    file: path.to_owned(),
                    position: None,
                    key: Some(key),
                    message: format!("{message} (in `--set {o}`)"),
                }
            }
            _ => {
                // Some values lose their own span on the way (an `[[outage]]` entry is read as
                // a whole): an error inside an array entry that an override changed says so.
                let mut message = message;
                let changed = overrides
                    .iter()
                    .flat_map(|o| indexed_paths(o).into_iter().map(move |p| (p, o)))
                    .filter(|(p, _)| {
                        key.strip_prefix(p.as_str()).is_some_and(|r| r.is_empty() || r.starts_with(['.', '[']))
                    })
                    .max_by_key(|(p, _)| p.len());
                if let Some((p, o)) = changed {
                    message.push_str(&format!(" (`{p}` was changed by `--set {o}`)"));
                }
                err(span, (key != ".").then_some(key), message)
            }
        }
    })?;
    if scenario.policy.discovery.1 == WORKER_STRATEGY {
        // The layout gives it to every worker node; the caches need one of the others.
        let mut message = format!(
            "`{WORKER_STRATEGY}` is the worker nodes' strategy (they always use it); the caches' is one of: {}",
            caches_strategies()
        );
        let key = "policy.discovery";
        if let Some(o) = overrides.iter().rev().find(|o| o.split('=').next().is_some_and(|k| k.trim() == key)) {
            message.push_str(&format!(" (in `--set {o}`)"));
        }
        return Err(err(None, Some(key.into()), message));
    }
    if scenario.name.is_none() {
        scenario.name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    }
    scenario.path = path.to_owned();
    if let Some(t) = &mut scenario.workload.trace
        && t.file.is_relative()
        && let Some(dir) = path.parent()
    {
        t.file = dir.join(&t.file);
    }
    Ok(scenario)
}

/// The file's tree with the overrides written in. Overridden values get an empty span past the
/// end of the text, so that errors in them can be told apart from errors in the file.
fn with_overrides<'a>(
    path: &Path,
    text: &'a str,
    overrides: &'a [String],
) -> Result<Spanned<DeTable<'a>>, ScenarioError> {
    let err = |span: Option<std::ops::Range<usize>>, message: String| ScenarioError {
        file: path.to_owned(),
        position: span.map(|s| line_col(text, s.start)),
        key: None,
        message,
    };
    let mut root = DeTable::parse(text).map_err(|e| err(e.span(), e.message().to_string()))?;
    for (i, o) in overrides.iter().enumerate() {
        apply_override(root.get_mut(), o, text.len() + 1 + i).map_err(|m| err(None, m))?;
    }
    Ok(root)
}

/// A section of the scenario (such as `policy`) as TOML, overrides applied, for a deployment
/// to take as it is: a reef-node's `[policy]` has the same keys. Empty if the file has none.
pub fn section(path: &Path, overrides: &[String], name: &str) -> Result<toml::Table, ScenarioError> {
    section_of(path, &read(path)?, overrides, name)
}

/// [`section`] of scenario text.
pub fn section_of(path: &Path, text: &str, overrides: &[String], name: &str) -> Result<toml::Table, ScenarioError> {
    let root = with_overrides(path, text, overrides)?;
    let mut table = toml::Table::deserialize(toml::de::Deserializer::from(root)).map_err(|e| ScenarioError {
        file: path.to_owned(),
        position: None,
        key: None,
        message: e.message().to_string(),
    })?;
    match table.remove(name) {
        Some(toml::Value::Table(t)) => Ok(t),
        Some(_) => Err(ScenarioError {
            file: path.to_owned(),
            position: None,
            key: Some(name.into()),
            message: "expected a table".into(),
        }),
        None => Ok(toml::Table::new()),
    }
}

/// One step of an override's key path: a key, optionally followed by indices into an array
/// (`outage[0]`, `topology.site[2]`).
struct KeyStep<'k> {
    key: &'k str,
    indices: Vec<usize>,
}

/// Splits `outage[0].at` into steps; errors say what is wrong with the key.
fn key_steps(key: &str) -> Result<Vec<KeyStep<'_>>, String> {
    let mut steps = Vec::new();
    for part in key.trim().split('.') {
        let part = part.trim();
        let (name, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("empty key in `{key}`"));
        }
        let mut indices = Vec::new();
        while !rest.is_empty() {
            let inner = rest.strip_prefix('[').and_then(|r| r.split_once(']'));
            let Some((index, after)) = inner else {
                return Err(format!("`{part}`: expected `NAME[INDEX]`, e.g. `outage[0]`"));
            };
            let index = index.trim().parse::<usize>().map_err(|_| {
                format!("`{part}`: `[{index}]` is not an index (a whole number from 0), e.g. `outage[0]`")
            })?;
            indices.push(index);
            rest = after.trim_start();
        }
        steps.push(KeyStep { key: name, indices });
    }
    Ok(steps)
}

/// The array entries an override reaches into, as error paths name them: `outage[0]` for
/// `outage[0].at=30min`.
fn indexed_paths(o: &str) -> Vec<String> {
    let Some(Ok(steps)) = o.split_once('=').map(|(k, _)| key_steps(k)) else {
        return Vec::new();
    };
    let mut path = String::new();
    let mut out = Vec::new();
    for step in steps {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(step.key);
        for i in step.indices {
            path.push_str(&format!("[{i}]"));
            out.push(path.clone());
        }
    }
    out
}

/// Writes `key.path=value` into the spanned tree. The value is read as TOML (`3`, `"1GiB"`,
/// `true`, `[1, 2]`), or else taken as a bare string (`--set policy.eviction=lru`). A key may
/// index an array (of tables): `outage[0].at=30min` sets the first outage's `at`.
fn apply_override<'a>(root: &mut DeTable<'a>, o: &'a str, at: usize) -> Result<(), String> {
    let (key, value) = o.split_once('=').ok_or_else(|| format!("`--set {o}`: expected key=value"))?;
    let steps = key_steps(key).map_err(|e| format!("`--set {o}`: {e}"))?;
    let value = value.trim();
    let parsed = DeValue::parse(value)
        .map(|v| {
            let mut v = v.into_inner();
            v.make_owned();
            v
        })
        .unwrap_or_else(|_| DeValue::String(value.to_owned().into()));
    let spanned = |v| Spanned::new(at..at, v);
    // The path walked so far, as the user wrote it, for errors.
    let mut path = String::new();
    let mut table = root;
    let mut parsed = Some(parsed);
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(step.key);
        let name = Spanned::new(at..at, std::borrow::Cow::Owned(step.key.to_string()));
        if last && step.indices.is_empty() {
            table.insert(name, spanned(parsed.take().expect("set once")));
            return Ok(());
        }
        let mut slot = if step.indices.is_empty() {
            table.entry(name).or_insert_with(|| spanned(DeValue::Table(DeTable::new())))
        } else {
            // An index needs the array to be there: overrides never create array entries.
            match table.get_mut(step.key) {
                Some(v) => v,
                None => return Err(format!("`--set {o}`: `{path}` is not set, so it cannot be indexed")),
            }
        };
        for (j, &index) in step.indices.iter().enumerate() {
            let kind = slot.get_ref().type_str();
            let DeValue::Array(array) = slot.get_mut() else {
                return Err(format!("`--set {o}`: `{path}` is {}, not an array: it cannot be indexed", article(kind)));
            };
            let len = array.len();
            let Some(element) = array.get_mut(index) else {
                let have = match len {
                    0 => format!("`{path}` is empty"),
                    1 => format!("`{path}` has 1 entry (index 0)"),
                    n => format!("`{path}` has {n} entries (indices 0 to {})", n - 1),
                };
                return Err(format!("`--set {o}`: index {index} is out of range: {have}"));
            };
            path.push_str(&format!("[{index}]"));
            if last && j + 1 == step.indices.len() {
                *element = spanned(parsed.take().expect("set once"));
                return Ok(());
            }
            slot = element;
        }
        match slot.get_mut() {
            DeValue::Table(t) => table = t,
            _ => return Err(format!("`--set {o}`: `{path}` is not a table")),
        }
    }
    Ok(())
}

/// `a table`, `an array`, ... for errors.
fn article(kind: &str) -> String {
    let an = kind.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {kind}", if an { "an" } else { "a" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
