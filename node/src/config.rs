//! The node's TOML configuration: parsed, checked, and turned into a core `NodeConfig` plus the
//! addresses and paths only the driver needs. Every error names the key and what was expected,
//! with the line and column where the file gives them.

use crate::auth::IssuerConfig;
use crate::http::connection::Limits;
use crate::tls::TlsFiles;
use ipnet::IpNet;
use reef_core::access::{Issuer, NamespaceAccess};
use reef_core::cache::{NamespaceQuota, egress_limits, quotas_for_cache};
use reef_core::discovery::DiscoveryConfig;
use reef_core::policy::{at_least_one_opt, span_in};
use reef_core::units::{Rate, Span, parse_size};
use reef_core::{NamespaceId, NodeConfig, NodeId, PeerInfo, Policy, Role, SiteId};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A configuration error, already phrased for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub id: NodeId,
    pub role: Role,
    pub listen: SocketAddr,
    /// The URL other nodes use to reach this one.
    pub advertise: String,
    pub site: SiteId,
    pub seed: u64,
    /// Cache and worker-node peer: where objects live on disk.
    pub store: Option<PathBuf>,
    pub capacity: u64,
    /// Bytes of small objects' verified copies a cache keeps in memory (0: none).
    pub memory_cache: u64,
    /// `[policy]`: the same type, keys and defaults as a scenario's `[policy]`.
    pub policy: Policy,
    pub connections: Limits,
    /// How fast the scrub re-reads and checks the store (zero: no scrub).
    pub scrub_rate: reef_core::BitRate,
    /// The least time from the start of one scrub pass to the start of the next.
    pub scrub_interval: std::time::Duration,
    /// An origin removes an unfinished upload untouched this long (default 1 day).
    pub upload_expiry: std::time::Duration,
    /// A director's DNS face (`node.dns_listen`), if it has one.
    pub dns: Option<DnsConfig>,
    pub access_log: Option<PathBuf>,
    pub discovery: DiscoveryConfig,
    pub sites: Vec<Site>,
    /// The deployment's namespace table; a namespace's index is its `NamespaceId`.
    pub namespaces: Vec<Namespace>,
    pub peers: Vec<Peer>,
    /// `[tls]`: this node's certificate and the federation CA; `None`: plain HTTP, and the
    /// node trusts the network (see node/README.md, "Trust model").
    pub tls: Option<TlsFiles>,
    /// `[[issuers]]`: token issuers trusted by the private namespaces.
    pub issuers: Vec<IssuerConfig>,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    pub id: SiteId,
    pub networks: Vec<IpNet>,
    /// For clients of this site, the other sites in order of preference (director).
    pub prefer: Vec<SiteId>,
}

#[derive(Debug, Clone)]
pub struct Namespace {
    pub name: String,
    pub origins: Vec<NodeId>,
    /// On an origin that serves this namespace: the exported directory.
    pub export: Option<PathBuf>,
    /// Its storage quota on a cache.
    pub quota: NamespaceQuota,
    /// Who may read it (public unless `private = true`).
    pub access: NamespaceAccess,
    /// On an origin: what uploads (`PUT`) may do.
    pub uploads: UploadRules,
    /// On a cache: how long a copy is served after its fetch, for objects that may change at
    /// the origin (`None`: write-once objects, kept until evicted).
    pub max_age: Option<reef_core::Duration>,
    /// On an origin: the export emulates an archive's tape (`crate::nearline`); other nodes
    /// ignore it (a federation file's namespaces are shared by all).
    pub nearline: Option<Nearline>,
    /// The namespace's origin is a third-party HTTP(S) server, not Reef origins.
    pub third_party: Option<ThirdPartyConfig>,
}

/// `origin_url` and its companions: a namespace in front of a site's existing storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThirdPartyConfig {
    /// The base URL (no trailing slash): an object's URL is this plus its path.
    pub url: String,
    /// CA certificates (PEM) the server's certificate may chain to, besides the system's.
    pub ca: Option<PathBuf>,
    /// Write-once objects: kept until evicted whatever the origin's headers say.
    pub immutable: bool,
}

/// The node id the core knows namespace `index`'s third-party origin by (no node may have it).
pub fn third_party_origin_id(index: usize) -> NodeId {
    NodeId(u32::MAX - u32::try_from(index).expect("namespace count checked"))
}

/// Node ids from here up stand for third-party origins.
/// `node.memory_cache` unless set: room for at least a thousand small hot objects.
pub const DEFAULT_MEMORY_CACHE: u64 = 64 << 20;

const FIRST_RESERVED_ID: u32 = u32::MAX - u16::MAX as u32;

/// An origin namespace whose files are nearline: a read of a file not yet online is answered
/// "staging" and brings it online after `delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nearline {
    /// How long staging a file takes (an emulated tape recall).
    #[serde(deserialize_with = "stage_delay_range")]
    pub delay: Span,
    /// What a reader is told to wait before asking again (`Retry-After`; default 5 s).
    #[serde(default = "default_stage_retry", deserialize_with = "stage_retry_range")]
    pub retry_after: Span,
}

fn default_stage_retry() -> Span {
    Span(reef_core::Duration::from_secs(5))
}

/// A namespace's upload rules on an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadRules {
    /// An existing object may be replaced (a new version, with a new ETag) by a holder of
    /// `storage.modify`; otherwise objects are write-once.
    pub replace: bool,
    /// The largest object accepted, in bytes.
    pub max_size: u64,
}

