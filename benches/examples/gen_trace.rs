//! Writes a synthetic oracle-general trace for `reef-sim replay` throughput measurements:
//!
//! ```text
//! cargo run --release -p reef-benches --example gen_trace -- OUT [REQUESTS] [OBJECTS] [ALPHA]
//! ```
//!
//! Defaults: 20 million requests over 1 million objects, Zipf 0.9, sizes log-uniform in
//! 1 KiB ..= 64 MiB. Prints the catalog size and 10% of it (the cache size to replay with).

use reef_sim::trace::{ZipfTrace, write_oracle_general};
use std::io::BufWriter;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first() else {
        eprintln!("usage: gen_trace OUT [REQUESTS] [OBJECTS] [ALPHA]");
        std::process::exit(2);
    };
    let number = |i: usize, default: f64| args.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(default);
    let spec = ZipfTrace {
        requests: number(1, 20e6) as u64,
        objects: number(2, 1e6) as u64,
        alpha: number(3, 0.9),
        min_size: 1 << 10,
        max_size: 64 << 20,
        seed: 1,
    };
    let (requests, catalog) = spec.generate();
    write_oracle_general(BufWriter::new(std::fs::File::create(out)?), &requests)?;
    println!("{out}: {} requests, catalog {catalog} bytes, 10% = {} bytes", requests.len(), catalog / 10);
    Ok(())
}
