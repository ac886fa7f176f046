use clap::{Parser, Subcommand};

/// Reef simulator: run scenario files against the same core that reef-node deploys.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Simulate a scenario file: print a summary and write results under --out.
    Run(reef_sim::run::RunArgs),
    /// Replay a cache trace against one cache, for every policy and size given.
    Replay(reef_sim::replay::ReplayArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => reef_sim::run::execute(&args),
        Command::Replay(args) => reef_sim::replay::execute(&args),
    }
}