#[derive(Debug, Clone)]
pub struct Peer {
    pub id: NodeId,
    pub role: Role,
    pub site: SiteId,
    pub url: String,
    /// The address a director's DNS answers name for this node (default: the URL's host, if
    /// it is an IP address).
    pub dns_address: Option<std::net::IpAddr>,
}

/// A director's authoritative DNS server: `<namespace>.<zone>` (and `<zone>` itself) resolve
/// to the closest healthy cache for the asking client.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    pub listen: SocketAddr,
    /// Lowercase, without the trailing dot.
    pub zone: String,
    /// Seconds an answer may be cached.
    pub ttl: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    node: RawNode,
    #[serde(default)]
    policy: Policy,
    #[serde(default)]
    discovery: RawDiscovery,
    #[serde(default)]
    sites: Vec<RawSite>,
    #[serde(default)]
    namespaces: Vec<RawNamespace>,
    #[serde(default)]
    peers: Vec<RawPeer>,
    tls: Option<TlsFiles>,
    #[serde(default)]
    issuers: Vec<IssuerConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    id: u32,
    #[serde(deserialize_with = "role")]
    role: Role,
    listen: SocketAddr,
    advertise: Option<String>,
    site: Spanned<String>,
    seed: Option<u64>,
    store: Option<PathBuf>,
    #[serde(default, deserialize_with = "opt_size")]
    capacity: Option<u64>,
    #[serde(default, deserialize_with = "opt_size")]
    memory_cache: Option<u64>,
    #[serde(default, deserialize_with = "header_timeout_range")]
    header_timeout: Option<Span>,
    #[serde(default, deserialize_with = "idle_timeout_range")]
    idle_timeout: Option<Span>,
    #[serde(default, deserialize_with = "at_least_one_opt")]
    max_connections: Option<u64>,
    scrub_rate: Option<Rate>,
    #[serde(default, deserialize_with = "scrub_interval_range")]
    scrub_interval: Option<Span>,
    access_log: Option<PathBuf>,
    #[serde(default, deserialize_with = "upload_expiry_range")]
    upload_expiry: Option<Span>,
    dns_listen: Option<SocketAddr>,
    dns_zone: Option<String>,
    #[serde(default, deserialize_with = "dns_ttl_range")]
    dns_ttl: Option<Span>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    name: String,
    id: u32,
    #[serde(default)]
    networks: Vec<IpNet>,
    #[serde(default)]
    prefer: Vec<Spanned<String>>,
}

/// `[discovery]`: the nodes the strategy (`policy.discovery`) works with.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDiscovery {
    /// parent, site: the parent caches, tried in order.
    #[serde(default)]
    parents: Vec<u32>,
    /// directory: the node keeping the catalogue.
    directory: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamespace {
    name: Spanned<String>,
    #[serde(default)]
    origins: Vec<u32>,
    export: Option<PathBuf>,
    #[serde(default)]
    quota: NamespaceQuota,
    /// Readable only with a token (or by an allowed node).
    #[serde(default)]
    private: bool,
    /// The `[[issuers]]` whose tokens grant this namespace (default: every issuer).
    issuers: Option<Vec<String>>,
    /// The namespace's root in the issuers' scope paths (default `/`).
    base_path: Option<String>,
    /// The nodes allowed to fetch its objects from this node (default: every peer).
    nodes: Option<Vec<u32>>,
    /// Uploads may replace an existing object (default: write-once).
    #[serde(default)]
    replace: bool,
    /// The largest upload accepted (default: no limit but the disk).
    #[serde(default, deserialize_with = "opt_size")]
    max_upload: Option<u64>,
    /// Objects may change at the origin: caches serve a copy for at most this long after
    /// fetching it (default: none, the objects are write-once).
    #[serde(default, deserialize_with = "max_age_range")]
    max_age: Option<Span>,
    /// On an origin: the files are nearline (emulated tape), staged on first read.
    nearline: Option<Nearline>,
    /// A third-party HTTP(S) origin (a site's existing storage) instead of Reef `origins`.
    origin_url: Option<Spanned<String>>,
    /// With `origin_url`: CA certificates (PEM) its server's certificate may chain to.
    origin_ca: Option<PathBuf>,
    /// With `origin_url`: the objects are write-once (science data): no header is obeyed.
    #[serde(default)]
    immutable: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    id: u32,
    #[serde(deserialize_with = "role")]
    role: Role,
    site: Spanned<String>,
    url: Spanned<String>,
    dns_address: Option<std::net::IpAddr>,
}

fn role<'de, D: Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
    let s = String::deserialize(d)?;
    parse_role(&s).map_err(serde::de::Error::custom)
}

pub fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "origin" => Ok(Role::Origin),
        "cache" => Ok(Role::Cache),
        "director" => Ok(Role::Director),
        "worker-peer" | "worker_peer" => Ok(Role::WorkerPeer),
        _ => Err(format!("unknown role `{s}`; expected origin, cache, director or worker-peer")),
    }
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Origin => "origin",
        Role::Cache => "cache",
        Role::Director => "director",
        Role::WorkerPeer => "worker-peer",
    }
}

