//! Paces a response body at the egress pace the core decided (`reef_core::shaper`): each
//! slice of the body leaves no earlier than the core's release time for its last byte.

use bytes::Bytes;
use reef_core::shaper::Pace;
use std::io;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Bytes released at a time: small enough that the rate is smooth within a few milliseconds
/// at the rates quotas are set to.
const SLICE: usize = 64 * 1024;

/// A response's pace on the node's clock.
#[derive(Clone, Copy, Debug)]
pub struct Pacer {
    pace: Pace,
    /// The instant the core's time 0 stands for (the driver's start).
    epoch: Instant,
    sent: u64,
}

impl Pacer {
    pub fn new(pace: Pace, epoch: Instant) -> Pacer {
        Pacer { pace, epoch, sent: 0 }
    }

    /// When the response may start (its headers go then).
    pub fn start(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.pace.start.as_nanos())
    }

    /// Whether `bytes` more may leave at once.
    pub fn allows_now(&self, bytes: u64) -> bool {
        self.at(self.sent + bytes) <= Instant::now()
    }

    fn at(&self, offset: u64) -> Instant {
        self.epoch + Duration::from_nanos(self.pace.release(offset).as_nanos())
    }

    /// Sends `bytes` on `tx` in slices, each once its pace allows; false if the receiver
    /// went away.
    pub async fn send(&mut self, tx: &mpsc::Sender<io::Result<Bytes>>, mut bytes: Bytes) -> bool {
        while !bytes.is_empty() {
            let slice = bytes.split_to(bytes.len().min(SLICE));
            self.sent += slice.len() as u64;
            tokio::time::sleep_until(self.at(self.sent)).await;
            if tx.send(Ok(slice)).await.is_err() {
                return false;
            }
        }
        true
    }
}

/// Sends `bytes` on `tx`, at `pacer`'s pace if there is one; false if the receiver went away.
pub async fn send(pacer: &mut Option<Pacer>, tx: &mpsc::Sender<io::Result<Bytes>>, bytes: Bytes) -> bool {
    match pacer {
        Some(p) => p.send(tx, bytes).await,
        None => tx.send(Ok(bytes)).await.is_ok(),
    }
}
