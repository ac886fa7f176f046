//! Units used everywhere: integer-nanosecond time, byte sizes and bit rates, with parsers for
//! the human forms found in scenario and config files (`10GiB`, `500MB`, `10Gbit/s`, `20s`).

mod text;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};
pub use text::{Parsed, Rate, Size, Span};

/// A point in (virtual or real) time, in integer nanoseconds since an epoch the driver picks.
/// The core never reads a clock: every `handle` call is told what time it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Time(pub u64);

/// A span of time in integer nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Duration(pub u64);

impl Time {
    pub const ZERO: Time = Time(0);
    pub const MAX: Time = Time(u64::MAX);

    pub fn as_nanos(self) -> u64 {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    /// Time elapsed since `earlier`, zero if `earlier` is in the future.
    pub fn saturating_since(self, earlier: Time) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    pub const ZERO: Duration = Duration(0);
    pub const MAX: Duration = Duration(u64::MAX);
    pub const fn from_nanos(n: u64) -> Self {
        Duration(n)
    }
    pub const fn from_micros(us: u64) -> Self {
        Duration(us * 1_000)
    }
    pub const fn from_millis(ms: u64) -> Self {
        Duration(ms * 1_000_000)
    }
    pub const fn from_secs(s: u64) -> Self {
        Duration(s * 1_000_000_000)
    }
    /// Rounds to the nearest nanosecond; negative or NaN inputs give zero.
    pub fn from_secs_f64(s: f64) -> Self {
        if s.is_nan() || s <= 0.0 { Duration(0) } else { Duration((s * 1e9).round().min(u64::MAX as f64) as u64) }
    }
    pub fn as_nanos(self) -> u64 {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// `self - other`, or zero if `other` is longer.
    pub fn saturating_sub(self, other: Duration) -> Duration {
        Duration(self.0.saturating_sub(other.0))
    }
}

/// For drivers that sleep on a real clock (the core itself never does).
impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        std::time::Duration::from_nanos(d.0)
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(d.0))
    }
}
impl AddAssign<Duration> for Time {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}
impl Sub<Time> for Time {
    type Output = Duration;
    fn sub(self, earlier: Time) -> Duration {
        self.saturating_since(earlier)
    }
}
impl Add for Duration {
    type Output = Duration;
    fn add(self, d: Duration) -> Duration {
        Duration(self.0.saturating_add(d.0))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns >= 1_000_000_000 {
            write!(f, "{:.3}s", self.as_secs_f64())
        } else if ns >= 1_000_000 {
            write!(f, "{:.3}ms", self.as_millis_f64())
        } else {
            write!(f, "{ns}ns")
        }
    }
}

/// A link or transfer rate in bits per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BitRate(pub u64);

impl BitRate {
    pub fn bytes_per_sec(self) -> f64 {
        self.0 as f64 / 8.0
    }
    /// Time to move `bytes` at this rate, rounded up to a whole nanosecond.
    pub fn transfer_time(self, bytes: u64) -> Duration {
        if self.0 == 0 {
            return Duration(u64::MAX);
        }
        let ns = (bytes as u128 * 8 * 1_000_000_000).div_ceil(self.0 as u128);
        Duration(ns.min(u64::MAX as u128) as u64)
    }
}

impl fmt::Display for BitRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        if b >= 1e9 {
            write!(f, "{}Gbit/s", b / 1e9)
        } else if b >= 1e6 {
            write!(f, "{}Mbit/s", b / 1e6)
        } else {
            write!(f, "{}bit/s", b)
        }
    }
}

