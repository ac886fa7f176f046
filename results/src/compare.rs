//! A comparison of several runs on the same workload: one combined summary table and figures
//! side by side (byte hit ratio and origin egress per variant; a miss-ratio curve when a size
//! was varied).

use crate::figures::{Bars, Curve, TimeLines, save};
use crate::model::Value;
use crate::tables::{TableFormats, summary_frame, write_frame};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// One run of a comparison: its label and its flattened summary, whose first columns are
/// `variant` and the varied keys (`vary:KEY`, and `vary:KEY:bytes` for sizes).
#[derive(Clone, Debug)]
pub struct Variant {
    pub label: String,
    pub summary: Vec<(String, Value)>,
    /// Tape recalls per hour over simulated time: (bucket start in seconds, rate); empty
    /// without tape libraries.
    pub recalls: Vec<(f64, f64)>,
}

fn number(v: &Variant, key: &str) -> Option<f64> {
    v.summary.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.as_f64())
}

/// Writes `summary.parquet` (and `.csv`) with one row per variant, and the comparison figures;
/// returns every file written.
pub fn write_comparison(dir: &Path, variants: &[Variant], formats: TableFormats) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let rows: Vec<&[(String, Value)]> = variants.iter().map(|v| v.summary.as_slice()).collect();
    let mut written = write_frame(dir, "summary", &mut summary_frame(&rows)?, formats)?;
    let bars = |key: &str, scale: f64| -> Vec<(String, f64)> {
        variants.iter().map(|v| (v.label.clone(), number(v, key).unwrap_or(0.0) * scale)).collect()
    };
    let hit = Bars {
        title: "Byte hit ratio by variant".into(),
        y_label: "byte hit ratio".into(),
        bars: bars("byte_hit_ratio", 1.0),
    };
    written.extend(save(&hit, dir, "compare_byte_hit_ratio")?);
    let egress = Bars {
        title: "Origin egress by variant".into(),
        y_label: "bytes from origins (TB)".into(),
        bars: bars("bytes_from_origin", 1e-12),
    };
    written.extend(save(&egress, dir, "compare_origin_egress")?);
    if let Some(curve) = miss_ratio_curve(variants) {
        written.extend(save(&curve, dir, "miss_ratio_curve")?);
    }
    if variants.iter().any(|v| !v.recalls.is_empty()) {
        let recalls = TimeLines {
            title: "Tape recalls at the origins".into(),
            y_label: "recalls per hour".into(),
            series: variants.iter().map(|v| (v.label.clone(), v.recalls.clone())).collect(),
            y_max: None,
            shaded: Vec::new(),
        };
        written.extend(save(&recalls, dir, "compare_tape_recalls")?);
    }
    Ok(written)
}

/// Byte and object miss ratio against the first varied size, when one was varied.
pub fn miss_ratio_curve(variants: &[Variant]) -> Option<Curve> {
    let first = variants.first()?;
    let key = first.summary.iter().map(|(k, _)| k).find(|k| k.starts_with("vary:") && k.ends_with(":bytes"))?.clone();
    let mut points: Vec<(f64, f64, f64)> = variants
        .iter()
        .filter_map(|v| {
            let size = number(v, &key)? / 1e12;
            Some((size, 1.0 - number(v, "byte_hit_ratio")?, 1.0 - number(v, "object_hit_ratio")?))
        })
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let name = key.trim_start_matches("vary:").trim_end_matches(":bytes");
    Some(Curve {
        title: format!("Miss ratio against {name}"),
        x_label: format!("{name} (TB)"),
        y_label: "miss ratio (served from an origin)".into(),
        series: vec![
            ("bytes".into(), points.iter().map(|p| (p.0, p.1)).collect()),
            ("objects".into(), points.iter().map(|p| (p.0, p.2)).collect()),
        ],
    })
}
