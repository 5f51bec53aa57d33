//! The threaded executor: atomic dependency counters, one priority queue, one lock per task.
//!
//! Each thread repeats: under the queue lock, hand in the tasks its last task made ready and
//! take the ready task with the best priority (lowest index); then, without the lock, read
//! the inputs, run the task, store the result, count down the dependents' missing inputs and
//! release inputs nobody needs any more. Taking and giving back in one lock acquisition keeps
//! the cost to one lock per task.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use rask_core::task_graph::Dependents;
use rask_core::{Error, Result, TaskFailure, TaskGraph, TaskIndex, Value};
use smallvec::SmallVec;

use crate::{Callbacks, CancelToken, RunReport, RunStats};

/// What a task's slot holds.
enum Slot {
    Empty,
    Done(Value),
    Failed(Arc<TaskFailure>),
}

struct Queue {
    ready: BinaryHeap<Reverse<TaskIndex>>,
    finished: usize,
    idle: usize,
    stop: bool,
}

/// The most tasks a thread takes from the queue at once.
const MAX_BATCH: usize = 16;

struct Run<'a> {
    graph: &'a TaskGraph,
    threads: usize,
    dependents: Dependents,
    /// Inputs each task still waits for.
    waiting: Vec<AtomicU32>,
    /// Readers (and output requests) each result still has.
    uses: Vec<AtomicU32>,
    slots: Vec<Mutex<Slot>>,
    queue: Mutex<Queue>,
    wake: Condvar,
    held: AtomicUsize,
    peak_held: AtomicUsize,
    executions: AtomicUsize,
    callbacks: &'a [Arc<dyn Callbacks>],
    cancel: Option<&'a CancelToken>,
}

pub(crate) fn run(
    graph: &TaskGraph,
    threads: usize,
    callbacks: &[Arc<dyn Callbacks>],
    cancel: Option<&CancelToken>,
) -> Result<RunReport> {
    let n = graph.len();
    let dependents = graph.dependents();
    let mut is_output = vec![0u32; n];
    graph.outputs().iter().for_each(|&o| is_output[o as usize] = 1);
    let waiting = (0..n as TaskIndex).map(|t| AtomicU32::new(graph.deps(t).len() as u32)).collect();
    let uses = (0..n as TaskIndex)
        .map(|t| AtomicU32::new(dependents.of(t).len() as u32 + is_output[t as usize]))
        .collect();
    let ready = (0..n as TaskIndex).filter(|&t| graph.deps(t).is_empty()).map(Reverse).collect();
    let threads = threads.clamp(1, n.max(1));
    let run = Run {
        graph,
        threads,
        dependents,
        waiting,
        uses,
        slots: (0..n).map(|_| Mutex::new(Slot::Empty)).collect(),
        queue: Mutex::new(Queue { ready, finished: 0, idle: 0, stop: false }),
        wake: Condvar::new(),
        held: AtomicUsize::new(0),
        peak_held: AtomicUsize::new(0),
        executions: AtomicUsize::new(0),
        callbacks,
        cancel,
    };
    callbacks.iter().for_each(|c| c.on_start(graph));
    let helpers = threads - 1;
    if helpers == 0 {
        run.work(0);
    } else {
        std::thread::scope(|scope| -> Result<()> {
            for thread in 1..=helpers {
                let run = &run;
                std::thread::Builder::new()
                    .name(format!("rask-local-{thread}"))
                    .spawn_scoped(scope, move || run.work(thread))
                    .map_err(|e| {
                        run.stop();
                        Error::Threads(e.to_string())
                    })?;
            }
            run.work(0);
            Ok(())
        })?;
    }
    let cancelled = run.queue.lock().finished < n;
    let outputs: Vec<Result<Value>> = graph
        .outputs()
        .iter()
        .map(|&o| match &*run.slots[o as usize].lock() {
            Slot::Done(value) => Ok(value.clone()),
            Slot::Failed(failure) => Err(Error::TaskFailed(failure.clone())),
            Slot::Empty => Err(Error::Cancelled),
        })
        .collect();
    let ok = !cancelled && outputs.iter().all(Result::is_ok);
    callbacks.iter().for_each(|c| c.on_finish(graph, ok));
    let stats = RunStats {
        tasks: n,
        executions: run.executions.load(Ordering::Relaxed),
        peak_results_held: run.peak_held.load(Ordering::Relaxed),
    };
    Ok(RunReport { outputs, stats })
}

