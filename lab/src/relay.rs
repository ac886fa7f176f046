//! An emulated WAN path in user space: a TCP relay that delays every byte by the path's
//! one-way latency and paces it to the rate of each link on the path, links shared by every
//! connection that crosses them.
//!
//! Model: a chunk read at `t` may leave at `t + latency`; each link on the path then carries it
//! for `len / rate` after the link is free (one clock per link and direction, shared by all
//! connections: first come, first served). A chunk leaves when the last link has carried it.
//! Release times come from these clocks, not from when the writer woke, so timer jitter delays
//! single chunks but never lowers the average rate. Bytes in flight per connection are bounded
//! (`MAX_IN_FLIGHT`), so a slow reader pushes back on the sender as a real path does.
//!
//! Failures: a target that refuses (a node that is down) is passed on as a close; a target
//! without a route (a cut link) is a black hole, as the simulator models it: the connection is
//! accepted and never answered. Connections already open when a link is cut stall in the kernel
//! (the interface is down), which is a black hole too.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Chunks read at once.
const CHUNK: usize = 16 * 1024;
/// Chunks held per connection and direction (4 MiB): more than a bandwidth-delay product of
/// 10 Gbit/s × 3 ms, the most this relay is asked to emulate on one machine.
const MAX_IN_FLIGHT: usize = 256;

/// One direction of one link: its rate and when it is next free.
#[derive(Debug)]
pub struct Link {
    bytes_per_sec: f64,
    free_at: Mutex<Option<Instant>>,
}

impl Link {
    /// A link direction of `bits_per_sec` (0: unlimited).
    pub fn new(bits_per_sec: u64) -> Arc<Link> {
        Arc::new(Link { bytes_per_sec: bits_per_sec as f64 / 8.0, free_at: Mutex::new(None) })
    }

    /// Carries `len` bytes that are ready at `ready`; returns when they are through.
    fn carry(&self, ready: Instant, len: usize) -> Instant {
        if self.bytes_per_sec <= 0.0 {
            return ready;
        }
        let mut free = self.free_at.lock().unwrap_or_else(|e| e.into_inner());
        let start = free.map_or(ready, |f| f.max(ready));
        let done = start + Duration::from_secs_f64(len as f64 / self.bytes_per_sec);
        *free = Some(done);
        done
    }
}

/// One direction of a path: a one-way latency and the links crossed, in order.
#[derive(Debug, Clone)]
pub struct Path {
    pub latency: Duration,
    pub links: Vec<Arc<Link>>,
}

impl Path {
    fn release(&self, read_at: Instant, len: usize) -> Instant {
        self.links.iter().fold(read_at + self.latency, |ready, link| link.carry(ready, len))
    }
}

/// A relay listening on a local port: each connection is forwarded to `target`, the bytes
/// towards the target over `forward` and the answers over `back`.
#[derive(Debug)]
pub struct Relay {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub async fn start(listen: SocketAddr, target: SocketAddr, forward: Path, back: Path) -> std::io::Result<Relay> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (forward, back) = (forward.clone(), back.clone());
                tokio::spawn(async move {
                    let server = match TcpStream::connect(target).await {
                        Ok(server) => server,
                        // A node that is down answers with a reset: so does the relay.
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
                        // No route (a cut link): the path loses everything and tells nobody,
                        // so the client hears nothing until it gives up.
                        Err(_) => return black_hole(client).await,
                    };
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(pipe(client_read, server_write, forward), pipe(server_read, client_write, back));
                });
            }
        });
        Ok(Relay { addr, task })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads and drops what the client sends until it closes.
async fn black_hole(mut client: TcpStream) {
    let mut buf = vec![0u8; CHUNK];
    while matches!(client.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Moves bytes from `from` to `to` along `path`; a close or error on either side ends it (and
/// shuts the write side down, so the other end sees the close after the delayed bytes).
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, path: Path) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(MAX_IN_FLIGHT);
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let at = path.release(Instant::now(), n);
                    if tx.send((at, buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, bytes)) = rx.recv().await {
            crate::timer::sleep_until(at).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
