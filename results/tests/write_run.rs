//! One synthetic run through the whole results layer: tables read back with the same totals,
//! figures are valid non-empty PNG and SVG files, and the report names the headline numbers.

use reef_results::model::flatten;
use reef_results::{
    ArchiveRow, Cdf, LinkRow, OutageWindow, RunResults, SiteCounts, TableFormats, TimeseriesRow, tables, write_run,
};
use std::path::Path;

fn synthetic() -> RunResults {
    let mut summary = Vec::new();
    let json = serde_json::json!({
        "scenario": "synthetic", "seed": 7, "requests": 600, "completed": 590, "failed": 10,
        "object_hit_ratio": 0.75, "byte_hit_ratio": 0.5, "bytes_requested": 6_000_000,
        "latency_ms": {"p50": 3.5, "p90": 40.0, "p99": 120.0}
    });
    flatten("", &json, &mut summary);
    let mut timeseries = Vec::new();
    let mut links = Vec::new();
    for b in 0..30u64 {
        for (site, tier) in [("T1-a", "T1"), ("T2-b", "T2")] {
            timeseries.push(TimeseriesRow {
                time_s: b as f64 * 60.0,
                site: site.into(),
                tier: tier.into(),
                counts: SiteCounts {
                    requests: 10,
                    completed: 10 - (b % 2),
                    failed: b % 2,
                    hits_local: b.min(6),
                    hits_peer: 1,
                    hits_origin: 9 - b.min(6) - (b % 2),
                    bytes_local: b.min(6) * 1000,
                    bytes_peer: 1000,
                    bytes_origin: (9 - b.min(6) - (b % 2)) * 1000,
                    cache_fill_bytes: 500,
                    origin_egress_bytes: (9 - b.min(6) - (b % 2)) * 1000,
                    from_site_cache: b.min(6),
                    from_other_site: 1,
                    ..SiteCounts::default()
                },
            });
        }
        for link in ["T0-T1a", "T1a-T2b", "T0-T2b"] {
            links.push(LinkRow {
                time_s: b as f64 * 60.0,
                link: link.into(),
                bytes: b * 10,
                utilisation: (b as f64 / 30.0),
            });
        }
    }
    RunResults {
        summary,
        bucket_s: 60.0,
        timeseries,
        namespaces: Vec::new(),
        links,
        requests: Vec::new(),
        latency: vec![
            Cdf { label: "T1".into(), points: vec![(0.5, 0.2), (3.0, 0.6), (50.0, 1.0)] },
            Cdf { label: "T2".into(), points: vec![(1.0, 0.1), (10.0, 0.5), (120.0, 1.0)] },
        ],
        outages: vec![OutageWindow { start_s: 600.0, end_s: 1200.0, what: "T1-a".into() }],
        archive: (0..30)
            .map(|b| ArchiveRow {
                time_s: b as f64 * 60.0,
                origin: "T0/origin/data".into(),
                reads: 4,
                recalls: b % 3,
                drive_busy_s: 30.0 * (b % 3) as f64,
                ..Default::default()
            })
            .collect(),
    }
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() > 2000, "{} is only {} bytes", path.display(), bytes.len());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
}

fn assert_svg(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"), "{} is not an SVG", path.display());
    assert!(text.contains("<text") && text.contains("<rect"), "{} has no text or shapes", path.display());
}

#[test]
fn a_run_becomes_tables_figures_and_a_report() {
    let dir = std::env::temp_dir().join(format!("reef-results-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = synthetic();
    let written =
        write_run(&dir, "Synthetic run", "Two sites, thirty minutes.", &run, TableFormats { csv: true }).unwrap();
    assert!(written.len() >= 15, "{written:?}");

    let ts = tables::read_parquet(&dir.join("timeseries.parquet")).unwrap();
    assert_eq!(ts.height(), 60);
    let column = ts.column("failed").unwrap().as_materialized_series().u64().unwrap().clone();
    let failed: u64 = (0..column.len()).filter_map(|i| column.get(i)).sum();
    assert_eq!(failed, run.timeseries.iter().map(|r| r.counts.failed).sum::<u64>());
    let summary = tables::read_parquet(&dir.join("summary.parquet")).unwrap();
    assert_eq!(summary.height(), 1);
    assert!(summary.column("latency_ms_p99").is_ok());
    let csv = std::fs::read_to_string(dir.join("links.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 90);

    let archive = tables::read_parquet(&dir.join("archive.parquet")).unwrap();
    let recalls = archive.column("recalls").unwrap().as_materialized_series().u64().unwrap().clone();
    assert_eq!((0..recalls.len()).filter_map(|i| recalls.get(i)).sum::<u64>(), 30, "0 + 1 + 2, ten times");

    for name in ["hit_ratio", "origin_egress", "link_utilisation", "latency_cdf", "failures", "tape_recalls"] {
        assert_png(&dir.join(format!("{name}.png")));
        assert_svg(&dir.join(format!("{name}.svg")));
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("| object hit ratio | 75.0 % |"), "{md}");
    assert!(md.contains("![Failed requests](failures.png)"));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 6);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn merging_checks_columns() {
    let run = synthetic();
    let a = tables::summary_frame(&[&run.summary]).unwrap();
    let b = tables::summary_frame(&[&run.summary]).unwrap();
    assert_eq!(tables::concat(vec![a.clone(), b]).unwrap().height(), 2);
    let other = tables::timeseries_frame(&run.timeseries).unwrap();
    let e = tables::concat(vec![a, other]).unwrap_err().to_string();
    assert!(e.contains("different columns"), "{e}");
}
