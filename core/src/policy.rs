//! The policy a deployment chooses: one type for a scenario's `[policy]` and a node's
//! `[policy]`, with one set of defaults, so every knob a scenario can set, a site can deploy.
//!
//! What differs between the drivers is only what the deployment supplies around it: a
//! cache's capacity, its parents and directory node, namespace shares. Values are written with
//! units (`"30s"`, `"1MiB"`); names (`lru`, `dsht`) are parsed by the core's own types, so
//! every policy and strategy the core has is accepted by name.

use crate::cache::{Admission, CacheConfig, NamespaceShare, PolicyKind};
use crate::discovery::{DiscoveryConfig, DshtConfig};
use crate::ids::NodeId;
use crate::membership::MembershipConfig;
use crate::node::NodeConfig;
use crate::units::{Duration, Parsed, Size, Span};
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Eviction policy (`lru`, `s3fifo`, ...).
    pub eviction: Parsed<PolicyKind>,
    /// Admission rule (`always`, `second-hit`, `max-size`, `probabilistic-by-size`).
    pub admission: Parsed<AdmissionName>,
    /// `second-hit`: insert attempts remembered.
    pub admission_window: u64,
    /// `max-size`: largest object admitted.
    pub admission_max_size: Size,
    /// `probabilistic-by-size`: admit with probability exp(-size / scale).
    pub admission_scale: Size,
    /// Eviction rounds start above this fraction of the capacity...
    #[serde(deserialize_with = "fraction")]
    pub high_watermark: f64,
    /// ... and free down to this one.
    #[serde(deserialize_with = "fraction")]
    pub low_watermark: f64,
    /// Most objects one cache holds (at least 1).
    #[serde(deserialize_with = "at_least_one_opt")]
    pub max_objects: Option<u64>,
    /// Peer discovery strategy (`none`, `parent`, `dsht`, `rendezvous`, `directory`, `site`).
    pub discovery: Parsed<DiscoveryName>,
    /// `rendezvous`: the outermost proximity level a home cache may be at.
    pub rendezvous_max_level: u8,
    /// `directory`: how long to wait for the directory's answer.
    #[serde(deserialize_with = "ms_to_minute")]
    pub directory_timeout: Span,
    pub dsht: DshtSpec,
    pub membership: MembershipSpec,
    /// A fetch that receives nothing for this long is abandoned and the next source tried (an
    /// idle timeout: a transfer that keeps moving is never cut).
    #[serde(deserialize_with = "fetch_timeout_range")]
    pub fetch_timeout: Span,
    /// How long a fill waits for an origin that keeps answering that it is staging the object
    /// (an archive recalling it from tape) before it tries the next source
    /// (`NodeConfig::stage_timeout`).
    #[serde(deserialize_with = "stage_timeout_range")]
    pub stage_timeout: Span,
    /// How long an origin's "not found" is remembered.
    pub negative_ttl: Span,
    /// Serve waiting requests from a fill once its first block is here (else once complete).
    pub stream: bool,
    /// A fill's first block: readers start streaming once it has arrived.
    #[serde(deserialize_with = "block_size_range")]
    pub block_size: Size,
    /// Split fills of objects at least this big across several holders at once (multi-source
    /// fetch, `NodeConfig::multi_source`); absent (the default): never. At least `block_size`.
    pub multi_source_min: Option<Size>,
    /// Most holders a split fill takes ranges from at once (2 to 16; default 3).
    #[serde(deserialize_with = "sources_range")]
    pub multi_source_max: u8,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            eviction: Parsed::known(PolicyKind::default().name()),
            admission: Parsed::known("always"),
            admission_window: 1_000_000,
            admission_max_size: Size(4_000_000_000),
            admission_scale: Size(1_000_000_000),
            high_watermark: 1.0,
            low_watermark: 1.0,
            max_objects: None,
            discovery: Parsed::known("none"),
            rendezvous_max_level: 0,
            directory_timeout: Span(Duration::from_secs(1)),
            dsht: DshtSpec::default(),
            membership: MembershipSpec::default(),
            fetch_timeout: Span(Duration::from_secs(30)),
            stage_timeout: Span(crate::node::default_stage_timeout()),
            negative_ttl: Span(Duration::from_secs(60)),
            stream: true,
            block_size: Size(1 << 20),
            multi_source_min: None,
            multi_source_max: 3,
        }
    }
}

