//! Synthetic workloads: a catalog of objects grouped into datasets, Zipf popularity with a
//! one-timer tail, popularity churn, flash crowds, dataset-level jobs, and per-site arrivals
//! with a diurnal shape.
//!
//! Object sizes and ids are pure functions of the object's index and the seed, so the catalog
//! costs no memory however large it is, and one-timers (indices past the catalog) get sizes
//! from the same distribution.

use crate::scenario::{SizeDist, WorkloadSpec};
use crate::topology::Topology;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Zipf};
use rand_xoshiro::Xoshiro256PlusPlus;
use reef_core::{Duration, ObjectId, Time};

/// Mixes a 64-bit value (SplitMix64's finaliser): index to id, index to per-object seed.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The objects: sizes and identities by index.
#[derive(Debug)]
pub struct Catalog {
    pub objects: u64,
    pub dataset_files: u64,
    /// The namespaces' names: an object's id is that of its path in its namespace.
    names: Vec<String>,
    namespaces: u16,
    salt: u64,
    size: SizeSampler,
}

#[derive(Debug)]
enum SizeSampler {
    Fixed(u64),
    Lognormal {
        dist: LogNormal<f64>,
        min: u64,
        max: u64,
    },
    /// Cumulative weights and bin bounds.
    Histogram {
        cumulative: Vec<f64>,
        bounds: Vec<u64>,
    },
}

impl Catalog {
    pub fn new(spec: &WorkloadSpec, names: &[String], seed: u64) -> Result<Catalog, String> {
        let namespaces = u16::try_from(names.len().max(1)).map_err(|_| "more than 65535 namespaces".to_string())?;
        let size = match &spec.size {
            SizeDist::Fixed { value } => SizeSampler::Fixed(value.0),
            SizeDist::Lognormal { median, sigma, min, max } => {
                if median.0 == 0 || min > max {
                    return Err("workload.size: need median > 0 and min <= max".into());
                }
                let dist =
                    LogNormal::new((median.0 as f64).ln(), *sigma).map_err(|e| format!("workload.size.sigma: {e}"))?;
                SizeSampler::Lognormal { dist, min: min.0, max: max.0 }
            }
            SizeDist::Histogram { bins } => {
                if bins.is_empty() || bins.iter().any(|(_, w)| w.is_nan() || *w < 0.0) {
                    return Err("workload.size.bins: need at least one bin and weights >= 0".into());
                }
                if bins.windows(2).any(|w| w[0].0 >= w[1].0) {
                    return Err("workload.size.bins: upper bounds must increase".into());
                }
                let mut total = 0.0;
                let cumulative = bins
                    .iter()
                    .map(|(_, w)| {
                        total += w;
                        total
                    })
                    .collect();
                if total <= 0.0 {
                    return Err("workload.size.bins: weights add up to 0".into());
                }
                SizeSampler::Histogram { cumulative, bounds: bins.iter().map(|(b, _)| b.0).collect() }
            }
        };
        if spec.objects == 0 || spec.dataset_files == 0 {
            return Err("workload: objects and dataset_files must be at least 1".into());
        }
        let names = if names.is_empty() { vec![String::new()] } else { names.to_vec() };
        Ok(Catalog {
            objects: spec.objects,
            dataset_files: spec.dataset_files,
            names,
            namespaces,
            salt: mix64(seed),
            size,
        })
    }

    pub fn datasets(&self) -> u64 {
        self.objects.div_ceil(self.dataset_files)
    }

    /// The id a reef-node gives the object: that of its path in its namespace, so that a
    /// simulated object and a real file of the same name are one object (the lab relies on it).
    pub fn id(&self, index: u64) -> ObjectId {
        // On the stack: this runs for every simulated request.
        let mut buf = [0u8; 48];
        ObjectId::of(&self.names[usize::from(self.namespace(index))], self.write_path(index, &mut buf))
    }

    /// The object's path in its namespace (`/NAMESPACE/` + this names the file).
    pub fn path(&self, index: u64) -> String {
        self.write_path(index, &mut [0u8; 48]).to_string()
    }

