//! The director's live view (the seed's CDN "views of real-time load and statistics"): every
//! few seconds the director reads each cache's `/metrics` and most requested objects
//! (`/.reef/v1/top`, bounded), and serves the federation at a glance: caches with their health
//! (the core's membership), load (requests/s, bytes/s between two readings), hit ratio, the most
//! popular objects, the client sites that are active and each namespace's use. HTML at
//! `/.reef/v1/status` (refreshing itself, no script), JSON at `/.reef/v1/status.json`.

use crate::popularity::Popular;
use crate::server::App;
use reef_core::{NodeId, Role};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const STATUS_PATH: &str = "/.reef/v1/status";
pub const STATUS_JSON_PATH: &str = "/.reef/v1/status.json";
pub const TOP_PATH: &str = "/.reef/v1/top";
/// Objects each cache reports and the page shows.
pub const TOP_SHOWN: usize = 20;
/// The largest reading taken from a cache.
const MAX_READING: usize = 1 << 20;

/// What the director knows of each cache.
#[derive(Debug, Default)]
pub struct Views {
    caches: Mutex<BTreeMap<u32, CacheView>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CacheView {
    pub id: u32,
    pub site: String,
    pub url: String,
    /// The director's core: alive, suspect or dead.
    pub health: String,
    /// Unix seconds of the last reading, if any.
    pub read_at: Option<f64>,
    /// The last reading failed: the rates are unknown (shown as `-`, counted as 0).
    pub unread: bool,
    pub requests_per_s: f64,
    pub bytes_per_s: f64,
    /// Hits over hits and misses since the cache started.
    pub hit_ratio: Option<f64>,
    pub top: Vec<Popular>,
    /// Requests by client site since the cache started.
    pub sites: BTreeMap<String, f64>,
    /// (requests, bytes) by namespace since the cache started.
    pub namespaces: BTreeMap<String, (f64, f64)>,
    #[serde(skip)]
    last: Option<(Instant, Totals)>,
}

/// Counters read from a cache's `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub requests: f64,
    pub hits: f64,
    pub misses: f64,
    pub bytes: f64,
}

/// A series' labels: (name, value) pairs.
type Labels<'a> = Vec<(&'a str, &'a str)>;

