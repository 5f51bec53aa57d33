//! How benchmark steps are timed: each runs `--repeat` times (steps under 0.1 s at least 15
//! times: on a shared machine one run's noise is a large share of a few milliseconds) and its
//! median time is reported, with the number of runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::Result;

static REPEAT: OnceLock<usize> = OnceLock::new();
static LAST_RUNS: AtomicUsize = AtomicUsize::new(1);

const SHORT_STEP_SECONDS: f64 = 0.1;
const SHORT_STEP_RUNS: usize = 15;

/// Sets how many times each step runs (once, from `--repeat`).
pub fn set_repeat(repeat: usize) {
    let _ = REPEAT.set(repeat.max(1));
}

/// How many runs the last timed step had.
pub fn last_runs() -> usize {
    LAST_RUNS.load(Ordering::Relaxed)
}

/// Runs a step; its median time and its last answer.
pub fn timed<T>(mut run: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
    let mut runs = REPEAT.get().copied().unwrap_or(1).max(1);
    let mut seconds = Vec::with_capacity(runs);
    let mut out = None;
    while seconds.len() < runs {
        let started = Instant::now();
        out = Some(run()?);
        seconds.push(started.elapsed().as_secs_f64());
        if seconds.len() == 1 && seconds[0] < SHORT_STEP_SECONDS {
            runs = runs.max(SHORT_STEP_RUNS);
        }
    }
    LAST_RUNS.store(runs, Ordering::Relaxed);
    seconds.sort_by(f64::total_cmp);
    Ok((seconds[runs / 2], out.expect("at least one run")))
}

/// Runs a step once: for steps that persist, whose repeats on a cluster would find the results
/// of the first run still held there and return at once.
pub fn timed_once<T>(run: impl FnOnce() -> Result<T>) -> Result<(f64, T)> {
    let started = Instant::now();
    let out = run()?;
    LAST_RUNS.store(1, Ordering::Relaxed);
    Ok((started.elapsed().as_secs_f64(), out))
}
