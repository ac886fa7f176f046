//! `reef-sim replay`: one cache, one trace, many (policy, size) pairs.

/// Arguments of `reef-sim replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The trace file.
    #[arg(long)]
    pub trace: std::path::PathBuf,
}

pub fn execute(args: &ReplayArgs) -> anyhow::Result<()> {
    anyhow::bail!("{}: trace replay is not built yet", args.trace.display())
}
