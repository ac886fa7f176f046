//! Usage reports for data owners (the seed: "the usage logs are no longer available at the
//! content source server"): the caches' access logs, summed by namespace, object, client site,
//! client and source tier over a time range, as CSV. Only reads that were answered count
//! (`GET`/`HEAD` with a status below 400); bytes are body bytes sent.

use crate::access_log::Record;
use std::collections::BTreeMap;
use std::io::BufRead;

/// What a report line is keyed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Field {
    Namespace,
    Object,
    Site,
    Client,
    /// Where the bytes came from: `cache` (the cache's store), `peer`, `origin`.
    Source,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Namespace => "namespace",
            Field::Object => "object",
            Field::Site => "site",
            Field::Client => "client",
            Field::Source => "source",
        }
    }

    fn of(self, r: &Record) -> String {
        match self {
            Field::Namespace => r.object.trim_start_matches('/').split('/').next().unwrap_or("").to_string(),
            Field::Object => r.object.clone(),
            Field::Site => r.site.clone().unwrap_or_else(|| "-".into()),
            // The address without the port: one client, many connections.
            Field::Client => r.client.rsplit_once(':').map_or(r.client.as_str(), |(a, _)| a).to_string(),
            Field::Source => match r.source.split(':').next() {
                Some("local") => "cache",
                Some("peer") => "peer",
                Some("origin") => "origin",
                _ => "-",
            }
            .to_string(),
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sum {
    pub requests: u64,
    pub bytes: u64,
}

/// What a report covers.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Unix seconds, inclusive.
    pub from: Option<f64>,
    /// Unix seconds, exclusive.
    pub to: Option<f64>,
    pub namespace: Option<String>,
}

/// The sums of the records of `lines` (JSON lines) that pass `filter`, keyed by `by`. A line
/// that does not parse is an error naming it.
pub fn summarise(
    lines: impl BufRead,
    source: &str,
    filter: &Filter,
    by: &[Field],
    into: &mut BTreeMap<Vec<String>, Sum>,
) -> Result<(), String> {
    for (i, line) in lines.lines().enumerate() {
        let line = line.map_err(|e| format!("{source}: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = serde_json::from_str(&line).map_err(|e| format!("{source}, line {}: {e}", i + 1))?;
        let read = matches!(r.method.as_str(), "GET" | "HEAD") && r.status < 400;
        let in_time = filter.from.is_none_or(|f| r.time >= f) && filter.to.is_none_or(|t| r.time < t);
        let in_ns = filter.namespace.as_ref().is_none_or(|ns| Field::Namespace.of(&r) == *ns);
        if !(read && in_time && in_ns) {
            continue;
        }
        let sum = into.entry(by.iter().map(|f| f.of(&r)).collect()).or_default();
        sum.requests += 1;
        sum.bytes += r.bytes;
    }
    Ok(())
}

/// The report as CSV: the key fields, `requests`, `bytes`; most bytes first.
pub fn csv(by: &[Field], sums: &BTreeMap<Vec<String>, Sum>) -> String {
    let quote = |v: &str| {
        if v.contains([',', '"', '\n']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v.to_string() }
    };
    let mut out: String = by.iter().map(|f| f.name()).collect::<Vec<_>>().join(",");
    out.push_str(",requests,bytes\n");
    let mut rows: Vec<_> = sums.iter().collect();
    rows.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then_with(|| a.0.cmp(b.0)));
    for (key, sum) in rows {
        let fields: Vec<String> = key.iter().map(|v| quote(v)).collect();
        out.push_str(&format!("{},{},{}\n", fields.join(","), sum.requests, sum.bytes));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(time: f64, object: &str, site: &str, source: &str, status: u16, bytes: u64) -> String {
        serde_json::to_string(&Record {
            time,
            client: "127.0.1.5:40000".into(),
            site: Some(site.into()),
            method: "GET".into(),
            object: object.into(),
            object_id: None,
            range: None,
            bytes,
            size: Some(bytes),
            status,
            outcome: "hit".into(),
            source: source.into(),
            duration_ms: 1.0,
            complete: true,
        })
        .unwrap()
    }

    #[test]
    fn reads_are_summed_by_the_fields_asked_within_the_range() {
        let log = [
            line(10.0, "/atlas/a", "site-a", "local", 200, 100),
            line(11.0, "/atlas/a", "site-a", "origin:1", 200, 100),
            line(12.0, "/atlas/a", "site-b", "peer:3", 206, 10),
            line(13.0, "/cms/b", "site-a", "local", 200, 7),
            line(14.0, "/atlas/a", "site-a", "-", 404, 0),
            line(99.0, "/atlas/a", "site-a", "local", 200, 100),
        ]
        .join("\n");
        let filter = Filter { from: Some(10.0), to: Some(50.0), namespace: Some("atlas".into()) };
        let by = [Field::Object, Field::Site, Field::Source];
        let mut sums = BTreeMap::new();
        summarise(log.as_bytes(), "log", &filter, &by, &mut sums).unwrap();
        let got = csv(&by, &sums);
        assert_eq!(
            got,
            "object,site,source,requests,bytes\n/atlas/a,site-a,cache,1,100\n/atlas/a,site-a,origin,1,100\n/atlas/a,site-b,peer,1,10\n"
        );
        let mut all = BTreeMap::new();
        let everything = Filter { from: None, to: None, namespace: None };
        summarise(log.as_bytes(), "log", &everything, &[Field::Namespace], &mut all).unwrap();
        assert_eq!(all[&vec!["atlas".to_string()]], Sum { requests: 4, bytes: 310 });
        assert_eq!(all[&vec!["cms".to_string()]], Sum { requests: 1, bytes: 7 });
        let err = summarise("{\"time\":1}".as_bytes(), "x.log", &everything, &by, &mut all).unwrap_err();
        assert!(err.starts_with("x.log, line 1:"), "{err}");
    }
}
