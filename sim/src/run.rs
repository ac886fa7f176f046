//! `reef-sim run`: load a scenario, simulate it, report and write the results.
//!
//! The summary file holds only what the scenario and seed determine, so two runs of the same
//! scenario and seed write identical files; wall-clock figures go to a separate `run.json`.

use crate::output;
use crate::scenario::{self, Scenario};
use crate::stats::{BytesFrom, Counters, Stats};
use crate::world::World;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use reef_core::units::format_size;
use reef_results::RunResults;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// The scenario file (TOML; see scenarios/README.md).
    pub scenario: PathBuf,
    /// Seed of every random choice (default: the scenario's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Directory for the result files (default: out/SCENARIO-NAME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override a scenario key, e.g. `--set policy.eviction=lru` or `--set workload.requests=1000`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Print one JSON object with the results on stdout instead of the readable summary.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// Served requests by where their bytes came from (see `BytesFrom`), and how many of them
/// were copied by two or more caches' fills on the way.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ServedFrom {
    pub worker_node: u64,
    pub site_cache: u64,
    pub parent_tier: u64,
    pub other_site: u64,
    pub origin: u64,
    pub relayed: u64,
}

impl From<&Counters> for ServedFrom {
    fn from(c: &Counters) -> Self {
        ServedFrom {
            worker_node: c.served(BytesFrom::WorkerNode),
            site_cache: c.served(BytesFrom::SiteCache),
            parent_tier: c.served(BytesFrom::ParentTier),
            other_site: c.served(BytesFrom::OtherSite),
            origin: c.served(BytesFrom::Origin),
            relayed: c.relayed,
        }
    }
}

/// A tier's (or a namespace's) requests and where they were served from.
#[derive(Clone, Debug, Serialize)]
pub struct TierSummary {
    pub requests: u64,
    pub completed: u64,
    pub failed: u64,
    /// Refused by the access decision (part of `failed`).
    pub denied: u64,
    pub served_from: ServedFrom,
    pub site_hit_ratio: f64,
    pub bytes_requested: u64,
}

impl From<&Counters> for TierSummary {
    fn from(c: &Counters) -> Self {
        TierSummary {
            requests: c.requests,
            completed: c.completed,
            failed: c.failed,
            denied: c.denied,
            served_from: ServedFrom::from(c),
            site_hit_ratio: c.site_hit_ratio(),
            bytes_requested: c.bytes_requested,
        }
    }
}

/// A namespace's requests, how many of its objects the caches evicted, and what its egress
/// limit did: responses held back (and their mean wait) and requests refused with 503.
#[derive(Clone, Debug, Serialize)]
pub struct NamespaceSummary {
    #[serde(flatten)]
    pub served: TierSummary,
    pub evicted: u64,
    /// Requests that found a copy older than the namespace's `max_age` and revalidated it with
    /// the origin (each an origin fetch that moves no bytes).
    pub expired: u64,
    pub egress_delayed: u64,
    pub egress_mean_delay_ms: f64,
    pub egress_refused: u64,
}

