//! Tables as Parquet (and CSV on request), built with polars.

use crate::model::{ArchiveRow, LinkRow, NamespaceRow, OutageWindow, RequestRow, RunResults, TimeseriesRow, Value};
use anyhow::{Context, Result, anyhow};
use polars::prelude::*;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Output formats for tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableFormats {
    pub csv: bool,
}

fn col<T>(name: &str, values: Vec<T>) -> Column
where
    Series: NamedFrom<Vec<T>, [T]>,
{
    Column::new(name.into(), values)
}

/// A one-row-per-run summary frame from (key, value) rows; every run must have the same keys.
pub fn summary_frame(runs: &[&[(String, Value)]]) -> Result<DataFrame> {
    let Some(first) = runs.first() else { return Ok(DataFrame::empty()) };
    let mut columns = Vec::with_capacity(first.len());
    fn cell<'a>(run: &'a [(String, Value)], i: usize, key: &str) -> Result<&'a Value> {
        let (k, v) = run.get(i).with_context(|| format!("run summaries differ: no column {i} (`{key}`)"))?;
        anyhow::ensure!(k == key, "run summaries differ: column {i} is `{k}` in one run and `{key}` in another");
        Ok(v)
    }
    for (i, (key, v0)) in first.iter().enumerate() {
        let column = match v0 {
            Value::Int(_) => col(
                key,
                runs.iter()
                    .map(|r| cell(r, i, key).map(|v| v.as_f64().map(|f| f as i64)))
                    .collect::<Result<Vec<_>>>()?,
            ),
            Value::Float(_) => {
                col(key, runs.iter().map(|r| cell(r, i, key).map(|v| v.as_f64())).collect::<Result<Vec<_>>>()?)
            }
            Value::Text(_) => {
                col(key, runs.iter().map(|r| cell(r, i, key).map(|v| v.to_string())).collect::<Result<Vec<_>>>()?)
            }
        };
        columns.push(column);
    }
    Ok(DataFrame::new_infer_height(columns)?)
}

pub fn timeseries_frame(rows: &[TimeseriesRow]) -> Result<DataFrame> {
    let u = |f: fn(&TimeseriesRow) -> u64| rows.iter().map(f).collect::<Vec<u64>>();
    Ok(DataFrame::new_infer_height(vec![
        col("time_s", rows.iter().map(|r| r.time_s).collect::<Vec<_>>()),
        col("site", rows.iter().map(|r| r.site.clone()).collect::<Vec<_>>()),
        col("tier", rows.iter().map(|r| r.tier.clone()).collect::<Vec<_>>()),
        col("requests", u(|r| r.counts.requests)),
        col("completed", u(|r| r.counts.completed)),
        col("failed", u(|r| r.counts.failed)),
        col("hits_local", u(|r| r.counts.hits_local)),
        col("hits_peer", u(|r| r.counts.hits_peer)),
        col("hits_origin", u(|r| r.counts.hits_origin)),
        col("bytes_local", u(|r| r.counts.bytes_local)),
        col("bytes_peer", u(|r| r.counts.bytes_peer)),
        col("bytes_origin", u(|r| r.counts.bytes_origin)),
        col("from_worker_node", u(|r| r.counts.from_worker_node)),
        col("from_site_cache", u(|r| r.counts.from_site_cache)),
        col("from_parent_tier", u(|r| r.counts.from_parent_tier)),
        col("from_other_site", u(|r| r.counts.from_other_site)),
        col("relayed", u(|r| r.counts.relayed)),
        col("cache_fill_bytes", u(|r| r.counts.cache_fill_bytes)),
        col("origin_egress_bytes", u(|r| r.counts.origin_egress_bytes)),
    ])?)
}

pub fn namespaces_frame(rows: &[NamespaceRow]) -> Result<DataFrame> {
    let u = |f: fn(&NamespaceRow) -> u64| rows.iter().map(f).collect::<Vec<u64>>();
    Ok(DataFrame::new_infer_height(vec![
        col("time_s", rows.iter().map(|r| r.time_s).collect::<Vec<_>>()),
        col("namespace", rows.iter().map(|r| r.namespace.clone()).collect::<Vec<_>>()),
        col("requests", u(|r| r.counts.requests)),
        col("completed", u(|r| r.counts.completed)),
        col("failed", u(|r| r.counts.failed)),
        col("site_hits", u(|r| r.counts.site_hits)),
        col("bytes_served", u(|r| r.counts.bytes_served)),
        col("evicted", u(|r| r.counts.evicted)),
        col("egress_delayed", u(|r| r.counts.egress_delayed)),
        col("egress_refused", u(|r| r.counts.egress_refused)),
    ])?)
}

pub fn links_frame(rows: &[LinkRow]) -> Result<DataFrame> {
    Ok(DataFrame::new_infer_height(vec![
        col("time_s", rows.iter().map(|r| r.time_s).collect::<Vec<_>>()),
        col("link", rows.iter().map(|r| r.link.clone()).collect::<Vec<_>>()),
        col("bytes", rows.iter().map(|r| r.bytes).collect::<Vec<_>>()),
        col("utilisation", rows.iter().map(|r| r.utilisation).collect::<Vec<_>>()),
    ])?)
}

