//! How benchmark steps are timed: each runs `--repeat` times (a step with a run under 0.1 s
//! at least 15 times: on a shared machine one run's noise is a large share of a few
//! milliseconds) and its median time is reported, with the number of runs. Each run starts
//! after the last one's answer is dropped. `python/array_bench.py` times the same way.

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
        // The last run's answer is dropped first, so a run reuses the memory the one before it
        // freed instead of touching fresh pages, which a virtual machine makes several times
        // slower the first time (the Python script does the same).
        drop(out.take());
        let started = Instant::now();
        out = Some(run()?);
        seconds.push(started.elapsed().as_secs_f64());
        // Any run under the bound makes it a short step (the first run of a fresh process is
        // often the slowest: its memory is new).
        if seconds.iter().any(|&s| s < SHORT_STEP_SECONDS) {
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
