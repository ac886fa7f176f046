//! The store scrub: reads every stored object again, block by block, at a bounded rate, and
//! checks it against the origin's block list it was filled with. Each object costs at least
//! `MIN_CHARGE` of the rate (opening and reading a small file costs more than its bytes), and a
//! pass starts at most once per `node.scrub_interval`, so a store of a few small objects is not
//! re-read thousands of times a second. A copy that went bad on disk
//! (or was truncated or deleted under the node) is reported lost, so the core drops it and the
//! next request fetches it afresh, before any client is served from it.

use crate::driver::Driver;
use crate::metrics::Metrics;
use crate::store::{Stamp, Store};
use reef_core::{BitRate, ObjectId};
use std::sync::Arc;
use std::time::Duration;

/// The least an object is charged against the scrub's rate, whatever its size.
const MIN_CHARGE: u64 = 64 * 1024;

/// Scrubs the store forever at `rate` (nothing at zero), a pass at most every `interval`.
pub async fn run(store: Arc<Store>, driver: Driver, metrics: Arc<Metrics>, rate: BitRate, interval: Duration) {
    if rate.0 == 0 {
        return;
    }
    loop {
        let pass = tokio::time::Instant::now();
        let mut ids = store.ids();
        ids.sort_unstable();
        if ids.is_empty() {
            tokio::time::sleep(Duration::from_secs(10)).await;
            continue;
        }
        for id in ids {
            match check(&store, id, rate).await {
                Check::Intact => metrics.add("reef_scrubbed_objects_total", &[], 1.0),
                Check::Gone => {}
                Check::Lost(why) => {
                    tracing::warn!(object = %id, %why, "scrub: stored copy lost");
                    metrics.add("reef_store_lost_total", &[], 1.0);
                    driver.lost(id);
                }
            }
        }
        let next = (pass + interval).saturating_duration_since(tokio::time::Instant::now());
        let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default() + next;
        metrics.set("reef_scrub_next_pass_timestamp_seconds", &[], unix.as_secs_f64());
        tokio::time::sleep(next).await;
    }
}

enum Check {
    Intact,
    /// Evicted meanwhile (or stored without a block list): nothing to check.
    Gone,
    Lost(String),
}

async fn check(store: &Arc<Store>, id: ObjectId, rate: BitRate) -> Check {
    let Some(blocks) = store.meta(id).and_then(|m| m.blocks.clone()).map(Arc::new) else {
        return Check::Gone;
    };
    let opened = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.open_object(id)).await
    };
    let (file, stamp) = match opened {
        Ok(Ok((file, _, stamp))) => (Arc::new(file), stamp),
        Ok(Err(e)) => return Check::Lost(e.to_string()),
        Err(e) => return Check::Lost(e.to_string()),
    };
    let mut charged = 0;
    for index in 0..blocks.hashes.len() as u64 {
        // An object evicted meanwhile is let go at once: its open file would keep its space.
        if store.meta(id).is_none() {
            return Check::Gone;
        }
        let (file, list) = (file.clone(), blocks.clone());
        match tokio::task::spawn_blocking(move || list.read_checked(&file, index)).await {
            Ok(Ok(block)) => {
                charged += block.len() as u64;
                tokio::time::sleep(rate.transfer_time(block.len() as u64).into()).await;
            }
            Ok(Err(e)) => return Check::Lost(e.to_string()),
            Err(e) => return Check::Lost(e.to_string()),
        }
    }
    if charged < MIN_CHARGE {
        tokio::time::sleep(rate.transfer_time(MIN_CHARGE - charged).into()).await;
    }
    if Stamp::of(&file).is_ok_and(|now| now == stamp) {
        store.mark_checked(id, stamp);
    }
    Check::Intact
}