    /// Writes `d<dataset>/f<index>` into `buf`.
    fn write_path<'b>(&self, index: u64, buf: &'b mut [u8; 48]) -> &'b str {
        use std::io::Write;
        let mut rest = &mut buf[..];
        write!(rest, "d{}/f{index}", index / self.dataset_files).expect("48 bytes hold two u64s");
        let len = 48 - rest.len();
        std::str::from_utf8(&buf[..len]).expect("ascii")
    }

    /// The name of namespace `n`.
    pub fn namespace_name(&self, n: u16) -> &str {
        &self.names[usize::from(n)]
    }

    /// Datasets are spread over the namespaces round-robin; one-timers too.
    pub fn namespace(&self, index: u64) -> u16 {
        ((index / self.dataset_files) % u64::from(self.namespaces)) as u16
    }

    /// The `k`-th file of namespace `ns` from index `from` on (wrapping around the catalog).
    pub fn nth_of_namespace(&self, ns: u16, from: u64, k: u64) -> u64 {
        let (files, spread) = (self.dataset_files, u64::from(self.namespaces));
        let first = from / files;
        // The namespace's first dataset at or after `from`'s, then every `spread`-th.
        let aligned = first + (u64::from(ns) + spread - first % spread) % spread;
        let dataset = aligned + spread * (k / files);
        let index = dataset * files + k % files;
        // Past the end of the catalog: wrap to the namespace's first dataset.
        if index < self.objects { index } else { (u64::from(ns) * files + k % files).min(self.objects - 1) }
    }

    /// The namespace of an object known by id only (a trace's): spread by hash.
    pub fn namespace_of_id(&self, id: u64) -> u16 {
        (mix64(id) % u64::from(self.namespaces)) as u16
    }

    pub fn size(&self, index: u64) -> u64 {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(mix64(index.wrapping_add(self.salt)));
        match &self.size {
            SizeSampler::Fixed(v) => *v,
            SizeSampler::Lognormal { dist, min, max } => (dist.sample(&mut rng) as u64).clamp(*min, *max),
            SizeSampler::Histogram { cumulative, bounds } => {
                let total = *cumulative.last().expect("at least one bin");
                let x = rng.random_range(0.0..total);
                let bin = cumulative.partition_point(|&c| c <= x).min(bounds.len() - 1);
                let lo = if bin == 0 { 1 } else { bounds[bin - 1] + 1 };
                rng.random_range(lo..=bounds[bin].max(lo))
            }
        }
    }
}

/// What arrives: one request, or a job reading `files` consecutive objects from `first`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Demand {
    Object(u64),
    Job {
        first: u64,
        files: u64,
    },
    /// The next request of a trace: an object by id, and its size.
    Traced {
        id: u64,
        size: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    pub site: u32,
    pub demand: Demand,
    /// A random number the driver uses to pick a worker node.
    pub pick: u32,
}

#[derive(Debug)]
struct Flash {
    start: Time,
    end: Time,
    share: f64,
    first: u64,
    objects: u64,
    sites: Vec<u32>,
    /// Only files of this namespace.
    namespace: Option<u16>,
}

/// The arrival process: when the next arrival comes and what it asks for.
#[derive(Debug)]
pub struct Workload {
    pub catalog: Catalog,
    rng: Xoshiro256PlusPlus,
    objects_zipf: Zipf<f64>,
    datasets_zipf: Zipf<f64>,
    one_timers: f64,
    next_one_timer: u64,
    /// Cumulative site weights.
    site_cumulative: Vec<f64>,
    /// Mean arrivals per second, before the diurnal shape.
    rate: f64,
    diurnal: Option<(f64, Duration)>,
    churn: Option<(Duration, u64)>,
    job_probability: f64,
    job_files: u64,
    flashes: Vec<Flash>,
    /// Requests not yet handed out.
    left: u64,
    next_at: Time,
    trace: Option<Replay>,
    ingest: Option<Ingest>,
}

