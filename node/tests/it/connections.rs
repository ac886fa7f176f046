//! Connection limits on a real node: silent and idle connections are closed within their
//! timeouts while other clients are served, and connections beyond the cap are refused at once.

use crate::common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Whether the server closed `s` (a read returns end of file, or the connection was reset).
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a response still buffered
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn silent_and_idle_connections_are_closed_while_others_are_served() {
    let limits = "header_timeout = \"1s\"\nidle_timeout = \"2s\"\n";
    let c = Cluster::start(&[origin(1), Spec { node: limits, ..cache(11, "site-a") }]);
    let body = c.put("f.bin", bytes(10_000, 3));
    let port = c.port(11);
    // 2,000 connections that never send a byte, and 20 that make one request and then idle.
    let started = Instant::now();
    let mut silent: Vec<TcpStream> = (0..2000).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    let mut idle: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            write!(s, "GET /atlas/f.bin HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            s
        })
        .collect();
    // (A listen backlog smaller than 2,000 makes some connects wait: time from here.)
    let connected = Instant::now();
    // Meanwhile another client is served.
    let (status, _, got) = get(&c.url(11, "/atlas/f.bin"), &[]);
    assert!(status == 200 && got == body);
    // All are closed within their timeouts (plus scheduling slack), none before the header
    // timeout (checked when the test got here in time to tell).
    if started.elapsed() < Duration::from_millis(500) {
        assert!(!closed_by_server(&mut silent[0]), "closed before the header timeout");
    }
    wait_until("every silent connection is closed", || silent.iter_mut().all(closed_by_server));
    // The header timeout (1 s), plus slack for a debug build on two shared cores.
    assert!(connected.elapsed() < Duration::from_secs(5), "silent connections closed after {:?}", connected.elapsed());
    wait_until("every idle connection is closed", || idle.iter_mut().all(closed_by_server));
    // The idle timeout (2 s), plus the same slack.
    assert!(connected.elapsed() < Duration::from_secs(6), "idle connections closed after {:?}", connected.elapsed());
    let (status, _, got) = get(&c.url(11, "/atlas/f.bin"), &[]);
    assert!(status == 200 && got == body);
}

#[test]
fn connections_beyond_the_cap_are_closed_at_once_and_counted() {
    let limits = "max_connections = 50\nheader_timeout = \"2s\"\n";
    let c = Cluster::start(&[origin(1), Spec { node: limits, ..cache(11, "site-a") }]);
    let port = c.port(11);
    // (The listener accepts in connection order: these 50 take every slot before the rest.)
    let held: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    let mut extra: Vec<TcpStream> = (0..30).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    wait_until("the connections over the cap are closed", || extra.iter_mut().all(closed_by_server));
    drop(held);
    // Once the slots are free, the node serves again and has counted the refusals (and maybe
    // a poll of ours that came before a slot was free).
    wait_until("the node serves again", || c.metric(11, "reef_connections_refused_total") >= 30.0);
    assert_eq!(get(&c.url(11, "/healthz"), &[]).0, 200);
}