pub fn requests_frame(rows: &[RequestRow]) -> Result<DataFrame> {
    Ok(DataFrame::new_infer_height(vec![
        col("time_s", rows.iter().map(|r| r.time_s).collect::<Vec<_>>()),
        col("site", rows.iter().map(|r| r.site.clone()).collect::<Vec<_>>()),
        col("tier", rows.iter().map(|r| r.tier.clone()).collect::<Vec<_>>()),
        col("object", rows.iter().map(|r| r.object).collect::<Vec<_>>()),
        col("bytes", rows.iter().map(|r| r.bytes).collect::<Vec<_>>()),
        col("source", rows.iter().map(|r| r.source.clone()).collect::<Vec<_>>()),
        col("latency_ms", rows.iter().map(|r| r.latency_ms).collect::<Vec<_>>()),
        col("lookup_hops", rows.iter().map(|r| r.lookup_hops).collect::<Vec<_>>()),
    ])?)
}

pub fn archive_frame(rows: &[ArchiveRow]) -> Result<DataFrame> {
    let u = |f: fn(&ArchiveRow) -> u64| rows.iter().map(f).collect::<Vec<u64>>();
    let x = |f: fn(&ArchiveRow) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    Ok(DataFrame::new_infer_height(vec![
        col("time_s", x(|r| r.time_s)),
        col("origin", rows.iter().map(|r| r.origin.clone()).collect::<Vec<_>>()),
        col("reads", u(|r| r.reads)),
        col("buffer_hits", u(|r| r.buffer_hits)),
        col("staging_answers", u(|r| r.staging_answers)),
        col("polls", u(|r| r.polls)),
        col("recalls", u(|r| r.recalls)),
        col("mounts", u(|r| r.mounts)),
        col("drive_busy_s", x(|r| r.drive_busy_s)),
        col("queue_wait_s", x(|r| r.queue_wait_s)),
    ])?)
}

pub fn outages_frame(rows: &[OutageWindow]) -> Result<DataFrame> {
    Ok(DataFrame::new_infer_height(vec![
        col("start_s", rows.iter().map(|r| r.start_s).collect::<Vec<_>>()),
        col("end_s", rows.iter().map(|r| r.end_s).collect::<Vec<_>>()),
        col("what", rows.iter().map(|r| r.what.clone()).collect::<Vec<_>>()),
    ])?)
}

/// Writes `frame` as `<dir>/<name>.parquet` (and `.csv`); returns the paths written.
pub fn write_frame(dir: &Path, name: &str, frame: &mut DataFrame, formats: TableFormats) -> Result<Vec<PathBuf>> {
    let parquet = dir.join(format!("{name}.parquet"));
    let file = File::create(&parquet).with_context(|| format!("creating {}", parquet.display()))?;
    ParquetWriter::new(file).finish(frame).map_err(|e| anyhow!("writing {}: {e}", parquet.display()))?;
    let mut written = vec![parquet];
    if formats.csv {
        let csv = dir.join(format!("{name}.csv"));
        let mut file = File::create(&csv).with_context(|| format!("creating {}", csv.display()))?;
        CsvWriter::new(&mut file).finish(frame).map_err(|e| anyhow!("writing {}: {e}", csv.display()))?;
        written.push(csv);
    }
    Ok(written)
}

/// Writes every table of one run under `dir`.
pub fn write_run_tables(dir: &Path, run: &RunResults, formats: TableFormats) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    written.extend(write_frame(dir, "summary", &mut summary_frame(&[&run.summary])?, formats)?);
    written.extend(write_frame(dir, "timeseries", &mut timeseries_frame(&run.timeseries)?, formats)?);
    written.extend(write_frame(dir, "links", &mut links_frame(&run.links)?, formats)?);
    if !run.namespaces.is_empty() {
        written.extend(write_frame(dir, "namespaces", &mut namespaces_frame(&run.namespaces)?, formats)?);
    }
    if !run.requests.is_empty() {
        written.extend(write_frame(dir, "requests", &mut requests_frame(&run.requests)?, formats)?);
    }
    if !run.outages.is_empty() {
        written.extend(write_frame(dir, "outages", &mut outages_frame(&run.outages)?, formats)?);
    }
    if !run.archive.is_empty() {
        written.extend(write_frame(dir, "archive", &mut archive_frame(&run.archive)?, formats)?);
    }
    Ok(written)
}

/// Reads a Parquet table.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ParquetReader::new(file).finish().map_err(|e| anyhow!("reading {}: {e}", path.display()))
}

/// Stacks tables with the same columns (shards of one sweep) into one.
pub fn concat(frames: Vec<DataFrame>) -> Result<DataFrame> {
    let mut iter = frames.into_iter();
    let Some(mut all) = iter.next() else { return Ok(DataFrame::empty()) };
    for f in iter {
        anyhow::ensure!(
            f.get_column_names() == all.get_column_names(),
            "tables to merge have different columns: {:?} vs {:?}",
            f.get_column_names(),
            all.get_column_names()
        );
        all.vstack_mut(&f)?;
    }
    all.rechunk_mut();
    Ok(all)
}
