//! A terminal progress bar for local computations, like `dask.diagnostics.ProgressBar`.
//!
//! [`ProgressMode::Auto`] (the default) draws the bar only when standard error is a terminal,
//! so logs and pipes stay clean; [`ProgressMode::Always`] draws it anyway; [`ProgressMode::Never`]
//! never does. The bar is a [`Callbacks`] implementation over `indicatif`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressDrawTarget, ProgressStyle};
use rask_core::{TaskGraph, TaskIndex};

use crate::Callbacks;

/// When to draw a progress bar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// When standard error is a terminal.
    #[default]
    Auto,
    /// Always (to standard error).
    Always,
    /// Never.
    Never,
}

impl ProgressMode {
    /// A bar for a run of `tasks` tasks, if this mode draws one.
    pub fn bar(self, tasks: usize) -> Option<ProgressBar> {
        let show = match self {
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            ProgressMode::Always => true,
            ProgressMode::Never => false,
        };
        show.then(|| ProgressBar::new(tasks))
    }
}

/// A progress bar that counts finished tasks.
pub struct ProgressBar {
    bar: indicatif::ProgressBar,
}

impl ProgressBar {
    /// A bar for `tasks` tasks, drawn to standard error at most ten times a second.
    pub fn new(tasks: usize) -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(tasks as u64),
            ProgressDrawTarget::stderr_with_hz(10),
        );
        bar.set_style(
            ProgressStyle::with_template("[{bar:40}] | {percent:>3}% Completed | {elapsed_precise} | {pos}/{len} tasks {msg}")
                .expect("the template is valid")
                .progress_chars("##-"),
        );
        ProgressBar { bar }
    }

    /// How many tasks the bar has counted.
    pub fn position(&self) -> u64 {
        self.bar.position()
    }
}

impl Callbacks for ProgressBar {
    fn on_task_finish(
        &self,
        _graph: &TaskGraph,
        _task: TaskIndex,
        _thread: usize,
        _elapsed: Duration,
        ok: bool,
    ) {
        // A failed attempt may be retried: count a task once, when it succeeds.
        if ok {
            self.bar.inc(1);
        }
    }

    fn on_finish(&self, _graph: &TaskGraph, ok: bool) {
        if ok {
            self.bar.finish();
        } else {
            self.bar.abandon_with_message("(failed)");
        }
    }
}