impl Run<'_> {
    fn stop(&self) {
        self.queue.lock().stop = true;
        self.wake.notify_all();
    }

    fn work(&self, thread: usize) {
        let total = self.graph.len();
        let mut made_ready: SmallVec<[TaskIndex; 8]> = SmallVec::new();
        let mut batch: SmallVec<[TaskIndex; MAX_BATCH]> = SmallVec::new();
        let mut finished = 0;
        loop {
            {
                let mut queue = self.queue.lock();
                queue.finished += finished;
                finished = 0;
                queue.ready.extend(made_ready.drain(..).map(Reverse));
                loop {
                    if queue.stop || queue.finished == total {
                        self.wake.notify_all();
                        return;
                    }
                    // With many tasks ready, take several per lock: the lock, not the tasks,
                    // is the bottleneck for tiny tasks. Alone (sync mode), take one, so the
                    // order is exactly the priority order.
                    let take = if self.threads == 1 {
                        1
                    } else {
                        (queue.ready.len() / (2 * self.threads)).clamp(1, MAX_BATCH)
                    };
                    while batch.len() < take {
                        match queue.ready.pop() {
                            Some(Reverse(task)) => batch.push(task),
                            None => break,
                        }
                    }
                    if !batch.is_empty() {
                        if queue.idle > 0 && !queue.ready.is_empty() {
                            self.wake.notify_one();
                        }
                        break;
                    }
                    queue.idle += 1;
                    self.wake.wait(&mut queue);
                    queue.idle -= 1;
                }
            }
            for task in batch.drain(..) {
                if self.cancel.is_some_and(CancelToken::is_cancelled) {
                    self.stop();
                    return;
                }
                let ok = self.complete(task, thread);
                for &dependent in self.dependents.of(task) {
                    if !ok {
                        self.poison(dependent, task);
                    }
                    if self.waiting[dependent as usize].fetch_sub(1, Ordering::AcqRel) == 1 {
                        made_ready.push(dependent);
                    }
                }
                for &dep in self.graph.deps(task) {
                    self.release(dep);
                }
                finished += 1;
            }
        }
    }

    /// Runs `task` (unless an input failed) and stores its outcome. Returns whether it succeeded.
    fn complete(&self, task: TaskIndex, thread: usize) -> bool {
        if matches!(&*self.slots[task as usize].lock(), Slot::Failed(_)) {
            return false; // an input failed: this task fails with the same error, unrun
        }
        let outcome = self.execute(task, thread);
        let ok = outcome.is_ok();
        let mut slot = self.slots[task as usize].lock();
        match outcome {
            Ok(value) => {
                if self.uses[task as usize].load(Ordering::Acquire) > 0 {
                    *slot = Slot::Done(value);
                    let held = self.held.fetch_add(1, Ordering::Relaxed) + 1;
                    self.peak_held.fetch_max(held, Ordering::Relaxed);
                }
            }
            Err(failure) => *slot = Slot::Failed(failure),
        }
        ok
    }

    fn execute(
        &self,
        task: TaskIndex,
        thread: usize,
    ) -> std::result::Result<Value, Arc<TaskFailure>> {
        let spec = self.graph.task(task);
        let inputs: SmallVec<[Value; 4]> = self
            .graph
            .deps(task)
            .iter()
            .map(|&dep| match &*self.slots[dep as usize].lock() {
                Slot::Done(value) => value.clone(),
                _ => unreachable!("a task runs only after its inputs succeeded"),
            })
            .collect();
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.executions.fetch_add(1, Ordering::Relaxed);
            let started = (!self.callbacks.is_empty()).then(|| {
                self.callbacks.iter().for_each(|c| c.on_task_start(self.graph, task, thread));
                Instant::now()
            });
            let result = spec.run_caught(&inputs);
            if let Some(started) = started {
                let elapsed = started.elapsed();
                let ok = result.is_ok();
                self.callbacks
                    .iter()
                    .for_each(|c| c.on_task_finish(self.graph, task, thread, elapsed, ok));
            }
            match result {
                Ok(value) => return Ok(value),
                Err(_) if attempts <= spec.retries => continue,
                Err((op, error)) => return Err(Arc::new(spec.failure(op, error, attempts))),
            }
        }
    }

    /// Marks `task` as failed because its input `failed` did.
    fn poison(&self, task: TaskIndex, failed: TaskIndex) {
        let failure = match &*self.slots[failed as usize].lock() {
            Slot::Failed(failure) => failure.clone(),
            _ => return,
        };
        let mut slot = self.slots[task as usize].lock();
        if matches!(*slot, Slot::Empty) {
            *slot = Slot::Failed(failure);
        }
    }

    /// One reader of `task`'s result is done; drop the result after the last one.
    fn release(&self, task: TaskIndex) {
        if self.uses[task as usize].fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut slot = self.slots[task as usize].lock();
            if let Slot::Done(_) = std::mem::replace(&mut *slot, Slot::Empty) {
                self.held.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}
