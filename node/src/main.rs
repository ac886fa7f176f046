use clap::Parser;

/// Reef node: a site's origin, cache or director, reached over HTTP.
#[derive(Parser, Debug)]
#[command(version = reef_node::VERSION)]
struct Args {
    /// The node's TOML configuration file.
    #[arg(long)]
    config: std::path::PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::bail!(
        "{}: the networked node is not built yet (see issue 7)",
        args.config.display()
    )
}
