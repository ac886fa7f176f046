//! Real reef-node processes in emulated sites (root, iproute2, curl): a Tier-0 origin, a
//! Tier-1 and a Tier-2 site with a cache each, and a director, laid out as reef-sim lays out
//! the scenario. A client in the Tier-2 site reads through its site cache: the first read comes
//! from the origin across two shaped links with their latency (relays), the second is a hit.

use reef_lab::cluster::{Cluster, Deployment, binary_beside_me};
use reef_lab::netns::Network;
use reef_lab::plan::Plan;
use std::path::Path;

const SCENARIO: &str = r#"
name = "lab"
[topology]
[[topology.site]]
name = "T0"
tier = "T0"
region = "eu"
cache = "1GB"
[[topology.site]]
name = "T1"
tier = "T1"
region = "eu"
cache = "1GB"
[[topology.site]]
name = "T2"
tier = "T2"
region = "eu"
cache = "1GB"
[[topology.link]]
a = "T0"
b = "T1"
bandwidth = "200Mbit/s"
latency = "5ms"
[[topology.link]]
a = "T1"
b = "T2"
bandwidth = "100Mbit/s"
latency = "5ms"
[[namespace]]
name = "atlas"
# Written into every node's file: a node that cannot read it does not start.
quota = { share = 0.5, max_objects = 1000 }
[workload]
requests = 10
duration = "1min"
objects = 10
"#;

#[test]
fn a_client_in_a_tier2_site_reads_through_its_cache() {
    let reef_node = binary_beside_me("reef-node").expect("reef-node built next to this test (cargo test --workspace)");
    let reef_lab = std::path::PathBuf::from(env!("CARGO_BIN_EXE_reef-lab"));
    let path = Path::new("lab.toml");
    let scenario = reef_sim::scenario::parse(path, SCENARIO, &[]).unwrap();
    let policy = reef_sim::scenario::section_of(path, SCENARIO, &[], "policy").unwrap();
    let d = Deployment::of(&scenario, 1, policy).unwrap();
    let plan = Plan::of_topology(&d.topo);
    let prefix = format!("rc{}", std::process::id() % 10_000);
    let net = Network::create(&prefix, plan.sites.len(), &plan.links, |a, b| plan.next_hop[a][b]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().display().to_string();
    let cluster = Cluster::start(&net, &d, (&reef_node, &reef_lab), tmp.path(), &Default::default()).unwrap();
    let layout = &d.layout;
    let body: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(cluster.exports[0].join("f.bin"), &body).unwrap();
    let t2 = plan.sites.iter().position(|s| s == "T2").unwrap();
    let cache = layout.site_cache[t2] as usize;
    let url = format!("{}/atlas/f.bin", cluster.urls[cache]);
    let mut first_bytes = Vec::new();
    for expected in ["detail=origin", "; hit"] {
        let out = net
            .command(t2, "curl")
            .args(["-s", "-D", "-", "-o", &format!("{dir}/got"), "-w", "ttfb=%{time_starttransfer}\n", &url])
            .output()
            .unwrap();
        let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
        let ttfb: f64 = head.rsplit("ttfb=").next().unwrap().trim().parse().unwrap();
        first_bytes.push(ttfb);
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains(expected), "{expected}: {head}");
        assert!(std::fs::read(format!("{dir}/got")).unwrap() == body);
    }
    // The miss crossed T2 - T1 - T0 and back: at least one round trip of the route (2 x 10 ms
    // one way) before its first byte, however fast the machine; the hit crossed nothing.
    eprintln!("first byte: miss {:.1} ms, hit {:.1} ms", first_bytes[0] * 1e3, first_bytes[1] * 1e3);
    assert!(first_bytes[0] >= 0.020, "the miss did not pay the route's latency: {first_bytes:?}");
}
