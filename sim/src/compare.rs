//! `reef-sim compare` and `reef-sim merge`: every combination of the varied keys runs on the same
//! workload (same scenario, same seed), in parallel over the cores; the results are printed
//! side by side and written as `compare.json` (deterministic: no wall-clock figures) plus, with
//! the `results` feature, one combined summary table and comparison figures.
//!
//! Combinations are numbered in a fixed order (the first `--vary` outermost), so `--shard i/n`
//! (combinations with `index % n == i`) splits a sweep over the jobs of a batch array, and
//! `merge` puts the shards' `compare.json` files back together, equal to the unsharded sweep.

use crate::output;
use crate::run::{Outcome, simulate};
use crate::scenario;
use anyhow::{Context, bail, ensure};
use reef_core::units::parse_size;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Example:\n  reef-sim compare scenarios/quickstart.toml --vary policy.eviction=lru,s3fifo,gdsf \\\n      \
     --vary policy.discovery=none,parent --out out/compare"
)]
pub struct CompareArgs {
    /// The scenario file (TOML; see scenarios/README.md).
    pub scenario: PathBuf,
    /// A key and the values to try, e.g. `policy.eviction=lru,s3fifo`; repeat for more keys
    /// (every combination runs).
    #[arg(long, value_name = "KEY=V1,V2,...", required = true)]
    pub vary: Vec<String>,
    /// Seed of every run (default: the scenario's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override a scenario key in every run, as `run --set`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Directory for the results (default: out/SCENARIO-NAME-compare); each run gets a folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only part I of N of the combinations (0-based: `0/4` .. `3/4`), for batch arrays.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Runs at once (default: the number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the comparison as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct MergeArgs {
    /// Output folders of `compare --shard` runs.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged comparison goes.
    #[arg(long)]
    pub out: PathBuf,
    /// Print the comparison as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One combination's result.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub index: usize,
    pub variant: String,
    /// (key, value) of each varied key.
    pub vary: Vec<(String, String)>,
    pub summary: serde_json::Value,
}

/// What `compare.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    pub scenario: String,
    pub seed: u64,
    /// The varied keys and their values, in `--vary` order.
    pub vary: Vec<(String, Vec<String>)>,
    /// The `--set` overrides every run had.
    pub overrides: Vec<String>,
    /// Whether tables are written as CSV too (the scenario's `run.csv`).
    pub csv: bool,
    /// Combinations in the whole sweep (a shard holds fewer rows).
    pub combinations: usize,
    pub rows: Vec<Row>,
}

/// Parses `key=v1,v2,...`.
fn parse_vary(s: &str) -> anyhow::Result<(String, Vec<String>)> {
    let Some((key, values)) = s.split_once('=') else { bail!("--vary {s:?}: expected KEY=V1,V2,...") };
    let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
    ensure!(!key.trim().is_empty() && !values.is_empty(), "--vary {s:?}: expected KEY=V1,V2,...");
    Ok((key.trim().to_string(), values))
}

/// Parses `i/n` (0-based).
fn parse_shard(s: &str) -> anyhow::Result<(usize, usize)> {
    let parsed = s.split_once('/').and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
    match parsed {
        Some((i, n)) if n > 0 && i < n => Ok((i, n)),
        _ => bail!("--shard {s:?}: expected I/N with 0 <= I < N, e.g. 0/4"),
    }
}

/// Every combination of the varied values, first key outermost.
fn combinations(vary: &[(String, Vec<String>)]) -> Vec<Vec<(String, String)>> {
    vary.iter().fold(vec![Vec::new()], |acc, (key, values)| {
        acc.iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut c = prefix.clone();
                    c.push((key.clone(), v.clone()));
                    c
                })
            })
            .collect()
    })
}

fn label(combo: &[(String, String)]) -> String {
    combo.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join("/")
}

/// A folder name for a run: its index and label, with anything odd replaced.
fn folder(index: usize, label: &str) -> String {
    let clean: String =
        label.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    format!("{index:03}-{clean}")
}

