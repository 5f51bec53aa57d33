//! Helpers shared by the cluster tests: every wait has a deadline.

#![allow(dead_code)] // each test file uses its own subset

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