fn opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum SizeOrInt {
        Int(u64),
        Text(String),
    }
    match SizeOrInt::deserialize(d)? {
        SizeOrInt::Int(n) => Ok(Some(n)),
        SizeOrInt::Text(s) => parse_size(&s)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("{e}; expected a size such as `10GiB`"))),
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let error = |message| ConfigError { file: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read the configuration: {e}")))?;
        let (text, included) = crate::federation_file::resolve(&text, path).map_err(error)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse_in(&text, base).map_err(|message| match &included {
            // Places in the merged text mean nothing to the reader: the key names the entry.
            Some(file) => error(format!("{} (with `{}` included)", without_places(&message), file.display())),
            None => error(message),
        })
    }

    /// Parses the text of a configuration file; the error is a message naming the key.
    pub fn parse(text: &str) -> Result<Config, String> {
        Config::parse_in(text, Path::new("."))
    }

    /// Like `parse`; relative paths in the file are taken from `base` (the file's directory).
    pub fn parse_in(text: &str, base: &Path) -> Result<Config, String> {
        let mut raw: RawFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        raw.node.store.as_mut().map(rebase);
        raw.node.access_log.as_mut().map(rebase);
        for ns in &mut raw.namespaces {
            ns.export.as_mut().map(rebase);
        }
        if let Some(tls) = &mut raw.tls {
            tls.rebase(base);
        }
        for issuer in &mut raw.issuers {
            issuer.ca.as_mut().map(rebase);
        }
        let at = |span: std::ops::Range<usize>| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}")
        };

        let mut sites = Vec::new();
        for (i, s) in raw.sites.iter().enumerate() {
            if sites.iter().any(|x: &Site| x.name == s.name || x.id.0 == s.id) {
                return Err(format!(
                    "`sites[{i}]`: site `{}` (id {}) is declared twice; expected unique names and ids",
                    s.name, s.id
                ));
            }
            sites.push(Site {
                name: s.name.clone(),
                id: SiteId(s.id),
                networks: s.networks.clone(),
                prefer: Vec::new(),
            });
        }
        let mut sites_prefer = Vec::new();
        let site_id = |key: &str, name: &Spanned<String>| -> Result<SiteId, String> {
            sites.iter().find(|s| &s.name == name.get_ref()).map(|s| s.id).ok_or_else(|| {
                format!(
                    "`{key}` ({}): unknown site `{}`; expected one of the names in [[sites]]",
                    at(name.span()),
                    name.get_ref()
                )
            })
        };

        for (i, s) in raw.sites.iter().enumerate() {
            let prefer =
                s.prefer.iter().map(|p| site_id(&format!("sites[{i}].prefer"), p)).collect::<Result<Vec<_>, _>>()?;
            sites_prefer.push(prefer);
        }
        let n = &raw.node;
        let id = NodeId(n.id);
        let site = site_id("node.site", &n.site)?;
        let scheme = if raw.tls.is_some() { "https" } else { "http" };
        let advertise =
            n.advertise.clone().unwrap_or_else(|| format!("{scheme}://{}", n.listen)).trim_end_matches('/').to_string();
        let mut peers = Vec::new();
        if let Some((key, id)) = std::iter::once(("node.id".to_string(), n.id))
            .chain(raw.peers.iter().enumerate().map(|(i, p)| (format!("peers[{i}].id"), p.id)))
            .find(|&(_, id)| id >= FIRST_RESERVED_ID)
        {
            return Err(format!(
                "`{key}`: node id {id} is reserved (ids from {FIRST_RESERVED_ID} stand for third-party origins); expected a smaller id"
            ));
        }
        for (i, p) in raw.peers.iter().enumerate() {
            if p.id == n.id {
                // One shared peer list may name this node too, but only at this node's address:
                // two nodes with one id would take each other's messages and pointers.
                let url = p.url.get_ref().trim_end_matches('/');
                if url != advertise {
                    return Err(format!(
                        "`peers[{i}].url` ({}): node id {} is this node's id, but listed at `{url}` while this node is at `{advertise}`; expected unique node ids",
                        at(p.url.span()),
                        p.id
                    ));
                }
                continue;
            }
            if peers.iter().any(|x: &Peer| x.id.0 == p.id) {
                return Err(format!("`peers[{i}].id`: node id {} is listed twice; expected unique peer ids", p.id));
            }
            let url = p.url.get_ref().trim_end_matches('/').to_string();
            // With TLS, nodes talk only over mutual TLS: a plain URL would bypass it.
            if !url.starts_with(&format!("{scheme}://")) {
                let why = if raw.tls.is_some() { " (this node has [tls])" } else { " (this node has no [tls])" };
                return Err(format!(
                    "`peers[{i}].url` ({}): expected a `{scheme}://host:port` URL{why}, got `{url}`",
                    at(p.url.span())
                ));
            }
            peers.push(Peer {
                id: NodeId(p.id),
                role: p.role,
                site: site_id(&format!("peers[{i}].site"), &p.site)?,
                dns_address: p.dns_address.or_else(|| url_ip(&url)),
                url,
            });
        }

        let mut namespaces: Vec<Namespace> = Vec::new();
        for (i, ns) in raw.namespaces.iter().enumerate() {
            let name = ns.name.get_ref();
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                return Err(format!(
                    "`namespaces[{i}].name` ({}): expected a single path segment not starting with `.`, got `{name}`",
                    at(ns.name.span())
                ));
            }
            if name == "api" {
                return Err(format!(
                    "`namespaces[{i}].name` ({}): `api` is reserved (origins serve the WLCG tape REST API under /api/v1/)",
                    at(ns.name.span())
                ));
            }
            if namespaces.iter().any(|x| &x.name == name) {
                return Err(format!("`namespaces[{i}].name`: namespace `{name}` is declared twice"));
            }
            let third_party = third_party_config(i, ns, at)?;
            for &o in &ns.origins {
                let known = o == n.id || peers.iter().any(|p| p.id.0 == o && p.role == Role::Origin);
                if !known {
                    return Err(format!(
                        "`namespaces[{i}].origins`: node {o} is not this node nor a peer with role origin; expected origin node ids from [[peers]]"
                    ));
                }
            }
            if ns.export.is_some() && n.role != Role::Origin {
                return Err(format!(
                    "`namespaces[{i}].export`: only an origin exports a directory; this node's role is {}",
                    role_name(n.role)
                ));
            }
            if let Some(dir) = &ns.export
                && !dir.is_dir()
            {
                return Err(format!(
                    "`namespaces[{i}].export`: `{}` is not a directory; expected the directory to export",
                    dir.display()
                ));
            }
            ns.quota.validate().map_err(|e| format!("`namespaces[{i}].quota`: {e}"))?;
            let access = namespace_access(i, ns, &raw.issuers, raw.tls.is_some(), &known_node(n.id, &peers))?;
            namespaces.push(Namespace {
                name: name.clone(),
                origins: ns.origins.iter().map(|&o| NodeId(o)).collect(),
                export: ns.export.clone(),
                quota: ns.quota,
                access,
                uploads: UploadRules { replace: ns.replace, max_size: ns.max_upload.unwrap_or(u64::MAX) },
                max_age: ns.max_age.map(|s| s.0),
                nearline: ns.nearline,
                third_party,
            });
        }
        if namespaces.len() > usize::from(u16::MAX) {
            return Err("`namespaces`: expected at most 65535 namespaces".into());
        }
        let quotas: Vec<NamespaceQuota> = namespaces.iter().map(|ns| ns.quota).collect();
        quotas_for_cache(&quotas, 0).map_err(|e| format!("`namespaces`: {e}"))?;

        let dns = match (n.dns_listen, &n.dns_zone) {
            (None, None) => None,
            (Some(_), _) | (_, Some(_)) if n.role != Role::Director => {
                return Err(format!(
                    "`node.dns_listen`: only a director answers DNS; this node's role is {}",
                    role_name(n.role)
                ));
            }
            (Some(listen), Some(zone)) => {
                let zone = zone.trim_end_matches('.').to_ascii_lowercase();
                let label_ok = |l: &str| {
                    !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                };
                if !zone.split('.').all(label_ok) {
                    return Err(format!("`node.dns_zone`: `{zone}` is not a domain name such as `cdn.example.org`"));
                }
                let ttl = n.dns_ttl.map_or(20, |t| (t.0.as_nanos() / 1_000_000_000) as u32);
                Some(DnsConfig { listen, zone, ttl })
            }
            (Some(_), None) => return Err("`node.dns_zone`: required with `node.dns_listen`".into()),
            (None, Some(_)) => return Err("`node.dns_listen`: required with `node.dns_zone`".into()),
        };
        let caching = matches!(n.role, Role::Cache | Role::WorkerPeer);
        if caching && n.store.is_none() {
            return Err(format!(
                "`node.store`: required for role {}; expected the directory of the disk cache",
                role_name(n.role)
            ));
        }
        if caching && n.capacity.is_none() {
            return Err(format!(
                "`node.capacity`: required for role {}; expected a size such as `10GiB`",
                role_name(n.role)
            ));
        }
        if n.role == Role::Origin && !namespaces.iter().any(|ns| ns.export.is_some()) {
            return Err(
                "`namespaces`: an origin must export at least one namespace; expected `export = \"/dir\"` in one [[namespaces]]".into(),
            );
        }
        let known = |id: u32| id == n.id || peers.iter().any(|p| p.id.0 == id);
        let d = &raw.discovery;
        if let Some(p) = d.parents.iter().chain(&d.directory).find(|&&p| !known(p)) {
            return Err(format!(
                "`discovery`: node {p} is not this node nor one of [[peers]]; expected known node ids"
            ));
        }
        let strategy = raw.policy.discovery.1.as_str();
        if matches!(strategy, "parent" | "site") && d.parents.is_empty() {
            return Err(format!(
                "`discovery.parents`: required for strategy `{strategy}` (`policy.discovery`); expected parent node ids"
            ));
        }
        let parents = d.parents.iter().map(|&p| NodeId(p)).collect();
        let discovery = raw
            .policy
            .discovery_config(parents, d.directory.map(NodeId))
            .map_err(|e| format!("`discovery.directory`: {e}; expected the directory's node id (`directory = ID`)"))?;
        for (site, prefer) in sites.iter_mut().zip(sites_prefer) {
            site.prefer = prefer;
        }
        Ok(Config {
            id,
            role: n.role,
            listen: n.listen,
            advertise,
            site,
            seed: n.seed.unwrap_or(u64::from(n.id)),
            store: n.store.clone(),
            capacity: n.capacity.unwrap_or(0),
            memory_cache: n.memory_cache.unwrap_or(DEFAULT_MEMORY_CACHE),
            policy: raw.policy.clone(),
            scrub_rate: n.scrub_rate.map_or(reef_core::BitRate(100_000_000), |r| r.0),
            scrub_interval: n.scrub_interval.map_or(std::time::Duration::from_secs(3600), |s| s.0.into()),
            upload_expiry: n.upload_expiry.map_or(std::time::Duration::from_secs(86_400), |s| s.0.into()),
            dns,
            connections: Limits {
                header_timeout: n.header_timeout.map_or(std::time::Duration::from_secs(10), |s| s.0.into()),
                idle_timeout: n.idle_timeout.map_or(std::time::Duration::from_secs(60), |s| s.0.into()),
                max_connections: n.max_connections.map_or_else(Limits::default_max_connections, |m| m as usize),
            },
            access_log: n.access_log.clone(),
            discovery,
            sites,
            namespaces,
            peers,
            tls: raw.tls.clone(),
            issuers: raw.issuers.clone(),
        })
    }

    /// Each namespace's limit on fills from its origins (caches only).
    pub fn fill_limits(&self) -> Vec<(String, reef_core::shaper::RateLimit)> {
        if !matches!(self.role, Role::Cache | Role::WorkerPeer) {
            return Vec::new();
        }
        self.namespaces.iter().filter_map(|ns| Some((ns.name.clone(), ns.quota.fill?.limit()))).collect()
    }

    /// The core's configuration; built with `NodeConfig::new` so fields the core adds later keep
    /// their defaults.
    pub fn node_config(&self) -> NodeConfig {
        let mut c = NodeConfig::new(self.id, self.site, self.role, self.seed);
        self.policy.apply(&mut c);
        if matches!(self.role, Role::Cache | Role::WorkerPeer) {
            let configured: Vec<NamespaceQuota> = self.namespaces.iter().map(|ns| ns.quota).collect();
            let quotas = quotas_for_cache(&configured, self.capacity).expect("checked when the configuration was read");
            c.cache = Some(self.policy.cache_config(self.capacity, self.seed, quotas));
            c.egress = egress_limits(&configured);
            c.max_age =
                self.namespaces.iter().enumerate().filter_map(|(i, ns)| Some((namespace_id(i), ns.max_age?))).collect();
        }
        c.serves = self
            .namespaces
            .iter()
            .enumerate()
            .filter(|(_, ns)| ns.export.is_some())
            .map(|(i, _)| namespace_id(i))
            .collect();
        c.origins = self
            .namespaces
            .iter()
            .enumerate()
            .filter(|(_, ns)| !ns.origins.is_empty())
            .map(|(i, ns)| (namespace_id(i), ns.origins.clone()))
            .collect::<BTreeMap<_, _>>();
        for (i, ns) in self.namespaces.iter().enumerate() {
            if let Some(tp) = &ns.third_party {
                c.origins.insert(namespace_id(i), vec![third_party_origin_id(i)]);
                c.third_party.insert(namespace_id(i), reef_core::node::ThirdParty { immutable: tp.immutable });
            }
        }
        c.peers = self.peers.iter().map(|p| PeerInfo::new(p.id, p.site, p.role)).collect();
        // A deployed federation is its configured peers: gossip, pointers and registrations
        // naming anyone else are ignored.
        c.membership.closed = true;
        c.discovery = self.discovery.clone();
        c.site_preference =
            self.sites.iter().filter(|s| !s.prefer.is_empty()).map(|s| (s.id, s.prefer.clone())).collect();
        c
    }

    pub fn namespace(&self, name: &str) -> Option<NamespaceId> {
        self.namespaces.iter().position(|ns| ns.name == name).map(namespace_id)
    }

    pub fn peer(&self, id: NodeId) -> Option<&Peer> {
        self.peers.iter().find(|p| p.id == id)
    }

    pub fn site_name(&self, id: SiteId) -> Option<&str> {
        self.sites.iter().find(|s| s.id == id).map(|s| s.name.as_str())
    }

    pub fn site_named(&self, name: &str) -> Option<SiteId> {
        self.sites.iter().find(|s| s.name == name).map(|s| s.id)
    }

    /// The site whose networks contain `ip` (the most specific network wins).
    pub fn site_of_address(&self, ip: IpAddr) -> Option<SiteId> {
        self.sites
            .iter()
            .flat_map(|s| s.networks.iter().map(move |n| (n, s.id)))
            .filter(|(n, _)| n.contains(&ip))
            .max_by_key(|(n, _)| n.prefix_len())
            .map(|(_, id)| id)
    }
}