impl From<&Counters> for NamespaceSummary {
    fn from(c: &Counters) -> Self {
        let mean_ns = if c.egress_delayed == 0 { 0.0 } else { c.egress_delay_ns as f64 / c.egress_delayed as f64 };
        NamespaceSummary {
            served: TierSummary::from(c),
            evicted: c.evicted,
            expired: c.expired,
            egress_delayed: c.egress_delayed,
            egress_mean_delay_ms: mean_ns / 1e6,
            egress_refused: c.egress_refused,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LinkSummary {
    pub a: String,
    pub b: String,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct OutageSummary {
    pub what: String,
    pub at_s: f64,
    pub duration_s: f64,
}

/// The results of one run: a pure function of the scenario and the seed.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub seed: u64,
    pub policy: BTreeMap<&'static str, String>,
    pub sites: usize,
    pub nodes: usize,
    pub requests: u64,
    pub completed: u64,
    pub failed: u64,
    /// Requests refused by the access decision (private namespaces without a granting
    /// token); part of `failed`, by reason in `failures` (`denied_*`).
    pub denied: u64,
    pub served_from: ServedFrom,
    pub origin_fetches: u64,
    pub peer_fetches: u64,
    pub bytes_requested: u64,
    pub bytes_served: u64,
    pub bytes_from_origin: u64,
    pub bytes_wan: u64,
    pub bytes_lan: u64,
    pub object_hit_ratio: f64,
    pub byte_hit_ratio: f64,
    pub site_hit_ratio: f64,
    /// Time to first byte of served requests: from the request until the first byte reaches
    /// the client (a miss streams once its fill's first block is in). Milliseconds.
    pub latency_ms: Latency,
    /// Time to last byte of served requests: from the request until the client has the whole
    /// object (at `client_bandwidth`, and never before the fill it streams from). Milliseconds.
    pub duration_ms: Latency,
    /// Streamed responses aborted because every source of their fill failed after the first
    /// byte (the client then tries its next cache).
    pub streams_broken: u64,
    /// Damaged copies (`corrupt` faults) found when read, dropped and fetched again.
    pub damaged_found: u64,
    /// Fills that found their node's disk full (`disk_full` faults) and failed with `no_space`.
    pub no_room: u64,
    pub failures: BTreeMap<&'static str, u64>,
    pub failovers: u64,
    pub client_failovers: u64,
    pub coalesced: u64,
    pub admitted: u64,
    pub not_admitted: u64,
    pub evicted: u64,
    pub peer_down_events: u64,
    pub lookups: u64,
    pub lookup_hops_mean: f64,
    pub lookups_found: u64,
    pub transfers: u64,
    pub transfers_broken: u64,
    pub events: u64,
    /// `events` by kind (`World::events_by_kind`).
    pub events_by_kind: BTreeMap<&'static str, u64>,
    pub simulated_seconds: f64,
    pub tiers: BTreeMap<String, TierSummary>,
    /// The same counts by namespace (those with requests): with storage quotas, whose hits
    /// a bursting namespace took.
    pub namespaces: BTreeMap<String, NamespaceSummary>,
    pub outages: Vec<OutageSummary>,
    pub wan_links: Vec<LinkSummary>,
    /// WAN links that carried no byte (`A-B`): a sign that routing or placement leaves them idle.
    pub idle_links: Vec<String>,
    /// The origins' tape libraries, all together (absent when no namespace has one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveSummary>,
}

/// What the origins' tape libraries did (`crate::tape` states the model), summed over them.
#[derive(Clone, Debug, Serialize)]
pub struct ArchiveSummary {
    pub libraries: u64,
    /// Fetches that reached an origin for a file on tape (their first ask), and of them those
    /// served from the disk buffer at once.
    pub reads: u64,
    pub buffer_hits: u64,
    /// `buffer_hits / reads` (0 without reads): the share of tape-file fetches that did not
    /// wait for a recall.
    pub buffer_hit_ratio: f64,
    /// Asks answered "staging", and asks again by fetches told to wait.
    pub staging_answers: u64,
    pub polls: u64,
    pub recalls: u64,
    pub mounts: u64,
    /// Drive time spent on recalls (mounts, seeks and reads), hours; and as a share of all
    /// drives' time over the simulated run.
    pub drive_busy_hours: f64,
    pub drive_utilisation: f64,
    /// From a recall's queueing to a drive starting on it: mean over recalls, and the longest.
    pub queue_wait_mean_s: f64,
    pub queue_wait_max_s: f64,
    /// Recalls that ended in each time bucket of `bucket_s` seconds, from the start.
    pub recalls_by_bucket: Vec<u64>,
    pub bucket_s: f64,
}

fn archive_summary(world: &World) -> Option<ArchiveSummary> {
    let libs: Vec<&crate::tape::TapeLibrary> = world.tapes.iter().flatten().collect();
    if libs.is_empty() {
        return None;
    }
    let sum = |f: &dyn Fn(&crate::tape::TapeStats) -> u64| libs.iter().map(|l| f(&l.stats)).sum::<u64>();
    let (reads, hits, recalls) = (sum(&|s| s.reads), sum(&|s| s.buffer_hits), sum(&|s| s.recalls));
    let busy_s = libs.iter().map(|l| l.stats.busy.as_secs_f64()).sum::<f64>();
    let drive_s = libs.iter().map(|l| f64::from(l.params().drives)).sum::<f64>() * world.now().as_secs_f64();
    let mut by_bucket = vec![0u64; libs.iter().map(|l| l.buckets.len()).max().unwrap_or(0)];
    for l in &libs {
        for (b, n) in l.recalls_by_bucket().into_iter().enumerate() {
            by_bucket[b] += n;
        }
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let wait_s = libs.iter().map(|l| l.stats.queue_wait.as_secs_f64()).sum::<f64>();
    Some(ArchiveSummary {
        libraries: libs.len() as u64,
        reads,
        buffer_hits: hits,
        buffer_hit_ratio: ratio(hits as f64, reads as f64),
        staging_answers: sum(&|s| s.staging),
        polls: sum(&|s| s.polls),
        recalls,
        mounts: sum(&|s| s.mounts),
        drive_busy_hours: busy_s / 3600.0,
        drive_utilisation: ratio(busy_s, drive_s),
        queue_wait_mean_s: ratio(wait_s, recalls as f64),
        queue_wait_max_s: libs.iter().map(|l| l.stats.max_queue_wait.as_secs_f64()).fold(0.0, f64::max),
        recalls_by_bucket: by_bucket,
        bucket_s: world.series.bucket.as_secs_f64(),
    })
}

/// A finished run: the summary and the rows of its tables.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub summary: Summary,
    pub results: RunResults,
}

/// Simulates a scenario with `seed`; `progress` is called now and then with the world.
pub fn simulate(scenario: &Scenario, seed: u64, progress: &mut dyn FnMut(&World)) -> anyhow::Result<Outcome> {
    let mut world = World::new(scenario, seed)
        .map_err(|e| anyhow::anyhow!("{}: {e}", scenario.path.display()))
        .context("building the scenario")?;
    world.run(1 << 16, progress);
    let summary = summarize(scenario, seed, &world);
    let results = output::run_results(&summary, &world)?;
    Ok(Outcome { summary, results })
}

fn summarize(scenario: &Scenario, seed: u64, world: &World) -> Summary {
    let s: &Stats = &world.stats;
    let ms = |q| s.latency.quantile(q) as f64 / 1e6;
    let ms_last = |q| s.duration.quantile(q) as f64 / 1e6;
    let p = &scenario.policy;
    let policy = BTreeMap::from([
        ("eviction", p.eviction.1.clone()),
        ("admission", p.admission.1.clone()),
        ("discovery", p.discovery.1.clone()),
    ]);
    let topo = &world.topo;
    Summary {
        scenario: scenario.name.clone().unwrap_or_default(),
        seed,
        policy,
        sites: topo.sites.len(),
        nodes: world.node_count(),
        requests: s.all.requests,
        completed: s.all.completed,
        failed: s.all.failed,
        denied: s.all.denied,
        served_from: ServedFrom::from(&s.all),
        origin_fetches: s.origin_fetches,
        peer_fetches: s.peer_fetches,
        bytes_requested: s.all.bytes_requested,
        bytes_served: s.all.bytes_served,
        bytes_from_origin: s.bytes_from_origin,
        bytes_wan: s.bytes_wan,
        bytes_lan: s.bytes_lan,
        object_hit_ratio: s.object_hit_ratio(),
        byte_hit_ratio: s.byte_hit_ratio(),
        site_hit_ratio: s.all.site_hit_ratio(),
        latency_ms: Latency { p50: ms(0.5), p90: ms(0.9), p99: ms(0.99) },
        duration_ms: Latency { p50: ms_last(0.5), p90: ms_last(0.9), p99: ms_last(0.99) },
        streams_broken: s.streams_broken,
        damaged_found: s.damaged_found,
        no_room: s.no_room,
        failures: s.failures.clone(),
        failovers: s.failovers,
        client_failovers: s.client_failovers,
        coalesced: s.coalesced,
        admitted: s.admitted,
        not_admitted: s.not_admitted,
        evicted: s.evicted,
        peer_down_events: s.peer_down,
        lookups: s.lookups,
        lookup_hops_mean: if s.lookups == 0 { 0.0 } else { s.lookup_hops as f64 / s.lookups as f64 },
        lookups_found: s.lookups_found,
        transfers: s.transfers,
        transfers_broken: s.transfers_broken,
        events: world.events(),
        events_by_kind: world.events_by_kind().collect(),
        simulated_seconds: world.now().as_secs_f64(),
        tiers: s.per_tier().map(|(t, c)| (t.to_string(), TierSummary::from(c))).collect(),
        namespaces: (s.namespaces.iter().enumerate())
            .filter(|(_, c)| c.requests > 0)
            .map(|(i, c)| (world.layout.namespaces[i].clone(), NamespaceSummary::from(c)))
            .collect(),
        outages: world
            .outages
            .iter()
            .map(|o| OutageSummary {
                what: o.label.clone(),
                at_s: o.at.as_secs_f64(),
                duration_s: o.duration.as_secs_f64(),
            })
            .collect(),
        wan_links: topo
            .links
            .iter()
            .zip(world.wan_link_bytes())
            .map(|(l, bytes)| LinkSummary {
                a: topo.sites[l.a as usize].name.clone(),
                b: topo.sites[l.b as usize].name.clone(),
                bytes,
            })
            .collect(),
        idle_links: topo
            .links
            .iter()
            .zip(world.wan_link_bytes())
            .filter(|(_, bytes)| *bytes == 0)
            .map(|(l, _)| format!("{}-{}", topo.sites[l.a as usize].name, topo.sites[l.b as usize].name))
            .collect(),
        archive: archive_summary(world),
    }
}

/// The `run` command.
pub fn execute(args: &RunArgs) -> anyhow::Result<()> {
    let scenario = scenario::load(&args.scenario, &args.overrides)?;
    let seed = args.seed.unwrap_or(scenario.seed);
    let name = scenario.name.clone().unwrap_or_default();
    let total = scenario.workload.requests;
    let bar =
        if args.quiet || !std::io::stderr().is_terminal() { ProgressBar::hidden() } else { ProgressBar::new(total) };
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} requests issued  {msg}").expect("valid template"));
    let started = std::time::Instant::now();
    let mut progress = |w: &World| {
        let wall = started.elapsed().as_secs_f64().max(1e-9);
        bar.set_position(total - w.requests_left());
        bar.set_message(format!("sim {:.0}s  {:.1}M events/s", w.now().as_secs_f64(), w.events() as f64 / wall / 1e6));
    };
    let Outcome { summary, results } = simulate(&scenario, seed, &mut progress)?;
    bar.finish_and_clear();
    let wall_seconds = started.elapsed().as_secs_f64();
    let out = args.out.clone().unwrap_or_else(|| Path::new("out").join(&name));
    output::write(&out, &summary, &results, scenario.run.csv, wall_seconds)?;
    if args.json {
        let mut v = serde_json::to_value(&summary)?;
        v["wall_seconds"] = serde_json::json!(wall_seconds);
        println!("{v}");
    } else {
        print_summary(&summary, wall_seconds, &out);
    }
    Ok(())
}

fn print_summary(s: &Summary, wall: f64, out: &Path) {
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    let share = |n: u64| pct(if s.requests == 0 { 0.0 } else { n as f64 / s.requests as f64 });
    println!("scenario {} (seed {}): {} sites, {} nodes", s.scenario, s.seed, s.sites, s.nodes);
    println!(
        "policy: eviction {}, admission {}, discovery {}",
        s.policy["eviction"], s.policy["admission"], s.policy["discovery"]
    );
    println!("requests      {:>12}   simulated {:.0} s", s.requests, s.simulated_seconds);
    println!("  completed   {:>12}   {}", s.completed, share(s.completed));
    println!("  failed      {:>12}   {}", s.failed, share(s.failed));
    if s.denied > 0 {
        println!("  denied      {:>12}   {}   (part of failed: the access decision)", s.denied, share(s.denied));
    }
    for (reason, n) in &s.failures {
        println!("    {reason:<20}{n:>8}");
    }
    let f = &s.served_from;
    println!("bytes came from (served requests, by the store that held them)");
    println!("  worker node {:>12}   {}", f.worker_node, share(f.worker_node));
    println!("  site cache  {:>12}   {}", f.site_cache, share(f.site_cache));
    println!("  parent tier {:>12}   {}", f.parent_tier, share(f.parent_tier));
    println!("  other site  {:>12}   {}", f.other_site, share(f.other_site));
    println!("  origin      {:>12}   {}", f.origin, share(f.origin));
    println!("  relayed by 2+ caches {:>5}   {}", f.relayed, share(f.relayed));
    println!(
        "hit ratio     objects {}   bytes {}   (no origin transfer)   at the client's site {}",
        pct(s.object_hit_ratio),
        pct(s.byte_hit_ratio),
        pct(s.site_hit_ratio)
    );
    println!(
        "bytes         requested {}   from origin {}   over WAN {}",
        format_size(s.bytes_requested),
        format_size(s.bytes_from_origin),
        format_size(s.bytes_wan)
    );
    println!(
        "origin fetches {}   failovers {}   client failovers {}   coalesced {}",
        s.origin_fetches, s.failovers, s.client_failovers, s.coalesced
    );
    println!(
        "time to first byte    p50 {:.1} ms   p90 {:.1} ms   p99 {:.1} ms",
        s.latency_ms.p50, s.latency_ms.p90, s.latency_ms.p99
    );
    println!(
        "time to last byte     p50 {:.1} ms   p90 {:.1} ms   p99 {:.1} ms   (streams broken {})",
        s.duration_ms.p50, s.duration_ms.p90, s.duration_ms.p99, s.streams_broken
    );
    for (tier, t) in &s.tiers {
        let f = &t.served_from;
        println!(
            "  {tier}: {} requests; bytes from worker node {}, site cache {}, parent tier {}, other site {}, \
             origin {}; {} failed",
            t.requests, f.worker_node, f.site_cache, f.parent_tier, f.other_site, f.origin, t.failed
        );
    }
    if s.namespaces.len() > 1 {
        for (ns, t) in &s.namespaces {
            println!(
                "  namespace {ns}: {} requests; site hit ratio {:.1}%; {} failed; {} evicted; egress: {} delayed \
                 (mean {:.0} ms), {} refused",
                t.served.requests,
                t.served.site_hit_ratio * 100.0,
                t.served.failed,
                t.evicted,
                t.egress_delayed,
                t.egress_mean_delay_ms,
                t.egress_refused
            );
        }
    }
    if !s.idle_links.is_empty() {
        println!("warning: {} WAN link(s) carried nothing: {}", s.idle_links.len(), s.idle_links.join(", "));
    }
    for o in &s.outages {
        println!("outage: {} at {:.0} s for {:.0} s", o.what, o.at_s, o.duration_s);
    }
    if let Some(a) = &s.archive {
        println!(
            "archive       {} recalls ({} mounts), drives busy {:.1} h ({:.1}%), queue wait mean {:.0} s max {:.0} s; \
             buffer hits {} of {} tape reads ({:.1}%)",
            a.recalls,
            a.mounts,
            a.drive_busy_hours,
            a.drive_utilisation * 100.0,
            a.queue_wait_mean_s,
            a.queue_wait_max_s,
            a.buffer_hits,
            a.reads,
            a.buffer_hit_ratio * 100.0
        );
    }
    println!("{} events in {:.2} s ({:.1}M events/s)", s.events, wall, s.events as f64 / wall.max(1e-9) / 1e6);
    let kinds: Vec<String> =
        s.events_by_kind.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
    println!("  by kind: {}", kinds.join(", "));
    println!("results in {}", out.display());
}
