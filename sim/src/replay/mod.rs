//! `reef-sim replay`: one cache, one trace, many (policy, size) pairs.
//!
//! The trace is loaded once into memory; then every pair replays it on its own thread (as many
//! at once as there are cores, or `--threads`), through the same `reef_core::cache::Cache` that
//! Reef's nodes run. With `--shards RATE`, an approximate LRU curve over all the sizes comes
//! from one more pass (see `shards.rs`), alongside the exact pairs.

mod report;
mod shards;
mod simulate;

pub use shards::lru_curve;
pub use simulate::{PairResult, simulate};

use crate::trace::{self, CsvColumns, Format};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use reef_core::cache::PolicyKind;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Arguments of `reef-sim replay`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  reef-sim replay --trace cdn.oracleGeneral.zst --format oracle-general \\\n      \
                      --policy lru,s3fifo,belady --cache-size 1GiB,10GiB --warmup 1000000")]
pub struct ReplayArgs {
    /// The trace file (zstd-compressed files are recognised).
    #[arg(long)]
    pub trace: PathBuf,
    /// The trace's format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Eviction policies, comma-separated: lru, fifo, clock, lfu, lfuda, s3fifo, sieve, arc, 2q, gdsf,
    /// wtinylfu, belady.
    #[arg(long, value_delimiter = ',', required_unless_present = "shards")]
    pub policy: Vec<PolicyKind>,
    /// Cache sizes, comma-separated: bytes or human units (10000000, 10MB, 4GiB).
    #[arg(long = "cache-size", value_delimiter = ',', required = true, value_parser = parse_cache_size)]
    pub cache_size: Vec<u64>,
    /// Replace the cache sizes by this many, evenly spaced on a log scale from the smallest to
    /// the largest given (a miss-ratio curve).
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub points: Option<u32>,
    /// Also estimate LRU at every size in one pass, sampling this share of the objects
    /// (SHARDS; approximate, exact for equal sizes at 1). Rows are marked with the rate.
    #[arg(long, value_parser = parse_rate)]
    pub shards: Option<f64>,
    /// Requests that warm the cache up without counting in the ratios.
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// Print a JSON array (one object per pair) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress bar and no load report.
    #[arg(long)]
    pub quiet: bool,
    /// Pairs replayed at once (default: the number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub columns: CsvColumns,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(format!("a sampling rate is a number above 0 and at most 1, not {s:?}")),
    }
}

/// `n` sizes from `min` to `max`, evenly spaced on a log scale.
fn log_spaced(min: u64, max: u64, n: u32) -> Vec<u64> {
    let (lo, hi) = ((min as f64).ln(), (max as f64).ln());
    let mut sizes: Vec<u64> =
        (0..n).map(|k| (lo + (hi - lo) * f64::from(k) / f64::from(n - 1)).exp().round() as u64).collect();
    sizes.dedup();
    sizes
}

fn parse_cache_size(s: &str) -> Result<u64, String> {
    match reef_core::units::parse_size(s) {
        Ok(0) => Err("a cache size must be above zero".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// One unit of work for a replay thread.
#[derive(Clone, Copy, Debug)]
enum Job {
    Exact(PolicyKind, u64),
    Shards(f64),
}

pub fn execute(args: &ReplayArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let trace = trace::load(&args.trace, args.format, &args.columns)?;
    anyhow::ensure!(!trace.requests.is_empty(), "{}: the trace has no requests", args.trace.display());
    let next = args.policy.contains(&PolicyKind::Belady).then(|| trace.next_accesses());
    let load_seconds = started.elapsed().as_secs_f64();
    if !args.quiet {
        eprintln!("loaded {} requests from {} in {load_seconds:.2} s", trace.requests.len(), args.trace.display());
    }

    let sizes = match args.points {
        Some(n) => {
            let (min, max) = (args.cache_size.iter().min(), args.cache_size.iter().max());
            log_spaced(*min.unwrap_or(&1), *max.unwrap_or(&1), n)
        }
        None => args.cache_size.clone(),
    };
    let mut jobs: Vec<Job> = args.policy.iter().flat_map(|&p| sizes.iter().map(move |&s| Job::Exact(p, s))).collect();
    if let Some(rate) = args.shards {
        jobs.push(Job::Shards(rate));
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, jobs.len());
    let total = (jobs.len() * trace.requests.len()) as u64;
    let progress = if args.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{bar:40} {percent}% {human_pos}/{human_len} requests, eta {eta}")
                .context("progress bar template")?,
        )
    };

    // Workers claim jobs in order; results are put back in that order.
    let cursor = AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let i = cursor.fetch_add(1, Ordering::Relaxed);
            let Some(&job) = jobs.get(i) else { break done };
            let result = match job {
                Job::Exact(policy, size) => {
                    simulate(&trace.requests, next.as_deref(), policy, size, args.warmup, |n| progress.inc(n))
                        .map(|r| vec![r])
                }
                Job::Shards(rate) => {
                    let rows = lru_curve(&trace.requests, &sizes, rate, args.warmup);
                    progress.inc(trace.requests.len() as u64);
                    Ok(rows)
                }
            };
            done.push((i, result));
        }
    };
    let mut finished: Vec<(usize, anyhow::Result<Vec<PairResult>>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    progress.finish_and_clear();
    finished.sort_by_key(|(i, _)| *i);
    let mut results: Vec<PairResult> =
        finished.into_iter().map(|(_, r)| r).collect::<anyhow::Result<Vec<_>>>()?.into_iter().flatten().collect();
    for r in &mut results {
        r.trace_load_seconds = load_seconds;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{}", report::table(&results));
    }
    Ok(())
}
