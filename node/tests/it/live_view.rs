//! The director's live view of a running cluster: the caches' load, hit ratios, popular objects
//! and client sites, as JSON, as HTML, and rendered by headless Chromium (a real browser).

use crate::common::{Cluster, bytes, cache, director, origin, wait_until};
use std::process::Command;

fn status(c: &Cluster) -> serde_json::Value {
    let (code, _, body) = c.get(&c.url(9, "/.reef/v1/status.json"), &[]);
    assert_eq!(code, 200);
    serde_json::from_slice(&body).unwrap()
}

fn chromium() -> Option<&'static str> {
    let found =
        ["chromium", "chromium-browser"].into_iter().find(|b| Command::new(b).arg("--version").output().is_ok());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI must run the browser test: install chromium (.ci/packages)");
        eprintln!("skipped the browser part: no chromium here");
    }
    found
}

#[test]
fn the_director_shows_the_running_cluster() {
    let mut c = Cluster::start(&[origin(1), cache(2, "site-a"), cache(3, "site-b"), director(9)]);
    for (name, size) in [("hot.bin", 10_000), ("warm.bin", 20_000), ("cold.bin", 5_000)] {
        c.put(name, bytes(size, size as u64));
    }
    let read = |cache: u32, name: &str, site: &str, times: usize| {
        for _ in 0..times {
            assert_eq!(c.get(&c.url(cache, &format!("/atlas/{name}?site={site}")), &[]).0, 200);
        }
    };
    read(2, "hot.bin", "site-a", 5);
    read(3, "hot.bin", "site-b", 2);
    read(3, "warm.bin", "site-b", 3);
    read(2, "cold.bin", "site-a", 1);

    // The director reads its caches every 2 s.
    wait_until("the director has read both caches' popular objects", || {
        let s = status(&c);
        s["top"].as_array().is_some_and(|t| t.first().is_some_and(|o| o[0] == "/atlas/hot.bin" && o[1] == 7))
    });
    let s = status(&c);
    let caches = s["caches"].as_array().unwrap();
    assert_eq!(caches.iter().map(|v| v["id"].as_u64().unwrap()).collect::<Vec<_>>(), [2, 3]);
    // Cache 2: hot.bin 1 miss + 4 hits, cold.bin 1 miss: 4 hits of 6.
    let ratio = caches[0]["hit_ratio"].as_f64().unwrap();
    assert!((ratio - 4.0 / 6.0).abs() < 1e-9, "cache 2 hit ratio {ratio}");
    assert_eq!(s["sites"]["site-a"], 6.0);
    assert_eq!(s["sites"]["site-b"], 5.0);
    assert_eq!(s["namespaces"]["atlas"][0], 11.0);
    assert_eq!(s["namespaces"]["atlas"][1], (7 * 10_000 + 3 * 20_000 + 5_000) as f64);
    let top: Vec<(String, u64)> = s["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t[0].as_str().unwrap().to_string(), t[1].as_u64().unwrap()))
        .collect();
    assert_eq!(top, [("/atlas/hot.bin".to_string(), 7), ("/atlas/warm.bin".into(), 3), ("/atlas/cold.bin".into(), 1)]);

    // The data owner's report from the caches' access logs adds up to the logs and to the view.
    let logs: Vec<String> =
        [2, 3].iter().map(|id| c.dir.path().join(format!("n{id}/access.log")).display().to_string()).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_reef-node"))
        .args(["usage", "--log", &logs[0], "--log", &logs[1], "--by", "namespace,site"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = String::from_utf8(out.stdout).unwrap();
    let (mut requests, mut bytes_sent) = (0u64, 0u64);
    for line in
        logs.iter().flat_map(|l| std::fs::read_to_string(l).unwrap().lines().map(str::to_string).collect::<Vec<_>>())
    {
        let r: serde_json::Value = serde_json::from_str(&line).unwrap();
        if r["status"].as_u64().unwrap() < 400 {
            requests += 1;
            bytes_sent += r["bytes"].as_u64().unwrap();
        }
    }
    assert_eq!((requests, bytes_sent), (11, 7 * 10_000 + 3 * 20_000 + 5_000));
    assert_eq!(
        report,
        // Most bytes first.
        format!(
            "namespace,site,requests,bytes\natlas,site-b,5,{}\natlas,site-a,6,{}\n",
            2 * 10_000 + 3 * 20_000,
            5 * 10_000 + 5_000
        )
    );

    // A cache dies: the page says so once the director's core does.
    c.kill(3);
    wait_until("the director sees cache 3 down", || {
        let s = status(&c);
        s["caches"][1]["health"] != "alive" && s["caches"][1]["unread"] == true
    });
    assert_eq!(status(&c)["caches"][1]["requests_per_s"], 0.0, "no load is claimed for a cache that is not read");
    let (code, head, html) = c.get(&c.url(9, "/.reef/v1/status"), &[]);
    let html = String::from_utf8(html).unwrap();
    assert_eq!(code, 200);
    assert!(head.contains("text/html"));
    for needle in ["<td>n2</td>", "<td>n3</td>", "site-a", "/atlas/hot.bin", "class=\"alive\""] {
        assert!(html.contains(needle), "{needle} not in the page");
    }

    // A real browser renders it: the DOM it builds has the tables, and the screenshot is not blank.
    let Some(browser) = chromium() else { return };
    let url = c.url(9, "/.reef/v1/status");
    let headless = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"];
    let dom = Command::new(browser).args(headless).arg("--dump-dom").arg(&url).output().unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("<table id=\"caches\">") && dom.contains("/atlas/warm.bin"), "{dom}");
    let shot = c.dir.path().join("status.png");
    let out = Command::new(browser)
        .args(headless)
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1000,700")
        .arg(&url)
        .output()
        .unwrap();
    assert!(shot.exists(), "{}", String::from_utf8_lossy(&out.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (1000, 700));
    let step = info.color_type.samples();
    let inked = pixels[..info.buffer_size()].chunks(step).filter(|p| p[..3].iter().any(|&v| v < 128)).count();
    let share = inked as f64 / f64::from(info.width * info.height);
    assert!(share > 0.005, "the screenshot is almost blank ({share:.4} of its pixels are dark)");
    if let Ok(dir) = std::env::var("REEF_SCREENSHOT_DIR") {
        std::fs::copy(&shot, std::path::Path::new(&dir).join("status.png")).unwrap();
    }
}
