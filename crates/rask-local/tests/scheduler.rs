//! The local scheduler on real graphs: results, failures, panics, retries, cancellation, sync
//! mode, callbacks, memory release, and a property test against a sequential oracle.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use rask_core::{
    Arg, Error, Graph, Key, Optimizations, Scheduler, TaskError, TaskFn, TaskGraph, TaskIndex,
    TaskSpec, Value,
};
use rask_local::{Callbacks, CancelToken, LocalScheduler, ProgressMode};

fn sum_fn() -> TaskFn {
    TaskFn::closure("sum", |args: &[Value]| {
        let mut total = 0_i64;
        for arg in args {
            total = total.wrapping_add(*arg.get::<i64>(&"sum")?);
        }
        Ok(Value::new(total))
    })
}

fn failing(message: &'static str) -> TaskFn {
    TaskFn::closure("explode", move |_: &[Value]| {
        let io = std::io::Error::other(message);
        Err(TaskError::from_dyn(&ErrorWithSource("reading the input failed", io)))
    })
}

#[derive(Debug)]
struct ErrorWithSource(&'static str, std::io::Error);
impl std::fmt::Display for ErrorWithSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}
impl std::error::Error for ErrorWithSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.1)
    }
}

fn quiet() -> LocalScheduler {
    LocalScheduler::new().threads(4).progress(ProgressMode::Never)
}

fn literal(x: i64) -> TaskSpec {
    TaskSpec::new(sum_fn(), vec![Arg::value(x)])
}

fn refs(keys: &[&str]) -> TaskSpec {
    TaskSpec::new(sum_fn(), keys.iter().map(|k| Arg::Key(Key::new(*k))).collect())
}

#[test]
fn computes_a_graph_on_threads_and_in_sync_mode() {
    let g = Graph::from_tasks([
        (Key::new("a"), literal(1)),
        (Key::new("b"), literal(2)),
        (Key::new("c"), refs(&["a", "b"])),
        (Key::new("d"), refs(&["c", "a"])),
    ]);
    for scheduler in [quiet(), LocalScheduler::sync().progress(ProgressMode::Never)] {
        let values = scheduler
            .compute(&g, &[Key::new("d"), Key::new("c")], &Optimizations::default())
            .unwrap();
        assert_eq!(values[0].downcast_ref::<i64>(), Some(&4));
        assert_eq!(values[1].downcast_ref::<i64>(), Some(&3));
    }
}

#[test]
fn a_failing_task_reports_key_function_and_cause_and_independent_tasks_still_finish() {
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let counted = TaskFn::closure("counted", move |_: &[Value]| {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(Value::new(1_i64))
    });
    let mut tasks = vec![
        (Key::new("bad"), TaskSpec::new(failing("disk on fire"), vec![])),
        (Key::new("after-bad"), refs(&["bad"])),
    ];
    for i in 0..50 {
        tasks.push((Key::part("independent", i), TaskSpec::new(counted.clone(), vec![])));
    }
    let g = Graph::from_tasks(tasks);
    let mut outputs = vec![Key::new("after-bad")];
    outputs.extend((0..50).map(|i| Key::part("independent", i)));
    let report = quiet().run_graph(&g, &outputs, &Optimizations::none()).unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 50, "every independent task ran");
    assert!(report.outputs[1..].iter().all(Result::is_ok));
    let err = report.outputs[0].as_ref().unwrap_err();
    let failure = err.task_failure().expect("a task failure");
    assert_eq!(failure.key, Key::new("bad"), "the dependent fails with the original error");
    assert_eq!(failure.function, "explode");
    assert_eq!(failure.error.chain, ["reading the input failed", "disk on fire"]);
    let message = err.to_string();
    assert!(
        message.contains("'bad'")
            && message.contains("explode")
            && message.contains("caused by: disk on fire"),
        "{message}"
    );
    // compute() returns that error.
    let err = quiet().compute(&g, &outputs, &Optimizations::none()).unwrap_err();
    assert!(err.task_failure().is_some());
}

#[test]
fn a_panic_is_caught_and_reported_like_an_error() {
    let panicking = TaskFn::closure("boom", |_: &[Value]| -> rask_core::TaskResult {
        panic!("index out of range in boom")
    });
    let g = Graph::from_tasks([
        (Key::new("p"), TaskSpec::new(panicking, vec![])),
        (Key::new("ok"), literal(7)),
    ]);
    let report =
        quiet().run_graph(&g, &[Key::new("p"), Key::new("ok")], &Optimizations::none()).unwrap();
    let failure = report.outputs[0].as_ref().unwrap_err().task_failure().unwrap().clone();
    assert!(failure.error.panicked);
    assert_eq!(failure.function, "boom");
    assert!(failure.error.chain[0].contains("index out of range"));
    assert!(report.outputs[0].as_ref().unwrap_err().to_string().contains("panicked"));
    assert_eq!(report.outputs[1].as_ref().unwrap().downcast_ref::<i64>(), Some(&7));
}