fn known_node(me: u32, peers: &[Peer]) -> impl Fn(u32) -> bool + '_ {
    move |id| id == me || peers.iter().any(|p| p.id.0 == id)
}

/// A namespace's access rules, checked: a private namespace needs TLS (otherwise a node's
/// identity is only a header) and at least one trusted issuer.
fn namespace_access(
    i: usize,
    ns: &RawNamespace,
    issuers: &[IssuerConfig],
    tls: bool,
    known: &impl Fn(u32) -> bool,
) -> Result<NamespaceAccess, String> {
    for (j, issuer) in issuers.iter().enumerate() {
        if issuer.clock_skew.0 > reef_core::Duration::from_secs(reef_core::access::MAX_SKEW_SECS) {
            return Err(format!("`issuers[{j}].clock_skew`: expected at most 60s"));
        }
        if issuer.audiences.is_empty() {
            return Err(format!("`issuers[{j}].audiences`: expected at least one audience"));
        }
    }
    let trusted: Vec<Issuer> = match &ns.issuers {
        None => issuers.iter().map(|c| Issuer { issuer: c.issuer.clone(), audiences: c.audiences.clone() }).collect(),
        Some(names) => names
            .iter()
            .map(|name| {
                let c = issuers
                    .iter()
                    .find(|c| &c.issuer == name)
                    .ok_or_else(|| format!("`namespaces[{i}].issuers`: `{name}` is not one of the [[issuers]]"))?;
                Ok(Issuer { issuer: c.issuer.clone(), audiences: c.audiences.clone() })
            })
            .collect::<Result<_, String>>()?,
    };
    if ns.private && !tls {
        return Err(format!(
            "`namespaces[{i}].private`: a private namespace needs [tls] (without it a node's identity is only a header)"
        ));
    }
    if ns.private && trusted.is_empty() {
        return Err(format!("`namespaces[{i}].private`: a private namespace needs at least one of [[issuers]]"));
    }
    if let Some(bad) = ns.nodes.iter().flatten().find(|&&id| !known(id)) {
        return Err(format!("`namespaces[{i}].nodes`: node {bad} is not this node nor one of [[peers]]"));
    }
    let base_path = ns.base_path.clone().unwrap_or_else(|| "/".into());
    if !base_path.starts_with('/') || base_path.split('/').any(|s| s == "..") {
        return Err(format!(
            "`namespaces[{i}].base_path`: expected an absolute path such as `/cms`, got `{base_path}`"
        ));
    }
    Ok(NamespaceAccess {
        private: ns.private,
        issuers: trusted,
        base_path,
        nodes: ns.nodes.as_ref().map(|ids| ids.iter().map(|&id| NodeId(id)).collect()),
    })
}

