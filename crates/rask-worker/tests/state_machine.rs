//! The worker state machine driven directly: fetch plans, holders that fail mid-transfer,
//! execution slots and priorities, unknown functions, spilling to disk and pausing near the
//! memory limit.

use rask_core::wire::{WireArg, WireOp};
use rask_core::{Key, Value, WireTask, WireValue};
use rask_protocol::messages::{SpillDirection, TaskTiming, WorkerToScheduler};
use rask_worker::state::{MemoryLimits, WorkerCommand, WorkerEvent, WorkerState};
use rask_worker::store::MemoryDisk;

fn identity_task(name: &str, deps: &[&str], priority: u32) -> WireTask {
    let args = if deps.is_empty() {
        vec![WireArg::Value(WireValue::encode(&Value::serde(7_i64)).unwrap())]
    } else {
        (0..deps.len() as u32).map(WireArg::Dep).collect()
    };
    WireTask {
        key: Key::new(name),
        deps: deps.iter().map(|d| Key::new(*d)).collect(),
        priority,
        part: 0,
        retries: 0,
        ops: vec![WireOp { func: "rask::identity".into(), args }],
        label: None,
        origins: vec![],
    }
}

fn run(state: &mut WorkerState, event: WorkerEvent) -> Vec<WorkerCommand> {
    let mut out = Vec::new();
    state.handle(event, &mut out);
    out
}