#[test]
fn retries_run_a_flaky_task_again_and_give_up_after_the_limit() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let flaky = TaskFn::closure("flaky", move |_: &[Value]| {
        if counter.fetch_add(1, Ordering::SeqCst) < 2 {
            Err(TaskError::msg("transient"))
        } else {
            Ok(Value::new(5_i64))
        }
    });
    let g =
        Graph::from_tasks([(Key::new("f"), TaskSpec::new(flaky.clone(), vec![]).with_retries(2))]);
    let report = quiet().run_graph(&g, &[Key::new("f")], &Optimizations::default()).unwrap();
    assert_eq!(report.outputs[0].as_ref().unwrap().downcast_ref::<i64>(), Some(&5));
    assert_eq!(report.stats.executions, 3);

    attempts.store(0, Ordering::SeqCst);
    let g = Graph::from_tasks([(Key::new("f"), TaskSpec::new(flaky, vec![]).with_retries(1))]);
    let err = quiet().compute(&g, &[Key::new("f")], &Optimizations::default()).unwrap_err();
    assert_eq!(err.task_failure().unwrap().attempts, 2);
    assert!(err.to_string().contains("after 2 attempts"), "{err}");
}

#[test]
fn cancelling_stops_the_run_and_reports_cancelled() {
    let token = CancelToken::new();
    let inside = token.clone();
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let step = TaskFn::closure("step", move |args: &[Value]| {
        if counter.fetch_add(1, Ordering::SeqCst) == 10 {
            inside.cancel();
        }
        Ok(args.first().cloned().unwrap_or_else(|| Value::new(0_i64)))
    });
    let tasks = (0..1000u32).map(|i| {
        let args = if i == 0 { vec![] } else { vec![Arg::Key(Key::part("c", i - 1))] };
        (Key::part("c", i), TaskSpec::new(step.clone(), args))
    });
    let g = Graph::from_tasks(tasks);
    let scheduler = LocalScheduler::sync().progress(ProgressMode::Never).cancel_token(token);
    let err = scheduler.compute(&g, &[Key::part("c", 999)], &Optimizations::none()).unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert_eq!(ran.load(Ordering::SeqCst), 11, "no task starts after the cancel");
}

/// Records the order tasks start in and how many run at once.
#[derive(Default)]
struct Recorder {
    started: Mutex<Vec<TaskIndex>>,
    running: AtomicUsize,
    most_running: AtomicUsize,
    finished: AtomicUsize,
    runs: AtomicUsize,
}

