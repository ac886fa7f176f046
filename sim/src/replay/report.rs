//! The human-readable table of `reef-sim replay`.

use super::PairResult;
use reef_core::units::format_size;
use std::fmt::Write;

pub(super) fn table(results: &[PairResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>12} {:>12} {:>11} {:>11} {:>10} {:>12}",
        "policy", "cache size", "requests", "obj. miss", "byte miss", "Mreq/s", "index B/obj"
    );
    for r in results {
        let _ = writeln!(
            out,
            "{:<16} {:>12} {:>12} {:>11.4} {:>11.4} {:>10.2} {:>12.1}",
            match r.sampling_rate {
                Some(rate) => format!("{}~shards {}", r.policy.name(), rate),
                None => r.policy.name().to_string(),
            },
            format_size(r.cache_size),
            r.requests,
            r.object_miss_ratio,
            r.byte_miss_ratio,
            r.requests_per_second / 1e6,
            r.index_bytes_per_object,
        );
    }
    out
}
