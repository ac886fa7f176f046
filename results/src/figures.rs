//! Figures, drawn with plotters as PNG and SVG. The font ships inside the binary (DejaVu Sans),
//! so text renders on a fresh machine without system font packages.

use crate::model::{Cdf, NamespaceCounts, OutageWindow, RunResults};
use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (1000, 600);

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in; failing to parse it is a build defect, not bad input.
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            panic!("the embedded DejaVu Sans font does not parse");
        }
    });
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

/// Something that can draw itself on any plotters backend.
pub trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Renders `fig` to `<dir>/<name>.png` and `<dir>/<name>.svg`.
pub fn save(fig: &impl Figure, dir: &Path, name: &str) -> Result<Vec<PathBuf>> {
    register_font();
    let png = dir.join(format!("{name}.png"));
    let svg = dir.join(format!("{name}.svg"));
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        fig.draw(&root)?;
        root.present().map_err(err)?;
    }
    {
        let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        fig.draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(vec![png, svg])
}

fn palette(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(120, 120, 120),
        RGBColor(240, 228, 66),
    ];
    COLORS[i % COLORS.len()]
}

/// A time axis in a unit that suits the run's length.
fn time_unit(max_s: f64) -> (f64, &'static str) {
    if max_s > 3.0 * 3600.0 {
        (3600.0, "simulated time (h)")
    } else if max_s > 180.0 {
        (60.0, "simulated time (min)")
    } else {
        (1.0, "simulated time (s)")
    }
}

/// Lines over time, with optional shaded windows.
#[derive(Debug, Clone)]
pub struct TimeLines {
    pub title: String,
    pub y_label: String,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    pub y_max: Option<f64>,
    pub shaded: Vec<OutageWindow>,
}

impl Figure for TimeLines {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let points = self.series.iter().flat_map(|(_, p)| p.iter());
        let x_max = points.clone().map(|p| p.0).fold(0.0, f64::max).max(1e-9);
        let y_top = self.y_max.unwrap_or_else(|| points.map(|p| p.1).fold(0.0, f64::max) * 1.1).max(1e-9);
        let (unit, x_label) = time_unit(x_max);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 26))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max / unit, 0.0..y_top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(&self.y_label)
            .label_style((FAMILY, 16))
            .axis_desc_style((FAMILY, 18))
            .draw()
            .map_err(err)?;
        for w in &self.shaded {
            let area = [(w.start_s / unit, 0.0), (w.end_s / unit, y_top)];
            chart
                .draw_series([Rectangle::new(area, RGBColor(200, 60, 60).mix(0.15).filled())])
                .map_err(err)?
                .label(format!("outage: {}", w.what))
                .legend(|(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 16, y + 6)], RGBColor(200, 60, 60).mix(0.3).filled())
                });
        }
        for (i, (label, points)) in self.series.iter().enumerate() {
            let color = palette(i);
            chart
                .draw_series(LineSeries::new(points.iter().map(|&(x, y)| (x / unit, y)), color.stroke_width(2)))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .label_font((FAMILY, 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        Ok(())
    }
}

/// Link utilisation as a heat map: one row per link, one column per time bucket.
#[derive(Debug, Clone)]
pub struct Heatmap {
    pub title: String,
    pub rows: Vec<String>,
    pub bucket_s: f64,
    /// (row, bucket index, value in 0..=1)
    pub cells: Vec<(usize, usize, f64)>,
}

impl Figure for Heatmap {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let buckets = self.cells.iter().map(|c| c.1 + 1).max().unwrap_or(1);
        let (unit, x_label) = time_unit(buckets as f64 * self.bucket_s);
        let x_max = buckets as f64 * self.bucket_s / unit;
        let rows = self.rows.len().max(1);
        let (plot, bar) = root.split_horizontally(SIZE.0 - 110);
        let mut chart = ChartBuilder::on(&plot)
            .caption(&self.title, (FAMILY, 26))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(if rows <= 30 { 140 } else { 60 })
            // A segmented range of 0..n has n + 1 segments.
            .build_cartesian_2d(0.0..x_max, (0..rows - 1).into_segmented())
            .map_err(err)?;
        let names = self.rows.clone();
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(x_label)
            .y_desc(if rows <= 30 { "" } else { "WAN links" })
            .y_labels(rows.min(30))
            .y_label_formatter(&|y| match y {
                SegmentValue::CenterOf(r) if rows <= 30 => names.get(*r).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 18))
            .draw()
            .map_err(err)?;
        let w = self.bucket_s / unit;
        chart
            .draw_series(self.cells.iter().map(|&(r, b, v)| {
                let x = b as f64 * w;
                let (top, bottom) = (SegmentValue::Exact(r), SegmentValue::Exact(r + 1));
                Rectangle::new([(x, top), (x + w, bottom)], ViridisRGB::get_color(v.clamp(0.0, 1.0)).filled())
            }))
            .map_err(err)?;
        // Colour scale.
        let mut scale = ChartBuilder::on(&bar)
            .margin_top(60)
            .margin_bottom(65)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)
            .map_err(err)?;
        scale
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_desc("utilisation")
            .label_style((FAMILY, 13))
            .draw()
            .map_err(err)?;
        scale
            .draw_series((0..100).map(|i| {
                let v = i as f64 / 100.0;
                Rectangle::new([(0.0, v), (1.0, v + 0.01)], ViridisRGB::get_color(v).filled())
            }))
            .map_err(err)?;
        Ok(())
    }
}