impl Callbacks for Recorder {
    fn on_start(&self, _graph: &TaskGraph) {
        self.runs.fetch_add(1, Ordering::SeqCst);
    }
    fn on_task_start(&self, _graph: &TaskGraph, task: TaskIndex, _thread: usize) {
        self.started.lock().unwrap().push(task);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_running.fetch_max(now, Ordering::SeqCst);
    }
    fn on_task_finish(
        &self,
        _graph: &TaskGraph,
        _task: TaskIndex,
        _thread: usize,
        _elapsed: Duration,
        ok: bool,
    ) {
        assert!(ok);
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
}

fn reduction_tree(leaves: u32) -> (Graph, Key) {
    let mut tasks = Vec::new();
    let mut level: Vec<Key> = (0..leaves).map(|i| Key::part("leaf", i)).collect();
    for (i, key) in level.iter().enumerate() {
        tasks.push((key.clone(), literal(i as i64)));
    }
    let mut depth = 0;
    while level.len() > 1 {
        depth += 1;
        let name = format!("sum-{depth}");
        level = level
            .chunks(2)
            .enumerate()
            .map(|(i, pair)| match pair {
                [a, b] => {
                    let key = Key::part(name.as_str(), i as u32);
                    tasks.push((key.clone(), TaskSpec::new(sum_fn(), vec![a.into(), b.into()])));
                    key
                }
                [odd] => odd.clone(),
                _ => unreachable!(),
            })
            .collect();
    }
    (Graph::from_tasks(tasks), level.remove(0))
}

#[test]
fn sync_mode_runs_in_exact_priority_order_and_holds_few_results() {
    let (g, root) = reduction_tree(4096);
    let recorder = Arc::new(Recorder::default());
    let scheduler =
        LocalScheduler::sync().progress(ProgressMode::Never).callbacks(recorder.clone());
    let report =
        scheduler.run_graph(&g, std::slice::from_ref(&root), &Optimizations::default()).unwrap();
    assert_eq!(
        report.outputs[0].as_ref().unwrap().downcast_ref::<i64>(),
        Some(&(0..4096).sum::<i64>())
    );
    let started = recorder.started.lock().unwrap().clone();
    assert_eq!(started, (0..started.len() as u32).collect::<Vec<_>>(), "priority order");
    assert_eq!(recorder.most_running.load(Ordering::SeqCst), 1);
    assert!(report.stats.peak_results_held <= 14, "peak {}", report.stats.peak_results_held);
    assert_eq!(recorder.runs.load(Ordering::SeqCst), 1);
}

#[test]
fn threads_run_tasks_at_the_same_time_and_intermediates_are_released() {
    let (g, root) = reduction_tree(1 << 14);
    let recorder = Arc::new(Recorder::default());
    let slow = TaskFn::closure("slow", |args: &[Value]| {
        std::thread::sleep(Duration::from_millis(20));
        Ok(args[0].clone())
    });
    // Four slow independent tasks beside the tree: with 4 threads they overlap.
    let slow_graph = Graph::from_tasks((0..4).map(|i| {
        (Key::part("slow", i), TaskSpec::new(slow.clone(), vec![Arg::value(i64::from(i))]))
    }));
    let both = Graph::merge(&[&g, &slow_graph]);
    let mut outputs = vec![root];
    outputs.extend((0..4).map(|i| Key::part("slow", i)));
    let report = quiet()
        .callbacks(recorder.clone())
        .run_graph(&both, &outputs, &Optimizations::default())
        .unwrap();
    assert_eq!(
        report.outputs[0].as_ref().unwrap().downcast_ref::<i64>(),
        Some(&((1i64 << 14) * ((1 << 14) - 1) / 2))
    );
    assert!(recorder.most_running.load(Ordering::SeqCst) >= 2, "tasks overlapped");
    assert_eq!(recorder.finished.load(Ordering::SeqCst), report.stats.tasks);
    // 16k leaves: holding them all would be 16k results; released promptly it is far fewer.
    assert!(report.stats.peak_results_held < 2_000, "peak {}", report.stats.peak_results_held);
}

#[test]
fn a_progress_bar_when_asked_counts_every_task() {
    let (g, root) = reduction_tree(64);
    let tasks = rask_core::optimize::prepare(&g, &[root], &Optimizations::default()).unwrap();
    let bar = Arc::new(rask_local::ProgressBar::new(tasks.len()));
    let report = LocalScheduler::new()
        .progress(ProgressMode::Never)
        .callbacks(bar.clone())
        .run(&tasks)
        .unwrap();
    assert!(report.outputs[0].is_ok());
    assert_eq!(bar.position(), tasks.len() as u64);
    assert!(ProgressMode::Always.bar(10).is_some());
    assert!(ProgressMode::Never.bar(10).is_none());
}

/// A random DAG: task `i` sums a constant and some earlier tasks.
fn random_dag() -> impl Strategy<Value = Vec<(i64, Vec<usize>)>> {
    (1usize..60).prop_flat_map(|n| {
        proptest::collection::vec(
            (-100i64..100, proptest::collection::vec(any::<proptest::sample::Index>(), 0..4)),
            n,
        )
        .prop_map(|specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(i, (c, picks))| {
                    (c, if i == 0 { vec![] } else { picks.iter().map(|p| p.index(i)).collect() })
                })
                .collect()
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_dag_gives_the_sequential_answer_with_any_threads_and_optimizations(
        dag in random_dag(),
        threads in 1usize..5,
        output_picks in proptest::collection::vec(any::<proptest::sample::Index>(), 1..5),
        optimizations in 0usize..3,
    ) {
        // Oracle: evaluate in index order.
        let mut expected: Vec<i64> = Vec::new();
        for (c, deps) in &dag {
            expected.push(deps.iter().fold(*c, |acc, &d| acc.wrapping_add(expected[d])));
        }
        let tasks: HashMap<Key, TaskSpec> = dag.iter().enumerate().map(|(i, (c, deps))| {
            let mut args = vec![Arg::value(*c)];
            args.extend(deps.iter().map(|&d| Arg::Key(Key::part("t", d as u32))));
            (Key::part("t", i as u32), TaskSpec::new(sum_fn(), args))
        }).collect();
        let g = Graph::from_tasks(tasks);
        let outputs: Vec<usize> = output_picks.iter().map(|p| p.index(dag.len())).collect();
        let keys: Vec<Key> = outputs.iter().map(|&o| Key::part("t", o as u32)).collect();
        let optimizations = match optimizations {
            0 => Optimizations::default(),
            1 => Optimizations::none(),
            _ => Optimizations::aggressive(),
        };
        let scheduler = LocalScheduler::new().threads(threads).progress(ProgressMode::Never);
        let values = scheduler.compute(&g, &keys, &optimizations).unwrap();
        for (value, &o) in values.iter().zip(&outputs) {
            prop_assert_eq!(value.downcast_ref::<i64>(), Some(&expected[o]));
        }
    }
}