/// The `compare` command.
pub fn execute(args: &CompareArgs) -> anyhow::Result<()> {
    let vary = args.vary.iter().map(|v| parse_vary(v)).collect::<anyhow::Result<Vec<_>>>()?;
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    let base = scenario::load(&args.scenario, &args.overrides)?;
    let name = base.name.clone().unwrap_or_default();
    let seed = args.seed.unwrap_or(base.seed);
    let all = combinations(&vary);
    let mine: Vec<(usize, Vec<(String, String)>)> =
        all.iter().cloned().enumerate().filter(|(i, _)| shard.is_none_or(|(s, n)| i % n == s)).collect();
    let out = args.out.clone().unwrap_or_else(|| Path::new("out").join(format!("{name}-compare")));
    // Load every variant first: a bad value fails before anything runs.
    let mut jobs = Vec::with_capacity(mine.len());
    for (index, combo) in mine {
        let mut overrides = args.overrides.clone();
        overrides.extend(combo.iter().map(|(k, v)| format!("{k}={v}")));
        let scenario =
            scenario::load(&args.scenario, &overrides).with_context(|| format!("variant {}", label(&combo)))?;
        jobs.push((index, combo, scenario));
    }
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<anyhow::Result<Row>>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            s.spawn(|| {
                while let Some((index, combo, scenario)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let variant = label(combo);
                    let started = std::time::Instant::now();
                    let result = simulate(scenario, seed, &mut |_| {}).and_then(|Outcome { summary, results }| {
                        let dir = out.join(folder(*index, &variant));
                        let wall = started.elapsed().as_secs_f64();
                        output::write(&dir, &summary, &results, scenario.run.csv, wall)?;
                        if !args.quiet {
                            eprintln!("  [{index}] {variant}: {} requests in {wall:.1} s", summary.requests);
                        }
                        Ok(Row {
                            index: *index,
                            variant,
                            vary: combo.clone(),
                            summary: serde_json::to_value(&summary)?,
                        })
                    });
                    done.lock().expect("no worker panics").push(result);
                }
            });
        }
    });
    let mut rows = done.into_inner().expect("no worker panics").into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    rows.sort_by_key(|r| r.index);
    let comparison = Comparison {
        scenario: name,
        seed,
        vary,
        overrides: args.overrides.clone(),
        csv: base.run.csv,
        combinations: all.len(),
        rows,
    };
    finish(&out, &comparison, args.json)
}

