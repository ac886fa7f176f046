//! A finished run as the results layer's plain rows (`reef_results::RunResults`), and the files
//! written under `--out`: always `summary.json` and `run.json`; with the `results` feature also
//! Parquet (and CSV) tables, PNG/SVG figures and `report.md` / `report.html`.

use crate::run::Summary;
use crate::series::Series;
use crate::stats::Histogram;
use crate::world::World;
use anyhow::Context;
use reef_core::Tier;
use reef_results::model::flatten;
use reef_results::{ArchiveRow, Cdf, LinkRow, NamespaceRow, OutageWindow, RequestRow, RunResults, TimeseriesRow};
use std::path::Path;

/// The rows of one run. `summary` becomes the one-row summary table, flattened.
pub fn run_results(summary: &Summary, world: &World) -> anyhow::Result<RunResults> {
    let mut flat = Vec::new();
    flatten("", &serde_json::to_value(summary)?, &mut flat);
    let series = &world.series;
    let bucket_s = series.bucket.as_secs_f64();
    let topo = &world.topo;
    let buckets = series.bucket_count();
    let mut timeseries = Vec::with_capacity(buckets * topo.sites.len());
    let mut links = Vec::with_capacity(buckets * topo.links.len());
    for b in 0..buckets {
        let time_s = b as f64 * bucket_s;
        for (i, site) in topo.sites.iter().enumerate() {
            timeseries.push(TimeseriesRow {
                time_s,
                site: site.name.clone(),
                tier: site.tier.to_string(),
                counts: series.site_bucket(b, i),
            });
        }
        for (i, l) in topo.links.iter().enumerate() {
            let bytes = series.link_bucket(b, i);
            let capacity = l.bandwidth.bytes_per_sec() * bucket_s;
            links.push(LinkRow {
                time_s,
                link: format!("{}-{}", topo.sites[l.a as usize].name, topo.sites[l.b as usize].name),
                bytes,
                utilisation: if capacity > 0.0 { bytes as f64 / capacity } else { 0.0 },
            });
        }
    }
    let namespaces = if series.by_namespace() {
        (0..buckets)
            .flat_map(|b| {
                world.layout.namespaces.iter().enumerate().map(move |(i, name)| NamespaceRow {
                    time_s: b as f64 * bucket_s,
                    namespace: name.clone(),
                    counts: series.namespace_bucket(b, i),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let requests = series
        .sampled
        .iter()
        .map(|r| RequestRow {
            time_s: r.issued.as_secs_f64(),
            site: topo.sites[r.site as usize].name.clone(),
            tier: r.tier.to_string(),
            object: r.object,
            bytes: r.bytes,
            source: r.source.to_string(),
            latency_ms: r.latency.as_nanos() as f64 / 1e6,
            lookup_hops: r.lookup_hops,
        })
        .collect();
    let outages = world
        .outages
        .iter()
        .map(|o| OutageWindow {
            start_s: o.at.as_secs_f64(),
            end_s: (o.at + o.duration).as_secs_f64(),
            what: o.label.clone(),
        })
        .collect();
    Ok(RunResults {
        summary: flat,
        bucket_s,
        timeseries,
        namespaces,
        links,
        requests,
        latency: latency_cdfs(series),
        outages,
        archive: archive_rows(world, bucket_s),
    })
}

/// Every bucket of every origin's tape library, up to the last bucket any of them counted in.
fn archive_rows(world: &World, bucket_s: f64) -> Vec<ArchiveRow> {
    let libraries: Vec<(usize, &crate::tape::TapeLibrary)> =
        world.tapes.iter().enumerate().filter_map(|(n, l)| Some((n, l.as_ref()?))).collect();
    let buckets = libraries.iter().map(|(_, l)| l.buckets.len()).max().unwrap_or(0);
    let mut rows = Vec::with_capacity(buckets * libraries.len());
    for b in 0..buckets {
        for &(n, lib) in &libraries {
            let s = lib.buckets.get(b).cloned().unwrap_or_default();
            rows.push(ArchiveRow {
                time_s: b as f64 * bucket_s,
                origin: world.layout.nodes[n].name.clone(),
                reads: s.reads,
                buffer_hits: s.buffer_hits,
                staging_answers: s.staging,
                polls: s.polls,
                recalls: s.recalls,
                mounts: s.mounts,
                drive_busy_s: s.busy.as_secs_f64(),
                queue_wait_s: s.queue_wait.as_secs_f64(),
            });
        }
    }
    rows
}

/// Latency CDFs per tier, one point per non-empty histogram bucket.
fn latency_cdfs(series: &Series) -> Vec<Cdf> {
    Tier::ALL
        .into_iter()
        .zip(&series.latency)
        .filter(|(_, h)| h.count() > 0)
        .map(|(tier, h): (Tier, &Histogram)| Cdf {
            label: tier.to_string(),
            points: h.cdf().map(|(ns, q)| (ns as f64 / 1e6, q)).collect(),
        })
        .collect()
}

/// Writes `summary.json` (deterministic), `run.json` (wall-clock figures) and, with the
/// `results` feature, the tables, figures and report into `dir`.
pub fn write(dir: &Path, summary: &Summary, results: &RunResults, csv: bool, wall_seconds: f64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut text = serde_json::to_string_pretty(summary)?;
    text.push('\n');
    let path = dir.join("summary.json");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    let run = serde_json::json!({
        "wall_seconds": wall_seconds,
        "events_per_second": summary.events as f64 / wall_seconds.max(1e-9),
    });
    let path = dir.join("run.json");
    std::fs::write(&path, format!("{run:#}\n")).with_context(|| format!("writing {}", path.display()))?;
    render(dir, summary, results, csv)
}

#[cfg(feature = "results")]
fn render(dir: &Path, summary: &Summary, results: &RunResults, csv: bool) -> anyhow::Result<()> {
    let title = format!("Reef simulation: {}", summary.scenario);
    reef_results::write_run(dir, &title, &describe(summary), results, reef_results::TableFormats { csv })?;
    Ok(())
}

#[cfg(not(feature = "results"))]
fn render(_: &Path, _: &Summary, _: &RunResults, _: bool) -> anyhow::Result<()> {
    Ok(())
}

/// The scenario in words, for the report.
#[cfg_attr(not(feature = "results"), allow(dead_code))]
fn describe(s: &Summary) -> String {
    let tiers: Vec<String> = s.tiers.iter().map(|(t, c)| format!("{} requests from {t}", c.requests)).collect();
    let mut words = format!(
        "Scenario `{}` with seed {}: {} sites and {} simulated nodes, {} requests over {:.1} hours of \
         simulated time ({}). Caches evict with `{}`, admit with `{}` and find each other with `{}` discovery.",
        s.scenario,
        s.seed,
        s.sites,
        s.nodes,
        s.requests,
        s.simulated_seconds / 3600.0,
        tiers.join(", "),
        s.policy["eviction"],
        s.policy["admission"],
        s.policy["discovery"],
    );
    for o in &s.outages {
        words.push_str(&format!(
            " Outage: {} down at {:.1} h for {:.1} h.",
            o.what,
            o.at_s / 3600.0,
            o.duration_s / 3600.0
        ));
    }
    words
}