fn executes(commands: &[WorkerCommand]) -> Vec<String> {
    commands
        .iter()
        .filter_map(|c| match c {
            WorkerCommand::Execute { task, .. } => Some(task.key.name().to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn inputs_are_fetched_grouped_by_holder_then_the_task_runs() {
    let mut state = WorkerState::new(1);
    let who_has = vec![
        (Key::new("a"), vec!["peer-1".to_string()]),
        (Key::new("b"), vec!["peer-1".to_string()]),
        (Key::new("c"), vec!["peer-2".to_string()]),
    ];
    let out = run(
        &mut state,
        WorkerEvent::Compute { task: identity_task("t", &["a", "b", "c"], 0), who_has },
    );
    let mut fetches: Vec<(String, usize)> = out
        .iter()
        .filter_map(|c| match c {
            WorkerCommand::Fetch { peer, keys } => Some((peer.clone(), keys.len())),
            _ => None,
        })
        .collect();
    fetches.sort();
    assert_eq!(fetches, [("peer-1".to_string(), 2), ("peer-2".to_string(), 1)]);
    let values = vec![(Key::new("a"), Value::new(1_i64)), (Key::new("b"), Value::new(2_i64))];
    let out =
        run(&mut state, WorkerEvent::Fetched { peer: "peer-1".into(), values, missing: vec![] });
    assert!(executes(&out).is_empty(), "c is still missing");
    let out = run(
        &mut state,
        WorkerEvent::Fetched {
            peer: "peer-2".into(),
            values: vec![(Key::new("c"), Value::new(3_i64))],
            missing: vec![],
        },
    );
    assert_eq!(executes(&out), ["t"]);
}

#[test]
fn a_holder_that_fails_mid_transfer_is_skipped_and_with_none_left_the_scheduler_is_told() {
    let mut state = WorkerState::new(1);
    let who_has = vec![(Key::new("a"), vec!["dying".to_string(), "backup".to_string()])];
    let out =
        run(&mut state, WorkerEvent::Compute { task: identity_task("t", &["a"], 0), who_has });
    assert!(matches!(&out[..], [WorkerCommand::Fetch { peer, .. }] if peer == "dying"));
    let out = run(
        &mut state,
        WorkerEvent::FetchFailed { peer: "dying".into(), keys: vec![Key::new("a")] },
    );
    assert!(matches!(&out[..], [WorkerCommand::Fetch { peer, .. }] if peer == "backup"), "{out:?}");
    let out = run(
        &mut state,
        WorkerEvent::Fetched {
            peer: "backup".into(),
            values: vec![],
            missing: vec![Key::new("a")],
        },
    );
    assert!(
        matches!(&out[..], [WorkerCommand::ToScheduler(WorkerToScheduler::MissingData { key, dep })] if key == &Key::new("t") && dep == &Key::new("a")),
        "{out:?}"
    );
}

#[test]
fn execution_slots_are_filled_in_priority_order() {
    let mut state = WorkerState::new(2);
    let mut started = Vec::new();
    for (name, priority) in [("low", 9), ("high", 1), ("mid", 5)] {
        started.extend(executes(&run(
            &mut state,
            WorkerEvent::Compute { task: identity_task(name, &[], priority), who_has: vec![] },
        )));
    }
    assert_eq!(started, ["low", "high"], "two slots, taken as tasks arrive");
    let out = run(
        &mut state,
        WorkerEvent::Executed {
            key: Key::new("high"),
            result: Ok(Value::serde(1_i64)),
            timing: TaskTiming::lasting(5),
        },
    );
    assert_eq!(executes(&out), ["mid"]);
    assert!(out.iter().any(|c| matches!(c, WorkerCommand::ToScheduler(WorkerToScheduler::TaskFinished { key, .. }) if key == &Key::new("high"))));
    assert_eq!(state.stored(), 1);
}

#[test]
fn an_unknown_function_fails_the_task_with_an_error_that_says_what_to_do() {
    let mut state = WorkerState::new(1);
    let mut task = identity_task("t", &[], 0);
    task.ops[0].func = "my_app::secret_step".into();
    let out = run(&mut state, WorkerEvent::Compute { task, who_has: vec![] });
    let [WorkerCommand::ToScheduler(WorkerToScheduler::TaskErred { failure, .. })] = &out[..]
    else {
        panic!("{out:?}")
    };
    let text = failure.error.chain.join(" ");
    assert!(
        text.contains("my_app::secret_step") && text.contains("binary that defines it"),
        "{text}"
    );
}

#[test]
fn freeing_a_running_task_discards_its_late_result() {
    let mut state = WorkerState::new(1);
    let out =
        run(&mut state, WorkerEvent::Compute { task: identity_task("t", &[], 0), who_has: vec![] });
    assert_eq!(executes(&out), ["t"]);
    run(&mut state, WorkerEvent::Free(vec![Key::new("t")]));
    let out = run(
        &mut state,
        WorkerEvent::Executed {
            key: Key::new("t"),
            result: Ok(Value::serde(1_i64)),
            timing: TaskTiming::lasting(5),
        },
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(state.stored(), 0);
}

#[test]
fn a_task_not_yet_running_can_be_stolen_and_a_running_one_cannot() {
    let mut state = WorkerState::new(1);
    run(
        &mut state,
        WorkerEvent::Compute { task: identity_task("running", &[], 0), who_has: vec![] },
    );
    run(
        &mut state,
        WorkerEvent::Compute { task: identity_task("queued", &[], 1), who_has: vec![] },
    );
    for (key, expected) in [("queued", true), ("running", false)] {
        let out = run(&mut state, WorkerEvent::Steal(Key::new(key)));
        assert!(
            matches!(&out[..], [WorkerCommand::ToScheduler(WorkerToScheduler::StealResponse { stolen, .. })] if *stolen == expected),
            "{key}: {out:?}"
        );
    }
    let out = run(
        &mut state,
        WorkerEvent::Executed {
            key: Key::new("running"),
            result: Ok(Value::serde(1_i64)),
            timing: TaskTiming::lasting(5),
        },
    );
    assert!(executes(&out).is_empty(), "the stolen task does not run here");
}

#[test]
fn fetched_copies_are_dropped_once_no_task_here_needs_them_but_own_results_stay() {
    let mut state = WorkerState::new(1);
    // A result computed here.
    run(&mut state, WorkerEvent::Compute { task: identity_task("own", &[], 0), who_has: vec![] });
    run(
        &mut state,
        WorkerEvent::Executed {
            key: Key::new("own"),
            result: Ok(Value::serde(1_i64)),
            timing: TaskTiming::lasting(5),
        },
    );
    // Two tasks read a value fetched from a peer, and the local result.
    let who_has = vec![(Key::new("remote"), vec!["peer".to_string()])];
    run(
        &mut state,
        WorkerEvent::Compute {
            task: identity_task("t1", &["remote", "own"], 1),
            who_has: who_has.clone(),
        },
    );
    run(&mut state, WorkerEvent::Compute { task: identity_task("t2", &["remote"], 2), who_has });
    let out = run(
        &mut state,
        WorkerEvent::Fetched {
            peer: "peer".into(),
            values: vec![(Key::new("remote"), Value::serde(2_i64))],
            missing: vec![],
        },
    );
    assert_eq!(executes(&out), ["t1"]);
    assert_eq!(state.stored(), 2, "t2 still needs the copy");
    let out = run(
        &mut state,
        WorkerEvent::Executed {
            key: Key::new("t1"),
            result: Ok(Value::serde(3_i64)),
            timing: TaskTiming::lasting(5),
        },
    );
    assert_eq!(executes(&out), ["t2"]);
    let (found, missing) = state.get_data(&[Key::new("remote"), Key::new("own"), Key::new("t1")]);
    assert_eq!(missing, vec![Key::new("remote")], "the fetched copy is gone: {found:?}");
    assert_eq!(found.len(), 2, "own results stay until the scheduler frees them");
}

fn finished(state: &mut WorkerState, name: &str, value: Value) -> Vec<WorkerCommand> {
    let out =
        run(state, WorkerEvent::Compute { task: identity_task(name, &[], 0), who_has: vec![] });
    assert_eq!(executes(&out), [name]);
    let result = Ok(value);
    run(
        state,
        WorkerEvent::Executed { key: Key::new(name), result, timing: TaskTiming::lasting(5) },
    )
}

fn spills(commands: &[WorkerCommand]) -> Vec<(SpillDirection, u32)> {
    commands
        .iter()
        .filter_map(|c| match c {
            WorkerCommand::ToScheduler(WorkerToScheduler::Spilled {
                direction, values, ..
            }) => Some((*direction, *values)),
            _ => None,
        })
        .collect()
}

fn limited(nthreads: usize, limit: u64) -> WorkerState {
    let limits = Some(MemoryLimits::new(limit));
    WorkerState::with_memory_limit(nthreads, limits, Box::new(MemoryDisk::default()))
}

#[test]
fn results_beyond_the_memory_target_spill_and_come_back_whole_for_tasks_and_peers() {
    let block = Value::serde(vec![1.5_f64; 1_000]);
    let size = block.size_hint() as u64;
    // Room for two results under the target (60% of the limit).
    let mut state = limited(1, (2.5 * size as f64 / 0.6) as u64);
    assert!(spills(&finished(&mut state, "a", Value::serde(vec![1.5_f64; 1_000]))).is_empty());
    assert!(spills(&finished(&mut state, "b", Value::serde(vec![2.5_f64; 1_000]))).is_empty());
    let out = finished(&mut state, "c", Value::serde(vec![3.5_f64; 1_000]));
    assert_eq!(spills(&out), [(SpillDirection::ToDisk, 1)], "the scheduler hears of it");
    assert!(state.is_spilled(&Key::new("a")), "the least recently used went");
    let memory = state.memory();
    assert_eq!(
        (memory.spilled_values, memory.spilled_bytes, memory.managed_bytes),
        (1, size, 2 * size)
    );

    // A peer gets the spilled value without it coming back to memory.
    let (found, missing) = state.get_data(&[Key::new("a")]);
    assert!(missing.is_empty());
    assert_eq!(found[0].1.downcast_ref::<Vec<f64>>().unwrap()[0], 1.5);
    assert!(state.is_spilled(&Key::new("a")));

    // A task reading it gets it back from disk.
    let task = identity_task("t", &["a"], 0);
    let out = run(&mut state, WorkerEvent::Compute { task, who_has: vec![] });
    let inputs: Vec<&Vec<Value>> = out
        .iter()
        .filter_map(|c| match c {
            WorkerCommand::Execute { inputs, .. } => Some(inputs),
            _ => None,
        })
        .collect();
    assert_eq!(inputs[0][0].downcast_ref::<Vec<f64>>().unwrap(), &vec![1.5_f64; 1_000]);
    assert!(spills(&out).contains(&(SpillDirection::FromDisk, 1)));
    assert!(!state.is_spilled(&Key::new("a")));
    assert_eq!(state.memory().spilled_values, 1, "another result made room for it");
}

#[test]
fn a_process_over_the_spill_fraction_spills_until_it_should_be_under_the_target() {
    let mut state = limited(1, 1_000_000);
    for name in ["a", "b", "c", "d"] {
        finished(&mut state, name, Value::serde(vec![0.5_f64; 12_500]));
    }
    assert_eq!(state.memory().spilled_values, 0, "400 kB of results: under the 600 kB target");
    let out = run(&mut state, WorkerEvent::MemoryMeasured { process_bytes: 650_000 });
    assert!(spills(&out).is_empty(), "under the spill fraction (70%): nothing to do");
    let out = run(&mut state, WorkerEvent::MemoryMeasured { process_bytes: 750_000 });
    assert_eq!(spills(&out), [(SpillDirection::ToDisk, 2)], "150 kB over the target: two go");
    assert!(state.is_spilled(&Key::new("a")) && state.is_spilled(&Key::new("b")));
    assert!(!state.paused());
}

#[test]
fn near_the_limit_the_worker_runs_one_task_at_a_time_and_resumes_below_it() {
    let mut state = limited(2, 1_000_000);
    run(&mut state, WorkerEvent::MemoryMeasured { process_bytes: 900_000 });
    assert!(state.paused() && state.memory().paused);
    let mut started = Vec::new();
    for (i, name) in ["x", "y", "z"].into_iter().enumerate() {
        let task = identity_task(name, &[], i as u32);
        started.extend(executes(&run(&mut state, WorkerEvent::Compute { task, who_has: vec![] })));
    }
    assert_eq!(started, ["x"], "paused: one at a time, so it still makes progress");
    let result = Ok(Value::serde(1_u8));
    let done = WorkerEvent::Executed { key: Key::new("x"), result, timing: TaskTiming::lasting(5) };
    assert_eq!(executes(&run(&mut state, done)), ["y"]);
    let out = run(&mut state, WorkerEvent::MemoryMeasured { process_bytes: 500_000 });
    assert_eq!(executes(&out), ["z"], "below the pause fraction both threads run again");
    assert!(!state.paused());
}