impl Policy {
    /// Sets the node-wide knobs of `c`: timers, streaming, membership.
    pub fn apply(&self, c: &mut NodeConfig) {
        c.fetch_timeout = self.fetch_timeout.0;
        c.stage_timeout = self.stage_timeout.0;
        c.negative_ttl = self.negative_ttl.0;
        c.stream = self.stream;
        // Sixteen blocks: room to keep readers of an object passing through streaming.
        c.pass_window = self.block_size.0.saturating_mul(16);
        c.membership = self.membership.config();
        c.multi_source = self.multi_source_min.map(|min| crate::node::MultiSource {
            min_size: min.0.max(self.block_size.0),
            max_sources: self.multi_source_max,
            block_size: self.block_size.0,
        });
    }

    /// The admission rule with its parameters, as the core's cache takes it.
    pub fn admission_rule(&self) -> Admission {
        Admission::named(&self.admission.1, self.admission_window, self.admission_max_size.0, self.admission_scale.0)
            .expect("validated when parsed")
    }

    /// A cache of `capacity` bytes run by this policy.
    pub fn cache_config(&self, capacity: u64, seed: u64, quotas: Vec<NamespaceShare>) -> CacheConfig {
        let mut c = CacheConfig::new(capacity, self.eviction.0);
        c.admission = vec![self.admission_rule()];
        c.high_watermark = self.high_watermark;
        c.low_watermark = self.low_watermark;
        c.max_objects = self.max_objects;
        c.seed = seed;
        c.quotas = quotas;
        c
    }

    /// The discovery strategy with what the deployment supplies: `parents` (for `parent` and
    /// `site`) and the `directory` node.
    pub fn discovery_config(&self, parents: Vec<NodeId>, directory: Option<NodeId>) -> Result<DiscoveryConfig, String> {
        let mut d = DiscoveryConfig::by_name(&self.discovery.1)?;
        match &mut d {
            // No parent (a top-tier cache) means straight to the origins.
            DiscoveryConfig::Parent { parents: p } | DiscoveryConfig::Site { parents: p } => *p = parents,
            DiscoveryConfig::Dsht(c) => self.dsht.apply(c),
            DiscoveryConfig::Rendezvous { max_level } => *max_level = self.rendezvous_max_level,
            DiscoveryConfig::Directory { directory: node, timeout } => {
                *node = directory.ok_or("strategy `directory` needs the directory node")?;
                *timeout = self.directory_timeout.0;
            }
            // `none`, and strategies the core adds later, run with their defaults.
            _ => {}
        }
        Ok(d)
    }
}

/// An admission rule's name, checked against the core's rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionName;

impl std::str::FromStr for AdmissionName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Admission::named(s, 1, 1, 1).map(|_| AdmissionName)
    }
}

/// A discovery strategy's name, checked by the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryName;

impl std::str::FromStr for DiscoveryName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DiscoveryConfig::by_name(s).map(|_| DiscoveryName).map_err(|_| {
            format!(
                "unknown discovery strategy `{s}`; expected one of: {} (worker nodes use `site`)",
                caches_strategies()
            )
        })
    }
}

/// The strategy only worker nodes use (the object's home among a site's worker nodes).
pub const WORKER_STRATEGY: &str = "site";

/// The strategies a cache may use: the core's, less the worker nodes' own.
pub fn caches_strategies() -> String {
    DiscoveryConfig::NAMES
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty() && *n != WORKER_STRATEGY)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parameters of the `dsht` strategy; unset ones keep the core's defaults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DshtSpec {
    pub k: Option<usize>,
    pub max_pointers: Option<usize>,
    pub returned: Option<usize>,
    pub pointer_ttl: Option<Span>,
    pub fetching_ttl: Option<Span>,
    pub query_timeout: Option<Span>,
}

impl DshtSpec {
    pub fn apply(&self, c: &mut DshtConfig) {
        set(&mut c.k, self.k);
        set(&mut c.max_pointers, self.max_pointers);
        set(&mut c.returned, self.returned);
        set(&mut c.pointer_ttl, self.pointer_ttl.map(|s| s.0));
        set(&mut c.fetching_ttl, self.fetching_ttl.map(|s| s.0));
        set(&mut c.query_timeout, self.query_timeout.map(|s| s.0));
    }
}