fn header_timeout_range<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Span>, D::Error> {
    span_in(d, reef_core::Duration::from_millis(100), reef_core::Duration::from_secs(600)).map(Some)
}

fn scrub_interval_range<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Span>, D::Error> {
    span_in(d, reef_core::Duration::from_secs(1), reef_core::Duration::from_secs(30 * 86_400)).map(Some)
}

fn max_age_range<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Span>, D::Error> {
    span_in(d, reef_core::Duration::from_secs(1), reef_core::Duration::from_secs(365 * 86_400)).map(Some)
}

fn stage_delay_range<'de, D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
    span_in(d, reef_core::Duration::ZERO, reef_core::Duration::from_secs(7 * 86_400))
}

fn stage_retry_range<'de, D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
    span_in(d, reef_core::Duration::from_secs(1), reef_core::Duration::from_secs(3600))
}

fn dns_ttl_range<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Span>, D::Error> {
    span_in(d, reef_core::Duration::from_secs(1), reef_core::Duration::from_secs(3600)).map(Some)
}

/// The host of `url` if it is an IP address (`http://192.0.2.7:8443`, `https://[2001:db8::1]`).
fn url_ip(url: &str) -> Option<std::net::IpAddr> {
    let authority = url.split("://").nth(1)?.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.parse().ok()
}

