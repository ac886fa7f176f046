//! Emulated sites in network namespaces (needs root and iproute2, as CI has): three sites in a
//! line, A - B - C, with 100 and 40 Mbit/s links. A reaches C through B (the route the
//! topology gives), a transfer from C to A runs at the narrow link's rate, and nothing is left
//! behind afterwards.

use reef_lab::netns::{LinkSpec, Network, site_addr, sweep};
use std::io::BufRead;
use std::process::{Command, Stdio};

fn namespaces(prefix: &str) -> usize {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with(&format!("{prefix}-"))).count()
}

#[test]
fn three_sites_route_shape_and_vanish() {
    let prefix = format!("rl{}", std::process::id() % 10_000);
    sweep(&prefix).unwrap();
    let links = [LinkSpec { a: 0, b: 1, bits_per_sec: 100_000_000 }, LinkSpec { a: 1, b: 2, bits_per_sec: 40_000_000 }];
    // A line: every route goes through the middle site.
    let next_hop = |from: usize, to: usize| Some(if from == 1 { to } else { 1 });
    {
        let net = Network::create(&prefix, 3, &links, next_hop).expect("root and iproute2");
        assert_eq!(namespaces(&prefix), 3);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().display().to_string();
        std::fs::write(format!("{dir}/f.bin"), vec![7u8; 10_000_000]).unwrap();
        // Unbuffered, so its "Serving HTTP on ..." line says when it listens.
        let mut server = net
            .command(2, "python3")
            .args(["-u", "-m", "http.server", "8000", "--bind", &site_addr(2).to_string(), "--directory", &dir])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut said = String::new();
        std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut said).unwrap();
        assert!(said.starts_with("Serving HTTP"), "{said}");
        let url = format!("http://{}:8000/f.bin", site_addr(2));
        let out = net
            .command(0, "curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", &url])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let measured = match text.split(' ').collect::<Vec<_>>()[..] {
            ["200", size, time] => Some((size.parse::<f64>().unwrap(), time.parse::<f64>().unwrap())),
            _ => None,
        };
        let _ = server.kill();
        let _ = server.wait();
        let (size, secs) = measured.expect("site A reaches site C through B");
        assert_eq!(size, 10_000_000.0);
        let rate = size * 8.0 / secs;
        eprintln!("C to A: {:.2} Mbit/s", rate / 1e6);
        // tbf on the 40 Mbit/s link (C's end) bounds the transfer. It counts frames: a full
        // 1514-byte Ethernet frame carries 1448 bytes of TCP payload (IP, TCP with timestamps
        // and Ethernet headers take the rest), so the goodput is 40 × 1448 / 1514 Mbit/s.
        // Never above it (the shaping holds); TCP's slow start and a busy machine (CI runs
        // other tests at the same time) may take a few percent off (38.14 to 38.20 measured
        // alone, 36.96 once under CI).
        let goodput = 40e6 * 1448.0 / 1514.0;
        let ratio = rate / goodput;
        assert!((0.90..1.02).contains(&ratio), "{:.2} Mbit/s, expected {:.2}", rate / 1e6, goodput / 1e6);
    }
    assert_eq!(namespaces(&prefix), 0, "namespaces left behind");
    let links = Command::new("ip").args(["link", "show"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&links.stdout).contains(&format!("{prefix}-l")), "veths left behind");
}

/// `reef-lab up` builds a scenario's sites (the quickstart's 9) with routes along the
/// simulator's paths, holds them, and removes everything on Ctrl-C (SIGINT).
#[test]
fn reef_lab_up_builds_a_scenarios_sites_and_removes_them_on_ctrl_c() {
    let prefix = format!("rq{}", std::process::id() % 10_000);
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/quickstart.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_reef-lab"))
        .args(["up", scenario, "--prefix", &prefix])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut text = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        text += &line;
        text.push('\n');
        if line.starts_with("up;") {
            break;
        }
    }
    assert!(text.contains("9 sites, 9 links"), "{text}");
    assert_eq!(namespaces(&prefix), 9);
    // A Tier-2 (site 3, below T1-01) reaches the Tier-0 through its Tier-1 (site 1).
    let route =
        Command::new("ip").args(["-n", &format!("{prefix}-s3"), "route", "get", "10.255.0.1"]).output().unwrap();
    let route = String::from_utf8_lossy(&route.stdout).to_string();
    let t1_end = "10.254.0.13"; // link 3 (T1-01 - T2-001): T1-01's end
    assert!(route.contains(&format!("via {t1_end}")), "{route}");
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    assert!(child.wait().unwrap().success());
    assert_eq!(namespaces(&prefix), 0, "namespaces left behind");
}