/// Membership and failure detection; unset values keep the core's defaults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MembershipSpec {
    /// Period of the liveness probes (more than zero); absent: no probing (health changes
    /// only when a fetch or a message fails).
    #[serde(deserialize_with = "probe_interval_range_opt")]
    pub probe_interval: Option<Span>,
    #[serde(deserialize_with = "ms_to_minute_opt")]
    pub probe_timeout: Option<Span>,
    pub indirect_probes: Option<usize>,
    #[serde(deserialize_with = "ms_to_hour_opt")]
    pub suspect_timeout: Option<Span>,
    pub gossip: Option<usize>,
    /// RTT thresholds of the proximity levels.
    pub levels: Option<Vec<Span>>,
}

impl MembershipSpec {
    pub fn config(&self) -> MembershipConfig {
        let mut c = MembershipConfig::default();
        if let Some(p) = self.probe_interval {
            c.probe_interval = Some(p.0);
        }
        set(&mut c.probe_timeout, self.probe_timeout.map(|s| s.0));
        set(&mut c.indirect_probes, self.indirect_probes);
        set(&mut c.suspect_timeout, self.suspect_timeout.map(|s| s.0));
        set(&mut c.gossip, self.gossip);
        set(&mut c.levels, self.levels.as_ref().map(|l| l.iter().map(|s| s.0).collect()));
        c
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// A count that must be at least 1.
pub fn at_least_one<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if v == 0 {
        return Err(serde::de::Error::custom("must be at least 1 (got 0)"));
    }
    Ok(v)
}

/// An optional count that, when given, must be at least 1.
pub fn at_least_one_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    at_least_one(d).map(Some)
}

/// A duration that must be more than zero.
pub fn positive_span<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
    let v = Span::deserialize(d)?;
    if v.0 == Duration::ZERO {
        return Err(serde::de::Error::custom("must be more than zero (got 0)"));
    }
    Ok(v)
}

/// An optional duration that, when given, must be more than zero.
pub fn positive_span_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Span>, D::Error> {
    positive_span(d).map(Some)
}

/// A duration within `[min, max]`; the error names the range.
pub fn span_in<'de, D: serde::Deserializer<'de>>(d: D, min: Duration, max: Duration) -> Result<Span, D::Error> {
    let v = Span::deserialize(d)?;
    if v.0 < min || v.0 > max {
        return Err(serde::de::Error::custom(format!("must be between {min} and {max} (got {})", v.0)));
    }
    Ok(v)
}

/// Deserializers of durations within a range, named for serde's `deserialize_with`.
macro_rules! span_range {
    ($name:ident, $opt:ident, $min:expr, $max:expr) => {
        pub fn $name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
            span_in(d, $min, $max)
        }
        pub fn $opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Span>, D::Error> {
            $name(d).map(Some)
        }
    };
}

// A probe every microsecond would spin a core; one a day detects nothing.
span_range!(probe_interval_range, probe_interval_range_opt, Duration::from_millis(10), Duration::from_secs(3600));
span_range!(fetch_timeout_range, fetch_timeout_range_opt, Duration::from_millis(100), Duration::from_secs(86_400));
span_range!(stage_timeout_range, stage_timeout_range_opt, Duration::from_secs(60), Duration::from_secs(30 * 86_400));
span_range!(ms_to_minute, ms_to_minute_opt, Duration::from_millis(1), Duration::from_secs(60));
span_range!(ms_to_hour, ms_to_hour_opt, Duration::from_millis(1), Duration::from_secs(3600));

/// A block size from 4 KiB to 64 MiB.
fn block_size_range<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
    let v = Size::deserialize(d)?;
    if !(4096..=64 << 20).contains(&v.0) {
        return Err(serde::de::Error::custom(format!("must be between 4KiB and 64MiB (got {} bytes)", v.0)));
    }
    Ok(v)
}

/// Holders of a split fill: 2 to 16.
fn sources_range<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let v = u8::deserialize(d)?;
    if !(2..=16).contains(&v) {
        return Err(serde::de::Error::custom(format!("must be between 2 and 16 (got {v})")));
    }
    Ok(v)
}

/// A fraction in [0, 1].
pub fn fraction<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if !(0.0..=1.0).contains(&v) {
        return Err(serde::de::Error::custom(format!("must be between 0 and 1 (got {v})")));
    }
    Ok(v)
}