/// Files published during the run (`[workload.ingest]`): the `k`-th (from 0) is published
/// at `k / rate` seconds and has catalog index `INGESTED + k`.
#[derive(Clone, Copy, Debug)]
struct Ingest {
    /// Files per second.
    rate: f64,
    share: f64,
    recent: u64,
}

/// The catalog index of the first file published during a run: far above the catalog and
/// its one-timers, so the two never meet.
pub const INGESTED: u64 = 1 << 48;

/// A trace being replayed as the workload.
#[derive(Debug)]
struct Replay {
    requests: Vec<crate::trace::Request>,
    next: usize,
    /// Sites in turn (`round-robin`), or drawn by weight.
    round_robin: bool,
    turn: usize,
}

impl Replay {
    fn load(spec: &crate::scenario::TraceSpec, requests: u64) -> Result<Replay, String> {
        use crate::trace::{CsvColumns, Format, load};
        let format = <Format as clap::ValueEnum>::from_str(&spec.format, true).map_err(|_| {
            format!("workload.trace.format: unknown format `{}`; expected csv, oracle-general or reef-log", spec.format)
        })?;
        let round_robin = match spec.sites.as_str() {
            "weights" => false,
            "round-robin" => true,
            other => return Err(format!("workload.trace.sites: `{other}`; expected `weights` or `round-robin`")),
        };
        let columns = CsvColumns { id: spec.id_column.clone(), size: spec.size_column.clone(), time: None };
        let trace = load(&spec.file, format, &columns).map_err(|e| format!("workload.trace: {e}"))?;
        let have = trace.requests.len() as u64;
        if have < requests {
            return Err(format!(
                "workload.requests is {requests} but the trace {} has only {have} requests",
                spec.file.display()
            ));
        }
        Ok(Replay { requests: trace.requests, next: 0, round_robin, turn: 0 })
    }
}

const DAY: f64 = 86_400.0;

