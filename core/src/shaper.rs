//! Bandwidth quotas: a namespace's egress from a cache to its clients is a token bucket of
//! `rate` refilled up to `burst` bytes, drained in arrival order (the generic cell rate
//! algorithm, "virtual scheduling" form, with a cost per request of its size in bytes).
//!
//! A request of `size` bytes arriving at `now` is, per [`Shaper::admit`]:
//!
//! - **admitted now** if the requests before it have left the bucket at least `burst` bytes
//!   of room: its first bytes go at once (as many as the bucket holds), the rest at `rate`;
//! - **delayed** until the bucket has drained enough, if that is at most `max_delay` away:
//!   its headers wait until then, its bytes then leave at `rate`;
//! - **refused** otherwise, with the time after which a retry would be admitted (HTTP 503
//!   with `Retry-After`).
//!
//! So a namespace never sends more than `burst + rate × t` bytes in any window of length `t`,
//! and a client never waits more than `max_delay` before its first byte. Requests are served
//! in arrival order, not side by side: a small file waits behind a big one ahead of it (the
//! delay bound caps how long). Both drivers follow the [`Pace`] the core hands out: reef-node
//! releases each chunk of the body at [`Pace::release`]; reef-sim ends the download at the
//! later of the client's own pace and [`Pace::end`].

use crate::units::{BitRate, Duration, Time};
use serde::{Deserialize, Serialize};

/// A namespace's egress limit in one cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub rate: BitRate,
    /// Bytes that may go at once after the namespace was idle.
    pub burst: u64,
    /// Longest wait before a response starts; a request that would wait longer is refused.
    pub max_delay: Duration,
}

impl RateLimit {
    pub fn validate(&self) -> Result<(), String> {
        if self.rate.0 == 0 {
            return Err("`rate` must be more than 0".into());
        }
        Ok(())
    }
}

/// When a response's bytes may leave: byte `offset` at [`Pace::release`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pace {
    /// When the response starts (its headers and the bytes covered by `credit`).
    pub start: Time,
    /// The bucket's bytes at `start`, as the time the rate takes to send them.
    credit: Duration,
    rate: BitRate,
    size: u64,
}

impl Pace {
    /// The earliest time the first `offset` bytes may all have left.
    pub fn release(&self, offset: u64) -> Time {
        let due = self.rate.transfer_time(offset.min(self.size));
        self.start + due.saturating_sub(self.credit)
    }

    /// When the last byte may leave.
    pub fn end(&self) -> Time {
        self.release(self.size)
    }

    pub fn rate(&self) -> BitRate {
        self.rate
    }
}

/// The decision for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Send at this pace (`start` is now, or later: delayed).
    Paced(Pace),
    /// Refused: a retry after this long would be admitted (if nothing else came first).
    Refused { retry_after: Duration },
}

/// One namespace's bucket in one cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shaper {
    limit: RateLimit,
    /// When the bucket will be full again after everything admitted so far (the "theoretical
    /// arrival time"); at or before now, it is full.
    full_at: Time,
}

impl Shaper {
    pub fn new(limit: RateLimit) -> Shaper {
        Shaper { limit, full_at: Time::ZERO }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Changes the limit; what was admitted under the old one stays admitted.
    pub fn set_limit(&mut self, limit: RateLimit) {
        self.limit = limit;
    }

    /// Admits, delays or refuses a response of `size` bytes at `now` (see the module).
    pub fn admit(&mut self, now: Time, size: u64) -> Admission {
        let RateLimit { rate, burst, max_delay } = self.limit;
        // `due`: when what is already admitted has drained at `rate`; the bucket holds `burst`
        // bytes' worth of time (`tolerance`) more, so a response may start that much earlier.
        let due = self.full_at.max(now);
        let tolerance = rate.transfer_time(burst);
        let start = now.max(Time(due.0.saturating_sub(tolerance.0)));
        let wait = start - now;
        if wait > max_delay {
            return Admission::Refused { retry_after: wait.saturating_sub(max_delay) };
        }
        self.full_at = due + rate.transfer_time(size);
        // At `start` the bucket holds `start - (due - tolerance)` of sending time.
        let credit = Duration((start.0 + tolerance.0).saturating_sub(due.0));
        Admission::Paced(Pace { start, credit, rate, size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 8 Mbit/s is 1 MB/s: one byte per microsecond, so times below are byte counts.
    fn limit(burst: u64, max_delay_ms: u64) -> RateLimit {
        RateLimit { rate: BitRate(8_000_000), burst, max_delay: Duration::from_millis(max_delay_ms) }
    }
    fn us(n: u64) -> Time {
        Time(n * 1_000)
    }
    fn paced(a: Admission) -> Pace {
        match a {
            Admission::Paced(p) => p,
            Admission::Refused { .. } => panic!("refused"),
        }
    }

    #[test]
    fn an_idle_bucket_sends_its_burst_at_once_then_the_rest_at_the_rate() {
        let mut s = Shaper::new(limit(100_000, 0));
        let p = paced(s.admit(us(5_000_000), 300_000));
        assert_eq!(p.start, us(5_000_000));
        assert_eq!(p.release(100_000), us(5_000_000), "the burst goes at once");
        assert_eq!(p.release(150_000), us(5_050_000));
        assert_eq!(p.end(), us(5_200_000), "300 kB less the 100 kB burst at 1 MB/s");
    }

    #[test]
    fn requests_queue_in_arrival_order_and_wait_at_most_the_bound() {
        let mut s = Shaper::new(limit(0, 1_000));
        let a = paced(s.admit(us(0), 600_000));
        assert_eq!((a.start, a.end()), (us(0), us(600_000)));
        // Arrives at 0.1 s: waits for the first to drain (0.5 s).
        let b = paced(s.admit(us(100_000), 600_000));
        assert_eq!((b.start, b.end()), (us(600_000), us(1_200_000)));
        // At 0.1 s the queue ahead drains at 1.2 s: 1.1 s away, over the 1 s bound by 0.1 s.
        assert_eq!(s.admit(us(100_000), 1), Admission::Refused { retry_after: Duration::from_millis(100) });
        // Retrying after that is admitted, with the whole bound to wait.
        let c = paced(s.admit(us(200_000), 1_000));
        assert_eq!((c.start, c.end()), (us(1_200_000), us(1_201_000)));
    }

    #[test]
    fn a_refill_restores_the_burst_in_proportion_to_idle_time() {
        let mut s = Shaper::new(limit(100_000, 10_000));
        let _ = paced(s.admit(us(0), 100_000)); // the whole burst: full again at 0.1 s
        let p = paced(s.admit(us(40_000), 100_000)); // 40 kB back in the bucket
        assert_eq!(p.start, us(40_000));
        assert_eq!(p.release(40_000), us(40_000));
        assert_eq!(p.end(), us(100_000), "40 kB at once, 60 kB at 1 MB/s");
        // Over any window since the start: at most burst + rate × t bytes.
        let sent_by_end = 200_000u64;
        let window = p.end() - Time::ZERO;
        assert!(sent_by_end <= 100_000 + window.as_nanos() / 1_000);
    }
}
