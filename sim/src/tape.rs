//! An archive's tape library behind an origin: which files sit on tape, the drives that recall
//! them, and the disk buffer recalled files are read from.
//!
//! The model, stated so that results can be checked by hand:
//! - A share of a namespace's files (`share`, by a hash of the file) has its only copy at the
//!   origin on tape; the rest is on disk and is served at once. A tape file belongs to one of
//!   `tapes` cartridges: its dataset's (files written together share a cartridge) when the
//!   dataset is known, else one picked by its hash.
//! - A read of a tape file is served at once if the file is in the buffer (a hit, which counts
//!   as an access in the buffer's LRU order). Otherwise it is staging: a recall is queued
//!   unless one for the file is queued or running already (reads of a file being recalled
//!   join it).
//! - A recall holds one drive for `seek + size / rate`, plus `mount` if the drive does not hold
//!   the file's cartridge (unloading the previous one is part of `mount`). Drives are not
//!   shared between recalls.
//! - Grouping: a drive that finishes a recall next takes the oldest queued recall from the
//!   cartridge it holds; if none, the oldest queued recall whose cartridge no other drive is
//!   reading (that one will be read by the drive that holds it). A new recall starts at once on
//!   an idle drive: one holding its cartridge if any, else the lowest-numbered idle drive.
//! - A finished recall puts the file into the buffer (LRU, `buffer` bytes; a file larger than
//!   the whole buffer is not kept, and is recalled again by its next read). Readers learn it is
//!   there when they ask again.
//! - Queue wait: from when a recall is queued to when a drive starts on it. Drive busy time:
//!   the sum of the recalls' times (mounts included), counted when each recall ends.

use crate::workload::mix64;
use reef_core::cache::{AccessOutcome, Cache, CacheConfig, PolicyKind};
use reef_core::{Duration, NamespaceId, ObjectId, Time};
use std::collections::{BTreeSet, VecDeque};

/// A library's parameters (`[namespace.tape]` in a scenario).
#[derive(Clone, Debug, PartialEq)]
pub struct TapeParams {
    /// Share of files on tape, 0 to 1.
    pub share: f64,
    pub drives: u32,
    pub tapes: u32,
    pub mount: Duration,
    pub seek: Duration,
    /// Read rate of one drive, bytes per second.
    pub rate: f64,
    /// The disk buffer in front of the drives, bytes.
    pub buffer: u64,
    /// The delay the origin asks a reader to wait before asking again while it stages.
    pub poll: Duration,
}

/// What the library did, over the whole run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TapeStats {
    /// Reads of tape files (disk files are not counted): a reader's first ask only.
    pub reads: u64,
    /// Of those, served from the buffer at once, without waiting for a recall.
    pub buffer_hits: u64,
    /// Asks answered "staging" (a reader's first ask and each ask again while it waits).
    pub staging: u64,
    /// Asks again by readers told to wait (answered "staging" again, or served).
    pub polls: u64,
    pub recalls: u64,
    pub mounts: u64,
    pub busy: Duration,
    pub queue_wait: Duration,
    pub max_queue_wait: Duration,
}

/// The counters of the time bucket (of `width`) of `t`.
fn bucket_of(buckets: &mut Vec<TapeStats>, width: Duration, t: Time) -> &mut TapeStats {
    let b = usize::try_from(t.0 / width.0).unwrap_or(usize::MAX);
    if buckets.len() <= b {
        buckets.resize(b + 1, TapeStats::default());
    }
    &mut buckets[b]
}

#[derive(Clone, Copy, Debug)]
struct Recall {
    object: ObjectId,
    size: u64,
    tape: u32,
    queued: Time,
}

#[derive(Clone, Copy, Debug, Default)]
struct Drive {
    /// The cartridge loaded, if any.
    holds: Option<u32>,
    /// The recall running and when it ends, and how long it took.
    busy: Option<(Recall, Time, Duration)>,
}

#[derive(Debug)]
pub struct TapeLibrary {
    params: TapeParams,
    salt: u64,
    drives: Vec<Drive>,
    queue: VecDeque<Recall>,
    /// Files queued or on a drive.
    recalling: BTreeSet<ObjectId>,
    buffer: Cache,
    pub stats: TapeStats,
    /// The same counts by time bucket: reads and buffer hits when asked, a recall's queue
    /// wait and mount when it starts, the recall and its drive time when it ends.
    pub buckets: Vec<TapeStats>,
    bucket: Duration,
    /// When the world last scheduled a wake-up for this library.
    pub scheduled: Option<Time>,
}