/// Latency CDFs on a logarithmic axis.
#[derive(Debug, Clone)]
pub struct CdfPlot {
    pub title: String,
    pub cdfs: Vec<Cdf>,
}

impl Figure for CdfPlot {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let xs = self.cdfs.iter().flat_map(|c| c.points.iter().map(|p| p.0)).filter(|x| *x > 0.0);
        let lo = xs.clone().fold(f64::INFINITY, f64::min);
        let hi = xs.fold(0.0, f64::max);
        let (lo, hi) = if lo.is_finite() && hi > lo { (lo * 0.8, hi * 1.25) } else { (0.1, 10.0) };
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 26))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("time to serve (ms, log scale)")
            .y_desc("fraction of requests")
            .label_style((FAMILY, 16))
            .axis_desc_style((FAMILY, 18))
            .draw()
            .map_err(err)?;
        for (i, cdf) in self.cdfs.iter().enumerate() {
            let color = palette(i);
            let points = cdf.points.iter().filter(|p| p.0 > 0.0).copied();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(err)?
                .label(&cdf.label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FAMILY, 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        Ok(())
    }
}

/// One bar per variant.
#[derive(Debug, Clone)]
pub struct Bars {
    pub title: String,
    pub y_label: String,
    pub bars: Vec<(String, f64)>,
}

impl Figure for Bars {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let n = self.bars.len().max(1);
        let top = self.bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1e-9) * 1.15;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 26))
            .margin(15)
            .x_label_area_size(60)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..n as f64, 0.0..top)
            .map_err(err)?;
        let names: Vec<String> = self.bars.iter().map(|b| b.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| {
                let i = (*x - 0.5).round();
                if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(&self.y_label)
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 18))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(self.bars.iter().enumerate().map(|(i, (_, v))| {
                Rectangle::new([(i as f64 + 0.15, 0.0), (i as f64 + 0.85, *v)], palette(i).filled())
            }))
            .map_err(err)?;
        Ok(())
    }
}

/// Miss ratio against cache size, one line per other setting.
#[derive(Debug, Clone)]
pub struct Curve {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

impl Figure for Curve {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let pts = self.series.iter().flat_map(|s| s.1.iter());
        let x_max = pts.clone().map(|p| p.0).fold(0.0, f64::max).max(1e-9) * 1.05;
        let y_max = pts.map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 26))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style((FAMILY, 16))
            .axis_desc_style((FAMILY, 18))
            .draw()
            .map_err(err)?;
        for (i, (label, points)) in self.series.iter().enumerate() {
            let color = palette(i);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(3)));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled()))).map_err(err)?;
        }
        chart
            .configure_series_labels()
            .label_font((FAMILY, 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        Ok(())
    }
}

/// Hit ratio per tier over time: (local + peer) / completed.
pub fn hit_ratio_by_tier(run: &RunResults) -> TimeLines {
    let mut by_tier: BTreeMap<&str, BTreeMap<u64, (u64, u64)>> = BTreeMap::new();
    for r in &run.timeseries {
        let e = by_tier.entry(&r.tier).or_default().entry(r.time_s.to_bits()).or_default();
        e.0 += r.counts.hits_local + r.counts.hits_peer;
        e.1 += r.counts.completed;
    }
    let series = by_tier
        .into_iter()
        .map(|(tier, buckets)| {
            let mut pts: Vec<(f64, f64)> = buckets
                .into_iter()
                .filter(|(_, (_, n))| *n > 0)
                .map(|(t, (h, n))| (f64::from_bits(t), h as f64 / n as f64))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            (tier.to_string(), pts)
        })
        .collect();
    TimeLines {
        title: "Hit ratio by tier (local and peer hits)".into(),
        y_label: "object hit ratio".into(),
        series,
        y_max: Some(1.0),
        shaded: run.outages.clone(),
    }
}