/// The `merge` command.
pub fn merge(args: &MergeArgs) -> anyhow::Result<()> {
    let mut merged: Option<Comparison> = None;
    for dir in &args.dirs {
        let path = dir.join("compare.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let part: Comparison =
            serde_json::from_str(&text).with_context(|| format!("{} is not a compare.json", path.display()))?;
        match &mut merged {
            None => merged = Some(part),
            Some(m) => {
                let sweep = |c: &Comparison| (c.scenario.clone(), c.seed, c.vary.clone(), c.overrides.clone(), c.csv);
                ensure!(
                    sweep(m) == sweep(&part),
                    "{} belongs to another sweep than the first folder (scenario, seed, --vary values, --set \
                     overrides and run.csv must all match): {:?} vs {:?}",
                    path.display(),
                    sweep(&part),
                    sweep(m)
                );
                m.rows.extend(part.rows);
            }
        }
    }
    let mut merged = merged.context("no folders to merge")?;
    merged.rows.sort_by_key(|r| r.index);
    for pair in merged.rows.windows(2) {
        ensure!(pair[0].index != pair[1].index, "combination {} ({}) is in two shards", pair[0].index, pair[0].variant);
    }
    let have: Vec<usize> = merged.rows.iter().map(|r| r.index).collect();
    let missing: Vec<usize> = (0..merged.combinations).filter(|i| have.binary_search(i).is_err()).collect();
    ensure!(missing.is_empty(), "combinations {missing:?} of {} are in none of the folders", merged.combinations);
    finish(&args.out, &merged, args.json)
}

/// Writes `compare.json` (and the combined table and figures), then prints the comparison.
fn finish(out: &Path, c: &Comparison, json: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join("compare.json");
    std::fs::write(&path, serde_json::to_string_pretty(c)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    render(out, c)?;
    if json {
        println!("{}", serde_json::to_string(c)?);
    } else {
        print_table(c);
        println!("results in {}", out.display());
    }
    Ok(())
}

/// A row's summary flattened for the combined table, led by `variant` and the varied keys.
pub fn flat_row(r: &Row) -> Vec<(String, reef_results::Value)> {
    use reef_results::Value;
    let mut flat = vec![("variant".to_string(), Value::Text(r.variant.clone()))];
    for (k, v) in &r.vary {
        flat.push((format!("vary:{k}"), Value::Text(v.clone())));
        // A size says its unit (`10TB`); a bare number (`0.8`) is some other knob.
        if v.chars().any(|c| c.is_ascii_alphabetic())
            && let Ok(bytes) = parse_size(v)
        {
            flat.push((format!("vary:{k}:bytes"), Value::Int(bytes as i64)));
        }
    }
    reef_results::model::flatten("", &r.summary, &mut flat);
    flat
}

#[cfg(feature = "results")]
fn render(out: &Path, c: &Comparison) -> anyhow::Result<()> {
    let variants: Vec<_> = c
        .rows
        .iter()
        .map(|r| reef_results::compare::Variant {
            label: r.variant.clone(),
            summary: flat_row(r),
            recalls: recalls_per_hour(&r.summary),
        })
        .collect();
    reef_results::compare::write_comparison(out, &variants, reef_results::TableFormats { csv: c.csv })?;
    Ok(())
}

/// The run's tape recalls per hour by time bucket (`archive.recalls_by_bucket`), if any.
#[cfg(feature = "results")]
fn recalls_per_hour(summary: &serde_json::Value) -> Vec<(f64, f64)> {
    let archive = &summary["archive"];
    let bucket = archive["bucket_s"].as_f64().unwrap_or(0.0);
    let Some(counts) = archive["recalls_by_bucket"].as_array().filter(|_| bucket > 0.0) else { return Vec::new() };
    let per_hour = 3600.0 / bucket;
    counts.iter().enumerate().map(|(b, n)| (b as f64 * bucket, n.as_f64().unwrap_or(0.0) * per_hour)).collect()
}

#[cfg(not(feature = "results"))]
fn render(_: &Path, _: &Comparison) -> anyhow::Result<()> {
    Ok(())
}

const COLUMNS: &[(&str, &str)] = &[
    ("requests", "requests"),
    ("failed", "failed"),
    ("object_hit_ratio", "obj hit"),
    ("byte_hit_ratio", "byte hit"),
    ("site_hit_ratio", "site hit"),
    ("origin_fetches", "origin fetch"),
    ("bytes_from_origin", "from origin"),
    ("bytes_wan", "WAN"),
];

fn print_table(c: &Comparison) {
    let width = c.rows.iter().map(|r| r.variant.len()).max().unwrap_or(7).max(7);
    let mut head = format!("{:<width$}", "variant");
    for (_, title) in COLUMNS {
        head.push_str(&format!(" {title:>12}"));
    }
    head.push_str(&format!(" {:>10}", "p50 ms"));
    // With several namespaces, each one's site hit ratio (what quotas protect).
    let namespaces: Vec<String> = c.rows.first().map_or(Vec::new(), |r| {
        r.summary["namespaces"].as_object().map_or(Vec::new(), |m| m.keys().cloned().collect())
    });
    let namespaces = if namespaces.len() > 1 { namespaces } else { Vec::new() };
    for ns in &namespaces {
        head.push_str(&format!(" {:>12}", format!("{ns} site")));
    }
    // Each namespace that an egress limit held back in some variant: responses delayed and
    // requests refused (503).
    let count = |r: &Row, ns: &str, key: &str| r.summary["namespaces"][ns][key].as_u64().unwrap_or(0);
    let throttled: Vec<&String> = namespaces
        .iter()
        .filter(|ns| c.rows.iter().any(|r| count(r, ns, "egress_delayed") + count(r, ns, "egress_refused") > 0))
        .collect();
    for ns in &throttled {
        head.push_str(&format!(" {:>12} {:>12}", format!("{ns} delayed"), format!("{ns} 503")));
    }
    println!("{head}");
    for r in &c.rows {
        let mut line = format!("{:<width$}", r.variant);
        for (key, _) in COLUMNS {
            let v = &r.summary[*key];
            let cell = match v.as_f64() {
                Some(x) if key.ends_with("ratio") => format!("{:.1}%", x * 100.0),
                Some(_) if key.starts_with("bytes") => reef_core::units::format_size(v.as_u64().unwrap_or(0)),
                _ => v.to_string(),
            };
            line.push_str(&format!(" {cell:>12}"));
        }
        line.push_str(&format!(" {:>10.1}", r.summary["latency_ms"]["p50"].as_f64().unwrap_or(0.0)));
        for ns in &namespaces {
            let ratio = r.summary["namespaces"][ns]["site_hit_ratio"].as_f64().unwrap_or(0.0);
            line.push_str(&format!(" {:>12}", format!("{:.1}%", ratio * 100.0)));
        }
        for ns in &throttled {
            line.push_str(&format!(" {:>12} {:>12}", count(r, ns, "egress_delayed"), count(r, ns, "egress_refused")));
        }
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_take_the_first_key_outermost() {
        let vary = vec![
            ("a".to_string(), vec!["1".to_string(), "2".to_string()]),
            ("b".to_string(), vec!["x".to_string(), "y".to_string(), "z".to_string()]),
        ];
        let labels: Vec<String> = combinations(&vary).iter().map(|c| label(c)).collect();
        assert_eq!(labels, ["1/x", "1/y", "1/z", "2/x", "2/y", "2/z"]);
    }

    #[test]
    fn bad_vary_and_shard_values_say_what_was_expected() {
        assert!(parse_vary("policy.eviction").unwrap_err().to_string().contains("KEY=V1,V2"));
        assert!(parse_vary("policy.eviction=").is_err());
        assert_eq!(parse_shard("1/4").unwrap(), (1, 4));
        for bad in ["4/4", "1", "a/b", "0/0"] {
            assert!(parse_shard(bad).unwrap_err().to_string().contains("I/N"), "{bad}");
        }
        assert_eq!(folder(3, "10TB/s3fifo"), "003-10TB_s3fifo");
    }
}
