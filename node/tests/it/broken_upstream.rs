//! An upstream that breaks mid-transfer or lies about the checksum: the cache must never serve
//! a partial or corrupt object, now or later. The "origin" here is a small HTTP server run by
//! the test, so the failure is exact instead of timed.

use crate::common::*;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Copy)]
enum Lie {
    /// Announces the full length, sends a third, closes.
    Truncate,
    /// Sends everything, with a `Digest` that does not match.
    WrongDigest,
    /// Announces the full length, sends a third, then stalls with the connection open.
    Stall,
}

const SIZE: usize = 3 << 20;

/// Serves every GET with the object, badly; counts GETs.
fn fake_origin(lie: Lie) -> (u16, Arc<AtomicUsize>, std::sync::mpsc::Sender<()>) {
    let gets = Arc::new(AtomicUsize::new(0));
    let counter = gets.clone();
    let body = bytes(SIZE, 9);
    // A stalled response holds its connection until the test ends (the sender is dropped).
    let (release, stalled) = std::sync::mpsc::channel::<()>();
    let stalled = std::sync::Mutex::new(stalled);
    let port = fake_server(move |head, stream| {
        if answer_block_list(head, stream, &body) {
            return true;
        }
        counter.fetch_add(1, Ordering::SeqCst);
        let digest = match lie {
            Lie::WrongDigest => "Digest: adler32=00000001\r\n",
            Lie::Truncate | Lie::Stall => "",
        };
        let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\nETag: \"v1\"\r\n{digest}\r\n");
        match lie {
            Lie::Truncate => {
                let _ = stream.write_all(&body[..SIZE / 3]);
                false // drops the connection mid-body
            }
            Lie::WrongDigest => stream.write_all(&body).is_ok(),
            Lie::Stall => {
                let _ = stream.write_all(&body[..SIZE / 3]);
                let _ = stream.flush();
                let _ = stalled.lock().unwrap().recv();
                false
            }
        }
    });
    (port, gets, release)
}

fn never_served_broken(lie: Lie) {
    let (port, gets, _release) = fake_origin(lie);
    let fake = Spec { external: Some(port), ..origin(1) };
    let c = Cluster::start(&[fake, cache(11, "site-a")]);
    let url = c.url(11, "/atlas/obj.bin");
    for round in 1..=2 {
        let out = curl(&["-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", &url]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let complete_ok = out.status.success() && text == format!("200 {SIZE}");
        assert!(!complete_ok, "round {round}: a broken fill was served as a complete object ({text})");
        // Each round went upstream again: nothing broken was kept.
        assert_eq!(gets.load(Ordering::SeqCst), round);
        let tmp = c.dir.path().join("n11/store/tmp");
        wait_until("the broken fill's temp file is removed", || std::fs::read_dir(&tmp).unwrap().count() == 0);
    }
    assert_eq!(c.metric(11, "reef_cache_admitted_total"), 0.0);
    let store = c.dir.path().join("n11/store/objects");
    assert_eq!(std::fs::read_dir(store).unwrap().count(), 0, "no object on disk");
    assert_eq!(get(&c.url(11, "/healthz"), &[]).0, 200);
}

#[test]
fn a_transfer_that_breaks_is_never_served_or_kept() {
    never_served_broken(Lie::Truncate);
}

#[test]
fn a_checksum_mismatch_is_never_served_or_kept() {
    never_served_broken(Lie::WrongDigest);
}

#[test]
fn a_stalled_transfer_times_out_and_leaves_nothing_behind() {
    never_served_broken(Lie::Stall);
}

/// A fake origin that serves the object with ETag "v1". With `break_at`, each response stops
/// after that many bytes and the connection closes, once `go` says so.
fn origin_serving(
    body: Arc<Vec<u8>>,
    break_at: Option<(usize, std::sync::mpsc::Receiver<()>)>,
    gets: Arc<AtomicUsize>,
) -> u16 {
    let break_at = break_at.map(|(n, go)| (n, std::sync::Mutex::new(go)));
    fake_server(move |head, stream| {
        if answer_block_list(head, stream, &body) {
            return true;
        }
        gets.fetch_add(1, Ordering::SeqCst);
        let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\nETag: \"v1\"\r\n\r\n");
        match &break_at {
            Some((n, go)) => {
                let _ = stream.write_all(&body[..*n]);
                let _ = stream.flush();
                // Break only once the client is reading: its response has started.
                let _ = go.lock().unwrap().recv_timeout(std::time::Duration::from_secs(30));
                false
            }
            None => stream.write_all(&body).is_ok(),
        }
    })
}

#[test]
fn a_reader_resumes_from_the_next_source_when_its_source_breaks() {
    // Origin 1 breaks after half the object, once the client is streaming from it; origin 2
    // has the same version. The core fails over, and the client's one response carries every
    // byte, right.
    let body = Arc::new(bytes(SIZE, 4));
    let (first, second) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (go, wait) = std::sync::mpsc::channel();
    let breaking = origin_serving(body.clone(), Some((SIZE / 2, wait)), first.clone());
    let honest = origin_serving(body.clone(), None, second.clone());
    let c = Cluster::start(&[
        Spec { external: Some(breaking), ..origin(1) },
        Spec { external: Some(honest), ..origin(2) },
        cache(11, "site-a"),
    ]);
    let mut client = std::net::TcpStream::connect(("127.0.0.1", c.port(11))).unwrap();
    write!(client, "GET /atlas/obj.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    // The response head arrives while origin 1 is still the source...
    let mut response = Vec::new();
    let mut buf = [0u8; 65536];
    let head_end = loop {
        let n = client.read(&mut buf).unwrap();
        assert!(n > 0, "the cache closed before answering");
        response.extend_from_slice(&buf[..n]);
        if let Some(at) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&response[..head_end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("detail=origin-n1"), "the stream started from origin 1: {head}");
    // ... then it breaks, and the same response goes on from origin 2 to the last byte.
    go.send(()).unwrap();
    client.read_to_end(&mut response).unwrap();
    let got = &response[head_end..];
    assert_eq!(got.len(), SIZE, "the whole object in one response");
    assert!(got == &body[..], "every byte right");
    assert_eq!((first.load(Ordering::SeqCst), second.load(Ordering::SeqCst)), (1, 1));
    wait_until("the object is committed", || c.metric(11, "reef_cache_admitted_total") == 1.0);
    let (status, _, again) = get(&c.url(11, "/atlas/obj.bin"), &[]);
    assert!(status == 200 && again == *body);
}
