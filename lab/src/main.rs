//! `reef-lab`: a scenario's sites and links, emulated on this machine (needs root and
//! iproute2): `plan` (what would be built), `up` (build it and hold it until Ctrl-C), `run`
//! (the scenario through the simulator and a real cluster, compared), `sweep` (remove what a
//! killed run left) and `relay` (the latency relay the cluster runs).

use clap::{Parser, Subcommand};
use reef_lab::netns::{Network, sweep};
use reef_lab::plan::Plan;
use reef_lab::run::LabOptions;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Prints the sites, links and addresses a scenario's lab has.
    Plan {
        scenario: PathBuf,
        /// `--set KEY=VALUE` overrides, as reef-sim takes them.
        #[arg(long = "set")]
        overrides: Vec<String>,
    },
    /// Builds the scenario's sites (network namespaces) and links (veth, tbf) and holds them
    /// until Ctrl-C; then removes everything.
    Up {
        scenario: PathBuf,
        #[arg(long = "set")]
        overrides: Vec<String>,
        /// Name prefix of the namespaces and links (at most 6 letters or digits).
        #[arg(long, default_value = "reeflb")]
        prefix: String,
    },
    /// Runs the scenario through the simulator and through a real cluster in emulated sites,
    /// and writes the comparison (`report.md`, `requests.csv`) to `--out`.
    Run {
        scenario: PathBuf,
        #[arg(long = "set")]
        overrides: Vec<String>,
        #[arg(long)]
        seed: Option<u64>,
        /// Multiplies object sizes, cache sizes and bandwidths (transfer times stay the same).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// One request at a time in both drivers (exact agreement expected); otherwise at the
        /// simulated issue times.
        #[arg(long)]
        sequential: bool,
        /// Timed replay: requests in flight at most.
        #[arg(long, default_value_t = 64)]
        parallel: usize,
        #[arg(long, default_value = "out/lab")]
        out: PathBuf,
        #[arg(long, default_value = "reeflb")]
        prefix: String,
    },
    /// Relays TCP connections from `listen` to `target`, delaying the bytes each way by
    /// `latency_ms` (the lab runs one per source site and remote node). Runs until killed.
    Relay {
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long)]
        target: std::net::SocketAddr,
        #[arg(long)]
        latency_ms: f64,
    },
    /// Removes what a killed `up` left behind.
    Sweep {
        #[arg(long, default_value = "reeflb")]
        prefix: String,
    },
}

fn plan(scenario: &std::path::Path, overrides: &[String]) -> anyhow::Result<Plan> {
    let s = reef_sim::scenario::load(scenario, overrides).map_err(|e| anyhow::anyhow!("{e}"))?;
    Plan::of(&s, s.seed)
}

fn relay(listen: std::net::SocketAddr, target: std::net::SocketAddr, latency_ms: f64) -> anyhow::Result<()> {
    use reef_lab::relay::{Path, Relay};
    anyhow::ensure!(
        latency_ms.is_finite() && latency_ms >= 0.0,
        "--latency-ms: expected a duration in ms, got {latency_ms}"
    );
    let path = Path { latency: std::time::Duration::from_secs_f64(latency_ms / 1e3), links: Vec::new() };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(async {
        let _relay = Relay::start(listen, target, path.clone(), path).await?;
        tokio::signal::ctrl_c().await?;
        Ok(())
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Plan { scenario, overrides } => plan(&scenario, &overrides).map(|p| print!("{}", p.describe())),
        Command::Up { scenario, overrides, prefix } => plan(&scenario, &overrides).and_then(|p| {
            let net = Network::create(&prefix, p.sites.len(), &p.links, |a, b| p.next_hop[a][b])?;
            print!("{}", p.describe());
            println!("up; Ctrl-C removes it");
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(tokio::signal::ctrl_c())?;
            drop(net);
            Ok(())
        }),
        Command::Run { scenario, overrides, seed, scale, sequential, parallel, out, prefix } => {
            reef_lab::run::Binaries::beside_me().and_then(|binaries| {
                let opts = LabOptions { scenario, overrides, seed, scale, sequential, parallel, prefix, out, binaries };
                let c = reef_lab::run::run(&opts)?;
                println!(
                    "{} requests, {} with another source in the lab; origin transfers sim {} lab {}; report: {}",
                    c.sim.requests.len(),
                    c.disagreements(),
                    c.sim.origin_transfers,
                    c.lab.origin_transfers,
                    opts.out.join("report.md").display()
                );
                Ok(())
            })
        }
        Command::Relay { listen, target, latency_ms } => relay(listen, target, latency_ms),
        Command::Sweep { prefix } => sweep(&prefix).map(|n| println!("removed {n} namespaces")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