/// The answer to a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// Served now: the file is on disk or in the buffer.
    Online,
    /// Being recalled: ask again later.
    Staging,
}

impl TapeLibrary {
    pub fn new(params: TapeParams, salt: u64, bucket: Duration) -> TapeLibrary {
        let buffer = Cache::new(CacheConfig::new(params.buffer, PolicyKind::Lru));
        TapeLibrary {
            drives: vec![Drive::default(); params.drives.max(1) as usize],
            params,
            salt,
            queue: VecDeque::new(),
            recalling: BTreeSet::new(),
            buffer,
            stats: TapeStats::default(),
            buckets: Vec::new(),
            bucket: Duration(bucket.0.max(1)),
            scheduled: None,
        }
    }

    pub fn params(&self) -> &TapeParams {
        &self.params
    }

    /// Recalls that ended in each time bucket.
    pub fn recalls_by_bucket(&self) -> Vec<u64> {
        self.buckets.iter().map(|b| b.recalls).collect()
    }

    /// Whether `object`'s copy at the origin is on tape.
    pub fn on_tape(&self, object: ObjectId) -> bool {
        let h = mix64(object.0 ^ self.salt);
        ((h >> 11) as f64 / (1u64 << 53) as f64) < self.params.share
    }

    /// The cartridge of a tape file: its dataset's if known.
    pub fn tape_of(&self, object: ObjectId, dataset: Option<u64>) -> u32 {
        let key = dataset.map_or(object.0, |d| mix64(d ^ self.salt.rotate_left(17)));
        (mix64(key ^ self.salt) % u64::from(self.params.tapes.max(1))) as u32
    }

    /// A read of `object` (`size` bytes, on cartridge `tape` if it is a tape file) at `now`;
    /// `again`: by a reader that was told to wait.
    pub fn read(&mut self, now: Time, object: ObjectId, size: u64, tape: u32, again: bool) -> Read {
        if !self.on_tape(object) {
            return Read::Online;
        }
        let hit = self.buffer.get(object);
        for s in [&mut self.stats, bucket_of(&mut self.buckets, self.bucket, now)] {
            if again {
                s.polls += 1;
            } else {
                s.reads += 1;
            }
            s.buffer_hits += u64::from(hit && !again);
            s.staging += u64::from(!hit);
        }
        if hit {
            return Read::Online;
        }
        if self.recalling.insert(object) {
            self.queue.push_back(Recall { object, size, tape, queued: now });
            self.dispatch(now);
        }
        Read::Staging
    }

    /// When the next running recall ends.
    pub fn next_done(&self) -> Option<Time> {
        self.drives.iter().filter_map(|d| d.busy.map(|b| b.1)).min()
    }