/// Why a human-written quantity could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("empty value: expected a number with an optional unit, e.g. {example}")]
    Empty { example: &'static str },
    #[error("`{input}` does not start with a number (e.g. {example})")]
    NoNumber { input: String, example: &'static str },
    #[error("`{input}`: unknown unit `{unit}`; expected one of {expected}")]
    UnknownUnit { input: String, unit: String, expected: &'static str },
    #[error("`{input}` is too large")]
    Overflow { input: String },
    #[error("`{input}` is negative")]
    Negative { input: String },
}

const SIZE_UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("B", 1),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("PB", 1_000_000_000_000_000),
    ("K", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("PiB", 1 << 50),
];
const SIZE_EXPECTED: &str = "B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB";

/// Rates: bits with `bit/s`, `bps` or `b/s` after a decimal prefix (`K`/`k`, `M`, `G`, `T`),
/// bytes with `B/s` after a decimal or binary prefix (`KB/s`, `KiB/s`, ... `TB/s`, `TiB/s`).
const RATE_UNITS: &[(&str, u64)] = &[
    ("bit/s", 1),
    ("bps", 1),
    ("b/s", 1),
    ("Kbit/s", 1_000),
    ("kbit/s", 1_000),
    ("Kbps", 1_000),
    ("kbps", 1_000),
    ("Kb/s", 1_000),
    ("kb/s", 1_000),
    ("Mbit/s", 1_000_000),
    ("Mbps", 1_000_000),
    ("Mb/s", 1_000_000),
    ("Gbit/s", 1_000_000_000),
    ("Gbps", 1_000_000_000),
    ("Gb/s", 1_000_000_000),
    ("Tbit/s", 1_000_000_000_000),
    ("Tbps", 1_000_000_000_000),
    ("Tb/s", 1_000_000_000_000),
    ("B/s", 8),
    ("KB/s", 8_000),
    ("MB/s", 8_000_000),
    ("GB/s", 8_000_000_000),
    ("TB/s", 8_000_000_000_000),
    ("KiB/s", 8 << 10),
    ("MiB/s", 8 << 20),
    ("GiB/s", 8 << 30),
    ("TiB/s", 8 << 40),
];
const RATE_EXPECTED: &str = "bit/s, Kbit/s, Mbit/s, Gbit/s, Tbit/s (or bps, Kbps, Mbps, Gbps, Tbps, or b/s, Kb/s, \
                             Mb/s, Gb/s, Tb/s), B/s, KB/s, MB/s, GB/s, TB/s, KiB/s, MiB/s, GiB/s, TiB/s";

const DURATION_UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("min", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];
const DURATION_EXPECTED: &str = "ns, us, ms, s, min, h, d";

/// Splits `12.5 GiB` into (12.5, "GiB"), and scales by the unit's factor.
fn parse_scaled(
    input: &str,
    units: &[(&str, u64)],
    expected: &'static str,
    example: &'static str,
    default_unit: Option<u64>,
) -> Result<u64, UnitError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(UnitError::Empty { example });
    }
    if s.starts_with('-') {
        return Err(UnitError::Negative { input: s.to_string() });
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: String = num.chars().filter(|&c| c != '_').collect();
    let unit = unit.trim();
    let value: f64 = num.parse().map_err(|_| UnitError::NoNumber { input: s.to_string(), example })?;
    let factor = if unit.is_empty() {
        match default_unit {
            Some(f) => f,
            None => {
                return Err(UnitError::UnknownUnit { input: s.to_string(), unit: String::new(), expected });
            }
        }
    } else {
        units.iter().find(|(u, _)| *u == unit).map(|&(_, f)| f).ok_or_else(|| UnitError::UnknownUnit {
            input: s.to_string(),
            unit: unit.to_string(),
            expected,
        })?
    };
    // Integers stay exact; fractions go through f64.
    if let Ok(int) = num.parse::<u64>() {
        return int.checked_mul(factor).ok_or(UnitError::Overflow { input: s.to_string() });
    }
    let scaled = value * factor as f64;
    if scaled >= u64::MAX as f64 {
        return Err(UnitError::Overflow { input: s.to_string() });
    }
    Ok(scaled.round() as u64)
}

/// Parses a byte size: `4096`, `500MB`, `10GiB`, `1.5 TB` (decimal and binary units).
pub fn parse_size(input: &str) -> Result<u64, UnitError> {
    parse_scaled(input, SIZE_UNITS, SIZE_EXPECTED, "`10GiB` or `500MB`", Some(1))
}

/// Parses a rate: `10Gbit/s`, `100 Mbps`, `1.25GB/s`. A unit is required: bits and bytes are
/// too easy to confuse.
pub fn parse_rate(input: &str) -> Result<BitRate, UnitError> {
    parse_scaled(input, RATE_UNITS, RATE_EXPECTED, "`10Gbit/s`", None).map(BitRate)
}

/// Parses a duration: `20ms`, `1.5s`, `15min`, `1h`. A unit is required.
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    parse_scaled(input, DURATION_UNITS, DURATION_EXPECTED, "`20ms` or `15min`", None).map(Duration)
}

/// Formats bytes with a binary unit for humans (`1.50 GiB`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{bytes} B") } else { format!("{v:.2} {}", UNITS[i]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size(" 1.5 TB "), Ok(1_500_000_000_000));
        assert_eq!(parse_size("1_000"), Ok(1000));
        assert!(matches!(parse_size("10 GIB"), Err(UnitError::UnknownUnit { .. })));
        assert!(matches!(parse_size("GiB"), Err(UnitError::NoNumber { .. })));
        assert!(matches!(parse_size(""), Err(UnitError::Empty { .. })));
        assert!(matches!(parse_size("-1"), Err(UnitError::Negative { .. })));
        assert!(matches!(parse_size("99999999PiB"), Err(UnitError::Overflow { .. })));
    }

    #[test]
    fn rates_and_durations() {
        assert_eq!(parse_rate("10Gbit/s"), Ok(BitRate(10_000_000_000)));
        assert_eq!(parse_rate("100 Mbps"), Ok(BitRate(100_000_000)));
        assert_eq!(parse_rate("1GB/s"), Ok(BitRate(8_000_000_000)));
        assert!(parse_rate("10").is_err(), "a bare number is ambiguous for a rate");
        assert_eq!(parse_duration("20ms"), Ok(Duration::from_millis(20)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("15min"), Ok(Duration::from_secs(900)));
        let e = parse_duration("3 weeks").unwrap_err().to_string();
        assert!(e.contains("weeks") && e.contains("min"), "{e}");
    }

    #[test]
    fn transfer_time_rounds_up() {
        // 1 GB at 8 Gbit/s is exactly one second.
        assert_eq!(BitRate(8_000_000_000).transfer_time(1_000_000_000), Duration::from_secs(1));
        assert_eq!(BitRate(3).transfer_time(1), Duration(2_666_666_667));
    }
}
