//! `reef mount NAMESPACE DIR`: a namespace as a read-only file system (FUSE, through `fuser`:
//! no libfuse needed; `/dev/fuse` and root, or `user_allow_other`, are). `ls`, `stat` and
//! `find` are answered from the origin's listings (`GET /.reef/v1/list/...`, kept for a TTL);
//! reads go block by block through the nearest source (`--via`: a director or caches, with
//! failover), every block checked against the origin's block list, kept in a local block
//! cache within a size limit, and fetched ahead for sequential readers. What is cached keeps
//! working while the network or the origin is down.

mod block_cache;
mod fs;
mod remote;

use reef_core::units::Span;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug, Clone)]
pub struct MountOptions {
    /// The namespace to mount.
    pub namespace: String,
    /// The (empty) directory to mount it on.
    pub dir: PathBuf,
    /// An origin of the namespace (`https://host:port`): listings and block lists; may be
    /// repeated (tried in order).
    #[arg(long, required = true)]
    pub origin: Vec<String>,
    /// Where bytes are read from: a director or caches (`https://host:port`), tried in order
    /// with failover [default: the origins].
    #[arg(long)]
    pub via: Vec<String>,
    /// The local block cache [default: $XDG_CACHE_HOME/reef/mount/<namespace>].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// The block cache's size limit.
    #[arg(long, default_value = "10GiB", value_parser = parse_size)]
    pub cache_size: u64,
    /// How long a listing (and a block list) is used before the origin is asked again.
    #[arg(long, default_value = "60s")]
    pub listing_ttl: Span,
    /// Blocks fetched ahead of a sequential reader.
    #[arg(long, default_value_t = 8)]
    pub readahead: u64,
    /// How long one request may take.
    #[arg(long, default_value = "30s")]
    pub timeout: Span,
    /// A CA certificate (PEM) to trust besides the system's.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// A file holding the bearer token (default: WLCG token discovery).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    #[arg(skip)]
    pub token: Option<String>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    reef_core::units::parse_size(s).map_err(|e| e.to_string())
}

/// Mounts and serves until SIGINT or SIGTERM, then unmounts.
pub fn run(opts: MountOptions) -> anyhow::Result<()> {
    if !std::path::Path::new("/dev/fuse").exists() {
        anyhow::bail!("/dev/fuse is missing: this machine cannot mount FUSE file systems");
    }
    if !opts.dir.is_dir() {
        anyhow::bail!("`{}`: not a directory", opts.dir.display());
    }
    let token = match &opts.token_file {
        Some(f) => {
            Some(std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("`{}`: {e}", f.display()))?.trim().to_string())
        }
        None => opts.token.clone(),
    };
    let cache_dir = match &opts.cache_dir {
        Some(d) => d.clone(),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from("/tmp"))
            .join("reef/mount")
            .join(&opts.namespace),
    };
    let cache = block_cache::BlockCache::open(&cache_dir, opts.cache_size)
        .map_err(|e| anyhow::anyhow!("the block cache `{}`: {e}", cache_dir.display()))?;
    tracing::info!(dir = %cache_dir.display(), bytes = cache.used(), "block cache");
    let tls = crate::tls::client_trusting(opts.ca.as_deref())?;
    let via = if opts.via.is_empty() { opts.origin.clone() } else { opts.via.clone() };
    let timeout = opts.timeout.0.into();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let remote = {
        let _guard = runtime.enter(); // the HTTP client needs a runtime to be built in
        remote::Remote::new(tls, opts.namespace.clone(), opts.origin.clone(), via, token, timeout)
    };
    let fetcher = Arc::new(fs::Fetcher::new(remote, cache));
    let filesystem = fs::ReefFs::new(runtime.handle().clone(), fetcher, opts.listing_ttl.0.into(), opts.readahead);
    let options = [
        fuser::MountOption::RO,
        fuser::MountOption::FSName(format!("reef:{}", opts.namespace)),
        fuser::MountOption::Subtype("reef".into()),
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
    ];
    let session = fuser::spawn_mount2(filesystem, &opts.dir, &options)
        .map_err(|e| anyhow::anyhow!("mounting on `{}`: {e}", opts.dir.display()))?;
    eprintln!("mounted namespace `{}` on {}", opts.namespace, opts.dir.display());
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        Ok::<_, std::io::Error>(())
    })?;
    drop(session); // unmounts
    eprintln!("unmounted {}", opts.dir.display());
    Ok(())
}