    /// Ends every recall due by `now` (the file goes into the buffer) and starts the next ones.
    /// Calling it when nothing is due does nothing.
    pub fn finish_due(&mut self, now: Time) {
        while let Some((i, end)) = self
            .drives
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.busy.map(|b| (i, b.1)))
            .filter(|&(_, e)| e <= now)
            .min_by_key(|&(i, e)| (e, i))
        {
            let (recall, _, took) = self.drives[i].busy.take().expect("busy drive");
            self.recalling.remove(&recall.object);
            for s in [&mut self.stats, bucket_of(&mut self.buckets, self.bucket, end)] {
                s.recalls += 1;
                s.busy = s.busy + took;
            }
            let mut evicted = Vec::new();
            let _: AccessOutcome =
                self.buffer.access(recall.object, recall.size, NamespaceId(0), reef_core::cache::NEVER, &mut evicted);
            // The drive keeps its cartridge: a queued recall from it goes first.
            if let Some(k) = self.queue.iter().position(|r| Some(r.tape) == self.drives[i].holds) {
                let next = self.queue.remove(k).expect("found above");
                self.start(end, i, next);
            }
            self.dispatch(end);
        }
    }

    /// Starts queued recalls on idle drives (see the module's grouping rule).
    fn dispatch(&mut self, now: Time) {
        let mut k = 0;
        while k < self.queue.len() && self.drives.iter().any(|d| d.busy.is_none()) {
            let tape = self.queue[k].tape;
            let read_by_busy = self.drives.iter().any(|d| d.busy.is_some() && d.holds == Some(tape));
            if read_by_busy {
                k += 1;
                continue;
            }
            let idle = |d: &Drive| d.busy.is_none();
            let holding = self.drives.iter().position(|d| idle(d) && d.holds == Some(tape));
            let drive = holding.or_else(|| self.drives.iter().position(idle)).expect("an idle drive");
            let recall = self.queue.remove(k).expect("in range");
            self.start(now, drive, recall);
        }
    }

    fn start(&mut self, now: Time, drive: usize, recall: Recall) {
        let p = &self.params;
        let mount = self.drives[drive].holds != Some(recall.tape);
        let read = Duration::from_secs_f64(recall.size as f64 / p.rate);
        let took = if mount { p.mount } else { Duration::ZERO } + p.seek + read;
        let waited = now.saturating_since(recall.queued);
        for s in [&mut self.stats, bucket_of(&mut self.buckets, self.bucket, now)] {
            s.mounts += u64::from(mount);
            s.queue_wait = s.queue_wait + waited;
            s.max_queue_wait = s.max_queue_wait.max(waited);
        }
        self.drives[drive] = Drive { holds: Some(recall.tape), busy: Some((recall, now + took, took)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1_000_000_000;

    /// One drive; a mount takes 60 s, a seek 10 s, and a 1 GB file 10 s at 100 MB/s.
    fn library(drives: u32, buffer: u64) -> TapeLibrary {
        let params = TapeParams {
            share: 1.0,
            drives,
            tapes: 10,
            mount: Duration::from_secs(60),
            seek: Duration::from_secs(10),
            rate: 100e6,
            buffer,
            poll: Duration::from_secs(30),
        };
        TapeLibrary::new(params, 1, Duration::from_secs(100))
    }

    fn at(s: u64) -> Time {
        Time::ZERO + Duration::from_secs(s)
    }

    /// Runs the library to `until`, recording each recall's end: (time, file).
    fn run(lib: &mut TapeLibrary, until: Time) -> Vec<(u64, u64)> {
        let mut ends = Vec::new();
        while let Some(t) = lib.next_done().filter(|&t| t <= until) {
            let before: BTreeSet<ObjectId> = lib.recalling.clone();
            lib.finish_due(t);
            for o in before.difference(&lib.recalling) {
                ends.push((t.as_secs_f64() as u64, o.0));
            }
        }
        ends
    }

    #[test]
    fn one_drive_reads_its_cartridge_before_mounting_the_next() {
        let mut lib = library(1, 10 * GB);
        // A (cartridge 1), B (cartridge 2), C (cartridge 1), all asked at 0.
        for (file, tape) in [(1, 1), (2, 2), (3, 1)] {
            assert_eq!(lib.read(at(0), ObjectId(file), GB, tape, false), Read::Staging);
        }
        // A: mount + seek + read = 80 s. C next, from the mounted cartridge: 80 + 10 + 10 = 100.
        // Then B: 100 + 60 + 10 + 10 = 180.
        assert_eq!(run(&mut lib, at(1000)), [(80, 1), (100, 3), (180, 2)]);
        let s = &lib.stats;
        assert_eq!((s.recalls, s.mounts, s.reads, s.staging, s.buffer_hits), (3, 2, 3, 3, 0));
        assert_eq!(s.busy, Duration::from_secs(180));
        // Waits: A 0 s, C 80 s, B 100 s.
        assert_eq!(s.queue_wait, Duration::from_secs(180));
        assert_eq!(s.max_queue_wait, Duration::from_secs(100));
        // Recalls by 100 s bucket: A at 80; C at 100 and B at 180 in the second.
        assert_eq!(lib.recalls_by_bucket(), [1, 2]);
        // Per bucket: a wait and a mount count where the recall starts (A at 0 and C at 80 s in
        // the first, B at 100 s with its mount in the second); drive time where it ends.
        let b = &lib.buckets;
        assert_eq!((b[0].mounts, b[1].mounts), (1, 1));
        assert_eq!((b[0].queue_wait, b[1].queue_wait), (Duration::from_secs(80), Duration::from_secs(100)));
        assert_eq!((b[0].busy, b[1].busy), (Duration::from_secs(80), Duration::from_secs(100)));
        assert_eq!((b[0].reads, b[1].reads), (3, 0));
        // All three are in the buffer now.
        for file in 1..=3 {
            assert_eq!(lib.read(at(200), ObjectId(file), GB, 0, false), Read::Online);
        }
        assert_eq!((lib.stats.reads, lib.stats.buffer_hits), (6, 3));
    }

    #[test]
    fn reads_of_a_file_being_recalled_join_it_and_later_ones_queue() {
        let mut lib = library(1, 10 * GB);
        lib.read(at(0), ObjectId(1), GB, 1, false);
        // Asked again during its recall: no second recall.
        assert_eq!(lib.read(at(30), ObjectId(1), GB, 1, true), Read::Staging);
        // A 2 GB file of another cartridge at 40 s waits for the drive: it starts at 80 s with
        // a mount and ends at 80 + 60 + 10 + 20 = 170 s; its wait is 40 s.
        lib.read(at(40), ObjectId(2), 2 * GB, 2, false);
        assert_eq!(run(&mut lib, at(1000)), [(80, 1), (170, 2)]);
        assert_eq!(lib.stats.recalls, 2);
        assert_eq!((lib.stats.reads, lib.stats.polls, lib.stats.staging), (2, 1, 3));
        // Its reader asks again once it is in: served, and not counted as a new read or a hit.
        assert_eq!(lib.read(at(90), ObjectId(1), GB, 1, true), Read::Online);
        assert_eq!((lib.stats.reads, lib.stats.polls, lib.stats.buffer_hits), (2, 2, 0));
        assert_eq!(lib.stats.queue_wait, Duration::from_secs(40));
    }

    #[test]
    fn idle_drives_take_recalls_at_once_and_a_held_cartridge_is_not_mounted_twice() {
        let mut lib = library(2, 10 * GB);
        // Two cartridges at once on two drives: both end at 80 s.
        lib.read(at(0), ObjectId(1), GB, 1, false);
        lib.read(at(0), ObjectId(2), GB, 2, false);
        // A third file of cartridge 1 at 10 s: drive 0 reads cartridge 1, so it waits for it
        // (and is not mounted on another drive): 80 + 10 + 10 = 100 s.
        lib.read(at(10), ObjectId(3), GB, 1, false);
        assert_eq!(run(&mut lib, at(90)), [(80, 1), (80, 2)]);
        // At 150 s drive 1 (idle, holding cartridge 2) takes a file of cartridge 2 without a
        // mount: 150 + 10 + 10 = 170 s.
        lib.read(at(150), ObjectId(4), GB, 2, false);
        assert_eq!(run(&mut lib, at(1000)), [(100, 3), (170, 4)]);
        assert_eq!(lib.stats.mounts, 2);
        assert_eq!(lib.stats.busy, Duration::from_secs(80 + 80 + 20 + 20));
    }

    #[test]
    fn the_buffer_keeps_the_most_recent_recalls_and_disk_files_are_served_at_once() {
        let mut lib = library(1, 2 * GB);
        for (file, t) in [(1, 0), (2, 100), (3, 200)] {
            lib.read(at(t), ObjectId(file), GB, file as u32, false);
            run(&mut lib, at(t + 99));
        }
        // A 2 GB buffer holds the last two: file 1 is recalled again.
        assert_eq!(lib.read(at(300), ObjectId(3), GB, 3, false), Read::Online);
        assert_eq!(lib.read(at(300), ObjectId(2), GB, 2, false), Read::Online);
        assert_eq!(lib.read(at(300), ObjectId(1), GB, 1, false), Read::Staging);
        // With no files on tape every read is served at once and none is counted.
        let mut disk = library(1, GB);
        disk.params.share = 0.0;
        assert_eq!(disk.read(at(0), ObjectId(9), GB, 0, false), Read::Online);
        assert_eq!(disk.stats, TapeStats::default());
    }

    #[test]
    fn the_share_on_tape_follows_the_setting() {
        let mut lib = library(1, GB);
        lib.params.share = 0.3;
        let on = (0..100_000u64).filter(|&i| lib.on_tape(ObjectId(mix64(i)))).count();
        assert!((29_000..31_000).contains(&on), "{on}");
    }
}
