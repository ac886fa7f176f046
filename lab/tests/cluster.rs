//! Real reef-node processes in emulated sites (root, iproute2, curl): a Tier-0 origin, a
//! Tier-1 and a Tier-2 site with a cache each, and a director, laid out as reef-sim lays out
//! the scenario. A client in the Tier-2 site reads through its site cache: the first read comes
//! from the origin across two shaped links, the second is a hit.

use reef_lab::cluster::{Cluster, client, reef_node_beside_me};
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
[workload]
requests = 10
duration = "1min"
objects = 10
"#;

#[test]
fn a_client_in_a_tier2_site_reads_through_its_cache() {
    let Some(reef_node) = reef_node_beside_me() else {
        panic!("reef-node is not built next to this test (cargo test --workspace builds it)");
    };
    let scenario = reef_sim::scenario::parse(Path::new("lab.toml"), SCENARIO, &[]).unwrap();
    let topo = reef_sim::generate::build(&scenario.topology, &scenario.workload.tier_weights, 1).unwrap();
    let layout = reef_sim::layout::Layout::new(&topo, &scenario.namespaces).unwrap();
    let plan = Plan::of_topology(&topo);
    let prefix = format!("rc{}", std::process::id() % 10_000);
    let net = Network::create(&prefix, plan.sites.len(), &plan.links, |a, b| plan.next_hop[a][b]).unwrap();
    let dir = tempfile_dir();
    let cluster = Cluster::start(&net, &topo, &layout, &reef_node, Path::new(&dir)).unwrap();
    let body: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(cluster.exports[0].join("f.bin"), &body).unwrap();
    let t2 = plan.sites.iter().position(|s| s == "T2").unwrap();
    let cache = layout.site_cache[t2] as usize;
    let url = format!("{}/atlas/f.bin", cluster.urls[cache]);
    for expected in ["detail=origin", "; hit"] {
        let out = client(&net, t2, "curl").args(["-s", "-D", "-", "-o", &format!("{dir}/got"), &url]).output().unwrap();
        let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains(expected), "{expected}: {head}");
        assert!(std::fs::read(format!("{dir}/got")).unwrap() == body);
    }
    drop(cluster);
    drop(net);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir() -> String {
    let dir = std::env::temp_dir().join(format!("reef-lab-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.display().to_string()
}
