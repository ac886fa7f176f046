//! What reef-lab relies on from the simulator: objects named as a reef-node names files, a
//! sequential workload (one request in flight at a time, in the open workload's order), a
//! record of every request, and fetches from caches that wait for the origin's block list.

use reef_core::ObjectId;
use reef_sim::world::World;
use std::path::Path;

fn world(extra: &[&str]) -> World {
    let mut overrides: Vec<String> = vec!["workload.requests=400".into()];
    overrides.extend(extra.iter().map(|s| s.to_string()));
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/lab.toml"));
    let s = reef_sim::scenario::load(path, &overrides).unwrap();
    let mut w = World::new(&s, s.seed).unwrap();
    w.record_requests();
    w.run(u64::MAX, &mut |_| {});
    w
}

#[test]
fn objects_have_the_ids_a_node_gives_their_paths() {
    let w = world(&[]);
    let c = w.catalog();
    for r in w.requests() {
        let index = r.index.expect("catalog objects");
        let ns = c.namespace(index);
        assert_eq!(r.object.namespace.0, ns);
        assert_eq!(r.object.id, ObjectId::of(c.namespace_name(ns), &c.path(index)));
    }
    assert_eq!(c.path(45), "d2/f45", "dataset_files = 20");
}

#[test]
fn a_sequential_workload_has_one_request_in_flight_in_the_open_order() {
    let open = world(&[]);
    let seq = world(&["workload.sequential=true"]);
    assert_eq!(seq.requests().len(), 400);
    let mut records = seq.requests().to_vec();
    records.sort_by_key(|r| r.issued);
    for pair in records.windows(2) {
        assert!(pair[1].issued >= pair[0].issued + pair[0].duration, "{pair:?}");
    }
    // The same requests in the same order as the open workload's arrivals (jobs aside, whose
    // files interleave with other arrivals there).
    let objects = |w: &World| {
        let mut r = w.requests().to_vec();
        r.sort_by_key(|r| r.issued);
        r.into_iter().map(|r| r.object.id).collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(objects(&open), objects(&seq));
    assert_eq!(open.stats.all.requests, seq.stats.all.requests);
}

#[test]
fn bytes_from_another_cache_wait_for_the_origins_block_list() {
    // One request at a time: a Tier-2 client (on a worker node) whose bytes come from the site
    // cache over the site's LAN waits at least for its worker node's round trip to the Tier-0
    // origin (2 x 15 ms) for the block list, however small the object.
    let w = world(&["workload.sequential=true"]);
    let t2 = w.topo.sites.iter().position(|s| s.name == "T2").unwrap() as u32;
    let rtt = reef_core::Duration::from_millis(30);
    let lan = w.requests().iter().filter(|r| r.site == t2 && r.source == "site_cache").collect::<Vec<_>>();
    assert!(lan.len() > 5, "{}", lan.len());
    assert!(lan.iter().all(|r| r.duration >= rtt), "{lan:?}");
}

#[test]
fn each_damaged_copy_found_costs_exactly_one_more_origin_transfer() {
    // Caches that hold everything (no eviction), one request at a time: without the fault every
    // origin transfer is a first read; with the Tier-1 cache's store damaged at 100 s, each
    // damaged copy read afterwards is dropped and fetched from the origin once more.
    let big = ["topology.site[1].cache=10GB", "topology.site[2].cache=10GB", "topology.site[2].wn_cache=10GB"];
    let mut base: Vec<&str> = vec!["workload.sequential=true"];
    base.extend(big);
    let clean = world(&base);
    let fault = r#"outage=[{ kind = "corrupt", node = "T1/cache", at = "100s" }]"#;
    let mut faulty = base.clone();
    faulty.push(fault);
    let damaged = world(&faulty);
    assert_eq!(clean.stats.damaged_found, 0);
    assert!(damaged.stats.damaged_found > 5, "{}", damaged.stats.damaged_found);
    assert_eq!(damaged.stats.origin_transfers, clean.stats.origin_transfers + damaged.stats.damaged_found);
    assert_eq!(damaged.stats.all.failed, 0, "a damaged copy is never served, nor a request failed");
}

#[test]
fn in_a_sequential_run_a_fault_waits_for_the_request_in_flight() {
    // A fault that starts while a request is in flight takes effect once it has ended: the
    // request is served as without the fault (reef-lab applies faults between requests).
    let clean = world(&["workload.sequential=true"]);
    let mut records = clean.requests().to_vec();
    records.sort_by_key(|r| r.issued);
    let t2 = clean.topo.sites.iter().position(|s| s.name == "T2").unwrap() as u32;
    // A Tier-2 request served by its site's caches, long enough to put a fault inside it.
    let r = records
        .iter()
        .find(|r| {
            r.site == t2 && r.source == "origin" && r.duration.as_nanos() > 20_000_000 && r.issued.0 > 10_000_000_000
        })
        .expect("a Tier-2 origin read");
    let mid = (r.issued.0 + r.duration.as_nanos() / 2) as f64 / 1e9;
    let outage = format!(r#"outage=[{{ kind = "node", node = "T2/cache", at = "{mid}s", duration = "30s" }}]"#);
    let faulty = world(&["workload.sequential=true", &outage]);
    let same = faulty.requests().iter().find(|q| q.issued == r.issued).expect("the same request");
    assert_eq!((same.source, same.object.id, same.duration), (r.source, r.object.id, r.duration));
    // ... and the fault did happen after it: the run differs from there on.
    assert_ne!(faulty.stats.origin_transfers, clean.stats.origin_transfers);
}
