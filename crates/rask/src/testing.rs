//! Small registered functions for tests, examples and trying out a cluster, like Dask's
//! `inc` and `slowinc` in `distributed.utils_test`. They are part of the `rask` binary, so a
//! stock `rask worker` can run them.

use std::time::Duration;

/// `x + 1`.
#[crate::delayed]
pub fn inc(x: i64) -> i64 {
    x + 1
}

/// `x + y`.
#[crate::delayed]
pub fn add(x: i64, y: i64) -> i64 {
    x + y
}

/// The sum of a list.
#[crate::delayed]
pub fn total(xs: &[i64]) -> i64 {
    xs.iter().sum()
}

/// `x + 1` after sleeping `millis` milliseconds (a stand-in for real work).
#[crate::delayed]
pub fn slow_inc(x: i64, millis: u64) -> i64 {
    std::thread::sleep(Duration::from_millis(millis));
    x + 1
}

/// A vector of `n` numbers (a stand-in for a large input).
#[crate::delayed]
pub fn make_data(n: u64) -> Vec<f64> {
    (0..n).map(|i| i as f64).collect()
}

/// The length of a vector plus `x` after sleeping `millis` milliseconds.
#[crate::delayed]
pub fn slow_len(data: &[f64], x: i64, millis: u64) -> i64 {
    std::thread::sleep(Duration::from_millis(millis));
    data.len() as i64 + x
}

/// Fails with an error mentioning `x`.
#[crate::delayed]
pub fn fail(x: i64) -> Result<i64, std::io::Error> {
    Err(std::io::Error::other(format!("failed on purpose with {x}")))
}

/// Ends the whole process that runs it (to test what the cluster does when a worker dies).
#[crate::delayed(impure)]
pub fn abort_process(x: i64) -> i64 {
    if x >= 0 {
        std::process::abort();
    }
    x
}

/// The name of the worker that runs it (empty outside a worker), after sleeping `millis`
/// milliseconds; `input` only ties it to where its input lives.
#[crate::delayed(impure)]
pub fn where_am_i(input: &[f64], millis: u64) -> String {
    let _ = input.len();
    std::thread::sleep(Duration::from_millis(millis));
    rask_worker::current_worker_name().unwrap_or_default()
}

/// The newest `i64` in the named channel (0 when it is empty), read from inside a task through
/// `rask::worker_client()`: how a task sees what a client published.
#[crate::delayed(impure)]
pub fn read_latest(channel: &str) -> Result<i64, crate::ClientError> {
    let client = crate::worker_client()?;
    match client.channel::<i64>(channel, 1000).latest()? {
        Some(future) => client.result(&future),
        None => Ok(0),
    }
}
