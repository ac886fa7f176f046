//! Private namespaces in the simulator: the node a client asks applies the core's access
//! decision to its token. Valid tokens change nothing (one shared copy per object: the token
//! is not part of the cache key); refused requests are counted per tier and by reason.

use reef_sim::run::{Summary, simulate};
use reef_sim::scenario::parse;
use std::path::Path;

const BASE: &str = r#"
name = "private"

[topology]
[[topology.site]]
name = "T0"
tier = "T0"
region = "eu"
cache = "1TB"
weight = 0.0

[[topology.site]]
name = "T2a"
tier = "T2"
region = "eu"
cache = "2TB"

[[topology.site]]
name = "T2b"
tier = "T2"
region = "eu"
cache = "2TB"

[[topology.link]]
a = "T0"
b = "T2a"
bandwidth = "10Gbit/s"
latency = "10ms"

[[topology.link]]
a = "T0"
b = "T2b"
bandwidth = "10Gbit/s"
latency = "10ms"

[[namespace]]
name = "atlas"

[[namespace]]
name = "cms"
PRIVATE

[workload]
requests = 20000
duration = "1h"
objects = 5000
dataset_files = 50
size = { dist = "fixed", value = "100MB" }
zipf = 0.9
INVALID
"#;

fn run(private: bool, invalid: f64) -> Summary {
    let text = BASE
        .replace("PRIVATE", if private { "private = true" } else { "" })
        .replace("INVALID", &format!("invalid_tokens = {invalid}"));
    let scenario = parse(Path::new("private.toml"), &text, &[]).unwrap_or_else(|e| panic!("{e}"));
    let s = simulate(&scenario, 5, &mut |_| {}).unwrap().summary;
    assert_eq!(s.completed + s.failed, s.requests);
    s
}

fn json(s: &Summary) -> String {
    serde_json::to_string(s).unwrap()
}

#[test]
fn valid_tokens_change_nothing_one_copy_serves_everyone() {
    // Every client holds a granting token: the run is the public one, bit for bit.
    assert_eq!(json(&run(true, 0.0)), json(&run(false, 0.0)));
    // A public namespace ignores the token share entirely.
    assert_eq!(json(&run(false, 0.3)), json(&run(false, 0.0)));
}

#[test]
fn refused_requests_are_counted_per_tier_and_by_reason() {
    let s = run(true, 0.3);
    assert!(s.denied > 0);
    assert_eq!(s.failed, s.denied, "nothing but the refusals fails here");
    let per_tier: u64 = s.tiers.values().map(|t| t.denied).sum();
    assert_eq!(per_tier, s.denied);
    let by_reason: u64 = s.failures.iter().filter(|(r, _)| r.starts_with("denied_")).map(|(_, n)| n).sum();
    assert_eq!(by_reason, s.denied);
    // Three kinds of bad token, each refused for its own reason.
    for reason in ["denied_no_token", "denied_expired", "denied_no_scope"] {
        assert!(s.failures.get(reason).copied().unwrap_or(0) > 0, "{reason}: {:?}", s.failures);
    }
    // With every token bad, every request for `cms` is refused: that counts them (arrivals do
    // not depend on outcomes here: no jobs). Each carries a bad token with probability 0.3,
    // independently: the refusals are binomial(n, 0.3); allow 4 standard deviations.
    let n = run(true, 1.0).denied as f64;
    assert!(n > 1000.0, "{n} requests for cms");
    let (mean, sd) = (0.3 * n, (n * 0.3 * 0.7).sqrt());
    assert!((s.denied as f64 - mean).abs() < 4.0 * sd, "denied {} vs {mean} ± {sd}", s.denied);
}