/// One sample line of the Prometheus text format: name, labels, value.
fn sample(line: &str) -> Option<(&str, Labels<'_>, f64)> {
    if line.starts_with('#') {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let Some((name, labels)) = series.split_once('{') else { return Some((series, vec![], value)) };
    let labels = labels
        .strip_suffix('}')?
        .split("\",")
        .filter_map(|kv| {
            let (k, v) = kv.split_once("=\"")?;
            Some((k, v.trim_end_matches('"')))
        })
        .collect();
    Some((name, labels, value))
}

/// The counters, per-site and per-namespace figures in a cache's metrics.
pub fn read_metrics(text: &str, view: &mut CacheView) -> Totals {
    let mut t = Totals::default();
    view.sites.clear();
    view.namespaces.clear();
    for (name, labels, value) in text.lines().filter_map(sample) {
        let label = |key: &str| labels.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        match name {
            "reef_requests_total" => {
                t.requests += value;
                match label("outcome") {
                    Some("hit") => t.hits += value,
                    Some("miss") => t.misses += value,
                    _ => {}
                }
            }
            "reef_response_bytes_total" => t.bytes += value,
            "reef_site_requests_total" => {
                if let Some(site) = label("site") {
                    *view.sites.entry(site.to_string()).or_default() += value;
                }
            }
            "reef_namespace_requests_total" => {
                if let Some(ns) = label("namespace") {
                    view.namespaces.entry(ns.to_string()).or_default().0 += value;
                }
            }
            "reef_namespace_response_bytes_total" => {
                if let Some(ns) = label("namespace") {
                    view.namespaces.entry(ns.to_string()).or_default().1 += value;
                }
            }
            _ => {}
        }
    }
    t
}

impl Views {
    /// Reads every cache now and then, forever (a director's task).
    pub async fn run(self: Arc<Self>, app: Arc<App>, every: Duration) {
        loop {
            let caches: Vec<_> = app.config.peers.iter().filter(|p| p.role == Role::Cache).cloned().collect();
            for peer in caches {
                let metrics = app.transport.peer_get(peer.id, "/metrics", MAX_READING).await;
                let top = app.transport.peer_get(peer.id, TOP_PATH, MAX_READING).await;
                let health = app.driver.health(peer.id).map_or("unknown", |h| match h {
                    reef_core::membership::Health::Alive => "alive",
                    reef_core::membership::Health::Suspect => "suspect",
                    reef_core::membership::Health::Dead => "dead",
                });
                let mut caches = self.caches.lock().unwrap_or_else(|e| e.into_inner());
                let view = caches.entry(peer.id.0).or_default();
                view.id = peer.id.0;
                view.site = app.config.site_name(peer.site).unwrap_or("?").to_string();
                view.url = peer.url.clone();
                view.health = health.to_string();
                let text = metrics.as_deref().and_then(|b| std::str::from_utf8(b).ok());
                view.unread = text.is_none();
                if view.unread {
                    (view.requests_per_s, view.bytes_per_s, view.last) = (0.0, 0.0, None);
                }
                if let Some(text) = text {
                    let now = Instant::now();
                    let totals = read_metrics(text, view);
                    if let Some((then, before)) = view.last {
                        let secs = now.duration_since(then).as_secs_f64().max(1e-3);
                        view.requests_per_s = ((totals.requests - before.requests) / secs).max(0.0);
                        view.bytes_per_s = ((totals.bytes - before.bytes) / secs).max(0.0);
                    }
                    let served = totals.hits + totals.misses;
                    view.hit_ratio = (served > 0.0).then(|| totals.hits / served);
                    view.last = Some((now, totals));
                    view.read_at = Some(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()));
                }
                if let Some(top) = top.and_then(|b| serde_json::from_slice::<Vec<Popular>>(&b).ok()) {
                    view.top = top;
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    pub fn snapshot(&self) -> Vec<CacheView> {
        self.caches.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }
}

/// Everything the page shows, summed over the caches.
#[derive(Debug, Serialize)]
pub struct Federation {
    pub director: u32,
    pub caches: Vec<CacheView>,
    pub requests_per_s: f64,
    pub bytes_per_s: f64,
    /// Most requested objects over all caches (requests summed).
    pub top: Vec<(String, u64, u64)>,
    pub sites: BTreeMap<String, f64>,
    pub namespaces: BTreeMap<String, (f64, f64)>,
}

pub fn federation(director: NodeId, caches: Vec<CacheView>) -> Federation {
    let mut top: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut sites = BTreeMap::new();
    let mut namespaces: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for c in &caches {
        for p in &c.top {
            let e = top.entry(p.object.clone()).or_default();
            e.0 += p.counter.requests;
            e.1 += p.counter.bytes;
        }
        for (s, n) in &c.sites {
            *sites.entry(s.clone()).or_default() += n;
        }
        for (ns, (r, b)) in &c.namespaces {
            let e = namespaces.entry(ns.clone()).or_default();
            e.0 += r;
            e.1 += b;
        }
    }
    let mut top: Vec<(String, u64, u64)> = top.into_iter().map(|(o, (r, b))| (o, r, b)).collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(TOP_SHOWN);
    Federation {
        director: director.0,
        requests_per_s: caches.iter().map(|c| c.requests_per_s).sum(),
        bytes_per_s: caches.iter().map(|c| c.bytes_per_s).sum(),
        caches,
        top,
        sites,
        namespaces,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn size(bytes: f64) -> String {
    reef_core::units::format_size(bytes.max(0.0) as u64)
}

/// The page: server-rendered, refreshing every 5 s.
pub fn html(f: &Federation) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">\
         <title>Reef federation</title><style>body{{font-family:sans-serif;margin:2em;color:#123}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #9ab;padding:.3em .8em;text-align:left}}\
         th{{background:#def}}.alive{{color:#070}}.suspect{{color:#a60}}.dead{{color:#b00}}</style></head><body>\
         <h1>Reef federation</h1><p id=\"totals\">Director n{} &middot; {} caches &middot; {:.1} requests/s &middot; {}/s</p>",
        f.director,
        f.caches.len(),
        f.requests_per_s,
        size(f.bytes_per_s)
    );
    o.push_str("<h2>Caches</h2><table id=\"caches\"><tr><th>cache</th><th>site</th><th>health</th><th>requests/s</th><th>bytes/s</th><th>hit ratio</th><th>url</th></tr>");
    for c in &f.caches {
        let ratio = c.hit_ratio.map_or("-".to_string(), |r| format!("{:.1}%", r * 100.0));
        let (requests, bytes) = match c.unread {
            true => ("-".to_string(), "-".to_string()),
            false => (format!("{:.1}", c.requests_per_s), format!("{}/s", size(c.bytes_per_s))),
        };
        let _ = write!(
            o,
            "<tr><td>n{}</td><td>{}</td><td class=\"{}\">{}</td><td>{requests}</td><td>{bytes}</td><td>{ratio}</td><td>{}</td></tr>",
            c.id,
            escape(&c.site),
            escape(&c.health),
            escape(&c.health),
            escape(&c.url)
        );
    }
    o.push_str("</table><h2>Most requested objects</h2><table id=\"top\"><tr><th>object</th><th>requests</th><th>bytes</th></tr>");
    for (object, requests, bytes) in &f.top {
        let _ = write!(o, "<tr><td>{}</td><td>{requests}</td><td>{}</td></tr>", escape(object), size(*bytes as f64));
    }
    o.push_str("</table><h2>Active client sites</h2><table id=\"sites\"><tr><th>site</th><th>requests</th></tr>");
    for (site, n) in &f.sites {
        let _ = write!(o, "<tr><td>{}</td><td>{n}</td></tr>", escape(site));
    }
    o.push_str("</table><h2>Namespaces</h2><table id=\"namespaces\"><tr><th>namespace</th><th>requests</th><th>bytes</th></tr>");
    for (ns, (r, b)) in &f.namespaces {
        let _ = write!(o, "<tr><td>{}</td><td>{r}</td><td>{}</td></tr>", escape(ns), size(*b));
    }
    o.push_str("</table></body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caches_metrics_are_read_into_its_view() {
        let text = "# HELP reef_requests_total x\n\
            reef_requests_total{role=\"cache\",outcome=\"hit\"} 30\n\
            reef_requests_total{role=\"cache\",outcome=\"miss\"} 10\n\
            reef_requests_total{role=\"cache\",outcome=\"not_found\"} 2\n\
            reef_response_bytes_total{source=\"local\"} 3000\n\
            reef_response_bytes_total{source=\"origin\"} 1000\n\
            reef_site_requests_total{site=\"site-a\"} 40\n\
            reef_namespace_requests_total{namespace=\"atlas\",outcome=\"hit\"} 30\n\
            reef_namespace_requests_total{namespace=\"atlas\",outcome=\"miss\"} 10\n\
            reef_namespace_response_bytes_total{namespace=\"atlas\"} 4000\n";
        let mut view = CacheView::default();
        let t = read_metrics(text, &mut view);
        assert_eq!(t, Totals { requests: 42.0, hits: 30.0, misses: 10.0, bytes: 4000.0 });
        assert_eq!(view.sites["site-a"], 40.0);
        assert_eq!(view.namespaces["atlas"], (40.0, 4000.0));
    }

    #[test]
    fn the_page_escapes_what_it_shows() {
        let view = CacheView { id: 2, site: "<b>".into(), health: "alive".into(), ..CacheView::default() };
        let page = html(&federation(NodeId(9), vec![view]));
        assert!(page.contains("&lt;b&gt;") && !page.contains("<b>"));
        assert!(page.contains("<td>n2</td>"));
    }
}