fn upload_expiry_range<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Span>, D::Error> {
    span_in(d, reef_core::Duration::from_secs(60), reef_core::Duration::from_secs(365 * 86_400)).map(Some)
}

fn idle_timeout_range<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Span>, D::Error> {
    span_in(d, reef_core::Duration::from_secs(1), reef_core::Duration::from_secs(86_400)).map(Some)
}

/// A namespace's `origin_url`, checked against the keys it excludes.
fn third_party_config(
    i: usize,
    ns: &RawNamespace,
    at: impl Fn(std::ops::Range<usize>) -> String,
) -> Result<Option<ThirdPartyConfig>, String> {
    let Some(url) = &ns.origin_url else {
        if ns.immutable || ns.origin_ca.is_some() {
            return Err(format!("`namespaces[{i}]`: `immutable` and `origin_ca` go with `origin_url`"));
        }
        return Ok(None);
    };
    let conflicts = [
        ("origins", !ns.origins.is_empty()),
        ("export", ns.export.is_some()),
        ("max_age", ns.max_age.is_some()),
        ("nearline", ns.nearline.is_some()),
    ];
    if let Some((key, _)) = conflicts.iter().find(|(_, set)| *set) {
        return Err(format!(
            "`namespaces[{i}].origin_url` ({}): a namespace with a third-party origin has no `{key}` (its headers say how long copies stay fresh; `immutable = true` keeps them until evicted)",
            at(url.span())
        ));
    }
    let text = url.get_ref().trim_end_matches('/');
    let parsed = text
        .parse::<http::Uri>()
        .ok()
        .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() && u.query().is_none());
    if parsed.is_none() {
        return Err(format!(
            "`namespaces[{i}].origin_url` ({}): expected an `http://` or `https://` URL with a host and no query, got `{text}`",
            at(url.span())
        ));
    }
    if let Some(ca) = &ns.origin_ca
        && !ca.is_file()
    {
        return Err(format!("`namespaces[{i}].origin_ca`: `{}` is not a file; expected a PEM file", ca.display()));
    }
    Ok(Some(ThirdPartyConfig { url: text.to_string(), ca: ns.origin_ca.clone(), immutable: ns.immutable }))
}

fn namespace_id(index: usize) -> NamespaceId {
    NamespaceId(u16::try_from(index).expect("namespace count checked"))
}

/// `message` without its ` (line L, column C)` parts: in a merged text they point nowhere.
fn without_places(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(at) = rest.find(" (line ") {
        out.push_str(&rest[..at]);
        rest = rest[at..].split_once(')').map_or("", |(_, after)| after);
    }
    out.push_str(rest);
    out
}

/// One line per node: what it is and what it will do.
pub fn describe(configs: &[Config]) -> Vec<String> {
    configs
        .iter()
        .map(|c| {
            let site = c.site_name(c.site).unwrap_or("?");
            let namespaces: Vec<String> = c
                .namespaces
                .iter()
                .map(|n| match &n.export {
                    Some(dir) => format!("{} (exports {})", n.name, dir.display()),
                    None => n.name.clone(),
                })
                .collect();
            let mut line = format!(
                "n{} {} at {site}: {}, namespaces {}, {} peers",
                c.id.0,
                role_name(c.role),
                c.advertise,
                namespaces.join(", "),
                c.peers.len()
            );
            if let Some(store) = &c.store {
                line += &format!(", store {} ({})", store.display(), reef_core::units::format_size(c.capacity));
            }
            if let Some(dns) = &c.dns {
                line += &format!(", DNS for {} on {}", dns.zone, dns.listen);
            }
            line += if c.tls.is_some() { ", TLS" } else { ", no TLS" };
            line
        })
        .collect()
}

