//! # rask-local: the in-process parallel scheduler
//!
//! [`LocalScheduler`] runs a [`TaskGraph`] on a pool of threads — by default one per core, the
//! calling thread among them — always starting the ready task with the best static priority
//! (see `rask_core::order`). Each result is released as soon as the last task that reads it has
//! run, so memory follows the ordering rather than the size of the graph.
//!
//! * Failures: a task's error (or caught panic) is recorded with its key, function name and
//!   chain of causes; tasks that depend on it fail with the same error without running, and
//!   every independent task still finishes. Tasks are retried as their `retries` say.
//! * [`CancelToken`]: stops handing out tasks; the run returns [`Error::Cancelled`].
//! * Sync mode ([`LocalScheduler::sync`]): everything on the calling thread, in exact priority
//!   order, for debugging with ordinary tools.
//! * [`Callbacks`] see every task start and finish; [`progress`] draws a terminal progress bar
//!   with them, like `dask.diagnostics.ProgressBar`, and [`report`] records a self-contained HTML
//!   performance report.
//!
//! [`ComputeExt`] gives every collection `compute()` (and `Delayed` values `persist()`), run on
//! the process's default scheduler: this one, unless a distributed client installed itself.
//!
//! ```
//! use rask_local::{ComputeExt, LocalScheduler};
//! use rask_core::delayed;
//!
//! let x = delayed(20_i64);
//! let y = x.map("double", |x| x * 2);
//! assert_eq!(y.compute_with(&LocalScheduler::new()).unwrap(), 40);
//! ```

mod executor;
pub mod progress;
pub mod report;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rask_core::optimize::prepare;
use rask_core::{
    compute_on, default_scheduler, Collection, Delayed, Error, Graph, Key, Optimizations, Result,
    Scheduler, TaskGraph, TaskIndex, Value,
};

pub use progress::{ProgressBar, ProgressMode};
pub use report::PerformanceReport;

/// Sees the tasks of a run start and finish. Every method has an empty default.
pub trait Callbacks: Send + Sync {
    /// The run is about to start.
    fn on_start(&self, _graph: &TaskGraph) {}
    /// Thread `thread` starts running `task`.
    fn on_task_start(&self, _graph: &TaskGraph, _task: TaskIndex, _thread: usize) {}
    /// `task` finished on `thread` after `elapsed` (`ok` is false when it failed).
    fn on_task_finish(
        &self,
        _graph: &TaskGraph,
        _task: TaskIndex,
        _thread: usize,
        _elapsed: Duration,
        _ok: bool,
    ) {
    }
    /// The run ended.
    fn on_finish(&self, _graph: &TaskGraph, _ok: bool) {}
}

/// Cancels a running computation from another thread (or from inside a task).
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        CancelToken::default()
    }

    /// Asks the computation to stop: no new task starts after this.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether `cancel` was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The outcome of one run: a result per requested output, and what the run did.
#[derive(Debug)]
pub struct RunReport {
    /// The value or error of each output, in the order they were requested.
    pub outputs: Vec<Result<Value>>,
    /// Counters of the run.
    pub stats: RunStats,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Tasks in the graph.
    pub tasks: usize,
    /// Task executions, counting retries; tasks skipped because an input failed don't count.
    pub executions: usize,
    /// The most results held in memory at once.
    pub peak_results_held: usize,
}

impl RunReport {
    /// The outputs' values, or the first error (in output order).
    pub fn into_values(self) -> Result<Vec<Value>> {
        self.outputs.into_iter().collect()
    }
}

/// Runs task graphs on threads of this process.
#[derive(Clone)]
pub struct LocalScheduler {
    threads: usize,
    sync: bool,
    progress: ProgressMode,
    callbacks: Vec<Arc<dyn Callbacks>>,
    cancel: Option<CancelToken>,
}

impl Default for LocalScheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalScheduler {
    /// A scheduler with one thread per core, a progress bar on a terminal.
    pub fn new() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        LocalScheduler {
            threads,
            sync: false,
            progress: ProgressMode::Auto,
            callbacks: Vec::new(),
            cancel: None,
        }
    }

    /// Everything on the calling thread, in exact priority order (like Dask's
    /// `scheduler="sync"`): for debugging, and for tests that need a deterministic order.
    pub fn sync() -> Self {
        LocalScheduler { threads: 1, sync: true, ..Self::new() }
    }

    /// Uses `threads` threads (at least one), the calling thread among them.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self.sync = false;
        self
    }

    /// How many threads run tasks.
    pub fn num_threads(&self) -> usize {
        self.threads
    }

    /// When to draw a progress bar.
    pub fn progress(mut self, mode: ProgressMode) -> Self {
        self.progress = mode;
        self
    }

    /// Adds callbacks that see every task.
    pub fn callbacks(mut self, callbacks: Arc<dyn Callbacks>) -> Self {
        self.callbacks.push(callbacks);
        self
    }

    /// Lets `token` cancel the computations of this scheduler.
    pub fn cancel_token(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Runs a prepared task graph and reports every output separately.
    pub fn run(&self, graph: &TaskGraph) -> Result<RunReport> {
        let mut callbacks = self.callbacks.clone();
        if let Some(bar) = self.progress.bar(graph.len()) {
            callbacks.push(Arc::new(bar));
        }
        let threads = if self.sync { 1 } else { self.threads };
        executor::run(graph, threads, &callbacks, self.cancel.as_ref())
    }

    /// Lowers `graph` for `outputs` and runs it, reporting every output separately.
    pub fn run_graph(
        &self,
        graph: &Graph,
        outputs: &[Key],
        optimizations: &Optimizations,
    ) -> Result<RunReport> {
        self.run(&prepare(graph, outputs, optimizations)?)
    }
}

impl Scheduler for LocalScheduler {
    fn compute(
        &self,
        graph: &Graph,
        outputs: &[Key],
        optimizations: &Optimizations,
    ) -> Result<Vec<Value>> {
        self.run_graph(graph, outputs, optimizations)?.into_values()
    }
}

/// The scheduler `compute()` and every eager operation of a collection (`head`, `persist`,
/// chunk sizes found by computing) run on: a distributed client if one was installed with
/// `rask_core::set_default_scheduler`, otherwise a new [`LocalScheduler`].
pub fn current_scheduler() -> Arc<dyn Scheduler> {
    default_scheduler().unwrap_or_else(|| Arc::new(LocalScheduler::new()))
}

/// `compute()` for every collection.
pub trait ComputeExt: Collection {
    /// Computes the collection on the default scheduler (see [`current_scheduler`]).
    fn compute(&self) -> Result<Self::Output> {
        compute_on(self, &*current_scheduler())
    }

    /// Computes the collection on the given scheduler.
    fn compute_with(&self, scheduler: &dyn Scheduler) -> Result<Self::Output> {
        compute_on(self, scheduler)
    }
}

impl<C: Collection + ?Sized> ComputeExt for C {}

/// `persist()` for delayed values.
pub trait PersistExt<T> {
    /// Computes the value now and returns a delayed that holds it under the same key, so later
    /// graphs built on it start from the result instead of recomputing it.
    fn persist(&self) -> Result<Delayed<T>>;
}

impl<T: Clone + Send + Sync + 'static> PersistExt<T> for Delayed<T> {
    fn persist(&self) -> Result<Delayed<T>> {
        let values = current_scheduler().compute(
            &self.graph(),
            &[self.key().clone()],
            &Optimizations::default(),
        )?;
        let value = values.into_iter().next().ok_or(Error::Cancelled)?;
        Ok(Delayed::literal(self.key().clone(), value))
    }
}
