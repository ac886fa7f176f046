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
    /// Run every combination of the varied keys on the same workload and compare them.
    Compare(reef_sim::compare::CompareArgs),
    /// Combine the folders of sharded `compare --shard` runs into one comparison.
    Merge(reef_sim::compare::MergeArgs),
    /// Replay a cache trace against one cache, for every policy and size given.
    Replay(reef_sim::replay::ReplayArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => reef_sim::run::execute(&args),
        Command::Compare(args) => reef_sim::compare::execute(&args),
        Command::Merge(args) => reef_sim::compare::merge(&args),
        Command::Replay(args) => reef_sim::replay::execute(&args),
    }
}
