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
    let Command::Get { url, output, mirror, attempts, ca, token_file, json } = args.command;
    let token = match token_file {
        Some(f) => match std::fs::read_to_string(&f) {
            Ok(t) => Some(t.trim().to_string()),
            Err(e) => {
                eprintln!("error: `{}`: {e}", f.display());
                return ExitCode::from(2);
            }
        },
        None => reef_node::client::discover_token(),
    };
    let output = output.unwrap_or_else(|| {
        let name = url.split(['?', '#']).next().unwrap_or("").rsplit('/').next().unwrap_or("");
        if name.is_empty() { "download".into() } else { name.into() }
    });
    let opts = reef_node::client::GetOptions { url, output: output.clone(), mirrors: mirror, attempts, ca, token };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
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
