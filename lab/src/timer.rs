//! A precise sleep for the relay: tokio's timer rounds deadlines up to whole milliseconds (a
//! 20 ms link measured 21.3 ms), so the last stretch of each wait is handed to one OS thread
//! that sleeps with the kernel's resolution (tens of microseconds) and wakes the task.

use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Waits until `at` with the kernel timer's precision.
pub async fn sleep_until(at: Instant) {
    // The bulk on tokio's timer (which may wake up to a millisecond late) ...
    const SLACK: Duration = Duration::from_millis(2);
    if let Some(coarse) = at.checked_sub(SLACK)
        && coarse > Instant::now()
    {
        tokio::time::sleep_until(coarse.into()).await;
    }
    // ... the rest on the precise thread.
    if at > Instant::now() {
        let (tx, rx) = oneshot::channel();
        timer().add(at, tx);
        let _ = rx.await;
    }
}

struct Entry(Instant, oneshot::Sender<()>);

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // The earliest deadline first (BinaryHeap is a max-heap).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.0.cmp(&self.0)
    }
}

struct Timer {
    due: Mutex<BinaryHeap<Entry>>,
    changed: Condvar,
}

impl Timer {
    fn add(&self, at: Instant, wake: oneshot::Sender<()>) {
        self.due.lock().unwrap_or_else(|e| e.into_inner()).push(Entry(at, wake));
        self.changed.notify_one();
    }

    fn run(&self) {
        let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            while due.peek().is_some_and(|e| e.0 <= now) {
                let Entry(_, wake) = due.pop().expect("peeked");
                let _ = wake.send(());
            }
            due = match due.peek().map(|e| e.0 - now) {
                Some(wait) => self.changed.wait_timeout(due, wait).unwrap_or_else(|e| e.into_inner()).0,
                None => self.changed.wait(due).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let timer: &'static Timer =
            Box::leak(Box::new(Timer { due: Mutex::new(BinaryHeap::new()), changed: Condvar::new() }));
        std::thread::Builder::new()
            .name("reef-lab-timer".into())
            .spawn(|| timer.run())
            .expect("a thread for the lab's timer");
        timer
    })
}
