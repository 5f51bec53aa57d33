//! Helpers shared by the cluster tests: every wait has a deadline; HTTP GETs of the dashboard.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `body` on its own thread and fails the test if it takes longer than `seconds`.
pub fn within<T: Send + 'static>(seconds: u64, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(body());
    });
    result
        .recv_timeout(Duration::from_secs(seconds))
        .unwrap_or_else(|_| panic!("the test did not finish within {seconds} s"))
}

/// Polls `condition` every 20 ms until it holds, failing after `seconds`.
pub fn eventually(seconds: u64, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {seconds} s waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback address whose port was free a moment ago, for a server the test starts.
pub fn free_loopback_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    format!("127.0.0.1:{}", listener.local_addr().expect("its address").port())
}

/// A plain HTTP/1.1 GET; returns the status line and the body.
pub fn get(address: &str, path: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    (head.lines().next().unwrap_or_default().to_string(), body.to_string())
}

/// A GET of a JSON endpoint, parsed.
pub fn json(address: &str, path: &str) -> serde_json::Value {
    let (status, body) = get(address, path);
    assert!(status.contains("200"), "{path}: {status}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}