fn per_bucket(run: &RunResults, value: impl Fn(&crate::model::TimeseriesRow) -> f64) -> Vec<(f64, f64)> {
    let mut sums: BTreeMap<u64, f64> = BTreeMap::new();
    for r in &run.timeseries {
        *sums.entry(r.time_s.to_bits()).or_default() += value(r);
    }
    let mut pts: Vec<(f64, f64)> = sums.into_iter().map(|(t, v)| (f64::from_bits(t), v)).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

/// Tape recalls and mounts per hour over time, all origins together (drive time is in the
/// `archive` table).
pub fn tape_activity(run: &RunResults) -> TimeLines {
    let bucket = run.bucket_s.max(1e-9);
    // By bucket number: (recalls, mounts) per hour.
    let mut by_bucket: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for r in &run.archive {
        let e = by_bucket.entry((r.time_s / bucket).round() as u64).or_default();
        e.0 += r.recalls as f64 * 3600.0 / bucket;
        e.1 += r.mounts as f64 * 3600.0 / bucket;
    }
    let points = |f: fn(&(f64, f64)) -> f64| by_bucket.iter().map(|(b, v)| (*b as f64 * bucket, f(v))).collect();
    TimeLines {
        title: "Tape recalls and mounts".into(),
        y_label: "per hour".into(),
        series: vec![("recalls".into(), points(|v| v.0)), ("mounts".into(), points(|v| v.1))],
        y_max: None,
        shaded: run.outages.clone(),
    }
}

/// Origin egress in Gbit/s over time.
pub fn origin_egress(run: &RunResults) -> TimeLines {
    let scale = 8.0 / run.bucket_s.max(1e-9) / 1e9;
    TimeLines {
        title: "Origin egress".into(),
        y_label: "Gbit/s".into(),
        series: vec![("all origins".into(), per_bucket(run, |r| r.counts.origin_egress_bytes as f64 * scale))],
        y_max: None,
        shaded: run.outages.clone(),
    }
}

/// Each namespace's site hit ratio over time (what storage quotas protect).
pub fn namespace_hit_ratio(run: &RunResults) -> TimeLines {
    TimeLines {
        title: "Site hit ratio by namespace".into(),
        y_label: "share of served requests from the client's site".into(),
        series: per_namespace(run, |c| (c.completed > 0).then(|| c.site_hits as f64 / c.completed as f64)),
        y_max: Some(1.0),
        shaded: run.outages.clone(),
    }
}

/// Each namespace's requests refused (503) by its egress limit, per second, over time.
pub fn namespace_refused(run: &RunResults) -> TimeLines {
    let per_s = 1.0 / run.bucket_s.max(1e-9);
    TimeLines {
        title: "Requests refused by egress limits".into(),
        y_label: "refused requests per second".into(),
        series: per_namespace(run, |c| Some(c.egress_refused as f64 * per_s)),
        y_max: None,
        shaded: run.outages.clone(),
    }
}

/// One line per namespace of `value` per bucket (buckets where it is `None` are left out).
fn per_namespace(run: &RunResults, value: impl Fn(&NamespaceCounts) -> Option<f64>) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut lines: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for r in &run.namespaces {
        let line = lines.entry(&r.namespace).or_default();
        if let Some(v) = value(&r.counts) {
            line.push((r.time_s, v));
        }
    }
    lines
        .into_iter()
        .map(|(ns, mut pts)| {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            (ns.to_string(), pts)
        })
        .collect()
}

/// Failed requests per second over time, outage windows shaded.
pub fn failures(run: &RunResults) -> TimeLines {
    let per_s = 1.0 / run.bucket_s.max(1e-9);
    TimeLines {
        title: "Failed requests".into(),
        y_label: "failed requests per second".into(),
        series: vec![("failed".into(), per_bucket(run, |r| r.counts.failed as f64 * per_s))],
        y_max: None,
        shaded: run.outages.clone(),
    }
}

/// WAN link utilisation heat map.
pub fn link_heatmap(run: &RunResults) -> Heatmap {
    let mut names: Vec<String> = run.links.iter().map(|l| l.link.clone()).collect();
    names.sort();
    names.dedup();
    let bucket = |t: f64| (t / run.bucket_s.max(1e-9)).round() as usize;
    let cells = run
        .links
        .iter()
        .map(|l| (names.binary_search(&l.link).unwrap_or(0), bucket(l.time_s), l.utilisation))
        .collect();
    Heatmap { title: "WAN link utilisation".into(), rows: names, bucket_s: run.bucket_s, cells }
}

/// Draws every figure of one run; returns (title, png path) pairs for the report.
pub fn draw_run(dir: &Path, run: &RunResults) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut add = |title: &str, files: Vec<PathBuf>| out.push((title.to_string(), files[0].clone()));
    add("Hit ratio by tier", save(&hit_ratio_by_tier(run), dir, "hit_ratio")?);
    add("Origin egress", save(&origin_egress(run), dir, "origin_egress")?);
    if !run.links.is_empty() {
        add("WAN link utilisation", save(&link_heatmap(run), dir, "link_utilisation")?);
    }
    if !run.latency.is_empty() {
        let cdf = CdfPlot { title: "Latency by tier".into(), cdfs: run.latency.clone() };
        add("Latency by tier", save(&cdf, dir, "latency_cdf")?);
    }
    if !run.outages.is_empty() {
        add("Failed requests", save(&failures(run), dir, "failures")?);
    }
    if !run.archive.is_empty() {
        add("Tape recalls and mounts", save(&tape_activity(run), dir, "tape_recalls")?);
    }
    if !run.namespaces.is_empty() {
        add("Site hit ratio by namespace", save(&namespace_hit_ratio(run), dir, "namespace_hit_ratio")?);
        if run.namespaces.iter().any(|r| r.counts.egress_refused > 0) {
            add("Requests refused by egress limits", save(&namespace_refused(run), dir, "namespace_refused")?);
        }
    }
    Ok(out)
}
