//! reef-node: the networked driver of reef-core (origin, cache, director over HTTP).
//! The core decides; this crate moves bytes, messages and time.
//!
//! Code map: `config` (TOML), `driver` (the actor around the core `Node`), `server` (HTTP
//! routes), `http/*` (ranges, digests, validators, bodies), `store` (crash-safe disk cache),
//! `fill` (an object arriving), `peer_transport` (node-to-node HTTP), `origin` (exported
//! trees), `upload` (`PUT` into an origin), `metrics`, `access_log`, `client` (`reef get`).

pub mod access_log;
pub mod assembly;
pub mod auth;
pub mod blocks;
pub mod client;
pub mod config;
pub mod dns;
pub mod driver;
pub mod federation_file;
pub mod fill;
pub mod hot_copies;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod mount;
pub mod nearline;
pub mod origin;
pub mod peer_transport;
pub mod popularity;
pub mod put;
pub mod scrub;
pub mod server;
pub mod status;
pub mod store;
pub mod tape_api;
pub mod third_party;
pub mod tls;
pub mod upload;
pub mod usage;
pub mod webdav;

use std::sync::Arc;

/// The version reported by `--version` and in the `Server` header.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Starts a node from its configuration (read from `source`, which `SIGHUP` reads again) and
/// serves until the process ends.
pub async fn run(mut config: config::Config, source: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let (store, recovered) = match &config.store {
        Some(dir) => {
            let store = store::Store::open(dir)
                .map_err(|e| anyhow::anyhow!("`node.store` ({}): {e}", dir.display()))?
                .with_memory_cache(config.memory_cache);
            let recovered = store.recover()?;
            (Some(Arc::new(store)), recovered)
        }
        None => (None, Vec::new()),
    };
    // The core keeps cached and promised bytes within the capacity; a capacity the disk cannot
    // hold would make fills run out of space half way. Keep 5% for sidecars and the file system.
    if let Some(store) = &store {
        let stored = recovered.iter().map(|(_, m)| m.size).sum();
        if let Some(room) = store.disk_room(stored).map(|r| r - r / 20)
            && config.capacity > room
        {
            tracing::warn!(
                capacity = config.capacity,
                disk = room,
                "`node.capacity` is more than the store's disk can hold: using what the disk can hold"
            );
            config.capacity = room;
        }
    }
    let config = Arc::new(config);
    let exports = match config.role {
        reef_core::Role::Origin => Some(origin::Exports::new(&config)?),
        _ => None,
    };
    let log = match &config.access_log {
        Some(path) => Some(
            access_log::AccessLog::open(path)
                .map_err(|e| anyhow::anyhow!("`node.access_log` ({}): {e}", path.display()))?,
        ),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("`node.listen` ({}): {e}", config.listen))?;
    let tls = match &config.tls {
        Some(files) => Some(tls::NodeTls::load(files, config.id).map_err(|e| anyhow::anyhow!("`tls`: {e}"))?),
        None => {
            if !config.peers.is_empty() {
                tracing::warn!(
                    "no [tls]: other nodes are identified by a header and the network is trusted; \
                     use [tls] wherever anyone else can reach the port (node/README.md, \"Trust model\")"
                );
            }
            None
        }
    };
    let client_tls = match &tls {
        Some(t) => t.client.clone(),
        None => tls::client_trusting(None)?,
    };
    let transport = Arc::new(
        peer_transport::Transport::new(
            config.id,
            config.advertise.clone(),
            config.peers.iter().map(|p| (p.id, p.url.clone())).collect(),
            client_tls,
            tls.as_ref().map(tls::NodeTls::seal_check).transpose().map_err(|e| anyhow::anyhow!("`tls.ca`: {e}"))?,
        )
        .with_third_party(third_party::origins(&config)?),
    );
    transport.set_fill_limits(config.fill_limits());
    let tokens = if config.issuers.is_empty() {
        None
    } else {
        Some(auth::Tokens::new(&config.issuers).map_err(|e| anyhow::anyhow!("`issuers`: {e}"))?)
    };
    let metrics = Arc::new(metrics::Metrics::default());
    let driver = driver::Driver::start(config.clone(), transport.clone(), store.clone(), recovered, metrics.clone());
    tokio::spawn(reload_on_hangup(tls.clone(), source, config.clone(), driver.clone(), transport.clone()));
    tracing::info!(
        id = config.id.0,
        role = config::role_name(config.role),
        listen = %config.listen,
        "node started"
    );
    if let Some(store) = &store {
        tokio::spawn(scrub::run(
            store.clone(),
            driver.clone(),
            metrics.clone(),
            config.scrub_rate,
            config.scrub_interval,
        ));
    }
    let probes = config.policy.membership.probe_interval.is_some();
    if !probes && !config.peers.is_empty() && matches!(config.role, reef_core::Role::Cache | reef_core::Role::Director)
    {
        tracing::warn!(
            "no `policy.membership.probe_interval`: peers are never probed, so a dead node is noticed only \
             when a fetch or a message to it fails"
        );
    }
    let dns_socket = match &config.dns {
        Some(dns) => Some(
            tokio::net::UdpSocket::bind(dns.listen)
                .await
                .map_err(|e| anyhow::anyhow!("`node.dns_listen` ({}): {e}", dns.listen))?,
        ),
        None => None,
    };
    let views = (config.role == reef_core::Role::Director).then(|| Arc::new(status::Views::default()));
    let popular = popularity::TopObjects::new(1000);
    let app = Arc::new(server::App {
        config,
        driver,
        transport,
        store,
        exports,
        metrics,
        log,
        tls,
        tokens,
        popular,
        views: views.clone(),
        listings: webdav::Listings::default(),
    });
    if let Some(socket) = dns_socket {
        tokio::spawn(dns::serve(socket, app.clone()));
    }
    if let Some(views) = views {
        tokio::spawn(views.run(app.clone(), std::time::Duration::from_secs(2)));
    }
    server::serve(listener, app).await;
    Ok(())
}