/// What does not fit together in a federation's node files.
pub fn check_federation(configs: &[Config]) -> Vec<String> {
    let mut problems = Vec::new();
    let by_id = |id: NodeId| configs.iter().find(|c| c.id == id);
    for (i, c) in configs.iter().enumerate() {
        if configs[..i].iter().any(|o| o.id == c.id) {
            problems.push(format!("node id {} is used by two files", c.id.0));
        }
        for p in &c.peers {
            let Some(other) = by_id(p.id) else {
                problems.push(format!("n{} names peer n{}, which is not among the files checked", c.id.0, p.id.0));
                continue;
            };
            if p.role != other.role {
                problems.push(format!(
                    "n{} lists n{} as {}, but its file says {}",
                    c.id.0,
                    p.id.0,
                    role_name(p.role),
                    role_name(other.role)
                ));
            }
            if p.url != other.advertise {
                problems
                    .push(format!("n{} reaches n{} at {}, but it is at {}", c.id.0, p.id.0, p.url, other.advertise));
            }
            let (a, b) = (c.site_name(p.site), other.site_name(other.site));
            if a != b {
                problems.push(format!("n{} puts n{} at site {a:?}, but its file says {b:?}", c.id.0, p.id.0));
            }
        }
        for ns in &c.namespaces {
            for &o in &ns.origins {
                match by_id(o) {
                    Some(origin) if origin.role != Role::Origin => problems.push(format!(
                        "n{}: namespace {} names n{} as origin, a {}",
                        c.id.0,
                        ns.name,
                        o.0,
                        role_name(origin.role)
                    )),
                    Some(origin) if !origin.namespaces.iter().any(|n| n.name == ns.name && n.export.is_some()) => {
                        problems.push(format!(
                            "n{}: namespace {} names n{} as origin, which does not export it",
                            c.id.0, ns.name, o.0
                        ))
                    }
                    // A split fill's ranges are whole blocks of the cache's size, checked
                    // against lists in the origin's.
                    Some(origin)
                        if c.policy.multi_source_min.is_some()
                            && origin.policy.block_size.0 != c.policy.block_size.0 =>
                    {
                        problems.push(format!(
                            "n{}: splits fills (policy.multi_source_min) in blocks of {} bytes, but its origin n{} lists blocks of {} (policy.block_size must match)",
                            c.id.0, c.policy.block_size.0, o.0, origin.policy.block_size.0
                        ))
                    }
                    _ => {}
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[node]
id = 11
role = "cache"
listen = "127.0.0.1:0"
site = "a"
store = "/tmp/x"
capacity = "1GiB"

[[sites]]
name = "a"
id = 1
networks = ["127.0.0.0/8"]

[[namespaces]]
name = "atlas"
origins = [1]

[[peers]]
id = 1
role = "origin"
site = "a"
url = "http://127.0.0.1:1"
"#;

    #[test]
    fn dns_is_a_directors_and_names_a_zone() {
        let director = BASE.replace("role = \"cache\"", "role = \"director\"");
        let with = |keys: &str| Config::parse(&director.replacen("[node]\n", &format!("[node]\n{keys}\n"), 1));
        let c = with("dns_listen = \"127.0.0.1:5353\"\ndns_zone = \"CDN.Example.org.\"").unwrap();
        let dns = c.dns.unwrap();
        assert_eq!((dns.zone.as_str(), dns.ttl), ("cdn.example.org", 20));
        assert_eq!(c.peers[0].dns_address, Some("127.0.0.1".parse().unwrap()), "from the peer's URL");
        let err = |keys: &str| with(keys).unwrap_err();
        assert!(err("dns_listen = \"127.0.0.1:5353\"").contains("node.dns_zone"));
        assert!(err("dns_listen = \"127.0.0.1:5353\"\ndns_zone = \"bad zone\"").contains("not a domain name"));
        assert!(err("dns_listen = \"127.0.0.1:5353\"\ndns_zone = \"z\"\ndns_ttl = \"2h\"").contains("dns_ttl"));
        let cache =
            Config::parse(&BASE.replacen("[node]\n", "[node]\ndns_listen = \"127.0.0.1:1\"\ndns_zone = \"z\"\n", 1));
        assert!(cache.unwrap_err().contains("only a director answers DNS"));
        assert_eq!(url_ip("https://[2001:db8::1]:8443/x"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(url_ip("https://cache.example.org:8443"), None);
    }

    #[test]
    fn a_good_file_parses() {
        let c = Config::parse(BASE).unwrap();
        assert_eq!(c.capacity, 1 << 30);
        assert_eq!(c.namespace("atlas"), Some(NamespaceId(0)));
        let nc = c.node_config();
        assert_eq!(nc.origins[&NamespaceId(0)], vec![NodeId(1)]);
        assert!(nc.cache.is_some());
        assert_eq!(c.site_of_address("127.0.0.9".parse().unwrap()), Some(SiteId(1)));
    }

    #[test]
    fn errors_name_the_key_and_place() {
        let bad = BASE.replace("capacity = \"1GiB\"", "capacity = \"lots\"");
        let e = Config::parse(&bad).unwrap_err();
        assert!(e.contains("capacity") && e.contains("line 8"), "{e}");
        let bad = BASE.replace("role = \"cache\"", "role = \"proxy\"");
        let e = Config::parse(&bad).unwrap_err();
        assert!(e.contains("unknown role") && e.contains("line 4"), "{e}");
        let bad = BASE.replace("site = \"a\"\nstore", "site = \"b\"\nstore");
        let e = Config::parse(&bad).unwrap_err();
        assert!(e.contains("node.site") && e.contains("line 6"), "{e}");
        let bad = BASE.replace("origins = [1]", "origins = [7]");
        assert!(Config::parse(&bad).unwrap_err().contains("namespaces[0].origins"));
        let bad = BASE.replace("capacity = \"1GiB\"\n", "");
        assert!(Config::parse(&bad).unwrap_err().contains("node.capacity"));
        let bad = BASE.replace("[node]", "[node]\ncolour = 1");
        assert!(Config::parse(&bad).unwrap_err().contains("colour"));
    }

    #[test]
    fn the_policy_is_the_scenarios_policy() {
        let text = format!(
            "{BASE}\n[policy]\neviction = \"s3fifo\"\nadmission = \"second-hit\"\nhigh_watermark = 0.9\n\
             low_watermark = 0.8\nnegative_ttl = \"5s\"\nstream = false\nfetch_timeout = \"10s\"\n\
             [policy.membership]\nprobe_interval = \"2s\"\n[policy.dsht]\nk = 4\n"
        );
        let nc = Config::parse(&text).unwrap().node_config();
        let cache = nc.cache.as_ref().unwrap();
        assert_eq!(cache.policy.name(), "s3fifo");
        assert_eq!((cache.high_watermark, cache.low_watermark), (0.9, 0.8));
        assert!(matches!(cache.admission[..], [reef_core::cache::Admission::SecondHit { .. }]));
        assert_eq!(nc.negative_ttl, reef_core::Duration::from_secs(5));
        assert_eq!(nc.fetch_timeout, reef_core::Duration::from_secs(10));
        assert!(!nc.stream);
        assert_eq!(nc.membership.probe_interval, Some(reef_core::Duration::from_secs(2)));
        // The defaults are the core's one set.
        let default = Config::parse(BASE).unwrap().node_config();
        let p = reef_core::Policy::default();
        assert_eq!(default.fetch_timeout, p.fetch_timeout.0);
        assert_eq!(default.membership.probe_interval, None);
    }

    #[test]
    fn the_example_cluster_configurations_parse_and_fit_together() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local");
        // The origin's export directory is made by cluster.sh: make one beside a copy.
        let work = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(work.path().join("data/origin/atlas")).unwrap();
        let mut configs = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") && !path.ends_with("federation.toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let (text, included) = crate::federation_file::resolve(&text, &path).unwrap();
                assert!(included.is_some(), "{} includes the federation file", path.display());
                match Config::parse_in(&text, work.path()) {
                    Ok(c) => configs.push(c),
                    Err(e) => panic!("{}: {e}", path.display()),
                }
            }
        }
        assert_eq!(configs.len(), 6);
        assert_eq!(check_federation(&configs), Vec::<String>::new());
        assert!(configs.iter().all(|c| c.peers.len() == 5), "every node knows the five others");
        // A file that disagrees is named.
        configs[0].peers[0].url = "https://127.0.0.1:1".into();
        let problems = check_federation(&configs);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("but it is at"), "{problems:?}");
        // A cache that splits fills must cut ranges in its origins' block size.
        configs[0].peers[0].url =
            configs[1..].iter().find(|c| c.id == configs[0].peers[0].id).unwrap().advertise.clone();
        let cache =
            configs.iter().position(|c| c.role == Role::Cache && c.namespaces.iter().any(|n| !n.origins.is_empty()));
        let cache = &mut configs[cache.expect("a cache")];
        cache.policy.multi_source_min = Some(reef_core::units::Size(1 << 30));
        cache.policy.block_size = reef_core::units::Size(4 << 20);
        let problems = check_federation(&configs);
        assert!(problems.iter().any(|p| p.contains("policy.block_size must match")), "{problems:?}");
    }

    #[test]
    fn a_second_node_with_this_nodes_id_is_refused() {
        let own = "\n[[peers]]\nid = 11\nrole = \"cache\"\nsite = \"a\"\nurl = \"http://127.0.0.1:9\"\n";
        let e = Config::parse(&format!("{BASE}{own}")).unwrap_err();
        assert!(e.contains("peers[1].url") && e.contains("unique node ids"), "{e}");
        // Listing this node at its own address is fine.
        let text = BASE.replace("127.0.0.1:0", "127.0.0.1:9");
        assert!(Config::parse(&format!("{text}{own}")).is_ok());
    }

    #[test]
    fn bad_connection_limits_name_the_key() {
        for (bad, key) in [
            ("idle_timeout = \"0s\"", "idle_timeout"),
            ("header_timeout = \"0s\"", "header_timeout"),
            ("max_connections = 0", "max_connections"),
        ] {
            let e = Config::parse(&BASE.replace("[node]", &format!("[node]\n{bad}"))).unwrap_err();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_policy_values_name_the_key() {
        for (bad, key) in [
            ("fetch_timeout = \"0s\"", "fetch_timeout"),
            ("high_watermark = 1.5", "high_watermark"),
            ("eviction = \"random\"", "eviction"),
            ("discovery = \"parent\"", "discovery.parents"),
            ("discovery = \"directory\"", "discovery.directory"),
            ("block_size = 0", "block_size"),
            ("block_size = \"1GiB\"", "between 4KiB and 64MiB"),
            ("fetch_timeout = \"1ns\"", "between"),
        ] {
            let e = Config::parse(&format!("{BASE}\n[policy]\n{bad}\n")).unwrap_err();
            assert!(e.contains(key), "{bad}: {e}");
        }
        let e = Config::parse(&format!("{BASE}\n[policy.membership]\nprobe_interval = \"0s\"\n")).unwrap_err();
        assert!(e.contains("probe_interval") && e.contains("between"), "{e}");
    }
}
