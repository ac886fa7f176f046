//! A report a person can read without the tool: `report.md`, and `report.html` with the
//! figures inline.

use crate::model::{RunResults, Value};
use anyhow::{Context, Result};
use reef_core::units::format_size;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Headline fields, in the order a reader wants them, with how to show them.
const HEADLINES: &[(&str, &str)] = &[
    ("requests", "requests"),
    ("completed", "completed"),
    ("failed", "failed"),
    ("denied", "refused by the access decision (private namespaces)"),
    ("object_hit_ratio", "object hit ratio"),
    ("byte_hit_ratio", "byte hit ratio"),
    ("site_hit_ratio", "site hit ratio (bytes already at the client's site)"),
    ("served_from_worker_node", "requests whose bytes came from a worker node of their site"),
    ("served_from_site_cache", "requests whose bytes came from their site cache"),
    ("served_from_parent_tier", "requests whose bytes came from a higher tier's cache"),
    ("served_from_other_site", "requests whose bytes came from another site's cache"),
    ("served_from_origin", "requests whose bytes came from an origin"),
    ("served_from_relayed", "requests relayed by two or more caches"),
    ("origin_fetches", "origin fetches"),
    ("bytes_requested", "bytes requested"),
    ("bytes_from_origin", "bytes from origins"),
    ("bytes_wan", "bytes over the WAN"),
    ("latency_ms_p50", "response time p50 (ms; a miss after its whole fill)"),
    ("latency_ms_p90", "response time p90 (ms)"),
    ("latency_ms_p99", "response time p99 (ms)"),
];

fn human(key: &str, v: &Value) -> String {
    match v {
        Value::Int(b) if key.starts_with("bytes") => {
            let bytes = u64::try_from(*b).unwrap_or(0);
            format!("{} ({b} B)", format_size(bytes))
        }
        Value::Float(f) if key.ends_with("ratio") => format!("{:.1} %", f * 100.0),
        other => other.to_string(),
    }
}

/// The headline table rows present in this run.
fn headlines(run: &RunResults) -> Vec<(&'static str, String)> {
    HEADLINES.iter().filter_map(|(k, label)| run.get(k).map(|v| (*label, human(k, v)))).collect()
}

/// Writes `report.md` and `report.html` in `dir`; `figures` are (title, PNG path) pairs whose
/// SVG twins are inlined in the HTML.
pub fn write_report(
    dir: &Path,
    title: &str,
    words: &str,
    run: &RunResults,
    figures: &[(String, PathBuf)],
) -> Result<Vec<PathBuf>> {
    let rows = headlines(run);
    let mut md = format!("# {title}\n\n{words}\n\n## Headline numbers\n\n| | |\n|---|---|\n");
    for (label, value) in &rows {
        let _ = writeln!(md, "| {label} | {value} |");
    }
    md.push_str("\n## Figures\n\n");
    for (fig_title, png) in figures {
        let name = png.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let _ = writeln!(md, "### {fig_title}\n\n![{fig_title}]({name})\n");
    }
    md.push_str("\n## All summary fields\n\n| field | value |\n|---|---|\n");
    for (k, v) in &run.summary {
        let _ = writeln!(md, "| `{k}` | {v} |");
    }
    let md_path = dir.join("report.md");
    std::fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;

    let mut html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>body{{font-family:sans-serif;max-width:1050px;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}}figure{{margin:1.5em 0}}</style>\n</head><body>\n<h1>{t}</h1>\n<p>{w}</p>\n<h2>Headline numbers</h2>\n<table>\n",
        t = escape(title),
        w = escape(words)
    );
    for (label, value) in &rows {
        let _ = writeln!(html, "<tr><th>{}</th><td>{}</td></tr>", escape(label), escape(value));
    }
    html.push_str("</table>\n<h2>Figures</h2>\n");
    for (fig_title, png) in figures {
        let svg = std::fs::read_to_string(png.with_extension("svg"))
            .with_context(|| format!("reading {}", png.with_extension("svg").display()))?;
        let _ = writeln!(html, "<figure><figcaption>{}</figcaption>\n{svg}\n</figure>", escape(fig_title));
    }
    html.push_str("<h2>All summary fields</h2>\n<table>\n");
    for (k, v) in &run.summary {
        let _ = writeln!(html, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(&v.to_string()));
    }
    html.push_str("</table>\n</body></html>\n");
    let html_path = dir.join("report.html");
    std::fs::write(&html_path, html).with_context(|| format!("writing {}", html_path.display()))?;
    Ok(vec![md_path, html_path])
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
