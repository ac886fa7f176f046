use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Reef's command-line client.
#[derive(Parser, Debug)]
#[command(version = reef_node::VERSION)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Download an object: follows redirects, resumes broken transfers, fails over between
    /// sources, verifies the checksum.
    ///
    /// Example: reef get http://127.0.0.1:18430/atlas/hello.txt -o hello.txt
    Get {
        /// The object's URL (a director's, a cache's or an origin's).
        url: String,
        /// Where to write it (default: the last path segment, in the current directory).
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
        /// Another cache (`http://host:port`) to fail over to; may be repeated.
        #[arg(long)]
        mirror: Vec<String>,
        /// Attempts before giving up.
        #[arg(long, default_value_t = 20)]
        attempts: u32,
        /// A CA certificate (PEM) to trust besides the system's, e.g. a federation's `ca.pem`.
        #[arg(long)]
        ca: Option<std::path::PathBuf>,
        /// A file holding the bearer token for private namespaces (default: WLCG token
        /// discovery: $BEARER_TOKEN, $BEARER_TOKEN_FILE, $XDG_RUNTIME_DIR/bt_u<uid>, /tmp/bt_u<uid>).
        #[arg(long)]
        token_file: Option<std::path::PathBuf>,
        /// Also print what happened as one JSON object on stdout (size, the server that sent
        /// the bytes, its Cache-Status, the checksum verified, attempts), for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Upload a file into an origin: states its checksum, resumes a broken upload from the
    /// byte the origin reached, retries transient failures with backoff.
    ///
    /// Example: reef put run42.root https://origin:8443/atlas/raw/run42.root --ca ca.pem
    Put {
        /// The file to upload.
        file: std::path::PathBuf,
        /// The object's URL on an origin.
        url: String,
        /// Attempts before giving up.
        #[arg(long, default_value_t = 20)]
        attempts: u32,
        /// A CA certificate (PEM) to trust besides the system's.
        #[arg(long)]
        ca: Option<std::path::PathBuf>,
        /// A file holding the bearer token (`storage.create`; default: WLCG token discovery).
        #[arg(long)]
        token_file: Option<std::path::PathBuf>,
        /// Also print what happened as one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// The transfer daemon of a site: uploads every new file that appears under a directory,
    /// survives restarts (a JSON-lines journal records what is done), retries transient
    /// failures and sets permanent ones aside.
    ///
    /// Example: reef ingest --watch /data/outbox --to https://origin:8443/atlas/raw --ca ca.pem
    Ingest(reef_node::ingest::IngestOptions),
    /// Mount a namespace as a read-only file system (FUSE): listings from an origin, reads
    /// through the nearest cache with failover, every block verified, a local block cache.
    ///
    /// Example: reef mount atlas /mnt/atlas --origin https://origin:8443 --via https://director:8443
    Mount(reef_node::mount::MountOptions),
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match args.command {
        Command::Get { url, output, mirror, attempts, ca, token_file, json } => {
            let Some(token) = token(token_file) else { return ExitCode::from(2) };
            get(url, output, mirror, attempts, ca, token, json)
        }
        Command::Put { file, url, attempts, ca, token_file, json } => {
            let Some(token) = token(token_file) else { return ExitCode::from(2) };
            put(reef_node::put::PutOptions { file, url, attempts, ca, token }, json)
        }
        Command::Mount(mut opts) => {
            if opts.token_file.is_none() {
                opts.token = reef_node::client::discover_token();
            }
            match reef_node::mount::run(opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Ingest(mut opts) => {
            if opts.token.is_none() {
                opts.token = reef_node::client::discover_token();
            }
            match runtime().map_err(anyhow::Error::from).and_then(|r| r.block_on(reef_node::ingest::run(opts))) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The token from `--token-file`, or WLCG token discovery; `None` if the file is unreadable.
fn token(file: Option<std::path::PathBuf>) -> Option<Option<String>> {
    match file {
        Some(f) => match std::fs::read_to_string(&f) {
            Ok(t) => Some(Some(t.trim().to_string())),
            Err(e) => {
                eprintln!("error: `{}`: {e}", f.display());
                None
            }
        },
        None => Some(reef_node::client::discover_token()),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

fn put(opts: reef_node::put::PutOptions, json: bool) -> ExitCode {
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let progress = std::sync::Arc::new(reef_node::put::Progress::default());
    let bar = progress_bar(&opts.file, progress.clone());
    let result = runtime.block_on(reef_node::put::put(&opts, progress));
    bar.finish_and_clear();
    match result {
        Ok(r) => {
            let what = if r.already_there { "already there" } else { "uploaded" };
            eprintln!(
                "{}: {what}, {} bytes, {}{}",
                opts.url,
                r.size,
                reef_node::put::digest_text(&r.digests),
                r.etag.as_deref().map(|e| format!(", ETag {e}")).unwrap_or_default()
            );
            if json {
                let line = serde_json::json!({
                    "url": opts.url, "size": r.size, "etag": r.etag, "already_there": r.already_there,
                    "sha256": r.digests.sha256, "adler32": format!("{:08x}", r.digests.adler32),
                    "attempts": r.attempts, "resumed_from": r.resumed_from, "sent": r.sent,
                    "seconds": r.elapsed.as_secs_f64(),
                });
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            if json {
                let line = serde_json::json!({ "error": e.message, "permanent": e.permanent, "status": e.status });
                println!("{line}");
            }
            ExitCode::FAILURE
        }
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal): hashing, then sending.
fn progress_bar(file: &std::path::Path, progress: std::sync::Arc<reef_node::put::Progress>) -> indicatif::ProgressBar {
    use std::sync::atomic::Ordering::Relaxed;
    let size = std::fs::metadata(file).map_or(0, |m| m.len());
    let bar = indicatif::ProgressBar::new(size);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:8} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let shown = bar.clone();
    std::thread::spawn(move || {
        while !shown.is_finished() {
            let (hashed, at) = (progress.hashed.load(Relaxed), progress.at.load(Relaxed));
            if hashed < size {
                shown.set_message("hashing");
                shown.set_position(hashed);
            } else {
                shown.set_message("sending");
                shown.set_position(at);
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    });
    bar
}

#[allow(clippy::too_many_arguments)]
fn get(
    url: String,
    output: Option<std::path::PathBuf>,
    mirror: Vec<String>,
    attempts: u32,
    ca: Option<std::path::PathBuf>,
    token: Option<String>,
    json: bool,
) -> ExitCode {
    let output = output.unwrap_or_else(|| {
        let name = url.split(['?', '#']).next().unwrap_or("").rsplit('/').next().unwrap_or("");
        if name.is_empty() { "download".into() } else { name.into() }
    });
    let opts = reef_node::client::GetOptions { url, output: output.clone(), mirrors: mirror, attempts, ca, token };
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(reef_node::client::get(&opts)) {
        Ok(report) => {
            eprintln!(
                "{}: {} bytes from {}{}; checksum {}",
                output.display(),
                report.size,
                report.served_by,
                report.cache_status.as_ref().map(|c| format!(" ({c})")).unwrap_or_default(),
                report.verified.as_deref().unwrap_or("not offered")
            );
            if json {
                let line = serde_json::json!({
                    "output": output,
                    "size": report.size,
                    "served_by": report.served_by,
                    "cache_status": report.cache_status,
                    "verified": report.verified,
                    "attempts": report.attempts,
                    "seconds": report.elapsed.as_secs_f64(),
                });
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            if json {
                let why = e.downcast_ref::<reef_node::client::GetError>();
                let line = serde_json::json!({
                    "error": format!("{e:#}"),
                    "failure": why.and_then(|g| g.failure).map(|f| f.name()),
                    "answered": why.is_some_and(|g| g.answered),
                });
                println!("{line}");
            }
            ExitCode::FAILURE
        }
    }
}
