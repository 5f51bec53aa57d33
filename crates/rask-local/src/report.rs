//! Performance reports: a self-contained HTML file of a computation — its task stream, time and
//! bytes per task prefix, and the workers — that opens offline, like Dask's
//! `performance_report`.
//!
//! [`PerformanceReport`] is a [`Callbacks`] for the local scheduler: run a computation with it,
//! then [`PerformanceReport::write`]. A distributed client writes the same report from the
//! scheduler's task stream ([`render`] takes the tasks from anywhere).

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rask_core::{TaskGraph, TaskIndex};

use crate::Callbacks;

/// The task-stream drawing code shared by reports and the scheduler's live dashboard.
pub const STREAM_JS: &str = include_str!("report/stream.js");

const TEMPLATE: &str = include_str!("report/report.html");

/// One task in a report.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportTask {
    /// The task's key, as text.
    pub key: String,
    /// The key's prefix (what the report groups by).
    pub prefix: String,
    /// Which worker ran it (a number; named by `workers` in [`render`]).
    pub worker: u32,
    /// Which thread of that worker.
    pub thread: u32,
    /// When it started, in microseconds since the Unix epoch.
    pub start_us: u64,
    /// How long it ran, in microseconds.
    pub duration_us: u64,
    /// Its result's size in bytes (0 when unknown); for transfers and disk traffic, the bytes
    /// moved.
    pub nbytes: u64,
    /// `task`, or `transfer` / `spill` for a worker's fetches from peers and its disk traffic
    /// (drawn in red and orange, in rows of their own).
    pub kind: &'static str,
}

/// The report as one HTML page with its data and code inside.
pub fn render(title: &str, tasks: &[ReportTask], workers: &[(u32, String)]) -> String {
    let mut data = String::with_capacity(64 + tasks.len() * 160);
    data.push_str("{\"title\":");
    push_json_string(&mut data, title);
    data.push_str(&format!(",\"made_us\":{}", now_us()));
    data.push_str(",\"workers\":{");
    for (i, (id, name)) in workers.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        push_json_string(&mut data, &id.to_string());
        data.push(':');
        push_json_string(&mut data, name);
    }
    data.push_str("},\"tasks\":[");
    for (i, t) in tasks.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        data.push_str("{\"key\":");
        push_json_string(&mut data, &t.key);
        data.push_str(",\"prefix\":");
        push_json_string(&mut data, &t.prefix);
        data.push_str(&format!(
            ",\"worker\":{},\"thread\":{},\"start_us\":{},\"duration_us\":{},\"nbytes\":{},\"kind\":\"{}\"}}",
            t.worker, t.thread, t.start_us, t.duration_us, t.nbytes, t.kind
        ));
    }
    data.push_str("]}");
    TEMPLATE.replace("/*STREAM_JS*/", STREAM_JS).replace("/*DATA*/", &data)
}

/// Writes `text` as a JSON string literal, safe inside a `<script>` element.
fn push_json_string(out: &mut String, text: &str) {
    let quoted = serde_json::to_string(text).expect("a string serializes");
    // `</script>` inside the data would end the script element early.
    out.push_str(&quoted.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026"));
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Records the tasks of local computations for a report. Add it to a scheduler with
/// `LocalScheduler::callbacks`, compute, then `write`.
pub struct PerformanceReport {
    title: String,
    tasks: Mutex<Vec<ReportTask>>,
    /// Wall clock and monotonic clock at creation, to date task starts cheaply.
    epoch_us: u64,
    origin: Instant,
    started: Mutex<std::collections::HashMap<(TaskIndex, usize), Duration>>,
}

impl PerformanceReport {
    /// An empty report.
    pub fn new(title: &str) -> Self {
        PerformanceReport {
            title: title.to_string(),
            tasks: Mutex::new(Vec::new()),
            epoch_us: now_us(),
            origin: Instant::now(),
            started: Mutex::new(Default::default()),
        }
    }

    /// The tasks recorded so far.
    pub fn tasks(&self) -> Vec<ReportTask> {
        self.tasks.lock().expect("not poisoned").clone()
    }

    /// Writes the report as a self-contained HTML file.
    pub fn write(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        let tasks = self.tasks();
        let threads: std::collections::BTreeSet<u32> = tasks.iter().map(|t| t.thread).collect();
        let workers = vec![(0, format!("this process ({} threads used)", threads.len()))];
        std::fs::write(path, render(&self.title, &tasks, &workers))
    }
}

impl Callbacks for PerformanceReport {
    fn on_task_start(&self, _graph: &TaskGraph, task: TaskIndex, thread: usize) {
        self.started.lock().expect("not poisoned").insert((task, thread), self.origin.elapsed());
    }

    fn on_task_finish(
        &self,
        graph: &TaskGraph,
        task: TaskIndex,
        thread: usize,
        elapsed: Duration,
        _ok: bool,
    ) {
        let start =
            self.started.lock().expect("not poisoned").remove(&(task, thread)).unwrap_or_default();
        let key = &graph.task(task).key;
        self.tasks.lock().expect("not poisoned").push(ReportTask {
            key: key.to_string(),
            prefix: graph.task(task).label().to_string(),
            worker: 0,
            thread: thread as u32,
            start_us: self.epoch_us + start.as_micros() as u64,
            duration_us: elapsed.as_micros() as u64,
            nbytes: 0,
            kind: "task",
        });
    }
}