impl Workload {
    pub fn new(spec: &WorkloadSpec, topo: &Topology, namespaces: &[String], seed: u64) -> Result<Workload, String> {
        let catalog = Catalog::new(spec, namespaces, seed)?;
        let trace = spec.trace.as_ref().map(|t| Replay::load(t, spec.requests)).transpose()?;
        let zipf = |n: u64| Zipf::new(n as f64, spec.zipf).map_err(|e| format!("workload.zipf: {e}"));
        let objects_zipf = zipf(catalog.objects)?;
        let datasets_zipf = zipf(catalog.datasets())?;
        let mut total = 0.0;
        let site_cumulative = topo
            .sites
            .iter()
            .map(|s| {
                total += s.weight.max(0.0);
                total
            })
            .collect();
        let (share, files) = match &spec.jobs {
            // A trace is a sequence of single requests.
            Some(j) if trace.is_none() => (j.share.clamp(0.0, 1.0), j.files.clamp(1, spec.dataset_files)),
            _ => (0.0, 1),
        };
        // A job arrival brings `files` requests, a single arrival one: solve for the arrival mix
        // that gives the requested share of job requests.
        let job_arrivals = share / files as f64;
        let single_arrivals = 1.0 - share;
        let job_probability = job_arrivals / (job_arrivals + single_arrivals);
        let arrivals = spec.requests as f64 * (job_arrivals + single_arrivals);
        let secs = spec.duration.0.as_secs_f64();
        if secs <= 0.0 {
            return Err("workload.duration must be positive".into());
        }
        let mut flashes = Vec::new();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xf1a5);
        for f in &spec.flash_crowds {
            let sites = f
                .sites
                .iter()
                .map(|n| topo.site_index(n).ok_or_else(|| format!("flash_crowd names unknown site `{n}`")))
                .collect::<Result<Vec<_>, _>>()?;
            let namespace = match &f.namespace {
                Some(name) => Some(
                    namespaces
                        .iter()
                        .position(|n| n == name)
                        .ok_or_else(|| format!("flash_crowd names unknown namespace `{name}`"))?
                        as u16,
                ),
                None => None,
            };
            // Within one namespace, the crowd's files are that namespace's only.
            let spread = if namespace.is_some() { u64::from(catalog.namespaces) } else { 1 };
            let objects = f.objects.clamp(1, (catalog.objects / spread).max(1));
            // Start somewhere in the cold second half of the ranking.
            let first =
                catalog.objects / 2 + rng.random_range(0..=catalog.objects / 2 - objects.min(catalog.objects / 2));
            flashes.push(Flash {
                start: Time::ZERO + f.at.0,
                end: Time::ZERO + f.at.0 + f.duration.0,
                share: f.share,
                first,
                objects,
                sites,
                namespace,
            });
        }
        let ingest = match &spec.ingest {
            Some(_) if trace.is_some() => {
                return Err("workload.ingest: a trace workload names its own objects; remove one of the two".into());
            }
            Some(i) if !(i.files_per_hour.is_finite() && i.files_per_hour > 0.0) => {
                return Err(format!("workload.ingest.files_per_hour: expected more than 0, got {}", i.files_per_hour));
            }
            Some(i) => Some(Ingest { rate: i.files_per_hour / 3600.0, share: i.share, recent: i.recent }),
            None => None,
        };
        let mut w = Workload {
            catalog,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x3012_c0ad),
            objects_zipf,
            datasets_zipf,
            one_timers: spec.one_timers.clamp(0.0, 1.0),
            next_one_timer: spec.objects,
            site_cumulative,
            rate: arrivals / secs,
            diurnal: spec.diurnal.as_ref().map(|d| (d.amplitude.clamp(0.0, 1.0), d.peak.0)),
            churn: spec.churn.as_ref().filter(|c| c.every.0 > Duration::ZERO).map(|c| (c.every.0, c.shift)),
            job_probability,
            job_files: files,
            flashes,
            left: spec.requests,
            next_at: Time::ZERO,
            trace,
            ingest,
        };
        w.next_at = w.draw_gap(Time::ZERO);
        Ok(w)
    }

    /// Requests not yet handed out.
    pub fn left(&self) -> u64 {
        self.left
    }

    /// When the next arrival comes, if any is left.
    pub fn next_time(&self) -> Option<Time> {
        (self.left > 0).then_some(self.next_at)
    }

    /// Exponential gaps at the peak rate, thinned by the diurnal shape (Lewis-Shedler).
    fn draw_gap(&mut self, from: Time) -> Time {
        let peak = self.rate * (1.0 + self.diurnal.map_or(0.0, |(a, _)| a));
        let mut t = from;
        loop {
            let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
            t += Duration::from_secs_f64(-u.ln() / peak);
            let Some((a, at)) = self.diurnal else {
                return t;
            };
            let phase = (t.as_secs_f64() - at.as_secs_f64()) / DAY * std::f64::consts::TAU;
            let rate = self.rate * (1.0 + a * phase.cos());
            if self.rng.random_range(0.0..peak) < rate {
                return t;
            }
        }
    }

    /// Takes the next arrival (call at `next_time`).
    pub fn take(&mut self, now: Time) -> Arrival {
        let site = match &mut self.trace {
            Some(r) if r.round_robin => {
                // Sites with a weight, in turn.
                let weighted =
                    |s: usize| self.site_cumulative[s] > if s == 0 { 0.0 } else { self.site_cumulative[s - 1] };
                let n = self.site_cumulative.len();
                let mut s = r.turn % n;
                while !weighted(s) {
                    s = (s + 1) % n;
                }
                r.turn = s + 1;
                s as u32
            }
            _ => {
                let x = self.rng.random_range(0.0..*self.site_cumulative.last().expect("sites"));
                self.site_cumulative.partition_point(|&c| c <= x) as u32
            }
        };
        let pick = self.rng.random::<u32>();
        let demand = match &mut self.trace {
            Some(r) => {
                let q = r.requests[r.next];
                r.next += 1;
                Demand::Traced { id: q.id, size: q.size }
            }
            None => self.demand(now, site),
        };
        let n = match demand {
            Demand::Object(_) | Demand::Traced { .. } => 1,
            Demand::Job { files, .. } => files,
        };
        self.left -= n;
        self.next_at = self.draw_gap(now);
        Arrival { site, demand, pick }
    }

    fn shift(&self, now: Time) -> u64 {
        self.churn.map_or(0, |(every, shift)| (now.as_nanos() / every.as_nanos()).wrapping_mul(shift))
    }

    fn demand(&mut self, now: Time, site: u32) -> Demand {
        let n = self.catalog.objects;
        for f in &self.flashes {
            if now >= f.start
                && now < f.end
                && (f.sites.is_empty() || f.sites.contains(&site))
                && self.rng.random_range(0.0..1.0) < f.share
            {
                let k = self.rng.random_range(0..f.objects);
                let index = match f.namespace {
                    Some(ns) => self.catalog.nth_of_namespace(ns, f.first, k),
                    None => f.first + k,
                };
                return Demand::Object(index);
            }
        }
        if let Some(ingest) = self.ingest {
            let published = (now.as_secs_f64() * ingest.rate).floor() as u64;
            if published > 0 && self.rng.random_range(0.0..1.0) < ingest.share {
                let k = self.rng.random_range(0..published.min(ingest.recent));
                return Demand::Object(INGESTED + published - 1 - k);
            }
        }
        let shift = self.shift(now);
        if self.rng.random_range(0.0..1.0) < self.job_probability {
            let k = self.catalog.dataset_files;
            let rank = self.datasets_zipf.sample(&mut self.rng) as u64 - 1;
            let dataset = (rank + shift / k) % self.catalog.datasets();
            let in_dataset = (n - dataset * k).min(k);
            let files = self.job_files.min(in_dataset).min(self.left);
            let first = dataset * k + self.rng.random_range(0..=in_dataset - files);
            return Demand::Job { first, files };
        }
        if self.rng.random_range(0.0..1.0) < self.one_timers {
            self.next_one_timer += 1;
            return Demand::Object(self.next_one_timer - 1);
        }
        let rank = self.objects_zipf.sample(&mut self.rng) as u64 - 1;
        Demand::Object((rank + shift) % n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(ingest: &str) -> Workload {
        let text = format!(
            "name = \"t\"\n[topology.generate]\nt1 = 1\nt2 = 2\n[[namespace]]\nname = \"a\"\norigins = [\"T0\"]\n\
             [workload]\nrequests = 20000\nduration = \"10h\"\nobjects = 1000\n{ingest}"
        );
        let scenario = crate::scenario::parse(std::path::Path::new("t.toml"), &text, &[]).unwrap();
        let topo = crate::generate::build(&scenario.topology, &scenario.workload.tier_weights, 1).unwrap();
        Workload::new(&scenario.workload, &topo, &["a".to_string()], 1).unwrap()
    }

    #[test]
    fn requests_for_fresh_data_ask_for_published_files_only_and_at_the_share_given() {
        // 360 files an hour: file k is published at 10 k seconds.
        let mut w = workload("[workload.ingest]\nfiles_per_hour = 360\nshare = 0.25\nrecent = 5\n");
        let (mut fresh, mut single) = (0u64, 0u64);
        while let Some(now) = w.next_time() {
            let Arrival { demand, .. } = w.take(now);
            let Demand::Object(index) = demand else { continue };
            single += 1;
            if index < INGESTED {
                assert!(index < 1000, "a catalog object");
                continue;
            }
            fresh += 1;
            let k = index - INGESTED;
            let published = (now.as_secs_f64() / 10.0).floor() as u64;
            assert!(k < published, "file {k} asked at {now:?}, before it was published");
            assert!(k + 5 >= published, "file {k} is not among the newest 5 of {published}");
        }
        let share = fresh as f64 / single as f64;
        assert!((share - 0.25).abs() < 0.02, "share of fresh requests {share}");
        // Without ingest the same seed asks for catalog objects only.
        let mut plain = workload("");
        while let Some(now) = plain.next_time() {
            if let Demand::Object(index) = plain.take(now).demand {
                assert!(index < INGESTED);
            }
        }
    }
}
