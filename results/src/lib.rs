//! reef-results: turns reef-sim runs into tables (Parquet, CSV), figures (PNG, SVG) and a
//! report. It is the only crate that builds polars and plotters, which keeps the core, the
//! node and the simulator's engine quick to build.

#[cfg(feature = "render")]
pub mod compare;
#[cfg(feature = "render")]
pub mod figures;
pub mod model;
#[cfg(feature = "render")]
pub mod report;
#[cfg(feature = "render")]
pub mod tables;

pub use model::{
    ArchiveRow, Cdf, LinkRow, NamespaceCounts, NamespaceRow, OutageWindow, RequestRow, RunResults, SiteCounts,
    TimeseriesRow, Value,
};
#[cfg(feature = "render")]
pub use tables::TableFormats;

#[cfg(feature = "render")]
use anyhow::{Context, Result};
#[cfg(feature = "render")]
use std::path::{Path, PathBuf};

#[cfg(feature = "render")]
/// Writes one run's tables, figures and report under `dir`; returns every file written.
pub fn write_run(
    dir: &Path,
    title: &str,
    words: &str,
    run: &RunResults,
    formats: TableFormats,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = tables::write_run_tables(dir, run, formats)?;
    let figures = figures::draw_run(dir, run)?;
    for (_, png) in &figures {
        written.push(png.clone());
        written.push(png.with_extension("svg"));
    }
    written.extend(report::write_report(dir, title, words, run, &figures)?);
    Ok(written)
}
