//! The director's DNS face, asked with `dig` (package dnsutils) on a port on 127.0.0.1: answers
//! follow the client's site (its EDNS Client Subnet) and the caches' health.

use crate::common::{Cluster, Options, Spec, cache, director, origin, wait_until};
use std::process::Command;

/// `dig` against the director: (status, answers as (ttl, address)).
fn dig(port: u16, name: &str, kind: &str, subnet: Option<&str>) -> (String, Vec<(u32, String)>) {
    let (status, answers, _) = dig_text(port, name, kind, subnet);
    (status, answers)
}

fn dig_text(port: u16, name: &str, kind: &str, subnet: Option<&str>) -> (String, Vec<(u32, String)>, String) {
    let mut args = vec![format!("@127.0.0.1"), format!("-p{port}"), name.to_string(), kind.to_string()];
    args.extend(["+tries=1", "+time=2", "+norecurse"].map(String::from));
    if let Some(s) = subnet {
        args.push(format!("+subnet={s}"));
    }
    let out = Command::new("dig").args(&args).output().expect("dig (package dnsutils)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let status = text
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .map(|s| s.split(',').next().unwrap_or("").to_string())
        .unwrap_or_else(|| format!("no answer: {text}"));
    let mut answers = Vec::new();
    let mut in_answer = false;
    for line in text.lines() {
        if line.starts_with(";; ANSWER SECTION") {
            in_answer = true;
        } else if in_answer && line.trim().is_empty() {
            in_answer = false;
        } else if in_answer {
            let f: Vec<&str> = line.split_whitespace().collect();
            answers.push((f[1].parse().unwrap(), f[4].to_string()));
        }
    }
    (status, answers, text)
}

fn cluster() -> (Cluster, u16) {
    let dns_port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let node: &'static str = Box::leak(
        format!("dns_listen = \"127.0.0.1:{dns_port}\"\ndns_zone = \"cdn.test.\"\ndns_ttl = \"5s\"\n").into_boxed_str(),
    );
    let specs: Vec<Spec> =
        vec![origin(1), cache(2, "site-a"), cache(3, "site-a"), cache(4, "site-b"), Spec { node, ..director(9) }];
    let options = Options { dns_addresses: true, ..Options::default() };
    (Cluster::start_with(&specs, &options), dns_port)
}

#[test]
fn dns_answers_name_the_closest_healthy_cache() {
    let (mut c, port) = cluster();
    let site_a = ["10.0.0.2", "10.0.0.3"];
    // A client of site-a (127.0.1.0/24) is sent to a site-a cache, one of site-b to site-b's;
    // the answer's scope is the subnet the resolver named (RFC 7871).
    let (status, answers, text) = dig_text(port, "atlas.cdn.test", "A", Some("127.0.1.0/24"));
    assert_eq!(status, "NOERROR");
    assert!(text.contains("CLIENT-SUBNET: 127.0.1.0/24/24"), "{text}");
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].0, 5, "the configured TTL");
    assert!(site_a.contains(&answers[0].1.as_str()), "{answers:?}");
    let (_, answers) = dig(port, "ATLAS.cdn.test.", "A", Some("127.0.2.9/32"));
    assert_eq!(answers.iter().map(|a| a.1.as_str()).collect::<Vec<_>>(), ["10.0.0.4"]);
    // Any client of site-a gets a site-a cache (which one also follows the measured proximity).
    for client in ["127.0.1.200/32", "127.0.1.7/32", "127.0.1.0/24"] {
        let (_, answers) = dig(port, "atlas.cdn.test", "A", Some(client));
        assert!(answers.len() == 1 && site_a.contains(&answers[0].1.as_str()), "{client}: {answers:?}");
    }
    // The zone itself names a cache too; other names and types are answered as a DNS server should.
    assert_eq!(dig(port, "cdn.test", "A", Some("127.0.2.1/32")).1.len(), 1);
    assert_eq!(dig(port, "nothing.cdn.test", "A", None).0, "NXDOMAIN");
    assert_eq!(dig(port, "example.org", "A", None).0, "REFUSED");
    let (status, answers) = dig(port, "atlas.cdn.test", "AAAA", Some("127.0.2.9/32"));
    assert_eq!((status.as_str(), answers.len()), ("NOERROR", 0), "no IPv6 address: no data");

    // Site-b's cache dies: its clients are sent to site-a (their preferred site) once the
    // director notices (probes every 100 ms here).
    c.kill(4);
    let mut answered_while_waiting = 0;
    wait_until("site-b's clients are sent elsewhere", || {
        let answers = dig(port, "atlas.cdn.test", "A", Some("127.0.2.9/32")).1;
        answered_while_waiting += usize::from(!answers.is_empty());
        answers.first().is_some_and(|a| site_a.contains(&a.1.as_str()))
    });
    // Six queries above had an address in the answer, plus those asked while waiting.
    let answered = c.metric(9, "reef_dns_queries_total{answer=\"answered\"}");
    assert_eq!(answered, (6 + answered_while_waiting) as f64);
}
