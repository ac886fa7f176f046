use clap::{Parser, Subcommand};

/// Reef node: a site's origin, cache, director or worker-node peer, reached over HTTP.
///
/// The role, listen address, site, namespaces, peers and storage come from a TOML file; see
/// node/examples/local/ for a complete local cluster and node/README.md for every key.
#[derive(Parser, Debug)]
#[command(version = reef_node::VERSION, subcommand_negates_reqs = true)]
struct Args {
    /// The node's TOML configuration file.
    #[arg(long, required = true)]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A federation's certificates: `ca init`, then `ca issue` per node.
    #[command(subcommand)]
    Ca(Ca),
    /// Checks a whole federation's node files: each parses, the ids are unique, every
    /// `[[peers]]` entry agrees with that node's own file, every namespace's origins are
    /// origins that export it; prints what each node will do.
    ///
    /// Example: reef-node check-config node/examples/local/*.toml
    CheckConfig {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// A usage report from caches' access logs, as CSV on stdout: requests and bytes by
    /// namespace, object, client site, client and source tier, over a time range.
    ///
    /// Example: reef-node usage --log a1/access.log --log a2/access.log --namespace atlas --from 1767225600
    Usage {
        /// An access log (JSON lines); may be repeated.
        #[arg(long = "log", required = true)]
        logs: Vec<std::path::PathBuf>,
        /// Only reads at or after this Unix time.
        #[arg(long)]
        from: Option<f64>,
        /// Only reads before this Unix time.
        #[arg(long)]
        to: Option<f64>,
        /// Only this namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// The fields a line is keyed by.
        #[arg(long, value_delimiter = ',', default_value = "namespace,object,site,source")]
        by: Vec<reef_node::usage::Field>,
    },
}

#[derive(Subcommand, Debug)]
enum Ca {
    /// Creates the federation CA (`DIR/ca.pem`, `DIR/ca.key`).
    Init {
        #[arg(long)]
        dir: std::path::PathBuf,
        /// The CA's common name.
        #[arg(long, default_value = "Reef federation CA")]
        name: String,
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// Issues a node's certificate (`DIR/node-ID.pem`, `DIR/node-ID.key`), naming the node id
    /// and the host names or addresses clients and peers reach it by.
    ///
    /// Example: reef-node ca issue --dir fed --id 3 --host cache-a1.example.org --host 10.0.0.3
    Issue {
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long)]
        id: u32,
        /// A DNS name or IP address; may be repeated.
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        #[arg(long, default_value_t = 397)]
        days: u32,
    },
}

fn ca(command: Ca) -> std::process::ExitCode {
    use reef_node::tls::federation;
    let result = match command {
        Ca::Init { dir, name, days } => federation::init(&dir, &name, days).map(|()| {
            format!("{} and {}", federation::ca_cert_path(&dir).display(), federation::ca_key_path(&dir).display())
        }),
        Ca::Issue { dir, id, hosts, days } => federation::issue(&dir, id, &hosts, days)
            .map(|(cert, key)| format!("{} and {}", cert.display(), key.display())),
    };
    match result {
        Ok(written) => {
            println!("wrote {written}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn check_config(files: &[std::path::PathBuf]) -> std::process::ExitCode {
    let mut configs = Vec::new();
    let mut failed = false;
    for file in files {
        // A shared file the nodes include (no `[node]`) is read through them.
        let shared = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .is_some_and(|t| !t.contains_key("node"));
        if shared {
            println!("{}: a federation file (no [node]), read through the node files that include it", file.display());
            continue;
        }
        match reef_node::config::Config::load(file) {
            Ok(c) => configs.push(c),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    for line in reef_node::config::describe(&configs) {
        println!("{line}");
    }
    let problems = reef_node::config::check_federation(&configs);
    for p in &problems {
        eprintln!("error: {p}");
    }
    if failed || !problems.is_empty() {
        return std::process::ExitCode::FAILURE;
    }
    println!("{} nodes: the federation is consistent", configs.len());
    std::process::ExitCode::SUCCESS
}

fn usage(
    logs: &[std::path::PathBuf],
    filter: &reef_node::usage::Filter,
    by: &[reef_node::usage::Field],
) -> std::process::ExitCode {
    let mut sums = std::collections::BTreeMap::new();
    for log in logs {
        let read = std::fs::File::open(log).map_err(|e| format!("{}: {e}", log.display())).and_then(|f| {
            reef_node::usage::summarise(std::io::BufReader::new(f), &log.display().to_string(), filter, by, &mut sums)
        });
        if let Err(e) = read {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    print!("{}", reef_node::usage::csv(by, &sums));
    std::process::ExitCode::SUCCESS
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config_path = match (args.command, args.config) {
        (Some(Command::Ca(command)), _) => return ca(command),
        (Some(Command::CheckConfig { files }), _) => return check_config(&files),
        (Some(Command::Usage { logs, from, to, namespace, by }), _) => {
            return usage(&logs, &reef_node::usage::Filter { from, to, namespace }, &by);
        }
        (None, Some(path)) => path,
        (None, None) => unreachable!("clap requires --config without a subcommand"),
    };
    let config = match reef_node::config::Config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = reef_node::run(config, Some(config_path.clone())) => r,
            () = shutdown_signal() => {
                tracing::info!("stopping");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// SIGINT or SIGTERM. The store is crash-safe, so stopping needs no flushing.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