/// On every `SIGHUP`: re-reads the node's certificate and key (a renewed certificate without a
/// restart) and the namespaces' quotas from the configuration file. A bad file or
/// quota is reported and the old one stays in use; connections are not touched.
async fn reload_on_hangup(
    tls: Option<tls::NodeTls>,
    source: Option<std::path::PathBuf>,
    running: Arc<config::Config>,
    driver: driver::Driver,
    transport: Arc<peer_transport::Transport>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: certificates and quotas reload only on restart");
        return;
    };
    while hangup.recv().await.is_some() {
        if let Some(tls) = &tls {
            match tls.reload() {
                Ok(()) => tracing::info!("reloaded the TLS certificate and key"),
                Err(e) => tracing::error!(error = %e, "cannot reload the TLS certificate: keeping the old one"),
            }
        }
        if let Some(path) = &source {
            match reload_quotas(path, &running, &driver, &transport).await {
                Ok(()) => tracing::info!("reloaded the namespaces' quotas"),
                Err(e) => tracing::error!(error = %e, "cannot reload the quotas: keeping the old ones"),
            }
        }
    }
}

/// Reads the quotas of the running node's cache from `path` and hands them to its core.
async fn reload_quotas(
    path: &std::path::Path,
    running: &config::Config,
    driver: &driver::Driver,
    transport: &peer_transport::Transport,
) -> Result<(), String> {
    if !matches!(running.role, reef_core::Role::Cache | reef_core::Role::WorkerPeer) {
        return Ok(());
    }
    let mut fresh = config::Config::load(path).map_err(|e| e.to_string())?;
    let same = |a: &config::Config, b: &config::Config| {
        a.namespaces.iter().map(|n| &n.name).eq(b.namespaces.iter().map(|n| &n.name))
    };
    if !same(&fresh, running) {
        return Err("the namespaces changed: that takes a restart".into());
    }
    // The capacity in force (it may have been capped to the disk), not the file's.
    fresh.capacity = running.capacity;
    let core = fresh.node_config();
    let quotas = core.cache.map(|c| c.quotas).unwrap_or_default();
    driver.set_quotas(quotas, core.egress).await?;
    transport.set_fill_limits(fresh.fill_limits());
    Ok(())
}
