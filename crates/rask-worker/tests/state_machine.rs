//! The worker state machine driven directly: fetch plans, holders that fail mid-transfer,
//! execution slots and priorities, unknown functions, spilling to disk and pausing near the
//! memory limit (decided on the results held plus a decaying estimate of unmanaged memory).

use rask_core::wire::{WireArg, WireOp};
use rask_core::{Key, Value, WireTask, WireValue};
use rask_protocol::messages::{InputLocation, SpillDirection, TaskTiming, WorkerToScheduler};
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

fn located(key: &str, holders: &[&str], nbytes: u64) -> InputLocation {
    InputLocation {
        key: Key::new(key),
        holders: holders.iter().map(|h| h.to_string()).collect(),
        nbytes,
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
        located("a", &["peer-1"], 8),
        located("b", &["peer-1"], 8),
        located("c", &["peer-2"], 8),
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
    let who_has = vec![located("a", &["dying", "backup"], 8)];
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
fn fetched_copies_are_reported_as_replicas_and_stay_until_the_scheduler_frees_them() {
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
    let who_has = vec![located("remote", &["peer"], 8)];
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
    let replicated: Vec<&Vec<Key>> = out
        .iter()
        .filter_map(|c| match c {
            WorkerCommand::ToScheduler(WorkerToScheduler::Replicated { keys }) => Some(keys),
            _ => None,
        })
        .collect();
    assert_eq!(replicated, [&vec![Key::new("remote")]], "the scheduler learns of the copy");
    for task in ["t1", "t2"] {
        run(
            &mut state,
            WorkerEvent::Executed {
                key: Key::new(task),
                result: Ok(Value::serde(3_i64)),
                timing: TaskTiming::lasting(5),
            },
        );
    }
    // No task here needs the copy any more; later tasks placed here may: it stays.
    let (found, missing) = state.get_data(&[Key::new("remote"), Key::new("own")]);
    assert!(missing.is_empty() && found.len() == 2, "{found:?} {missing:?}");
    let out = run(&mut state, WorkerEvent::Free(vec![Key::new("remote")]));
    assert!(out.is_empty(), "{out:?}");
    let (found, missing) = state.get_data(&[Key::new("remote"), Key::new("own")]);
    assert_eq!(missing, vec![Key::new("remote")], "freed with the result: {found:?}");
    assert_eq!(found.len(), 1, "own results stay until the scheduler frees them");
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
    let out = run(&mut state, WorkerEvent::MemoryMeasured { process_bytes: 650_000, at_ms: 200 });
    assert!(spills(&out).is_empty(), "under the spill fraction (70%): nothing to do");
    let out = run(&mut state, WorkerEvent::MemoryMeasured { process_bytes: 750_000, at_ms: 400 });
    assert_eq!(spills(&out), [(SpillDirection::ToDisk, 2)], "150 kB over the target: two go");
    assert!(state.is_spilled(&Key::new("a")) && state.is_spilled(&Key::new("b")));
    assert!(!state.paused());
}

#[test]
fn near_the_limit_the_worker_runs_one_task_at_a_time_and_resumes_below_it() {
    let mut state = limited(2, 1_000_000);
    run(&mut state, WorkerEvent::MemoryMeasured { process_bytes: 900_000, at_ms: 600 });
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
    let out = run(&mut state, WorkerEvent::MemoryMeasured { process_bytes: 500_000, at_ms: 800 });
    assert_eq!(executes(&out), ["z"], "below the pause fraction both threads run again");
    assert!(!state.paused());
}

fn measure(state: &mut WorkerState, process_bytes: u64, at_ms: u64) -> Vec<WorkerCommand> {
    run(state, WorkerEvent::MemoryMeasured { process_bytes, at_ms })
}

#[test]
fn a_worker_paused_by_a_spill_phase_runs_at_full_parallelism_once_its_results_are_freed() {
    let limit = 1_000_000;
    let mut state = limited(4, limit);
    let base = 50_000; // the process's own overhead, measured before any work
    let mut at_ms = 0;
    measure(&mut state, base, at_ms);
    // The spill phase: results arrive, the store spills beyond its target, and task working
    // memory (growth the results do not explain) takes the process far past its limit, as the
    // 1.5x peak of the report did.
    let mut names = Vec::new();
    for i in 0..12 {
        let name = format!("big-{i}");
        finished(&mut state, &name, Value::serde(vec![0.5_f64; 12_500])); // ~100 kB each
        names.push(name);
    }
    assert!(state.memory().spilled_values > 0, "the phase spilled: {:?}", state.memory());
    at_ms += 200;
    measure(&mut state, 1_400_000, at_ms);
    assert!(state.paused(), "1.4 MB of 1 MB: paused ({} unmanaged)", state.unmanaged_bytes());

    // Everything is freed; the allocator keeps the resident memory (it stays at 1.4 MB).
    run(&mut state, WorkerEvent::Free(names.iter().map(|n| Key::new(n.as_str())).collect()));
    assert_eq!(state.stored(), 0);
    let resumed_by = at_ms + 30_000;
    while state.paused() && at_ms < resumed_by {
        at_ms += 200;
        measure(&mut state, 1_400_000, at_ms);
    }
    assert!(
        !state.paused(),
        "still paused 30 s after its results were freed, holding nothing \
         ({} bytes of unmanaged memory counted)",
        state.unmanaged_bytes()
    );
    // A batch of tasks now runs at full parallelism: four threads, four tasks at once.
    let mut started = Vec::new();
    for i in 0..8 {
        let task = identity_task(&format!("next-{i}"), &[], i);
        started.extend(executes(&run(&mut state, WorkerEvent::Compute { task, who_has: vec![] })));
        at_ms += 200;
        started.extend(executes(&measure(&mut state, 1_400_000, at_ms)));
    }
    assert_eq!(started.len(), 4, "all four threads run: {started:?}");
}

#[test]
fn unmanaged_memory_that_keeps_growing_still_pauses_the_worker() {
    let mut state = limited(4, 1_000_000);
    measure(&mut state, 50_000, 0);
    // Nothing is held, but the process keeps growing: that is real memory in use.
    let mut at_ms = 0;
    for process in (100_000..=900_000).step_by(100_000) {
        at_ms += 200;
        measure(&mut state, process, at_ms);
    }
    assert!(state.paused(), "{} unmanaged bytes counted", state.unmanaged_bytes());
    assert!(state.unmanaged_bytes() > 800_000, "{}", state.unmanaged_bytes());
    // One more step of growth after a pause: counted again at once.
    at_ms += 200;
    measure(&mut state, 950_000, at_ms);
    assert!(state.paused());
}

#[test]
fn results_are_spilled_before_the_limit_is_reached_not_after() {
    let limit = 1_000_000;
    let mut state = limited(1, limit);
    measure(&mut state, 50_000, 0);
    // Working memory of running tasks: 450 kB the results do not explain.
    measure(&mut state, 500_000, 200);
    assert!(!state.paused());
    // A 200 kB result arrives. Under the 600 kB target alone it would stay in memory and take
    // the process to 700 kB, the spill fraction, until the next measurement spilled it: it
    // goes to disk as it arrives instead, since the target counts the unmanaged part too.
    let value = Value::serde(vec![0.5_f64; 25_000]);
    let size = value.size_hint() as u64;
    let out = finished(&mut state, "r", value);
    assert_eq!(spills(&out), [(SpillDirection::ToDisk, 1)]);
    assert!(state.is_spilled(&Key::new("r")));
    let memory = state.memory();
    assert!(
        memory.managed_bytes + state.unmanaged_bytes() <= (0.6 * limit as f64) as u64,
        "{memory:?}, {} unmanaged, a {size}-byte result",
        state.unmanaged_bytes()
    );
}

fn fetched_keys(commands: &[WorkerCommand]) -> Vec<(String, Vec<String>)> {
    commands
        .iter()
        .filter_map(|c| match c {
            WorkerCommand::Fetch { peer, keys } => {
                Some((peer.clone(), keys.iter().map(|k| k.name().to_string()).collect()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn fetches_stay_under_the_request_and_byte_bounds_most_urgent_first() {
    // A 100 MB limit: at most 10 MB on its way, in at most four requests.
    let limits = MemoryLimits::new(100_000_000);
    let mut state =
        WorkerState::with_memory_limit(1, Some(limits), Box::new(MemoryDisk::default()));
    let mut requested = Vec::new();
    // Twenty tasks, each reading one 3 MB input from the same peer; priority 19 down to 0.
    for i in 0..20 {
        let input = format!("in-{i}");
        let task = identity_task(&format!("t-{i}"), &[input.as_str()], 19 - i);
        let who_has = vec![located(&input, &["peer"], 3_000_000)];
        requested.extend(fetched_keys(&run(&mut state, WorkerEvent::Compute { task, who_has })));
    }
    // Requests went out while they fit: three of 3 MB (9 MB on their way); the rest waits.
    let names = |requests: &[(String, Vec<String>)]| -> Vec<String> {
        requests.iter().flat_map(|(_, keys)| keys.clone()).collect()
    };
    assert_eq!(names(&requested), ["in-0", "in-1", "in-2"]);
    let in_flight = |state: &WorkerState| state.fetches();
    assert_eq!(in_flight(&state), (3, 9_000_000));
    // As values arrive, more is asked for: the most urgent (lowest priority) inputs first, and
    // never more than 10 MB or four requests on their way. Tasks that become ready run and end.
    let mut issued = names(&requested);
    let mut outstanding: Vec<Vec<String>> = requested.into_iter().map(|(_, keys)| keys).collect();
    while let Some(keys) = outstanding.pop() {
        let values = keys.iter().map(|k| (Key::new(k.as_str()), Value::serde(1_i64))).collect();
        let mut out =
            run(&mut state, WorkerEvent::Fetched { peer: "peer".into(), values, missing: vec![] });
        loop {
            let (requests, bytes) = in_flight(&state);
            assert!(requests <= 4 && bytes <= 10_000_000, "{requests} requests, {bytes} bytes");
            let requests = fetched_keys(&out);
            issued.extend(names(&requests));
            outstanding.extend(requests.into_iter().map(|(_, keys)| keys));
            let Some(key) = executes(&out).pop() else { break };
            let result = Ok(Value::serde(1_i64));
            let event = WorkerEvent::Executed {
                key: Key::new(key.as_str()),
                result,
                timing: TaskTiming::lasting(1),
            };
            out = run(&mut state, event);
        }
    }
    let expected: Vec<String> =
        [0, 1, 2].into_iter().chain((3..20).rev()).map(|i| format!("in-{i}")).collect();
    assert_eq!(issued, expected, "then the most urgent inputs first");
    assert_eq!(in_flight(&state), (0, 0));
}

#[test]
fn one_value_larger_than_the_bound_still_comes_and_a_paused_worker_fetches_only_when_idle() {
    let limits = MemoryLimits::new(10_000_000);
    let mut state =
        WorkerState::with_memory_limit(1, Some(limits), Box::new(MemoryDisk::default()));
    let task = identity_task("big", &["huge"], 0);
    let out = run(
        &mut state,
        WorkerEvent::Compute { task, who_has: vec![located("huge", &["peer"], 50_000_000)] },
    );
    assert_eq!(fetched_keys(&out).len(), 1, "a value beyond the bound is fetched alone");
    // A second input waits while the large one is on its way.
    let task = identity_task("small", &["tiny"], 1);
    let out = run(
        &mut state,
        WorkerEvent::Compute { task, who_has: vec![located("tiny", &["peer"], 10)] },
    );
    assert!(fetched_keys(&out).is_empty(), "{out:?}");
    // Paused (the process is over 80% of its limit): when "huge" arrives "big" runs, and
    // nothing more is fetched while it does.
    run(&mut state, WorkerEvent::MemoryMeasured { process_bytes: 9_500_000, at_ms: 0 });
    assert!(state.paused());
    let out = run(
        &mut state,
        WorkerEvent::Fetched {
            peer: "peer".into(),
            values: vec![(Key::new("huge"), Value::serde(1_i64))],
            missing: vec![],
        },
    );
    assert_eq!(executes(&out), ["big"], "{out:?}");
    assert!(fetched_keys(&out).is_empty(), "a paused, busy worker does not fetch: {out:?}");
    // Once "big" is done the worker is idle: it fetches to make progress.
    let out = run(
        &mut state,
        WorkerEvent::Executed {
            key: Key::new("big"),
            result: Ok(Value::serde(1_i64)),
            timing: TaskTiming::lasting(1),
        },
    );
    assert_eq!(fetched_keys(&out), [("peer".to_string(), vec!["tiny".to_string()])]);
}
