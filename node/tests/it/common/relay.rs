//! A TCP relay for a bad link: forwards each connection to an upstream port, and cuts the
//! connection carrying the byte where the client-to-server stream (counted over all
//! connections) crosses each of the given offsets; optionally paces that direction.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Relay {
    pub port: u16,
    /// Client-to-server bytes forwarded so far.
    pub forwarded: Arc<AtomicU64>,
    /// Connections cut so far.
    pub cut: Arc<AtomicU64>,
}

impl Relay {
    /// Relays to `upstream`; cuts at each of `cuts` (ascending byte offsets); `rate` limits
    /// the client-to-server direction (bytes per second).
    pub fn start(upstream: u16, cuts: Vec<u64>, rate: Option<u64>) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let forwarded = Arc::new(AtomicU64::new(0));
        let cut = Arc::new(AtomicU64::new(0));
        let cuts = Arc::new(Mutex::new(cuts));
        let (f, c) = (forwarded.clone(), cut.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let (f, c, cuts) = (f.clone(), c.clone(), cuts.clone());
                let (client2, server2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pipe(server2, client2));
                std::thread::spawn(move || forward(client, server, &f, &c, &cuts, rate));
            }
        });
        Relay { port, forwarded, cut }
    }
}

/// Server to client, unchanged.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0; 64 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Client to server, counted, cut and paced.
fn forward(
    mut from: TcpStream,
    mut to: TcpStream,
    total: &AtomicU64,
    cut: &AtomicU64,
    cuts: &Mutex<Vec<u64>>,
    rate: Option<u64>,
) {
    let started = Instant::now();
    let mut sent = 0u64;
    let mut buf = vec![0; 64 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        let at = total.load(Ordering::SeqCst);
        let mut n = n as u64;
        let mut cutting = false;
        {
            let mut cuts = cuts.lock().unwrap();
            if let Some(&offset) = cuts.first()
                && at + n >= offset
            {
                n = offset.saturating_sub(at);
                cuts.remove(0);
                cutting = true;
            }
        }
        if to.write_all(&buf[..n as usize]).is_err() {
            break;
        }
        total.fetch_add(n, Ordering::SeqCst);
        sent += n;
        if cutting {
            cut.fetch_add(1, Ordering::SeqCst);
            break;
        }
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
